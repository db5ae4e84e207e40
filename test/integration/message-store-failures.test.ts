/** A failing database as the message store reports it: what the database said, and the SqlError kept as the cause. */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { SqlClient, SqlError } from "effect/sql"
import { migrate } from "../../src/layers/Migrations.ts"
import { MessageStore } from "../../src/storage/MessageStore.ts"
import { pgLayer, sqliteLayer } from "../fixtures/Databases.ts"

describe("MessageStore failures", () => {
  const cases = [
    { name: "SQLite", database: sqliteLayer, said: "no such table: messages" },
    { name: "PostgreSQL", database: pgLayer, said: 'relation "messages" does not exist' }
  ]
  for (const { database, name, said } of cases) {
    it.effect(`on ${name}, StoreUnavailable keeps the SqlError and says what the database said`, () =>
      Effect.gen(function*() {
        const store = yield* MessageStore
        const sql = yield* SqlClient.SqlClient
        yield* sql`DROP TABLE messages CASCADE`.pipe(Effect.catch(() => sql`DROP TABLE messages`))
        const error = yield* Effect.flip(store.get(crypto.randomUUID(), "org_test"))
        expect(error._tag).toBe("StoreUnavailable")
        expect(SqlError.isSqlError(error.cause)).toBe(true)
        expect(error.message).toContain(said)
      }).pipe(
        Effect.provide(MessageStore.layer.pipe(
          Layer.provideMerge(Layer.effectDiscard(Effect.orDie(migrate))),
          Layer.provideMerge(database)
        ))
      ), 60_000)
  }
})
