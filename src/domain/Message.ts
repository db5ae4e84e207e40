/**
 * Messages as data: statuses and their ranks, the submit request and its answer, the status view.
 */
import { Schema } from "effect"
import { MessageClass } from "./Policy.ts"
import { RecipientFromString, SenderFromString } from "./Msisdn.ts"
import { HttpUrl } from "./Url.ts"

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
  }),
  statusCallback: Schema.optionalKey(HttpUrl.annotate({
    description: "Where this message's status changes are POSTed, instead of its app's callbackUrl (docs/callbacks.md)"
  }))
})
export type SubmitMessage = typeof SubmitMessage.Type

/** Messages in one batch at most, on every front (REST POST /v1/messages/batch, gRPC SendMessages). */
export const maxBatchMessages = 1000

/** A key is what clients send in `Idempotency-Key` (REST) or `idempotency_key` (gRPC): printable ASCII, 1–255 characters. */
export const IdempotencyKey = Schema.String.check(
  Schema.isMinLength(1),
  Schema.isMaxLength(255),
  Schema.isPattern(/^[\x21-\x7e]+$/, { message: "printable ASCII without spaces, 1 to 255 characters" })
).annotate({
  description: "Any unique string of yours (a UUID works), 1–255 printable ASCII characters. The same key with the same " +
    "request within 24 h answers the first result without sending again; with a different request 422; while the first " +
    "is still in flight 409. Scoped per app."
})

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
  error: Schema.optionalKey(Schema.String),
  submittedAt: Schema.optionalKey(Schema.String.annotate({ description: "When the SMSC took the part (submit_sm_resp)" })),
  doneAt: Schema.optionalKey(Schema.String.annotate({ description: "When the part reached its final status" }))
})

/**
 * What moved a message: its acceptance or refusal (with the policy's reason and rule), a part submitted, retried or
 * failed on a link (with the SMSC's command_status), a delivery receipt, expiry, or recovery after a stopped node.
 */
export const EventKind = Schema.Literals([
  "accepted",
  "refused",
  "submitted",
  "retry",
  "failed",
  "receipt",
  "expired",
  "unknown_outcome",
  "resent",
  "recovered"
])
export type EventKind = typeof EventKind.Type

export const EventView = Schema.Struct({
  at: Schema.String,
  status: MessageStatus,
  detail: Schema.optionalKey(Schema.String),
  /** Absent on events recorded before kinds were (they read as their status). */
  kind: Schema.optionalKey(EventKind),
  part: Schema.optionalKey(Schema.Int.annotate({ description: "The part the event is about" })),
  linkId: Schema.optionalKey(Schema.String),
  commandStatus: Schema.optionalKey(Schema.Int.annotate({ description: "The SMSC's submit_sm_resp command_status (SMPP 5.1.3)" })),
  commandStatusName: Schema.optionalKey(Schema.String.annotate({ description: "Its name, e.g. ESME_RTHROTTLED" })),
  reason: Schema.optionalKey(Schema.String.annotate({ description: "Why: the policy's reason, the SMSC's error, the receipt's err code" })),
  ruleId: Schema.optionalKey(Schema.String.annotate({ description: "The contact-policy rule that decided" }))
})

/** A message as a search lists it: its addresses, status and origin, without text, parts or events. */
export const MessageSummary = Schema.Struct({
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
  appId: Schema.optionalKey(Schema.String.annotate({ description: "The app that sent it" })),
  campaignId: Schema.optionalKey(Schema.String.annotate({ description: "The campaign that sent it" })),
  createdAt: Schema.String,
  updatedAt: Schema.String
})
export type MessageSummary = typeof MessageSummary.Type

/** A message with everything known of it: the summary's fields, its class and text, its parts and its timeline. */
export const MessageView = Schema.Struct({
  ...MessageSummary.fields,
  messageClass: Schema.optionalKey(MessageClass),
  text: Schema.optionalKey(Schema.String),
  parts: Schema.Array(PartView),
  events: Schema.Array(EventView)
})
export type MessageView = typeof MessageView.Type
