/**
 * The query of newest-first listings (campaigns, contact lists): `limit`, and `before` + `beforeId` taken from the
 * previous page's last item (its `createdAt` and `id`), read into the storage cursor (storage/Paging.ts). `before`
 * alone keeps its older meaning: what was created strictly before that time.
 */
import { Effect, Schema } from "effect"
import type { Before } from "../storage/Paging.ts"
import type { ValidationProblem } from "./Problems.ts"
import { invalidField } from "./Problems.ts"

/** Items per page when `limit` is not given. */
export const defaultPageSize = 100

/**
 * The query fields of a listing of `items` (plural, for the descriptions), at most `maxLimit` a page; `timeField`
 * names the items' time field that `before` continues from.
 */
export const pageQuery = (items: string, maxLimit: number, timeField = "createdAt") => ({
  limit: Schema.optionalKey(
    Schema.FiniteFromString.check(Schema.isInt(), Schema.isBetween({ minimum: 1, maximum: maxLimit })).annotate({
      description: `${items} per page: ${defaultPageSize} unless given, at most ${maxLimit}`
    })
  ),
  before: Schema.optionalKey(Schema.String.annotate({
    description: `ISO time: ${items} before it. Next page: the last item's ${timeField}, with its id as beforeId`
  })),
  beforeId: Schema.optionalKey(Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(64)).annotate({
    description: "The previous page's last id (with `before`): items of the same millisecond are neither skipped nor repeated"
  }))
})


const parseTime = (field: string, value: string): Effect.Effect<number, ValidationProblem> => {
  const at = Date.parse(value)
  return Number.isNaN(at) ? Effect.fail(invalidField(field, "must be an ISO date-time")) : Effect.succeed(at)
}

/** An ISO time of the query (epoch ms), if given; a 400 naming `field` when it cannot be read. */
export const isoTime = (field: string, value: string | undefined): Effect.Effect<number | undefined, ValidationProblem> =>
  value === undefined ? Effect.succeed(undefined) : parseTime(field, value)

/** The cursor the query names, if any; a 400 naming `query.before` or `query.beforeId` when it cannot be read. */
export const beforeOf = (query: { readonly before?: string | undefined; readonly beforeId?: string | undefined }) =>
  Effect.suspend((): Effect.Effect<Before | undefined, ValidationProblem> => {
    if (query.before === undefined) {
      return query.beforeId === undefined
        ? Effect.succeed(undefined)
        : Effect.fail(invalidField("query.beforeId", "needs before: the time of the same item"))
    }
    return Effect.map(parseTime("query.before", query.before), (at): Before => ({ at, id: query.beforeId }))
  })
