/**
 * The dashboard's counters on SQLite and PostgreSQL: the message store tells what it committed (once per move, never
 * for a move a rank guard refused), two nodes' counts add up in the shared tables, a failed write keeps its counts for
 * the next one (and writes none of them twice), old rows are pruned.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { migrate } from "../../src/layers/Migrations.ts"
import { campaignScope, countChanges, DashboardStats, linkScope, orgScope, receiptBucket } from "../../src/storage/DashboardStats.ts"
import type { CountRow } from "../../src/storage/DashboardStats.ts"
import { MessageStore } from "../../src/storage/MessageStore.ts"
import { eventually } from "../fixtures/Eventually.ts"
import { pgLayer, sqliteLayer } from "../fixtures/Databases.ts"
import { newMessage } from "../fixtures/Messages.ts"

/** Per (metric, key): the counts of one scope, summed over time. */
const byKey = (rows: ReadonlyArray<CountRow>, scope: string) => {
  const out: Record<string, number> = {}
  for (const r of rows) if (r.scope === scope) out[`${r.metric}:${r.key}`] = (out[`${r.metric}:${r.key}`] ?? 0) + r.n
  return out
}

const suite = (name: string, database: Layer.Layer<SqlClient.SqlClient>) =>
  describe(`dashboard counters on ${name}`, () => {
    // Written only when the test says (flush), so what a write holds is known.
    const Stats = DashboardStats.layerWith({ flushIntervalMs: 3_600_000 })
    const Store = MessageStore.layer.pipe(Layer.provide(countChanges), Layer.provideMerge(Stats))
    const Live = Store.pipe(Layer.provideMerge(Layer.effectDiscard(Effect.orDie(migrate))), Layer.provideMerge(database))

    it.layer(Live, { timeout: 60_000 })((it) => {
      it.effect("the store's committed changes are counted by organisation, campaign and link, each move once", () =>
        Effect.gen(function*() {
          const store = yield* MessageStore
          const stats = yield* DashboardStats
          const org = `org_${crypto.randomUUID().slice(0, 8)}`
          const t0 = Date.now()
          const delivered = newMessage({ orgId: org, campaignId: "cmp_1", createdAt: t0 })
          const refused = newMessage({ orgId: org, createdAt: t0 })
          const retried = newMessage({ orgId: org, createdAt: t0 })
          yield* store.accept([delivered, refused, retried])
          const outcome = (m: typeof delivered, tag: "Submitted" | "Failed" | "Requeued", extra: Record<string, string>) => ({
            _tag: tag, messageId: m.id, seq: 1, segments: 1, linkId: "L1", at: t0 + 100, ...extra
          }) as never
          yield* store.recordOutcomes([
            outcome(delivered, "Submitted", { smscMessageId: "s1" }),
            outcome(refused, "Failed", { error: "ESME_RINVDSTADR (0x0b)" }),
            outcome(retried, "Requeued", { error: "ESME_RTHROTTLED" })
          ])
          const receipt = { linkId: "L1", candidates: ["s1"], status: "delivered" as const, error: undefined, at: t0 + 2_100 }
          expect((yield* store.recordReceipt(receipt)).matched).toBe(true)
          // The same receipt again, and a late submit result: the rank guard keeps them from counting twice.
          yield* store.recordReceipt(receipt)
          yield* store.recordOutcomes([outcome(delivered, "Submitted", { smscMessageId: "s1" })])
          yield* stats.flush
          const minutes = yield* stats.read("minutes", [orgScope(org), campaignScope("cmp_1"), linkScope("L1")], t0 - 60_000)
          expect(byKey(minutes, orgScope(org))).toEqual({
            "submitted:": 1,
            "delivered:": 1,
            "failed:": 1,
            "error:failed|ESME_RINVDSTADR": 1,
            "error:retried|ESME_RTHROTTLED": 1,
            [`receipt:${receiptBucket(2_100)}`]: 1
          })
          expect(byKey(minutes, campaignScope("cmp_1"))).toEqual({
            "submitted:L1": 1,
            "delivered:L1": 1,
            [`receipt:L1|${receiptBucket(2_100)}`]: 1
          })
          expect(byKey(minutes, linkScope("L1"))).toMatchObject({ "submitted:": 1, "delivered:": 1, "failed:": 1 })
          const seconds = yield* stats.read("seconds", [orgScope(org)], t0 - 60_000)
          expect(byKey(seconds, orgScope(org))).toEqual({ "submitted:": 1, "delivered:": 1 })
        }))

      it.effect("two nodes' counts add up in the shared tables; a failed write keeps its counts and writes none twice", () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const mine = yield* DashboardStats
          const org = `org_${crypto.randomUUID().slice(0, 8)}`
          const at = Date.now()
          const accept = (s: DashboardStats["Service"], n: number) => {
            for (let i = 0; i < n; i++) s.accepted({ orgId: org, campaignId: undefined, target: "L1", at })
          }
          // A second node: its own counters, the same tables; both write at once.
          yield* Effect.scoped(Effect.gen(function*() {
            const node2 = Context.get(yield* Layer.build(DashboardStats.layerWith({ flushIntervalMs: 3_600_000 })), DashboardStats)
            accept(mine, 3)
            accept(node2, 4)
            yield* Effect.all([mine.flush, node2.flush], { concurrency: "unbounded" })
          }))
          const count = (table: "seconds" | "minutes") =>
            Effect.map(mine.read(table, [orgScope(org)], at - 60_000), (rows) => byKey(rows, orgScope(org))["accepted:"])
          expect(yield* count("seconds")).toBe(7)
          expect(yield* count("minutes")).toBe(7)

          // The minutes table is away: the write fails as a whole (the seconds' rows too) and is kept.
          accept(mine, 2)
          yield* sql`ALTER TABLE dashboard_minutes RENAME TO dashboard_minutes_away`
          yield* mine.flush
          expect(yield* count("seconds")).toBe(7)
          yield* sql`ALTER TABLE dashboard_minutes_away RENAME TO dashboard_minutes`
          accept(mine, 1)
          yield* mine.flush
          yield* mine.flush
          expect(yield* count("seconds")).toBe(10)
          expect(yield* count("minutes")).toBe(10)
        }))
    })

    it.live("rows past their retention are pruned when the counters start (and every minute after)", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* migrate
        const now = Date.now()
        yield* sql`INSERT INTO dashboard_seconds ${sql.insert([
          { scope: "o:x", at: now - 16 * 60_000, metric: "accepted", key: "", n: 1 },
          { scope: "o:x", at: now - 60_000, metric: "accepted", key: "", n: 1 }
        ])}`
        yield* sql`INSERT INTO dashboard_minutes ${sql.insert([
          { scope: "o:x", at: now - 26 * 3_600_000, metric: "accepted", key: "", n: 1 },
          { scope: "o:x", at: now - 3_600_000, metric: "accepted", key: "", n: 1 }
        ])}`
        yield* Effect.scoped(Effect.gen(function*() {
          yield* Layer.build(DashboardStats.layerWith({ flushIntervalMs: 3_600_000 }))
          yield* eventually("old rows pruned", sql<{ n: number | string }>`SELECT
            (SELECT COUNT(*) FROM dashboard_seconds) + (SELECT COUNT(*) FROM dashboard_minutes) AS n`, {
            until: (rows) => Number(rows[0]?.n) === 2
          })
        }))
      }).pipe(Effect.provide(database)), 60_000)
  })

suite("SQLite", sqliteLayer)
suite("PostgreSQL", pgLayer)
