import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Metric } from "effect"
import type { Scope } from "effect"
import { Migrator, SqlClient } from "effect/sql"
import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import * as Path from "node:path"
import {
  blacklistEntries,
  blacklistLoadFailures,
  blacklistLoadSeconds,
  blacklistStale
} from "../../src/observability/PolicyMetrics.ts"
import { blacklistMigrations } from "../../src/policy/BlacklistMigrations.ts"
import { Blacklists } from "../../src/policy/Blacklists.ts"
import type { BlacklistStatus } from "../../src/policy/Blacklists.ts"
import { ObjectStore } from "../../src/storage/ObjectStore.ts"
import { pgLayer, sqliteLayer } from "../fixtures/Databases.ts"
import { eventually } from "../fixtures/Eventually.ts"
import { s3Server } from "../fixtures/S3Server.ts"

const migrate = Migrator.make({})({ loader: Migrator.fromRecord(blacklistMigrations), table: "test_migrations" })

const S3Store = Layer.unwrap(Effect.map(s3Server(), (server) =>
  ObjectStore.layerS3({
    endpoint: server.endpoint,
    region: server.region,
    bucket: server.bucket,
    accessKeyId: server.accessKeyId,
    secretAccessKey: server.secretAccessKey,
    forcePathStyle: true,
    timeoutMs: 5_000
  })))

const LocalStore = Layer.unwrap(Effect.map(
  Effect.acquireRelease(
    Effect.promise(() => Fs.mkdtemp(Path.join(Os.tmpdir(), "smsgw-blacklists-"))),
    (dir) => Effect.promise(() => Fs.rm(dir, { recursive: true, force: true }))
  ),
  (root) => ObjectStore.layerLocal({ root })
)).pipe(Layer.orDie)

const fast = { pollIntervalMs: 100, overlayPollIntervalMs: 100 }

/** One Blacklists instance, as one gateway node has it; several may share a database. */
const start = (options: { readonly pollIntervalMs: number; readonly overlayPollIntervalMs: number } = fast) =>
  Effect.map(Layer.build(Blacklists.layer(options)), (context) => Context.get(context, Blacklists))

/** Names unique in the run: metric series are global, so no two tests may share a list name. */
const unique = (name: string) => `${name}-${crypto.randomUUID().slice(0, 8)}`

const statusOf = (blacklists: Blacklists["Service"], name: string): BlacklistStatus => {
  const status = blacklists.status().find((s) => s.name === name)
  if (status === undefined) throw new Error(`no status for ${name}`)
  return status
}

const loaded = (blacklists: Blacklists["Service"], name: string, etag?: string) =>
  eventually(`${name} loaded${etag === undefined ? "" : ` at ${etag}`}`, Effect.sync(() => {
    const status = statusOf(blacklists, name)
    return status.loadedAt !== null && (etag === undefined || status.etag === etag) && status
  }))

const gauge = (metric: Metric.Gauge<number>, list: string) =>
  Effect.map(Metric.value(Metric.withAttributes(metric, { list })), (state) => state.value)
const failures = (list: string) =>
  Effect.map(Metric.value(Metric.withAttributes(blacklistLoadFailures, { list })), (state) => state.count)

const lines = (...numbers: ReadonlyArray<string>) => numbers.map((n) => `${n}\n`).join("")

const withDb = (database: Layer.Layer<SqlClient.SqlClient>) => {
  const Db = Layer.effectDiscard(Effect.orDie(migrate)).pipe(Layer.provideMerge(database))
  return <A, E>(effect: Effect.Effect<A, E, SqlClient.SqlClient | ObjectStore | Scope.Scope>) =>
    effect.pipe(Effect.scoped, Effect.provide(Db))
}

const onSqlite = withDb(sqliteLayer)

