/**
 * `npm run bench:policy`: CPU per message of the contact-policy stage (`ContactPolicy.check`) at a steady offered
 * rate (BENCH_RATE, default 3,000 msg/s) for BENCH_SECONDS (default 10), with a realistic rule set: a blacklist of
 * BENCH_BLACKLIST numbers (default 1,000,000), quiet hours for DE, dedup of OTPs, and two frequency caps (promotions
 * per day, everything per hour). Recipients are drawn from BENCH_RECIPIENTS numbers (default 200,000), so most are
 * seen for the first time (cold) and some repeat (caps and dedup hit).
 *
 * The stage runs as in the embedded gateway: SingleRunner + SQLite (:memory:), the RecipientPolicy bucket actors,
 * counters in memory, or in Redis with BENCH_REDIS=1 (127.0.0.1:6379: every cold recipient is one MGET, every dirty
 * one a write-behind SET). The same loop without the check is measured first; the difference is the stage's cost.
 * Prints JSON; appends to bench/RESULTS.md unless BENCH_NO_RECORD=1.
 */
import { NodeCrypto } from "@effect/platform-node"
import { Context, Effect, Layer, Option } from "effect"
import { RunnerAddress, SingleRunner } from "effect/cluster"
import { appendFileSync, mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { ActorRegistry } from "../src/actors/ActorRegistry.ts"
import type { Msisdn } from "../src/domain/Msisdn.ts"
import { decodeConfig } from "../src/layers/Config.ts"
import type { GatewayConfig } from "../src/layers/Config.ts"
import { policyLayer } from "../src/layers/Policy.ts"
import { ContactPolicy } from "../src/pipeline/ContactPolicy.ts"
import { Blacklists } from "../src/policy/Blacklists.ts"
import { PolicyClock } from "../src/policy/PolicyClock.ts"
import { migrate } from "../src/layers/Migrations.ts"
import { NodeSqliteClient } from "../src/storage/NodeSqliteClient.ts"

const rate = Number(process.env.BENCH_RATE ?? 3000)
const seconds = Number(process.env.BENCH_SECONDS ?? 10)
const blacklistSize = Number(process.env.BENCH_BLACKLIST ?? 1_000_000)
const recipientCount = Number(process.env.BENCH_RECIPIENTS ?? 200_000)
const redis = process.env.BENCH_REDIS === "1"

const dir = mkdtempSync(join(tmpdir(), "smsgw-bench-policy-"))
mkdirSync(join(dir, "objects", "blacklists"), { recursive: true })

/** Numbers of German mobiles: +49151 followed by 8 digits. */
const number = (i: number) => `49151${String(100_000_000 + i).slice(1)}` as Msisdn
let file = ""
for (let i = 0; i < blacklistSize; i++) file += `+${number(recipientCount + i * 3)}\n`
// A few of the recipients are blacklisted too (one in 50).
for (let i = 0; i < recipientCount; i += 50) file += `+${number(i)}\n`
writeFileSync(join(dir, "objects", "blacklists", "dnd.txt"), file)

const config: GatewayConfig = {
  links: [],
  objectStore: { kind: "local", root: join(dir, "objects") },
  ...(redis ? { rateLimits: { store: "redis" as const } } : {}),
  policy: {
    ...(redis ? { redis: { keyPrefix: `smsgw:bench:${Date.now()}:` } } : {}),
    blacklists: [{ name: "dnd" }],
    rules: [
      { id: "dnd", type: "blacklist", lists: ["dnd"] },
      { id: "night", type: "quiet_hours", from: "21:00", to: "08:00", countries: { DE: "Europe/Berlin" } },
      { id: "otp-once", classes: ["transactional"], type: "dedup", windowSeconds: 60, mode: "reject" },
      { id: "promo-3-day", classes: ["promotional"], type: "frequency_cap", max: 3, window: "day" },
      { id: "all-10-hour", type: "frequency_cap", max: 10, window: "hour" }
    ]
  }
}

const Sql = NodeSqliteClient.layer({ filename: ":memory:" }).pipe(Layer.orDie)
const Cluster = SingleRunner.layer({
  runnerStorage: "memory",
  shardingConfig: { runnerAddress: Option.some(RunnerAddress.make("127.0.0.1", 0)), simulateRemoteSerialization: false }
}).pipe(Layer.provide(NodeCrypto.layerDigest), Layer.orDie)
const Core = Layer.mergeAll(Cluster, ActorRegistry.layer()).pipe(
  Layer.provideMerge(Layer.effectDiscard(Effect.orDie(migrate))),
  Layer.provideMerge(Sql)
)
// Daytime in Berlin whenever the bench runs, so quiet hours check but do not refuse everything.
const start = Date.now()
const noon = Date.UTC(2026, 0, 15, 11, 0)
const Stage = policyLayer(Effect.runSync(decodeConfig(config))).pipe(
  Layer.provideMerge(Core),
  Layer.provide(Layer.succeed(PolicyClock, { now: () => noon + (Date.now() - start) }))
)

const cpuMicros = () => {
  const u = process.cpuUsage()
  return u.user + u.system
}

/** Offers `rate` msg/s for `seconds`, each message through `work`; answers CPU µs per message and the outcomes. */
const offer = (work: (i: number) => Effect.Effect<string>) =>
  Effect.gen(function*() {
    const outcomes = new Map<string, number>()
    const total = rate * seconds
    const perTick = rate / 100
    const cpu0 = cpuMicros()
    const t0 = performance.now()
    let sent = 0
    let tick = 0
    while (sent < total) {
      tick++
      const due = Math.min(total, Math.round(tick * perTick))
      const batch: Array<number> = []
      for (; sent < due; sent++) batch.push(sent)
      yield* Effect.forEach(batch, (i) => Effect.map(work(i), (o) => void outcomes.set(o, (outcomes.get(o) ?? 0) + 1)), {
        concurrency: "unbounded",
        discard: true
      }).pipe(Effect.forkDetach)
      const wait = t0 + tick * 10 - performance.now()
      if (wait > 0) yield* Effect.sleep(wait)
    }
    // Let the last batches finish.
    yield* Effect.sleep(200)
    return { cpuPerMessage: (cpuMicros() - cpu0) / total, wallSeconds: (performance.now() - t0) / 1000, outcomes: Object.fromEntries(outcomes) }
  })

const program = Effect.gen(function*() {
  const context = yield* Layer.build(Stage)
  const policy = Context.get(context, ContactPolicy)
  const blacklists = Context.get(context, Blacklists)
  // The list loads in the background: wait for it.
  for (;;) {
    const status = blacklists.status().find((s) => s.name === "dnd")
    if (status !== undefined && status.loadedAt !== null) break
    yield* Effect.sleep(100)
  }
  const loaded = blacklists.status()[0]
  const next = (() => {
    let seed = 42
    return () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff
      return seed / 0x7fffffff
    }
  })()
  const subjectOf = (i: number) => ({
    orgId: "org_bench",
    appId: `app_${i % 10}`,
    messageClass: i % 3 === 0 ? "transactional" as const : "promotional" as const,
    to: number(Math.floor(next() * recipientCount)),
    // The gateway reads the country when it validates the number (the harness's cost, not the stage's).
    country: "DE",
    from: "Shop",
    text: i % 3 === 0 ? `Your code is ${i % 9973}` : `Offer ${i % 50}`
  })
  // Warm-up: every bucket actor started, code paths compiled.
  yield* Effect.forEach(Array.from({ length: 5000 }, (_, i) => i), (i) => policy.check(subjectOf(i), `w${i}`), { concurrency: 50, discard: true })

  const baseline = yield* offer((i) => Effect.sync(() => subjectOf(i).to))
  const staged = yield* offer((i) =>
    policy.check(subjectOf(i), `m${i}`).pipe(
      Effect.map((v) => v._tag === "Reject" ? `rejected:${v.reason}` : v._tag.toLowerCase()),
      Effect.catch(() => Effect.succeed("unavailable"))
    )
  )
  const result = {
    date: new Date().toISOString(),
    counters: redis ? "redis" : "memory",
    rate,
    seconds,
    blacklist: { entries: (loaded?.baseEntries ?? 0), loadMs: loaded?.loadMs ?? null },
    harnessCpuPerMessageUs: Math.round(baseline.cpuPerMessage * 10) / 10,
    totalCpuPerMessageUs: Math.round(staged.cpuPerMessage * 10) / 10,
    policyCpuPerMessageUs: Math.round((staged.cpuPerMessage - baseline.cpuPerMessage) * 10) / 10,
    wallSeconds: Math.round(staged.wallSeconds * 10) / 10,
    outcomes: staged.outcomes
  }
  console.log(JSON.stringify(result, null, 2))
  if (process.env.BENCH_NO_RECORD !== "1") {
    appendFileSync("bench/RESULTS.md", `\n### ${result.date} — \`${redis ? "BENCH_REDIS=1 " : ""}npm run bench:policy\` (${rate} msg/s for ${seconds} s, counters in ${result.counters})\n\n` +
      "| policy stage CPU per message | with harness | harness alone | blacklist | outcomes |\n|---|---|---|---|---|\n" +
      `| ${result.policyCpuPerMessageUs} µs | ${result.totalCpuPerMessageUs} µs | ${result.harnessCpuPerMessageUs} µs | ${result.blacklist.entries} numbers, loaded in ${result.blacklist.loadMs} ms | ${JSON.stringify(result.outcomes)} |\n`)
  }
})

Effect.runPromise(Effect.scoped(program)).then(
  () => {
    rmSync(dir, { recursive: true, force: true })
    process.exit(0)
  },
  (error) => {
    console.error(error)
    rmSync(dir, { recursive: true, force: true })
    process.exit(1)
  }
)
