import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Logger } from "effect"
import type { Scope } from "effect"
import { SqlClient } from "effect/sql"
import type { PolicyDocument } from "../../src/domain/Policy.ts"
import { droppedOverlays, PolicyConfig } from "../../src/policy/PolicyConfig.ts"
import { migrate } from "../../src/layers/Migrations.ts"
import { pgLayer, sqliteLayer } from "../fixtures/Databases.ts"
import { eventually } from "../fixtures/Eventually.ts"

const fileA: PolicyDocument = {
  blacklists: [{ name: "dnd" }],
  rules: [
    { id: "promo-day", classes: ["promotional"], type: "frequency_cap", max: 3, window: "day" },
    { id: "dnd", type: "blacklist", lists: ["dnd"] }
  ]
}

const start = (seed: unknown, pollIntervalMs = 60_000) =>
  Effect.map(Layer.build(PolicyConfig.layer({ seed, pollIntervalMs })), (context) => Context.get(context, PolicyConfig))

/** A stored version written behind PolicyConfig's back: a corrupt row, or one an older release accepted. */
const storeRaw = (version: number, document: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`INSERT INTO policy_versions ${sql.insert({ version, document, created_at: Date.now(), created_by: "old release" })}`
  })

/** Error logs, collected (the messages only). */
const errorLogs = () => {
  const lines: Array<string> = []
  const logger = Logger.make((options) => {
    if (options.logLevel === "Error") lines.push(String(options.message))
  })
  return { lines, layer: Logger.layer([logger]) }
}

/** A list's overlay rows as PolicyConfig's purge leaves them: entries, and the list's version (0 when it has no row). */
const overlayOf = (list: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const entries = yield* sql<{ readonly number: string }>`SELECT number FROM blacklist_entries WHERE list = ${list} ORDER BY number`
    const versions = yield* sql<{ readonly version: number | string }>`SELECT version FROM blacklist_versions WHERE list = ${list}`
    return { entries: entries.map((r) => r.number), version: Number(versions[0]?.version ?? 0) }
  })

const addOverlay = (list: string, numbers: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`INSERT INTO blacklist_versions ${sql.insert({ list, version: 1, updated_at: 1 })}
      ON CONFLICT (list) DO UPDATE SET version = blacklist_versions.version + 1`
    for (const number of numbers) {
      yield* sql`INSERT INTO blacklist_entries ${sql.insert({ list, number, listed: 1, at: 1 })}`
    }
  })

