/**
 * `node --disable-warning=ExperimentalWarning bench/retention-partitions.ts`: on PostgreSQL, whether daily partitions
 * pay off for retention. BENCH_RETENTION_MESSAGES (default 10,000,000) messages over 30 days, each with its part and
 * two events, in the gateway's own schema (all migrations); retention deletes the oldest day (a thirtieth) as it runs:
 * batches of 1,000 (RetentionStore.purgeMessages), each its own statement. Measured: the day's total time, each
 * batch's time (how long its rows stay locked), and the latency of a writer inserting messages meanwhile (a
 * submission's insert: message, part, event) against the same writer on an idle database. Against that: the same
 * messages in a table partitioned by day (PARTITION BY RANGE (created_at)), where the day goes by DROP TABLE of its
 * partition. Appends to bench/RESULTS.md unless BENCH_NO_RECORD=1.
 */
import { Effect, Fiber } from "effect"
import { SqlClient } from "effect/sql"
import { appendFileSync } from "node:fs"
import { migrate } from "../src/layers/Migrations.ts"
import { RetentionStore } from "../src/storage/RetentionStore.ts"
import { onPostgres } from "./Databases.ts"

const count = Number(process.env.BENCH_RETENTION_MESSAGES ?? 10_000_000)
const days = 30
const dayMs = 86_400_000
const t0 = Date.UTC(2026, 9, 1)
const spacing = Math.floor((days * dayMs) / count)

const percentile = (values: ReadonlyArray<number>, p: number) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0
}

const seed = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* migrate
  // In chunks of a million, each its own statement, so no transaction grows to the whole table.
  for (let from = 0; from < count; from += 1_000_000) {
    const to = Math.min(count, from + 1_000_000) - 1
    yield* sql`INSERT INTO messages (id, org_id, app_id, to_addr, from_addr, text, encoding, segments, route_link_id, status,
        status_rank, attempts, created_at, updated_at, message_class, cdr_batch)
      SELECT 'msg_' || lpad(i::text, 10, '0'), 'org_' || (i % 10)::text, 'app_' || (i % 10)::text, '49151' || (10000000 + i)::text,
        'ACME', 'Your code is 123456', 'gsm7', 1, 'sim', 'delivered', 3, 0, ${t0}::bigint + i::bigint * ${spacing},
        ${t0}::bigint + i::bigint * ${spacing} + 4000, 'transactional', 1
      FROM generate_series(${from}::int, ${to}::int) AS i`
    yield* sql`INSERT INTO message_parts (message_id, seq, link_id, smsc_message_id, status, status_rank, submitted_at, done_at)
      SELECT 'msg_' || lpad(i::text, 10, '0'), 1, 'sim', to_hex(i + 268435456), 'delivered', 3,
        ${t0}::bigint + i::bigint * ${spacing} + 150, ${t0}::bigint + i::bigint * ${spacing} + 4000
      FROM generate_series(${from}::int, ${to}::int) AS i`
    yield* sql`INSERT INTO message_events (message_id, at, status, kind)
      SELECT 'msg_' || lpad(i::text, 10, '0'), ${t0}::bigint + i::bigint * ${spacing} + k * 2000, CASE WHEN k = 0 THEN 'accepted' ELSE 'delivered' END,
        CASE WHEN k = 0 THEN 'accepted' ELSE 'receipt' END
      FROM generate_series(${from}::int, ${to}::int) AS i, generate_series(0, 1) AS k`
  }
  yield* sql`INSERT INTO cdr_batches (id, token, prefix, format, state, messages, objects, created_at, done_at)
    VALUES (1, 'bench001', 'cdr', 'csv', 'done', ${count}, 0, 0, 0), (2, 'bench002', 'cdr', 'csv', 'done', 0, 0, 0, 0)`
  yield* sql`VACUUM ANALYZE`
})

/** A submission's insert (message, part, event), one at a time for `ms`: the latency of each. */
const writer = (label: string, ms: number, latencies: Array<number> = []) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const end = performance.now() + ms
    let n = 0
    while (performance.now() < end) {
      const id = `w_${label}_${n++}`
      const now = t0 + days * dayMs
      const start = performance.now()
      yield* sql`WITH m AS (INSERT INTO messages (id, org_id, app_id, to_addr, from_addr, text, encoding, segments, status,
          status_rank, attempts, created_at, updated_at) VALUES (${id}, 'org_w', 'app_w', '4915112345678', 'ACME', 'hi', 'gsm7', 1,
          'accepted', 0, 0, ${now}, ${now})),
        p AS (INSERT INTO message_parts (message_id, seq, status, status_rank) VALUES (${id}, 1, 'accepted', 0))
        INSERT INTO message_events (message_id, at, status, kind) VALUES (${id}, ${now}, 'accepted', 'accepted')`
      latencies.push(performance.now() - start)
    }
    return latencies
  })

