import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Exit, Fiber, Layer } from "effect"
import type { Scope } from "effect"
import { TestClock } from "effect/testing"
import { Redis } from "ioredis"
import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import * as Gcra from "../../src/ratelimit/Gcra.ts"
import type { LimitSpec, Verdict } from "../../src/ratelimit/Gcra.ts"
import { RateLimitStore } from "../../src/ratelimit/RateLimitStore.ts"
import type { RedisStoreOptions } from "../../src/ratelimit/RateLimitStore.ts"
import { eventually } from "../fixtures/Eventually.ts"
import { freePort } from "../fixtures/Processes.ts"

const prefix = () => `test:rl:${crypto.randomUUID().slice(0, 8)}:`

const redisOptions = (overrides: Partial<RedisStoreOptions> = {}): RedisStoreOptions => ({
  host: "127.0.0.1",
  port: 6379,
  keyPrefix: prefix(),
  // The shared Redis serves other test files at the same time: a generous timeout keeps this suite about behaviour.
  timeoutMs: 1000,
  ...overrides
})

const range = (n: number) => Array.from({ length: n }, (_, i) => i)

/** `n` concurrent calls of one decision each, as many HTTP requests would make them. */
const fire = (n: number, limits: ReadonlyArray<LimitSpec>, cost = 1) =>
  Effect.flatMap(RateLimitStore, (store) =>
    Effect.forEach(range(n), () => Effect.map(store.decide([{ limits, cost }]), (verdicts) => verdicts[0]!), {
      concurrency: "unbounded"
    }))

const allowed = (verdicts: ReadonlyArray<Verdict>) => verdicts.filter((v) => v.allowed).length

const perMinute = (key: string, limit: number) => Gcra.limitSpec(key, { limit, periodMs: 60_000, burst: limit })

interface Backend {
  readonly test: (name: string, self: () => Effect.Effect<void, unknown, Scope.Scope>, timeout?: number) => void
  readonly layer: () => Layer.Layer<RateLimitStore>
  /** Let time pass: TestClock in memory, the real clock in Redis. */
  readonly wait: (ms: number) => Effect.Effect<void>
}

