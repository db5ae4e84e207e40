/**
 * Handlers of the status callbacks API (CallbacksApi.ts): who may see an app's callbacks (its organisation's admins
 * and owners, its own token), the listing by state and cursor, and the audited replay. Every read and write names the
 * caller's organisation and the app: another organisation's app is 404, like a missing one.
 */
import { Effect, Schema } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { Access, CurrentPrincipal } from "../auth/Access.ts"
import type { Principal } from "../auth/Access.ts"
import { AccountStore } from "../auth/AccountStore.ts"
import { atLeast } from "../domain/Account.ts"
import type { StoreUnavailable } from "../domain/Errors.ts"
import { CallbackStore } from "../storage/CallbackStore.ts"
import type { CallbackRecord } from "../storage/CallbackStore.ts"
import { requestOrigin } from "./AccountsHandlers.ts"
import { GatewayApi } from "./Api.ts"
import { defaultPageSize } from "./Paging.ts"
import { ForbiddenProblem, NotFoundProblem, UnavailableProblem } from "./Problems.ts"

const iso = (ms: number) => new Date(ms).toISOString()

const Facts = Schema.fromJsonString(Schema.Struct({ eventId: Schema.String, status: Schema.optionalKey(Schema.String) }))
const decodeFacts = Schema.decodeUnknownOption(Facts)

const view = (r: CallbackRecord) => {
  const facts = decodeFacts(r.body)
  const dead = r.state === "dead"
  return {
    id: String(r.id),
    eventId: facts._tag === "Some" ? facts.value.eventId : "",
    ...(r.messageId !== null ? { messageId: r.messageId } : {}),
    ...(r.inboundId !== null ? { inboundId: r.inboundId } : {}),
    status: r.inboundId !== null ? "received" : facts._tag === "Some" ? facts.value.status ?? "" : "",
    url: r.url,
    state: dead ? "dead" as const : "failing" as const,
    attempts: r.attempts,
    ...(r.lastError !== null ? { lastError: r.lastError } : {}),
    ...(r.lastStatus !== null ? { lastStatus: r.lastStatus } : {}),
    ...(dead ? { deadAt: iso(r.nextAt) } : { nextAttemptAt: iso(r.nextAt) }),
    queuedAt: iso(r.createdAt)
  }
}

const unavailable = (e: StoreUnavailable) =>
  Effect.logError("callback store failed").pipe(
    Effect.annotateLogs({ error: e.message }),
    Effect.andThen(Effect.fail(new UnavailableProblem({ detail: "storage is unavailable; retry later" })))
  )

export const CallbacksHandlers = HttpApiBuilder.group(
  GatewayApi,
  "callbacks",
  Effect.fn(function*(handlers) {
    const store = yield* CallbackStore
    const accounts = yield* AccountStore
    const access = yield* Access

    /** The caller, when it may see the app's callbacks: an admin or owner of its organisation, or its own token. */
    const allowed = (appId: string) =>
      Effect.gen(function*() {
        const principal = yield* CurrentPrincipal
        if (principal.kind === "app") {
          if (principal.appId !== appId) {
            return yield* new ForbiddenProblem({ detail: `an app token sees its own app's callbacks only, not app ${appId}` })
          }
        } else if (principal.role === null || !atLeast(principal.role, "admin")) {
          return yield* new ForbiddenProblem({ detail: "callbacks are read and replayed by the organisation's admins and owners, or by the app's own token" })
        }
        yield* accounts.getApp(principal.orgId, appId).pipe(
          Effect.catchTags({
            NotFound: () => Effect.fail(new NotFoundProblem({ detail: `no app ${appId}` })),
            StoreFailure: (e) =>
              Effect.logError("account store failed").pipe(
                Effect.annotateLogs({ error: e.message }),
                Effect.andThen(Effect.fail(new UnavailableProblem({ detail: "storage is unavailable; retry later" })))
              )
          })
        )
        return principal
      })

    const audit = (principal: Principal, appId: string, detail: string) =>
      Effect.gen(function*() {
        yield* accounts.audit({
          orgId: principal.orgId,
          actorUserId: principal.userId,
          actorAppId: principal.kind === "app" ? principal.appId : null,
          action: "callbacks.replayed",
          target: appId,
          ip: access.clientIp(yield* requestOrigin),
          detail
        })
      }).pipe(Effect.ignore)

    return handlers
      .handle("list", ({ params, query }) =>
        Effect.gen(function*() {
          const principal = yield* allowed(params.appId)
          const limit = query.limit ?? defaultPageSize
          // One more than the page: whether there is a next one.
          const rows = yield* store.list(principal.orgId, params.appId, {
            state: query.state,
            cursor: query.cursor !== undefined ? Number(query.cursor) : undefined,
            limit: limit + 1
          }).pipe(Effect.catchTag("StoreUnavailable", unavailable))
          const page = rows.slice(0, limit)
          const last = page.at(-1)
          return {
            items: page.map(view),
            ...(rows.length > limit && last !== undefined ? { next: String(last.id) } : {})
          }
        }))
      .handle("replay", ({ params, payload }) =>
        Effect.gen(function*() {
          const principal = yield* allowed(params.appId)
          const target = "ids" in payload
            ? { _tag: "Ids" as const, ids: payload.ids.map(Number) }
            : { _tag: "AllDead" as const }
          const requeued = yield* store.replay(principal.orgId, params.appId, target, Date.now()).pipe(
            Effect.catchTag("StoreUnavailable", unavailable)
          )
          yield* audit(
            principal,
            params.appId,
            target._tag === "Ids" ? `ids=${target.ids.length} requeued=${requeued}` : `all=dead requeued=${requeued}`
          )
          yield* Effect.logInfo("status callbacks replayed").pipe(
            Effect.annotateLogs({ appId: params.appId, requeued })
          )
          return { requeued }
        }))
  })
)
