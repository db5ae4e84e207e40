import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Fiber, Layer, Option, Stream } from "effect"
import type { Scope } from "effect"
import { Migrator } from "effect/sql"
import type { SqlClient } from "effect/sql"
import type { LinkConfig } from "../../src/layers/Config.ts"
import { RoutingConfig } from "../../src/routing/RoutingConfig.ts"
import type { RoutingSeed } from "../../src/routing/RoutingConfig.ts"
import { routingMigrations } from "../../src/routing/RoutingMigrations.ts"
import { pgLayer, sqliteLayer } from "../fixtures/Databases.ts"
import { eventually } from "../fixtures/Eventually.ts"

const migrate = Migrator.make({})({ loader: Migrator.fromRecord(routingMigrations), table: "test_migrations" })

const link = (id: string, extra: Partial<LinkConfig> = {}): LinkConfig => ({
  id,
  host: "127.0.0.1",
  port: 2775,
  systemId: "sys",
  password: "secret",
  tps: 100,
  ...extra
})

const fileA: RoutingSeed = {
  links: [link("a"), link("b"), link("c")],
  pools: [{ id: "main", members: [{ link: "a", weight: 3 }, { link: "b" }] }],
  routes: [
    { id: "de", match: { prefixes: ["49"] }, target: { pool: "main" } },
    { id: "default", match: {}, target: { link: "c" } }
  ]
}

const fileB: RoutingSeed = { links: [link("x")], pools: [], routes: [] }

/** One RoutingConfig instance, as one process would have it; several may share a database. */
const start = (seed: RoutingSeed, pollIntervalMs = 60_000) =>
  Effect.map(Layer.build(RoutingConfig.layer({ seed, pollIntervalMs })), (context) => Context.get(context, RoutingConfig))

const ids = (items: ReadonlyArray<{ readonly id: string }>) => items.map((i) => i.id)

