/** Migrations run once, from the one ordered list where the process is composed; the message store runs none. */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer } from "effect"
import { migrate } from "../../src/layers/Migrations.ts"
import { MessageStore } from "../../src/storage/MessageStore.ts"
import { SqlClient } from "effect/sql"
import { TestClock } from "effect/testing"
import { pgLayer, sqliteLayer } from "../fixtures/Databases.ts"

describe("migrations", () => {
  it.layer(MessageStore.layer.pipe(Layer.provideMerge(sqliteLayer)), { timeout: 30_000 })((it) => {
    it.effect("starting the message store applies none: the composed list then applies all of them, in order", () =>
      Effect.gen(function*() {
        yield* MessageStore
        const applied = yield* migrate
        expect(applied.map(([id]) => id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27])
        expect(yield* migrate).toEqual([])
      }))
  })
})

describe("migrations on PostgreSQL", () => {
  it.layer(pgLayer, { timeout: 30_000 })((it) => {
    it.effect("no statistics on status ranks, and the migration applies while live traffic holds its locks", () =>
      Effect.gen(function*() {
        yield* migrate
        const sql = yield* SqlClient.SqlClient
        const targets = yield* sql<{ table: string; target: number }>`
          SELECT attrelid::regclass::text AS table, attstattarget AS target FROM pg_attribute
          WHERE attname = 'status_rank' AND attrelid IN ('messages'::regclass, 'message_parts'::regclass) ORDER BY 1`
        expect(targets.map((t) => [t.table, Number(t.target)])).toEqual([["message_parts", 0], ["messages", 0]])
        // As on a database one version behind, with traffic writing: the migration runs without waiting for it.
        yield* sql`DELETE FROM smsgw_migrations WHERE migration_id = 27`
        yield* sql`ALTER TABLE message_parts ALTER COLUMN status_rank SET STATISTICS -1`
        const release = yield* Deferred.make<void>()
        const held = yield* Deferred.make<void>()
        const traffic = yield* Effect.forkChild(sql.withTransaction(Effect.gen(function*() {
          yield* sql`LOCK TABLE messages, message_parts, message_events IN ROW EXCLUSIVE MODE`
          yield* Deferred.succeed(held, undefined)
          yield* Deferred.await(release)
        })))
        yield* Deferred.await(held)
        // A migration needing a lock that traffic's excludes would wait here until the timeout.
        const applied = yield* TestClock.withLive(migrate.pipe(Effect.timeout("10 seconds")))
        expect(applied.map(([id]) => id)).toEqual([27])
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(traffic)
        const [parts] = yield* sql<{ target: number }>`SELECT attstattarget AS target FROM pg_attribute
          WHERE attname = 'status_rank' AND attrelid = 'message_parts'::regclass`
        expect(Number(parts?.target)).toBe(0)
      }))
  })
})
