/**
 * `node --disable-warning=ExperimentalWarning bench/dashboard.ts`: what the live dashboard costs with an hour of
 * traffic behind it (BENCH_MESSAGES, default 1,000,000, all of one organisation: the worst case for its reads), on
 * SQLite (node:sqlite, WAL) and PostgreSQL (127.0.0.1, a database of its own). The messages are in the store as the
 * gateway writes them, and the same hour went through DashboardStats as the gateway counts it (accepts, submits,
 * receipts with lognormal times, 3 % undelivered, 2 % failed, retries, refusals by four reasons, 5 campaigns over
 * 4 links), written once per simulated second. Prints and appends to bench/RESULTS.md (unless BENCH_NO_RECORD=1):
 * - a stream's tick (what every `/v1/dashboard/stream` event reads: the rate seconds and the 15-minute window) and the
 *   snapshot (60 minutes), median of 20;
 * - what counting costs the pipeline per message, and one second's write at 3,000 msg/s;
 * - for comparison, the window's counts aggregated from the messages instead (the design not taken), with and without
 *   an (org_id, created_at) index, median of 5.
 */
import { Array as Arr, Effect } from "effect"
import { SqlClient } from "effect/sql"
import { appendFileSync } from "node:fs"
import { migrate } from "../src/layers/Migrations.ts"
import { keyedOf, rateRange, ratesOf, seriesOf, windowOf } from "../src/pipeline/Dashboard.ts"
import { DashboardStats, orgScope } from "../src/storage/DashboardStats.ts"
import type { AcceptedCount, RefusedCount } from "../src/storage/DashboardStats.ts"
import type { MessageChange } from "../src/storage/MessageStore.ts"
import { onPostgres, onSqlite } from "./Databases.ts"

const count = Number(process.env.BENCH_MESSAGES ?? 1_000_000)
const org = "org_bench"
const hourMs = 3_600_000
const perSecond = Math.ceil(count / 3600)
const links = ["carrier-a", "carrier-b", "carrier-c", "carrier-d"]
const reasons = [["blacklisted", "dnc"], ["frequency_cap", "cap-1h"], ["quiet_hours", "night"], ["duplicate", "dedup"]] as const

/** A deterministic pseudo-random sequence, so both databases get the same hour. */
const rng = (seed: number) => () => {
  seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648
  return seed / 2_147_483_648
}

/** Milliseconds to the receipt: lognormal around 2 s (a long tail to a minute). */
const receiptMs = (random: () => number) => {
  const normal = Math.sqrt(-2 * Math.log(random() || 1e-9)) * Math.cos(2 * Math.PI * random())
  return Math.min(60_000, Math.round(Math.exp(7.6 + 0.6 * normal)))
}

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0

const timed = <A, E, R>(runs: number, effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const times: Array<number> = []
    for (let i = 0; i < runs; i++) {
      const start = performance.now()
      yield* effect
      times.push(performance.now() - start)
    }
    return median(times)
  })

const seedMessages = (start: number) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const step = hourMs / count
    for (const chunk of Arr.chunksOf(Arr.range(1, count), 500)) {
      yield* sql.withTransaction(Effect.gen(function*() {
        yield* sql`INSERT INTO messages ${sql.insert(Arr.map(chunk, (i) => {
          const at = Math.round(start + i * step)
          return {
            id: `m${i}`, org_id: org, app_id: "app", to_addr: `4915${String(i).padStart(9, "0")}`, from_addr: "ACME", text: "Hi",
            encoding: "gsm7", segments: 1, status: i % 50 === 0 ? "failed" : "delivered", status_rank: 3, created_at: at,
            updated_at: at + 2000, campaign_id: i % 3 === 0 ? `cmp_${i % 5}` : null
          }
        }))}`
        yield* sql`INSERT INTO message_parts ${sql.insert(Arr.map(chunk, (i) => {
          const at = Math.round(start + i * step)
          return { message_id: `m${i}`, seq: 1, link_id: links[i % 4] ?? "", status: "delivered", status_rank: 3, submitted_at: at + 100, done_at: at + 2000 }
        }))}`
      }))
    }
    yield* sql`ANALYZE`
  })

