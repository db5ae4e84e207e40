/**
 * The live routing configuration of the whole deployment: links, pools and routing rules, kept in SQL and shared by
 * every process on the database. Reads are synchronous (an in-memory snapshot, for the hot path); every change goes
 * through one transaction that bumps `routing_version`, and the other processes poll that number to reload.
 *
 * The configuration file only bootstraps: the first process to start on an empty database seeds it from the file,
 * and from then on the database is the truth. Links, pools and routes in the file are ignored on later starts (a link
 * removed through the admin API does not come back on restart); change them through `/v1/admin`.
 */
import { Clock, Context, Duration, Effect, Layer, Option, Schedule, Schema, Stream, SubscriptionRef } from "effect"
import { messageWithCauses } from "../domain/Errors.ts"
import { SqlClient, SqlError } from "effect/sql"
import { LinkConfig, PoolConfig } from "./Links.ts"
import { decodeRouteRules, RouteRules } from "./Rules.ts"
import type { RouteRule } from "./Rules.ts"
import { fieldIssues } from "../domain/FieldIssues.ts"

export type PoolRecord = PoolConfig

export type LinkRecord = LinkConfig & { readonly enabled: boolean }

/** A link to add or replace; `enabled` defaults to true (or, on replace, to what the link was). */
export type NewLink = LinkConfig & { readonly enabled?: boolean }

/** Absent fields keep their value; `id` may be given only if it is the link's own. */
export type LinkPatch = Partial<LinkConfig>

export interface RoutingSnapshot {
  /** Bumped by every change anywhere in the deployment. */
  readonly version: number
  /** In configured order. */
  readonly links: ReadonlyArray<LinkRecord>
  readonly pools: ReadonlyArray<PoolRecord>
  /** Ordered: the first matching rule wins. */
  readonly routes: ReadonlyArray<RouteRule>
}

export interface RoutingSeed {
  readonly links: ReadonlyArray<LinkConfig>
  readonly pools: ReadonlyArray<PoolRecord>
  readonly routes: ReadonlyArray<RouteRule>
}

export class RoutingNotFound extends Schema.TaggedError<RoutingNotFound>()("RoutingNotFound", {
  what: Schema.Literals(["link", "pool"]),
  id: Schema.String
}) {}

/** The change would break something that depends on it (a pool member, a route target) or the id is taken. */
export class RoutingConflict extends Schema.TaggedError<RoutingConflict>()("RoutingConflict", {
  message: Schema.String
}) {}

export class RoutingInvalid extends Schema.TaggedError<RoutingInvalid>()("RoutingInvalid", {
  /** Dotted path of the bad field, as the request (or the configuration file) names it: `routes[2].target.pool`. */
  field: Schema.String,
  message: Schema.String
}) {}

export class RoutingStoreFailure extends Schema.TaggedError<RoutingStoreFailure>()("RoutingStoreFailure", {
  message: Schema.String,
  /** The SqlError behind it, when there is one: what the database said, for the logs. */
  cause: Schema.optionalKey(Schema.Defect())
}) {}

export type RoutingError = RoutingNotFound | RoutingConflict | RoutingInvalid | RoutingStoreFailure

export class RoutingConfig extends Context.Service<RoutingConfig, {
  /** The latest snapshot this process knows, without waiting: for the hot path. */
  readonly current: () => RoutingSnapshot
  /** The current snapshot, then every newer one (changes made here at once, elsewhere within a poll interval). */
  readonly changes: Stream.Stream<RoutingSnapshot>
  readonly link: (id: string) => Option.Option<LinkRecord>
  readonly pool: (id: string) => Option.Option<PoolRecord>

