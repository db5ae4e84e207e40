/**
 * The operator's admin RPC (effect/rpc over HTTP, `POST /rpc/admin`): where the runners and actors are, what an actor
 * is doing, and a few actions on links. Shared by the server (`AdminRpcServer.ts`) and the CLI (`smsgw admin`).
 *
 * Every call carries `Authorization: Bearer <access token>` of a superadmin; `AdminAuth` checks it on the server.
 */
import { BucketView } from "../actors/RecipientPolicyProtocol.ts"
import { Schema } from "effect"
import { Rpc, RpcGroup, RpcMiddleware } from "effect/rpc"
import { LinkState } from "../actors/SmppLinkProtocol.ts"
import { PoolState } from "../actors/VirtualPoolProtocol.ts"
import type { CurrentPrincipal } from "../auth/Access.ts"
import { Forbidden, Unauthenticated } from "../auth/Errors.ts"

/** The actor types that register where they run. */
export const ActorTypes = ["SmppLink", "VirtualPool", "RecipientPolicy"] as const

export const RunnerView = Schema.Struct({
  /** `host:port`, as the cluster's runner table names it. */
  address: Schema.String,
  /** Registered healthy and heartbeating: it is given shards. */
  healthy: Schema.Boolean,
  /** Shards it holds (this process) or is assigned by the cluster's hash ring (the others). */
  shards: Schema.Int,
  /** The runner of the node that answered this call. */
  self: Schema.Boolean,
  /** Since its last heartbeat in the runner table (absent for the single runner of the embedded mode). */
  heartbeatAgeMs: Schema.optionalKey(Schema.Number)
})
export type RunnerView = typeof RunnerView.Type

export const ActorView = Schema.Struct({
  type: Schema.String,
  id: Schema.String,
  /** Runner address (`host:port`) the actor runs on. */
  runner: Schema.String,
  startedAt: Schema.Number,
  heartbeatAt: Schema.Number,
  /** Not renewed lately: its runner is probably gone and the actor not restarted elsewhere yet. */
  stale: Schema.Boolean
})
export type ActorView = typeof ActorView.Type

/** No such link or pool in the routing configuration. */
export class AdminNotFound extends Schema.TaggedError<AdminNotFound>()("AdminNotFound", {
  what: Schema.Literals(["link", "pool", "blacklist", "bucket"]),
  id: Schema.String
}) {}

/** No answer in time: during a failover actor calls wait for the new runner (and storage may stall); retry shortly. */
export class AdminTimeout extends Schema.TaggedError<AdminTimeout>()("AdminTimeout", {
  operation: Schema.String,
  target: Schema.String,
  timeoutMs: Schema.Number
}) {}

/** Storage or the cluster failed the call (not a timeout). */
export class AdminUnavailable extends Schema.TaggedError<AdminUnavailable>()("AdminUnavailable", {
  message: Schema.String
}) {}

/** Verifies the bearer token of every call and requires a superadmin; provides the caller to the handlers. */
export class AdminAuth extends RpcMiddleware.Service<AdminAuth, { provides: CurrentPrincipal }>()("smsgw/rpc/AdminAuth", {
  error: Schema.Union([Unauthenticated, Forbidden])
}) {}

const ReadError = Schema.Union([AdminTimeout, AdminUnavailable])

export const ListRunners = Rpc.make("ListRunners", {
  success: Schema.Array(RunnerView),
  error: ReadError
})

export const ListActors = Rpc.make("ListActors", {
  payload: { type: Schema.optionalKey(Schema.String) },
  success: Schema.Array(ActorView),
  error: ReadError
})

const ActorCallError = Schema.Union([AdminNotFound, AdminTimeout, AdminUnavailable])

export const InspectLink = Rpc.make("InspectLink", {
  payload: { linkId: Schema.String },
  success: LinkState,
  error: ActorCallError
})

export const InspectPool = Rpc.make("InspectPool", {
  payload: { poolId: Schema.String },
  success: PoolState,
  error: ActorCallError
})

/**
 * A recipient bucket (RecipientPolicy actor): by number, or by the bucket a recipient's number falls in (an E.164
 * number, "+" optional, normalised as the pipeline does: "+49 151 1234 5678" is 4915112345678's bucket; an invalid
 * number is AdminNotFound "bucket"). Starts the bucket's actor if it was not running.
 */
export const InspectBucket = Rpc.make("InspectBucket", {
  payload: { bucket: Schema.optionalKey(Schema.Int), recipient: Schema.optionalKey(Schema.String) },
  success: BucketView,
  error: ActorCallError
})

/** Unbinds and binds the link again now (skipping any reconnect backoff); answers when the old connections are closed. */
export const RebindLink = Rpc.make("RebindLink", {
  payload: { linkId: Schema.String },
  error: ActorCallError
})

/** Takes a link out of service (it unbinds; pools skip it) or back, on every node, through the routing configuration. */
export const SetLinkEnabled = Rpc.make("SetLinkEnabled", {
  payload: { linkId: Schema.String, enabled: Schema.Boolean },
  success: Schema.Struct({ linkId: Schema.String, enabled: Schema.Boolean }),
  error: Schema.Union([AdminNotFound, AdminTimeout, AdminUnavailable])
})

/** A blacklist as the node that reloaded it holds it. */
export const BlacklistReloaded = Schema.Struct({
  name: Schema.String,
  /** Numbers in the file in use (0 for a list without a file). */
  baseEntries: Schema.Int,
  /** Numbers listed through the API, on top of the file. */
  added: Schema.Int,
  /** Numbers unlisted through the API (masked in the file, or not in it at all). */
  removed: Schema.Int,
  /**
   * Listed numbers, approximately: baseEntries + added - removed, exact when every removed number is in the file
   * (an unlisting of a number the file does not have is counted as removed all the same).
   */
  entries: Schema.Int,
  /** The list's file, or null when it has none (entries through the API only). */
  object: Schema.NullOr(Schema.String),
  etag: Schema.NullOr(Schema.String),
  stale: Schema.Boolean,
  lastError: Schema.NullOr(Schema.String)
})
export type BlacklistReloaded = typeof BlacklistReloaded.Type

/**
 * Checks a blacklist's file now on the node that answers, and loads it if its ETag changed (the other nodes find the
 * change at their next poll). Answers the list as that node holds it afterwards.
 */
export const ReloadBlacklist = Rpc.make("ReloadBlacklist", {
  payload: { name: Schema.String },
  success: BlacklistReloaded,
  error: Schema.Union([AdminNotFound, AdminUnavailable])
})

export class AdminRpc extends RpcGroup.make(
  ListRunners,
  ListActors,
  InspectLink,
  InspectPool,
  InspectBucket,
  RebindLink,
  SetLinkEnabled,
  ReloadBlacklist
).middleware(AdminAuth) {}

/** Where the RPC is mounted on the gateway's HTTP server. */
export const adminRpcPath = "/rpc/admin"
