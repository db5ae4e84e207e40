/**
 * SQL migrations of accounts: users, organisations, members, apps, keys, tokens, audit, invitations.
 */
import { Effect } from "effect"
import { SqlClient } from "effect/sql"

/** Booleans are INTEGER 0/1 and times epoch ms in BIGINT/INTEGER on both dialects, so the queries stay the same. */
const initAccounts = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const big = sql.onDialectOrElse({ pg: () => sql.literal("BIGINT"), orElse: () => sql.literal("INTEGER") })
  yield* sql`CREATE TABLE IF NOT EXISTS organisations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at ${big} NOT NULL
  )`
  yield* sql`CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    password_hash TEXT,
    superadmin INTEGER NOT NULL DEFAULT 0,
    created_at ${big} NOT NULL
  )`
  yield* sql`CREATE TABLE IF NOT EXISTS members (
    org_id TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    created_at ${big} NOT NULL,
    PRIMARY KEY (org_id, user_id)
  )`
  yield* sql`CREATE INDEX IF NOT EXISTS members_user ON members (user_id, created_at)`
  yield* sql`CREATE TABLE IF NOT EXISTS apps (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    allow_list TEXT NOT NULL,
    limits TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    created_at ${big} NOT NULL,
    updated_at ${big} NOT NULL,
    deleted_at ${big}
  )`
  yield* sql`CREATE INDEX IF NOT EXISTS apps_org ON apps (org_id, created_at)`
  yield* sql`CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    org_id TEXT NOT NULL,
    prefix TEXT NOT NULL,
    hash TEXT NOT NULL,
    created_at ${big} NOT NULL,
    revoked_at ${big},
    last_used_at ${big}
  )`
  yield* sql`CREATE INDEX IF NOT EXISTS api_keys_app ON api_keys (app_id, created_at)`
  yield* sql`CREATE TABLE IF NOT EXISTS refresh_tokens (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    org_id TEXT NOT NULL,
    hash TEXT NOT NULL,
    expires_at ${big} NOT NULL,
    revoked_at ${big},
    created_at ${big} NOT NULL,
    replaced_by TEXT
  )`
  yield* sql`CREATE INDEX IF NOT EXISTS refresh_tokens_user ON refresh_tokens (user_id)`
  yield* sql`CREATE TABLE IF NOT EXISTS audit_log (
    id TEXT PRIMARY KEY,
    org_id TEXT,
    actor_user_id TEXT,
    actor_app_id TEXT,
    action TEXT NOT NULL,
    target TEXT,
    ip TEXT,
    at ${big} NOT NULL,
    detail TEXT
  )`
  yield* sql`CREATE INDEX IF NOT EXISTS audit_log_org_at ON audit_log (org_id, at)`
  yield* sql`CREATE TABLE IF NOT EXISTS signing_keys (
    kid TEXT PRIMARY KEY,
    secret TEXT NOT NULL,
    created_at ${big} NOT NULL
  )`
})

