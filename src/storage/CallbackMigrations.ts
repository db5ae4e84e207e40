/**
 * Status callbacks' migration (the apps' settings and secrets are the accounts' 0023): the callback a message was
 * accepted with, and the outbox the store writes in the transaction of each move (src/storage/MessageStore.ts) and the deliverer drains
 * (src/storage/CallbackStore.ts). The one ordered list of every feature's migrations is composed in layers/Migrations.ts.
 */
import { Effect } from "effect"
import { SqlClient } from "effect/sql"

const callbacks = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const big = sql.onDialectOrElse({ pg: () => sql.literal("BIGINT"), orElse: () => sql.literal("INTEGER") })
  // AUTOINCREMENT on SQLite: the id of a delivered (deleted) callback is never given to a later one, so an id read from
  // the API keeps naming the same callback.
  const id = sql.onDialectOrElse({
    pg: () => sql.literal("BIGSERIAL PRIMARY KEY"),
    orElse: () => sql.literal("INTEGER PRIMARY KEY AUTOINCREMENT")
  })
  // The message's: fixed at acceptance (its own statusCallback, else its app's), NULL when nobody listens.
  yield* sql`ALTER TABLE messages ADD COLUMN callback_url TEXT`
  yield* sql`ALTER TABLE messages ADD COLUMN callback_events TEXT`
  // One row per callback owed: pending until delivered (then deleted), dead after the retry window.
  yield* sql`CREATE TABLE IF NOT EXISTS callback_outbox (
    id ${id},
    message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    org_id TEXT,
    app_id TEXT NOT NULL,
    url TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at ${big} NOT NULL,
    last_error TEXT,
    last_status INTEGER,
    created_at ${big} NOT NULL
  )`
  yield* sql`CREATE INDEX IF NOT EXISTS callback_outbox_due ON callback_outbox (next_at) WHERE state = 'pending'`
  yield* sql`CREATE INDEX IF NOT EXISTS callback_outbox_message ON callback_outbox (message_id, id)`
  yield* sql`CREATE INDEX IF NOT EXISTS callback_outbox_app ON callback_outbox (app_id, state, id)`
})

export const callbackMigrations: Record<string, Effect.Effect<void, unknown, SqlClient.SqlClient>> = {
  "0024_callbacks": callbacks
}
