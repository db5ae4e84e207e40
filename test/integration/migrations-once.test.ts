/** Migrations run once, from the one ordered list where the process is composed; the message store runs none. */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { migrate } from "../../src/layers/Migrations.ts"
import { MessageStore } from "../../src/storage/MessageStore.ts"
import { SqlClient } from "effect/sql"
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
  })
})
