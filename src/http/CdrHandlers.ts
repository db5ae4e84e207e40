/**
 * Handlers of the CDR files API (CdrApi.ts): whose files (the caller's organisation; a superadmin may name one),
 * the time range checked, the listing and the streamed download.
 */
import { Effect, Option, Stream } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { CurrentPrincipal } from "../auth/Access.ts"
import { atLeast } from "../domain/Account.ts"
import { hourLabel, hourMs, parseHourLabel } from "../domain/Cdr.ts"
import { CdrFiles, maxListDays } from "../pipeline/CdrFiles.ts"
import type { ObjectStoreError } from "../storage/ObjectStore.ts"
import { GatewayApi } from "./Api.ts"
import { ForbiddenProblem, invalidField, NotFoundProblem, UnavailableProblem } from "./Problems.ts"
import { setResponseHeader } from "./ResponseHeaders.ts"


/** The organisation whose files the caller may read: its own (admin or owner), or any a superadmin names. */
const organisationOf = (asked: string | undefined) =>
  Effect.flatMap(CurrentPrincipal, (principal) => {
    if (principal.superadmin) return Effect.succeed(asked ?? principal.orgId)
    if (principal.kind !== "user" || principal.role === null || !atLeast(principal.role, "admin")) {
      return Effect.fail(new ForbiddenProblem({ detail: "CDR files are read by the organisation's admins and owners" }))
    }
    if (asked !== undefined && asked !== principal.orgId) {
      return Effect.fail(new ForbiddenProblem({ detail: "organisation: only superadmins read another organisation's files" }))
    }
    return Effect.succeed(principal.orgId)
  })

const unavailable = (e: ObjectStoreError) => {
  // The store's own message goes to the log (bucket, key); the client is told to retry.
  return Effect.logWarning("CDR files unavailable").pipe(
    Effect.annotateLogs({ operation: e.operation, error: e.message }),
    Effect.andThen(Effect.fail(new UnavailableProblem({ detail: "the CDR store did not answer; retry later" })))
  )
}

export const CdrHandlers = HttpApiBuilder.group(
  GatewayApi,
  "cdr",
  Effect.fn(function*(handlers) {
    const files = yield* CdrFiles
    return handlers
      .handle("list", ({ query }) =>
        Effect.gen(function*() {
          const organisation = yield* organisationOf(query.organisation)
          const to = query.to !== undefined ? Date.parse(query.to) : Date.now()
          const from = query.from !== undefined ? Date.parse(query.from) : to - 24 * hourMs
          if (from >= to) return yield* invalidField("from", "must be before `to`")
          if (to - from > maxListDays * 24 * hourMs) return yield* invalidField("to", `at most ${maxListDays} days after \`from\``)
          // Whole hours: an hour is listed when it starts inside the range.
          const start = Math.ceil(from / hourMs) * hourMs
          const listed = yield* files.list(organisation, start, to).pipe(Effect.catchTag("ObjectStoreError", unavailable))
          return {
            organisation,
            from: new Date(start).toISOString(),
            to: new Date(to).toISOString(),
            // A superadmin reading another organisation's files follows links that name it.
            files: listed.map((f) => ({
              ...f,
              href: `/v1/cdr/${f.hour}/${f.name}${query.organisation !== undefined ? `?organisation=${organisation}` : ""}`
            }))
          }
        }))
      .handle("download", ({ params, query }) =>
        Effect.gen(function*() {
          const organisation = yield* organisationOf(query.organisation)
          const hour = parseHourLabel(params.hour)
          if (hour === undefined) return yield* invalidField("hour", "must be an hour as listed, e.g. 2026-12-03T14")
          const found = yield* files.find(organisation, hour, params.name).pipe(Effect.catchTag("ObjectStoreError", unavailable))
          if (Option.isNone(found)) return yield* new NotFoundProblem({ detail: `no CDR file ${params.name} for ${hourLabel(hour)}` })
          yield* setResponseHeader("content-disposition", `attachment; filename="${organisation}-${params.hour}-${params.name}"`)
          // The file stays open while its body streams: the stream owns the scope that holds it. Headers are sent by
          // then: a failure can only cut the body short, which the client sees as an incomplete download.
          return Stream.unwrap(files.open(organisation, hour, params.name).pipe(
            Effect.map((o) => Option.isSome(o) ? o.value.stream : Stream.fail(new Error("the CDR file went away")))
          )).pipe(
            Stream.catch((e) =>
              Stream.fromEffect(Effect.logError("CDR download cut short").pipe(Effect.annotateLogs({ error: String(e) }))).pipe(
                Stream.flatMap(() => Stream.fail(new Error("CDR download cut short")))
              ))
          )
        }))
  })
)
