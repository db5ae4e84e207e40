/**
 * `node --disable-warning=ExperimentalWarning bench/audit-filters.ts`: what a page of the audit log costs with each
 * filter of `GET /v1/audit` on a large log (BENCH_AUDIT_ENTRIES, default 1,000,000: nine tenths in the organisation
 * read, the rest in another), on SQLite (node:sqlite, WAL) and PostgreSQL (127.0.0.1, a database of its own).
 * "before": the indexes before migration 0017 (only (org_id, at)); "after": the same database once 0017 ran (one index
 * per filter, each ending in (at, id)). Each query is AccountStore.listAudit for a first page of 100, median of 5, and a sequential insert
 * of 2,000 entries (AccountStore.audit) shows what the indexes cost a write. node:sqlite runs on the event loop, so on
 * SQLite a query's time is also how long it holds the process. Appends to bench/RESULTS.md unless BENCH_NO_RECORD=1.
 */
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { appendFileSync } from "node:fs"
import { accountMigrations } from "../src/auth/AccountMigrations.ts"
import { AccountStore } from "../src/auth/AccountStore.ts"
import type { AuditQuery } from "../src/auth/AccountStore.ts"
import { migrate } from "../src/layers/Migrations.ts"
import { onPostgres, onSqlite } from "./Databases.ts"

const count = Number(process.env.BENCH_AUDIT_ENTRIES ?? 1_000_000)
const orgId = "org_bench"
const t0 = Date.UTC(2026, 0, 1)
/** Entry i is at t0 + floor(i / 2) s: every second holds two entries, so ties are everywhere. */
const atOf = (i: number) => t0 + Math.floor(i / 2) * 1000

const seed = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* migrate
  // One entry in a hundred thousand is app.deleted (rare), one in a thousand member.removed, the rest three common
  // actions; 50 users act, one of them rarely; a seventh of entries are an app's; each target has ten entries.
  const columns = (i: string, text: (e: string) => string) => sql.literal(`
    CASE WHEN ${i} % 10 = 9 THEN 'org_other' ELSE '${orgId}' END,
    CASE WHEN ${i} % 7 = 0 THEN NULL WHEN ${i} % 50000 = 11 THEN 'usr_rare' ELSE 'usr_' || ${text(`${i} % 50`)} END,
    CASE WHEN ${i} % 7 = 0 THEN 'app_' || ${text(`${i} % 5`)} ELSE NULL END,
    CASE WHEN ${i} % 100000 = 7 THEN 'app.deleted' WHEN ${i} % 1000 = 3 THEN 'member.removed'
      WHEN ${i} % 3 = 0 THEN 'campaign.test_sent' WHEN ${i} % 3 = 1 THEN 'login' ELSE 'api_key.created' END,
    'tgt_' || ${text(`${i} % 100000`)}, '127.0.0.1', ${t0} + (${i} / 2) * 1000, NULL`)
  yield* sql.onDialectOrElse({
    pg: () =>
      sql`INSERT INTO audit_log (id, org_id, actor_user_id, actor_app_id, action, target, ip, at, detail)
        SELECT 'aud_' || lpad(i::text, 16, '0'), ${columns("i", (e) => `(${e})::text`)}
        FROM generate_series(1, ${count}::int) AS i`,
    orElse: () =>
      sql`INSERT INTO audit_log (id, org_id, actor_user_id, actor_app_id, action, target, ip, at, detail)
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${count})
        SELECT 'aud_' || printf('%016d', i), ${columns("i", (e) => `(${e})`)} FROM n`
  })
  yield* sql`ANALYZE`
})

/** The indexes of the audit log before migration 0017. */
const dropFilterIndexes = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  for (const index of ["audit_log_org_action", "audit_log_org_user", "audit_log_org_app", "audit_log_org_target", "audit_log_org_at_id"]) {
    yield* sql`DROP INDEX ${sql.literal(index)}`
  }
  yield* sql`CREATE INDEX audit_log_org_at ON audit_log (org_id, at)`
  yield* sql`ANALYZE`
})

const auditFiltersMigration = accountMigrations["0017_audit_filters"] ?? Effect.die("migration 0017_audit_filters is missing")

const middle = atOf(Math.floor(count / 2))
const queries: ReadonlyArray<readonly [string, Omit<AuditQuery, "limit">]> = [
  ["newest, no filter", {}],
  ["common action (login, 1/3)", { action: "login" }],
  ["rare action (app.deleted, 10 entries)", { action: "app.deleted" }],
  ["user (usr_0, 1/50)", { actorUserId: "usr_0" }],
  ["rare user (usr_rare, ~17 entries)", { actorUserId: "usr_rare" }],
  ["app (app_1)", { actorAppId: "app_1" }],
  ["target (tgt_4242, 10 entries)", { target: "tgt_4242" }],
  ["one hour in the middle", { since: middle - 3_600_000, until: middle }],
  ["page in the middle (before + beforeId)", { before: { at: middle, id: "aud_0000000000500000" } }],
  ["rare action, page in the middle", { action: "member.removed", before: { at: middle, id: "aud_0000000000500000" } }],
  ["rare action + one day", { action: "member.removed", since: middle - 86_400_000, until: middle }]
]