describe("Blacklists: the file (S3 layer, SQLite)", () => {
  it.layer(S3Store, { timeout: 30_000, excludeTestServices: true })((it) => {
    it.effect("a list loads from an uploaded object: valid lines used, invalid and duplicate lines counted, metrics set", () =>
      onSqlite(Effect.gen(function*() {
        const store = yield* ObjectStore
        const blacklists = yield* start()
        const name = unique("global")
        const object = `${name}/global.txt`
        const { etag } = yield* store.put(
          object,
          "# do not disturb\n+4915112345678\r\n4915112345679   # trailing comment\n+49 151 1234-5680\n\nnot-a-number\n+4915112345678\n"
        )
        // Nothing configured yet: every list is unknown.
        expect(blacklists.has(name, "+4915112345678")).toBe(false)
        expect(blacklists.status()).toEqual([])

        yield* blacklists.configure([{ name, object }])
        const status = yield* loaded(blacklists, name)
        expect(status).toMatchObject({
          name,
          object,
          etag,
          baseEntries: 3,
          added: 0,
          removed: 0,
          invalidLines: 1,
          duplicateLines: 1,
          lastError: null,
          stale: false,
          overlayVersion: 0
        })
        expect(status.loadMs).toBeGreaterThanOrEqual(0)
        expect(status.loadedAt).toBeGreaterThan(Date.now() - 10_000)

        expect(blacklists.has(name, "+4915112345678")).toBe(true)
        expect(blacklists.has(name, "4915112345678")).toBe(true) // the pipeline's digits-only form
        expect(blacklists.has(name, "+4915112345679")).toBe(true)
        expect(blacklists.has(name, "+4915112345680")).toBe(true)
        expect(blacklists.has(name, "+4915112345681")).toBe(false)
        expect(blacklists.has(name, "not a number")).toBe(false)
        expect(blacklists.has("other", "+4915112345678")).toBe(false)

        expect(yield* gauge(blacklistEntries, name)).toBe(3)
        expect(yield* gauge(blacklistLoadSeconds, name)).toBeCloseTo((status.loadMs ?? -1) / 1000, 3)
        expect(yield* gauge(blacklistStale, name)).toBe(0)
        expect(yield* failures(name)).toBe(0)
      })))

    it.effect("a changed object (new ETag) is picked up by the poll and swapped; an unchanged one is not loaded again", () =>
      onSqlite(Effect.gen(function*() {
        const store = yield* ObjectStore
        const blacklists = yield* start()
        const name = unique("poll")
        const object = `${name}/list.txt`
        const v1 = yield* store.put(object, lines("+4915100000001", "+4915100000002"))
        yield* blacklists.configure([{ name, object }])
        const first = yield* loaded(blacklists, name, v1.etag)

        // Several polls over the same object: checked each time, loaded once.
        const checkedAt = statusOf(blacklists, name).checkedAt ?? 0
        yield* eventually("checked again", Effect.sync(() => (statusOf(blacklists, name).checkedAt ?? 0) > checkedAt))
        yield* Effect.sleep(300)
        expect(statusOf(blacklists, name).loadedAt).toBe(first.loadedAt)

        const v2 = yield* store.put(object, lines("+4915100000002", "+4915100000003", "+4915100000004"))
        expect(v2.etag).not.toBe(v1.etag)
        yield* loaded(blacklists, name, v2.etag)
        expect(blacklists.has(name, "+4915100000001")).toBe(false)
        expect(blacklists.has(name, "+4915100000002")).toBe(true)
        expect(blacklists.has(name, "+4915100000004")).toBe(true)
        expect(statusOf(blacklists, name).baseEntries).toBe(3)
        expect(yield* gauge(blacklistEntries, name)).toBe(3)
      })))

    it.effect("a corrupt or deleted object keeps the previous version, stale and counted, until a good one recovers it", () =>
      onSqlite(Effect.gen(function*() {
        const store = yield* ObjectStore
        const blacklists = yield* start()
        const name = unique("stale")
        const object = `${name}/list.txt`
        const good = yield* store.put(object, lines("+4915100000001", "+4915100000002"))
        yield* blacklists.configure([{ name, object }])
        yield* loaded(blacklists, name, good.etag)

        const keptVersion = () => {
          const status = statusOf(blacklists, name)
          expect(status.etag).toBe(good.etag)
          expect(status.baseEntries).toBe(2)
          expect(blacklists.has(name, "+4915100000001")).toBe(true)
        }

        // A UTF-16 export: binary, not a text list.
        yield* store.put(object, Buffer.from(lines("+4915100000009"), "utf16le"))
        const binary = yield* eventually("stale on a binary file", Effect.sync(() => {
          const status = statusOf(blacklists, name)
          return status.stale && status
        }))
        expect(binary.lastError).toMatch(/NUL byte/)
        keptVersion()
        expect(yield* gauge(blacklistStale, name)).toBe(1)
        expect(yield* failures(name)).toBeGreaterThanOrEqual(1)

        // A file that is mostly not numbers is the wrong file, not a list to empty.
        yield* store.put(object, "name,number\nalice,+4915100000001 x\nbob,y\n+4915100000003\n")
        yield* eventually("refused as mostly invalid", Effect.sync(() => /not numbers/.test(statusOf(blacklists, name).lastError ?? "")))
        keptVersion()

        // Deleted: still the previous version; every failed poll counts.
        yield* store.delete(object)
        yield* eventually("missing object reported", Effect.sync(() => /not found/.test(statusOf(blacklists, name).lastError ?? "")))
        const counted = yield* failures(name)
        yield* eventually("failures keep counting", Effect.map(failures(name), (n) => n > counted))
        keptVersion()
        expect(statusOf(blacklists, name).stale).toBe(true)

        // A good object again: loaded, fresh, the alert off.
        const fixed = yield* store.put(object, lines("+4915100000003"))
        const recovered = yield* loaded(blacklists, name, fixed.etag)
        expect(recovered).toMatchObject({ stale: false, lastError: null, baseEntries: 1 })
        expect(blacklists.has(name, "+4915100000001")).toBe(false)
        expect(blacklists.has(name, "+4915100000003")).toBe(true)
        expect(yield* gauge(blacklistStale, name)).toBe(0)
      })))

    it.effect("a list whose object does not exist yet is stale and empty, and loads once the object appears", () =>
      onSqlite(Effect.gen(function*() {
        const store = yield* ObjectStore
        const blacklists = yield* start()
        const name = unique("missing")
        const object = `${name}/list.txt`
        yield* blacklists.configure([{ name, object }])
        const missing = yield* eventually("reported missing", Effect.sync(() => {
          const status = statusOf(blacklists, name)
          return status.stale && status
        }))
        expect(missing).toMatchObject({ etag: null, loadedAt: null, baseEntries: 0 })
        expect(missing.lastError).toMatch(/not found/)
        expect(blacklists.has(name, "+4915100000001")).toBe(false)
        expect(yield* gauge(blacklistStale, name)).toBe(1)

        const { etag } = yield* store.put(object, lines("+4915100000001"))
        expect(yield* loaded(blacklists, name, etag)).toMatchObject({ stale: false, lastError: null })
        expect(blacklists.has(name, "+4915100000001")).toBe(true)
      })))

    it.effect("reload checks at once (without waiting for the poll) and loads only a changed object", () =>
      onSqlite(Effect.gen(function*() {
        const store = yield* ObjectStore
        const blacklists = yield* start({ pollIntervalMs: 600_000, overlayPollIntervalMs: 600_000 })
        const a = unique("reload-a")
        const b = unique("reload-b")
        const va = yield* store.put(`${a}.txt`, lines("+4915100000001"))
        yield* store.put(`${b}.txt`, lines("+4915100000002"))
        yield* blacklists.configure([{ name: a, object: `${a}.txt` }, { name: b, object: `${b}.txt` }])
        yield* loaded(blacklists, a, va.etag)
        yield* loaded(blacklists, b)
        const before = statusOf(blacklists, a)

        const unchanged = yield* blacklists.reload(a)
        expect(unchanged).toHaveLength(1)
        expect(unchanged[0]).toMatchObject({ name: a, etag: va.etag, loadedAt: before.loadedAt })

        const va2 = yield* store.put(`${a}.txt`, lines("+4915100000003"))
        const vb2 = yield* store.put(`${b}.txt`, lines("+4915100000004"))
        const [one] = yield* blacklists.reload(a)
        expect(one).toMatchObject({ name: a, etag: va2.etag, baseEntries: 1 })
        expect(blacklists.has(a, "+4915100000003")).toBe(true)
        expect(blacklists.has(b, "+4915100000004")).toBe(false) // not reloaded yet

        const all = yield* blacklists.reload()
        expect(all.map((s) => [s.name, s.etag])).toEqual([[a, va2.etag], [b, vb2.etag]].sort())
        expect(blacklists.has(b, "+4915100000004")).toBe(true)

        expect(yield* Effect.flip(blacklists.reload("nope"))).toMatchObject({ _tag: "UnknownBlacklist", name: "nope" })
      })))

    it.effect("configure: new lists load, dropped lists go (with their metrics), a changed object key reloads", () =>
      onSqlite(Effect.gen(function*() {
        const store = yield* ObjectStore
        const blacklists = yield* start()
        const a = unique("cfg-a")
        const b = unique("cfg-b")
        yield* store.put(`${a}/one.txt`, lines("+4915100000001"))
        yield* store.put(`${b}/list.txt`, lines("+4915100000002"))
        const two = yield* store.put(`${a}/two.txt`, lines("+4915100000003"))
        yield* blacklists.configure([{ name: a, object: `${a}/one.txt` }, { name: b, object: `${b}/list.txt` }])
        yield* loaded(blacklists, a)
        yield* loaded(blacklists, b)
        expect(blacklists.has(b, "+4915100000002")).toBe(true)
        expect(yield* gauge(blacklistEntries, b)).toBe(1)

        // The same document again changes nothing.
        const loadedAt = statusOf(blacklists, a).loadedAt
        yield* blacklists.configure([{ name: a, object: `${a}/one.txt` }, { name: b, object: `${b}/list.txt` }])
        expect(statusOf(blacklists, a).loadedAt).toBe(loadedAt)

        yield* blacklists.configure([{ name: a, object: `${a}/two.txt` }])
        expect(blacklists.status().map((s) => s.name)).toEqual([a])
        expect(blacklists.has(b, "+4915100000002")).toBe(false)
        expect(yield* Effect.flip(blacklists.addEntries(b, ["+4915100000009"]))).toMatchObject({ _tag: "UnknownBlacklist" })
        const snapshot = yield* Metric.snapshot
        expect(snapshot.some((m) => m.attributes?.["list"] === b)).toBe(false)

        const swapped = yield* loaded(blacklists, a, two.etag)
        expect(swapped.object).toBe(`${a}/two.txt`)
        expect(blacklists.has(a, "+4915100000001")).toBe(false)
        expect(blacklists.has(a, "+4915100000003")).toBe(true)
      })))

    it.effect("a list without a file (object null) is never checked nor stale: its API entries only", () =>
      onSqlite(Effect.gen(function*() {
        const store = yield* ObjectStore
        const blacklists = yield* start()
        const name = unique("nofile")
        yield* blacklists.configure([{ name, object: null }])
        // Several polls later: nothing checked, nothing failed, no alert.
        yield* Effect.sleep(400)
        expect(statusOf(blacklists, name)).toMatchObject({
          object: null,
          etag: null,
          baseEntries: 0,
          loadedAt: null,
          checkedAt: null,
          lastError: null,
          stale: false
        })
        expect(yield* failures(name)).toBe(0)
        expect(yield* gauge(blacklistStale, name)).toBe(0)
        const [reloaded] = yield* blacklists.reload(name)
        expect(reloaded).toMatchObject({ object: null, stale: false, lastError: null })
        expect(yield* blacklists.addEntries(name, ["+4915100000001"])).toEqual({ changed: 1 })
        expect(blacklists.has(name, "+4915100000001")).toBe(true)
        expect(blacklists.has(name, "+4915100000002")).toBe(false)

        // A list whose file is missing (stale, counting failures) that is told it has none: the alert ends.
        const missing = unique("nofile-missing")
        yield* blacklists.configure([{ name, object: null }, { name: missing, object: `${missing}.txt` }])
        yield* eventually("reported missing", Effect.sync(() => statusOf(blacklists, missing).stale))
        expect(yield* gauge(blacklistStale, missing)).toBe(1)
        yield* blacklists.configure([{ name, object: null }, { name: missing, object: null }])
        yield* eventually("no longer stale", Effect.sync(() => !statusOf(blacklists, missing).stale))
        const counted = yield* failures(missing)
        yield* Effect.sleep(300)
        expect(yield* failures(missing)).toBe(counted)
        expect(yield* gauge(blacklistStale, missing)).toBe(0)
        expect(statusOf(blacklists, missing)).toMatchObject({ object: null, lastError: null, stale: false })

        // A list that had a file and no longer has one: the file's numbers go, its API entries stay.
        const filed = unique("nofile-filed")
        yield* store.put(`${filed}.txt`, lines("+4915100000003"))
        yield* blacklists.configure([{ name: filed, object: `${filed}.txt` }])
        yield* loaded(blacklists, filed)
        yield* blacklists.addEntries(filed, ["+4915100000004"])
        yield* blacklists.configure([{ name: filed, object: null }])
        yield* eventually("file numbers dropped", Effect.sync(() => !blacklists.has(filed, "+4915100000003")))
        expect(blacklists.has(filed, "+4915100000004")).toBe(true)
        expect(statusOf(blacklists, filed)).toMatchObject({ object: null, baseEntries: 0, added: 1 })
        expect(yield* gauge(blacklistEntries, filed)).toBe(1)
      })))

    it.effect("closing the layer's scope stops its polls", () =>
      onSqlite(Effect.gen(function*() {
        const store = yield* ObjectStore
        const name = unique("closed")
        const object = `${name}.txt`
        const v1 = yield* store.put(object, lines("+4915100000001"))
        const blacklists = yield* Effect.scoped(Effect.gen(function*() {
          const blacklists = yield* start()
          yield* blacklists.configure([{ name, object }])
          yield* loaded(blacklists, name, v1.etag)
          return blacklists
        }))
        const checkedAt = statusOf(blacklists, name).checkedAt
        yield* store.put(object, lines("+4915100000002"))
        yield* Effect.sleep(400)
        expect(statusOf(blacklists, name)).toMatchObject({ etag: v1.etag, checkedAt })
      })))
  })
})

