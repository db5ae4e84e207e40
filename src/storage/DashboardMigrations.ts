/**
 * The live figures' migration: counters per second and per minute (DashboardStats). The one ordered list of every
 * feature's migrations is composed in layers/Migrations.ts.
 */
import { Effect } from "effect"
import { SqlClient } from "effect/sql"

/**
 * Two tables of the same shape: a count per scope (`o:` organisation, `c:` campaign, `l:` link), bucket start (epoch
 * ms), metric and key. Each node adds its own counts (upsert `n = n + excluded.n`), so a read sums the cluster. The
 * primary key serves the reads (one scope, a time range); the `at` index the retention deletes.
 */
const dashboard = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const big = sql.onDialectOrElse({ pg: () => sql.literal("BIGINT"), orElse: () => sql.literal("INTEGER") })
  for (const table of ["dashboard_seconds", "dashboard_minutes"]) {
    yield* sql`CREATE TABLE IF NOT EXISTS ${sql(table)} (
      scope TEXT NOT NULL,
      at ${big} NOT NULL,
      metric TEXT NOT NULL,
      key TEXT NOT NULL,
      n ${big} NOT NULL,
      PRIMARY KEY (scope, at, metric, key)
    )`
    yield* sql`CREATE INDEX IF NOT EXISTS ${sql(`${table}_at`)} ON ${sql(table)} (at)`
  }
})

export const dashboardMigrations: Record<string, Effect.Effect<void, unknown, SqlClient.SqlClient>> = {
  "0015_dashboard": dashboard
}
