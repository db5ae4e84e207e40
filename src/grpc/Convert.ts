/**
 * Proto messages to domain values and back. A request is decoded with the domain's own schema (SubmitMessage), so
 * gRPC and REST refuse the same values with the same words; only the field names are the proto's (`client_ref`).
 * Unknown fields (a client built from a newer or a wrong contract) are refused, never ignored.
 */
import { create } from "@bufbuild/protobuf"
import type { Message as ProtoMessage } from "@bufbuild/protobuf"
import { timestampDate, timestampFromMs } from "@bufbuild/protobuf/wkt"
import type { Timestamp } from "@bufbuild/protobuf/wkt"
import { Effect, Result, Schema } from "effect"
import type { EventKind as DomainEventKind, MessageStatus as DomainStatus, MessageSummary as DomainSummary, MessageView, SubmitAccepted } from "../domain/Message.ts"
import { IdempotencyKey, SubmitMessage } from "../domain/Message.ts"
import { fieldIssues } from "../domain/FieldIssues.ts"
import type { FieldIssue } from "../domain/FieldIssues.ts"
import type { InboundView } from "../domain/Inbound.ts"
import { BadFields, protoField } from "./Errors.ts"
import {
  Encoding,
  InboundAction,
  InboundMessageSchema,
  EventKind,
  MessageClass,
  MessageSchema,
  MessageStatus,
  MessageSummarySchema,
  SendMessageResponseSchema
} from "./gen/smsgw/v1/messages_pb.ts"
import type { Message, MessageSummary, SendMessageRequest, SendMessageResponse } from "./gen/smsgw/v1/messages_pb.ts"

const statuses: Record<DomainStatus, MessageStatus> = {
  accepted: MessageStatus.ACCEPTED,
  rejected: MessageStatus.REJECTED,
  queued: MessageStatus.QUEUED,
  submitted: MessageStatus.SUBMITTED,
  delivered: MessageStatus.DELIVERED,
  undelivered: MessageStatus.UNDELIVERED,
  expired: MessageStatus.EXPIRED,
  failed: MessageStatus.FAILED
}

const kinds: Record<DomainEventKind, EventKind> = {
  accepted: EventKind.ACCEPTED,
  refused: EventKind.REFUSED,
  submitted: EventKind.SUBMITTED,
  retry: EventKind.RETRY,
  failed: EventKind.FAILED,
  receipt: EventKind.RECEIPT,
  expired: EventKind.EXPIRED,
  unknown_outcome: EventKind.UNKNOWN_OUTCOME,
  resent: EventKind.RESENT,
  recovered: EventKind.RECOVERED
}

/** The domain's status of a proto status; undefined for UNSPECIFIED (and for a number the contract does not have). */
export const domainStatus = (status: MessageStatus): DomainStatus | undefined =>
  (Object.keys(statuses) as Array<DomainStatus>).find((s) => statuses[s] === status)

export const protoStatus = (status: DomainStatus): MessageStatus => statuses[status]

const protoEncoding = (encoding: "gsm7" | "ucs2"): Encoding => encoding === "gsm7" ? Encoding.GSM7 : Encoding.UCS2

/** An enum number the schema will refuse by name: a value this contract does not define. */
const unknownEnum = (value: number) => `unknown enum value ${value}`

const requestedEncoding = (encoding: Encoding) =>
  encoding === Encoding.UNSPECIFIED ? undefined
  : encoding === Encoding.GSM7 ? "gsm7"
  : encoding === Encoding.UCS2 ? "ucs2"
  : unknownEnum(encoding)

const requestedClass = (messageClass: MessageClass) =>
  messageClass === MessageClass.UNSPECIFIED ? undefined
  : messageClass === MessageClass.TRANSACTIONAL ? "transactional"
  : messageClass === MessageClass.PROMOTIONAL ? "promotional"
  : unknownEnum(messageClass)

/** Fields the decoder kept as unknown (their numbers): a client sending them speaks another contract. */
export const unknownFields = (message: ProtoMessage, prefix = ""): Array<FieldIssue> =>
  (message.$unknown ?? []).map((u) => ({
    field: `${prefix}#${u.no}`,
    message: `unknown field number ${u.no}: this request has no such field`
  }))

const decodeSubmit = Schema.decodeUnknownEffect(SubmitMessage)
const decodeKey = Schema.decodeUnknownResult(IdempotencyKey)

/**
 * A SendMessageRequest as the pipeline takes it, with its idempotency key; a BadFields naming every bad field
 * (prefixed, e.g. `messages[3].`, inside a batch).
 */
