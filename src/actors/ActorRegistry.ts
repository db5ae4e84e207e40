/**
 * Where every live actor runs. effect/cluster has no API that lists live entities (a runner knows only its own, and
 * only through private state), so each actor registers itself here when it starts and is removed when it stops; the
 * admin RPC reads this table to answer "which node holds link X".
 *
 * A row is owned by one incarnation (runner + start time): a late finalizer of an actor that has since moved never
 * deletes the row its new runner wrote. A runner that dies leaves its rows behind; they turn `stale` once its
 * heartbeat stops and are replaced when the actor starts on a survivor.
 */
import { Context, Duration, Effect, Layer, Schedule, Schema } from "effect"
import type { Scope } from "effect"
import { messageWithCauses } from "../domain/Errors.ts"
import { SqlClient } from "effect/sql"
import { hostname } from "node:os"

/**
 * The address of this process's cluster runner, as effect/cluster's runner table spells it (`host:port`). A cluster
 * node provides its runner address; the embedded mode keeps this default.
 */
export const RunnerIdentity = Context.Reference<string>("smsgw/actors/RunnerIdentity", {
  defaultValue: () => `${hostname()}:${process.pid}`
})

export interface ActorEntry {
  readonly type: string
  readonly id: string
  readonly runner: string
  readonly startedAt: number
  readonly heartbeatAt: number
  /** Its runner has not renewed it for `staleAfterMs`: the runner is probably dead and the actor not restarted yet. */
  readonly stale: boolean
}

export class RegistryError extends Schema.TaggedError<RegistryError>()("RegistryError", {
  message: Schema.String,
  /** The SqlError behind it, when there is one: what the database said, for the logs. */
  cause: Schema.optionalKey(Schema.Defect())
}) {}

export interface ActorRegistryOptions {
  /** How often this process renews the rows of its actors (one statement for all of them). Default 5 s. */
  readonly heartbeatMs?: number
  /** A row not renewed for this long is reported stale. Default 15 s. */
  readonly staleAfterMs?: number
  /** A row not renewed for this long is deleted (its runner is gone and the actor did not restart). Default 5 min. */
  readonly pruneAfterMs?: number
}

export class ActorRegistry extends Context.Service<ActorRegistry, {
  /**
   * Records that actor `type`/`id` runs here, until the caller's scope closes (the actor stops). Never fails: an
   * actor must start even when the registry's database does not answer; the next heartbeat writes the row then.
   */
  readonly register: (type: string, id: string) => Effect.Effect<void, never, Scope.Scope>
  /** Every registered actor (of one type), ordered by type and id. */
  readonly list: (type?: string) => Effect.Effect<ReadonlyArray<ActorEntry>, RegistryError>
}>()("smsgw/actors/ActorRegistry") {
  static readonly layer = (options: ActorRegistryOptions = {}) => Layer.effect(ActorRegistry, make(options))
}

type Int = number | string | bigint

interface Row {
  readonly entity_type: string
  readonly entity_id: string
  readonly runner: string
  readonly started_at: Int
  readonly heartbeat_at: Int
}

const writeTimeout = Duration.seconds(5)

