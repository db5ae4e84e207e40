/**
 * Routing of one message: the first matching rule's target (a link or a pool), from the live routing snapshot.
 */
import { Context, Effect, Layer } from "effect"
import { NoRoute } from "../domain/Errors.ts"
import { linkDefaults } from "./Links.ts"
import type { Target } from "./Target.ts"
import { targetOfKey } from "./Target.ts"
import type { RoutingSnapshot } from "./RoutingConfig.ts"
import { RoutingConfig } from "./RoutingConfig.ts"
import type { MessageClass } from "../domain/Policy.ts"
import type { CompiledRules } from "./Rules.ts"
import { compileRules } from "./Rules.ts"

export interface RouteRequest {
  readonly to: string
  readonly appId: string | null
  readonly orgId: string | null
  readonly sender: string | null
  readonly messageClass?: MessageClass | undefined
}

export interface Route {
  readonly target: Target
  /** Parts per second the target can send: a link's tps, or the sum over a pool's enabled members. */
  readonly capacityTps: number
  /** UDH reference size, for counting segments the way the link will cut them. */
  readonly referenceBits: 8 | 16
  readonly ruleId: string | undefined
}

/**
 * Stage 4: which link or pool takes a message. Routing rules (ordered, first match wins) from the live routing
 * configuration; with no rules at all, the first enabled link is the default route.
 */
export class Router extends Context.Service<Router, {
  readonly route: (request: RouteRequest) => Effect.Effect<Route, NoRoute>
  /** The route of a stored target (`pool:<id>` or a link id), for re-driving a message. */
  readonly target: (key: string) => Effect.Effect<Route, NoRoute>
}>()("smsgw/routing/Router") {
  static readonly layer = Layer.effect(
    Router,
    Effect.gen(function*() {
      const routing = yield* RoutingConfig
      let compiledVersion = -1
      let compiled: CompiledRules = compileRules([])

      const routeTo = (snapshot: RoutingSnapshot, target: Target, ruleId: string | undefined): Route | undefined => {
        if (target._tag === "Link") {
          const link = snapshot.links.find((l) => l.id === target.id)
          if (link === undefined) return undefined
          const d = linkDefaults(link)
          return { target, capacityTps: d.tps, referenceBits: d.udhReferenceBits, ruleId }
        }
        const pool = snapshot.pools.find((p) => p.id === target.id)
        if (pool === undefined) return undefined
        const members = pool.members.flatMap((m) => snapshot.links.filter((l) => l.id === m.link && l.enabled))
        const capacityTps = members.reduce((sum, l) => sum + linkDefaults(l).tps, 0)
        const referenceBits = members.length > 0 && members.every((l) => linkDefaults(l).udhReferenceBits === 16) ? 16 : 8
        return { target, capacityTps, referenceBits, ruleId }
      }

      const route = (request: RouteRequest) =>
        Effect.suspend(() => {
          const snapshot = routing.current()
          if (snapshot.routes.length === 0) {
            const first = snapshot.links.find((l) => l.enabled)
            const found = first === undefined ? undefined : routeTo(snapshot, { _tag: "Link", id: first.id }, undefined)
            return found === undefined ? Effect.fail(new NoRoute({ message: "no enabled link is configured" })) : Effect.succeed(found)
          }
          if (compiledVersion !== snapshot.version) {
            compiled = compileRules(snapshot.routes)
            compiledVersion = snapshot.version
          }
          const decision = compiled.resolve({
            msisdn: request.to,
            appId: request.appId,
            orgId: request.orgId,
            sender: request.sender,
            messageClass: request.messageClass ?? null
          })
          if (decision === undefined) return Effect.fail(new NoRoute({ message: `no routing rule matches +${request.to}` }))
          const target: Target = "pool" in decision.target
            ? { _tag: "Pool", id: decision.target.pool }
            : { _tag: "Link", id: decision.target.link }
          const found = routeTo(snapshot, target, decision.ruleId)
          return found === undefined
            ? Effect.fail(new NoRoute({ message: `rule ${decision.ruleId} targets ${target.id}, which does not exist` }))
            : Effect.succeed(found)
        })

      const target = (key: string) =>
        Effect.suspend(() => {
          const found = routeTo(routing.current(), targetOfKey(key), undefined)
          return found === undefined ? Effect.fail(new NoRoute({ message: `${key} is not configured` })) : Effect.succeed(found)
        })

      return Router.of({ route, target })
    })
  )
}
