import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import { Redis } from "ioredis"
import { CounterStore } from "../../src/policy/CounterStore.ts"
import type { CounterStoreRedisOptions } from "../../src/policy/CounterStore.ts"
import { BucketState } from "../../src/policy/RecipientState.ts"
import { eventually } from "../fixtures/Eventually.ts"
import { freePort } from "../fixtures/Processes.ts"
import { redisServer } from "../fixtures/RedisServer.ts"

const redisOptions = (overrides: Partial<CounterStoreRedisOptions> = {}): CounterStoreRedisOptions => ({
  host: "127.0.0.1",
  port: 6379,
  keyPrefix: `test:pol:${crypto.randomUUID().slice(0, 8)}:`,
  // The shared Redis serves other test files at the same time: a generous timeout keeps these tests about behaviour.
  timeoutMs: 1000,
  ...overrides
})

const storeOf = (options: CounterStoreRedisOptions) =>
  Effect.map(Layer.build(CounterStore.layerRedis(options)), (context) => Context.get(context, CounterStore))

/** A raw client for looking at what the store wrote; deletes the test's keys when the test ends. */
const rawRedis = (keyPrefix?: string, port = 6379) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const client = new Redis({ host: "127.0.0.1", port, maxRetriesPerRequest: 0 })
      client.on("error", () => undefined)
      return client
    }),
    (client) =>
      Effect.promise(async () => {
        if (keyPrefix !== undefined) {
          const keys = await client.keys(`${keyPrefix}*`)
          if (keys.length > 0) await client.del(...keys)
        }
        client.disconnect()
      })
  )

const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const started = performance.now()
    const exit = yield* Effect.exit(effect)
    return { exit, ms: performance.now() - started }
  })

const failedWith = (exit: Exit.Exit<unknown, { readonly _tag: string }>) =>
  Exit.isFailure(exit) ? exit.cause.reasons.map((r) => (r._tag === "Fail" ? r.error._tag : r._tag)) : ["Success"]

/** A redis-server of the test's own which it can stop answering (SIGSTOP) and resume; killed when the test ends. */
const pausableRedis = Effect.flatMap(freePort, redisServer)

