/**
 * SQL migrations of links, pools and routing rules.
 */
import { Effect } from "effect"
import { SqlClient } from "effect/sql"

/**
 * The live routing configuration (links, pools, rules) shared by every process on the database. Each row keeps its
 * object as JSON so a new link option needs no migration; `position` keeps the configured order. `routing_version`
 * has one row, bumped in the transaction of every change: the other processes poll it to know when to reload.
 * The row is inserted by the first process that seeds the tables, so its presence means "seeded".
 */
const initRouting = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const big = sql.onDialectOrElse({ pg: () => sql.literal("BIGINT"), orElse: () => sql.literal("INTEGER") })
  yield* sql`CREATE TABLE IF NOT EXISTS routing_links (
    id TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1,
    position INTEGER NOT NULL,
    updated_at ${big} NOT NULL
  )`
  yield* sql`CREATE TABLE IF NOT EXISTS routing_pools (
    id TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    position INTEGER NOT NULL,
    updated_at ${big} NOT NULL
  )`
  yield* sql`CREATE TABLE IF NOT EXISTS routing_routes (
    id INTEGER PRIMARY KEY,
    rules TEXT NOT NULL,
    updated_at ${big} NOT NULL
  )`
  yield* sql`CREATE TABLE IF NOT EXISTS routing_version (
    id INTEGER PRIMARY KEY,
    version ${big} NOT NULL,
    updated_at ${big} NOT NULL
  )`
})

/** Merged into the store's Migrator record after "0002_accounts". */
export const routingMigrations: Record<string, Effect.Effect<void, unknown, SqlClient.SqlClient>> = {
  "0003_routing": initRouting
}
