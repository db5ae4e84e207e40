/**
 * An effect/sql client over node:sqlite (the embedded mode's database).
 */
import { Array as Arr, Channel, Context, Effect, Layer, Scope, Semaphore, Stream } from "effect"
import * as Cause from "effect/Cause"
import { Reactivity } from "effect/reactivity"
import { SqlClient, SqlError, Statement } from "effect/sql"
import type { SqlConnection } from "effect/sql"
import { DatabaseSync } from "node:sqlite"
import type { SQLInputValue, StatementSync } from "node:sqlite"
import { Worker } from "node:worker_threads"

/**
 * Options of the `node:sqlite` client.
 */
export interface NodeSqliteClientConfig {
  /** Path of the database file, or ":memory:". */
  readonly filename: string
  readonly readonly?: boolean | undefined
  /** journal_mode=WAL with synchronous=NORMAL; default true. */
  readonly walMode?: boolean | undefined
  /** How long a statement waits for another process's lock; default 5000. */
  readonly busyTimeoutMs?: number | undefined
  /** Prepared statements kept per connection, least recently used evicted first; default 256. */
  readonly prepareCacheSize?: number | undefined
  /**
   * With WAL, checkpoints run on a thread of their own every this many ms instead of inside the commit that crosses
   * SQLite's 1,000-page mark on the main thread; 0 keeps SQLite's automatic checkpoints. Default 500.
   */
  readonly checkpointIntervalMs?: number | undefined
  readonly spanAttributes?: Record<string, unknown> | undefined
}

/**
 * The effect/sql client over `node:sqlite`. `updateValues` has no SQLite form.
 */
export interface NodeSqliteClientService extends SqlClient.SqlClient {
  readonly config: NodeSqliteClientConfig
  readonly updateValues: never
}

/** The name this client reports as `SqlClient.driver`. */
export const driverName = "node-sqlite"

type Rows = ReadonlyArray<Record<string, unknown>>
type TransformRows = (<A extends object>(rows: ReadonlyArray<A>) => ReadonlyArray<A>) | undefined

interface CachedStatement {
  readonly statement: StatementSync
  /** Whether it returns rows (a SELECT, PRAGMA or anything with RETURNING). */
  readonly reader: boolean
  readBigInts: boolean
  returnArrays: boolean
}

const unknownError = (message: string, operation: string, cause: unknown) =>
  new SqlError.SqlError({ reason: new SqlError.UnknownError({ message, operation, cause }) })

// node:sqlite puts the extended result code in `errcode`; the classifier reads `errno`.
const toSqlError = (cause: unknown, operation: string): SqlError.SqlError => {
  if (typeof cause === "object" && cause !== null && "errcode" in cause && !("errno" in cause)) {
    Object.assign(cause, { errno: cause.errcode })
  }
  const message = cause instanceof Error ? cause.message : String(cause)
  return new SqlError.SqlError({ reason: SqlError.classifySqliteError(cause, { message, operation }) })
}

/** A query this client refuses before SQLite sees it. */
class UsageError extends Error {}

// node:sqlite refuses booleans and undefined, binds a Date as NULL and reads a plain object as named
// parameters, so values are normalised here and anything else is refused.
const bindable = (value: unknown, index: number): SQLInputValue => {
  switch (typeof value) {
    case "string":
    case "number":
    case "bigint":
      return value
    case "boolean":
      return value ? 1 : 0
    case "undefined":
      return null
    case "object":
      if (value === null) return null
      if (ArrayBuffer.isView(value)) return value as NodeJS.ArrayBufferView
      if (value instanceof Date) return value.toISOString()
  }
  throw new UsageError(`Cannot bind parameter ${index + 1} of type ${typeof value} to SQLite`)
}

