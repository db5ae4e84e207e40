/**
 * The admin RPC's server side: the runner directory (embedded and cluster), the superadmin check, the handlers, and
 * the route that mounts them at `POST /rpc/admin` on the gateway's HttpRouter (JSON, one HTTP request per call).
 */
import { RecipientPolicy } from "../actors/RecipientPolicyProtocol.ts"
import { bucketOf } from "../policy/PolicyEngine.ts"
import { parseMsisdn } from "../domain/Msisdn.ts"
import { Context, Duration, Effect, HashRing, Layer } from "effect"
import { Runner, Sharding, ShardId, ShardingConfig } from "effect/cluster"
import type { RunnerAddress } from "effect/cluster"
import { RpcSerialization, RpcServer } from "effect/rpc"
import { SqlClient } from "effect/sql"
import { ActorRegistry, RunnerIdentity } from "../actors/ActorRegistry.ts"
import { SmppLink } from "../actors/SmppLinkProtocol.ts"
import { VirtualPool } from "../actors/VirtualPoolProtocol.ts"
import { Access, CurrentPrincipal } from "../auth/Access.ts"
import { Forbidden } from "../auth/Errors.ts"
import type { RoutingSnapshot } from "../routing/RoutingConfig.ts"
import { RoutingConfig } from "../routing/RoutingConfig.ts"
import {
  AdminAuth,
  AdminNotFound,
  AdminRpc,
  adminRpcPath,
  AdminTimeout,
  AdminUnavailable
} from "./AdminRpc.ts"
import { Blacklists } from "../policy/Blacklists.ts"
import type { RunnerView } from "./AdminRpc.ts"

const messageOf = (cause: unknown): string =>
  typeof cause === "object" && cause !== null && "_tag" in cause
    ? `${String(cause._tag)}${"message" in cause && typeof cause.message === "string" && cause.message !== "" ? `: ${cause.message}` : ""}`
    : cause instanceof Error ? cause.message : String(cause)

const unavailable = (cause: unknown) => new AdminUnavailable({ message: messageOf(cause) })

/** The runners of the deployment as the admin RPC reports them. */
export class RunnerDirectory extends Context.Service<RunnerDirectory, {
  readonly list: Effect.Effect<ReadonlyArray<RunnerView>, AdminUnavailable>
}>()("smsgw/rpc/RunnerDirectory") {
  /**
   * Embedded mode (SingleRunner): this process is the only runner; its shards are the ones it holds. Its address is
   * `RunnerIdentity`, the name the actors register under.
   */
  static readonly layerSingle = (options: { readonly shardsPerGroup?: number; readonly shardGroups?: ReadonlyArray<string> } = {}) =>
    Layer.effect(RunnerDirectory, Effect.gen(function*() {
      const sharding = yield* Sharding.Sharding
      const address = yield* RunnerIdentity
      const perGroup = options.shardsPerGroup ?? ShardingConfig.defaults.shardsPerGroup
      const groups = options.shardGroups ?? ShardingConfig.defaults.assignedShardGroups
      return RunnerDirectory.of({
        list: Effect.gen(function*() {
          const shutdown = yield* sharding.isShutdown
          let shards = 0
          for (const group of groups) {
            for (let i = 1; i <= perGroup; i++) if (sharding.hasShardId(ShardId.make(group, i))) shards++
          }
          return [{ address, healthy: !shutdown, shards, self: true }]
        })
      })
    }))

  /**
   * Cluster mode: the runner table of effect/cluster's SqlRunnerStorage, read directly (the cluster offers no API
   * that lists runners). Shards are counted as every runner computes them: a hash ring per shard group over the
   * healthy runners whose heartbeat is younger than `shardLockExpirationMs`.
   */
  static readonly layerSql = (options: {
    readonly shardLockExpirationMs: number
    readonly shardsPerGroup?: number
    /** SqlRunnerStorage's table prefix; default "cluster" (`cluster_runners`). */
    readonly prefix?: string
  }) =>
    Layer.effect(RunnerDirectory, Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const self = yield* RunnerIdentity
      const perGroup = options.shardsPerGroup ?? ShardingConfig.defaults.shardsPerGroup
      const table = sql(`${options.prefix ?? "cluster"}_runners`)
      // The table's timestamps are the database's own clock: the age is computed there too.
      const ageSeconds = sql.onDialectOrElse({
        pg: () => sql.literal("EXTRACT(EPOCH FROM (LOCALTIMESTAMP - last_heartbeat))"),
        orElse: () => sql.literal("(julianday('now') - julianday(last_heartbeat)) * 86400.0")
      })
      interface Row {
        readonly address: string
        readonly runner: string
        readonly healthy: boolean | number | string
        readonly age: number | string
      }
      return RunnerDirectory.of({
        list: Effect.gen(function*() {
          const rows = yield* sql<Row>`SELECT address, runner, healthy, ${ageSeconds} AS age FROM ${table} ORDER BY address`
          const runners = rows.map((row) => {
            const ageMs = Math.max(0, Math.round(Number(row.age) * 1000))
            const flag = row.healthy
            const healthy = (flag === true || flag === 1 || flag === "1" || flag === "t" || flag === "true") &&
              ageMs < options.shardLockExpirationMs
            return { address: row.address, runner: Runner.Runner.decodeSync(row.runner), healthy, ageMs }
          })
          const shardsOf = new Map<string, number>()
          const groups = new Set(runners.filter((r) => r.healthy).flatMap((r) => r.runner.groups))
          for (const group of groups) {
            const ring = HashRing.make<RunnerAddress.RunnerAddress>()
            for (const r of runners) {
              if (r.healthy && r.runner.groups.includes(group)) HashRing.add(ring, r.runner.address, { weight: r.runner.weight })
            }
            for (const owner of HashRing.getShards(ring, perGroup) ?? []) {
              const key = `${owner.host}:${owner.port}`
              shardsOf.set(key, (shardsOf.get(key) ?? 0) + 1)
            }
          }
          return runners.map((r): RunnerView => ({
            address: r.address,
            healthy: r.healthy,
            shards: shardsOf.get(r.address) ?? 0,
            self: r.address === self,
            heartbeatAgeMs: r.ageMs
          }))
        }).pipe(Effect.mapError(unavailable), Effect.withSpan("RunnerDirectory.list"))
      })
    }))
}