  /** Adds a link; RoutingConflict when the id is taken. */
  readonly addLink: (link: NewLink) => Effect.Effect<LinkRecord, RoutingConflict | RoutingInvalid | RoutingStoreFailure>
  /** Adds or replaces a link. */
  readonly putLink: (link: NewLink) => Effect.Effect<LinkRecord, RoutingInvalid | RoutingStoreFailure>
  readonly patchLink: (
    id: string,
    patch: LinkPatch
  ) => Effect.Effect<LinkRecord, RoutingNotFound | RoutingInvalid | RoutingStoreFailure>
  readonly setLinkEnabled: (id: string, enabled: boolean) => Effect.Effect<LinkRecord, RoutingNotFound | RoutingStoreFailure>
  /** RoutingConflict while a pool has it as a member or a route targets it. */
  readonly removeLink: (id: string) => Effect.Effect<void, RoutingNotFound | RoutingConflict | RoutingStoreFailure>

  /** Adds a pool of existing links; RoutingConflict when the id is taken. */
  readonly addPool: (pool: PoolRecord) => Effect.Effect<PoolRecord, RoutingConflict | RoutingInvalid | RoutingStoreFailure>
  /** Adds or replaces a pool of existing links. */
  readonly putPool: (pool: PoolRecord) => Effect.Effect<PoolRecord, RoutingInvalid | RoutingStoreFailure>
  /** Sets the weights of some members (by link id); the others keep theirs. */
  readonly patchPoolWeights: (
    id: string,
    weights: Readonly<Record<string, number>>
  ) => Effect.Effect<PoolRecord, RoutingNotFound | RoutingInvalid | RoutingStoreFailure>
  /** RoutingConflict while a route targets it. */
  readonly removePool: (id: string) => Effect.Effect<void, RoutingNotFound | RoutingConflict | RoutingStoreFailure>

  /** Replaces the whole ordered rule list; every target must exist. */
  readonly setRoutes: (
    routes: ReadonlyArray<RouteRule>
  ) => Effect.Effect<ReadonlyArray<RouteRule>, RoutingInvalid | RoutingStoreFailure>

  /** Catches up with the database now instead of at the next poll (admin reads: read-your-writes on any node). */
  readonly refresh: Effect.Effect<RoutingSnapshot, RoutingStoreFailure>
}>()("smsgw/routing/RoutingConfig") {
  /**
   * Seeds an empty database from `seed` (the configuration file), loads the snapshot and keeps it fresh.
   *
   * Other processes' changes are found by polling `routing_version` every `pollIntervalMs` (one indexed read of one
   * row): it works the same on SQLite and PostgreSQL, needs no LISTEN connection or extra service, and a change
   * reaches every node within one interval, which is what configuration changes need.
   */
  static readonly layer = (options: { readonly seed: RoutingSeed; readonly pollIntervalMs: number }) =>
    Layer.effect(RoutingConfig, make(options))
}

type State = Omit<RoutingSnapshot, "version">

interface Indexed {
  readonly snapshot: RoutingSnapshot
  readonly links: ReadonlyMap<string, LinkRecord>
  readonly pools: ReadonlyMap<string, PoolRecord>
}

const index = (snapshot: RoutingSnapshot): Indexed => ({
  snapshot,
  links: new Map(snapshot.links.map((l) => [l.id, l])),
  pools: new Map(snapshot.pools.map((p) => [p.id, p]))
})

type Int = number | string | bigint

interface LinkRow {
  readonly id: string
  readonly config: string
  readonly enabled: Int | boolean
}

interface ConfigRow {
  readonly id: string
  readonly config: string
}

/** Decodes an input, failing with the first bad field named under `prefix`. */
const decodeInput = <S extends Schema.Top & { readonly DecodingServices: never }>(schema: S, prefix: string) => {
  const decode = Schema.decodeUnknownEffect(schema)
  return (input: unknown): Effect.Effect<S["Type"], RoutingInvalid> =>
    decode(input).pipe(
      Effect.mapError((error) => {
        const issue = fieldIssues(error.issue, { prefix })[0]
        return new RoutingInvalid({ field: issue?.field ?? "(root)", message: issue?.message ?? error.message })
      })
    )
}

