/**
 * The SQL client of each mode: SQLite (node:sqlite) or PostgreSQL, and the runner's own storage.
 */
import { Effect, Layer, Redacted } from "effect"
import { mkdirSync } from "node:fs"
import { dirname } from "node:path"
import { NodeSqliteClient } from "../storage/NodeSqliteClient.ts"
import type { EffectiveConfig } from "./Config.ts"

export const defaultSqlitePath = "./data/gateway.db"
const defaultRunnerPath = "./data/runner.db"

/** The SQL client of the configured storage: node:sqlite for one machine, PostgreSQL for a cluster. */
export const sqlLayer = (config: EffectiveConfig) => {
  const storage = config.storage
  if (storage.kind === "postgres" && storage.url !== undefined) {
    const url = storage.url
    // Loaded only for a cluster: the embedded mode does without the driver (about 45 MB of memory at start).
    return Layer.unwrap(Effect.map(
      Effect.promise(() => import("@effect/sql-pg")),
      ({ PgClient }) => PgClient.layer({
        url: Redacted.make(url),
        connectTimeout: "5 seconds",
        maxConnections: 10,
        // The store reads rows by key from a working set that is in memory: PostgreSQL's default random_page_cost (4,
        // a spinning disk's) priced a batch of key lookups above a scan of the whole table, so every batch of a
        // message's writes read all of a young table (bench/RESULTS.md, Issue 16 fifth round). PostgreSQL's own
        // advice for memory and SSDs is about 1.1; set for the gateway's sessions only.
        startupParameters: { random_page_cost: "1.1" }
      })
    ))
  }
  const path = storage.path ?? defaultSqlitePath
  if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true })
  return NodeSqliteClient.layer({ filename: path }).pipe(Layer.orDie)
}

/**
 * The SQL client of the embedded cluster runtime (SingleRunner's persisted messages): the message store's own
 * database with SQLite; with PostgreSQL storage a local SQLite file, since a single runner's state is its own.
 */
export const runnerSqlLayer = (config: EffectiveConfig) => {
  const storage = config.storage
  if (storage.kind !== "postgres") return sqlLayer(config)
  const path = storage.runnerPath ?? defaultRunnerPath
  if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true })
  return NodeSqliteClient.layer({ filename: path }).pipe(Layer.orDie)
}
