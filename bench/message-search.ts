/**
 * `node --disable-warning=ExperimentalWarning bench/message-search.ts`: what the Message Center's message search
 * (GET /v1/messages, storage/MessageSearch.ts) costs on BENCH_MESSAGES messages (default 1,000,000) on SQLite
 * (node:sqlite, WAL) and PostgreSQL (127.0.0.1, a database of its own): 90 % of them in one organisation (five apps,
 * ten campaigns of ~30,000, 100,000 numbers, half with a client reference, 30 days), the rest spread over 200 small
 * organisations. Times the typical searches (median and slowest of 9, through MessageSearch.search) and names the
 * index each one's plan reads; then what the search indexes cost the write path: MessageStore.accept and a submit
 * result per message for BENCH_WRITES messages (default 50,000), with the indexes and with them dropped. Appends the
 * tables to bench/RESULTS.md unless BENCH_NO_RECORD=1.
 */
import { Array as Arr, Effect } from "effect"
import { SqlClient } from "effect/sql"
import { appendFileSync } from "node:fs"
import type { MessageStatus } from "../src/domain/Message.ts"
import { migrate } from "../src/layers/Migrations.ts"
import type { MessageFilter } from "../src/storage/MessageSearch.ts"
import { MessageSearch, searchStatement } from "../src/storage/MessageSearch.ts"
import type { NewMessage } from "../src/storage/MessageStore.ts"
import { MessageStore } from "../src/storage/MessageStore.ts"
import type { Before } from "../src/storage/Paging.ts"
import { onPostgres, onSqlite, storeMessage } from "./Databases.ts"

const count = Number(process.env.BENCH_MESSAGES ?? 1_000_000)
const writes = Number(process.env.BENCH_WRITES ?? 50_000)
const runs = 9
const day = 86_400_000
const t0 = Date.UTC(2026, 10, 1)
const step = (30 * day) / count
const big = "org_big"

/** The i-th seeded message: its organisation, app, number, reference, campaign, status and time. */
const row = (i: number) => {
  const small = i % 10 === 9
  const orgId = small ? `org_small_${i % 200}` : big
  const r = (i * 7919) % 100
  const status: MessageStatus = r < 90
    ? "delivered"
    : r < 94
    ? "undelivered"
    : r === 94
    ? "failed"
    : r === 95
    ? "expired"
    : r < 99
    ? "rejected"
    : "submitted"
  const at = Math.floor(t0 + i * step)
  return {
    id: `m${String(i).padStart(8, "0")}-${((i * 2654435761) % 4294967296).toString(16)}`,
    org_id: orgId,
    app_id: small ? `${orgId}_app` : `app_${i % 5}`,
    client_ref: i % 2 === 0 ? `ref-${i}` : null,
    to_addr: `4915${String(i % 100_000).padStart(8, "0")}`,
    from_addr: "ACME",
    text: "Your code is 123456",
    encoding: "gsm7",
    segments: 1,
    status,
    status_rank: status === "submitted" ? 2 : 3,
    reason: status === "rejected" ? "blacklisted" : status === "failed" ? "ESME_RINVDSTADR (0x0b)" : null,
    rule_id: status === "rejected" ? "dnc" : null,
    campaign_id: !small && i % 3 === 0 ? `cmp_${Math.floor(i / 3) % 10}` : null,
    created_at: at,
    updated_at: at + 5_000
  }
}

const seed = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* migrate
  const start = performance.now()
  for (const chunk of Arr.chunksOf(Arr.range(0, count - 1), 10_000)) {
    yield* sql.withTransaction(Effect.forEach(Arr.chunksOf(chunk, 1_000), (part) =>
      sql`INSERT INTO messages ${sql.insert(Arr.map(part, row))}`, { discard: true }))
  }
  const seconds = (performance.now() - start) / 1000
  // Planner statistics, as autovacuum (PostgreSQL: VACUUM too, after a million inserts) or a routine ANALYZE keeps them.
  yield* sql.onDialectOrElse({ pg: () => sql`VACUUM ANALYZE messages`, orElse: () => sql`ANALYZE` })
  return seconds
})

