/**
 * The gateway's PostgreSQL sessions (layers/Storage.ts): reads priced for a working set in memory, so a batch of key
 * lookups is never planned as a scan of a whole young table (bench/RESULTS.md, Issue 16 fifth round).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { decodeConfig } from "../../src/layers/Config.ts"
import { sqlLayer } from "../../src/layers/Storage.ts"
import { freshPgDatabase, pgUrl } from "../fixtures/Databases.ts"

describe("PostgreSQL sessions", () => {
  it.effect("every connection of the gateway's pool prices random reads at 1.1", () =>
    Effect.gen(function*() {
      const database = yield* freshPgDatabase
      const config = yield* decodeConfig({ storage: { kind: "postgres", url: pgUrl(database) }, links: [] })
      const settings = yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        // Several at once, so more than one connection of the pool answers.
        return yield* Effect.all(
          Array.from({ length: 4 }, () => sql<{ cost: string }>`SELECT current_setting('random_page_cost') AS cost, pg_sleep(0.05)`),
          { concurrency: 4 }
        )
      }).pipe(Effect.provide(Layer.fresh(sqlLayer(config))))
      expect(settings.map(([row]) => row?.cost)).toEqual(["1.1", "1.1", "1.1", "1.1"])
    }).pipe(Effect.scoped), 30_000)
})
