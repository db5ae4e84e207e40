/**
 * SQL migrations of the actor registry (which entity runs on which runner, for the admin RPC).
 */
import { Effect } from "effect"
import { SqlClient } from "effect/sql"

/**
 * Where each live actor runs (`ActorRegistry`). Times are epoch milliseconds, like every other table; the index on
 * `runner` serves the one-statement heartbeat of each process.
 */
const initActorRegistry = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const big = sql.onDialectOrElse({ pg: () => sql.literal("BIGINT"), orElse: () => sql.literal("INTEGER") })
  yield* sql`CREATE TABLE IF NOT EXISTS actor_registry (
    entity_type TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    runner TEXT NOT NULL,
    started_at ${big} NOT NULL,
    heartbeat_at ${big} NOT NULL,
    PRIMARY KEY (entity_type, entity_id)
  )`
  yield* sql`CREATE INDEX IF NOT EXISTS actor_registry_runner ON actor_registry (runner)`
})

/** Merged into the store's Migrator record after "0003_routing". */
export const registryMigrations: Record<string, Effect.Effect<void, unknown, SqlClient.SqlClient>> = {
  "0004_actor_registry": initActorRegistry
}
