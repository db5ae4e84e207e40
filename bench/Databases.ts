/**
 * Throwaway databases for the store benchmarks: a SQLite file in a temporary folder, or a PostgreSQL database created
 * on the local server (trust auth, as in the tests) and dropped afterwards, however the measurement ends; and the
 * message those benchmarks store.
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted } from "effect"
import { Reactivity } from "effect/reactivity"
import type { SqlClient } from "effect/sql"
import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import * as Path from "node:path"
import type { NewMessage } from "../src/storage/MessageStore.ts"
import { NodeSqliteClient } from "../src/storage/NodeSqliteClient.ts"

/** The i-th message a store benchmark accepts: a one-part OTP text to one of 100,000 numbers, from one of five apps. */
export const storeMessage = (id: string, i: number, overrides?: Partial<NewMessage>): NewMessage => ({
  id,
  orgId: "org_bench",
  appId: `app_${i % 5}`,
  clientRef: undefined,
  to: `4915${String(i % 100_000).padStart(8, "0")}`,
  from: "ACME",
  text: "Your code is 123456",
  encoding: "gsm7",
  segments: 1,
  validitySeconds: undefined,
  routeLinkId: "link1",
  createdAt: Date.now(),
  ...overrides
})

const pgUrl = (db: string) => `postgres://${process.env.PGUSER ?? "postgres"}@${process.env.PGHOST ?? "127.0.0.1"}:5432/${db}`

const onAdmin = (statement: string) =>
  Effect.gen(function*() {
    const admin = yield* PgClient.make({ url: Redacted.make(pgUrl("test")), maxConnections: 1 })
    yield* admin.unsafe(statement)
  }).pipe(Effect.scoped, Effect.provide(Reactivity.layer))

/** `use` against a fresh SQLite file (folder `prefix…` in the system's temp dir, removed after). */
export const onSqlite = <A, E>(prefix: string, use: Effect.Effect<A, E, SqlClient.SqlClient>) =>
  Effect.gen(function*() {
    const dir = yield* Effect.promise(() => Fs.mkdtemp(Path.join(Os.tmpdir(), prefix)))
    return yield* use.pipe(
      Effect.provide(NodeSqliteClient.layer({ filename: Path.join(dir, "db.sqlite") }).pipe(Layer.orDie)),
      Effect.ensuring(Effect.promise(() => Fs.rm(dir, { recursive: true, force: true })))
    )
  })

/** `use` against a new PostgreSQL database `name` (dropped after, even with connections left open). */
export const onPostgres = <A, E>(name: string, use: Effect.Effect<A, E, SqlClient.SqlClient>) =>
  Effect.acquireUseRelease(
    Effect.as(onAdmin(`CREATE DATABASE ${name}`), name),
    () => use.pipe(Effect.provide(PgClient.layer({ url: Redacted.make(pgUrl(name)), maxConnections: 4 }).pipe(Layer.orDie))),
    () => onAdmin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).pipe(Effect.ignore)
  )