const suite = (name: string, database: Layer.Layer<SqlClient.SqlClient>) =>
  describe(`PolicyConfig on ${name}`, () => {
    const Db = Layer.effectDiscard(Effect.orDie(migrate)).pipe(Layer.provideMerge(database))
    const onFreshDb = <A, E>(effect: Effect.Effect<A, E, SqlClient.SqlClient | Scope.Scope>) =>
      effect.pipe(Effect.scoped, Effect.provide(Db))

    it.effect("the file seeds version 1 once; a later start with another file keeps the database's", () =>
      onFreshDb(Effect.gen(function*() {
        const first = yield* start(fileA)
        expect(first.current()).toMatchObject({ version: 1, document: fileA, createdBy: "config" })
        const second = yield* start({ rules: [] })
        expect(second.current()).toMatchObject({ version: 1, document: fileA })
      })))

    it.live("put adds a version, live here at once and on another process within a poll", () =>
      onFreshDb(Effect.gen(function*() {
        const here = yield* start(fileA)
        const there = yield* start(fileA, 50)
        const next: PolicyDocument = { rules: [{ id: "otp", type: "dedup", windowSeconds: 60, mode: "reject" }] }
        const v2 = yield* here.put(next, { expectedVersion: 1, actor: "user_1" })
        expect(v2).toMatchObject({ version: 2, document: next, createdBy: "user_1" })
        expect(here.current().version).toBe(2)
        const seen = yield* eventually("other process reloads", Effect.sync(() => there.current().version === 2 ? there.current() : undefined), { timeout: 5_000 })
        expect(seen.document).toEqual(next)
        // Without expectedVersion a put always applies on top of the latest.
        expect((yield* there.put(fileA, { actor: null })).version).toBe(3)
      })))

    it.effect("a stale expectedVersion is a conflict and changes nothing", () =>
      onFreshDb(Effect.gen(function*() {
        const config = yield* start(fileA)
        yield* config.put({ rules: [] }, { expectedVersion: 1, actor: null })
        const error = yield* config.put(fileA, { expectedVersion: 1, actor: null }).pipe(Effect.flip)
        expect(error).toMatchObject({ _tag: "PolicyConflict", currentVersion: 2 })
        expect((yield* config.refresh).version).toBe(2)
      })))

    it.live("a latest version that does not decode: the newest one that does applies, each bad one logged once and reported; a put goes on top", () => {
      const logs = errorLogs()
      return onFreshDb(Effect.gen(function*() {
        const here = yield* start(fileA, 50)
        const next: PolicyDocument = { rules: [{ id: "otp", type: "dedup", windowSeconds: 60, mode: "reject" }] }
        yield* here.put(next, { actor: "user_1" })
        // Version 3 is a corrupt row; version 4 a document this release no longer accepts (an unknown rule type).
        yield* storeRaw(3, "{\"rules\": [")
        yield* storeRaw(4, JSON.stringify({ rules: [{ id: "x", type: "volume_discount", percent: 5 }] }))

        // A node starting now starts, on version 2.
        const starting = yield* start(fileA, 50)
        expect(starting.current()).toMatchObject({ version: 2, document: next })
        expect(starting.unreadable().map((u) => u.version)).toEqual([4, 3])
        expect(starting.unreadable()[1]?.error).not.toBe("")
        // A running node keeps version 2 and reports the same; polls go on without logging again.
        yield* eventually("running node finds the unreadable versions", Effect.sync(() => here.unreadable().length === 2 || undefined), { timeout: 5_000 })
        expect(here.current().version).toBe(2)
        expect((yield* here.refresh).version).toBe(2)
        yield* Effect.sleep(300)
        expect(logs.lines.filter((l) => l.includes("does not decode"))).toHaveLength(4) // two versions, two nodes, once each

        // A put (here: expecting the version in use) writes version 5 on top; the problem is over everywhere.
        const v5 = yield* starting.put(fileA, { expectedVersion: 2, actor: "user_1" })
        expect(v5.version).toBe(5)
        expect(starting.unreadable()).toEqual([])
        const seen = yield* eventually("running node moves on", Effect.sync(() => here.current().version === 5 ? here.current() : undefined), { timeout: 5_000 })
        expect(seen.document).toEqual(fileA)
        expect(here.unreadable()).toEqual([])
        expect(logs.lines.filter((l) => l.includes("does not decode"))).toHaveLength(4)
      }).pipe(Effect.provide(logs.layer)))
    }, 20_000)

    it.effect("no stored version decodes: the configuration file's policy applies (version 0) until a put", () =>
      onFreshDb(Effect.gen(function*() {
        yield* storeRaw(1, "not json")
        const config = yield* start(fileA)
        expect(config.current()).toMatchObject({ version: 0, document: fileA })
        expect(config.unreadable().map((u) => u.version)).toEqual([1])
        // The newest stored number is accepted as expectedVersion too (it is what GET names as unreadable).
        expect((yield* config.put({ rules: [] }, { expectedVersion: 1, actor: null })).version).toBe(2)
        expect(config.unreadable()).toEqual([])
      })))

    it.live("writers without expectedVersion that race for the next number all land, one after the other", () =>
      onFreshDb(Effect.gen(function*() {
        const nodes = yield* Effect.forEach([1, 2, 3, 4], () => start(fileA))
        // Rounds of one put per node at the same moment: each round, all but one lose the race for the number at first.
        for (let round = 0; round < 5; round++) {
          const versions = yield* Effect.forEach(nodes, (node, i) =>
            node.put({ rules: [{ id: `r${round}-${i}`, type: "frequency_cap", max: 1, window: "day" }] }, { actor: null }), {
            concurrency: "unbounded"
          })
          expect(versions.map((v) => v.version).sort((a, b) => a - b)).toEqual([2, 3, 4, 5].map((v) => v + round * 4))
        }
        const last = yield* nodes[0]!.refresh
        expect(last.version).toBe(21)
        // With expectedVersion, a lost race is still a conflict: the writer asked to build on what it read.
        const [a, b] = yield* Effect.forEach([nodes[0]!, nodes[1]!], (node) =>
          Effect.result(node.put({ rules: [] }, { expectedVersion: 21, actor: null })), { concurrency: "unbounded" })
        expect([a, b].filter((r) => r?._tag === "Success")).toHaveLength(1)
        expect([a, b].find((r) => r?._tag === "Failure")).toMatchObject({ failure: { _tag: "PolicyConflict", currentVersion: 22 } })
      })), 30_000)

    it.effect("a put that removes a blacklist (or gives its name to another organisation) deletes its overlay entries", () =>
      onFreshDb(Effect.gen(function*() {
        const withLists = (lists: PolicyDocument["blacklists"]): PolicyDocument => ({ rules: [], ...(lists ? { blacklists: lists } : {}) })
        const config = yield* start(withLists([{ name: "dnd" }, { name: "optout", org: "org_a", object: null }, { name: "kept" }]))
        yield* addOverlay("dnd", ["4915100000001"])
        yield* addOverlay("optout", ["4915100000002", "4915100000003"])
        yield* addOverlay("kept", ["4915100000004"])

        // dnd removed: its entries go, its version moves (nodes still holding it read the empty overlay).
        yield* config.put(withLists([{ name: "optout", org: "org_a", object: null }, { name: "kept" }]), { actor: null })
        expect(yield* overlayOf("dnd")).toEqual({ entries: [], version: 2 })
        expect(yield* overlayOf("kept")).toEqual({ entries: ["4915100000004"], version: 1 })
        expect(yield* overlayOf("optout")).toEqual({ entries: ["4915100000002", "4915100000003"], version: 1 })
        // Created again: it starts empty.
        yield* config.put(withLists([{ name: "dnd" }, { name: "optout", org: "org_a", object: null }, { name: "kept" }]), { actor: null })
        expect((yield* overlayOf("dnd")).entries).toEqual([])

        // The same name handed to another organisation is another list: org_a's opt-outs must not follow it.
        yield* config.put(withLists([{ name: "dnd" }, { name: "optout", org: "org_b" }, { name: "kept", object: "other.txt" }]), { actor: null })
        expect(yield* overlayOf("optout")).toEqual({ entries: [], version: 2 })
        // A list whose file changes keeps its entries (they are on top of whatever file).
        expect(yield* overlayOf("kept")).toEqual({ entries: ["4915100000004"], version: 1 })
      })))

    it.effect("an invalid document names every bad field and is not stored", () =>
      onFreshDb(Effect.gen(function*() {
        const config = yield* start(fileA)
        const error = yield* config.put({
          rules: [
            { id: "a", type: "frequency_cap", max: 0, window: "hour" },
            { id: "b", type: "nope" },
            { id: "c", type: "blacklist", lists: ["unknown"] }
          ]
        }, { actor: null }).pipe(Effect.flip)
        expect(error._tag).toBe("PolicyInvalid")
        const fields = error._tag === "PolicyInvalid" ? error.errors.map((e) => e.field) : []
        expect(fields).toContain("rules[0].max")
        expect(fields.some((f) => f.startsWith("rules[1]"))).toBe(true)
        // Semantic checks run once the shape is right.
        const semantic = yield* config.put({ rules: [{ id: "c", type: "blacklist", lists: ["unknown"] }] }, { actor: null }).pipe(Effect.flip)
        expect(semantic).toMatchObject({ _tag: "PolicyInvalid", errors: [{ field: "rules[0].lists[0]", message: "no blacklist \"unknown\"" }] })
        expect((yield* config.refresh).version).toBe(1)
      })))
  })

describe("droppedOverlays", () => {
  it("lists removed, re-owned or new lose their overlay; lists kept by name and owner keep it", () => {
    expect(droppedOverlays(
      { rules: [], blacklists: [{ name: "a" }, { name: "b", org: "o1" }, { name: "c", org: "o1" }, { name: "d" }] },
      { rules: [], blacklists: [{ name: "a", object: "x.txt" }, { name: "b", org: "o1", object: null }, { name: "c", org: "o2" }, { name: "e" }] }
    )).toEqual(["c", "d", "e"])
    expect(droppedOverlays({ rules: [] }, { rules: [] })).toEqual([])
  })
})

suite("SQLite", sqliteLayer)
suite("PostgreSQL", pgLayer)
