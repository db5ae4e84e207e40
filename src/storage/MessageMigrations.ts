/**
 * The message store's own migrations (messages, parts, events, orphan receipts). The one ordered list of every
 * feature's migrations is composed in layers/Migrations.ts; ids are shared across features and never change.
 */
import { Effect } from "effect"
import { SqlClient } from "effect/sql"

/** Times are epoch milliseconds in BIGINT/INTEGER columns on both dialects, so the SQL stays the same. */
const initMessages = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const big = sql.onDialectOrElse({ pg: () => sql.literal("BIGINT"), orElse: () => sql.literal("INTEGER") })
  yield* sql`CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY,
    org_id TEXT,
    app_id TEXT,
    client_ref TEXT,
    to_addr TEXT NOT NULL,
    from_addr TEXT NOT NULL,
    text TEXT NOT NULL,
    encoding TEXT NOT NULL,
    segments INTEGER NOT NULL,
    validity_seconds INTEGER,
    route_link_id TEXT,
    status TEXT NOT NULL,
    status_rank INTEGER NOT NULL,
    reason TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at ${big} NOT NULL,
    updated_at ${big} NOT NULL
  )`
  yield* sql`CREATE INDEX IF NOT EXISTS messages_pending ON messages (updated_at) WHERE status_rank < 2`
  yield* sql`CREATE TABLE IF NOT EXISTS message_parts (
    message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    link_id TEXT,
    smsc_message_id TEXT,
    status TEXT NOT NULL,
    status_rank INTEGER NOT NULL,
    error TEXT,
    submitted_at ${big},
    done_at ${big},
    PRIMARY KEY (message_id, seq)
  )`
  yield* sql`CREATE INDEX IF NOT EXISTS message_parts_smsc ON message_parts (link_id, smsc_message_id)`
  const eventId = sql.onDialectOrElse({
    pg: () => sql.literal("BIGSERIAL PRIMARY KEY"),
    orElse: () => sql.literal("INTEGER PRIMARY KEY")
  })
  yield* sql`CREATE TABLE IF NOT EXISTS message_events (
    event_id ${eventId},
    message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    at ${big} NOT NULL,
    status TEXT NOT NULL,
    detail TEXT
  )`
  yield* sql`CREATE INDEX IF NOT EXISTS message_events_message ON message_events (message_id, at)`
  yield* sql`CREATE TABLE IF NOT EXISTS orphan_receipts (
    link_id TEXT NOT NULL,
    smsc_message_id TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    received_at ${big} NOT NULL,
    PRIMARY KEY (link_id, smsc_message_id)
  )`
})

/**
 * The candidate forms of one early receipt (hex and decimal readings of its id) share a `receipt_ref`, so the match
 * removes all of them; receipts that never match expire (see MessageStore.dropOrphansBefore).
 */
const orphanReceiptRef = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE orphan_receipts ADD COLUMN receipt_ref TEXT`
  yield* sql`CREATE INDEX IF NOT EXISTS orphan_receipts_ref ON orphan_receipts (receipt_ref)`
  yield* sql`CREATE INDEX IF NOT EXISTS orphan_receipts_received ON orphan_receipts (received_at)`
})

/**
 * A part is marked `handed_at` just before its submit_sm is written to the socket, so after a crash recovery tells a
 * part the SMSC may have (marked, no result: an unknown outcome) from one it never saw; `message_class` lets the
 * configuration choose, per class, whether such a part is resent or reported.
 */
const handedParts = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const big = sql.onDialectOrElse({ pg: () => sql.literal("BIGINT"), orElse: () => sql.literal("INTEGER") })
  yield* sql`ALTER TABLE message_parts ADD COLUMN handed_at ${big}`
  yield* sql`ALTER TABLE messages ADD COLUMN message_class TEXT`
})

/** The expiry sweep walks parts awaiting a receipt by submit time (MessageStore.expireOverdue). */
const partsAwaitingReceipt = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE INDEX IF NOT EXISTS message_parts_awaiting ON message_parts (submitted_at) WHERE status_rank = 2`
})

/**
 * The Message Center's search (storage/MessageSearch.ts): every query is one organisation's messages newest first, so
 * each filter has an index leading with it and ending in (created_at, id), the listing's order and keyset cursor — a
 * page is an index range read, never a sort of the matches. A campaign's id is unique across organisations: its index
 * replaces messages_campaign (a prefix of it). Events get the structured facts their `detail` text only told: what
 * kind of step, which part on which link, the SMSC's command_status, the reason and the policy rule.
 */