describe("Blacklists: the file (local-folder layer, SQLite)", () => {
  it.layer(LocalStore, { timeout: 30_000, excludeTestServices: true })((it) => {
    it.effect("a list loads from a file, and a changed file is picked up by the poll", () =>
      onSqlite(Effect.gen(function*() {
        const store = yield* ObjectStore
        const blacklists = yield* start()
        const name = unique("local")
        const object = `lists/${name}.txt`
        const v1 = yield* store.put(object, lines("+4915100000001", "+4915100000002"))
        yield* blacklists.configure([{ name, object }])
        expect(yield* loaded(blacklists, name, v1.etag)).toMatchObject({ baseEntries: 2, stale: false })
        expect(blacklists.has(name, "+4915100000001")).toBe(true)

        const v2 = yield* store.put(object, lines("+4915100000003"))
        yield* loaded(blacklists, name, v2.etag)
        expect(blacklists.has(name, "+4915100000001")).toBe(false)
        expect(blacklists.has(name, "+4915100000003")).toBe(true)
      })))
  })
})

const overlaySuite = (dbName: string, database: Layer.Layer<SqlClient.SqlClient>) => {
  const onDb = withDb(database)
  describe(`Blacklists: the overlay (S3 layer, ${dbName})`, () => {
    it.layer(S3Store, { timeout: 30_000, excludeTestServices: true })((it) => {
      it.effect("add and remove mask and re-list numbers, at once, and survive a reload of the file", () =>
        onDb(Effect.gen(function*() {
          const store = yield* ObjectStore
          const sql = yield* SqlClient.SqlClient
          const blacklists = yield* start()
          const name = unique("overlay")
          const object = `${name}.txt`
          const x = "+4915100000001"
          const y = "+4915100000002"
          const z = "+4915100000003"
          yield* store.put(object, lines(x, y))
          yield* blacklists.configure([{ name, object }])
          yield* loaded(blacklists, name)

          expect(yield* blacklists.addEntries(name, [z])).toEqual({ changed: 1 })
          expect(blacklists.has(name, z)).toBe(true)
          // Already listed (in either spelling): nothing changes.
          expect(yield* blacklists.addEntries(name, [z, z.slice(1)])).toEqual({ changed: 0 })

          expect(yield* blacklists.removeEntries(name, [x])).toEqual({ changed: 1 })
          expect(blacklists.has(name, x)).toBe(false)
          expect(blacklists.has(name, y)).toBe(true)
          expect(yield* blacklists.addEntries(name, [x])).toEqual({ changed: 1 })
          expect(blacklists.has(name, x)).toBe(true)
          expect(yield* blacklists.removeEntries(name, [y, "4915100000004"])).toEqual({ changed: 2 })
          expect(blacklists.has(name, y)).toBe(false)
          expect(statusOf(blacklists, name)).toMatchObject({ added: 2, removed: 2, baseEntries: 2 })
          expect(yield* gauge(blacklistEntries, name)).toBe(4)

          // Digits only, no +; 1 added, 0 removed.
          const rows = yield* sql<{ readonly number: string; readonly listed: number | string }>`
            SELECT number, listed FROM blacklist_entries WHERE list = ${name} ORDER BY number`
          expect(rows.map((r) => [r.number, Number(r.listed)])).toEqual([
            ["4915100000001", 1],
            ["4915100000002", 0],
            ["4915100000003", 1],
            ["4915100000004", 0]
          ])

          // A new file: the overlay still applies on top of it.
          const v2 = yield* store.put(object, lines(x, y, "+4915100000004", "+4915100000005"))
          yield* blacklists.reload(name)
          expect(statusOf(blacklists, name)).toMatchObject({ etag: v2.etag, baseEntries: 4, added: 2, removed: 2 })
          expect(blacklists.has(name, x)).toBe(true)
          expect(blacklists.has(name, y)).toBe(false)
          expect(blacklists.has(name, z)).toBe(true)
          expect(blacklists.has(name, "+4915100000004")).toBe(false) // removed before it was in the file
          expect(blacklists.has(name, "+4915100000005")).toBe(true)
          expect(yield* gauge(blacklistEntries, name)).toBe(6)

          // Polls that find nothing new leave it as is.
          yield* Effect.sleep(300)
          expect(blacklists.has(name, z)).toBe(true)
          expect(blacklists.has(name, y)).toBe(false)
        })))

      it.effect("another instance on the same database sees the edits within the overlay poll interval", () =>
        onDb(Effect.gen(function*() {
          const store = yield* ObjectStore
          const a = yield* start()
          const b = yield* start()
          const name = unique("shared")
          const object = `${name}.txt`
          const x = "+4915100000001"
          const n = "+4915100000007"
          yield* store.put(object, lines(x))
          yield* a.configure([{ name, object }])
          yield* b.configure([{ name, object }])
          yield* loaded(a, name)
          yield* loaded(b, name)

          yield* a.addEntries(name, [n])
          expect(a.has(name, n)).toBe(true)
          const started = Date.now()
          yield* eventually("b sees the addition", Effect.sync(() => b.has(name, n)))
          expect(Date.now() - started).toBeLessThan(2_000)

          yield* b.removeEntries(name, [x])
          yield* eventually("a sees the removal", Effect.sync(() => !a.has(name, x)))
          yield* a.removeEntries(name, [n])
          yield* eventually("b sees n removed", Effect.sync(() => !b.has(name, n)))
          yield* b.addEntries(name, [x])
          yield* eventually("a sees x listed again", Effect.sync(() => a.has(name, x)))
          expect(statusOf(a, name).overlayVersion).toBe(statusOf(b, name).overlayVersion)

          // A node configured later starts with the overlay as the others left it.
          const c = yield* start()
          yield* c.configure([{ name, object }])
          yield* eventually("c has the overlay", Effect.sync(() => c.has(name, x) && statusOf(c, name).removed === 1))
          expect(c.has(name, n)).toBe(false)
        })))

      it.effect("invalid numbers fail naming their index and write nothing; an unknown list fails", () =>
        onDb(Effect.gen(function*() {
          const store = yield* ObjectStore
          const sql = yield* SqlClient.SqlClient
          const blacklists = yield* start()
          const name = unique("valid")
          yield* store.put(`${name}.txt`, "")
          yield* blacklists.configure([{ name, object: `${name}.txt` }])
          yield* loaded(blacklists, name)

          const bad = yield* Effect.flip(blacklists.addEntries(name, ["+4915100000001", "+49 151 00000002"]))
          expect(bad).toMatchObject({ _tag: "InvalidField", field: "numbers[1]" })
          for (const [i, number] of ["123456", "+1234567890123456", "+0151000000", "491510000000x", ""].entries()) {
            const error = yield* Effect.flip(blacklists.removeEntries(name, ["+4915100000001", number]))
            expect(error, `${i}: ${number}`).toMatchObject({ _tag: "InvalidField", field: "numbers[1]" })
          }
          expect(blacklists.has(name, "+4915100000001")).toBe(false)
          const rows = yield* sql<{ readonly n: number | string }>`SELECT COUNT(*) AS n FROM blacklist_entries`
          expect(Number(rows[0]?.n)).toBe(0)
          expect(yield* blacklists.addEntries(name, [])).toEqual({ changed: 0 })

          expect(yield* Effect.flip(blacklists.addEntries("nope", ["+4915100000001"]))).toMatchObject({
            _tag: "UnknownBlacklist",
            name: "nope"
          })
          expect(yield* Effect.flip(blacklists.removeEntries("nope", ["+4915100000001"]))).toMatchObject({
            _tag: "UnknownBlacklist",
            name: "nope"
          })
        })))

      it.effect("concurrent edits of one list from two instances all land, and both end on the same overlay", () =>
        onDb(Effect.gen(function*() {
          const store = yield* ObjectStore
          const a = yield* start()
          const b = yield* start()
          const name = unique("concurrent")
          yield* store.put(`${name}.txt`, "")
          yield* a.configure([{ name, object: `${name}.txt` }])
          yield* b.configure([{ name, object: `${name}.txt` }])
          const batch = (from: number) => Array.from({ length: 50 }, (_, i) => `+49152${String(from + i).padStart(8, "0")}`)
          const results = yield* Effect.all(
            Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? a : b).addEntries(name, [...batch(i * 50), ...batch(1_000)])),
            { concurrency: "unbounded" }
          )
          // The shared 50 numbers were added once, by whichever edit came first.
          expect(results.reduce((sum, r) => sum + r.changed, 0)).toBe(8 * 50 + 50)
          const all = [...Array.from({ length: 8 }, (_, i) => batch(i * 50)).flat(), ...batch(1_000)]
          yield* eventually("both have every number", Effect.sync(() => all.every((n) => a.has(name, n) && b.has(name, n))))
          yield* eventually("both on the same version", Effect.sync(() =>
            statusOf(a, name).overlayVersion === statusOf(b, name).overlayVersion &&
            statusOf(a, name).overlayVersion > 0))
          expect(statusOf(a, name).added).toBe(450)
          expect(statusOf(b, name).added).toBe(450)
        })))

      it.effect("a batch larger than one statement is written and applied whole", () =>
        onDb(Effect.gen(function*() {
          const store = yield* ObjectStore
          const blacklists = yield* start()
          const other = yield* start()
          const name = unique("batch")
          yield* store.put(`${name}.txt`, "")
          yield* blacklists.configure([{ name, object: `${name}.txt` }])
          yield* other.configure([{ name, object: `${name}.txt` }])
          const numbers = Array.from({ length: 1_234 }, (_, i) => `+49151${String(i).padStart(8, "0")}`)
          expect(yield* blacklists.addEntries(name, numbers)).toEqual({ changed: 1_234 })
          expect(numbers.every((n) => blacklists.has(name, n))).toBe(true)
          yield* eventually("the other node has the batch", Effect.sync(() => numbers.every((n) => other.has(name, n))))
          expect(yield* blacklists.removeEntries(name, numbers.slice(0, 700))).toEqual({ changed: 700 })
          expect(blacklists.has(name, numbers[0]!)).toBe(false)
          expect(blacklists.has(name, numbers[700]!)).toBe(true)
          yield* eventually("the other node has the removals", Effect.sync(() => !other.has(name, numbers[699]!)))
          expect(statusOf(other, name)).toMatchObject({ added: 534, removed: 700 })
        })))
    })
  })
}

overlaySuite("SQLite", sqliteLayer)
overlaySuite("PostgreSQL", pgLayer)
