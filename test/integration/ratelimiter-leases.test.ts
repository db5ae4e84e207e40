import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Layer } from "effect"
import { RateMetrics } from "../../src/observability/Metrics.ts"
import { RateLimiter } from "../../src/ratelimit/RateLimiter.ts"
import { RateLimitStore } from "../../src/ratelimit/RateLimitStore.ts"

const limiterOn = (maxLeaseUnits: number, store: Layer.Layer<RateLimitStore>) =>
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
  }).pipe(Layer.provideMerge(Layer.mergeAll(store, RateMetrics.layer)))

const limiter = (maxLeaseUnits: number) => limiterOn(maxLeaseUnits, RateLimitStore.layerMemory)

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

  it.live("messages arriving together fetch one lease, not one each: nothing is lost to overlapping leases (Redis)", () =>
    Effect.gen(function*() {
      const rate = yield* RateLimiter
      const appLimits = { perMinute: 1_000 }
      // 300 at once: every one finds no lease while the first round trip to Redis is out.
      const started = Date.now()
      const wave = yield* Effect.forEach(Array.from({ length: 300 }), () => Effect.exit(rate.check(query(appLimits))), {
        concurrency: "unbounded"
      })
      expect(wave.filter(Exit.isSuccess)).toHaveLength(300)
      const rest = yield* Effect.forEach(Array.from({ length: 1_000 }), () => Effect.exit(rate.check(query(appLimits))))
      const allowed = 300 + rest.filter(Exit.isSuccess).length
      const elapsedMs = Date.now() - started
      // At most one lease (50 units) is left unspent; the limit is never passed.
      expect(allowed).toBeGreaterThanOrEqual(950)
      expect(allowed).toBeLessThanOrEqual(1_000 + Math.floor(elapsedMs / 60))
    }).pipe(Effect.provide(limiterOn(50, RateLimitStore.layerRedis({
      host: "127.0.0.1",
      port: 6379,
      keyPrefix: `smsgw:test:leases:${crypto.randomUUID().slice(0, 8)}:`,
      timeoutMs: 2_000
    })))))
})
