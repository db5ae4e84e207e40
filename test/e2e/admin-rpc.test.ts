import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import { Runner, RunnerAddress, RunnerStorage, ShardingConfig, SqlRunnerStorage } from "effect/cluster"
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { ActorRegistry, RunnerIdentity } from "../../src/actors/ActorRegistry.ts"
import type { ActorEntry } from "../../src/actors/ActorRegistry.ts"
import { registryMigrations } from "../../src/actors/RegistryMigrations.ts"
import { AdminClient, renderActors, renderBucket, renderLink, renderPool, renderRunners } from "../../src/cli/admin.ts"
import { RunnerDirectory } from "../../src/rpc/AdminRpcServer.ts"
import { pgLayer, sqliteLayer } from "../fixtures/Databases.ts"
import { eventually } from "../fixtures/Eventually.ts"
import { post, signUp, startGateway, startPooledGateway, superadmin, waitForStatus } from "../fixtures/Gateway.ts"

const migrated = Effect.forEach(Object.values(registryMigrations), (m) => m, { discard: true }).pipe(Effect.orDie)

/** One process's registry: its own runner address and heartbeat, on the shared database. */
const registryOf = (runner: string, options: { heartbeatMs: number; staleAfterMs: number; pruneAfterMs?: number }) =>
  Effect.gen(function*() {
    const scope = yield* Scope.fork(yield* Scope.Scope)
    const context = yield* Layer.buildWithScope(
      ActorRegistry.layer(options).pipe(Layer.provide(Layer.succeed(RunnerIdentity, runner))),
      scope
    )
    return { registry: Context.get(context, ActorRegistry), stop: Scope.close(scope, Exit.void) }
  })

/** An actor that registers in a scope of its own; `stop` closes it (the actor stops). */
const actor = (registry: ActorRegistry["Service"], type: string, id: string) =>
  Effect.gen(function*() {
    const scope = yield* Scope.fork(yield* Scope.Scope)
    yield* registry.register(type, id).pipe(Scope.provide(scope))
    return { stop: Scope.close(scope, Exit.void) }
  })

const only = (entries: ReadonlyArray<ActorEntry>, id: string) => entries.filter((e) => e.id === id)