/** The hour through the counters, as the pipeline and the store's writer count it, written once per simulated second. */
const countHour = (stats: DashboardStats["Service"], start: number) =>
  Effect.gen(function*() {
    const random = rng(42)
    let countMs = 0
    let counted = 0
    const writes: Array<number> = []
    for (let second = 0; second < 3600; second++) {
      const t = start + second * 1000
      const accepts: Array<AcceptedCount> = []
      const refusals: Array<RefusedCount> = []
      const changes: Array<MessageChange> = []
      for (let i = 0; i < perSecond && counted < count; i++, counted++) {
        const at = t + Math.floor((i / perSecond) * 1000)
        const campaignId = counted % 3 === 0 ? `cmp_${counted % 5}` : undefined
        const linkId = links[counted % 4]
        const r = random()
        if (r < 0.01) {
          const [reason, ruleId] = reasons[counted % 4] ?? reasons[0]
          refusals.push({ orgId: org, campaignId, reason, ruleId, at })
          continue
        }
        accepts.push({ orgId: org, campaignId, target: "pool:main", at })
        const base = { orgId: org, campaignId, linkId, createdAt: at }
        if (r < 0.03) changes.push({ ...base, status: "retried", at: at + 50, error: "ESME_RTHROTTLED" })
        if (r < 0.05) {
          changes.push({ ...base, status: "failed", at: at + 100, error: "ESME_RINVDSTADR (0x0b)" })
          continue
        }
        changes.push({ ...base, status: "submitted", at: at + 100, error: undefined })
        const done = at + receiptMs(random)
        changes.push(r < 0.08
          ? { ...base, status: "undelivered", at: done, error: `err 00${counted % 3}` }
          : { ...base, status: "delivered", at: done, error: undefined })
      }
      // Only the counting is timed: what the pipeline and the writer pay.
      const began = performance.now()
      for (const a of accepts) stats.accepted(a)
      for (const r of refusals) stats.refused(r)
      stats.changed(changes)
      countMs += performance.now() - began
      const flushStart = performance.now()
      yield* stats.flush
      writes.push(performance.now() - flushStart)
    }
    return { recordUs: (countMs * 1000) / counted, writeMs: median(writes) }
  })

/** One second at 3,000 msg/s over 10 organisations, 5 campaigns and 4 links, counted; its write is timed. */
const busySecond = (stats: DashboardStats["Service"]) =>
  Effect.gen(function*() {
    const at = Date.now()
    const changes: Array<MessageChange> = []
    for (let i = 0; i < 3000; i++) {
      const orgId = `org_${i % 10}`
      const campaignId = i % 2 === 0 ? `cmp_busy_${i % 5}` : undefined
      stats.accepted({ orgId, campaignId, target: "pool:main", at })
      const base = { orgId, campaignId, linkId: links[i % 4], createdAt: at - 2000 }
      changes.push({ ...base, status: "submitted", at, error: undefined }, { ...base, status: "delivered", at, error: undefined })
    }
    stats.changed(changes)
    const start = performance.now()
    yield* stats.flush
    return performance.now() - start
  })

