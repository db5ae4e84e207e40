/**
 * A batch is accepted whole or not at all, on both dialects: a batch larger than one statement (over 300 messages)
 * whose last statement fails leaves none of its messages stored (POST /v1/messages/batch answers 503 for all of them).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { migrate } from "../../src/layers/Migrations.ts"
import { MessageStore } from "../../src/storage/MessageStore.ts"
import { pgLayer, sqliteLayer } from "../fixtures/Databases.ts"
import { newMessage } from "../fixtures/Messages.ts"

const suite = (name: string, database: Layer.Layer<SqlClient.SqlClient>) =>
  describe(`a batch accepted on ${name}`, () => {
    const TestStore = MessageStore.layer.pipe(
      Layer.provideMerge(Layer.effectDiscard(Effect.orDie(migrate))),
      Layer.provideMerge(database)
    )
    it.layer(TestStore, { timeout: 60_000 })((it) => {
      it.effect("700 messages whose 650th collides with a stored one: the accept fails and none of the 700 is stored", () =>
        Effect.gen(function*() {
          const store = yield* MessageStore
          const sql = yield* SqlClient.SqlClient
          const orgId = `org_${crypto.randomUUID().slice(0, 8)}`
          const existing = newMessage({ orgId })
          yield* store.accept([existing])
          const batch = Array.from({ length: 700 }, (_, i) => i === 650 ? existing : newMessage({ orgId }))
          const failed = yield* store.accept(batch).pipe(Effect.flip)
          expect(failed._tag).toBe("StoreUnavailable")
          const rows = yield* sql<{ readonly n: number | string }>`SELECT COUNT(*) AS n FROM messages WHERE org_id = ${orgId}`
          expect(Number(rows[0]?.n)).toBe(1)
          // A batch that fits is stored whole.
          yield* store.accept(Array.from({ length: 700 }, () => newMessage({ orgId })))
          const after = yield* sql<{ readonly n: number | string }>`SELECT COUNT(*) AS n FROM messages WHERE org_id = ${orgId}`
          expect(Number(after[0]?.n)).toBe(701)
        }))
    })
  })

suite("SQLite", sqliteLayer)
suite("PostgreSQL", pgLayer)
