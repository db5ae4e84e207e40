import { NodeCrypto } from "@effect/platform-node"
import { assert, describe, expect, it } from "@effect/vitest"
import { Array as Arr, Deferred, Effect, Exit, Fiber, Layer, Ref, Schema, Stream } from "effect"
import { ClusterSchema, Entity, SingleRunner, ShardingConfig, SqlMessageStorage, SqlRunnerStorage } from "effect/cluster"
import { Rpc } from "effect/rpc"
import { Migrator, SqlClient, SqlError } from "effect/sql"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { driverName, NodeSqliteClient } from "../../src/storage/NodeSqliteClient.ts"
import type { NodeSqliteClientConfig } from "../../src/storage/NodeSqliteClient.ts"

const tempDir = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "smsgw-sqlite-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

/** Runs `self` on a fresh database file, closed before its folder is removed. */
const withDb = <A, E, R>(self: Effect.Effect<A, E, R>, config?: Partial<NodeSqliteClientConfig>) =>
  Effect.flatMap(tempDir, (dir) =>
    Effect.provide(self, NodeSqliteClient.layer({ filename: path.join(dir, "test.db"), ...config })))

const createItems = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, qty INTEGER NOT NULL)`
  return sql
})

const count = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{ n: number }>`SELECT count(*) AS n FROM items`
  return rows[0]?.n
})

const reasonOf = <A, R>(self: Effect.Effect<A, SqlError.SqlError, R>) =>
  Effect.map(Effect.flip(self), (error) => error.reason)

describe("NodeSqliteClient", () => {
  it.live("checkpoints run on their own thread: the connection never checkpoints in a commit, yet the log reaches the database file", () =>
    Effect.flatMap(tempDir, (dir) => {
      const filename = path.join(dir, "test.db")
      return Effect.provide(Effect.gen(function*() {
        const sql = yield* createItems
        const automatic = yield* sql<{ wal_autocheckpoint: number }>`PRAGMA wal_autocheckpoint`
        expect(automatic[0]?.wal_autocheckpoint).toBe(0)
        const before = fs.statSync(filename).size
        // About 8 MB of rows in 40 commits: only a checkpoint moves pages from test.db-wal into test.db.
        for (let batch = 0; batch < 40; batch++) {
          const [first, ...rest] = Array.from({ length: 50 }, (_, i) => ({ id: batch * 50 + i, name: `item ${batch * 50 + i} ${"x".repeat(4000)}`, qty: i }))
          if (first !== undefined) yield* sql`INSERT INTO items ${sql.insert([first, ...rest])}`
        }
        const grown = yield* Effect.promise(async () => {
          for (let i = 0; i < 100; i++) {
            const size = fs.statSync(filename).size
            if (size > before + 4_000_000) return size
            await new Promise((resolve) => setTimeout(resolve, 50))
          }
          return fs.statSync(filename).size
        })
        expect(grown).toBeGreaterThan(before + 4_000_000)
      }), NodeSqliteClient.layer({ filename, checkpointIntervalMs: 50 }))
    }).pipe(Effect.scoped))

  it("a process with nothing else to do still closes the database when the client's scope ends", () => {
    // The checkpoint thread is unreferenced; while it stopped, such a process used to exit before the close.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "smsgw-sqlite-exit-"))
    try {
      const filename = path.join(dir, "test.db")
      const client = new URL("../../src/storage/NodeSqliteClient.ts", import.meta.url).href
      const script = `
        import { Effect } from "effect"
        import { SqlClient } from "effect/sql"
        import { NodeSqliteClient } from ${JSON.stringify(client)}
        const program = Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          yield* sql\`CREATE TABLE items (id INTEGER PRIMARY KEY)\`
          yield* sql\`INSERT INTO items (id) VALUES (1)\`
        }).pipe(Effect.provide(NodeSqliteClient.layer({ filename: ${JSON.stringify(filename)} })))
        Effect.runPromise(program).then(() => console.log("closed"))`
      const out = execFileSync(process.execPath, ["--disable-warning=ExperimentalWarning", "--input-type=module", "-e", script], {
        cwd: new URL("../..", import.meta.url),
        encoding: "utf8",
        timeout: 20_000
      })
      expect(out.trim()).toBe("closed")
      // A closed database leaves no write-ahead log behind.
      expect(fs.existsSync(`${filename}-wal`)).toBe(false)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  it.effect("without the checkpoint thread SQLite checkpoints by itself", () =>
    withDb(Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const automatic = yield* sql<{ wal_autocheckpoint: number }>`PRAGMA wal_autocheckpoint`
      expect(automatic[0]?.wal_autocheckpoint).toBe(1000)
    }), { checkpointIntervalMs: 0 }))

  it.effect("opens in WAL mode and reports a sqlite dialect with its own driver name", () =>
    withDb(Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const own = yield* NodeSqliteClient
      expect(own).toBe(sql)
      expect(sql.driver).toBe(driverName)
      expect(sql.driver).not.toBe("pglite")
      expect(sql.onDialectOrElse({ sqlite: () => "sqlite", orElse: () => "other" })).toBe("sqlite")
      const pragma = (name: string) => Effect.map(sql.unsafe(`PRAGMA ${name}`).values, (rows) => rows[0]?.[0])
      expect(yield* pragma("journal_mode")).toBe("wal")
      expect(yield* pragma("synchronous")).toBe(1)
      expect(yield* pragma("busy_timeout")).toBe(5000)
      expect(yield* pragma("foreign_keys")).toBe(1)
    })))

  it.effect("keeps the rollback journal when WAL is off", () =>
    withDb(Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      expect(yield* sql.unsafe("PRAGMA journal_mode").values).toEqual([["delete"]])
      expect(yield* sql.unsafe("PRAGMA foreign_keys").values).toEqual([[1]])
    }), { walMode: false }))

  it.effect("inserts, selects and updates with parameters, returning plain objects", () =>
    withDb(Effect.gen(function*() {
      const sql = yield* createItems
      const inserted = yield* sql<{ id: number }>`INSERT INTO items (name, qty) VALUES (${"apple"}, ${3}) RETURNING id`
      expect(inserted).toEqual([{ id: 1 }])
      yield* sql`INSERT INTO items ${sql.insert({ name: "pear", qty: 5 })}`
      yield* sql`UPDATE items SET qty = qty + ${10} WHERE name = ${"pear"}`
      const rows = yield* sql<{ id: number; name: string; qty: number }>`SELECT * FROM items WHERE qty > ${1} ORDER BY id`
      expect(rows).toEqual([{ id: 1, name: "apple", qty: 3 }, { id: 2, name: "pear", qty: 15 }])
      for (const row of rows) expect(Object.getPrototypeOf(row)).toBe(Object.prototype)
      expect(yield* sql`SELECT name FROM items WHERE id IN ${sql.in([2, 9])}`).toEqual([{ name: "pear" }])
      const raw = yield* sql`DELETE FROM items WHERE id = ${1}`.raw
      expect(raw).toEqual({ changes: 1, lastInsertRowid: 2 })
    })))

  it.effect("inserts many rows with one sql.insert", () =>
    withDb(Effect.gen(function*() {
      const sql = yield* createItems
      const rows = Arr.makeBy(200, (i) => ({ name: `item-${i}`, qty: i }))
      yield* sql`INSERT INTO items ${sql.insert(rows)}`
      expect(yield* count).toBe(200)
      const sum = yield* sql<{ total: number }>`SELECT sum(qty) AS total FROM items`
      expect(sum).toEqual([{ total: (199 * 200) / 2 }])
    })))

  it.effect("reads values as arrays and streams rows", () =>
    withDb(Effect.gen(function*() {
      const sql = yield* createItems
      yield* sql`INSERT INTO items ${sql.insert(Arr.makeBy(600, (i) => ({ name: `n${i}`, qty: i })))}`
      expect(yield* sql`SELECT id, qty FROM items WHERE id <= 2 ORDER BY id`.values).toEqual([[1, 0], [2, 1]])
      // the same statement text still answers objects after being read as arrays
      expect(yield* sql`SELECT id, qty FROM items WHERE id <= 2 ORDER BY id`).toEqual([{ id: 1, qty: 0 }, { id: 2, qty: 1 }])
      const streamed = yield* Stream.runCollect(sql<{ qty: number }>`SELECT qty FROM items ORDER BY id`.stream)
      expect(streamed.length).toBe(600)
      expect(streamed[599]).toEqual({ qty: 599 })
      // a stream left early releases its statement and the connection
      const firstThree = yield* Stream.runCollect(Stream.take(sql<{ qty: number }>`SELECT qty FROM items ORDER BY id`.stream, 3))
      expect(firstThree).toEqual([{ qty: 0 }, { qty: 1 }, { qty: 2 }])
      expect(yield* count).toBe(600)
    })))

  it.effect("commits a transaction and rolls it back when it fails", () =>
    withDb(Effect.gen(function*() {
      const sql = yield* createItems
      yield* sql.withTransaction(Effect.all([
        sql`INSERT INTO items (name, qty) VALUES ('a', 1)`,
        sql`INSERT INTO items (name, qty) VALUES ('b', 2)`
      ]))
      expect(yield* count).toBe(2)

      const failed = yield* sql.withTransaction(Effect.gen(function*() {
        yield* sql`INSERT INTO items (name, qty) VALUES ('c', 3)`
        expect(yield* count).toBe(3)
        return yield* Effect.fail("boom" as const)
      })).pipe(Effect.flip)
      expect(failed).toBe("boom")
      expect(yield* count).toBe(2)
    })))

  it.effect("rolls back a nested transaction to its savepoint only", () =>
    withDb(Effect.gen(function*() {
      const sql = yield* createItems
      yield* sql.withTransaction(Effect.gen(function*() {
        yield* sql`INSERT INTO items (name, qty) VALUES ('outer', 1)`
        const inner = yield* sql.withTransaction(Effect.gen(function*() {
          yield* sql`INSERT INTO items (name, qty) VALUES ('inner', 2)`
          return yield* Effect.fail("inner failed" as const)
        })).pipe(Effect.exit)
        expect(Exit.isFailure(inner)).toBe(true)
        yield* sql.withTransaction(sql`INSERT INTO items (name, qty) VALUES ('kept', 3)`)
      }))
      expect(yield* sql`SELECT name FROM items ORDER BY id`).toEqual([{ name: "outer" }, { name: "kept" }])
    })))

  it.live("keeps other fibers off the connection until the transaction ends", () =>
    withDb(Effect.gen(function*() {
      const sql = yield* createItems
      const started = yield* Deferred.make<void>()
      // forked before the transaction, so it does not inherit the transaction's connection
      const outside = yield* Effect.forkChild(
        Effect.andThen(Deferred.await(started), sql`INSERT INTO items (name, qty) VALUES ('outside', 2)`)
      )
      const failed = yield* sql.withTransaction(Effect.gen(function*() {
        yield* sql`INSERT INTO items (name, qty) VALUES ('inside', 1)`
        yield* Deferred.succeed(started, undefined)
        yield* Effect.sleep("30 millis")
        expect(yield* sql`SELECT name FROM items`).toEqual([{ name: "inside" }])
        return yield* Effect.fail("rollback" as const)
      })).pipe(Effect.flip)
      expect(failed).toBe("rollback")
      yield* Fiber.join(outside)
      expect(yield* sql`SELECT name FROM items`).toEqual([{ name: "outside" }])
    })))

  it.effect("classifies a unique violation and a foreign key violation", () =>
    withDb(Effect.gen(function*() {
      const sql = yield* createItems
      yield* sql`INSERT INTO items (name, qty) VALUES ('dup', 1)`
      const unique = yield* reasonOf(sql`INSERT INTO items (name, qty) VALUES ('dup', 2)`)
      assert(unique._tag === "UniqueViolation")
      expect(unique.constraint).toBe("items.name")
      expect(unique.message).toContain("UNIQUE constraint failed")

      yield* sql`CREATE TABLE parts (id INTEGER PRIMARY KEY, item_id INTEGER NOT NULL REFERENCES items (id))`
      const foreign = yield* reasonOf(sql`INSERT INTO parts (item_id) VALUES (${999})`)
      expect(foreign._tag).toBe("ConstraintError")

      const syntax = yield* Effect.flip(sql`SELEKT 1`)
      expect(SqlError.isSqlError(syntax)).toBe(true)
      expect(syntax.message).toContain("syntax error")
    })))

  it.effect("reads int64 values exactly under SafeIntegers", () =>
    withDb(Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql`CREATE TABLE ids (id INTEGER PRIMARY KEY, small INTEGER)`
      const big = 2n ** 62n + 1n
      yield* sql`INSERT INTO ids (id, small) VALUES (${big}, ${7})`
      const query = sql<{ id: unknown; small: unknown }>`SELECT id, small FROM ids`
      const safe = yield* query.pipe(Effect.provideService(SqlClient.SafeIntegers, true))
      expect(safe).toEqual([{ id: big, small: 7n }])
      expect(yield* sql`SELECT small FROM ids`).toEqual([{ small: 7 }])
      // without SafeIntegers an int64 beyond 2^53 is refused rather than rounded
      const unsafe = yield* reasonOf(query)
      expect(unsafe.message).toContain("too large")
      const values = yield* query.values.pipe(Effect.provideService(SqlClient.SafeIntegers, true))
      expect(values).toEqual([[big, 7n]])
    })))

  it.effect("binds booleans, undefined and dates, and refuses values SQLite would misread", () =>
    withDb(Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const at = new Date("2026-01-02T03:04:05.678Z")
      const row = yield* sql`SELECT ${true} AS t, ${false} AS f, ${undefined} AS u, ${at} AS d, ${new Uint8Array([1, 2])} AS b`
      expect(row).toEqual([{ t: 1, f: 0, u: null, d: at.toISOString(), b: new Uint8Array([1, 2]) }])
      const refused = yield* reasonOf(sql`SELECT ${{ a: 1 }} AS o`)
      expect(refused._tag).toBe("UnknownError")
      expect(refused.message).toContain("parameter 1")
      const twoStatements = yield* reasonOf(sql.unsafe("SELECT 1; SELECT 2"))
      expect(twoStatements.message).toContain("one statement")
      expect(yield* sql.unsafe("SELECT 1 AS one; -- trailing comment")).toEqual([{ one: 1 }])
    })))

  it.effect("runs migrations once", () =>
    withDb(Effect.gen(function*() {
      const migrate = Migrator.make({})
      const loader = Migrator.fromRecord({
        "1_create_items": Effect.flatMap(SqlClient.SqlClient, (sql) =>
          sql`CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, qty INTEGER NOT NULL)`),
        "2_index_qty": Effect.flatMap(SqlClient.SqlClient, (sql) => sql`CREATE INDEX items_qty ON items (qty)`)
      })
      expect(yield* migrate({ loader })).toEqual([[1, "create_items"], [2, "index_qty"]])
      expect(yield* migrate({ loader })).toEqual([])
      const sql = yield* SqlClient.SqlClient
      const applied = yield* sql<{ migration_id: number }>`SELECT migration_id FROM effect_sql_migrations ORDER BY 1`
      expect(applied).toEqual([{ migration_id: 1 }, { migration_id: 2 }])
    })))

  it.effect("keeps data across reopening and opens read-only", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const filename = path.join(dir, "persist.db")
      yield* Effect.provide(
        Effect.flatMap(createItems, (sql) => sql`INSERT INTO items (name, qty) VALUES ('kept', 1)`),
        NodeSqliteClient.layer({ filename })
      )
      const reopened = yield* Effect.provide(
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const write = yield* reasonOf(sql`INSERT INTO items (name, qty) VALUES ('no', 2)`)
          return { rows: yield* sql`SELECT name FROM items`, write }
        }),
        NodeSqliteClient.layer({ filename, readonly: true })
      )
      expect(reopened.rows).toEqual([{ name: "kept" }])
      expect(reopened.write._tag).toBe("UnknownError")
      expect(reopened.write.message).toContain("readonly")
    }))

  it.effect("fails with a connection error when the file cannot be opened", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Effect.provide(
        Effect.gen(function*() {
          yield* SqlClient.SqlClient
        }),
        NodeSqliteClient.layer({ filename: "/nonexistent/dir/x.db" })
      ))
      expect(error.reason._tag).toBe("ConnectionError")
    }))
})

