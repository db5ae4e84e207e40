/**
 * Handlers of the operators' live view, rebind and route tester (OperationsApi.ts).
 */
import { Effect, Schedule, Stream } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { CurrentPrincipal } from "../auth/Access.ts"
import { AccountStore } from "../auth/AccountStore.ts"
import { parseRecipient } from "../domain/Msisdn.ts"
import type { MessageClass } from "../domain/Policy.ts"
import { Operations } from "../pipeline/Operations.ts"
import type { LinkLive, PoolLive } from "../pipeline/Operations.ts"
import { GatewayApi } from "./Api.ts"
import { toProblem } from "./AdminHandlers.ts"
import { ForbiddenProblem, invalidField, UnavailableProblem } from "./Problems.ts"


/** Only an operator account may see and steer what every tenant's traffic goes through. */
const superadmin = Effect.flatMap(CurrentPrincipal, (principal) =>
  principal.superadmin
    ? Effect.succeed(principal)
    : Effect.fail(new ForbiddenProblem({ detail: "links, pools and routes are managed by superadmins only" })))

const linkView = (l: LinkLive) => ({
  linkId: l.linkId,
  enabled: l.enabled,
  ...(l.state !== undefined ? { state: l.state } : {}),
  ...(l.unavailable !== undefined ? { unavailable: l.unavailable } : {})
})

const poolView = (p: PoolLive) => ({
  poolId: p.poolId,
  ...(p.state !== undefined ? { state: p.state } : {}),
  ...(p.nextPick !== undefined ? { nextPick: p.nextPick } : {}),
  ...(p.unavailable !== undefined ? { unavailable: p.unavailable } : {})
})

export const OperationsHandlers = HttpApiBuilder.group(
  GatewayApi,
  "operations",
  Effect.fn(function*(handlers) {
    const operations = yield* Operations
    const accounts = yield* AccountStore

    const live = operations.live.pipe(
      Effect.map((l) => ({ at: new Date().toISOString(), links: l.links.map(linkView), pools: l.pools.map(poolView) })),
      Effect.mapError(toProblem)
    )

    return handlers
      .handle("live", () => Effect.andThen(superadmin, live))
      .handle("liveStream", () =>
        Effect.as(
          superadmin,
          Stream.fromEffectSchedule(live, Schedule.spaced("1 second")).pipe(
            Stream.interruptWhen(Effect.sleep("1 hour")),
            Stream.catch(() => Stream.empty)
          )
        ))
      .handle("rebindLink", ({ params }) =>
        Effect.gen(function*() {
          const principal = yield* superadmin
          yield* operations.rebind(params.linkId).pipe(
            Effect.catchTag("OperationsUnavailable", (e) =>
              Effect.fail(new UnavailableProblem({ detail: `link ${params.linkId} did not answer: ${e.message}; retry later` }))),
            Effect.catchTags({ RoutingNotFound: (e) => Effect.fail(toProblem(e)), RoutingStoreFailure: (e) => Effect.fail(toProblem(e)) })
          )
          yield* Effect.logInfo("link rebind requested").pipe(
            Effect.annotateLogs({ linkId: params.linkId, userId: principal.userId ?? "" })
          )
        }))
      .handle("testRoute", ({ payload }) =>
        Effect.gen(function*() {
          yield* superadmin
          const recipient = parseRecipient(payload.to)
          if (recipient === undefined) return yield* invalidField("to", "must be a valid phone number in E.164 format, e.g. +4915112345678")
          let orgId = payload.orgId ?? null
          let messageClass: MessageClass = payload.messageClass ?? "transactional"
          if (payload.appId !== undefined) {
            const app = yield* accounts.findAppById(payload.appId).pipe(
              Effect.catchTag("StoreFailure", () => Effect.fail(new UnavailableProblem({ detail: "storage is unavailable; retry later" })))
            )
            if (app._tag === "None") return yield* invalidField("appId", `no app ${payload.appId}`)
            if (payload.orgId !== undefined && payload.orgId !== app.value.orgId) {
              return yield* invalidField("orgId", `app ${payload.appId} belongs to another organisation`)
            }
            orgId = app.value.orgId
            messageClass = payload.messageClass ?? app.value.messageClass
          }
          const answer = yield* operations.testRoute({
            msisdn: recipient.msisdn,
            appId: payload.appId ?? null,
            orgId,
            sender: payload.from ?? null,
            messageClass
          }).pipe(Effect.mapError(toProblem))
          const route = answer.route
          return {
            to: `+${recipient.msisdn}`,
            ...(recipient.country !== undefined ? { country: recipient.country } : {}),
            ...(orgId !== null ? { orgId } : {}),
            ...(payload.appId !== undefined ? { appId: payload.appId } : {}),
            messageClass,
            routed: route !== undefined,
            ...(route?.ruleId !== undefined ? { ruleId: route.ruleId } : {}),
            ...(route !== undefined
              ? { target: route.target._tag === "Pool" ? { pool: route.target.id } : { link: route.target.id }, capacityTps: route.capacityTps }
              : {}),
            ...(answer.noRoute !== undefined ? { noRoute: answer.noRoute } : {}),
            defaultRoute: answer.defaultRoute,
            rules: answer.rules,
            ...(answer.link !== undefined ? { link: linkView(answer.link) } : {}),
            ...(answer.pool !== undefined ? { pool: poolView(answer.pool) } : {})
          }
        }))
  })
)