for (const [dialect, database] of [["SQLite", sqliteLayer], ["PostgreSQL", pgLayer]] as const) {
  describe(`actor registry on ${dialect}`, () => {
    it.live("an actor's row names its runner, is renewed by the heartbeat and removed when the actor stops", () =>
      Effect.gen(function*() {
        yield* migrated
        const a = yield* registryOf("10.0.0.1:34431", { heartbeatMs: 100, staleAfterMs: 1_000 })
        const link = yield* actor(a.registry, "SmppLink", "carrier-a")
        yield* actor(a.registry, "VirtualPool", "main")
        const [first] = yield* a.registry.list("SmppLink")
        expect(first).toMatchObject({ type: "SmppLink", id: "carrier-a", runner: "10.0.0.1:34431", stale: false })
        expect((yield* a.registry.list()).map((e) => `${e.type}/${e.id}`)).toEqual(["SmppLink/carrier-a", "VirtualPool/main"])
        const renewed = yield* eventually("the link's heartbeat renewed (200 ms on)", a.registry.list("SmppLink"), { until: (l) => (l[0]?.heartbeatAt ?? 0) >= (first?.heartbeatAt ?? 0) + 200 })
        expect(renewed[0]?.startedAt).toBe(first?.startedAt)
        yield* link.stop
        expect(yield* a.registry.list("SmppLink")).toEqual([])
        expect((yield* a.registry.list()).map((e) => e.id)).toEqual(["main"])
      }).pipe(Effect.scoped, Effect.provide(database)))

    it.live("an actor that moved keeps the row its new runner wrote when the old one's finalizer runs late", () =>
      Effect.gen(function*() {
        yield* migrated
        const a = yield* registryOf("10.0.0.1:1", { heartbeatMs: 100, staleAfterMs: 1_000 })
        const b = yield* registryOf("10.0.0.2:1", { heartbeatMs: 100, staleAfterMs: 1_000 })
        const onA = yield* actor(a.registry, "SmppLink", "x")
        yield* actor(b.registry, "SmppLink", "x")
        yield* onA.stop
        // What is tested is that nothing overwrites b's row afterwards: three heartbeats' time without a change.
        yield* Effect.sleep(300)
        const rows = yield* b.registry.list()
        expect(rows.map((r) => [r.id, r.runner, r.stale])).toEqual([["x", "10.0.0.2:1", false]])
      }).pipe(Effect.scoped, Effect.provide(database)))

    it.live("a dead runner's rows turn stale, then are pruned; a runner restarted at its address clears its old rows", () =>
      Effect.gen(function*() {
        yield* migrated
        const options = { heartbeatMs: 100, staleAfterMs: 400, pruneAfterMs: 1_500 }
        const dead = yield* registryOf("10.0.0.3:1", options)
        const restarting = yield* registryOf("10.0.0.4:1", options)
        const observer = yield* registryOf("10.0.0.5:1", options)
        // Actors whose scope never closes: their process dies (the registry's heartbeat stops with it).
        yield* actor(dead.registry, "VirtualPool", "p1")
        yield* actor(restarting.registry, "VirtualPool", "p2")
        yield* Effect.all([dead.stop, restarting.stop])
        const stale = yield* eventually("both actors of the stopped runners listed as stale", observer.registry.list(), { until: (l) => l.length === 2 && l.every((e) => e.stale) })
        expect(stale.map((e) => [e.id, e.runner])).toEqual([["p1", "10.0.0.3:1"], ["p2", "10.0.0.4:1"]])
        yield* registryOf("10.0.0.4:1", options)
        expect(only(yield* observer.registry.list(), "p2")).toEqual([])
        yield* eventually("the stale entries cleaned up", observer.registry.list(), { until: (l) => l.length === 0, timeout: 3_000 })
      }).pipe(Effect.scoped, Effect.provide(database)))

    it.live("the cluster's runner table: health, heartbeat age and hash-ring shards per runner", () =>
      Effect.gen(function*() {
        const storage = yield* RunnerStorage.RunnerStorage
        const runner = (port: number, weight = 1) =>
          Runner.make({ address: RunnerAddress.make("127.0.0.1", port), groups: ["default"], weight })
        yield* storage.register(runner(9001), true)
        yield* storage.register(runner(9002), true)
        yield* storage.register(runner(9003, 2), true)
        yield* storage.register(runner(9004), true)
        yield* storage.setRunnerHealth(RunnerAddress.make("127.0.0.1", 9004), false)
        const directory = yield* Layer.build(
          RunnerDirectory.layerSql({ shardLockExpirationMs: 10_000 }).pipe(
            Layer.provide(Layer.succeed(RunnerIdentity, "127.0.0.1:9002"))
          )
        ).pipe(Effect.map((c) => Context.get(c, RunnerDirectory)))
        const runners = yield* directory.list
        expect(runners.map((r) => [r.address, r.healthy, r.self])).toEqual([
          ["127.0.0.1:9001", true, false],
          ["127.0.0.1:9002", true, true],
          ["127.0.0.1:9003", true, false],
          ["127.0.0.1:9004", false, false]
        ])
        const shards = runners.map((r) => r.shards)
        expect(shards.reduce((a, b) => a + b, 0)).toBe(300)
        expect(shards[3]).toBe(0)
        // Weight 2 takes about half of the 300 shards, the two others about a quarter each.
        expect(shards[2]).toBeGreaterThan(120)
        expect(Math.min(shards[0] ?? 0, shards[1] ?? 0)).toBeGreaterThan(50)
        for (const r of runners) expect(r.heartbeatAgeMs ?? -1).toBeGreaterThanOrEqual(0)
        for (const r of runners) expect(r.heartbeatAgeMs ?? Infinity).toBeLessThan(5_000)
      }).pipe(
        Effect.scoped,
        Effect.provide(SqlRunnerStorage.layer.pipe(Layer.orDie)),
        Effect.provide(ShardingConfig.layer()),
        Effect.provide(database)
      ))
  })
}