const measure = (label: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const stats = yield* DashboardStats
    yield* migrate
    const now = Date.now()
    const start = now - hourMs
    const seedStart = performance.now()
    yield* seedMessages(start)
    const seedS = (performance.now() - seedStart) / 1000
    const { recordUs, writeMs } = yield* countHour(stats, start)
    const busyMs = median(yield* Effect.all(Array.from({ length: 10 }, () => busySecond(stats))))
    const rows = yield* sql<{ s: number | string; m: number | string }>`SELECT
      (SELECT COUNT(*) FROM dashboard_seconds) AS s, (SELECT COUNT(*) FROM dashboard_minutes) AS m`
    const scope = orgScope(org)
    const view = (minutes: number) =>
      Effect.gen(function*() {
        const at = Date.now()
        const minute = at - (at % 60_000)
        const from = minute - (minutes - 1) * 60_000
        const seconds = yield* stats.read("seconds", [scope], rateRange(at).from)
        const perMinute = (yield* stats.read("minutes", [scope], from)).map((r) => keyedOf(r, false))
        const figures = {
          rates: ratesOf(seconds.map((r) => keyedOf(r, false)), at),
          window: windowOf(perMinute.filter((r) => r.at >= minute - 14 * 60_000)),
          series: seriesOf(perMinute, minutes === 60 ? from : minute - 60_000, at)
        }
        if (figures.window.totals.accepted === 0) throw new Error("no figures read")
        return figures
      })
    const tickMs = yield* timed(20, view(15))
    const snapshotMs = yield* timed(20, view(60))
    const sample = yield* view(15)
    const aggregate = sql`SELECT status, COUNT(*) AS n FROM messages WHERE org_id = ${org} AND created_at >= ${Date.now() - 15 * 60_000} GROUP BY status`
    const scanMs = yield* timed(5, aggregate)
    yield* sql`CREATE INDEX bench_messages_org_time ON messages (org_id, created_at)`
    yield* sql`ANALYZE`
    const indexedMs = yield* timed(5, aggregate)
    return {
      label, seedS, recordUs, writeMs, busyMs, tickMs, snapshotMs, scanMs, indexedMs,
      secondsRows: Number(rows[0]?.s ?? 0), minutesRows: Number(rows[0]?.m ?? 0), sample
    }
  }).pipe(Effect.provide(DashboardStats.layerWith({ flushIntervalMs: 3_600_000 })), Effect.scoped)

const sqlite = onSqlite("dashboard-bench-", measure("SQLite"))
const postgres = onPostgres("smsgw_bench_dashboard", measure("PostgreSQL"))

const results = await Effect.runPromise(Effect.all([sqlite, postgres]))
for (const r of results) console.log(r.label, JSON.stringify(r.sample.window))
const command = "node --disable-warning=ExperimentalWarning bench/dashboard.ts"
const table = [
  `### ${new Date().toISOString()} — live dashboard (issue 14), an hour of ${count.toLocaleString("en")} messages of one organisation`,
  "",
  `\`${command}\` (bench/dashboard.ts). The messages in the store and the same hour counted by DashboardStats (written`,
  "once per simulated second). Tick: what one `/v1/dashboard/stream` event reads and computes (rate seconds, 15-minute",
  "window, last two minutes); snapshot: `/v1/dashboard` (60 minutes); median of 20. Counting: the pipeline's in-memory",
  "increments per message (accept, submit, receipt); write: one second's counts to SQL at that rate, and at 3,000 msg/s",
  "over 10 organisations (median of 10). For comparison, the window's counts aggregated from `messages` (median of 5).",
  "",
  `| database | tick | snapshot | counting per message | write per second (${perSecond} / 3,000 msg/s) | counter rows (seconds / minutes) | from messages: no index / (org_id, created_at) index |`,
  "|---|---|---|---|---|---|---|",
  ...results.map((r) =>
    `| ${r.label} | ${r.tickMs.toFixed(2)} ms | ${r.snapshotMs.toFixed(2)} ms | ${r.recordUs.toFixed(2)} µs | ${r.writeMs.toFixed(2)} / ${r.busyMs.toFixed(2)} ms | ` +
    `${r.secondsRows.toLocaleString("en")} / ${r.minutesRows.toLocaleString("en")} | ${r.scanMs.toFixed(0)} / ${r.indexedMs.toFixed(0)} ms |`
  ),
  ""
].join("\n")
console.log(table)
if (process.env.BENCH_NO_RECORD !== "1") appendFileSync(new URL("./RESULTS.md", import.meta.url), `\n${table}`)