const decodeLink = decodeInput(LinkConfig, "")
const decodePool = decodeInput(PoolConfig, "")

const decodeRoutes = (routes: unknown, prefix: string) =>
  decodeRouteRules(routes).pipe(
    Effect.mapError((error) => {
      const issue = error.issues[0]
      const path = issue === undefined || issue.path === "(root)" ? "" : issue.path
      return new RoutingInvalid({
        field: path === "" ? prefix : path.startsWith("[") ? `${prefix}${path}` : `${prefix}.${path}`,
        message: issue?.message ?? error.message
      })
    })
  )

/** Decodes a row's JSON; a bad one means someone wrote the table by hand. */
const stored = <S extends Schema.Top & { readonly DecodingServices: never }>(schema: S, what: string) => {
  const decode = Schema.decodeUnknownEffect(schema)
  return (json: string, id: string): Effect.Effect<S["Type"], RoutingStoreFailure> =>
    decode(json).pipe(
      Effect.mapError((e) => new RoutingStoreFailure({ message: `stored ${what} ${id} is invalid: ${e.message}` }))
    )
}

const storedLink = stored(Schema.fromJsonString(LinkConfig), "link")
const storedPool = stored(Schema.fromJsonString(PoolConfig), "pool")
const storedRoutes = stored(Schema.fromJsonString(RouteRules), "routes")

const storeFailure = (error: SqlError.SqlError) => new RoutingStoreFailure({ message: messageWithCauses(error), cause: error })

const flag = (value: Int | boolean): boolean => typeof value === "boolean" ? value : Number(value) === 1

/** What the link's row keeps as JSON (the enabled flag has its own column). */
const configOf = (link: NewLink | LinkRecord): LinkConfig => {
  const { enabled: _, ...config } = link
  return config
}

const targetOf = (rule: RouteRule) =>
  "pool" in rule.target
    ? { kind: "pool" as const, id: rule.target.pool }
    : { kind: "link" as const, id: rule.target.link }

/** Every pool member names an existing link. */
const checkMembers = (pool: PoolRecord, state: State, prefix: string) => {
  const links = new Set(state.links.map((l) => l.id))
  for (const [i, member] of pool.members.entries()) {
    if (!links.has(member.link)) {
      return Effect.fail(new RoutingInvalid({ field: `${prefix}members[${i}].link`, message: `no link "${member.link}"` }))
    }
  }
  return Effect.void
}

/** Every rule targets an existing pool or link. */
const checkTargets = (routes: ReadonlyArray<RouteRule>, state: State, prefix: string) => {
  const links = new Set(state.links.map((l) => l.id))
  const pools = new Set(state.pools.map((p) => p.id))
  for (const [i, rule] of routes.entries()) {
    const target = targetOf(rule)
    if (!(target.kind === "pool" ? pools : links).has(target.id)) {
      return Effect.fail(new RoutingInvalid({
        field: `${prefix}[${i}].target.${target.kind}`,
        message: `no ${target.kind} "${target.id}"`
      }))
    }
  }
  return Effect.void
}

/** The configuration file's links, pools and rules as a first state, with the same checks as the admin API. */
const seedState = Effect.fn("RoutingConfig.seedState")(function*(seed: RoutingSeed) {
  const links: Array<LinkRecord> = []
  for (const [i, raw] of seed.links.entries()) {
    const link = yield* decodeInput(LinkConfig, `links[${i}]`)(raw)
    if (links.some((l) => l.id === link.id)) {
      return yield* new RoutingInvalid({ field: `links[${i}].id`, message: `duplicate link id "${link.id}"` })
    }
    links.push({ ...link, enabled: true })
  }
  const pools: Array<PoolRecord> = []
  for (const [i, raw] of seed.pools.entries()) {
    const pool = yield* decodeInput(PoolConfig, `pools[${i}]`)(raw)
    if (pools.some((p) => p.id === pool.id)) {
      return yield* new RoutingInvalid({ field: `pools[${i}].id`, message: `duplicate pool id "${pool.id}"` })
    }
    yield* checkMembers(pool, { links, pools, routes: [] }, `pools[${i}].`)
    pools.push(pool)
  }
  const routes = yield* decodeRoutes(seed.routes, "routes")
  yield* checkTargets(routes, { links, pools, routes }, "routes")
  const state: State = { links, pools, routes }
  return state
})