const suite = (name: string, database: Layer.Layer<SqlClient.SqlClient>) =>
  describe(`RoutingConfig on ${name}`, () => {
    // A database per test: seeding is about what a process finds in an empty database.
    const Db = Layer.effectDiscard(Effect.orDie(migrate)).pipe(Layer.provideMerge(database))
    const onFreshDb = <A, E>(effect: Effect.Effect<A, E, SqlClient.SqlClient | Scope.Scope>) =>
      effect.pipe(Effect.scoped, Effect.provide(Db))

    it.effect("the file seeds an empty database once; a later start with another file keeps the database's", () =>
      onFreshDb(Effect.gen(function*() {
        const first = yield* start(fileA)
        const seeded = first.current()
        expect(seeded.version).toBe(1)
        expect(seeded.links).toEqual(fileA.links.map((l) => ({ ...l, enabled: true })))
        expect(seeded.pools).toEqual(fileA.pools)
        expect(seeded.routes).toEqual(fileA.routes)
        expect(Option.map(first.link("b"), (l) => l.password)).toEqual(Option.some("secret"))
        expect(Option.isNone(first.pool("nope"))).toBe(true)

        const second = yield* start(fileB)
        expect(second.current()).toEqual(seeded)
        expect(Option.isNone(second.link("x"))).toBe(true)
      })))

    it.effect("a file whose pool or route names a missing link fails the start, naming the key, and writes nothing", () =>
      onFreshDb(Effect.gen(function*() {
        const badPool = yield* Effect.flip(start({ ...fileA, pools: [{ id: "p", members: [{ link: "a" }, { link: "zzz" }] }] }))
        expect(badPool).toMatchObject({ _tag: "RoutingInvalid", field: "pools[0].members[1].link", message: "no link \"zzz\"" })
        const badRoute = yield* Effect.flip(start({ ...fileA, routes: [{ id: "r", match: {}, target: { pool: "nope" } }] }))
        expect(badRoute).toMatchObject({ _tag: "RoutingInvalid", field: "routes[0].target.pool" })
        const badLink = yield* Effect.flip(start({ ...fileA, links: [link("a"), link("a")] }))
        expect(badLink).toMatchObject({ _tag: "RoutingInvalid", field: "links[1].id" })
        // Nothing was kept: a good file still seeds.
        const good = yield* start(fileA)
        expect(ids(good.current().links)).toEqual(["a", "b", "c"])
      })))

    it.effect("links: add, replace, patch, disable, remove, with validation and conflicts; each change bumps the version", () =>
      onFreshDb(Effect.gen(function*() {
        const routing = yield* start(fileA)
        const version = () => routing.current().version

        const added = yield* routing.addLink(link("d", { window: 5 }))
        expect(added).toEqual({ ...link("d", { window: 5 }), enabled: true })
        expect(version()).toBe(2)
        expect(ids(routing.current().links)).toEqual(["a", "b", "c", "d"])
        expect(yield* Effect.flip(routing.addLink(link("d")))).toMatchObject({ _tag: "RoutingConflict" })
        expect(yield* Effect.flip(routing.addLink(link("bad id!")))).toMatchObject({ _tag: "RoutingInvalid", field: "id" })
        expect(version()).toBe(2)

        const replaced = yield* routing.putLink({ ...link("d", { tps: 50 }), enabled: false })
        expect([replaced.tps, replaced.window, replaced.enabled]).toEqual([50, undefined, false])
        // Replacing without `enabled` keeps the link's state.
        expect((yield* routing.putLink(link("d", { tps: 60 }))).enabled).toBe(false)

        const patched = yield* routing.patchLink("d", { window: 20, password: "newpw", host: "10.0.0.9" })
        expect(patched).toEqual({ ...link("d", { tps: 60, window: 20, password: "newpw", host: "10.0.0.9" }), enabled: false })
        expect(yield* Effect.flip(routing.patchLink("d", { systemId: "x".repeat(16) }))).toMatchObject({
          _tag: "RoutingInvalid",
          field: "systemId"
        })
        expect(yield* Effect.flip(routing.patchLink("d", { id: "e" }))).toMatchObject({ _tag: "RoutingInvalid", field: "id" })
        expect(yield* Effect.flip(routing.patchLink("nope", { tps: 1 }))).toEqual(
          expect.objectContaining({ _tag: "RoutingNotFound", what: "link", id: "nope" })
        )
        expect(version()).toBe(5)

        expect((yield* routing.setLinkEnabled("d", true)).enabled).toBe(true)
        expect(Option.map(routing.link("d"), (l) => l.enabled)).toEqual(Option.some(true))
        expect(version()).toBe(6)

        const inPool = yield* Effect.flip(routing.removeLink("a"))
        expect(inPool).toMatchObject({ _tag: "RoutingConflict", message: "link \"a\" is used by pool main" })
        const inRoute = yield* Effect.flip(routing.removeLink("c"))
        expect(inRoute).toMatchObject({ _tag: "RoutingConflict", message: "link \"c\" is used by route default" })
        yield* routing.removeLink("d")
        expect(Option.isNone(routing.link("d"))).toBe(true)
        expect(yield* Effect.flip(routing.removeLink("d"))).toMatchObject({ _tag: "RoutingNotFound" })
        expect(version()).toBe(7)

        yield* routing.addLink(link("e"))
        // What another process starting now reads is what this one has.
        const other = yield* start(fileB)
        expect(other.current()).toEqual(routing.current())
        expect(ids(other.current().links)).toEqual(["a", "b", "c", "e"])
      })))

    it.effect("pools and routes: members and targets must exist, weights change live, removal conflicts", () =>
      onFreshDb(Effect.gen(function*() {
        const routing = yield* start(fileA)
        expect(yield* Effect.flip(routing.addPool({ id: "p2", members: [{ link: "zzz" }] }))).toMatchObject({
          _tag: "RoutingInvalid",
          field: "members[0].link",
          message: "no link \"zzz\""
        })
        expect(yield* Effect.flip(routing.addPool({ id: "p2", members: [] }))).toMatchObject({ field: "members" })
        expect(yield* Effect.flip(routing.addPool({ id: "p2", members: [{ link: "a" }, { link: "a" }] }))).toMatchObject({
          field: "members[1].link"
        })
        expect(yield* Effect.flip(routing.addPool({ id: "p2", members: [{ link: "a", weight: -1 }] }))).toMatchObject({
          field: "members[0].weight"
        })
        expect(routing.current().version).toBe(1)

        yield* routing.addPool({ id: "p2", members: [{ link: "b", weight: 1 }, { link: "c" }] })
        expect(yield* Effect.flip(routing.addPool({ id: "p2", members: [{ link: "a" }] }))).toMatchObject({ _tag: "RoutingConflict" })
        yield* routing.putPool({ id: "p2", members: [{ link: "c", weight: 2 }] })
        expect(routing.pool("p2")).toEqual(Option.some({ id: "p2", members: [{ link: "c", weight: 2 }] }))

        const weighted = yield* routing.patchPoolWeights("main", { a: 5, b: 0.5 })
        expect(weighted.members).toEqual([{ link: "a", weight: 5 }, { link: "b", weight: 0.5 }])
        expect(yield* Effect.flip(routing.patchPoolWeights("main", { c: 1 }))).toMatchObject({ field: "weights.c" })
        expect(yield* Effect.flip(routing.patchPoolWeights("main", { a: 0 }))).toMatchObject({ field: "weights.a" })
        expect(yield* Effect.flip(routing.patchPoolWeights("nope", { a: 1 }))).toMatchObject({ _tag: "RoutingNotFound", what: "pool" })

        const missing = yield* Effect.flip(routing.setRoutes([
          { id: "ok", match: {}, target: { link: "a" } },
          { id: "x", match: {}, target: { pool: "nope" } }
        ]))
        expect(missing).toMatchObject({ _tag: "RoutingInvalid", field: "routes[1].target.pool", message: "no pool \"nope\"" })
        const badPrefix = yield* Effect.flip(routing.setRoutes([{ id: "x", match: { prefixes: ["+49"] }, target: { link: "a" } }]))
        expect(badPrefix).toMatchObject({ _tag: "RoutingInvalid", field: "routes[0].match.prefixes[0]" })
        expect(routing.current().routes).toEqual(fileA.routes)

        const routes = [
          { id: "app1", match: { appIds: ["app-1"] }, target: { pool: "p2" } },
          { id: "default", match: {}, target: { link: "c" } }
        ]
        expect(yield* routing.setRoutes(routes)).toEqual(routes)
        expect(routing.current().routes).toEqual(routes)

        const used = yield* Effect.flip(routing.removePool("p2"))
        expect(used).toMatchObject({ _tag: "RoutingConflict", message: "pool \"p2\" is used by route app1" })
        yield* routing.removePool("main")
        expect(ids(routing.current().pools)).toEqual(["p2"])
        // No longer a member of any pool nor a route target: "a" can go now.
        yield* routing.removeLink("a")
        expect(ids(routing.current().links)).toEqual(["b", "c"])
      })))

    it.effect("refresh catches up with another process at once, without waiting for the poll", () =>
      onFreshDb(Effect.gen(function*() {
        const one = yield* start(fileA)
        const two = yield* start(fileA)
        yield* one.setLinkEnabled("b", false)
        // The test clock does not move, so two's poll has not run.
        expect(Option.map(two.link("b"), (l) => l.enabled)).toEqual(Option.some(true))
        const caughtUp = yield* two.refresh
        expect(caughtUp).toEqual(one.current())
        expect(Option.map(two.link("b"), (l) => l.enabled)).toEqual(Option.some(false))
        // Nothing newer: the same snapshot, not a reload.
        expect(yield* two.refresh).toBe(caughtUp)
      })))

    it.live("two processes on one database: a change through either reaches the other within a second", () =>
      onFreshDb(Effect.gen(function*() {
        const one = yield* start(fileA, 100)
        const two = yield* start(fileA, 100)
        const seen = yield* two.changes.pipe(
          Stream.filter((s) => s.links.some((l) => l.id === "a" && l.tps === 7)),
          Stream.runHead,
          Effect.forkChild
        )

        // How long the other process took to see a change.
        const took = (what: string, check: () => boolean) =>
          Effect.gen(function*() {
            const started = Date.now()
            yield* eventually(what, Effect.sync(check), { timeout: 3_000, interval: 10 })
            return Date.now() - started
          })

        yield* one.patchLink("a", { tps: 7 })
        const tookTwo = yield* took("two sees tps 7 on a", () => Option.getOrUndefined(two.link("a"))?.tps === 7)
        expect(tookTwo).toBeLessThan(1_000)
        expect(two.current()).toEqual(one.current())
        const emitted = yield* Fiber.join(seen).pipe(Effect.timeout("1 second"))
        expect(Option.map(emitted, (s) => s.version)).toEqual(Option.some(one.current().version))

        const routes = [{ id: "only", match: {}, target: { pool: "main" } }]
        yield* two.setRoutes(routes)
        const tookOne = yield* took("one sees the route", () => one.current().routes.length === 1)
        expect(tookOne).toBeLessThan(1_000)
        expect(one.current().routes).toEqual(routes)

        // Changes racing from both sides are both kept, each with its own version.
        const before = one.current().version
        yield* Effect.all([one.addLink(link("p")), two.addLink(link("q"))], { concurrency: 2 })
        yield* took("both on the version after the racing changes", () => one.current().version === before + 2 && two.current().version === before + 2)
        expect(new Set(ids(one.current().links))).toEqual(new Set(["a", "b", "c", "p", "q"]))
        expect(two.current()).toEqual(one.current())
      })), 20_000)
  })

suite("SQLite (node:sqlite)", sqliteLayer)
suite("PostgreSQL", pgLayer)