const bindParams = (params: ReadonlyArray<unknown>): ReadonlyArray<SQLInputValue> => {
  let out: Array<SQLInputValue> | undefined
  for (let i = 0; i < params.length; i++) {
    const value = params[i]
    const bound = bindable(value, i)
    if (out === undefined && bound !== value) out = params.slice(0, i) as Array<SQLInputValue>
    if (out !== undefined) out.push(bound)
  }
  return out ?? (params as ReadonlyArray<SQLInputValue>)
}

// Rows come with a null prototype; callers expect plain objects.
const plainRows = (rows: Array<Record<string, unknown>>): Rows => {
  for (let i = 0; i < rows.length; i++) rows[i] = { ...rows[i] }
  return rows
}

const commentsAndSeparators = /--[^\n]*|\/\*[\s\S]*?(?:\*\/|$)|[\s;]+/g

// prepare() compiles the first statement only and silently drops the rest.
const checkSingleStatement = (sql: string, statement: StatementSync): void => {
  const source = statement.sourceSQL
  if (source.length >= sql.length) return
  if (sql.slice(source.length).replace(commentsAndSeparators, "") !== "") {
    throw new UsageError("SQLite runs one statement per query; split the SQL into several queries")
  }
}

const makeConnection = (db: DatabaseSync, cacheSize: number) => {
  const cache = new Map<string, CachedStatement>()

  const prepare = (sql: string): CachedStatement => {
    const statement = db.prepare(sql)
    checkSingleStatement(sql, statement)
    return { statement, reader: statement.columns().length > 0, readBigInts: false, returnArrays: false }
  }

  const cached = (sql: string): CachedStatement => {
    const hit = cache.get(sql)
    if (hit !== undefined) {
      cache.delete(sql)
      cache.set(sql, hit)
      return hit
    }
    const entry = prepare(sql)
    if (cache.size >= cacheSize) {
      const oldest = cache.keys().next()
      if (oldest.done !== true) cache.delete(oldest.value)
    }
    cache.set(sql, entry)
    return entry
  }

  const configure = (entry: CachedStatement, readBigInts: boolean, returnArrays: boolean): StatementSync => {
    if (entry.readBigInts !== readBigInts) {
      entry.statement.setReadBigInts(readBigInts)
      entry.readBigInts = readBigInts
    }
    if (entry.returnArrays !== returnArrays) {
      entry.statement.setReturnArrays(returnArrays)
      entry.returnArrays = returnArrays
    }
    return entry.statement
  }

  // Runs synchronously on the caller's fiber; SafeIntegers is read from it.
  const runWith = <A>(operation: string, f: (safeIntegers: boolean) => A): Effect.Effect<A, SqlError.SqlError> =>
    Effect.withFiber((fiber) => {
      try {
        return Effect.succeed(f(fiber.getRef(SqlClient.SafeIntegers)))
      } catch (cause) {
        return Effect.fail(
          cause instanceof UsageError ? unknownError(cause.message, operation, cause) : toSqlError(cause, operation)
        )
      }
    })

  const rows = (entry: CachedStatement, params: ReadonlyArray<unknown>, safeIntegers: boolean): Rows => {
    const statement = configure(entry, safeIntegers, false)
    if (entry.reader) return plainRows(statement.all(...bindParams(params)))
    statement.run(...bindParams(params))
    return []
  }

  const values = (
    entry: CachedStatement,
    params: ReadonlyArray<unknown>,
    safeIntegers: boolean
  ): ReadonlyArray<ReadonlyArray<unknown>> => {
    const statement = configure(entry, safeIntegers, true)
    if (entry.reader) return statement.all(...bindParams(params)) as unknown as ReadonlyArray<ReadonlyArray<unknown>>
    statement.run(...bindParams(params))
    return []
  }

  const transformed = (effect: Effect.Effect<Rows, SqlError.SqlError>, transformRows: TransformRows) =>
    transformRows === undefined ? effect : Effect.map(effect, (rows) => transformRows(rows))

  // A stream gets its own statement: queries issued while it is consumed may reuse the cached one.
  // Returning the iterator early resets the statement, so it does not hold a read snapshot until GC.
  const stream = (sql: string, params: ReadonlyArray<unknown>, transformRows: TransformRows) =>
    Stream.fromChannel(Channel.fromTransform((_, scope) =>
      Effect.flatMap(
        runWith("executeStream", (safeIntegers) =>
          configure(prepare(sql), safeIntegers, false).iterate(...bindParams(params))),
        (iterator) => {
          // A finished iterator starts over when called again.
          let finished = false
          const next = runWith("executeStream", () => {
            const chunk: Array<Record<string, unknown>> = []
            while (!finished && chunk.length < 256) {
              const result = iterator.next()
              if (result.done === true) finished = true
              else chunk.push({ ...result.value })
            }
            return chunk
          })
          const pull = Effect.flatMap(next, (chunk) => {
            const rows = transformRows === undefined ? chunk : transformRows(chunk)
            return Arr.isReadonlyArrayNonEmpty(rows) ? Effect.succeed(rows) : Cause.done()
          })
          return Effect.as(
            Scope.addFinalizer(scope, Effect.sync(() => finished || iterator.return?.())),
            pull
          )
        }
      )
    ))

  const connection: SqlConnection.Connection = {
    execute: (sql, params, transformRows) =>
      transformed(runWith("execute", (safeIntegers) => rows(cached(sql), params, safeIntegers)), transformRows),
    executeRaw: (sql, params) =>
      runWith("executeRaw", (safeIntegers) => {
        const entry = cached(sql)
        if (entry.reader) return rows(entry, params, safeIntegers)
        const { changes, lastInsertRowid } = configure(entry, safeIntegers, false).run(...bindParams(params))
        return { changes, lastInsertRowid }
      }),
    executeValues: (sql, params) =>
      runWith("executeValues", (safeIntegers) => values(cached(sql), params, safeIntegers)),
    executeValuesUnprepared: (sql, params) =>
      runWith("executeValuesUnprepared", (safeIntegers) => values(prepare(sql), params, safeIntegers)),
    executeUnprepared: (sql, params, transformRows) =>
      transformed(runWith("executeUnprepared", (safeIntegers) => rows(prepare(sql), params, safeIntegers)), transformRows),
    executeStream: stream
  }
  return { connection, clearCache: () => cache.clear() }
}