const suite = (name: string, backend: Backend) =>
  describe(`RateLimitStore on ${name}`, () => {
    const test = (title: string, body: Effect.Effect<void, unknown, RateLimitStore | Scope.Scope>) =>
      backend.test(title, () => body.pipe(Effect.provide(backend.layer())), 15_000)

    test("500 concurrent decisions on a burst of 10 allow exactly 10", Effect.gen(function*() {
      const verdicts = yield* fire(500, [perMinute("burst", 10)])
      expect(allowed(verdicts)).toBe(10)
      for (const v of verdicts.filter((v) => !v.allowed)) {
        expect(v.retryAfterMs).toBeGreaterThan(0)
        expect(v.retryAfterMs).toBeLessThanOrEqual(6000)
        expect(v).toMatchObject({ limitIndex: 0, remaining: 0 })
      }
      expect(verdicts.filter((v) => v.allowed).map((v) => v.remaining).sort((a, b) => a - b)).toEqual(range(10))
    }))

    test("refills at the rate: 2.5 emissions later, exactly 2 more", Effect.gen(function*() {
      const limit = Gcra.limitSpec("refill", { limit: 5, periodMs: 1000, burst: 3 })
      expect(allowed(yield* fire(50, [limit]))).toBe(3)
      yield* backend.wait(500)
      // Redis: exact unless more than 100 ms pass between the two bursts' server clocks beyond the wait.
      expect(allowed(yield* fire(50, [limit]))).toBe(2)
    }))

    test("is all or nothing across the limits of a decision", Effect.gen(function*() {
      const wide = perMinute("wide", 50)
      const narrow = perMinute("narrow", 5)
      expect(allowed(yield* fire(100, [wide, narrow]))).toBe(5)
      // The 95 refused by `narrow` did not spend `wide`.
      expect(allowed(yield* fire(100, [wide]))).toBe(45)
      // Refused by `wide` now, so `narrow` (refilled by nothing) is still at 0 and `other` untouched.
      const other = perMinute("other", 5)
      const refused = yield* fire(10, [other, wide])
      expect(allowed(refused)).toBe(0)
      expect(refused[0]).toMatchObject({ allowed: false, limitIndex: 1 })
      expect(allowed(yield* fire(10, [other]))).toBe(5)
    }))

    test("the decisions of one call apply in order and see each other", Effect.gen(function*() {
      const store = yield* RateLimitStore
      const limit = perMinute("ordered", 3)
      const verdicts = yield* store.decide([
        { limits: [limit], cost: 2 },
        { limits: [limit], cost: 2 },
        { limits: [limit], cost: 1 },
        { limits: [], cost: 1 },
        { limits: [limit], cost: 1 }
      ])
      expect(verdicts.map((v) => v.allowed)).toEqual([true, false, true, true, false])
      expect(verdicts.map((v) => v.remaining)).toEqual([1, 1, 0, Infinity, 0])
      expect(verdicts[3]?.limitIndex).toBe(-1)
      expect(yield* store.decide([])).toEqual([])
    }))

    test("remaining, reset and retryAfter describe the binding limit", Effect.gen(function*() {
      const store = yield* RateLimitStore
      const second = Gcra.limitSpec("s", { limit: 2, periodMs: 1000, burst: 1 })
      const minute = perMinute("m", 10)
      const [first] = yield* store.decide([{ limits: [minute, second], cost: 1 }])
      expect(first).toEqual({ allowed: true, retryAfterMs: 0, limitIndex: 1, remaining: 0, resetMs: 500 })
      const [refused] = yield* store.decide([{ limits: [minute, second], cost: 1 }])
      expect(refused).toMatchObject({ allowed: false, limitIndex: 1, remaining: 0 })
      expect(refused!.retryAfterMs).toBeGreaterThan(400)
      expect(refused!.retryAfterMs).toBeLessThanOrEqual(500)
      expect(refused!.resetMs).toBe(refused!.retryAfterMs)
      yield* backend.wait(refused!.retryAfterMs)
      const [again] = yield* store.decide([{ limits: [minute, second], cost: 1 }])
      expect(again).toMatchObject({ allowed: true })
      // A cost that can never fit is refused with the wait the emptied limit would need.
      const [never] = yield* store.decide([{ limits: [perMinute("small", 2)], cost: 3 }])
      expect(never).toMatchObject({ allowed: false, retryAfterMs: 30_000, remaining: 2, resetMs: 0 })
    }))

    test("an idle limit is full again after its capacity has passed", Effect.gen(function*() {
      const limit = Gcra.limitSpec("idle", { limit: 10, periodMs: 1000, burst: 4 })
      expect(allowed(yield* fire(20, [limit]))).toBe(4)
      yield* backend.wait(450)
      const [v] = yield* fire(1, [limit])
      expect(v).toMatchObject({ allowed: true, remaining: 3, resetMs: 100 })
    }))

    test("stats count the decisions", Effect.gen(function*() {
      const store = yield* RateLimitStore
      yield* fire(30, [perMinute("count", 5)])
      const stats = yield* store.stats
      expect(stats.decisions).toBe(30)
      expect(stats.failures).toBe(0)
      expect(stats.roundTrips).toBeGreaterThan(0)
      expect(yield* store.health).toBe(true)
    }))
  })

suite("memory", {
  test: (name, self, timeout) => it.effect(name, self, timeout),
  layer: () => RateLimitStore.layerMemory,
  wait: (ms) => TestClock.adjust(ms)
})

suite("Redis", {
  test: (name, self, timeout) => it.live(name, self, timeout),
  layer: () => RateLimitStore.layerRedis(redisOptions()),
  wait: (ms) => Effect.sleep(ms)
})

