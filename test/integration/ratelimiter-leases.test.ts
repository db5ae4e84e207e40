import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Layer } from "effect"
import { RateMetrics } from "../../src/observability/Metrics.ts"
import { RateLimiter } from "../../src/ratelimit/RateLimiter.ts"
import { RateLimitStore } from "../../src/ratelimit/RateLimitStore.ts"

const limiter = (maxLeaseUnits: number) =>
  RateLimiter.layer({
    defaultApp: {},
    organisation: {},
    organisations: {},
    nodes: 1,
    l1Headroom: 2,
    onStoreFailure: "failOpen",
    probeAfterMs: 1000,
    maxLeaseUnits,
    // Long enough that no lease lapses while the test runs, however slow a shared machine is at that moment.
    leaseMs: 60_000
  }).pipe(Layer.provideMerge(Layer.mergeAll(RateLimitStore.layerMemory, RateMetrics.layer)))

const query = (appLimits: object) => ({
  orgId: "org",
  appId: "app",
  appLimits,
  linkId: "link",
  linkTps: 100_000,
  segments: 1
})

describe("quota leases", () => {
  it.live("most decisions spend a lease instead of asking the store, and a lease never admits more than the limit", () =>
    Effect.gen(function*() {
      const rate = yield* RateLimiter
      const store = yield* RateLimitStore
      const appLimits = { perMinute: 1_000 }
      const started = Date.now()
      const exits = yield* Effect.forEach(Array.from({ length: 1_500 }), () => Effect.exit(rate.check(query(appLimits))))
      const elapsedMs = Date.now() - started
      const allowed = exits.filter(Exit.isSuccess).length
      // 5 % of 1,000 per lease: 50 units; the last lease may be cut short by the limit, never exceeded. The limit is
      // GCRA's: the burst of 1,000 plus one unit per 60 ms that passes while the test runs (a slow machine's share).
      expect(allowed).toBeLessThanOrEqual(1_000 + Math.floor(elapsedMs / 60))
      expect(allowed).toBeGreaterThanOrEqual(950)
      const stats = yield* store.stats
      expect(stats.decisions).toBeLessThan(100)
    }).pipe(Effect.provide(limiter(50))))

  it.live("with leases off every decision asks the store and admits exactly the limit", () =>
    Effect.gen(function*() {
      const rate = yield* RateLimiter
      const store = yield* RateLimitStore
      const appLimits = { perMinute: 300 }
      const exits = yield* Effect.forEach(Array.from({ length: 500 }), () => Effect.exit(rate.check(query(appLimits))))
      expect(exits.filter(Exit.isSuccess)).toHaveLength(300)
      // Refused by L1 or L2, every allowed one asked the store once.
      expect((yield* store.stats).decisions).toBeGreaterThanOrEqual(300)
    }).pipe(Effect.provide(limiter(1))))
})
