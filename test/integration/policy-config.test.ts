import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import type { Scope } from "effect"
import type { SqlClient } from "effect/sql"
import type { PolicyDocument } from "../../src/domain/Policy.ts"
import { PolicyConfig } from "../../src/policy/PolicyConfig.ts"
import { migrate } from "../../src/storage/Migrations.ts"
import { pgLayer, sqliteLayer } from "../fixtures/Databases.ts"
import { eventually } from "../fixtures/Processes.ts"

const fileA: PolicyDocument = {
  blacklists: [{ name: "dnd" }],
  rules: [
    { id: "promo-day", classes: ["promotional"], type: "frequency_cap", max: 3, window: "day" },
    { id: "dnd", type: "blacklist", lists: ["dnd"] }
  ]
}

const start = (seed: unknown, pollIntervalMs = 60_000) =>
  Effect.map(Layer.build(PolicyConfig.layer({ seed, pollIntervalMs })), (context) => Context.get(context, PolicyConfig))

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
        const seen = yield* eventually("other process reloads", Effect.sync(() => there.current().version === 2 ? there.current() : undefined), 5_000)
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

suite("SQLite", sqliteLayer)
suite("PostgreSQL", pgLayer)