/** Merged into the store's Migrator record after "0001_messages". */
/** An app's default message class (contact policy): what its submissions that do not say are. */
const appMessageClass = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE apps ADD COLUMN message_class TEXT NOT NULL DEFAULT 'transactional'`
})

/**
 * Invitations are tokens (only their hash is kept), single use and expiring; registrations awaiting the proof of
 * their mailbox (auth.requireVerifiedEmail) wait in `pending_registrations` and create nothing until confirmed.
 * Members added by the old e-mail invitations who never registered joined without consent: they are removed.
 */
const invitationTokens = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const big = sql.onDialectOrElse({ pg: () => sql.literal("BIGINT"), orElse: () => sql.literal("INTEGER") })
  yield* sql`CREATE TABLE IF NOT EXISTS invitations (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    role TEXT NOT NULL,
    hash TEXT NOT NULL,
    invited_by TEXT,
    created_at ${big} NOT NULL,
    expires_at ${big} NOT NULL,
    accepted_at ${big},
    accepted_by TEXT,
    revoked_at ${big}
  )`
  yield* sql`CREATE INDEX IF NOT EXISTS invitations_org ON invitations (org_id, created_at)`
  yield* sql`CREATE TABLE IF NOT EXISTS pending_registrations (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL,
    name TEXT NOT NULL,
    org_name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    created_at ${big} NOT NULL,
    expires_at ${big} NOT NULL,
    used_at ${big}
  )`
  yield* sql`CREATE INDEX IF NOT EXISTS pending_registrations_expiry ON pending_registrations (expires_at)`
  yield* sql`DELETE FROM members WHERE user_id IN (SELECT id FROM users WHERE password_hash IS NULL)`
})

/**
 * The audit log filtered by action, actor or target and paged by (at, id): one index per filter, each ending in
 * (at, id) so the newest matching entries are read in order and a rare value costs a few probes, not a walk through
 * the organisation's whole log (bench/audit-filters.ts). (org_id, at) grows the id so ties in a millisecond page
 * from the index too.
 */
const auditFilters = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE INDEX IF NOT EXISTS audit_log_org_at_id ON audit_log (org_id, at, id)`
  yield* sql`DROP INDEX IF EXISTS audit_log_org_at`
  yield* sql`CREATE INDEX IF NOT EXISTS audit_log_org_action ON audit_log (org_id, action, at, id)`
  yield* sql`CREATE INDEX IF NOT EXISTS audit_log_org_user ON audit_log (org_id, actor_user_id, at, id)`
  yield* sql`CREATE INDEX IF NOT EXISTS audit_log_org_app ON audit_log (org_id, actor_app_id, at, id)`
  yield* sql`CREATE INDEX IF NOT EXISTS audit_log_org_target ON audit_log (org_id, target, at, id)`
})

/** Retention deletes audit entries by age across organisations (pipeline/Retention.ts): oldest first, by `at`. */
const auditRetention = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log (at)`
})

/**
 * An app's status callback (docs/callbacks.md): where its messages' moves go, which moves (final | all), its signing
 * secret and, for a day after a rotation, the previous one (both sign until then).
 */
const appCallbacks = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const big = sql.onDialectOrElse({ pg: () => sql.literal("BIGINT"), orElse: () => sql.literal("INTEGER") })
  yield* sql`ALTER TABLE apps ADD COLUMN callback_url TEXT`
  yield* sql`ALTER TABLE apps ADD COLUMN callback_events TEXT`
  yield* sql`ALTER TABLE apps ADD COLUMN callback_secret TEXT`
  yield* sql`ALTER TABLE apps ADD COLUMN callback_secret_previous TEXT`
  yield* sql`ALTER TABLE apps ADD COLUMN callback_secret_previous_until ${big}`
})

/**
 * An app's SMPP credentials (docs/smpp-server.md): its systemId as given, the key it is unique by (lower case, across
 * the installation: a bind names no organisation), and its password's hash. A deleted app's are cleared.
 */
const appSmpp = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE apps ADD COLUMN smpp_system_id TEXT`
  yield* sql`ALTER TABLE apps ADD COLUMN smpp_system_key TEXT`
  yield* sql`ALTER TABLE apps ADD COLUMN smpp_password_hash TEXT`
  yield* sql`CREATE UNIQUE INDEX IF NOT EXISTS apps_smpp_system_key ON apps (smpp_system_key)`
})

export const accountMigrations: Record<string, Effect.Effect<void, unknown, SqlClient.SqlClient>> = {
  "0002_accounts": initAccounts,
  "0007_app_message_class": appMessageClass,
  "0011_invitation_tokens": invitationTokens,
  "0017_audit_filters": auditFilters,
  "0022_audit_retention": auditRetention,
  "0023_app_callbacks": appCallbacks,
  "0026_app_smpp": appSmpp
}
