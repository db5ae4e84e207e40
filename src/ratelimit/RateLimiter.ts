/**
 * Stage 2 of the pipeline: L1 in-process token buckets in front of the shared L2 limits, and RateLimit headers.
 */
import { Context, Effect, Layer, Schedule, Schema } from "effect"
import type { AppLimits } from "../domain/Account.ts"
import { RateMetrics } from "../observability/Metrics.ts"
import * as Gcra from "./Gcra.ts"
import type { LimitSpec, Verdict } from "./Gcra.ts"
import { RateLimitStore } from "./RateLimitStore.ts"
import { Expected } from "../domain/Errors.ts"

/** One limit as clients see it in RateLimit-Policy: `q` units per `w` seconds. */
export interface Policy {
  readonly name: string
  readonly quota: number
  readonly windowSeconds: number
}

/** What a submission may know of its limits: every policy that applied, and where the tightest one stands. */
export interface RateInfo {
  readonly policies: ReadonlyArray<Policy>
  readonly binding: { readonly name: string; readonly remaining: number; readonly resetSeconds: number } | undefined
}

export const PolicySchema = Schema.Struct({ name: Schema.String, quota: Schema.Number, windowSeconds: Schema.Number })

export class RateLimited extends Expected(Schema.TaggedError<RateLimited>()("RateLimited", {
  /** The limit that refused. */
  policy: Schema.String,
  retryAfterSeconds: Schema.Int,
  layer: Schema.Literals(["L1", "L2"]),
  policies: Schema.Array(PolicySchema)
})) {}

/** failClosed and the shared store is unreachable: nobody may send until it is back. */
export class LimiterUnavailable extends Schema.TaggedError<LimiterUnavailable>()("LimiterUnavailable", {
  retryAfterSeconds: Schema.Int
}) {}

export interface RateQuery {
  readonly orgId: string
  readonly appId: string
  readonly appLimits: AppLimits
  /** A link id, or `pool:<id>`: the capacity of the route. */
  readonly linkId: string
  readonly linkTps: number
  readonly segments: number
}

export interface RateLimiterOptions {
  /** Limits of an app that has none of its own. */
  readonly defaultApp: AppLimits
  /** Limits of every organisation, unless `organisations` names it. */
  readonly organisation: AppLimits
  readonly organisations: Readonly<Record<string, AppLimits>>
  /** Gateway processes sharing the store: this one's L1 share of a limit is limit / nodes. */
  readonly nodes: number
  /** L1 lets through this multiple of the share (L2 is exact); with the store down the share itself. */
  readonly l1Headroom: number
  readonly onStoreFailure: "failOpen" | "failClosed"
  /** After a store failure, decisions skip the store for this long before trying it again. */
  readonly probeAfterMs: number
  /**
   * Quota leases: L2 hands out up to this many units per round trip, spent locally for `leaseMs`. Units unused when
   * the lease ends are lost (a bounded under-admission), never added (no over-admission). 1 disables leases.
   */
  readonly maxLeaseUnits: number
  readonly leaseMs: number
}

interface Limit {
  readonly policy: Policy
  readonly spec: LimitSpec
  readonly burst: number
}

const windows = [
  ["perSecond", "s", 1] as const,
  ["perMinute", "m", 60] as const,
  ["perDay", "d", 86_400] as const
]

/** The limits of one scope: per second with its burst (a tenth of a second's worth by default), per minute, per day. */
const limitsOf = (scope: string, limits: AppLimits): Array<Limit> => {
  const out: Array<Limit> = []
  for (const [field, suffix, seconds] of windows) {
    const quota = limits[field]
    if (quota === undefined) continue
    const burst = field === "perSecond" ? (limits.burst ?? Math.max(1, Math.ceil(quota / 10))) : quota
    out.push({
      // A burst above the quota (a link's two seconds of queue) is announced as what it is: more units over a longer window.
      policy: burst > quota
        ? { name: `${scope}-${suffix}`, quota: burst, windowSeconds: Math.round((seconds * burst) / quota) }
        : { name: `${scope}-${suffix}`, quota, windowSeconds: seconds },
      // The key names the limit's values: a changed limit starts a fresh bucket at once instead of inheriting
      // the old one's time debt (GCRA keeps debt in time, which means something else under a new rate).
      spec: Gcra.limitSpec(`${scope}:${suffix}:${quota}:${burst}`, { limit: quota, periodMs: seconds * 1000, burst }),
      burst
    })
  }
  return out
}

/** The same limit as a local bucket of `fraction` of the global rate and burst. */
const localShare = (limit: Limit, fraction: number): LimitSpec => ({
  key: limit.spec.key,
  emissionMs: limit.spec.emissionMs / fraction,
  capacityMs: (limit.spec.emissionMs / fraction) * Math.max(1, limit.burst * fraction)
})

const seconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000))

/**
 * Two layers: L1 buckets in this process reject obvious excess without a network call; L2 (the store: Redis in a
 * cluster, memory on one machine) decides exactly. If L2 fails, `failOpen` decides with this node's share alone and
 * `failClosed` refuses.
 */
