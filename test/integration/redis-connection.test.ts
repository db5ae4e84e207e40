import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer } from "effect"
import { CounterStore } from "../../src/policy/CounterStore.ts"
import { RateLimitStore } from "../../src/ratelimit/RateLimitStore.ts"
import * as Gcra from "../../src/ratelimit/Gcra.ts"
import { RedisConnection } from "../../src/storage/RedisConnection.ts"
import { freePort } from "../fixtures/Processes.ts"
import { redisServer } from "../fixtures/RedisServer.ts"

const timed = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const started = performance.now()
    const exit = yield* Effect.exit(effect)
    return { exit, ms: performance.now() - started }
  })

describe("RedisConnection shared by two stores", () => {
  it.live("each store keeps its own deadline on the one connection", () =>
    Effect.gen(function*() {
      const redis = yield* redisServer(yield* freePort)
      const prefix = `test:shared:${crypto.randomUUID().slice(0, 8)}:`
      const Connection = RedisConnection.layer({ host: "127.0.0.1", port: redis.port, commandTimeoutMs: 5000, connectTimeoutMs: 1000 })
      const context = yield* Layer.build(Layer.mergeAll(
        RateLimitStore.layerOn({ keyPrefix: `${prefix}rl:`, timeoutMs: 50 }),
        CounterStore.layerOn({ keyPrefix: `${prefix}pol:`, timeoutMs: 400 })
      ).pipe(Layer.provide(Connection)))
      const limits = Context.get(context, RateLimitStore)
      const counters = Context.get(context, CounterStore)
      const decide = limits.decide([{ cost: 1, limits: [Gcra.limitSpec("a", { limit: 10, periodMs: 1000, burst: 10 })] }])
      expect(Exit.isSuccess((yield* timed(decide)).exit)).toBe(true)
      expect(Exit.isSuccess((yield* timed(counters.load(0, ["+491"]))).exit)).toBe(true)

      yield* redis.pause
      const [limited, counted] = yield* Effect.all([timed(decide), timed(counters.load(0, ["+491"]))], { concurrency: 2 })
      yield* redis.resume
      expect(Exit.isFailure(limited.exit) && Exit.isFailure(counted.exit)).toBe(true)
      // Neither the connection's 5 s nor the other store's deadline: each its own.
      expect(limited.ms).toBeLessThan(250)
      expect(counted.ms).toBeGreaterThanOrEqual(395)
      expect(counted.ms).toBeLessThan(1500)
    }).pipe(Effect.scoped), 30_000)
})
