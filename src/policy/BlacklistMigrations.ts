/**
 * SQL migrations of blacklists (their definitions and API-managed entries).
 */
import { Effect } from "effect"
import { SqlClient } from "effect/sql"

/**
 * The blacklist overlay: numbers added to or removed from a list through the API, on top of the list's file in the
 * object store, shared by every gateway node. `number` is the digits only (no `+`); `listed` is 1 for an added
 * number and 0 for a removed one (a removal masks the number in the file, so the row is kept, not deleted).
 *
 * `blacklist_versions` has one row per list with entries, bumped in the transaction of every change to that list:
 * the nodes poll this small table and reload only the entries of a list whose version moved. The row also orders
 * concurrent writers of one list (they lock it first).
 */
const initBlacklists = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const big = sql.onDialectOrElse({ pg: () => sql.literal("BIGINT"), orElse: () => sql.literal("INTEGER") })
  yield* sql`CREATE TABLE IF NOT EXISTS blacklist_entries (
    list TEXT NOT NULL,
    number TEXT NOT NULL,
    listed INTEGER NOT NULL,
    at ${big} NOT NULL,
    PRIMARY KEY (list, number)
  )`
  yield* sql`CREATE TABLE IF NOT EXISTS blacklist_versions (
    list TEXT PRIMARY KEY,
    version ${big} NOT NULL,
    updated_at ${big} NOT NULL
  )`
})

/** Merged into the store's Migrator record after "0004_actor_registry". */
export const blacklistMigrations: Record<string, Effect.Effect<void, unknown, SqlClient.SqlClient>> = {
  "0005_blacklists": initBlacklists
}
