/**
 * `node --disable-warning=ExperimentalWarning bench/message-ids.ts`: what the kind of message id costs the message
 * store (issue 16). Random ids (UUID version 4, as before) against time-ordered ones (version 7, domain/MessageId.ts)
 * through the real MessageStore on SQLite (a file, WAL) and PostgreSQL (127.0.0.1): BENCH_PRESEED messages (default
 * 200,000) already in the store, then BENCH_WRITES messages (default 20,000) live their whole life as on the gateway —
 * accepted 50 at a time, a submit result each, a receipt each — and the CPU of this process per message is reported
 * (on PostgreSQL the server's own CPU is not in it: the wall time is reported beside it). BENCH_IDS=campaign compares a
 * campaign's ids instead: the hashed form they had (legacyCampaignMessageId) against the time-ordered one
 * (campaignMessageId), positions in order. Also what a message that lived its whole life occupies in the store (tables
 * and indexes grown over the BENCH_WRITES messages, per message): the disk column of docs/deployment.md's sizing.
 * Appends the table to bench/RESULTS.md unless BENCH_NO_RECORD=1.
 */
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { appendFileSync } from "node:fs"
import { cpus } from "node:os"
import { campaignMessageId, legacyCampaignMessageId, newMessageId } from "../src/domain/MessageId.ts"
import { migrate } from "../src/layers/Migrations.ts"
import { MessageStore } from "../src/storage/MessageStore.ts"
import { onPostgres, onSqlite, storeMessage } from "./Databases.ts"

const preseed = Number(process.env.BENCH_PRESEED ?? 200_000)
const writes = Number(process.env.BENCH_WRITES ?? 20_000)
const batch = 50

const campaigns = process.env.BENCH_IDS === "campaign"
/** The two forms compared: the ids as they were (random), and time-ordered. */
type Kind = "random" | "ordered"
const names: Record<Kind, string> = campaigns ? { random: "hashed", ordered: "time-ordered" } : { random: "v4", ordered: "v7" }
const campaign = { id: "cmp_0123456789abcdef", createdAt: Date.now() }
/** The i-th id of a kind: v4 (or a campaign's hashed form), v7 (or a campaign's time-ordered form). */
const idOf = (kind: Kind, i: number) =>
  campaigns
    ? kind === "random" ? legacyCampaignMessageId(campaign.id, i, 0) : campaignMessageId(campaign, i, 0)
    : kind === "random" ? crypto.randomUUID() : newMessageId()

/** Half of them with a client reference: an index of its own. */
const message = (id: string, i: number) => storeMessage(id, i, { clientRef: i % 2 === 0 ? `ref-${i}` : undefined })

interface Figures {
  readonly cpuMicrosPerMessage: number
  readonly wallMicrosPerMessage: number
  readonly bytesPerMessage: number
}

/** Bytes the database's tables and indexes occupy: SQLite's pages, PostgreSQL's relations (with TOAST). */
const storedBytes = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  return yield* sql.onDialectOrElse({
    pg: () =>
      Effect.map(
        sql<{ bytes: string }>`SELECT sum(pg_total_relation_size(c.oid)) AS bytes FROM pg_class c
          JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r'`,
        (rows) => Number(rows[0]?.bytes ?? 0)
      ),
    orElse: () =>
      Effect.map(
        sql<{ bytes: number }>`SELECT page_count * page_size AS bytes FROM pragma_page_count(), pragma_page_size()`,
        (rows) => Number(rows[0]?.bytes ?? 0)
      )
  })
})