const Increment = Rpc.make("Increment", { payload: { amount: Schema.Int }, success: Schema.Int })
  .annotate(ClusterSchema.Persisted, true)
const Counter = Entity.make("Counter", [Increment])
const CounterLive = Counter.toLayer(Effect.gen(function*() {
  const count = yield* Ref.make(0)
  return Counter.of({ Increment: ({ payload }) => Ref.updateAndGet(count, (n) => n + payload.amount) })
}))

describe("NodeSqliteClient under effect/cluster", () => {
  it.live("creates the cluster tables through the SQL storages", () =>
    withDb(Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* Layer.build(Layer.mergeAll(SqlMessageStorage.layer, SqlRunnerStorage.layer).pipe(
        Layer.provide([ShardingConfig.layerDefaults, NodeCrypto.layerDigest])
      ))
      const tables = yield* sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`
      expect(tables.map((t) => t.name)).toEqual(
        expect.arrayContaining(["cluster_locks", "cluster_messages", "cluster_replies", "cluster_runners"])
      )
    })))

  it.live("serves a persisted entity call on SingleRunner", () =>
    withDb(Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const results = yield* Effect.gen(function*() {
        const counter = (yield* Counter.client)("counter-1")
        const first = yield* counter.Increment({ amount: 2 })
        const second = yield* counter.Increment({ amount: 3 })
        return [first, second]
      }).pipe(
        Effect.timeout("15 seconds"),
        Effect.provide(CounterLive.pipe(
          Layer.provideMerge(SingleRunner.layer({ shardingConfig: { entityMessagePollInterval: "200 millis" } })),
          Layer.provide(NodeCrypto.layerDigest)
        ))
      )
      expect(results).toEqual([2, 5])
      const stored = yield* sql<{ n: number }>`SELECT count(*) AS n FROM cluster_messages WHERE tag = 'Increment'`
      expect(stored).toEqual([{ n: 2 }])
    })))
})
