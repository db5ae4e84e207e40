/**
 * `node --disable-warning=ExperimentalWarning bench/cdr-export.ts`: the CDR export of BENCH_CDR_MESSAGES (default
 * 1,000,000) finished messages, each with its part, spread over 10 organisations and ~10 hours, on SQLite (node:sqlite,
 * WAL) and PostgreSQL (127.0.0.1, a database of its own; BENCH_DIALECT=sqlite|pg for one), to the local-folder object
 * store: the time of `runOnce` (numbering the batches, reading them back, gzip CSV, writing the objects), the process's
 * CPU (main thread and the thread pool's gzip), peak RSS, and the objects' size. Then retention over the same rows:
 * deleting them all in batches of 1,000 (the default), as `purgeOnce` does a month later. Appends to bench/RESULTS.md
 * unless BENCH_NO_RECORD=1.
 */
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { appendFileSync } from "node:fs"
import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import * as Path from "node:path"
import { monitorEventLoopDelay } from "node:perf_hooks"
import { migrate } from "../src/layers/Migrations.ts"
import { CdrMetrics } from "../src/observability/Metrics.ts"
import * as CdrExport from "../src/pipeline/CdrExport.ts"
import * as Retention from "../src/pipeline/Retention.ts"
import { CdrStore } from "../src/storage/CdrStore.ts"
import { ObjectStore } from "../src/storage/ObjectStore.ts"
import { RetentionStore } from "../src/storage/RetentionStore.ts"
import { onPostgres, onSqlite } from "./Databases.ts"

const count = Number(process.env.BENCH_CDR_MESSAGES ?? 1_000_000)
const t0 = Date.UTC(2026, 10, 1)
/** Message i is accepted at t0 + i * 36 ms: a million span ten hours. */
const spacing = 36

const seed = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* migrate
  const columns = (i: string, text: (e: string) => string, hex: (e: string) => string) => sql.literal(`
    'msg_' || ${text(i)}, 'org_' || ${text(`${i} % 10`)}, 'app_' || ${text(`${i} % 10`)}, '49151' || ${text(`10000000 + ${i}`)},
    'ACME', 'Your code is 123456', 'gsm7', 1, 'sim', 'delivered', 3, 0, ${t0} + ${i} * ${spacing}, ${t0} + ${i} * ${spacing} + 4000,
    'transactional', ${hex(i)}`)
  const insertParts = sql`INSERT INTO message_parts (message_id, seq, link_id, smsc_message_id, status, status_rank, submitted_at, done_at)
    SELECT id, 1, 'sim', trace, 'delivered', 3, created_at + 150, updated_at FROM messages`
  yield* sql.onDialectOrElse({
    pg: () =>
      sql`INSERT INTO messages (id, org_id, app_id, to_addr, from_addr, text, encoding, segments, route_link_id, status,
          status_rank, attempts, created_at, updated_at, message_class, trace)
        SELECT ${columns("i", (e) => `(${e})::text`, (e) => `to_hex(${e} + 268435456)`)} FROM generate_series(0, ${count - 1}::int) AS i`,
    orElse: () =>
      sql`INSERT INTO messages (id, org_id, app_id, to_addr, from_addr, text, encoding, segments, route_link_id, status,
          status_rank, attempts, created_at, updated_at, message_class, trace)
        WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ${count - 1})
        SELECT ${columns("i", (e) => `(${e})`, (e) => `printf('%x', ${e} + 268435456)`)} FROM n`
  })
  // The SMSC ids were parked in `trace` for the parts' insert; the messages themselves carry none.
  yield* insertParts
  yield* sql`UPDATE messages SET trace = NULL`
  yield* sql`ANALYZE`
})

/** What migration 0021 costs a store this size: its three indexes on `messages`, dropped and built again. */
const rebuildIndexes = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  for (const index of ["messages_cdr_due", "messages_cdr_batch", "messages_created"]) yield* sql`DROP INDEX ${sql.literal(index)}`
  const start = performance.now()
  yield* sql`CREATE INDEX messages_cdr_due ON messages (updated_at) WHERE status_rank = 3 AND cdr_batch IS NULL`
  yield* sql`CREATE INDEX messages_cdr_batch ON messages (cdr_batch, org_id, created_at, id) WHERE cdr_batch IS NOT NULL`
  yield* sql`CREATE INDEX messages_created ON messages (created_at)`
  return performance.now() - start
})