/** A raw client for looking at what the store wrote. */
const rawRedis = (port = 6379) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const client = new Redis({ host: "127.0.0.1", port, maxRetriesPerRequest: 0 })
      client.on("error", () => undefined)
      return client
    }),
    (client) => Effect.sync(() => client.disconnect())
  )

const storeOf = (options: RedisStoreOptions) =>
  Effect.map(Layer.build(RateLimitStore.layerRedis(options)), (context) => Context.get(context, RateLimitStore))

/** A redis-server of the test's own, which it may kill, stop (SIGSTOP) and start again on the same port. */
const ownRedis = Effect.gen(function*() {
  const port = yield* freePort
  let child: ChildProcess | undefined
  const exited = (c: ChildProcess) => c.exitCode !== null || c.signalCode !== null
  const kill = Effect.callback<void>((resume) => {
    const current = child
    if (current === undefined || exited(current)) return resume(Effect.void)
    current.once("exit", () => resume(Effect.void))
    current.kill("SIGKILL")
  })
  const start = Effect.gen(function*() {
    child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
      stdio: "ignore"
    })
    const probe = yield* rawRedis(port)
    yield* eventually(`redis-server on ${port} answering`, Effect.promise(() => probe.ping().then(() => true, () => false)), { timeout: 5_000 })
  }).pipe(Effect.scoped)
  const signal = (name: "SIGSTOP" | "SIGCONT") => Effect.sync(() => child?.kill(name))
  yield* Effect.addFinalizer(() => kill)
  yield* start
  return { port, start, kill, pause: signal("SIGSTOP"), resume: signal("SIGCONT") }
})

const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const started = performance.now()
    const exit = yield* Effect.exit(effect)
    return { exit, ms: performance.now() - started }
  })

const failedWith = (exit: Exit.Exit<unknown, { readonly _tag: string }>) =>
  Exit.isFailure(exit) ? exit.cause.reasons.map((r) => (r._tag === "Fail" ? r.error._tag : r._tag)) : []