/**
 * A recipient as the pipeline keys its bucket: the normalised E.164 digits ("+49 151 1234 5678" and "004915112345678"
 * are 4915112345678), so an operator lands on the bucket the messages went to. Digits alone are read as
 * international (how a number is often pasted); undefined when it is not a valid number.
 */
export const recipientMsisdn = (input: string): string | undefined =>
  parseMsisdn(/^\d/.test(input) && !input.startsWith("00") ? `+${input}` : input)

const bearer = /^Bearer\s+(\S+)\s*$/i

/** The superadmin check of every admin call: the bearer token verified like the REST API's. */
export const AdminAuthLive = Layer.effect(AdminAuth, Effect.gen(function*() {
  const access = yield* Access
  return AdminAuth.of((effect, { headers, rpc }) =>
    Effect.gen(function*() {
      const token = bearer.exec(headers.authorization ?? "")?.[1] ?? ""
      const principal = yield* access.authenticate(token)
      if (!principal.superadmin) {
        return yield* new Forbidden({ message: "the admin RPC is for superadmins only" })
      }
      yield* Effect.logInfo("admin call").pipe(Effect.annotateLogs({ rpc: rpc._tag, userId: principal.userId ?? "" }))
      return yield* Effect.provideService(effect, CurrentPrincipal, principal)
    }))
}))

export interface AdminRpcOptions {
  /** Recipient buckets of the contact policy (`policy.buckets`): which bucket a number is in. */
  readonly buckets: number
  /** Each call to an actor gives up after this long (default 10 s): during a failover calls wait, not fail. */
  readonly callTimeoutMs?: number
}