const measure = (label: string) =>
  Effect.gen(function*() {
    const seedStart = performance.now()
    yield* seed
    const seedMs = performance.now() - seedStart
    const indexMs = yield* rebuildIndexes
    const root = yield* Effect.promise(() => Fs.mkdtemp(Path.join(Os.tmpdir(), "smsgw-cdr-bench-")))
    const stores = Layer.mergeAll(CdrStore.layer, ObjectStore.layerLocal({ root }).pipe(Layer.orDie), CdrMetrics.layer)
    const exporter = yield* CdrExport.CdrExporter.pipe(
      Effect.provide(CdrExport.layer({ prefix: "cdr", format: "csv", batchSize: 50_000 }).pipe(Layer.provide(stores)))
    )
    // The longest the event loop was held: node:sqlite runs on it, so on SQLite that is how long submissions wait.
    const loop = monitorEventLoopDelay({ resolution: 10 })
    let peakRss = process.memoryUsage().rss
    const sampler = setInterval(() => {
      peakRss = Math.max(peakRss, process.memoryUsage().rss)
    }, 50)
    const rssBefore = process.memoryUsage().rss
    const cpuBefore = process.cpuUsage()
    loop.enable()
    const start = performance.now()
    // The first batch numbered on its own (one UPDATE of 50,000 rows); runOnce then writes it and the rest.
    const store = yield* CdrStore.pipe(Effect.provide(stores))
    yield* store.assign(50_000, Date.now(), { token: "bench001", prefix: "cdr", format: "csv" })
    const assignMs = performance.now() - start
    const summary = yield* exporter.runOnce
    const exportMs = performance.now() - start
    const cpu = process.cpuUsage(cpuBefore)
    clearInterval(sampler)
    loop.disable()
    const exportLoopMaxMs = loop.max / 1e6
    loop.reset()
    const files = yield* Effect.promise(() => Fs.readdir(root, { recursive: true, withFileTypes: true }))
    let bytes = 0
    for (const f of files) if (f.isFile()) bytes += (yield* Effect.promise(() => Fs.stat(Path.join(f.parentPath, f.name)))).size
    yield* Effect.promise(() => Fs.rm(root, { recursive: true, force: true }))
    // What autovacuum does after a change this large: the planner learns the rows now have batch numbers.
    yield* SqlClient.SqlClient.pipe(Effect.flatMap((sql) => sql`ANALYZE`))
    // Retention a month later: every row exported, all deleted in batches of 1,000 (no pause: the time is the work).
    loop.enable()
    const purgeStart = performance.now()
    const purged = yield* Retention.purgeOnce(
      { messageDays: 30, auditDays: 365, exportGraceMs: 0, batchSize: 1000, intervalMs: 1000, pauseMs: 0 },
      t0 + 40 * 86_400_000
    ).pipe(Effect.provide(Layer.mergeAll(RetentionStore.layer, CdrMetrics.layer)))
    const purgeMs = performance.now() - purgeStart
    loop.disable()
    const purgeLoopMaxMs = loop.max / 1e6
    return {
      indexMs,
      assignMs,
      exportLoopMaxMs,
      purgeLoopMaxMs,
      label,
      seedMs,
      records: summary.records,
      batches: summary.batches,
      objects: summary.objects,
      exportMs,
      cpuMs: (cpu.user + cpu.system) / 1000,
      rssBeforeMb: rssBefore / 1e6,
      peakRssMb: peakRss / 1e6,
      bytes,
      purged: purged.messages,
      purgeMs
    }
  })

const only = process.env.BENCH_DIALECT
const results: Array<Effect.Success<ReturnType<typeof measure>>> = []
if (only === undefined || only === "sqlite") results.push(await Effect.runPromise(onSqlite("smsgw-cdr-", measure("SQLite"))))
if (only === undefined || only === "pg") {
  results.push(await Effect.runPromise(onPostgres(`smsgw_bench_cdr_${Date.now().toString(36)}`, measure("PostgreSQL"))))
}

const lines = [
  `### CDR export of ${count.toLocaleString("en")} finished messages (${new Date().toISOString().slice(0, 10)})`,
  "",
  "`node --disable-warning=ExperimentalWarning bench/cdr-export.ts` — batches of 50,000, gzip CSV to the local-folder store;",
  "CPU is the process's (main thread + the thread pool's gzip); retention deletes the same rows in batches of 1,000.",
  "The migration (0021) column is free; its three indexes are what an upgrade of a store this size waits for:",
  ...results.map((r) => `${r.label} ${(r.indexMs / 1000).toFixed(1)} s.`),
  "",
  "| store | records | batches | objects | export | records/s | CPU | RSS before → peak | gzip bytes/record | numbering 50,000 | event loop held, export (max) | retention delete | event loop held, retention (max) |",
  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ...results.map((r) =>
    `| ${r.label} | ${r.records.toLocaleString("en")} | ${r.batches} | ${r.objects} | ${(r.exportMs / 1000).toFixed(1)} s | ` +
    `${Math.round(r.records / (r.exportMs / 1000)).toLocaleString("en")} | ${(r.cpuMs / 1000).toFixed(1)} s | ` +
    `${Math.round(r.rssBeforeMb)} → ${Math.round(r.peakRssMb)} MB | ${(r.bytes / r.records).toFixed(1)} | ` +
    `${r.assignMs.toFixed(0)} ms | ${r.exportLoopMaxMs.toFixed(0)} ms | ` +
    `${r.purged.toLocaleString("en")} rows in ${(r.purgeMs / 1000).toFixed(1)} s | ${r.purgeLoopMaxMs.toFixed(0)} ms |`
  ),
  ""
]
console.log(lines.join("\n"))
for (const r of results) console.log(`${r.label}: seeded in ${(r.seedMs / 1000).toFixed(1)} s`)
if (process.env.BENCH_NO_RECORD !== "1") appendFileSync(new URL("./RESULTS.md", import.meta.url), `\n${lines.join("\n")}`)