const make = Effect.fnUntraced(function*(options: ActorRegistryOptions) {
  const sql = yield* SqlClient.SqlClient
  const runner = yield* RunnerIdentity
  const heartbeatMs = options.heartbeatMs ?? 5_000
  const staleAfterMs = options.staleAfterMs ?? 15_000
  const pruneAfterMs = options.pruneAfterMs ?? 300_000
  /** Every incarnation registered by this process started after this: older rows of the same runner are dead. */
  const processStartedAt = Date.now()
  /** This process's registrations: `type\u0000id` → start time of the incarnation. */
  const local = new Map<string, { readonly type: string; readonly id: string; readonly startedAt: number }>()
  const keyOf = (type: string, id: string) => `${type}\u0000${id}`

  const failed = (what: string) => (cause: unknown) =>
    new RegistryError({ message: `${what}: ${messageWithCauses(cause)}`, cause })

  /** A new incarnation takes the row, whoever held it before. */
  const claim = (type: string, id: string, startedAt: number, now: number) =>
    sql`INSERT INTO actor_registry (entity_type, entity_id, runner, started_at, heartbeat_at)
      VALUES (${type}, ${id}, ${runner}, ${startedAt}, ${now})
      ON CONFLICT (entity_type, entity_id) DO UPDATE SET
        runner = excluded.runner, started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at`

  /** Put back a row that went missing (written while the database was down, removed by hand), never taking another's. */
  const restore = (type: string, id: string, startedAt: number, now: number) =>
    sql`INSERT INTO actor_registry (entity_type, entity_id, runner, started_at, heartbeat_at)
      VALUES (${type}, ${id}, ${runner}, ${startedAt}, ${now})
      ON CONFLICT (entity_type, entity_id) DO NOTHING`

  const heartbeat = Effect.gen(function*() {
    const now = Date.now()
    yield* sql`DELETE FROM actor_registry WHERE heartbeat_at < ${now - pruneAfterMs}`
    if (local.size === 0) return
    const renewed = yield* sql<{ readonly n: Int }>`UPDATE actor_registry SET heartbeat_at = ${now}
      WHERE runner = ${runner} AND started_at >= ${processStartedAt} RETURNING 1 AS n`
    if (renewed.length >= local.size) return
    for (const entry of local.values()) yield* restore(entry.type, entry.id, entry.startedAt, now)
  }).pipe(
    Effect.timeout(writeTimeout),
    Effect.catchCause((cause) =>
      Effect.logWarning("actor registry heartbeat failed").pipe(Effect.annotateLogs({ runner, cause: String(cause) }))
    )
  )
  // A runner restarted at the same address: what its previous life registered is not running any more.
  yield* sql`DELETE FROM actor_registry WHERE runner = ${runner} AND started_at < ${processStartedAt}`.pipe(
    Effect.timeout(writeTimeout),
    Effect.catchCause((cause) =>
      Effect.logWarning("actor registry: clearing this runner's old rows failed").pipe(
        Effect.annotateLogs({ runner, cause: String(cause) })
      )
    )
  )
  yield* heartbeat.pipe(Effect.repeat(Schedule.spaced(Duration.millis(heartbeatMs))), Effect.forkScoped)

  const register = (type: string, id: string): Effect.Effect<void, never, Scope.Scope> =>
    Effect.gen(function*() {
      const startedAt = Date.now()
      const key = keyOf(type, id)
      local.set(key, { type, id, startedAt })
      yield* Effect.addFinalizer(() => {
        if (local.get(key)?.startedAt === startedAt) local.delete(key)
        return sql`DELETE FROM actor_registry
          WHERE entity_type = ${type} AND entity_id = ${id} AND runner = ${runner} AND started_at = ${startedAt}`.pipe(
          Effect.timeout(writeTimeout),
          Effect.catchCause((cause) =>
            Effect.logWarning("actor registry: removing a stopped actor failed").pipe(
              Effect.annotateLogs({ type, id, cause: String(cause) })
            )
          )
        )
      })
      yield* claim(type, id, startedAt, startedAt).pipe(
        Effect.timeout(writeTimeout),
        Effect.catchCause((cause) =>
          Effect.logWarning("actor registry: registering failed; the heartbeat retries").pipe(
            Effect.annotateLogs({ type, id, cause: String(cause) })
          )
        )
      )
    })

  const list = (type?: string) =>
    (type === undefined
      ? sql<Row>`SELECT entity_type, entity_id, runner, started_at, heartbeat_at FROM actor_registry
          ORDER BY entity_type, entity_id`
      : sql<Row>`SELECT entity_type, entity_id, runner, started_at, heartbeat_at FROM actor_registry
          WHERE entity_type = ${type} ORDER BY entity_id`).pipe(
        Effect.mapError(failed("reading the actor registry")),
        Effect.map((rows) => {
          const now = Date.now()
          return rows.map((row): ActorEntry => {
            const heartbeatAt = Number(row.heartbeat_at)
            return {
              type: row.entity_type,
              id: row.entity_id,
              runner: row.runner,
              startedAt: Number(row.started_at),
              heartbeatAt,
              stale: now - heartbeatAt > staleAfterMs
            }
          })
        }),
        Effect.withSpan("ActorRegistry.list")
      )

  return ActorRegistry.of({ register, list })
})