// --- The whole gateway: the RPC at POST /rpc/admin and the `smsgw admin` CLI -----------------------------------

const tokenOf = (authorization: Record<string, string>) => (authorization.authorization ?? "").replace(/^Bearer /, "")

const rpc = <A, E>(baseUrl: string, token: string, f: (client: AdminClient["Service"]) => Effect.Effect<A, E>) =>
  AdminClient.use(f).pipe(Effect.provide(AdminClient.layer(baseUrl, token)))

const pooled = startPooledGateway({
  links: [{ id: "a" }, { id: "b" }],
  pools: [{ id: "main", members: [{ link: "a", weight: 3 }, { link: "b", weight: 1 }] }],
  routes: [{ id: "default", match: {}, target: { pool: "main" } }]
})

const main = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url))

/** `smsgw admin …` as an operator runs it: a child process of the project's Node. */
const cli = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  Effect.callback<{ code: number; stdout: string; stderr: string }>((resume) => {
    const child = execFile(process.execPath, ["--no-warnings", main, "admin", ...args], {
      env: { ...process.env, ...env },
      timeout: 20_000
    }, (error, stdout, stderr) => {
      resume(Effect.succeed({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr }))
    })
    return Effect.sync(() => child.kill("SIGKILL"))
  })

describe("admin RPC over HTTP", () => {
  it.live("only a superadmin's token is accepted", () =>
    Effect.gen(function*() {
      const gw = yield* pooled
      const tenant = yield* signUp(gw.baseUrl)
      const failure = (token: string) => rpc(gw.baseUrl, token, (c) => c.ListRunners()).pipe(Effect.flip)
      expect(yield* failure("")).toMatchObject({ _tag: "Unauthenticated" })
      expect(yield* failure("not-a-token")).toMatchObject({ _tag: "Unauthenticated" })
      expect(yield* failure(tenant.userToken)).toMatchObject({ _tag: "Forbidden", message: "the admin RPC is for superadmins only" })
      expect(yield* failure(tenant.appToken)).toMatchObject({ _tag: "Forbidden" })
      const token = tokenOf(yield* superadmin(gw.baseUrl))
      expect(yield* rpc(gw.baseUrl, token, (c) => c.ListRunners())).toHaveLength(1)
    }).pipe(Effect.scoped))

  it.live("runners, actors and what each link and pool is doing", () =>
    Effect.gen(function*() {
      const gw = yield* pooled
      const token = tokenOf(yield* superadmin(gw.baseUrl))
      const admin = <A, E>(f: (client: AdminClient["Service"]) => Effect.Effect<A, E>) => rpc(gw.baseUrl, token, f)

      // Four messages through the 3:1 pool, delivered.
      const tenant = yield* signUp(gw.baseUrl)
      const ids = yield* Effect.forEach([1, 2, 3, 4], (i) =>
        post(`${gw.baseUrl}/v1/messages`, { to: "+4915112345678", from: "ACME", text: `admin ${i}` }, tenant.auth).pipe(
          Effect.map((r) => String(r.json.id))
        ))
      for (const id of ids) expect((yield* waitForStatus(gw.baseUrl, id, "delivered", 10_000, tenant.auth)).status).toBe("delivered")

      const runners = yield* admin((c) => c.ListRunners())
      expect(runners).toHaveLength(1)
      expect(runners[0]).toMatchObject({ healthy: true, self: true, shards: 300 })
      const address = runners[0]?.address

      const actors = yield* admin((c) => c.ListActors({}))
      expect(actors.map((a) => [a.type, a.id, a.runner, a.stale])).toEqual([
        ["SmppLink", "a", address, false],
        ["SmppLink", "b", address, false],
        ["VirtualPool", "main", address, false]
      ])
      expect((yield* admin((c) => c.ListActors({ type: "VirtualPool" }))).map((a) => a.id)).toEqual(["main"])

      const [a, b] = yield* Effect.all([admin((c) => c.InspectLink({ linkId: "a" })), admin((c) => c.InspectLink({ linkId: "b" }))])
      for (const link of [a, b]) {
        expect(link).toMatchObject({ bound: true, enabled: true, health: "bound", window: 10, tps: 1000, queued: 0 })
        expect(link.connections).toEqual([{ mode: "transceiver", bound: true, inFlight: 0 }])
      }
      expect(a.counters.submitOk + b.counters.submitOk).toBe(4)
      expect(a.counters.receiptsMatched + b.counters.receiptsMatched).toBe(4)
      expect(a.counters.submitOk).toBe(3)

      const pool = yield* admin((c) => c.InspectPool({ poolId: "main" }))
      expect(pool.poolId).toBe("main")
      expect(pool.picks).toBe(4)
      expect(pool.members.map((m) => [m.linkId, m.configuredWeight, m.effectiveWeight, m.state])).toEqual([
        ["a", 3, 3, "bound"],
        ["b", 1, 1, "bound"]
      ])

      expect(yield* admin((c) => c.InspectLink({ linkId: "nope" })).pipe(Effect.flip)).toMatchObject({
        _tag: "AdminNotFound", what: "link", id: "nope"
      })
      expect(yield* admin((c) => c.InspectPool({ poolId: "nope" })).pipe(Effect.flip)).toMatchObject({
        _tag: "AdminNotFound", what: "pool"
      })
      expect(yield* admin((c) => c.ReloadBlacklist({ name: "default" })).pipe(Effect.flip)).toMatchObject({
        _tag: "AdminNotFound", what: "blacklist", id: "default"
      })

      // The readable forms the CLI prints.
      expect(renderRunners(runners)).toMatch(/^ADDRESS\s+HEALTHY\s+SHARDS\s+HEARTBEAT\n\S+\s+yes\s+300\s+-\s+\(answered\)$/)
      expect(renderActors(actors).split("\n").map((l) => l.split(/\s+/).slice(0, 3).join(" "))).toEqual([
        "TYPE ID RUNNER", `SmppLink a ${address}`, `SmppLink b ${address}`, `VirtualPool main ${address}`
      ])
      expect(renderLink(a)).toMatch(/\nwindow\s+0 \/ 10 in use\n/)
      expect(renderLink(a)).toMatch(/\n {2}submitOk\s+3\n/)
      expect(renderPool(pool).split("\n")[2]).toMatch(/^a\s+bound\s+3\s+3\s+/)
    }).pipe(Effect.scoped))

  it.live("a recipient bucket: its decisions, counters and hit rate, by bucket or by phone number; the CLI", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({
        config: { policy: { buckets: 16, rules: [{ id: "two-a-day", type: "frequency_cap", max: 2, window: "day" }] } }
      })
      const token = tokenOf(yield* superadmin(gw.baseUrl))
      const admin = <A, E>(f: (client: AdminClient["Service"]) => Effect.Effect<A, E>) => rpc(gw.baseUrl, token, f)
      const tenant = yield* signUp(gw.baseUrl)
      const statuses = yield* Effect.forEach([1, 2, 3], (i) =>
        post(`${gw.baseUrl}/v1/messages`, { to: "+4915112345678", from: "ACME", text: `bucket ${i}` }, tenant.auth).pipe(
          Effect.map((r) => r.status)
        ))
      expect(statuses).toEqual([202, 202, 422])

      const view = yield* admin((c) => c.InspectBucket({ recipient: "+4915112345678" }))
      expect(view).toMatchObject({ recipients: 1, decisions: 3, admitted: 2, rejected: 1, duplicatesReturned: 0, hitRate: 1, persistent: false })
      expect(yield* admin((c) => c.InspectBucket({ bucket: view.bucket }))).toEqual(view)
      const actors = yield* admin((c) => c.ListActors({ type: "RecipientPolicy" }))
      expect(actors.map((a) => a.id)).toEqual([String(view.bucket)])
      expect(yield* admin((c) => c.InspectBucket({ bucket: 16 })).pipe(Effect.flip)).toMatchObject({ _tag: "AdminNotFound", what: "bucket" })
      expect(renderBucket(view)).toMatch(/admitted\s+2\n/)

      const printed = yield* cli(["inspect", "bucket", "+4915112345678", "--url", gw.baseUrl, "--token", token])
      expect(printed.code).toBe(0)
      expect(printed.stdout).toMatch(/decisions\s+3/)
    }).pipe(Effect.scoped))

  it.live("rebind re-binds the link; disable and enable are seen by the link and its pool; the CLI", () =>
    Effect.gen(function*() {
      const gw = yield* pooled
      const token = tokenOf(yield* superadmin(gw.baseUrl))
      const admin = <A, E>(f: (client: AdminClient["Service"]) => Effect.Effect<A, E>) =>
        rpc(gw.baseUrl, token, f).pipe(Effect.orDie)
      const sim = gw.sims.a!
      yield* eventually("link a bound (InspectLink)", admin((c) => c.InspectLink({ linkId: "a" })), { until: (s) => s.bound })
      const before = (yield* sim.stats).binds

      yield* admin((c) => c.RebindLink({ linkId: "a" }))
      yield* eventually("one more bind at the simulator", sim.stats, { until: (s) => s.binds === before + 1 })
      expect(yield* eventually("link a bound (InspectLink)", admin((c) => c.InspectLink({ linkId: "a" })), { until: (s) => s.bound })).toMatchObject({ health: "bound" })

      expect(yield* admin((c) => c.SetLinkEnabled({ linkId: "a", enabled: false }))).toEqual({ linkId: "a", enabled: false })
      const disabled = yield* eventually("link a unbound (InspectLink)", admin((c) => c.InspectLink({ linkId: "a" })), { until: (s) => !s.bound })
      expect(disabled).toMatchObject({ enabled: false, health: "disabled", connections: [] })
      const pool = yield* admin((c) => c.InspectPool({ poolId: "main" }))
      expect(pool.members.map((m) => [m.linkId, m.state, m.effectiveWeight])).toEqual([["a", "disabled", 0], ["b", "bound", 1]])

      yield* admin((c) => c.SetLinkEnabled({ linkId: "a", enabled: true }))
      const enabled = yield* eventually("link a bound (InspectLink)", admin((c) => c.InspectLink({ linkId: "a" })), { until: (s) => s.bound })
      expect(enabled).toMatchObject({ enabled: true, health: "bound" })
      expect((yield* sim.stats).binds).toBe(before + 2)
      expect(yield* rpc(gw.baseUrl, token, (c) => c.SetLinkEnabled({ linkId: "zz", enabled: true })).pipe(Effect.flip))
        .toMatchObject({ _tag: "AdminNotFound", what: "link", id: "zz" })

      // The CLI, as a child process: --json for scripts, tables otherwise, one line on stderr and exit 1 on errors.
      const listed = yield* cli(["actors", "--json", "--url", gw.baseUrl, "--token", token])
      expect(listed.code).toBe(0)
      const actors = JSON.parse(listed.stdout) as ReadonlyArray<{ type: string; id: string; runner: string }>
      expect(actors.map((a) => `${a.type}/${a.id}`)).toEqual(["SmppLink/a", "SmppLink/b", "VirtualPool/main"])
      const runner = actors[0]?.runner
      expect(runner).toMatch(/.+:\d+$/)
      expect(actors.every((a) => a.runner === runner)).toBe(true)

      const inspected = yield* cli(["--url", gw.baseUrl, "inspect", "link", "b"], { SMSGW_ADMIN_TOKEN: token })
      expect(inspected.code).toBe(0)
      expect(inspected.stdout).toMatch(/^link\s+b\nbound\s+yes \(transceiver bound, 0 in flight\)\n/)

      const refused = yield* cli(["runners", "--url", gw.baseUrl, "--token", "garbage"])
      expect(refused.code).toBe(1)
      expect(refused.stdout).toBe("")
      expect(refused.stderr.trim()).toBe(
        "smsgw admin: not authenticated: invalid access token (malformed) (use --token, SMSGW_ADMIN_TOKEN or --email/--password)"
      )
    }).pipe(Effect.scoped))
})
