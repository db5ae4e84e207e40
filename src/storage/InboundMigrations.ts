/**
 * Inbound messages' migration (0025): what an SMSC delivered that is not a receipt (mobile-originated messages),
 * from the moment a link acknowledged it to the message routed to an app, and the routing document.
 *
 * - `inbound_raw`: one row per deliver_sm, written before the link answers the SMSC (nothing acknowledged is lost);
 *   the processor (pipeline/Inbound.ts) reassembles concatenated parts, routes, and deletes them in the transaction
 *   that stores the message.
 * - `inbound_messages`: the messages as apps see them (listed by the API and gRPC, posted to callbacks).
 * - `inbound_routes`: one row, the superadmin's routing document (numbers and keywords to apps, opt-out keywords),
 *   versioned so every node notices a change.
 * - `callback_outbox` now also carries an inbound message's callback: `message_id` becomes nullable and `inbound_id`
 *   names the inbound message (SQLite cannot drop a NOT NULL, so the table is rebuilt there, ids and sequence kept).
 */
import { Effect } from "effect"
import { SqlClient } from "effect/sql"

const inbound = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const big = sql.onDialectOrElse({ pg: () => sql.literal("BIGINT"), orElse: () => sql.literal("INTEGER") })
  const bytes = sql.onDialectOrElse({ pg: () => sql.literal("BYTEA"), orElse: () => sql.literal("BLOB") })
  const serial = sql.onDialectOrElse({
    pg: () => sql.literal("BIGSERIAL PRIMARY KEY"),
    orElse: () => sql.literal("INTEGER PRIMARY KEY AUTOINCREMENT")
  })
  yield* sql`CREATE TABLE IF NOT EXISTS inbound_raw (
    id ${serial},
    link_id TEXT NOT NULL,
    source TEXT NOT NULL,
    destination TEXT NOT NULL,
    esm_class INTEGER NOT NULL,
    data_coding INTEGER NOT NULL,
    payload ${bytes} NOT NULL,
    concat_ref INTEGER,
    concat_total INTEGER,
    concat_seq INTEGER,
    received_at ${big} NOT NULL
  )`
  yield* sql`CREATE TABLE IF NOT EXISTS inbound_messages (
    id TEXT PRIMARY KEY,
    org_id TEXT,
    app_id TEXT,
    route_id TEXT,
    link_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    recipient TEXT NOT NULL,
    body TEXT NOT NULL,
    encoding TEXT NOT NULL,
    parts INTEGER NOT NULL,
    missing_parts INTEGER NOT NULL DEFAULT 0,
    keyword TEXT,
    action TEXT,
    received_at ${big} NOT NULL
  )`
  yield* sql`CREATE INDEX IF NOT EXISTS inbound_messages_org ON inbound_messages (org_id, id)`
  yield* sql`CREATE INDEX IF NOT EXISTS inbound_messages_app ON inbound_messages (app_id, id)`
  yield* sql`CREATE TABLE IF NOT EXISTS inbound_routes (
    id INTEGER PRIMARY KEY,
    version INTEGER NOT NULL,
    document TEXT NOT NULL,
    updated_at ${big} NOT NULL,
    updated_by TEXT
  )`

  yield* sql.onDialectOrElse({
    pg: () =>
      Effect.gen(function*() {
        yield* sql`ALTER TABLE callback_outbox ALTER COLUMN message_id DROP NOT NULL`
        yield* sql`ALTER TABLE callback_outbox ADD COLUMN inbound_id TEXT REFERENCES inbound_messages (id) ON DELETE CASCADE`
      }),
    orElse: () =>
      Effect.gen(function*() {
        const [sequence] = yield* sql<{ seq: number }>`SELECT seq FROM sqlite_sequence WHERE name = 'callback_outbox'`
        const seq = sequence?.seq
        yield* sql`CREATE TABLE callback_outbox_v25 (
          id INTEGER PRIMARY KEY AUTOINCREMENT,
          message_id TEXT REFERENCES messages (id) ON DELETE CASCADE,
          inbound_id TEXT REFERENCES inbound_messages (id) ON DELETE CASCADE,
          org_id TEXT,
          app_id TEXT NOT NULL,
          url TEXT NOT NULL,
          body TEXT NOT NULL,
          state TEXT NOT NULL,
          attempts INTEGER NOT NULL DEFAULT 0,
          next_at INTEGER NOT NULL,
          last_error TEXT,
          last_status INTEGER,
          created_at INTEGER NOT NULL
        )`
        yield* sql`INSERT INTO callback_outbox_v25 (id, message_id, org_id, app_id, url, body, state, attempts, next_at,
            last_error, last_status, created_at)
          SELECT id, message_id, org_id, app_id, url, body, state, attempts, next_at, last_error, last_status, created_at
          FROM callback_outbox`
        yield* sql`DROP TABLE callback_outbox`
        yield* sql`ALTER TABLE callback_outbox_v25 RENAME TO callback_outbox`
        // Ids of delivered (deleted) callbacks are never given again: the sequence continues where it was.
        if (seq !== undefined) {
          yield* sql`UPDATE sqlite_sequence SET seq = MAX(seq, ${seq}) WHERE name = 'callback_outbox'`
          yield* sql`INSERT INTO sqlite_sequence (name, seq)
            SELECT 'callback_outbox', ${seq} WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'callback_outbox')`
        }
        yield* sql`CREATE INDEX IF NOT EXISTS callback_outbox_due ON callback_outbox (next_at) WHERE state = 'pending'`
        yield* sql`CREATE INDEX IF NOT EXISTS callback_outbox_message ON callback_outbox (message_id, id)`
        yield* sql`CREATE INDEX IF NOT EXISTS callback_outbox_app ON callback_outbox (app_id, state, id)`
      })
  })
  yield* sql`CREATE INDEX IF NOT EXISTS callback_outbox_inbound ON callback_outbox (inbound_id)`
})

export const inboundMigrations: Record<string, Effect.Effect<void, unknown, SqlClient.SqlClient>> = {
  "0025_inbound": inbound
}