export class RateLimiter extends Context.Service<RateLimiter, {
  readonly check: (query: RateQuery) => Effect.Effect<RateInfo, RateLimited | LimiterUnavailable>
}>()("smsgw/ratelimit/RateLimiter") {
  static readonly layer = (options: RateLimiterOptions) =>
    Layer.effect(
      RateLimiter,
      Effect.gen(function*() {
        const store = yield* RateLimitStore
        const metrics = yield* RateMetrics
        const l1 = new Map<string, number>()
        const fallback = new Map<string, number>()
        let downUntil = 0
        const share = 1 / options.nodes
        const leases = new WeakMap<object, { units: number; until: number; verdict: Verdict }>()
        const fetching = new WeakSet<object>()
        // The store's round-trip latency, sampled once a second rather than timed on every decision.
        yield* store.stats.pipe(
          Effect.tap((s) => Effect.sync(() => s.roundTrips > 0 && metrics.storeLatency(s.lastLatencyMs / 1000))),
          Effect.repeat(Schedule.spaced("1 second")),
          Effect.forkScoped
        )

        const local = (state: Map<string, number>, limits: ReadonlyArray<LimitSpec>, now: number): Verdict => {
          if (state.size > 100_000) {
            const t = Gcra.ticksOf(now)
            for (const [key, tat] of state) if (tat < t) state.delete(key)
          }
          return Gcra.decide(state, { limits, cost: 1 }, now)
        }

        interface Compiled {
          readonly limits: ReadonlyArray<Limit>
          readonly specs: ReadonlyArray<LimitSpec>
          readonly l1: ReadonlyArray<LimitSpec>
          readonly fallback: ReadonlyArray<LimitSpec>
          readonly policies: ReadonlyArray<Policy>
          /** Units taken from L2 at once (1 = exact per message): at most 5 % of this node's share of any quota. */
          readonly leaseUnits: number
        }
        // The limits of a (app limits, organisation, route, size) are built once: the hot path is a map lookup.
        const compiled = new WeakMap<AppLimits, Map<string, Compiled>>()
        const compile = (q: RateQuery): Compiled => {
          const app = Object.keys(q.appLimits).length > 0 ? q.appLimits : options.defaultApp
          const org = options.organisations[q.orgId] ?? options.organisation
          const scope = q.linkId.startsWith("pool:") ? q.linkId : `link:${q.linkId}`
          // A link may queue up to two seconds of its rate; beyond that clients get 429, not an unbounded queue.
          const link = q.linkTps > 0 ? limitsOf(scope, { perSecond: q.linkTps, burst: Math.max(1, Math.ceil(q.linkTps * 2)) }) : []
          // A link's rate counts parts: a message of n parts weighs n (and fits an idle link even above its burst).
          const weighted = link.map((l) => ({
            ...l,
            spec: {
              ...l.spec,
              emissionMs: l.spec.emissionMs * q.segments,
              capacityMs: Math.max(l.spec.capacityMs, l.spec.emissionMs * q.segments)
            }
          }))
          const limits = [...limitsOf(`app:${q.appId}`, app), ...limitsOf(`org:${q.orgId}`, org), ...weighted]
          return {
            limits,
            specs: limits.map((l) => l.spec),
            l1: limits.map((l) => localShare(l, Math.min(1, share * options.l1Headroom))),
            fallback: limits.map((l) => localShare(l, share)),
            policies: limits.map((l) => l.policy),
            leaseUnits: Math.max(1, Math.min(
              options.maxLeaseUnits,
              ...limits.map((l) => Math.floor((l.policy.quota * share) / 20 / (l.spec.key.startsWith("link:") || l.spec.key.startsWith("pool:") ? q.segments : 1)))
            ))
          }
        }
        const limitsFor = (q: RateQuery): Compiled => {
          let byKey = compiled.get(q.appLimits)
          if (byKey === undefined) {
            byKey = new Map()
            compiled.set(q.appLimits, byKey)
          }
          const key = `${q.appId}|${q.orgId}|${q.linkId}|${q.linkTps}|${q.segments}`
          let found = byKey.get(key)
          if (found === undefined) {
            if (byKey.size > 10_000) byKey.clear()
            found = compile(q)
            byKey.set(key, found)
          }
          return found
        }

        const info = (c: Compiled, verdict: Verdict): RateInfo => {
          const binding = c.limits[verdict.limitIndex]
          return {
            policies: c.policies,
            binding: binding === undefined
              ? undefined
              : { name: binding.policy.name, remaining: verdict.remaining, resetSeconds: Math.ceil(verdict.resetMs / 1000) }
          }
        }

        const rejected = (c: Compiled, verdict: Verdict, layer: "L1" | "L2"): Effect.Effect<never, RateLimited> => {
          metrics.decision(layer, "rejected")
          return Effect.fail(new RateLimited({
            policy: c.limits[verdict.limitIndex]?.policy.name ?? "",
            retryAfterSeconds: seconds(verdict.retryAfterMs),
            layer,
            policies: c.policies
          }))
        }

        const degraded = (c: Compiled, now: number): Effect.Effect<RateInfo, RateLimited | LimiterUnavailable> => {
          if (options.onStoreFailure === "failClosed") {
            metrics.decision("L2", "unavailable")
            return Effect.fail(new LimiterUnavailable({ retryAfterSeconds: seconds(downUntil - now) }))
          }
          metrics.failOpen()
          const verdict = local(fallback, c.fallback, now)
          if (!verdict.allowed) return rejected(c, verdict, "L1")
          metrics.decision("L1", "allowed")
          return Effect.succeed(info(c, verdict))
        }

        const check = (q: RateQuery): Effect.Effect<RateInfo, RateLimited | LimiterUnavailable> =>
          Effect.suspend(() => {
            const c = limitsFor(q)
            if (c.limits.length === 0) return Effect.succeed<RateInfo>({ policies: [], binding: undefined })
            const now = Date.now()
            const first = local(l1, c.l1, now)
            if (!first.allowed) return rejected(c, first, "L1")
            if (now < downUntil) return degraded(c, now)
            // A live lease pays for this message without a round trip.
            const lease = leases.get(c)
            if (lease !== undefined && lease.units > 0 && now < lease.until) {
              lease.units--
              metrics.decision("L2", "allowed")
              return Effect.succeed(info(c, { ...lease.verdict, remaining: lease.verdict.remaining + lease.units }))
            }
            // L1 counts only what gets through, and holds nothing while L2 decides: with a slow store, messages in
            // flight that L2 then refuses would otherwise fill L1 and crowd out ones L2 would admit (under-admission
            // measured at ~10 % with three nodes on two busy cores). It is charged again once L2 admits.
            Gcra.refund(l1, { limits: c.l1, cost: 1 })
            const charge = Effect.sync(() => {
              local(l1, c.l1, Date.now())
            })
            const decideOnce = (cost: number) => store.decide([{ limits: c.specs, cost }])
            // Ask for a lease; if the limits cannot spare it, ask for this one message exactly. One lease at a time per
            // node and limits: a message arriving while one is being fetched asks for itself alone, so the units a
            // node holds unspent (lost if traffic stops) stay below one lease.
            const decision = c.leaseUnits === 1 || fetching.has(c)
              ? decideOnce(1)
              : Effect.suspend(() => {
                fetching.add(c)
                return decideOnce(c.leaseUnits)
              }).pipe(
                Effect.ensuring(Effect.sync(() => fetching.delete(c))),
                Effect.flatMap((verdicts) => {
                  const v = verdicts[0]
                  if (v !== undefined && v.allowed) {
                    // Units still held add up (every one is paid for in L2) instead of being overwritten.
                    const held = leases.get(c)
                    const spare = held !== undefined && Date.now() < held.until ? held.units : 0
                    leases.set(c, { units: spare + c.leaseUnits - 1, until: now + options.leaseMs, verdict: v })
                    return Effect.succeed(verdicts)
                  }
                  return decideOnce(1)
                })
              )
            return decision.pipe(
              Effect.matchEffect({
                onFailure: (error): Effect.Effect<RateInfo, RateLimited | LimiterUnavailable> => {
                  const firstFailure = downUntil < now
                  downUntil = Date.now() + options.probeAfterMs
                  if (!firstFailure) return degraded(c, now)
                  metrics.storeDown()
                  return Effect.logWarning("rate-limit store unavailable").pipe(
                    Effect.annotateLogs({ error: error.message, mode: options.onStoreFailure }),
                    Effect.andThen(degraded(c, now))
                  )
                },
                onSuccess: ([verdict]): Effect.Effect<RateInfo, RateLimited | LimiterUnavailable> => {
                  if (verdict === undefined) return degraded(c, now)
                  if (!verdict.allowed) return rejected(c, verdict, "L2")
                  metrics.decision("L2", "allowed")
                  return Effect.as(charge, info(c, verdict))
                }
              })
            )
          })

        return RateLimiter.of({ check })
      })
    )
}

/** The headers of a refusal: the policies, and the refusing one with nothing left until Retry-After. */
export const refusalInfo = (error: RateLimited): RateInfo => ({
  policies: error.policies,
  binding: { name: error.policy, remaining: 0, resetSeconds: error.retryAfterSeconds }
})

/** RateLimit-Policy and RateLimit header values (draft-ietf-httpapi-ratelimit-headers, structured fields). */
export const rateLimitHeaders = (rate: RateInfo): Record<string, string> => {
  if (rate.policies.length === 0) return {}
  const headers: Record<string, string> = {
    "ratelimit-policy": rate.policies.map((p) => `"${p.name}";q=${p.quota};w=${p.windowSeconds}`).join(", ")
  }
  if (rate.binding !== undefined) {
    headers.ratelimit = `"${rate.binding.name}";r=${rate.binding.remaining};t=${rate.binding.resetSeconds}`
  }
  return headers
}
