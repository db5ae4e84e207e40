/**
 * Messages as data: statuses and their ranks, the submit request and its answer, the status view.
 */
import { Schema } from "effect"
import { MessageClass } from "./Policy.ts"
import { RecipientFromString, SenderFromString } from "./Msisdn.ts"

export const MessageStatus = Schema.Literals([
  "accepted",
  "rejected",
  "queued",
  "submitted",
  "delivered",
  "undelivered",
  "expired",
  "failed"
])
export type MessageStatus = typeof MessageStatus.Type

/** Statuses only move forward: a higher rank never gives way to a lower one. */
export const statusRank: Record<MessageStatus, number> = {
  accepted: 0,
  queued: 1,
  submitted: 2,
  delivered: 3,
  undelivered: 3,
  expired: 3,
  failed: 3,
  rejected: 3
}

export const isFinal = (status: MessageStatus): boolean => statusRank[status] === 3

export const RequestedEncoding = Schema.Literals(["auto", "gsm7", "ucs2"])
export type RequestedEncoding = typeof RequestedEncoding.Type

export const TextEncoding = Schema.Literals(["gsm7", "ucs2"])

/** Upper bound on one message's text: 255 concatenated parts of 67 UCS-2 units is the protocol's own limit. */
export const maxTextLength = 255 * 153

/** A message to send, as every front takes it: `to` and `from` are strings on the wire, parsed addresses once decoded. */
export const SubmitMessage = Schema.Struct({
  to: RecipientFromString,
  from: SenderFromString,
  text: Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(maxTextLength)),
  clientRef: Schema.optionalKey(Schema.String.check(Schema.isMaxLength(128))),
  validitySeconds: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 60, maximum: 7 * 24 * 3600 }))),
  encoding: Schema.optionalKey(RequestedEncoding),
  messageClass: Schema.optionalKey(MessageClass).annotate({
    description: "transactional (OTPs, alerts) or promotional; default: the app's class. Quiet hours apply to promotional only."
  })
})
export type SubmitMessage = typeof SubmitMessage.Type

export const SubmitAccepted = Schema.Struct({
  id: Schema.String,
  status: Schema.Literal("accepted"),
  segments: Schema.Int,
  encoding: TextEncoding,
  /** Present when a dedup rule answered with the first message's id instead of sending again. */
  duplicate: Schema.optionalKey(Schema.Boolean)
})
export type SubmitAccepted = typeof SubmitAccepted.Type

export const PartView = Schema.Struct({
  seq: Schema.Int,
  linkId: Schema.NullOr(Schema.String),
  smscMessageId: Schema.optionalKey(Schema.String),
  status: MessageStatus,
  error: Schema.optionalKey(Schema.String)
})

export const EventView = Schema.Struct({
  at: Schema.String,
  status: MessageStatus,
  detail: Schema.optionalKey(Schema.String)
})

export const MessageView = Schema.Struct({
  id: Schema.String,
  to: Schema.String,
  from: Schema.String,
  status: MessageStatus,
  reason: Schema.optionalKey(Schema.String),
  /** The policy rule that rejected the message. */
  ruleId: Schema.optionalKey(Schema.String),
  segments: Schema.Int,
  encoding: TextEncoding,
  clientRef: Schema.optionalKey(Schema.String),
  createdAt: Schema.String,
  updatedAt: Schema.String,
  parts: Schema.Array(PartView),
  events: Schema.Array(EventView)
})
export type MessageView = typeof MessageView.Type