export const submitOf = (request: SendMessageRequest, prefix = "") => {
  const optional = <K extends string, V>(key: K, value: V | undefined) =>
    value === undefined ? {} : ({ [key]: value } as Record<K, V>)
  const input = {
    to: request.to,
    from: request.from,
    text: request.text,
    ...optional("clientRef", request.clientRef),
    ...optional("validitySeconds", request.validitySeconds),
    ...optional("encoding", requestedEncoding(request.encoding)),
    ...optional("messageClass", requestedClass(request.messageClass)),
    ...optional("statusCallback", request.statusCallback)
  }
  const unknown = unknownFields(request, prefix)
  const key = request.idempotencyKey
  const keyIssues: Array<FieldIssue> = key !== undefined && Result.isFailure(decodeKey(key))
    ? [{ field: `${prefix}idempotency_key`, message: "printable ASCII without spaces, 1 to 255 characters" }]
    : []
  return decodeSubmit(input, { errors: "all", onExcessProperty: "error" }).pipe(
    Effect.result,
    Effect.flatMap((decoded) => {
      const schemaIssues = Result.isFailure(decoded)
        ? fieldIssues(decoded.failure.issue).map((i) => ({ field: `${prefix}${protoField(i.field)}`, message: i.message }))
        : []
      const violations = [...unknown, ...schemaIssues, ...keyIssues]
      if (violations.length > 0 || Result.isFailure(decoded)) return Effect.fail(new BadFields({ violations }))
      return Effect.succeed({ message: decoded.success, ...(key !== undefined ? { idempotencyKey: key } : {}) })
    })
  )
}

export const acceptedOf = (accepted: SubmitAccepted, replayed = false): SendMessageResponse =>
  create(SendMessageResponseSchema, {
    id: accepted.id,
    status: MessageStatus.ACCEPTED,
    segments: accepted.segments,
    encoding: protoEncoding(accepted.encoding),
    duplicate: accepted.duplicate === true,
    replayed
  })

const time = (iso: string | undefined): Timestamp | undefined => {
  if (iso === undefined) return undefined
  const ms = Date.parse(iso)
  return Number.isNaN(ms) ? undefined : timestampFromMs(ms)
}

/** Epoch milliseconds of a timestamp. */
export const msOf = (t: Timestamp): number => timestampDate(t).getTime()

const classOf = (messageClass: "transactional" | "promotional" | undefined) =>
  messageClass === "transactional" ? MessageClass.TRANSACTIONAL
  : messageClass === "promotional" ? MessageClass.PROMOTIONAL
  : MessageClass.UNSPECIFIED

export const eventsOf = (events: MessageView["events"]) =>
  events.map((e) => ({
    at: time(e.at),
    status: statuses[e.status],
    detail: e.detail,
    kind: e.kind === undefined ? EventKind.UNSPECIFIED : kinds[e.kind],
    part: e.part,
    linkId: e.linkId,
    commandStatus: e.commandStatus,
    commandStatusName: e.commandStatusName,
    reason: e.reason,
    ruleId: e.ruleId
  }))

export const messageOf = (view: MessageView): Message =>
  create(MessageSchema, {
    id: view.id,
    to: view.to,
    from: view.from,
    status: statuses[view.status],
    reason: view.reason,
    ruleId: view.ruleId,
    segments: view.segments,
    encoding: protoEncoding(view.encoding),
    clientRef: view.clientRef,
    createdAt: time(view.createdAt),
    updatedAt: time(view.updatedAt),
    appId: view.appId,
    campaignId: view.campaignId,
    messageClass: classOf(view.messageClass),
    text: view.text,
    parts: view.parts.map((p) => ({
      seq: p.seq,
      linkId: p.linkId ?? undefined,
      smscMessageId: p.smscMessageId,
      status: statuses[p.status],
      error: p.error,
      submittedAt: time(p.submittedAt),
      doneAt: time(p.doneAt)
    })),
    events: eventsOf(view.events)
  })

export const summaryOf = (s: DomainSummary): MessageSummary =>
  create(MessageSummarySchema, {
    id: s.id,
    to: s.to,
    from: s.from,
    status: statuses[s.status],
    reason: s.reason,
    ruleId: s.ruleId,
    segments: s.segments,
    encoding: protoEncoding(s.encoding),
    clientRef: s.clientRef,
    appId: s.appId,
    campaignId: s.campaignId,
    createdAt: time(s.createdAt),
    updatedAt: time(s.updatedAt)
  })

/** An inbound message as InboundMessage (REST's GET /v1/inbound item). */
export const inboundOf = (m: InboundView) =>
  create(InboundMessageSchema, {
    id: m.id,
    appId: m.appId ?? "",
    routeId: m.routeId ?? "",
    linkId: m.linkId,
    from: m.from,
    to: m.to,
    text: m.text,
    encoding: m.encoding,
    parts: m.parts,
    missingParts: m.missingParts,
    ...(m.keyword !== null ? { keyword: m.keyword } : {}),
    action: m.action === "opt_out" ? InboundAction.OPT_OUT : m.action === "opt_in" ? InboundAction.OPT_IN : InboundAction.UNSPECIFIED,
    receivedAt: timestampFromMs(Date.parse(m.receivedAt))
  })
