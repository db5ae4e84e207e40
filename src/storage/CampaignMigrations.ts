/**
 * Tables of audiences and campaigns: contact lists and their contacts (and imports being staged), campaigns, each started campaign's recipients
 * (its persisted cursor and every recipient's outcome with the rule that decided it), moderation settings per
 * organisation, and the campaign a message belongs to. Ids are part of the one ordered list in layers/Migrations.ts.
 */
import { Effect } from "effect"
import { SqlClient } from "effect/sql"

/**
 * A list's contacts keep their upload order (`pos`) and are unique by number within the list (duplicates collapse);
 * `vars` is a JSON object of the row's other columns, keys in lower case (template variables).
 */
const contactLists = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const big = sql.onDialectOrElse({ pg: () => sql.literal("BIGINT"), orElse: () => sql.literal("INTEGER") })
  yield* sql`CREATE TABLE IF NOT EXISTS contact_lists (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    name TEXT NOT NULL,
    default_country TEXT,
    contacts INTEGER NOT NULL DEFAULT 0,
    columns TEXT NOT NULL DEFAULT '[]',
    created_at ${big} NOT NULL,
    updated_at ${big} NOT NULL
  )`
  yield* sql`CREATE INDEX IF NOT EXISTS contact_lists_org ON contact_lists (org_id, created_at)`
  yield* sql`CREATE TABLE IF NOT EXISTS contacts (
    list_id TEXT NOT NULL REFERENCES contact_lists (id) ON DELETE CASCADE,
    pos ${big} NOT NULL,
    msisdn TEXT NOT NULL,
    country TEXT,
    vars TEXT NOT NULL DEFAULT '{}',
    created_at ${big} NOT NULL,
    PRIMARY KEY (list_id, msisdn)
  )`
  yield* sql`CREATE INDEX IF NOT EXISTS contacts_pos ON contacts (list_id, pos)`
  // An import in progress: its rows are staged here (deduplicated within the upload by the key) and moved into
  // `contacts` in one transaction at the end, so a failed upload leaves the list as it was (storage/ContactStore.ts).
  yield* sql`CREATE TABLE IF NOT EXISTS contact_imports (
    id TEXT PRIMARY KEY,
    list_id TEXT NOT NULL REFERENCES contact_lists (id) ON DELETE CASCADE,
    started_at ${big} NOT NULL
  )`
  yield* sql`CREATE INDEX IF NOT EXISTS contact_imports_list ON contact_imports (list_id)`
  yield* sql`CREATE TABLE IF NOT EXISTS contact_import_rows (
    import_id TEXT NOT NULL REFERENCES contact_imports (id) ON DELETE CASCADE,
    line ${big} NOT NULL,
    msisdn TEXT NOT NULL,
    country TEXT,
    vars TEXT NOT NULL,
    PRIMARY KEY (import_id, msisdn)
  )`
})

/**
 * A campaign row holds its specification (JSON where structured), its state and cursor; `campaign_recipients` is
 * copied from the lists when it first starts (deduplicated by number), read in `pos` order from `cursor`.
 */
const campaigns = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const big = sql.onDialectOrElse({ pg: () => sql.literal("BIGINT"), orElse: () => sql.literal("INTEGER") })
  yield* sql`CREATE TABLE IF NOT EXISTS campaigns (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    name TEXT NOT NULL,
    app_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    template TEXT NOT NULL,
    lists TEXT NOT NULL,
    message_class TEXT NOT NULL,
    encoding TEXT NOT NULL,
    start_at TEXT,
    start_time ${big},
    send_window TEXT,
    throttle INTEGER NOT NULL,
    validity_seconds INTEGER,
    canary TEXT,
    auto_pause TEXT,
    state TEXT NOT NULL,
    pause_reason TEXT,
    rejection_reason TEXT,
    flags TEXT NOT NULL DEFAULT '[]',
    created_by TEXT NOT NULL,
    editors TEXT NOT NULL DEFAULT '[]',
    submitted_by TEXT,
    approved_by TEXT,
    audience ${big} NOT NULL DEFAULT 0,
    cursor_pos ${big} NOT NULL DEFAULT 0,
    version INTEGER NOT NULL DEFAULT 0,
    created_at ${big} NOT NULL,
    updated_at ${big} NOT NULL,
    submitted_at ${big},
    started_at ${big},
    finished_at ${big}
  )`
  yield* sql`CREATE INDEX IF NOT EXISTS campaigns_org ON campaigns (org_id, created_at)`
  yield* sql`CREATE INDEX IF NOT EXISTS campaigns_state ON campaigns (state, submitted_at)`
  yield* sql`CREATE TABLE IF NOT EXISTS campaign_recipients (
    campaign_id TEXT NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    pos ${big} NOT NULL,
    msisdn TEXT NOT NULL,
    country TEXT,
    vars TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL,
    next_at ${big},
    attempts INTEGER NOT NULL DEFAULT 0,
    message_id TEXT,
    reason TEXT,
    rule_id TEXT,
    updated_at ${big} NOT NULL,
    PRIMARY KEY (campaign_id, pos)
  )`
  yield* sql`CREATE UNIQUE INDEX IF NOT EXISTS campaign_recipients_msisdn ON campaign_recipients (campaign_id, msisdn)`
  yield* sql`CREATE INDEX IF NOT EXISTS campaign_recipients_state ON campaign_recipients (campaign_id, state, next_at)`
  // Recipients of one state in position order (/recipients?state=excluded pages by position): without it a page of a
  // rare state scans the campaign's rows from the cursor on.
  yield* sql`CREATE INDEX IF NOT EXISTS campaign_recipients_state_pos ON campaign_recipients (campaign_id, state, pos)`
  yield* sql`ALTER TABLE messages ADD COLUMN campaign_id TEXT`
  yield* sql`CREATE INDEX IF NOT EXISTS messages_campaign ON messages (campaign_id) WHERE campaign_id IS NOT NULL`
  yield* sql`CREATE TABLE IF NOT EXISTS moderation_settings (
    org_id TEXT PRIMARY KEY,
    approval TEXT NOT NULL,
    keywords TEXT NOT NULL DEFAULT '[]',
    urls TEXT NOT NULL DEFAULT '[]',
    updated_at ${big} NOT NULL
  )`
})

/** The trace of the request that started a campaign: its batches' spans link to it (src/observability/Tracing.ts). */
const campaignTrace = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE campaigns ADD COLUMN trace TEXT`
})

export const campaignMigrations: Record<string, Effect.Effect<void, unknown, SqlClient.SqlClient>> = {
  "0012_contact_lists": contactLists,
  "0013_campaigns": campaigns,
  "0020_campaign_trace": campaignTrace
}
