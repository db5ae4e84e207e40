/**
 * The VirtualPool entity's protocol: pick links for messages, and hear of member links' health and rate.
 */
import { Schema } from "effect"
import { ClusterSchema, Entity } from "effect/cluster"
import { Rpc } from "effect/rpc"

export const HealthState = Schema.Literals(["bound", "unbound", "degraded", "throttled", "disabled"])
export type HealthState = typeof HealthState.Type

/** Links for `count` messages, in smooth weighted round-robin order over healthy members (fewer if none is). */
export const Pick = Rpc.make("Pick", {
  payload: { count: Schema.Int, exclude: Schema.Array(Schema.String) },
  success: Schema.Array(Schema.String)
})

/** A link's health changed, or its current rate did: persisted and fire-and-forget from the link. */
export const ReportHealth = Rpc.make("ReportHealth", {
  payload: { linkId: Schema.String, state: HealthState, currentTps: Schema.Number, at: Schema.Number }
}).annotate(ClusterSchema.Persisted, true)

export const PoolMemberView = Schema.Struct({
  linkId: Schema.String,
  configuredWeight: Schema.Number,
  effectiveWeight: Schema.Number,
  current: Schema.Number,
  state: HealthState,
  currentTps: Schema.Number
})

export const PoolState = Schema.Struct({
  poolId: Schema.String,
  members: Schema.Array(PoolMemberView),
  picks: Schema.Number
})
export type PoolState = typeof PoolState.Type

export const Inspect = Rpc.make("Inspect", { success: PoolState })

export const VirtualPool = Entity.make("VirtualPool", [Pick, ReportHealth, Inspect])