describe("RateLimitStore on Redis, only", () => {
  it.live("keys carry the prefix, hold the TAT and expire shortly after the limit is full again", () =>
    Effect.gen(function*() {
      const options = redisOptions()
      const store = yield* storeOf(options)
      const raw = yield* rawRedis()
      const limit = Gcra.limitSpec("ttl", { limit: 1, periodMs: 10_000, burst: 3 })
      yield* store.decide([{ limits: [limit], cost: 2 }])
      const pttl = yield* Effect.promise(() => raw.pttl(`${options.keyPrefix}ttl`))
      // Full again in 20 s; the key lives one second longer.
      expect(pttl).toBeGreaterThan(20_000)
      expect(pttl).toBeLessThanOrEqual(21_000)
      const stored = Number(yield* Effect.promise(() => raw.get(`${options.keyPrefix}ttl`)))
      const now = Gcra.ticksOf(Date.now())
      expect(Math.abs(stored - now - 20_000 * Gcra.TICKS_PER_MS)).toBeLessThan(1000 * Gcra.TICKS_PER_MS)
      // A refusal writes nothing.
      yield* store.decide([{ limits: [limit], cost: 2 }])
      expect(yield* Effect.promise(() => raw.get(`${options.keyPrefix}ttl`))).toBe(String(stored))
      const short = Gcra.limitSpec("short", { limit: 10, periodMs: 1000, burst: 1 })
      yield* store.decide([{ limits: [short], cost: 1 }])
      expect(yield* Effect.promise(() => raw.pttl(`${options.keyPrefix}short`))).toBeLessThanOrEqual(1100)
      const exists = Effect.promise(() => raw.exists(`${options.keyPrefix}short`))
      expect(yield* eventually("the short key expired by Redis", exists, { timeout: 5_000, until: (n) => n === 0 })).toBe(0)
    }))

  it.live("1000 concurrent calls share a few round trips, none larger than maxBatch", () =>
    Effect.gen(function*() {
      const store = yield* storeOf(redisOptions({ maxBatch: 100 }))
      const limits = [perMinute("a", 300), perMinute("b", 10_000), perMinute("c", 10_000)]
      const verdicts = yield* Effect.provideService(fire(1000, limits), RateLimitStore, store)
      expect(allowed(verdicts)).toBe(300)
      const stats = yield* store.stats
      expect(stats.decisions).toBe(1000)
      expect(stats.roundTrips).toBeGreaterThanOrEqual(10)
      expect(stats.roundTrips).toBeLessThanOrEqual(40)
      expect(stats.lastLatencyMs).toBeGreaterThan(0)
      // One call above maxBatch is not split: it goes alone, in order.
      const big = yield* store.decide(range(1000).map(() => ({ limits: [perMinute("big", 600)], cost: 1 })))
      expect(big.map((v) => v.allowed)).toEqual(range(1000).map((i) => i < 600))
      expect((yield* store.stats).roundTrips).toBe(stats.roundTrips + 1)
    }))

  it.live("the Lua script decides exactly as Gcra.decide", () =>
    Effect.gen(function*() {
      const store = yield* storeOf(redisOptions())
      const specs = [
        Gcra.limitSpec("p", { limit: 7, periodMs: 1000, burst: 3 }),
        Gcra.limitSpec("q", { limit: 100, periodMs: 60_000, burst: 40 }),
        Gcra.limitSpec("r", { limit: 1000, periodMs: 3_600_000, burst: 25 }),
        Gcra.limitSpec("s", { limit: 3, periodMs: 1000, burst: 2 }),
        Gcra.limitSpec("t", { limit: 1_000_000, periodMs: 86_400_000, burst: 30 })
      ]
      let seed = 7
      const random = (n: number) => {
        seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648
        return seed % n
      }
      const batch = range(250).map(() => ({
        limits: specs.filter(() => random(3) > 0),
        cost: 1 + random(3)
      }))
      // One call is one round trip with one server time, so relative to it every number must match.
      const fromRedis = yield* store.decide(batch)
      const state = new Map<string, number>()
      const now = Date.now()
      const fromJs = batch.map((decision) => Gcra.decide(state, decision, now))
      expect(fromRedis).toEqual(fromJs)
      expect(allowed(fromRedis)).toBeGreaterThan(10)
      expect(allowed(fromRedis)).toBeLessThan(240)
      expect((yield* store.stats).roundTrips).toBe(1)
    }))

  it.live("minIntervalMs paces round trips under load, not a call after a quiet spell", () =>
    Effect.gen(function*() {
      const store = yield* storeOf(redisOptions({ minIntervalMs: 40 }))
      const decide = store.decide([{ limits: [perMinute("paced", 10_000)], cost: 1 }])
      const quiet = yield* timed(decide)
      expect(quiet.ms).toBeLessThan(30)
      // Right behind it: waits for the interval.
      const paced = yield* timed(decide)
      expect(paced.ms).toBeGreaterThan(25)
      // A call every 5 ms for 300 ms: one round trip per 40 ms carries them, about 8 in all.
      const before = yield* store.stats
      const calls: Array<Fiber.Fiber<unknown, unknown>> = []
      for (let i = 0; i < 60; i++) {
        calls.push(yield* Effect.forkChild(decide))
        yield* Effect.sleep(5)
      }
      yield* Fiber.joinAll(calls)
      const after = yield* store.stats
      expect(after.decisions - before.decisions).toBe(60)
      expect(after.roundTrips - before.roundTrips).toBeGreaterThanOrEqual(4)
      expect(after.roundTrips - before.roundTrips).toBeLessThanOrEqual(12)
    }))

  it.live("two processes sharing Redis share the limits exactly", () =>
    Effect.gen(function*() {
      const options = redisOptions()
      const one = yield* storeOf(options)
      const two = yield* storeOf(options)
      const limits = [perMinute("shared", 25)]
      expect(allowed(yield* Effect.provideService(fire(10, limits), RateLimitStore, one))).toBe(10)
      // The other client sees what the first spent, and together they never exceed the limit.
      expect(allowed(yield* Effect.provideService(fire(5, limits), RateLimitStore, two))).toBe(5)
      const [a, b] = yield* Effect.all([
        Effect.provideService(fire(200, limits), RateLimitStore, one),
        Effect.provideService(fire(200, limits), RateLimitStore, two)
      ], { concurrency: 2 })
      expect(allowed(a!) + allowed(b!)).toBe(10)
    }))

  it.live("fails fast while Redis is down and works again once it is back, with the same layer", () =>
    Effect.gen(function*() {
      const redis = yield* ownRedis
      const timeoutMs = 50
      const store = yield* storeOf(redisOptions({ port: redis.port, timeoutMs }))
      const limits = [perMinute("outage", 1000)]
      const decide = store.decide([{ limits, cost: 1 }])
      expect((yield* decide)[0]?.allowed).toBe(true)

      yield* redis.kill
      // Every concurrent caller gets the error, at once: nothing waits for a reconnection.
      const down = yield* timed(Effect.all(range(50).map(() => Effect.exit(decide)), { concurrency: "unbounded" }))
      expect(down.ms).toBeLessThan(timeoutMs + 150)
      const exits = Exit.isSuccess(down.exit) ? down.exit.value : []
      expect(exits.map(failedWith).flat()).toEqual(range(50).map(() => "RateLimitStoreUnavailable"))
      const later = yield* timed(decide)
      expect(failedWith(later.exit)).toEqual(["RateLimitStoreUnavailable"])
      expect(later.ms).toBeLessThan(timeoutMs + 100)
      expect(yield* store.health).toBe(false)
      expect((yield* store.stats).failures).toBeGreaterThan(0)

      yield* redis.start
      const back = yield* eventually("the store answering the new server", Effect.as(decide, true), { timeout: 5_000 })
      expect(back).toBe(true)
      expect(yield* store.health).toBe(true)
      // The new server has no script cached: EVALSHA got NOSCRIPT (or the reload on ready beat it) and still answered.
      expect((yield* decide)[0]).toMatchObject({ allowed: true })
    }), 20_000)

  it.live("a server that stops answering fails each round trip after the timeout, never hangs", () =>
    Effect.gen(function*() {
      const redis = yield* ownRedis
      const timeoutMs = 50
      const store = yield* storeOf(redisOptions({ port: redis.port, timeoutMs }))
      const decide = store.decide([{ limits: [perMinute("hang", 1000)], cost: 1 }])
      expect((yield* decide)[0]?.allowed).toBe(true)

      yield* redis.pause
      const hung = yield* timed(Effect.all(range(20).map(() => Effect.exit(decide)), { concurrency: "unbounded" }))
      const exits = Exit.isSuccess(hung.exit) ? hung.exit.value : []
      expect(exits.map(failedWith).flat()).toEqual(range(20).map(() => "RateLimitStoreUnavailable"))
      // One round trip timed out; the calls queued behind it went in the next ones, each bounded by the timeout.
      expect(hung.ms).toBeLessThan(4 * timeoutMs + 200)
      const one = yield* timed(decide)
      expect(failedWith(one.exit)).toEqual(["RateLimitStoreUnavailable"])
      expect(one.ms).toBeGreaterThanOrEqual(timeoutMs - 5)
      expect(one.ms).toBeLessThan(timeoutMs + 100)

      yield* redis.resume
      const back = yield* eventually("the store answering again", Effect.as(decide, true), { timeout: 5_000 })
      expect(back).toBe(true)
    }), 20_000)
})
