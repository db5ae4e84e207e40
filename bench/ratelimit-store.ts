/**
 * `node bench/ratelimit-store.ts`: gateway-side CPU per decision of the L2 rate-limit store on Redis, at a steady
 * offered rate of single-decision calls (each its own fiber, as HTTP requests make them), 3 limits per decision.
 * The driver's own cost (pacing timer, a fiber per call, latency bookkeeping) is measured against a no-op store, in
 * one-second rounds alternating with the store's, and subtracted. Settings: BENCH_RATE (3000/s), BENCH_SECONDS (5),
 * BENCH_MIN_INTERVAL_MS (the store's minIntervalMs, 0), REDIS_HOST, REDIS_PORT. Prints JSON.
 * BENCH_STAGE=1 measures the whole rate-limit stage instead (RateLimiter.check: L1 buckets, the L2 store, the limits
 * of an app, its organisation and its link, the headers' data), as the submit path calls it.
 */
import { Effect, Layer } from "effect"
import type { Context } from "effect"
import { Redis } from "ioredis"
import * as Gcra from "../src/ratelimit/Gcra.ts"
import type { Decision, Verdict } from "../src/ratelimit/Gcra.ts"
import { RateLimitStore } from "../src/ratelimit/RateLimitStore.ts"
import { RateLimiter } from "../src/ratelimit/RateLimiter.ts"
import { RateMetrics } from "../src/observability/Metrics.ts"

const rate = Number(process.env.BENCH_RATE ?? 3000)
const seconds = Number(process.env.BENCH_SECONDS ?? 5)
const host = process.env.REDIS_HOST ?? "127.0.0.1"
const port = Number(process.env.REDIS_PORT ?? 6379)
const minIntervalMs = Number(process.env.BENCH_MIN_INTERVAL_MS ?? 0)

// 200 apps in 20 organisations over 4 links; generous limits, so nearly every decision writes its three keys.
const decisions: Array<Decision> = Array.from({ length: 200 }, (_, i) => ({
  cost: 1,
  limits: [
    Gcra.limitSpec(`app:${i}:s`, { limit: 1000, periodMs: 1000, burst: 100 }),
    Gcra.limitSpec(`org:${i % 20}:m`, { limit: 600_000, periodMs: 60_000, burst: 600_000 }),
    Gcra.limitSpec(`link:${i % 4}:s`, { limit: 5000, periodMs: 1000, burst: 500 })
  ]
}))

type Decide = (batch: ReadonlyArray<Decision>) => Effect.Effect<ReadonlyArray<Verdict>, unknown>

interface Phase {
  readonly calls: number
  readonly cpuMicros: number
  readonly wallSeconds: number
  readonly failures: number
  readonly latenciesMs: Array<number>
}

/** Offers `rate` calls per second for `duration` seconds, each call forked on its own, and waits for the last. */
const offer = (context: Context.Context<never>, decide: Decide, duration: number): Promise<Phase> =>
  new Promise((resolve) => {
    const total = Math.round(rate * duration)
    const latenciesMs: Array<number> = []
    let launched = 0
    let finished = 0
    let failures = 0
    const cpu = process.cpuUsage()
    const started = performance.now()
    const done = () => {
      if (++finished < total) return
      const used = process.cpuUsage(cpu)
      resolve({
        calls: total,
        cpuMicros: used.user + used.system,
        wallSeconds: (performance.now() - started) / 1000,
        failures,
        latenciesMs
      })
    }
    const launch = (decision: Decision) => {
      const t0 = performance.now()
      Effect.runForkWith(context)(
        decide([decision]).pipe(
          Effect.matchEffect({
            onFailure: () => Effect.sync(() => failures++),
            onSuccess: () => Effect.sync(() => latenciesMs.push(performance.now() - t0))
          }),
          Effect.ensuring(Effect.sync(done))
        )
      )
    }
    const tick = () => {
      const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate))
      while (launched < due) launch(decisions[launched++ % decisions.length] as Decision)
      if (launched < total) setTimeout(tick, 1)
    }
    tick()
  })

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted.length === 0 ? 0 : (sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number)

const serverCpuMicros = (client: Redis) =>
  client.info("cpu").then((info) => {
    const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, "m").exec(info)?.[1] ?? 0)
    return (field("used_cpu_user") + field("used_cpu_sys")) * 1e6
  })

const stage = process.env.BENCH_STAGE === "1"