export const handlersLayer = (options: AdminRpcOptions) =>
  AdminRpc.toLayer(Effect.gen(function*() {
    const routing = yield* RoutingConfig
    const registry = yield* ActorRegistry
    const blacklists = yield* Blacklists
    const runners = yield* RunnerDirectory
    const linkClient = yield* SmppLink.client
    const poolClient = yield* VirtualPool.client
    const bucketClient = yield* RecipientPolicy.client
    const buckets = options.buckets
    const timeoutMs = options.callTimeoutMs ?? 10_000

    /** Every call has its own deadline: an actor call made during a failover waits for the new runner. */
    const deadline = (operation: string, target: string) => <A, E>(effect: Effect.Effect<A, E>) =>
      effect.pipe(
        Effect.timeoutOrElse({
          duration: Duration.millis(timeoutMs),
          orElse: () => Effect.fail(new AdminTimeout({ operation, target, timeoutMs }))
        }),
        Effect.withSpan(`AdminRpc.${operation}`, { attributes: { target } })
      )
    const call = <A, E>(operation: string, target: string, effect: Effect.Effect<A, E>) =>
      effect.pipe(Effect.mapError(unavailable), deadline(operation, target))

    // Caught up with the database first, so a link added or removed through another node is known here.
    const snapshot = routing.refresh.pipe(Effect.mapError(unavailable))
    const knownLink = (id: string) =>
      Effect.flatMap(snapshot, (s: RoutingSnapshot) =>
        s.links.some((l) => l.id === id) ? Effect.void : Effect.fail(new AdminNotFound({ what: "link", id })))
    const knownPool = (id: string) =>
      Effect.flatMap(snapshot, (s: RoutingSnapshot) =>
        s.pools.some((p) => p.id === id) ? Effect.void : Effect.fail(new AdminNotFound({ what: "pool", id })))

    return AdminRpc.of({
      ListRunners: () => call("ListRunners", "*", runners.list),
      ListActors: ({ type }) => call("ListActors", type ?? "*", registry.list(type)),
      // An actor is created by the first call to its id: unknown ids are refused before any call.
      InspectLink: ({ linkId }) =>
        knownLink(linkId).pipe(Effect.andThen(call("InspectLink", linkId, linkClient(linkId).Inspect()))),
      InspectPool: ({ poolId }) =>
        knownPool(poolId).pipe(Effect.andThen(call("InspectPool", poolId, poolClient(poolId).Inspect()))),
      InspectBucket: ({ bucket, recipient }) => {
        if (recipient !== undefined) {
          const msisdn = recipientMsisdn(recipient)
          if (msisdn === undefined) return Effect.fail(new AdminNotFound({ what: "bucket", id: recipient }))
          const chosen = bucketOf(msisdn, buckets)
          return call("InspectBucket", String(chosen), bucketClient(String(chosen)).Inspect())
        }
        const chosen = bucket
        if (chosen === undefined || !Number.isInteger(chosen) || chosen < 0 || chosen >= buckets) {
          return Effect.fail(new AdminNotFound({ what: "bucket", id: String(bucket ?? recipient ?? "") }))
        }
        return call("InspectBucket", String(chosen), bucketClient(String(chosen)).Inspect())
      },
      RebindLink: ({ linkId }) =>
        knownLink(linkId).pipe(
          Effect.andThen(call("RebindLink", linkId, linkClient(linkId).Rebind())),
          Effect.tap(() => Effect.logInfo("link rebind requested").pipe(Effect.annotateLogs({ linkId })))
        ),
      SetLinkEnabled: ({ enabled, linkId }) =>
        routing.setLinkEnabled(linkId, enabled).pipe(
          Effect.map((link) => ({ linkId: link.id, enabled: link.enabled })),
          Effect.catchTag("RoutingNotFound", () => Effect.fail(new AdminNotFound({ what: "link", id: linkId }))),
          Effect.mapError((e) => e._tag === "AdminNotFound" ? e : unavailable(e)),
          deadline("SetLinkEnabled", linkId),
          Effect.tap(() =>
            Effect.logInfo(enabled ? "link enabled" : "link disabled").pipe(Effect.annotateLogs({ linkId }))
          )
        ),
      ReloadBlacklist: ({ name }) =>
        blacklists.reload(name).pipe(
          Effect.timeout("60 seconds"),
          Effect.flatMap((statuses) => {
            const status = statuses.find((s) => s.name === name)
            return status === undefined
              ? Effect.fail(new AdminNotFound({ what: "blacklist", id: name }))
              : Effect.succeed({
                name,
                baseEntries: status.baseEntries,
                added: status.added,
                removed: status.removed,
                entries: Math.max(0, status.baseEntries + status.added - status.removed),
                object: status.object,
                etag: status.etag,
                stale: status.stale,
                lastError: status.lastError
              })
          }),
          Effect.catchTags({
            UnknownBlacklist: () => Effect.fail(new AdminNotFound({ what: "blacklist", id: name })),
            TimeoutError: (e) => Effect.fail(unavailable(e))
          }),
          Effect.tap(() => Effect.logInfo("blacklist reloaded by operator").pipe(Effect.annotateLogs({ list: name })))
        )
    })
  }))

/**
 * `POST /rpc/admin` on the gateway's HttpRouter: merge it into the server's routes. Needs Access, RoutingConfig,
 * ActorRegistry, RunnerDirectory and Sharding from the application.
 */
export const layer = (options: AdminRpcOptions) =>
  RpcServer.layerHttp({ group: AdminRpc, path: adminRpcPath, protocol: "http" }).pipe(
    Layer.provide([handlersLayer(options), AdminAuthLive, RpcSerialization.layerJson])
  )
