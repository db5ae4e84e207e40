/**
 * Retention on both stores: a purged message leaves none of its parts or events behind (its foreign keys cascade), and
 * nothing newer is touched; the oldest go first, a batch at a time.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { migrate } from "../../src/layers/Migrations.ts"
import { MessageStore, receiptDefaults, ReceiptSettings } from "../../src/storage/MessageStore.ts"
import { RetentionStore } from "../../src/storage/RetentionStore.ts"
import { pgLayer, sqliteLayer } from "../fixtures/Databases.ts"
import { newMessage } from "../fixtures/Messages.ts"

const suite = (name: string, database: Layer.Layer<SqlClient.SqlClient>) =>
  describe(`RetentionStore on ${name}`, () => {
    const stores = Layer.mergeAll(MessageStore.layer, RetentionStore.layer).pipe(
      Layer.provide(Layer.succeed(ReceiptSettings, receiptDefaults)),
      Layer.provideMerge(Layer.effectDiscard(Effect.orDie(migrate))),
      Layer.provideMerge(database)
    )

    it.layer(stores, { timeout: 60_000 })((it) => {
      it.effect("a purge deletes the oldest messages with their parts and events, and only those", () =>
        Effect.gen(function*() {
          const store = yield* MessageStore
          const retention = yield* RetentionStore
          const sql = yield* SqlClient.SqlClient
          const day = 86_400_000
          const now = Date.now()
          const old = [1, 2, 3].map((n) => newMessage({ createdAt: now - (40 + n) * day, segments: 2, text: "x".repeat(200) }))
          const fresh = newMessage({ createdAt: now, segments: 2, text: "x".repeat(200) })
          yield* store.accept([...old, fresh])
          // Each message gains part results and events beyond its first.
          yield* store.recordOutcomes([...old, fresh].flatMap((m, n) =>
            [1, 2].map((seq) => ({
              _tag: "Submitted" as const,
              messageId: m.id,
              seq,
              segments: 2,
              linkId: "demo",
              smscMessageId: `smsc-${n}-${seq}`,
              at: now
            }))
          ))
          const count = (table: string, ids: ReadonlyArray<string>) =>
            sql<{ n: number | string }>`SELECT COUNT(*) AS n FROM ${sql(table)} WHERE ${sql.in("message_id", ids)}`.pipe(
              Effect.map((rows) => Number(rows[0]?.n ?? 0))
            )
          const oldIds = old.map((m) => m.id)
          expect(yield* count("message_parts", oldIds)).toBe(6)
          expect(yield* count("message_events", oldIds)).toBeGreaterThanOrEqual(6)

          // Two per batch, oldest first: the two oldest go, then the third, then nothing older than 30 days is left.
          expect(yield* retention.purgeMessages(now - 30 * day, 2, undefined)).toBe(2)
          const gone = [old[2]?.id ?? "", old[1]?.id ?? ""]
          expect(yield* count("message_parts", gone)).toBe(0)
          expect(yield* count("message_events", gone)).toBe(0)
          expect(yield* count("message_parts", [old[0]?.id ?? ""])).toBe(2)
          expect(yield* retention.purgeMessages(now - 30 * day, 2, undefined)).toBe(1)
          expect(yield* retention.purgeMessages(now - 30 * day, 2, undefined)).toBe(0)
          expect(yield* count("message_parts", oldIds)).toBe(0)
          expect(yield* count("message_events", oldIds)).toBe(0)

          // The fresh message keeps everything.
          expect(yield* count("message_parts", [fresh.id])).toBe(2)
          expect(yield* count("message_events", [fresh.id])).toBe(2)
          const rows = yield* sql<{ id: string }>`SELECT id FROM messages`
          expect(rows.map((r) => r.id)).toEqual([fresh.id])
        }))
    })
  })

suite("SQLite (node:sqlite)", sqliteLayer)
suite("PostgreSQL", pgLayer)