/** The submit path's call: 200 apps (1000/s each) in 20 organisations (10k/min) over 4 links (5000 tps). */
const stageDecide = (limiter: RateLimiter["Service"]): Decide => {
  let i = 0
  // One limits object per app, as the submit path gets it from the app cache.
  const appLimits = Array.from({ length: 200 }, () => ({ perSecond: 1000 }))
  return (batch) => {
    const n = i++
    return limiter.check({
      orgId: `org${n % 20}`,
      appId: `app${n % 200}`,
      appLimits: appLimits[n % 200] ?? {},
      linkId: `link${n % 4}`,
      linkTps: 5000,
      segments: 1
    }).pipe(Effect.as(batch.map(() => ({ allowed: true, retryAfterMs: 0, limitIndex: 0, remaining: 1, resetMs: 0 }))))
  }
}

const program = Effect.gen(function*() {
  const store = yield* RateLimitStore
  const limiter = yield* RateLimiter
  const measured: Decide = stage ? stageDecide(limiter) : store.decide
  const context = yield* Effect.context<never>()
  const raw = new Redis({ host, port, lazyConnect: false })
  yield* Effect.addFinalizer(() => Effect.sync(() => raw.disconnect()))
  const noop: Decide = (batch) => Effect.succeed(batch.map(() => ({ allowed: true, retryAfterMs: 0, limitIndex: 0, remaining: 1, resetMs: 0 })))

  yield* Effect.promise(() => offer(context, measured, 1))
  yield* Effect.promise(() => offer(context, noop, 1))

  // Alternate one-second rounds of the driver alone and of the store, so that drifting load from elsewhere on the
  // machine weighs on both alike.
  const driverRounds: Array<Phase> = []
  const storeRounds: Array<Phase> = []
  let serverMicros = 0
  const before = yield* store.stats
  for (let round = 0; round < seconds; round++) {
    driverRounds.push(yield* Effect.promise(() => offer(context, noop, 1)))
    const serverBefore = yield* Effect.promise(() => serverCpuMicros(raw))
    storeRounds.push(yield* Effect.promise(() => offer(context, measured, 1)))
    serverMicros += (yield* Effect.promise(() => serverCpuMicros(raw))) - serverBefore
  }
  const after = yield* store.stats

  const sum = (phases: ReadonlyArray<Phase>, f: (phase: Phase) => number) => phases.reduce((acc, phase) => acc + f(phase), 0)
  const calls = sum(storeRounds, (r) => r.calls)
  const roundTrips = after.roundTrips - before.roundTrips
  const storeDecisions = after.decisions - before.decisions
  const latencies = storeRounds.flatMap((r) => r.latenciesMs).sort((a, b) => a - b)
  const gross = sum(storeRounds, (r) => r.cpuMicros) / calls
  const driver = sum(driverRounds, (r) => r.cpuMicros) / sum(driverRounds, (r) => r.calls)
  console.log(JSON.stringify({
    measured: stage ? "rate-limit stage (RateLimiter.check)" : "L2 store (RateLimitStore.decide)",
    offeredPerSecond: rate,
    minIntervalMs,
    seconds: +sum(storeRounds, (r) => r.wallSeconds).toFixed(2),
    limitsPerDecision: 3,
    decisions: calls,
    failures: sum(storeRounds, (r) => r.failures),
    cpuMicrosPerDecision: {
      store: +(gross - driver).toFixed(2),
      withDriver: +gross.toFixed(2),
      driverAlone: +driver.toFixed(2)
    },
    redisServerCpuMicrosPerDecision: +(serverMicros / calls).toFixed(2),
    roundTrips,
    averageBatch: +(storeDecisions / Math.max(1, roundTrips)).toFixed(2),
    latencyMs: {
      p50: +percentile(latencies, 0.5).toFixed(3),
      p99: +percentile(latencies, 0.99).toFixed(3),
      max: +(latencies.at(-1) ?? 0).toFixed(3)
    }
  }, null, 2))
})

const keyPrefix = `bench:rl:${crypto.randomUUID().slice(0, 8)}:`
const Store = RateLimitStore.layerRedis({ host, port, keyPrefix, timeoutMs: 50, minIntervalMs })
const Limiter = RateLimiter.layer({
  defaultApp: {},
  organisation: { perMinute: 10_000 },
  organisations: {},
  nodes: 1,
  l1Headroom: 2,
  onStoreFailure: "failOpen",
  probeAfterMs: 1000,
  maxLeaseUnits: Number(process.env.BENCH_LEASE_UNITS ?? 50),
  leaseMs: 1000
}).pipe(Layer.provideMerge(Layer.mergeAll(Store, RateMetrics.layer)))
await Effect.runPromise(program.pipe(Effect.scoped, Effect.provide(Limiter)))