describe("CounterStore on Redis", () => {
  it.live("saves and loads state under ${keyPrefix}${recipient} whatever the bucket, in the order asked, absent as null", () =>
    Effect.gen(function*() {
      const options = redisOptions()
      const raw = yield* rawRedis(options.keyPrefix)
      const store = yield* storeOf(options)
      expect(store.persistent).toBe(true)

      // Real state, as a bucket hands it over.
      const now = Date.now()
      const state = new BucketState({ maxRecipients: 100 })
      const cap = { kind: "cap", ruleId: "c", key: "c", max: 2, window: { type: "fixed", ms: 3_600_000 } } as const
      state.decide([
        { recipient: "447700900001", now, messageId: "m1", checks: [cap] },
        { recipient: "447700900002", now, messageId: "m2", checks: [cap] },
        { recipient: "447700900002", now, messageId: "m3", checks: [cap] }
      ])
      const dirty = state.takeDirty(now)
      yield* store.save(dirty.map((d) => ({ bucket: 17, ...d })))

      expect(yield* Effect.promise(() => raw.get(`${options.keyPrefix}447700900002`))).toBe(dirty[1]!.value)
      const loaded = yield* store.load(17, ["447700900002", "447700900009", "447700900001"])
      expect(loaded).toEqual([dirty[1]!.value, null, dirty[0]!.value])
      // With another bucket count the recipient lands in another bucket: its state is still found.
      expect(yield* store.load(3, ["447700900001"])).toEqual([dirty[0]!.value])
      expect(yield* store.load(17, [])).toEqual([])
      yield* store.save([])

      // Loaded into another bucket's state, it decides on: 447700900002 has spent its 2.
      const copy = new BucketState({ maxRecipients: 100 })
      const missing = copy.missing(["447700900001", "447700900002"])
      const values = yield* store.load(17, missing)
      missing.forEach((recipient, i) => copy.load(recipient, values[i] ?? null))
      const decisions = copy.decide([
        { recipient: "447700900001", now, messageId: "m4", checks: [cap] },
        { recipient: "447700900002", now, messageId: "m5", checks: [cap] }
      ])
      expect(decisions.map((d) => d._tag)).toEqual(["Admit", "Reject"])
    }))

  it.live("sets the TTL it is given, rounded up to whole ms, and deletes for a null value", () =>
    Effect.gen(function*() {
      const options = redisOptions()
      const raw = yield* rawRedis(options.keyPrefix)
      const store = yield* storeOf(options)
      yield* store.save([
        { bucket: 1, recipient: "a", value: "long", ttlMs: 3_600_000 },
        { bucket: 1, recipient: "b", value: "short", ttlMs: 250.2 },
        { bucket: 1, recipient: "c", value: "gone soon", ttlMs: 60_000 }
      ])
      const pttl = (key: string) => Effect.promise(() => raw.pttl(`${options.keyPrefix}${key}`))
      expect(yield* pttl("a")).toBeGreaterThan(3_600_000 - 500)
      expect(yield* pttl("a")).toBeLessThanOrEqual(3_600_000)
      expect(yield* pttl("b")).toBeGreaterThan(0)
      expect(yield* pttl("b")).toBeLessThanOrEqual(251)
      // A deletion and a rewrite in one pipeline, in order: the last word for a key wins.
      yield* store.save([
        { bucket: 1, recipient: "c", value: null, ttlMs: 0 },
        { bucket: 1, recipient: "a", value: "rewritten", ttlMs: 120_000 },
        { bucket: 1, recipient: "missing", value: null, ttlMs: 0 }
      ])
      expect(yield* Effect.promise(() => raw.exists(`${options.keyPrefix}c`))).toBe(0)
      expect(yield* pttl("a")).toBeLessThanOrEqual(120_000)
      expect(yield* store.load(1, ["a", "c"])).toEqual(["rewritten", null])
      // Expired by Redis itself.
      const expired = yield* eventually("b expired by Redis", store.load(1, ["b"]), { timeout: 5_000, until: (v) => v[0] === null })
      expect(expired).toEqual([null])
    }))

  it.live("the connection is closed with the layer's scope", () =>
    Effect.gen(function*() {
      const options = redisOptions()
      yield* rawRedis(options.keyPrefix)
      const scope = yield* Scope.make()
      const store = yield* storeOf(options).pipe(Scope.provide(scope))
      yield* store.save([{ bucket: 2, recipient: "a", value: "x", ttlMs: 10_000 }])
      yield* Scope.close(scope, Exit.void)
      const after = yield* timed(store.load(2, ["a"]))
      expect(failedWith(after.exit)).toEqual(["CounterStoreUnavailable"])
      expect(after.ms).toBeLessThan(100)
    }))

  it.live("nothing listening: every call fails with CounterStoreUnavailable at once", () =>
    Effect.gen(function*() {
      const port = yield* freePort
      // The layer waits up to a second for a first connection, then starts anyway.
      const store = yield* storeOf(redisOptions({ port, timeoutMs: 50 }))
      for (let i = 0; i < 3; i++) {
        const load = yield* timed(store.load(3, ["a", "b"]))
        expect(failedWith(load.exit)).toEqual(["CounterStoreUnavailable"])
        expect(load.ms).toBeLessThan(100)
        const save = yield* timed(store.save([{ bucket: 3, recipient: "a", value: "x", ttlMs: 1000 }]))
        expect(failedWith(save.exit)).toEqual(["CounterStoreUnavailable"])
        expect(save.ms).toBeLessThan(100)
      }
    }), 15_000)

  it.live("a server that stops answering fails each call after timeoutMs, and answers again once it resumes", () =>
    Effect.gen(function*() {
      const redis = yield* pausableRedis
      const timeoutMs = 100
      const store = yield* storeOf(redisOptions({ port: redis.port, timeoutMs }))
      yield* store.save([{ bucket: 4, recipient: "a", value: "before", ttlMs: 60_000 }])
      expect(yield* store.load(4, ["a"])).toEqual(["before"])

      yield* redis.pause
      const load = yield* timed(store.load(4, ["a"]))
      expect(failedWith(load.exit)).toEqual(["CounterStoreUnavailable"])
      expect(load.ms).toBeGreaterThanOrEqual(timeoutMs - 5)
      expect(load.ms).toBeLessThan(timeoutMs + 100)
      const entries = Array.from({ length: 500 }, (_, i) => ({ bucket: 4, recipient: `r${i}`, value: "during", ttlMs: 60_000 }))
      const save = yield* timed(store.save(entries))
      expect(failedWith(save.exit)).toEqual(["CounterStoreUnavailable"])
      expect(save.ms).toBeLessThan(timeoutMs + 100)

      yield* redis.resume
      const back = yield* eventually("the store answering again", Effect.as(store.load(4, ["a"]), true), { timeout: 5_000 })
      expect(back).toBe(true)
      yield* store.save([{ bucket: 4, recipient: "a", value: "after", ttlMs: 60_000 }])
      expect(yield* store.load(4, ["a"])).toEqual(["after"])
    }), 20_000)

  it.live("fails fast while Redis is down and works again once it is back, with the same layer", () =>
    Effect.gen(function*() {
      const redis = yield* redisServer(yield* freePort)
      const store = yield* storeOf(redisOptions({ port: redis.port, timeoutMs: 200 }))
      yield* store.save([{ bucket: 5, recipient: "a", value: "x", ttlMs: 60_000 }])

      yield* redis.stop
      const down = yield* timed(store.load(5, ["a"]))
      expect(failedWith(down.exit)).toEqual(["CounterStoreUnavailable"])
      expect(down.ms).toBeLessThan(300)

      // A new server, empty: the store reconnects on its own.
      yield* redis.start
      const loaded = yield* eventually("the store reconnected to the new server", store.load(5, ["a"]), { timeout: 5_000 })
      expect(loaded).toEqual([null])
    }), 20_000)
})

describe("CounterStore in memory", () => {
  it.effect("is not persistent: loads nothing, drops writes", () =>
    Effect.gen(function*() {
      const store = yield* CounterStore
      expect(store.persistent).toBe(false)
      yield* store.save([{ bucket: 1, recipient: "a", value: "x", ttlMs: 1000 }])
      expect(yield* store.load(1, ["a", "b"])).toEqual([null, null])
    }).pipe(Effect.provide(CounterStore.layerMemory)))
})