const messageSearch = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE INDEX IF NOT EXISTS messages_org_created ON messages (org_id, created_at, id)`
  yield* sql`CREATE INDEX IF NOT EXISTS messages_org_to ON messages (org_id, to_addr, created_at, id)`
  yield* sql`CREATE INDEX IF NOT EXISTS messages_org_status ON messages (org_id, status, created_at, id)`
  yield* sql`CREATE INDEX IF NOT EXISTS messages_org_app ON messages (org_id, app_id, created_at, id)`
  yield* sql`CREATE INDEX IF NOT EXISTS messages_org_ref ON messages (org_id, client_ref, created_at, id)
    WHERE client_ref IS NOT NULL`
  yield* sql`CREATE INDEX IF NOT EXISTS messages_campaign_created ON messages (campaign_id, created_at, id)
    WHERE campaign_id IS NOT NULL`
  yield* sql`DROP INDEX IF EXISTS messages_campaign`
  yield* sql`ALTER TABLE message_events ADD COLUMN kind TEXT`
  yield* sql`ALTER TABLE message_events ADD COLUMN seq INTEGER`
  yield* sql`ALTER TABLE message_events ADD COLUMN link_id TEXT`
  yield* sql`ALTER TABLE message_events ADD COLUMN command_status INTEGER`
  yield* sql`ALTER TABLE message_events ADD COLUMN reason TEXT`
  yield* sql`ALTER TABLE message_events ADD COLUMN rule_id TEXT`
})

/**
 * Idempotency keys (storage/IdempotencyStore.ts): one row per app and key, holding the request's fingerprint, the
 * message id chosen for it, and the first answer once there is one (NULL while in flight, until `locked_until`, held
 * by the request with `claim_token`). Rows expire by `created_at` (the purge walks that index).
 */
const idempotencyKeys = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const big = sql.onDialectOrElse({ pg: () => sql.literal("BIGINT"), orElse: () => sql.literal("INTEGER") })
  yield* sql`CREATE TABLE IF NOT EXISTS idempotency_keys (
    org_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    message_id TEXT NOT NULL,
    answer TEXT,
    claim_token TEXT NOT NULL,
    locked_until ${big} NOT NULL,
    created_at ${big} NOT NULL,
    PRIMARY KEY (org_id, app_id, idem_key)
  )`
  yield* sql`CREATE INDEX IF NOT EXISTS idempotency_keys_created ON idempotency_keys (created_at)`
})

/**
 * A message's trace (W3C traceparent of the span that accepted it, NULL when not traced): its receipt, however late,
 * joins the same trace (src/observability/Tracing.ts).
 */
const messageTrace = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE messages ADD COLUMN trace TEXT`
})

/**
 * CDR exports (storage/CdrStore.ts): a final message without `cdr_batch` is due; an export run gives a batch of them
 * its number, writes their objects, then marks the batch done. The due index is what a message that finalises adds
 * on the hot path; the batch index lets a batch be read back in object order (organisation, hour, id), and retention
 * delete only rows whose batch is done.
 */
const cdrBatches = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const big = sql.onDialectOrElse({ pg: () => sql.literal("BIGINT"), orElse: () => sql.literal("INTEGER") })
  yield* sql`ALTER TABLE messages ADD COLUMN cdr_batch ${big}`
  yield* sql`CREATE INDEX IF NOT EXISTS messages_cdr_due ON messages (updated_at) WHERE status_rank = 3 AND cdr_batch IS NULL`
  yield* sql`CREATE INDEX IF NOT EXISTS messages_cdr_batch ON messages (cdr_batch, org_id, created_at, id)
    WHERE cdr_batch IS NOT NULL`
  // A batch keeps what its files are named by (prefix, format, a random token): written again after a crash, it
  // replaces its own files even if the configuration changed meanwhile, and a database restored from a backup (which
  // numbers batches again from where it was) never writes over the files of batches it does not know.
  yield* sql`CREATE TABLE IF NOT EXISTS cdr_batches (
    id ${big} PRIMARY KEY,
    token TEXT NOT NULL,
    prefix TEXT NOT NULL,
    format TEXT NOT NULL,
    state TEXT NOT NULL,
    messages INTEGER NOT NULL,
    objects INTEGER NOT NULL DEFAULT 0,
    created_at ${big} NOT NULL,
    done_at ${big}
  )`
  // Retention walks old messages by age; the existing (org_id, created_at) index cannot serve a scan across orgs.
  yield* sql`CREATE INDEX IF NOT EXISTS messages_created ON messages (created_at)`
})

/**
 * No statistics on `status_rank` on PostgreSQL (bench/RESULTS.md, Issue 16 fifth round): autovacuum takes them when the
 * store is quiet and nearly every part and message is final, and they told the planner that "not final yet" matches
 * nothing, so in the next burst it chose plans that read every unfinished part once per row of a batch (the bench
 * stalled). Without them it assumes a third. Online: `SET STATISTICS` takes a lock that reads and writes do not wait
 * for (a test holds traffic's locks while it runs). SQLite is left as it is: this was measured on PostgreSQL only.
 */
const pgStatusStatistics = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql.onDialectOrElse({
    pg: () =>
      Effect.gen(function*() {
        yield* sql`ALTER TABLE message_parts ALTER COLUMN status_rank SET STATISTICS 0`
        yield* sql`ALTER TABLE messages ALTER COLUMN status_rank SET STATISTICS 0`
      }),
    orElse: () => Effect.void
  })
})

export const messageMigrations: Record<string, Effect.Effect<void, unknown, SqlClient.SqlClient>> = {
  "0001_messages": initMessages,
  "0008_orphan_receipt_ref": orphanReceiptRef,
  "0009_handed_parts": handedParts,
  "0010_parts_awaiting_receipt": partsAwaitingReceipt,
  "0014_message_search": messageSearch,
  "0018_idempotency_keys": idempotencyKeys,
  "0019_message_trace": messageTrace,
  "0021_cdr_batches": cdrBatches,
  "0027_pg_status_statistics": pgStatusStatistics
}