const make = (options: { readonly seed: RoutingSeed; readonly pollIntervalMs: number }) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient

    const loadState = Effect.gen(function*() {
      const linkRows = yield* sql<LinkRow>`SELECT id, config, enabled FROM routing_links ORDER BY position, id`
      const poolRows = yield* sql<ConfigRow>`SELECT id, config FROM routing_pools ORDER BY position, id`
      const routeRows = yield* sql<{ readonly rules: string }>`SELECT rules FROM routing_routes WHERE id = 1`
      const links = yield* Effect.forEach(linkRows, (row) =>
        Effect.map(storedLink(row.config, row.id), (config): LinkRecord => ({ ...config, enabled: flag(row.enabled) })))
      const pools = yield* Effect.forEach(poolRows, (row) => storedPool(row.config, row.id))
      const routeRow = routeRows[0]
      const routes = routeRow === undefined ? [] : yield* storedRoutes(routeRow.rules, "list")
      const state: State = { links, pools, routes }
      return state
    })

    const readVersion = Effect.map(
      sql<{ readonly version: Int }>`SELECT version FROM routing_version WHERE id = 1`,
      (rows) => rows[0] === undefined ? 0 : Number(rows[0].version)
    )

    /** A consistent snapshot: writers bump the version first, so holding the version row shares no half change. */
    const loadSnapshot = sql.withTransaction(Effect.gen(function*() {
      const rows = yield* sql.onDialectOrElse({
        pg: () => sql<{ readonly version: Int }>`SELECT version FROM routing_version WHERE id = 1 FOR SHARE`,
        // SQLite transactions here begin IMMEDIATE: no other writer runs until this one ends.
        orElse: () => sql<{ readonly version: Int }>`SELECT version FROM routing_version WHERE id = 1`
      })
      const state = yield* loadState
      const snapshot: RoutingSnapshot = { version: rows[0] === undefined ? 0 : Number(rows[0].version), ...state }
      return snapshot
    })).pipe(Effect.mapError((e) => SqlError.isSqlError(e) ? storeFailure(e) : e))

    const upsertLink = (link: LinkRecord, position: number, now: number) =>
      sql`INSERT INTO routing_links ${
        sql.insert({
          id: link.id,
          config: JSON.stringify(configOf(link)),
          enabled: link.enabled ? 1 : 0,
          position,
          updated_at: now
        })
      } ON CONFLICT (id) DO UPDATE SET config = excluded.config, enabled = excluded.enabled,
        position = excluded.position, updated_at = excluded.updated_at`

    const upsertPool = (pool: PoolRecord, position: number, now: number) =>
      sql`INSERT INTO routing_pools ${
        sql.insert({ id: pool.id, config: JSON.stringify(pool), position, updated_at: now })
      } ON CONFLICT (id) DO UPDATE SET config = excluded.config, position = excluded.position,
        updated_at = excluded.updated_at`

    /** Writes what differs between two states: changed or moved rows, removed rows, the rule list if it changed. */
    const write = (before: State, after: State, now: number) =>
      Effect.gen(function*() {
        const oldLinks = new Map(before.links.map((l, i) => [l.id, { i, json: JSON.stringify(l) }]))
        for (const [i, link] of after.links.entries()) {
          const old = oldLinks.get(link.id)
          if (old === undefined || old.i !== i || old.json !== JSON.stringify(link)) yield* upsertLink(link, i, now)
        }
        const linkIds = new Set(after.links.map((l) => l.id))
        for (const id of oldLinks.keys()) if (!linkIds.has(id)) yield* sql`DELETE FROM routing_links WHERE id = ${id}`

        const oldPools = new Map(before.pools.map((p, i) => [p.id, { i, json: JSON.stringify(p) }]))
        for (const [i, pool] of after.pools.entries()) {
          const old = oldPools.get(pool.id)
          if (old === undefined || old.i !== i || old.json !== JSON.stringify(pool)) yield* upsertPool(pool, i, now)
        }
        const poolIds = new Set(after.pools.map((p) => p.id))
        for (const id of oldPools.keys()) if (!poolIds.has(id)) yield* sql`DELETE FROM routing_pools WHERE id = ${id}`

        const rules = JSON.stringify(after.routes)
        if (rules !== JSON.stringify(before.routes)) {
          yield* sql`INSERT INTO routing_routes ${sql.insert({ id: 1, rules, updated_at: now })}
            ON CONFLICT (id) DO UPDATE SET rules = excluded.rules, updated_at = excluded.updated_at`
        }
      })

    const seed = sql.withTransaction(Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      // Whoever inserts the version row seeds; a process starting at the same time waits on the row and skips.
      const claimed = yield* sql`INSERT INTO routing_version ${sql.insert({ id: 1, version: 1, updated_at: now })}
        ON CONFLICT (id) DO NOTHING RETURNING id`
      if (claimed.length === 0) return false
      const state = yield* seedState(options.seed)
      yield* write({ links: [], pools: [], routes: [] }, state, now)
      return true
    })).pipe(Effect.mapError((e) => SqlError.isSqlError(e) ? storeFailure(e) : e))

    const seeded = yield* seed
    const initial = yield* loadSnapshot
    if (seeded) {
      yield* Effect.logInfo("routing configuration seeded from the configuration file").pipe(
        Effect.annotateLogs({ links: initial.links.length, pools: initial.pools.length, routes: initial.routes.length })
      )
    } else {
      const known = new Set(initial.links.map((l) => l.id))
      const ignored = options.seed.links.filter((l) => !known.has(l.id)).map((l) => l.id)
      if (ignored.length > 0) {
        yield* Effect.logWarning("configuration file links ignored: the database holds the routing configuration").pipe(
          Effect.annotateLogs({ ignored: ignored.join(","), change: "/v1/admin/links" })
        )
      }
    }

    const ref = yield* SubscriptionRef.make(index(initial))

    /** Versions only grow, so an older snapshot (a poll racing a local change) never replaces a newer one. */
    const publish = (snapshot: RoutingSnapshot) =>
      SubscriptionRef.updateSome(ref, (current) =>
        snapshot.version > current.snapshot.version ? Option.some(index(snapshot)) : Option.none())

    /** Reloads when the database holds a newer version than this process; one small read otherwise. */
    const refresh = Effect.gen(function*() {
      const version = yield* readVersion.pipe(Effect.mapError(storeFailure))
      if (version > SubscriptionRef.getUnsafe(ref).snapshot.version) {
        const snapshot = yield* loadSnapshot
        yield* publish(snapshot)
        yield* Effect.logInfo("routing configuration reloaded").pipe(Effect.annotateLogs({ version: snapshot.version }))
      }
      return SubscriptionRef.getUnsafe(ref).snapshot
    })

    yield* refresh.pipe(
      Effect.ignore({ log: "Warn", message: "routing configuration poll failed" }),
      Effect.repeat(Schedule.spaced(Duration.millis(options.pollIntervalMs))),
      Effect.forkScoped
    )

    /**
     * One change: in a transaction, bump the version first (the row lock orders concurrent changes on every process),
     * read the current state, apply `f` to it, write the difference; then publish the new snapshot here at once.
     */
    const change = <A, E>(f: (state: State) => Effect.Effect<{ readonly state: State; readonly result: A }, E>) =>
      sql.withTransaction(Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const bumped = yield* sql<{ readonly version: Int }>`
          UPDATE routing_version SET version = version + 1, updated_at = ${now} WHERE id = 1 RETURNING version`
        const version = bumped[0]
        if (version === undefined) return yield* new RoutingStoreFailure({ message: "the routing tables are not seeded" })
        const before = yield* loadState
        const { result, state } = yield* f(before)
        yield* write(before, state, now)
        return { result, snapshot: { version: Number(version.version), ...state } }
      })).pipe(
        Effect.mapError((e) => SqlError.isSqlError(e) ? storeFailure(e) : e),
        Effect.tap(({ snapshot }) => publish(snapshot)),
        Effect.map(({ result }) => result)
      )

    const findLink = (state: State, id: string) => {
      const i = state.links.findIndex((l) => l.id === id)
      const link = state.links[i]
      return link === undefined ? Effect.fail(new RoutingNotFound({ what: "link", id })) : Effect.succeed({ i, link })
    }

    const findPool = (state: State, id: string) => {
      const i = state.pools.findIndex((p) => p.id === id)
      const pool = state.pools[i]
      return pool === undefined ? Effect.fail(new RoutingNotFound({ what: "pool", id })) : Effect.succeed({ i, pool })
    }

    const replaceAt = <A>(items: ReadonlyArray<A>, i: number, item: A) => items.map((x, j) => j === i ? item : x)

    const withLink = (state: State, link: LinkRecord) => {
      const i = state.links.findIndex((l) => l.id === link.id)
      const links = i === -1 ? [...state.links, link] : replaceAt(state.links, i, link)
      return { state: { ...state, links }, result: link }
    }

    const withPool = (state: State, pool: PoolRecord) => {
      const i = state.pools.findIndex((p) => p.id === pool.id)
      const pools = i === -1 ? [...state.pools, pool] : replaceAt(state.pools, i, pool)
      return { state: { ...state, pools }, result: pool }
    }

    const usersOfLink = (state: State, id: string) => [
      ...state.pools.filter((p) => p.members.some((m) => m.link === id)).map((p) => `pool ${p.id}`),
      ...state.routes.filter((r) => "link" in r.target && r.target.link === id).map((r) => `route ${r.id}`)
    ]

    /** Adds or replaces a link; `onExisting` decides whether replacing is allowed. */
    const storeLink = <E>(name: string, onExisting: (id: string) => Effect.Effect<void, E>) =>
      Effect.fn(name)(function*(input: NewLink) {
        const config = yield* decodeLink(configOf(input))
        return yield* change((state) =>
          Effect.gen(function*() {
            const existing = state.links.find((l) => l.id === config.id)
            if (existing !== undefined) yield* onExisting(config.id)
            return withLink(state, { ...config, enabled: input.enabled ?? existing?.enabled ?? true })
          })
        )
      })

    /** Adds or replaces a pool of existing links; `onExisting` decides whether replacing is allowed. */
    const storePool = <E>(name: string, onExisting: (id: string) => Effect.Effect<void, E>) =>
      Effect.fn(name)(function*(input: PoolRecord) {
        const pool = yield* decodePool(input)
        return yield* change((state) =>
          Effect.gen(function*() {
            if (state.pools.some((p) => p.id === pool.id)) yield* onExisting(pool.id)
            yield* checkMembers(pool, state, "")
            return withPool(state, pool)
          })
        )
      })

    return RoutingConfig.of({
      current: () => SubscriptionRef.getUnsafe(ref).snapshot,
      changes: Stream.map(SubscriptionRef.changes(ref), (i) => i.snapshot),
      link: (id) => Option.fromUndefinedOr(SubscriptionRef.getUnsafe(ref).links.get(id)),
      pool: (id) => Option.fromUndefinedOr(SubscriptionRef.getUnsafe(ref).pools.get(id)),
      refresh,

      addLink: storeLink("RoutingConfig.addLink", (id) =>
        Effect.fail(new RoutingConflict({ message: `link "${id}" already exists` }))),
      putLink: storeLink("RoutingConfig.putLink", () => Effect.void),

      patchLink: Effect.fn("RoutingConfig.patchLink")(function*(id: string, patch: LinkPatch) {
        if (patch.id !== undefined && patch.id !== id) {
          return yield* new RoutingInvalid({ field: "id", message: "a link's id cannot change" })
        }
        return yield* change((state) =>
          Effect.gen(function*() {
            const { link } = yield* findLink(state, id)
            const config = yield* decodeLink({ ...configOf(link), ...patch, id })
            return withLink(state, { ...config, enabled: link.enabled })
          })
        )
      }),

      setLinkEnabled: Effect.fn("RoutingConfig.setLinkEnabled")(function*(id: string, enabled: boolean) {
        return yield* change((state) =>
          Effect.map(findLink(state, id), ({ link }) => withLink(state, { ...link, enabled }))
        )
      }),

      removeLink: Effect.fn("RoutingConfig.removeLink")(function*(id: string) {
        return yield* change((state) =>
          Effect.gen(function*() {
            yield* findLink(state, id)
            const users = usersOfLink(state, id)
            if (users.length > 0) {
              return yield* new RoutingConflict({ message: `link "${id}" is used by ${users.join(", ")}` })
            }
            return { state: { ...state, links: state.links.filter((l) => l.id !== id) }, result: undefined }
          })
        )
      }),

      addPool: storePool("RoutingConfig.addPool", (id) =>
        Effect.fail(new RoutingConflict({ message: `pool "${id}" already exists` }))),
      putPool: storePool("RoutingConfig.putPool", () => Effect.void),

      patchPoolWeights: Effect.fn("RoutingConfig.patchPoolWeights")(function*(
        id: string,
        weights: Readonly<Record<string, number>>
      ) {
        for (const [link, weight] of Object.entries(weights)) {
          if (!Number.isFinite(weight) || weight <= 0) {
            return yield* new RoutingInvalid({ field: `weights.${link}`, message: "must be a number greater than 0" })
          }
        }
        return yield* change((state) =>
          Effect.gen(function*() {
            const { pool } = yield* findPool(state, id)
            for (const link of Object.keys(weights)) {
              if (!pool.members.some((m) => m.link === link)) {
                return yield* new RoutingInvalid({ field: `weights.${link}`, message: `link "${link}" is not a member of pool "${id}"` })
              }
            }
            const members = pool.members.map((m) => {
              const weight = weights[m.link]
              return weight === undefined ? m : { ...m, weight }
            })
            return withPool(state, { ...pool, members })
          })
        )
      }),

      removePool: Effect.fn("RoutingConfig.removePool")(function*(id: string) {
        return yield* change((state) =>
          Effect.gen(function*() {
            yield* findPool(state, id)
            const routes = state.routes.filter((r) => "pool" in r.target && r.target.pool === id).map((r) => `route ${r.id}`)
            if (routes.length > 0) {
              return yield* new RoutingConflict({ message: `pool "${id}" is used by ${routes.join(", ")}` })
            }
            return { state: { ...state, pools: state.pools.filter((p) => p.id !== id) }, result: undefined }
          })
        )
      }),

      setRoutes: Effect.fn("RoutingConfig.setRoutes")(function*(input: ReadonlyArray<RouteRule>) {
        const routes = yield* decodeRoutes(input, "routes")
        return yield* change((state) =>
          Effect.map(checkTargets(routes, state, "routes"), () => ({ state: { ...state, routes }, result: routes }))
        )
      })
    })
  })
