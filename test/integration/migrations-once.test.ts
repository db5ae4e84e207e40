/** Migrations run once, from the one ordered list where the process is composed; the message store runs none. */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer } from "effect"
import { migrate } from "../../src/layers/Migrations.ts"
import { MessageStore } from "../../src/storage/MessageStore.ts"
import { SqlClient } from "effect/sql"
import { TestClock } from "effect/testing"
import { pgLayer, sqliteLayer } from "../fixtures/Databases.ts"
import { eventually } from "../fixtures/Eventually.ts"

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
    it.effect("the message write path: no foreign key on parts and events, no statistics on status ranks", () =>
      Effect.gen(function*() {
        yield* migrate
        const sql = yield* SqlClient.SqlClient
        const keys = yield* sql<{ table: string; type: string }>`
          SELECT conrelid::regclass::text AS table, contype AS type FROM pg_constraint
          WHERE conrelid IN ('message_parts'::regclass, 'message_events'::regclass) ORDER BY 1, 2`
        expect(keys).toEqual([{ table: "message_parts", type: "p" }])
        const targets = yield* sql<{ table: string; target: number }>`
          SELECT attrelid::regclass::text AS table, attstattarget AS target FROM pg_attribute
          WHERE attname = 'status_rank' AND attrelid IN ('messages'::regclass, 'message_parts'::regclass) ORDER BY 1`
        expect(targets.map((t) => [t.table, Number(t.target)])).toEqual([["message_parts", 0], ["messages", 0]])
      }))

    it.effect("a migration that waits on live traffic's locks gives up after its lock timeout and is tried again until it runs", () =>
      // Real time: the lock timeout, the retry's back-off and the polling all run on the server's clock.
      TestClock.withLive(Effect.gen(function*() {
        yield* migrate
        const sql = yield* SqlClient.SqlClient
        // As on a database one version behind: 0027 not applied (it is written to run again).
        yield* sql`DELETE FROM smsgw_migrations WHERE migration_id = 27`
        // Live traffic: a transaction writing to messages, holding its lock until told.
        const release = yield* Deferred.make<void>()
        const held = yield* Deferred.make<void>()
        const traffic = yield* Effect.forkChild(sql.withTransaction(Effect.gen(function*() {
          yield* sql`LOCK TABLE messages IN ROW EXCLUSIVE MODE`
          yield* Deferred.succeed(held, undefined)
          yield* Deferred.await(release)
        })))
        yield* Deferred.await(held)
        const migrating = yield* Effect.forkChild(migrate)
        // Two attempts seen waiting on the lock: the first gave up (lock timeout) and the run was tried again.
        const attempts = new Set<string>()
        yield* eventually("a second attempt at the migration's lock", Effect.gen(function*() {
          const waiting = yield* sql<{ started: string }>`SELECT query_start::text AS started FROM pg_stat_activity
            WHERE wait_event_type = 'Lock' AND query LIKE 'LOCK TABLE messages%'`
          for (const w of waiting) attempts.add(w.started)
          return attempts.size >= 2
        }), { timeout: 20_000, interval: 100 })
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(traffic)
        const applied = yield* Fiber.join(migrating)
        expect(applied.map(([id]) => id)).toEqual([27])
        expect(yield* migrate).toEqual([])
      })), 60_000)
  })
})
