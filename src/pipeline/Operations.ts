/**
 * What the operators' screens read and do beyond the routing configuration: the live state of every link and pool
 * (asked of their actors, wherever in the cluster they run), a rebind, and "which route would this number take".
 *
 * Invariants:
 * - Read-only except `rebind`: the route tester routes like Gateway.submit (Router.route) but picks nothing from a
 *   pool; the link a pool would take next is computed from the pool's inspection on a copy (Swrr.nextPick).
 * - Every actor call has its own deadline (`callTimeoutMs`): during a failover calls wait for the new owner, and a
 *   screen must not; an actor that does not answer is reported as such, the others still are.
 */
import { Context, Duration, Effect, Layer, Result, Schema } from "effect"
import type { LinkState } from "../actors/SmppLinkProtocol.ts"
import { SmppLink } from "../actors/SmppLinkProtocol.ts"
import type { PoolState } from "../actors/VirtualPoolProtocol.ts"
import { VirtualPool } from "../actors/VirtualPoolProtocol.ts"
import type { MessageClass } from "../domain/Policy.ts"
import { explainRoute } from "../routing/RouteExplain.ts"
import type { RuleExplanation } from "../routing/RouteExplain.ts"
import type { Route } from "../routing/Router.ts"
import { Router } from "../routing/Router.ts"
import type { RoutingSnapshot, RoutingStoreFailure } from "../routing/RoutingConfig.ts"
import { RoutingConfig, RoutingNotFound } from "../routing/RoutingConfig.ts"
import { nextPick } from "../routing/Swrr.ts"

export class OperationsUnavailable extends Schema.TaggedError<OperationsUnavailable>()("OperationsUnavailable", {
  message: Schema.String
}) {}

export interface LinkLive {
  readonly linkId: string
  readonly enabled: boolean
  /** Undefined when the link's actor did not answer in time (`unavailable` says why). */
  readonly state: LinkState | undefined
  readonly unavailable?: string
}

export interface PoolLive {
  readonly poolId: string
  readonly state: PoolState | undefined
  readonly unavailable?: string
  /** The member the pool would pick next, if one can be picked. */
  readonly nextPick?: string
}

export interface RouteQuestion {
  /** E.164 digits without "+". */
  readonly msisdn: string
  readonly appId: string | null
  readonly orgId: string | null
  readonly sender: string | null
  readonly messageClass: MessageClass
}

export interface RouteAnswer {
  /** The route Gateway.submit would take now; undefined with `noRoute` saying why. */
  readonly route: Route | undefined
  readonly noRoute?: string
  /** No routing rules at all: the first enabled link is the default route. */
  readonly defaultRoute: boolean
  readonly rules: ReadonlyArray<RuleExplanation>
  readonly link?: LinkLive
  readonly pool?: PoolLive
}

export class Operations extends Context.Service<Operations, {
  /** Every configured link and pool with its live state, caught up with the database first. */
  readonly live: Effect.Effect<{ readonly links: ReadonlyArray<LinkLive>; readonly pools: ReadonlyArray<PoolLive> }, RoutingStoreFailure>
  /** Drops the link's sessions and binds again (the link must exist). */
  readonly rebind: (linkId: string) => Effect.Effect<void, RoutingNotFound | RoutingStoreFailure | OperationsUnavailable>
  readonly testRoute: (question: RouteQuestion) => Effect.Effect<RouteAnswer, RoutingStoreFailure>
}>()("smsgw/pipeline/Operations") {
  static readonly layer = (options: { readonly callTimeoutMs: number } = { callTimeoutMs: 3_000 }) =>
    Layer.effect(Operations, make(options))
}

const messageOf = (cause: unknown): string =>
  typeof cause === "object" && cause !== null && "_tag" in cause ? String(cause._tag) : String(cause)

const make = (options: { readonly callTimeoutMs: number }) =>
  Effect.gen(function*() {
    const routing = yield* RoutingConfig
    const router = yield* Router
    const linkClient = yield* SmppLink.client
    const poolClient = yield* VirtualPool.client
    const timeout = Duration.millis(options.callTimeoutMs)

    const answered = <A, E>(effect: Effect.Effect<A, E>) =>
      effect.pipe(
        Effect.timeoutOrElse({
          duration: timeout,
          orElse: () => Effect.fail(new OperationsUnavailable({ message: `no answer within ${options.callTimeoutMs} ms` }))
        }),
        Effect.mapError((e) => e instanceof OperationsUnavailable ? e : new OperationsUnavailable({ message: messageOf(e) })),
        Effect.result
      )

    const linkLive = (link: { readonly id: string; readonly enabled: boolean }) =>
      Effect.map(answered(linkClient(link.id).Inspect()), (r): LinkLive =>
        Result.isSuccess(r)
          ? { linkId: link.id, enabled: link.enabled, state: r.success }
          : { linkId: link.id, enabled: link.enabled, state: undefined, unavailable: r.failure.message })

    const poolLive = (poolId: string) =>
      Effect.map(answered(poolClient(poolId).Inspect()), (r): PoolLive => {
        if (Result.isFailure(r)) return { poolId, state: undefined, unavailable: r.failure.message }
        const next = nextPick(r.success.members.map((m) => ({ id: m.linkId, weight: m.effectiveWeight, current: m.current })))
        return { poolId, state: r.success, ...(next !== undefined ? { nextPick: next } : {}) }
      })

    const liveOf = (snapshot: RoutingSnapshot) =>
      Effect.all({
        links: Effect.forEach(snapshot.links, linkLive, { concurrency: 8 }),
        pools: Effect.forEach(snapshot.pools, (p) => poolLive(p.id), { concurrency: 8 })
      })

    const rebind = (linkId: string) =>
      Effect.gen(function*() {
        const snapshot = yield* routing.refresh
        if (!snapshot.links.some((l) => l.id === linkId)) return yield* new RoutingNotFound({ what: "link", id: linkId })
        const outcome = yield* answered(linkClient(linkId).Rebind())
        if (Result.isFailure(outcome)) return yield* outcome.failure
      })

    const testRoute = (question: RouteQuestion) =>
      Effect.gen(function*() {
        const snapshot = yield* routing.refresh
        const request = { to: question.msisdn, appId: question.appId, orgId: question.orgId, sender: question.sender, messageClass: question.messageClass }
        const routed = yield* Effect.result(router.route(request))
        const rules = explainRoute(snapshot.routes, { ...request, msisdn: question.msisdn })
        const defaultRoute = snapshot.routes.length === 0
        if (Result.isFailure(routed)) return { route: undefined, noRoute: routed.failure.message, defaultRoute, rules } satisfies RouteAnswer
        const route = routed.success
        if (route.target._tag === "Pool") {
          return { route, defaultRoute, rules, pool: yield* poolLive(route.target.id) } satisfies RouteAnswer
        }
        const link = snapshot.links.find((l) => l.id === route.target.id)
        return {
          route,
          defaultRoute,
          rules,
          ...(link !== undefined ? { link: yield* linkLive(link) } : {})
        } satisfies RouteAnswer
      })

    return Operations.of({ live: Effect.flatMap(routing.refresh, liveOf), rebind, testRoute })
  })
