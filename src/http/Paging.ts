/**
 * The query of newest-first listings (campaigns, contact lists): `limit`, and `before` + `beforeId` taken from the
 * previous page's last item (its `createdAt` and `id`), read into the storage cursor (storage/Paging.ts). `before`
 * alone keeps its older meaning: what was created strictly before that time.
 */
import { Effect, Schema } from "effect"
import type { Before } from "../storage/Paging.ts"
import { ValidationProblem } from "./Problems.ts"

/** Items per page when `limit` is not given. */
export const defaultPageSize = 100

/** The query fields of a listing of `items` (plural, for the descriptions), at most `maxLimit` a page. */
export const pageQuery = (items: string, maxLimit: number) => ({
  limit: Schema.optionalKey(
    Schema.FiniteFromString.check(Schema.isInt(), Schema.isBetween({ minimum: 1, maximum: maxLimit })).annotate({
      description: `${items} per page: ${defaultPageSize} unless given, at most ${maxLimit}`
    })
  ),
  before: Schema.optionalKey(Schema.String.annotate({
    description: `ISO time: ${items} created before it. Next page: the last item's createdAt, with its id as beforeId`
  })),
  beforeId: Schema.optionalKey(Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(64)).annotate({
    description: "The previous page's last id (with `before`): items created in the same millisecond are neither skipped nor repeated"
  }))
})

const invalid = (field: string, message: string) => new ValidationProblem({ detail: `${field}: ${message}`, errors: [{ field, message }] })

/** The cursor the query names, if any; a 400 naming `query.before` or `query.beforeId` when it cannot be read. */
export const beforeOf = (query: { readonly before?: string | undefined; readonly beforeId?: string | undefined }) =>
  Effect.suspend((): Effect.Effect<Before | undefined, ValidationProblem> => {
    if (query.before === undefined) {
      return query.beforeId === undefined
        ? Effect.succeed(undefined)
        : Effect.fail(invalid("query.beforeId", "needs before: the createdAt of the same item"))
    }
    const at = Date.parse(query.before)
    if (Number.isNaN(at)) return Effect.fail(invalid("query.before", "must be an ISO date-time"))
    return Effect.succeed({ at, id: query.beforeId })
  })
