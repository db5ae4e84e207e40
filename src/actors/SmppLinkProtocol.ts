/**
 * The SmppLink entity's protocol: hand messages to a link, read and steer its state (rebind, disable, enable).
 */
import { Schema } from "effect"
import { Entity } from "effect/cluster"
import { Rpc } from "effect/rpc"

/** A message handed to a link: the parts still to send, the text to build them from. */
export const Outbound = Schema.Struct({
  messageId: Schema.String,
  /** Set when a pool routed it: the link may then move it to another member on failure. */
  pool: Schema.optionalKey(Schema.String),
  to: Schema.String,
  from: Schema.String,
  text: Schema.String,
  encoding: Schema.Literals(["gsm7", "ucs2"]),
  seqs: Schema.Array(Schema.Int),
  validitySeconds: Schema.optionalKey(Schema.Int),
  acceptedAt: Schema.Number,
  /** The message's trace (W3C traceparent), when it is traced: the link's spans join it, on whichever node. */
  trace: Schema.optionalKey(Schema.String)
})
export type Outbound = typeof Outbound.Type

export const ConnectionView = Schema.Struct({
  mode: Schema.String,
  bound: Schema.Boolean,
  inFlight: Schema.Int
})

export const LinkState = Schema.Struct({
  linkId: Schema.String,
  bound: Schema.Boolean,
  connections: Schema.Array(ConnectionView),
  window: Schema.Int,
  windowInUse: Schema.Int,
  tps: Schema.Number,
  /** The rate AIMD allows now: below tps after throttling, recovering toward it. */
  currentTps: Schema.Number,
  health: Schema.Literals(["bound", "unbound", "degraded", "throttled", "disabled"]),
  enabled: Schema.Boolean,
  queued: Schema.Int,
  counters: Schema.Struct({
    submitted: Schema.Number,
    submitOk: Schema.Number,
    submitErrors: Schema.Number,
    timeouts: Schema.Number,
    reconnects: Schema.Number,
    deliversReceived: Schema.Number,
    receiptsMatched: Schema.Number,
    retries: Schema.Number,
    failed: Schema.Number,
    unknownOutcomeResends: Schema.Number,
    failovers: Schema.Number
  }),
  lastError: Schema.optionalKey(Schema.String)
})
export type LinkState = typeof LinkState.Type

/** Queue messages on the link; answers at once, the link submits them at its window and rate. */
export const Submit = Rpc.make("Submit", {
  payload: { messages: Schema.Array(Outbound) },
  success: Schema.Struct({ queued: Schema.Int })
})

export const Inspect = Rpc.make("Inspect", { success: LinkState })

export const Rebind = Rpc.make("Rebind")

export const SmppLink = Entity.make("SmppLink", [Submit, Inspect, Rebind])
