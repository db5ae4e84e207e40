/**
 * `node --expose-gc --disable-warning=ExperimentalWarning bench/campaign-stats.ts`: what a campaign's statistics and
 * its CSV export cost on a large campaign (BENCH_RECIPIENTS, default 100,000: every recipient submitted, its message
 * delivered with one part), on SQLite (node:sqlite, WAL) and PostgreSQL (127.0.0.1, a database of its own). Prints
 * the median wall time of CampaignStats.figures (what /stats answers and /stats/stream sends every second) over 5
 * runs, and the export's wall time and peak RSS growth; appends them to bench/RESULTS.md unless BENCH_NO_RECORD=1.
 */
import { Array as Arr, Effect, Stream } from "effect"
import { SqlClient } from "effect/sql"
import { appendFileSync } from "node:fs"
import { migrate } from "../src/layers/Migrations.ts"
import { onPostgres, onSqlite } from "./Databases.ts"
import { CampaignStats } from "../src/storage/CampaignStats.ts"

const count = Number(process.env.BENCH_RECIPIENTS ?? 100_000)
const gc = (globalThis as { gc?: () => void }).gc
const mb = (bytes: number) => Math.round(bytes / 1048576)
const campaignId = "cmp_bench"
const t0 = Date.UTC(2026, 11, 1, 9)

const seed = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* migrate
  const now = Date.now()
  yield* sql`INSERT INTO campaigns ${sql.insert({
    id: campaignId, org_id: "org_bench", name: "bench", app_id: "app", sender: "ACME", template: "Hi", lists: "[]",
    message_class: "promotional", encoding: "auto", throttle: 100, state: "completed", created_by: "u", flags: "[]",
    audience: count, created_at: now, updated_at: now
  })}`
  for (const chunk of Arr.chunksOf(Arr.range(1, count), 500)) {
    yield* sql.withTransaction(Effect.gen(function*() {
      yield* sql`INSERT INTO messages ${sql.insert(Arr.map(chunk, (i) => ({
        id: `m${i}`, org_id: "org_bench", app_id: "app", to_addr: `4915${String(i).padStart(9, "0")}`, from_addr: "ACME",
        text: "Hi", encoding: "gsm7", segments: 1, status: "delivered", status_rank: 3, created_at: t0 + i, updated_at: t0 + i,
        campaign_id: campaignId
      })))}`
      yield* sql`INSERT INTO message_parts ${sql.insert(Arr.map(chunk, (i) => ({
        message_id: `m${i}`, seq: 1, status: "delivered", status_rank: 3, submitted_at: t0 + i, done_at: t0 + i + (i % 5000)
      })))}`
      yield* sql`INSERT INTO campaign_recipients ${sql.insert(Arr.map(chunk, (i) => ({
        campaign_id: campaignId, pos: i, msisdn: `4915${String(i).padStart(9, "0")}`, vars: "{}", state: "submitted",
        attempts: 1, message_id: `m${i}`, updated_at: t0
      })))}`
    }))
  }
  // Planner statistics, as autovacuum (PostgreSQL) or a routine ANALYZE (SQLite) keeps them on a live database.
  yield* sql`ANALYZE`
})

const measure = (label: string) =>
  Effect.gen(function*() {
    const stats = yield* CampaignStats
    yield* seed
    const times: Array<number> = []
    for (let i = 0; i < 5; i++) {
      const start = performance.now()
      const figures = yield* stats.figures(campaignId)
      times.push(performance.now() - start)
      if (figures.messages.delivered !== count) throw new Error(`expected ${count} delivered, got ${figures.messages.delivered}`)
    }
    const figuresMs = times.sort((a, b) => a - b)[2] ?? 0
    const medianOf = (run: Effect.Effect<unknown, unknown>) =>
      Effect.gen(function*() {
        const ts: Array<number> = []
        for (let i = 0; i < 5; i++) {
          const start = performance.now()
          yield* run
          ts.push(performance.now() - start)
        }
        return ts.sort((a, b) => a - b)[2] ?? 0
      })
    const receiptMs = yield* medianOf(stats.receiptTimes(campaignId))
    const countsMs = yield* medianOf(stats.counts(campaignId, { count: 0, medianMs: undefined, p95Ms: undefined }))
    gc?.()
    const rss0 = process.memoryUsage().rss
    let peak = rss0
    const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss) }, 10)
    const start = performance.now()
    let bytes = 0
    let lines = 0
    yield* Stream.runForEach(stats.exportCsv(campaignId), (chunk) =>
      Effect.sync(() => {
        bytes += chunk.length
        lines += chunk.split("\r\n").length - 1
      }))
    const exportMs = performance.now() - start
    clearInterval(sampler)
    if (lines !== count + 1) throw new Error(`expected ${count + 1} lines, got ${lines}`)
    return { label, figuresMs, countsMs, receiptMs, exportMs, exportMb: bytes / 1048576, peakGrowthMb: mb(peak - rss0) }
  }).pipe(Effect.provide(CampaignStats.layer))

const sqlite = onSqlite("stats-bench-", measure("SQLite"))
const postgres = onPostgres("smsgw_bench_stats", measure("PostgreSQL"))

const results = await Effect.runPromise(Effect.all([sqlite, postgres]).pipe(Effect.scoped))
const command = "node --expose-gc --disable-warning=ExperimentalWarning bench/campaign-stats.ts"
const table = [
  `### ${new Date().toISOString()} — campaign statistics and export (issue 13), ${count.toLocaleString("en")} delivered recipients`,
  "",
  `\`${command}\` (bench/campaign-stats.ts), tables`,
  "analysed after seeding: CampaignStats.figures (what `/stats` answers), its two parts (the counts `/stats/stream` sends",
  "every second; the median and p95 time to receipt, every tenth event), median of 5 each; the CSV export paged by",
  "position, streamed.",
  "",
  "| database | figures | counts | receipt percentiles | export | export size | export peak RSS growth |",
  "|---|---|---|---|---|---|---|",
  ...results.map((r) => `| ${r.label} | ${r.figuresMs.toFixed(0)} ms | ${r.countsMs.toFixed(0)} ms | ${r.receiptMs.toFixed(0)} ms | ${(r.exportMs / 1000).toFixed(2)} s | ${r.exportMb.toFixed(1)} MB | ${r.peakGrowthMb} MB |`),
  ""
].join("\n")
console.log(table)
if (process.env.BENCH_NO_RECORD !== "1") appendFileSync(new URL("./RESULTS.md", import.meta.url), `\n${table}`)