const median = <A>(run: Effect.Effect<A, unknown>) =>
  Effect.gen(function*() {
    const times: Array<number> = []
    for (let i = 0; i < 5; i++) {
      const start = performance.now()
      yield* run
      times.push(performance.now() - start)
    }
    return times.sort((a, b) => a - b)[2] ?? 0
  })

const measureQueries = Effect.gen(function*() {
  const store = yield* AccountStore
  const results: Array<{ readonly ms: number; readonly rows: number }> = []
  for (const [, query] of queries) {
    const rows = (yield* store.listAudit(orgId, { limit: 100, ...query })).length
    results.push({ ms: yield* median(store.listAudit(orgId, { limit: 100, ...query })), rows })
  }
  const actionsMs = yield* median(store.auditActions(orgId, 500))
  const writeStart = performance.now()
  for (let i = 0; i < 2000; i++) {
    yield* store.audit({ orgId, actorUserId: "usr_w", actorAppId: null, action: "login", target: `w_${i}`, ip: "127.0.0.1", detail: null })
  }
  const writeUs = ((performance.now() - writeStart) / 2000) * 1000
  return { results, actionsMs, writeUs }
})

const measure = (label: string) =>
  Effect.gen(function*() {
    const seedStart = performance.now()
    yield* seed
    const seedMs = performance.now() - seedStart
    yield* dropFilterIndexes
    const before = yield* measureQueries
    // Migration 0017 itself on the full log: what upgrading a database costs.
    const migrationStart = performance.now()
    yield* auditFiltersMigration
    const migrationMs = performance.now() - migrationStart
    yield* SqlClient.SqlClient.pipe(Effect.flatMap((sql) => sql`ANALYZE`))
    const after = yield* measureQueries
    return { label, seedMs, migrationMs, before, after }
  }).pipe(Effect.provide(AccountStore.layer))

const only = process.env.BENCH_DIALECT
const runs = [
  ...(only === "pg" ? [] : [onSqlite("audit-bench-", measure("SQLite"))]),
  ...(only === "sqlite" ? [] : [onPostgres("smsgw_bench_audit", measure("PostgreSQL"))])
]
const results = await Effect.runPromise(Effect.all(runs).pipe(Effect.scoped))
const ms = (x: number) => x < 10 ? `${x.toFixed(2)} ms` : `${x.toFixed(0)} ms`
const command = "node --disable-warning=ExperimentalWarning bench/audit-filters.ts"
const table = [
  `### ${new Date().toISOString()} — audit log filters (issue 14), ${count.toLocaleString("en")} entries`,
  "",
  `\`${command}\` (bench/audit-filters.ts): AccountStore.listAudit, first page of 100 (median of 5), in an organisation`,
  `holding nine tenths of the log, tables analysed. Before: the (org_id, at) index only; after: migration 0017.`,
  "",
  `| query | rows | ${results.map((r) => `${r.label} before | ${r.label} after`).join(" | ")} |`,
  `|---|---|${results.map(() => "---|---").join("|")}|`,
  ...queries.map(([name], q) =>
    `| ${name} | ${results[0]?.after.results[q]?.rows ?? 0} | ${
      results.map((r) => `${ms(r.before.results[q]?.ms ?? 0)} | ${ms(r.after.results[q]?.ms ?? 0)}`).join(" | ")
    } |`
  ),
  `| the actions (GET /v1/audit/actions) | — | ${results.map((r) => `${ms(r.before.actionsMs)} | ${ms(r.after.actionsMs)}`).join(" | ")} |`,
  `| one audit write, sequential | — | ${results.map((r) => `${r.before.writeUs.toFixed(0)} µs | ${r.after.writeUs.toFixed(0)} µs`).join(" | ")} |`,
  "",
  `Seeding: ${results.map((r) => `${r.label} ${(r.seedMs / 1000).toFixed(1)} s`).join(", ")}; migration 0017 on the full log: ${
    results.map((r) => `${r.label} ${(r.migrationMs / 1000).toFixed(1)} s`).join(", ")
  }.`,
  ""
].join("\n")
console.log(table)
if (process.env.BENCH_NO_RECORD !== "1") appendFileSync(new URL("./RESULTS.md", import.meta.url), `\n${table}`)