/** The index names (or scan) the database's plan for this search reads. */
const planOf = (filter: MessageFilter, after: Before | undefined) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const [text, params] = searchStatement(sql, filter, { limit: 100, after }).compile()
    return yield* sql.onDialectOrElse({
      pg: () =>
        Effect.map(sql.unsafe<{ "QUERY PLAN": string }>(`EXPLAIN ${text}`, params), (rows) => {
          const lines = rows.map((r) => r["QUERY PLAN"])
          const used = lines.flatMap((l) => [...l.matchAll(/(Index Only Scan|Index Scan|Bitmap Index Scan|Seq Scan)(?: Backward)?(?: using| on) (\w+)/g)])
            .map((m) => `${m[1]} ${m[2]}`)
          return [...used, ...(lines.some((l) => l.includes("Sort")) ? ["Sort"] : [])].join(", ")
        }),
      orElse: () =>
        Effect.map(sql.unsafe<{ detail: string }>(`EXPLAIN QUERY PLAN ${text}`, params), (rows) =>
          rows.map((r) => r.detail.replace(/ \(.*\)$/, "")).join(", "))
    })
  })

const timed = (run: Effect.Effect<unknown, unknown, MessageSearch>) =>
  Effect.gen(function*() {
    const ts: Array<number> = []
    for (let i = 0; i < runs; i++) {
      const start = performance.now()
      yield* run
      ts.push(performance.now() - start)
    }
    ts.sort((a, b) => a - b)
    return { median: ts[Math.floor(runs / 2)] ?? 0, max: ts[runs - 1] ?? 0 }
  })

interface Case {
  readonly name: string
  readonly filter: MessageFilter
  readonly after?: Before
}

const searches = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const search = yield* MessageSearch
  const mid = row(Math.floor(count / 2) - (Math.floor(count / 2) % 10))
  // Where page 5,000 of the organisation's newest-first listing starts (a cursor a user would have paged to).
  const [deep] = yield* sql<{ created_at: number | string; id: string }>`SELECT created_at, id FROM messages
    WHERE org_id = ${big} ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET ${Math.min(499_999, Math.floor(count * 0.9) - 1)}`
  const deepCursor: Before | undefined = deep === undefined ? undefined : { at: Number(deep.created_at), id: deep.id }
  const day15 = t0 + 15 * day
  const cases: ReadonlyArray<Case> = [
    { name: "newest page (no filter)", filter: { orgId: big } },
    { name: "page 5,000 (cursor)", filter: { orgId: big }, ...(deepCursor !== undefined ? { after: deepCursor } : {}) },
    { name: "by id", filter: { orgId: big, id: mid.id } },
    { name: "by number (~10 messages)", filter: { orgId: big, to: mid.to_addr } },
    { name: "by number, none", filter: { orgId: big, to: "4930000000000" } },
    { name: "by client reference", filter: { orgId: big, clientRef: mid.client_ref ?? "ref-0" } },
    { name: "status failed (1 %)", filter: { orgId: big, status: "failed" } },
    { name: "status delivered (90 %)", filter: { orgId: big, status: "delivered" } },
    { name: "by app (20 %)", filter: { orgId: big, appId: "app_3" } },
    { name: "by campaign (~30,000)", filter: { orgId: big, campaignId: "cmp_4" } },
    { name: "one day (since + until)", filter: { orgId: big, since: day15, until: day15 + day } },
    // Failed messages are all app_1's here (i ≡ 26 mod 100): the app of the failures, as a user would look.
    { name: "app + failed + last 7 days", filter: { orgId: big, appId: "app_1", status: "failed", since: t0 + 23 * day } },
    { name: "app token: app + number", filter: { orgId: big, appId: mid.app_id, to: mid.to_addr } },
    { name: "small organisation, newest", filter: { orgId: "org_small_9" } }
  ]
  const out: Array<{ name: string; median: number; max: number; rows: number; plan: string }> = []
  for (const c of cases) {
    const page = yield* search.search(c.filter, { limit: 100, after: c.after })
    const time = yield* timed(search.search(c.filter, { limit: 100, after: c.after }))
    out.push({ name: c.name, ...time, rows: page.items.length, plan: yield* planOf(c.filter, c.after) })
  }
  return out
})

const searchIndexes = [
  "messages_org_created",
  "messages_org_to",
  "messages_org_status",
  "messages_org_app",
  "messages_org_ref",
  "messages_campaign_created"
]

