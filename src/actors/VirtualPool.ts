/**
 * The VirtualPool entity: a pool's members, their weights, health and rates, and smooth weighted round-robin picks.
 */
import { Effect, Stream } from "effect"
import { Entity } from "effect/cluster"
import { Rpc } from "effect/rpc"
import { linkDefaults } from "../routing/Links.ts"
import { PoolMetrics } from "../observability/Metrics.ts"
import type { RoutingSnapshot } from "../routing/RoutingConfig.ts"
import { RoutingConfig } from "../routing/RoutingConfig.ts"
import { makeSwrr } from "../routing/Swrr.ts"
import { ActorRegistry } from "./ActorRegistry.ts"
import type { HealthState, PoolState } from "./VirtualPoolProtocol.ts"
import { VirtualPool } from "./VirtualPoolProtocol.ts"
import { logsAs } from "../observability/Logging.ts"

interface MemberHealth {
  readonly state: HealthState
  readonly currentTps: number
  readonly at: number
}

/** How much of its configured weight a member in this state gets. */
const stateFactor: Record<HealthState, number> = { bound: 1, throttled: 1, degraded: 0.5, unbound: 0, disabled: 0 }

const makePool = Effect.gen(function*() {
  const address = yield* Entity.CurrentAddress
  const poolId = address.entityId
  const routing = yield* RoutingConfig
  const metrics = yield* PoolMetrics
  const health = new Map<string, MemberHealth>()
  const swrr = makeSwrr([])
  let picks = 0
  let configured: Array<{ linkId: string; weight: number; configuredTps: number; enabled: boolean }> = []

  /** Weight = configured weight (default: the link's tps) × how much of its configured rate it may send now. */
  const effectiveWeight = (m: (typeof configured)[number]) => {
    if (!m.enabled) return 0
    const h = health.get(m.linkId)
    // A member not heard from yet is taken at its word: binds report within a second of start.
    if (h === undefined) return m.weight
    const rateFactor = m.configuredTps > 0 ? Math.min(1, h.currentTps / m.configuredTps) : 1
    return m.weight * stateFactor[h.state] * rateFactor
  }

  const reweigh = () => {
    swrr.setWeights(configured.map((m) => ({ id: m.linkId, weight: effectiveWeight(m) })))
    for (const m of configured) metrics.member(poolId, m.linkId, effectiveWeight(m))
  }

  const load = (snapshot: RoutingSnapshot) => {
    const pool = snapshot.pools.find((p) => p.id === poolId)
    configured = (pool?.members ?? []).flatMap((member) => {
      const link = snapshot.links.find((l) => l.id === member.link)
      if (link === undefined) return []
      const tps = linkDefaults(link).tps
      return [{ linkId: link.id, weight: member.weight ?? tps, configuredTps: tps, enabled: link.enabled }]
    })
    reweigh()
  }

  load(routing.current())
  // A live change of members or weights applies at the next pick, without restart.
  yield* routing.changes.pipe(Stream.runForEach((snapshot) => Effect.sync(() => load(snapshot))), Effect.forkScoped)
  yield* (yield* ActorRegistry).register("VirtualPool", poolId)
  yield* Effect.logInfo("pool actor started").pipe(Effect.annotateLogs({ poolId, members: configured.length }))

  const inspect = Effect.sync((): PoolState => {
    const current = new Map(swrr.snapshot().map((e) => [e.id, e.current]))
    return {
      poolId,
      picks,
      members: configured.map((m) => {
        const h = health.get(m.linkId)
        return {
          linkId: m.linkId,
          configuredWeight: m.weight,
          effectiveWeight: effectiveWeight(m),
          current: current.get(m.linkId) ?? 0,
          state: m.enabled ? (h?.state ?? "bound") : "disabled",
          currentTps: h?.currentTps ?? m.configuredTps
        }
      })
    }
  })

  return VirtualPool.of({
    Pick: ({ payload }) =>
      Effect.sync(() => {
        const excluded = payload.exclude.length === 0 ? undefined : new Set(payload.exclude)
        const chosen = swrr.pickBatch(payload.count, excluded === undefined ? undefined : (id) => !excluded.has(id))
        picks += chosen.length
        return chosen
      }),
    ReportHealth: ({ payload }) =>
      Effect.sync(() => {
        const previous = health.get(payload.linkId)
        // Persisted messages may arrive late or twice: an older report never replaces a newer one.
        if (previous !== undefined && previous.at > payload.at) return
        health.set(payload.linkId, { state: payload.state, currentTps: payload.currentTps, at: payload.at })
        reweigh()
      }),
    Inspect: () => inspect.pipe(Rpc.fork)
  })
})

/** Its lines log under `module=link`, with the links'. */
export const layer = VirtualPool.toLayer(makePool.pipe(logsAs("link")), { concurrency: 1 })

/** The pools a link belongs to, as the link reports its health to them. */
export const poolsOf = (snapshot: RoutingSnapshot, linkId: string): ReadonlyArray<string> =>
  snapshot.pools.filter((p) => p.members.some((m) => m.link === linkId)).map((p) => p.id)