const openDatabase = (config: NodeSqliteClientConfig): DatabaseSync => {
  const readonly = config.readonly ?? false
  const db = new DatabaseSync(config.filename, { readOnly: readonly })
  try {
    if (!readonly && (config.walMode ?? true)) {
      db.exec("PRAGMA journal_mode = WAL")
      db.exec("PRAGMA synchronous = NORMAL")
    }
    db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.trunc(config.busyTimeoutMs ?? 5000))}`)
    db.exec("PRAGMA foreign_keys = ON")
    return db
  } catch (cause) {
    db.close()
    throw cause
  }
}

const CHECKPOINT_WORKER = new URL("./WalCheckpoint.worker.ts", import.meta.url)

/**
 * Moves WAL checkpoints off the main thread: SQLite's automatic checkpoint runs inside the commit that crosses 1,000
 * pages of log, on the thread that committed — with its fsyncs, a stall of every request for milliseconds. Here the
 * connection never checkpoints by itself; a worker thread does it on a timer (WalCheckpoint.worker.ts), and if that
 * thread cannot start or dies, automatic checkpoints come back. Closing the database checkpoints what is left.
 */
const checkpointThread = (db: DatabaseSync, filename: string, intervalMs: number) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const automatic = () => {
        if (db.isOpen) db.exec("PRAGMA wal_autocheckpoint = 1000")
      }
      try {
        const worker = new Worker(CHECKPOINT_WORKER, { name: "sqlite-checkpoint", workerData: { filename, intervalMs } })
        // Never keeps the process alive on its own; the database's owner decides when it ends.
        worker.unref()
        worker.on("error", automatic)
        worker.on("exit", automatic)
        db.exec("PRAGMA wal_autocheckpoint = 0")
        return worker
      } catch {
        return undefined
      }
    }),
    (worker) =>
      worker === undefined ? Effect.void : Effect.promise(() => {
        worker.removeAllListeners("exit")
        worker.removeAllListeners("error")
        worker.on("error", () => undefined)
        const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()))
        // Referenced while it stops: a process with nothing else left to do would otherwise exit here, before the
        // database is closed (a script or a CLI command ending its scope).
        worker.ref()
        worker.postMessage("stop")
        // A thread stuck in a checkpoint is cut after a second; closing the database checkpoints the rest.
        let timer: ReturnType<typeof setTimeout> | undefined
        const cut = new Promise<void>((resolve) => {
          timer = setTimeout(resolve, 1000)
        })
        return Promise.race([exited, cut]).then(() => {
          clearTimeout(timer)
          return worker.terminate()
        }).then(() => undefined)
      })
  )

/**
 * Opens the database and builds a client that shares its one connection through a semaphore.
 * The database closes with the scope.
 */
export const make = Effect.fn("NodeSqliteClient.make")(function*(
  config: NodeSqliteClientConfig
): Effect.fn.Return<NodeSqliteClientService, SqlError.SqlError, Scope.Scope | Reactivity.Reactivity> {
  const db = yield* Effect.acquireRelease(
    Effect.try({ try: () => openDatabase(config), catch: (cause) => toSqlError(cause, "open") }),
    (db) =>
      Effect.sync(() => {
        if (!db.isOpen) return
        try {
          if (config.readonly !== true) db.exec("PRAGMA optimize")
        } catch {
          // statistics are an optimisation; closing matters more
        }
        db.close()
      })
  )
  const checkpointMs = config.checkpointIntervalMs ?? 500
  if (config.readonly !== true && (config.walMode ?? true) && config.filename !== ":memory:" && checkpointMs > 0) {
    yield* checkpointThread(db, config.filename, checkpointMs)
  }
  const { connection, clearCache } = makeConnection(db, Math.max(1, config.prepareCacheSize ?? 256))
  yield* Effect.addFinalizer(() => Effect.sync(clearCache))

  const acquirers = SqlClient.makeSqliteAcquirers({
    connection: Effect.succeed(connection),
    semaphore: yield* Semaphore.make(1),
    isTransaction: () => db.isTransaction
  })
  const client = yield* SqlClient.make({
    ...acquirers,
    compiler: Statement.makeCompilerSqlite(),
    driver: driverName,
    // BEGIN IMMEDIATE takes the write lock up front: a deferred BEGIN that later writes fails with
    // SQLITE_BUSY, without waiting, when another process wrote in between.
    beginTransaction: config.readonly === true ? "BEGIN" : "BEGIN IMMEDIATE",
    prepareTransactionControls: true,
    releaseSavepoint: (name) => `RELEASE SAVEPOINT ${name}`,
    spanAttributes: [
      ...(config.spanAttributes === undefined ? [] : Object.entries(config.spanAttributes)),
      ["db.system.name", "sqlite"]
    ]
  })
  return Object.assign(client, { config }) as NodeSqliteClientService
})

/**
 * The `node:sqlite` client as a service; its layer also provides `SqlClient.SqlClient` and `Reactivity`.
 */
export class NodeSqliteClient extends Context.Service<NodeSqliteClient, NodeSqliteClientService>()(
  "smsgw/storage/NodeSqliteClient"
) {
  static readonly make = make
  static readonly layer = (
    config: NodeSqliteClientConfig
  ): Layer.Layer<NodeSqliteClient | SqlClient.SqlClient | Reactivity.Reactivity, SqlError.SqlError> =>
    Layer.effectContext(
      Effect.map(make(config), (client) =>
        Context.make(NodeSqliteClient, client).pipe(Context.add(SqlClient.SqlClient, client)))
    ).pipe(Layer.provideMerge(Reactivity.layer))
}

export const layer = NodeSqliteClient.layer