const lifecycle = (kind: Kind): Effect.Effect<Figures, unknown, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    yield* migrate
    const store = yield* MessageStore
    for (let done = 0; done < preseed; done += 2000) {
      yield* store.accept(Array.from({ length: Math.min(2000, preseed - done) }, (_, i) => message(idOf(kind, done + i), done + i)))
    }
    const bytes0 = yield* storedBytes
    const cpu0 = process.cpuUsage()
    const wall0 = performance.now()
    for (let done = 0; done < writes; done += batch) {
      const messages = Array.from({ length: batch }, (_, i) => message(idOf(kind, preseed + done + i), done + i))
      yield* store.accept(messages)
      const at = Date.now()
      yield* store.recordOutcomes(messages.map((m) => ({
        _tag: "Submitted" as const,
        messageId: m.id,
        seq: 1,
        segments: 1,
        linkId: "link1",
        smscMessageId: m.id.slice(-12),
        at
      })))
      yield* Effect.forEach(messages, (m) =>
        store.recordReceipt({ linkId: "link1", candidates: [m.id.slice(-12)], status: "delivered", error: undefined, at }), {
        concurrency: "unbounded",
        discard: true
      })
    }
    const cpu = process.cpuUsage(cpu0)
    const wall = performance.now() - wall0
    return {
      cpuMicrosPerMessage: Math.round((cpu.user + cpu.system) / writes),
      wallMicrosPerMessage: Math.round(wall * 1000 / writes),
      bytesPerMessage: Math.round(((yield* storedBytes) - bytes0) / writes)
    }
  }).pipe(Effect.provide(MessageStore.layer))

const program = Effect.gen(function*() {
  const rows: Array<string> = []
  for (const [name, on] of [
    ["SQLite", (kind: Kind) => onSqlite(`smsgw-ids-${kind}-`, lifecycle(kind))],
    ["PostgreSQL", (kind: Kind) => onPostgres(`smsgw_ids_${kind}_${process.pid}`, lifecycle(kind))]
  ] as const) {
    // Alternated, twice each: the machine is shared and noisy.
    const figures: Record<Kind, Array<Figures>> = { random: [], ordered: [] }
    for (const kind of ["random", "ordered", "random", "ordered"] as const) {
      const f = yield* on(kind)
      figures[kind].push(f)
      console.log(name, names[kind], f)
    }
    const best = (kind: Kind, key: keyof Figures) => Math.min(...figures[kind].map((f) => f[key]))
    rows.push(
      `| ${name} | ${best("random", "cpuMicrosPerMessage")} µs | ${best("ordered", "cpuMicrosPerMessage")} µs | ${
        (best("ordered", "cpuMicrosPerMessage") / best("random", "cpuMicrosPerMessage")).toFixed(2)
      }× | ${best("random", "wallMicrosPerMessage")} µs | ${best("ordered", "wallMicrosPerMessage")} µs | ${
        best("random", "bytesPerMessage")
      } B | ${best("ordered", "bytesPerMessage")} B |`
    )
  }
  const table = [
    campaigns
      ? `### ${new Date().toISOString()} — a campaign's message ids: hashed against time-ordered, \`BENCH_IDS=campaign npm run bench:ids\``
      : `### ${new Date().toISOString()} — message ids: random (v4) against time-ordered (v7), \`npm run bench:ids\``,
    "",
    `${preseed.toLocaleString("en")} messages already stored, then ${writes.toLocaleString("en")} accepted ${batch} at a time, a submit result and a receipt each, through MessageStore; best of two alternated runs each. Machine: ${cpus().length} cores, ${cpus()[0]?.model ?? "?"}, Node ${process.version}.`,
    "",
    `| store | CPU per message, ${names.random} | CPU per message, ${names.ordered} | ${names.ordered} / ${names.random} | wall per message, ${names.random} | wall per message, ${names.ordered} | stored per message, ${names.random} | stored per message, ${names.ordered} |`,
    "|---|---|---|---|---|---|---|---|",
    ...rows,
    ""
  ].join("\n")
  console.log(table)
  if (process.env.BENCH_NO_RECORD !== "1") appendFileSync(new URL("./RESULTS.md", import.meta.url), `\n${table}\n`)
})

Effect.runPromise(program).catch((error) => {
  console.error(error)
  process.exitCode = 1
})
