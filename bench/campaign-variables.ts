/**
 * `node --disable-warning=ExperimentalWarning bench/campaign-variables.ts`: what the check that every recipient has the
 * template's required variables costs on a large audience (BENCH_CONTACTS distinct numbers, default 1,000,000), on
 * SQLite (node:sqlite, WAL) and PostgreSQL (127.0.0.1, a database of its own). Campaign creation, every edit and
 * submission run it. Two lists seeded by SQL: the first holds 60 % of the numbers, the second the rest plus a tenth of
 * the numbers again (those without `code`: the first list's occurrence wins, so they are not missing); only the very
 * last contact lacks `code`, so both ways read everything and must name exactly that one.
 * "stream" is how Campaigns checked before (Audience.contacts filtered with missingVariable in the process), "SQL" is
 * Audience.missingVariables. Median of 3 each; appends to bench/RESULTS.md unless BENCH_NO_RECORD=1.
 */
import { Effect, Stream } from "effect"
import { SqlClient } from "effect/sql"
import { appendFileSync } from "node:fs"
import { monitorEventLoopDelay } from "node:perf_hooks"
import { missingVariable, parseTemplate } from "../src/domain/Template.ts"
import { migrate } from "../src/layers/Migrations.ts"
import { onPostgres, onSqlite } from "./Databases.ts"
import { Audience } from "../src/storage/Audience.ts"

const count = Number(process.env.BENCH_CONTACTS ?? 1_000_000)
const first = Math.round(count * 0.6)
const overlap = Math.round(count * 0.1)
const orgId = "org_bench"
const [list1, list2] = ["lst_bench1", "lst_bench2"] as const
const lists = [list1, list2]
const parsed = parseTemplate("Hi {{FirstName}}, your code is {{code}} ({{shop|any shop}})")
if (!("template" in parsed)) throw new Error("template")
const template = parsed.template
const expected = JSON.stringify([["lst_bench2", count - first + overlap, `4915${String(count).padStart(9, "0")}`, "code"]])

const seed = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* migrate
  const now = Date.now()
  for (const id of lists) {
    yield* sql`INSERT INTO contact_lists ${sql.insert({ id, org_id: orgId, name: id, created_at: now, updated_at: now })}`
  }
  // Contact i: number 4915 and i on 9 digits; `code` empty in the `codeless` rows and for the last number.
  const insert = (listId: string, from: number, to: number, posOf: string, codeless: boolean) =>
    sql.onDialectOrElse({
      pg: () =>
        sql`INSERT INTO contacts (list_id, pos, msisdn, country, vars, created_at)
          SELECT ${listId}, ${sql.literal(posOf)}, '4915' || lpad(i::text, 9, '0'), 'DE',
            json_build_object('firstname', 'N' || i, 'code', CASE WHEN ${codeless ? 1 : 0} = 1 OR i = ${count} THEN '' ELSE 'C' || i END)::text, ${now}
          FROM generate_series(${from}::int, ${to}::int) AS i`,
      orElse: () =>
        sql`INSERT INTO contacts (list_id, pos, msisdn, country, vars, created_at)
          WITH RECURSIVE n(i) AS (SELECT ${from} UNION ALL SELECT i + 1 FROM n WHERE i < ${to})
          SELECT ${listId}, ${sql.literal(posOf)}, '4915' || printf('%09d', i), 'DE',
            json_object('firstname', 'N' || i, 'code', CASE WHEN ${codeless ? 1 : 0} = 1 OR i = ${count} THEN '' ELSE 'C' || i END), ${now}
          FROM n`
    })
  yield* insert(list1, 1, first, "i", false)
  // The second list: the first list's first `overlap` numbers again (without code), then the numbers after `first`.
  yield* insert(list2, 1, overlap, "i", true)
  yield* insert(list2, first + 1, count, `i - ${first - overlap}`, false)
  // Planner statistics, as autovacuum (PostgreSQL) or a routine ANALYZE (SQLite) keeps them on a live database.
  yield* sql`ANALYZE`
})

const median = (run: Effect.Effect<ReadonlyArray<ReadonlyArray<unknown>>, unknown>) =>
  Effect.gen(function*() {
    const times: Array<number> = []
    const loop = monitorEventLoopDelay({ resolution: 10 })
    loop.enable()
    for (let i = 0; i < 3; i++) {
      const start = performance.now()
      const rows = yield* run
      times.push(performance.now() - start)
      if (JSON.stringify(rows) !== expected) throw new Error(`expected ${expected}, got ${JSON.stringify(rows)}`)
    }
    loop.disable()
    return { ms: times.sort((a, b) => a - b)[1] ?? 0, loopMaxMs: loop.max / 1e6 }
  })

const measure = (label: string) =>
  Effect.gen(function*() {
    const seedStart = performance.now()
    yield* seed
    const seedMs = performance.now() - seedStart
    const audience = yield* Audience
    const stream = audience.contacts(orgId, lists).pipe(
      Stream.map((c) => ({ c, variable: missingVariable(template, c.vars) })),
      Stream.filter((m) => m.variable !== undefined),
      Stream.take(5),
      Stream.runCollect,
      Effect.map((rows) => rows.map(({ c, variable }) => [c.listId, c.pos, c.msisdn, variable]))
    )
    const inSql = Effect.map(
      audience.missingVariables(orgId, lists, template.required, 5),
      (rows) => rows.map((r) => [r.listId, r.pos, r.msisdn, r.variable])
    )
    const after = yield* median(inSql)
    const before = yield* median(stream)
    return { label, seedMs, before, after }
  }).pipe(Effect.provide(Audience.layer))

const sqlite = onSqlite("variables-bench-", measure("SQLite"))
const postgres = onPostgres("smsgw_bench_variables", measure("PostgreSQL"))

const only = process.env.BENCH_DIALECT
const runs = [...(only === "pg" ? [] : [sqlite]), ...(only === "sqlite" ? [] : [postgres])]
const results = await Effect.runPromise(Effect.all(runs).pipe(Effect.scoped))
const command = "node --disable-warning=ExperimentalWarning bench/campaign-variables.ts"
const table = [
  `### ${new Date().toISOString()} — campaign required-variable check (issue 13), ${count.toLocaleString("en")} contacts`,
  "",
  `\`${command}\` (bench/campaign-variables.ts): two lists seeded by SQL`,
  `(${first.toLocaleString("en")} + ${(count - first + overlap).toLocaleString("en")} contacts, ${overlap.toLocaleString("en")} numbers in both, without \`code\` in the second),`,
  "only the last contact lacking `code`, tables analysed; what creation, every edit and submission wait for. \"Stream\":",
  "Audience.contacts filtered with missingVariable in the process (before); \"SQL\": Audience.missingVariables (after).",
  "Median of 3 each, and the longest the event loop waited during the 3 (perf_hooks.monitorEventLoopDelay).",
  "",
  "| database | stream (before) | SQL (after) | event loop max, before | after | seeding |",
  "|---|---|---|---|---|---|",
  ...results.map((r) =>
    `| ${r.label} | ${(r.before.ms / 1000).toFixed(2)} s | ${(r.after.ms / 1000).toFixed(2)} s | ${r.before.loopMaxMs.toFixed(0)} ms | ${
      r.after.loopMaxMs.toFixed(0)
    } ms | ${(r.seedMs / 1000).toFixed(1)} s |`
  ),
  ""
].join("\n")
console.log(table)
if (process.env.BENCH_NO_RECORD !== "1") appendFileSync(new URL("./RESULTS.md", import.meta.url), `\n${table}`)
