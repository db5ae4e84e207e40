/**
 * The RecipientPolicy entity's protocol: decide requests of a bucket's recipients, and inspect a bucket.
 */
import { Schema } from "effect"
import { Entity } from "effect/cluster"
import { Rpc } from "effect/rpc"
import { BucketMoved } from "./PolicyBuckets.ts"

const Window = Schema.Union([
  Schema.Struct({ type: Schema.Literal("fixed"), ms: Schema.Number }),
  Schema.Struct({ type: Schema.Literal("rolling"), ms: Schema.Number })
])

export const PolicyCheckSchema = Schema.Union([
  Schema.Struct({ kind: Schema.Literal("cap"), ruleId: Schema.String, key: Schema.String, max: Schema.Number, window: Window }),
  Schema.Struct({
    kind: Schema.Literal("dedup"),
    ruleId: Schema.String,
    key: Schema.String,
    windowMs: Schema.Number,
    mode: Schema.Literals(["reject", "return_first"])
  })
])

export const DecisionRequestSchema = Schema.Struct({
  recipient: Schema.String,
  now: Schema.Number,
  messageId: Schema.String,
  checks: Schema.Array(PolicyCheckSchema),
  release: Schema.optionalKey(Schema.Boolean),
  probe: Schema.optionalKey(Schema.Boolean)
})

export const DecisionSchema = Schema.Union([
  Schema.TaggedStruct("Admit", {}),
  Schema.TaggedStruct("Reject", {
    ruleId: Schema.String,
    reason: Schema.Literals(["frequency_cap", "duplicate"]),
    retryAt: Schema.Number
  }),
  Schema.TaggedStruct("Duplicate", { ruleId: Schema.String, firstId: Schema.String })
])

/** Decides requests of this bucket's recipients in order, each atomically (all its checks pass and count, or none). */
export const Decide = Rpc.make("Decide", {
  payload: { requests: Schema.Array(DecisionRequestSchema) },
  success: Schema.Array(DecisionSchema),
  // Nothing was applied: the caller asks again and reaches the bucket's new owner.
  error: BucketMoved
})

export const BucketView = Schema.Struct({
  bucket: Schema.Number,
  /** Recipients held in memory, and at most. */
  recipients: Schema.Number,
  maxRecipients: Schema.Number,
  /** Since the bucket started on its node. */
  decisions: Schema.Number,
  admitted: Schema.Number,
  rejected: Schema.Number,
  duplicatesReturned: Schema.Number,
  /** Recipients asked about, and how many of them had to be read from the counter store (not in memory). */
  lookups: Schema.Number,
  loadedFromStore: Schema.Number,
  /** Share of lookups answered from memory. */
  hitRate: Schema.Number,
  /** Counters written behind to Redis (false: memory only). */
  persistent: Schema.Boolean
})
export type BucketView = typeof BucketView.Type

export const Inspect = Rpc.make("Inspect", { success: BucketView })

/** One entity per recipient bucket (hash of the number mod `policy.buckets`): the single writer of its counters. */
export const RecipientPolicy = Entity.make("RecipientPolicy", [Decide, Inspect])