const measure = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const seedStart = performance.now()
  yield* seed
  const seedMs = performance.now() - seedStart
  const idle = yield* writer("idle", 5_000)

  // The oldest day by batched deletes, as retention runs them (no pause: the time is the work), a writer meanwhile.
  const store = yield* RetentionStore
  const during: Array<number> = []
  const busy = yield* Effect.forkChild(writer("busy", 3_600_000, during).pipe(Effect.provideService(SqlClient.SqlClient, sql)))
  const batches: Array<number> = []
  const purgeStart = performance.now()
  let deleted = 0
  for (;;) {
    const start = performance.now()
    const n = yield* store.purgeMessages(t0 + dayMs, 1000, Date.now())
    batches.push(performance.now() - start)
    deleted += n
    if (n < 1000) break
  }
  const purgeMs = performance.now() - purgeStart
  yield* Fiber.interrupt(busy)
  console.log(`one day deleted: ${deleted} messages in ${(purgeMs / 1000).toFixed(1)} s; batch p50 ${percentile(batches, 0.5).toFixed(0)} ms, ` +
    `p99 ${percentile(batches, 0.99).toFixed(0)} ms; insert idle p99 ${percentile(idle, 0.99).toFixed(2)} ms, during p99 ${percentile(during, 0.99).toFixed(2)} ms`)

  // The same messages partitioned by day; the second day goes by dropping its partition.
  yield* sql`CREATE TABLE messages_by_day (LIKE messages INCLUDING DEFAULTS) PARTITION BY RANGE (created_at)`
  for (let d = 0; d < days + 1; d++) {
    // DDL takes no parameters: the bounds are literals (numbers this script computed).
    yield* sql`CREATE TABLE ${sql.literal(`messages_day_${d}`)} PARTITION OF messages_by_day
      FOR VALUES FROM (${sql.literal(String(t0 + d * dayMs))}) TO (${sql.literal(String(t0 + (d + 1) * dayMs))})`
  }
  yield* sql`INSERT INTO messages_by_day SELECT * FROM messages WHERE created_at < ${t0 + days * dayMs}`
  yield* sql`ALTER TABLE messages_by_day ADD PRIMARY KEY (id, created_at)`
  yield* sql`CREATE INDEX ON messages_by_day (org_id, created_at, id)`
  yield* sql`VACUUM ANALYZE messages_by_day`
  const dropStart = performance.now()
  const [dropped] = yield* sql<{ n: string }>`SELECT COUNT(*) AS n FROM messages_day_1`
  yield* sql`ALTER TABLE messages_by_day DETACH PARTITION messages_day_1`
  yield* sql`DROP TABLE messages_day_1`
  const dropMs = performance.now() - dropStart
  // What a lookup by id costs with the partition key not in it: every partition probed.
  const lookup = (table: string) =>
    Effect.gen(function*() {
      const times: Array<number> = []
      for (let i = 0; i < 200; i++) {
        const id = `msg_${String(Math.floor((count / 200) * i + count / 2) % count).padStart(10, "0")}`
        const start = performance.now()
        yield* sql`SELECT id FROM ${sql.literal(table)} WHERE id = ${id}`
        times.push(performance.now() - start)
      }
      return percentile(times, 0.5)
    })
  return {
    seedMs,
    deleted,
    purgeMs,
    batchP50: percentile(batches, 0.5),
    batchP99: percentile(batches, 0.99),
    batchMax: Math.max(...batches),
    idleP50: percentile(idle, 0.5),
    idleP99: percentile(idle, 0.99),
    duringP50: percentile(during, 0.5),
    duringP99: percentile(during, 0.99),
    dropMs,
    dropped: Number(dropped?.n ?? 0),
    lookupPlain: yield* lookup("messages"),
    lookupPartitioned: yield* lookup("messages_by_day")
  }
}).pipe(Effect.provide(RetentionStore.layer))

const result = await Effect.runPromise(onPostgres(`smsgw_bench_ret_${Date.now().toString(36)}`, measure))

const lines = [
  `### Retention on PostgreSQL: batched deletes against daily partitions, ${count.toLocaleString("en")} messages (${new Date().toISOString().slice(0, 10)})`,
  "",
  "`node --disable-warning=ExperimentalWarning bench/retention-partitions.ts` — 30 days of messages (each with a part",
  "and two events, every migration's indexes), the oldest day deleted as retention does it.",
  "",
  "| | figure |",
  "|---|---:|",
  `| one day by batched deletes (1,000 messages a statement, cascading to parts and events) | ${result.deleted.toLocaleString("en")} messages in ${(result.purgeMs / 1000).toFixed(1)} s |`,
  `| one batch: p50 / p99 / max | ${result.batchP50.toFixed(0)} / ${result.batchP99.toFixed(0)} / ${result.batchMax.toFixed(0)} ms |`,
  `| a submission's insert, idle database: p50 / p99 | ${result.idleP50.toFixed(2)} / ${result.idleP99.toFixed(2)} ms |`,
  `| the same insert while the day is deleted: p50 / p99 | ${result.duringP50.toFixed(2)} / ${result.duringP99.toFixed(2)} ms |`,
  `| one day by dropping its partition (messages only) | ${result.dropped.toLocaleString("en")} rows in ${result.dropMs.toFixed(0)} ms |`,
  `| lookup by id, p50: plain table / partitioned by day (31 partitions probed) | ${result.lookupPlain.toFixed(2)} / ${result.lookupPartitioned.toFixed(2)} ms |`,
  "",
  `Seeded in ${(result.seedMs / 1000).toFixed(0)} s.`,
  ""
]
console.log(lines.join("\n"))
if (process.env.BENCH_NO_RECORD !== "1") appendFileSync(new URL("./RESULTS.md", import.meta.url), `\n${lines.join("\n")}`)