/** MessageStore.accept, then a submit result per message, for `writes` messages in batches of 200: messages per second. */
const writePath = (withIndexes: boolean) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* migrate
    if (!withIndexes) {
      for (const name of searchIndexes) yield* sql`DROP INDEX ${sql(name)}`
      yield* sql`CREATE INDEX messages_campaign ON messages (campaign_id) WHERE campaign_id IS NOT NULL`
    }
    const store = yield* MessageStore
    const now = Date.now()
    const messages: Array<NewMessage> = Array.from({ length: writes }, (_, i) =>
      storeMessage(crypto.randomUUID(), i, {
        orgId: `org_${i % 20}`,
        appId: `app_${i % 50}`,
        clientRef: `ref-${i}`,
        routeLinkId: "demo",
        createdAt: now + i
      }))
    const batches = Arr.chunksOf(messages, 200)
    let start = performance.now()
    for (const batch of batches) yield* store.accept(batch)
    const accept = writes / ((performance.now() - start) / 1000)
    start = performance.now()
    for (const batch of batches) {
      yield* store.recordOutcomes(batch.map((m, i) => ({
        _tag: "Submitted" as const,
        messageId: m.id,
        seq: 1,
        segments: 1,
        linkId: "demo",
        smscMessageId: `s${m.id.slice(0, 8)}${i}`,
        at: now + 1
      })))
    }
    const submit = writes / ((performance.now() - start) / 1000)
    return { accept, submit }
  }).pipe(Effect.provide(MessageStore.layer))

const measure = (label: string, on: <A, E>(name: string, use: Effect.Effect<A, E, SqlClient.SqlClient>) => Effect.Effect<A, unknown>) =>
  Effect.gen(function*() {
    console.log(`${label}: seeding ${count.toLocaleString("en")} messages`)
    const seeded = yield* on("search", Effect.gen(function*() {
      const seedSeconds = yield* seed
      console.log(`${label}: seeded in ${seedSeconds.toFixed(1)} s; searching`)
      return { seedSeconds, results: yield* searches.pipe(Effect.provide(MessageSearch.layer)) }
    }))
    console.log(`${label}: write path`)
    const indexed = yield* on("writes", writePath(true))
    const bare = yield* on("bare", writePath(false))
    return { label, ...seeded, indexed, bare }
  })

const sqlite = measure("SQLite", (name, use) => onSqlite(`message-search-${name}-`, use))
const postgres = measure("PostgreSQL", (name, use) => onPostgres(`smsgw_bench_search_${name}`, use))

const results = [await Effect.runPromise(sqlite), await Effect.runPromise(postgres)]
const command = "node --disable-warning=ExperimentalWarning bench/message-search.ts"
const [first, second] = results
const ms = (n: number) => n < 10 ? n.toFixed(1) : n.toFixed(0)
const table = [
  `### ${new Date().toISOString()} — message search (issue 14), ${count.toLocaleString("en")} messages`,
  "",
  `\`${command}\` (bench/message-search.ts): ${count.toLocaleString("en")} messages, 90 % in one organisation (5 apps, 10`,
  "campaigns, 100,000 numbers, half with a client reference, over 30 days), the rest in 200 small ones; tables analysed.",
  `MessageSearch.search of a 100-message page, median and slowest of ${runs}; the plan's index (SQLite: EXPLAIN QUERY PLAN;`,
  "PostgreSQL: EXPLAIN).",
  "",
  `| search | rows | ${results.map((r) => `${r.label} median / max`).join(" | ")} | SQLite plan | PostgreSQL plan |`,
  `|---|---|${results.map(() => "---|").join("")}---|---|`,
  ...(first?.results ?? []).map((r, i) => {
    const other = second?.results[i]
    return `| ${r.name} | ${r.rows} | ${ms(r.median)} / ${ms(r.max)} ms | ${other === undefined ? "" : `${ms(other.median)} / ${ms(other.max)} ms`} | ${r.plan} | ${other?.plan ?? ""} |`
  }),
  "",
  `Seeding (multi-row inserts of 1,000, with every index in place): ${results.map((r) => `${r.label} ${r.seedSeconds.toFixed(0)} s`).join(", ")}.`,
  "",
  `The write path with and without the six search indexes: MessageStore.accept of ${writes.toLocaleString("en")} messages in`,
  "batches of 200, then a submit result for each (the status moves: the status index is rewritten), messages per second.",
  "",
  "| database | accept, indexed | accept, without | submit result, indexed | submit result, without |",
  "|---|---|---|---|---|",
  ...results.map((r) =>
    `| ${r.label} | ${r.indexed.accept.toFixed(0)}/s | ${r.bare.accept.toFixed(0)}/s | ${r.indexed.submit.toFixed(0)}/s | ${r.bare.submit.toFixed(0)}/s |`
  ),
  ""
].join("\n")
console.log(table)
if (process.env.BENCH_NO_RECORD !== "1") appendFileSync(new URL("./RESULTS.md", import.meta.url), `\n${table}`)
