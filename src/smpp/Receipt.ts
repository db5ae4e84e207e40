/**
 * Delivery receipts: SMPP v3.4 Appendix B text, parsed tolerantly, with the receipt TLVs taking precedence.
 */
import type { MessageStatus } from "../domain/Message.ts"
import { CommandStatus } from "./CommandStatus.ts"
import { isValidMessageId } from "./MessageId.ts"

export type ReceiptState =
  | "delivered"
  | "undelivered"
  | "expired"
  | "deleted"
  | "accepted"
  | "unknown"
  | "rejected"
  | "enroute"

export interface Receipt {
  /** The SMSC's id as given (trimmed); match it with messageIdCandidates. */
  readonly smscMessageId: string
  readonly state: ReceiptState
  /** DELIVRD, UNDELIV, …: the text's `stat` upper-cased, or the canonical name of the `message_state` TLV. */
  readonly stat: string
  readonly err?: string
  readonly submitDate?: Date
  readonly doneDate?: Date
  readonly submitted?: number
  readonly delivered?: number
}

/**
 * A receipt with a field we keep beyond its bound: refused with `commandStatus` in deliver_sm_resp and never stored,
 * so an SMSC's garbage cannot fill the store or come back through the API.
 */
export interface InvalidReceipt {
  readonly _tag: "InvalidReceipt"
  readonly field: "receipted_message_id" | "network_error_code" | "id" | "err"
  readonly length: number
  /** ESME_RINVPARLEN (0xC2) for a TLV, ESME_RX_P_APPN (0x65: a permanent error, no redelivery) for the text. */
  readonly commandStatus: number
}

export const isInvalidReceipt = (receipt: Receipt | InvalidReceipt): receipt is InvalidReceipt => "_tag" in receipt

/** Appendix B gives `err` 3 digits; vendors write longer codes (a network_error_code of another length as hex). */
export const maxReceiptErrLength = 16

const { ESME_RINVPARLEN, ESME_RX_P_APPN } = CommandStatus

export interface ReceiptInput {
  readonly shortMessageText: string
  /** TLV receipted_message_id (0x001E). */
  readonly receiptedMessageId?: string | undefined
  /** TLV message_state (0x0427). */
  readonly messageState?: number | undefined
  /** TLV network_error_code (0x0423): 3 octets, network type then a 16-bit error code. */
  readonly networkErrorCode?: Uint8Array | string | undefined
}

/** message_state values 1–8 and their Appendix B `stat` names. */
const byMessageState: ReadonlyArray<readonly [ReceiptState, string] | undefined> = [
  undefined,
  ["enroute", "ENROUTE"],
  ["delivered", "DELIVRD"],
  ["expired", "EXPIRED"],
  ["deleted", "DELETED"],
  ["undelivered", "UNDELIV"],
  ["accepted", "ACCEPTD"],
  ["unknown", "UNKNOWN"],
  ["rejected", "REJECTD"]
]

/** `esm_class` message type bits (5–2) equal to 0001: an SMSC delivery receipt. */
export const isReceipt = (esmClass: number): boolean => (esmClass & 0x3c) === 0x04

/** The gateway status a receipt state settles, or undefined while the message is not final. */
export const finalStatusOf = (
  state: ReceiptState
): Extract<MessageStatus, "delivered" | "expired" | "undelivered"> | undefined => {
  switch (state) {
    case "delivered":
      return "delivered"
    case "expired":
      return "expired"
    case "undelivered":
    case "rejected":
    case "deleted":
    case "unknown":
      return "undelivered"
    case "accepted":
    case "enroute":
      return undefined
  }
}

/** Vendors spell stat values in long and short forms (DELIVRD, DELIVERED, UNDELIV, UNDELIVERABLE, FAILED…). */
const stateOfStat = (stat: string): ReceiptState => {
  if (stat.startsWith("DELIV")) return "delivered"
  if (stat.startsWith("UNDEL") || stat.startsWith("FAIL")) return "undelivered"
  if (stat.startsWith("EXPIR")) return "expired"
  if (stat.startsWith("DELET")) return "deleted"
  if (stat.startsWith("ACCEP")) return "accepted"
  if (stat.startsWith("REJEC")) return "rejected"
  if (stat.startsWith("ENROU")) return "enroute"
  return "unknown"
}

type Field = "id" | "sub" | "dlvrd" | "submitDate" | "doneDate" | "stat" | "err" | "text"

// Any case; "submit date", "submit_date", "submitdate" (and "submit§date": "_" read as GSM 03.38 is "§").
const keyPattern = /(?<![a-z0-9_])(id|sub|dlvrd|submit[^a-z0-9:]?date|done[^a-z0-9:]?date|stat|err|text)\s*:/giu

const fieldOf = (key: string): Field => {
  const k = key.toLowerCase()
  if (k.startsWith("submit")) return "submitDate"
  if (k.startsWith("done")) return "doneDate"
  return k as Field
}

/** Appendix B fields by name; a value runs to the next key, `text` to the end. Only the first occurrence counts. */
const fieldsOf = (text: string): Partial<Record<Field, string>> => {
  const fields: Partial<Record<Field, string>> = {}
  keyPattern.lastIndex = 0
  let match = keyPattern.exec(text)
  while (match !== null) {
    const field = fieldOf(match[1] ?? "")
    const valueStart = match.index + match[0].length
    if (field === "text") {
      fields.text ??= text.slice(valueStart).trim()
      break
    }
    const next = keyPattern.exec(text)
    const raw = text.slice(valueStart, next === null ? text.length : next.index).trim()
    // A value is one token; whatever follows it up to the next known key is an unknown vendor field.
    const space = raw.search(/\s/u)
    fields[field] ??= space === -1 ? raw : raw.slice(0, space)
    match = next
  }
  return fields
}

/** YYMMDDhhmm, YYMMDDhhmmss or YYYYMMDDhhmmss, as UTC; undefined when not a valid date. */
export const parseReceiptDate = (value: string | undefined): Date | undefined => {
  if (value === undefined || !/^\d+$/u.test(value)) return undefined
  let year: number
  let rest: string
  if (value.length === 10 || value.length === 12) {
    year = 2000 + Number(value.slice(0, 2))
    rest = value.slice(2)
  } else if (value.length === 14) {
    year = Number(value.slice(0, 4))
    rest = value.slice(4)
  } else {
    return undefined
  }
  const month = Number(rest.slice(0, 2))
  const day = Number(rest.slice(2, 4))
  const hour = Number(rest.slice(4, 6))
  const minute = Number(rest.slice(6, 8))
  const second = rest.length >= 10 ? Number(rest.slice(8, 10)) : 0
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59) return undefined
  const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second))
  // Reject 31 February and friends instead of letting Date roll them over.
  return date.getUTCDate() === day ? date : undefined
}

const countOf = (value: string | undefined): number | undefined => {
  if (value === undefined || !/^\d+$/u.test(value)) return undefined
  return Number(value)
}

/** The TLV network_error_code as Appendix B writes `err`: the 16-bit code, three digits at least. */
const networkErrorOf = (value: Uint8Array | string | undefined): string | undefined => {
  if (value === undefined) return undefined
  if (typeof value === "string") {
    const trimmed = value.replace(/\0+$/u, "").trim()
    return trimmed === "" ? undefined : trimmed
  }
  if (value.length === 3) return String(((value[1] ?? 0) << 8) | (value[2] ?? 0)).padStart(3, "0")
  if (value.length === 0) return undefined
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("hex")
}

const nonEmpty = (value: string | undefined): string | undefined => {
  if (value === undefined) return undefined
  const trimmed = value.replace(/\0+$/u, "").trim()
  return trimmed === "" ? undefined : trimmed
}

const invalid = (field: InvalidReceipt["field"], length: number): InvalidReceipt => ({
  _tag: "InvalidReceipt",
  field,
  length,
  commandStatus: field === "receipted_message_id" || field === "network_error_code" ? ESME_RINVPARLEN : ESME_RX_P_APPN
})

/**
 * A receipt from a `deliver_sm`, or undefined when neither the TLVs nor the text give both an id and a state, or
 * InvalidReceipt when the id (at most 64 printable characters) or `err` is beyond its bound.
 * The TLVs (receipted_message_id, message_state, network_error_code) win over the text.
 */
export const parseReceipt = (input: ReceiptInput): Receipt | InvalidReceipt | undefined => {
  const fields = fieldsOf(input.shortMessageText)
  const tlvId = nonEmpty(input.receiptedMessageId)
  const smscMessageId = tlvId ?? nonEmpty(fields.id)
  if (smscMessageId === undefined) return undefined
  if (!isValidMessageId(smscMessageId)) return invalid(tlvId !== undefined ? "receipted_message_id" : "id", smscMessageId.length)

  let state: ReceiptState
  let stat: string
  const fromTlv = input.messageState === undefined ? undefined : byMessageState[input.messageState]
  if (fromTlv !== undefined) {
    state = fromTlv[0]
    stat = fromTlv[1]
  } else if (fields.stat !== undefined && fields.stat !== "") {
    stat = fields.stat.toUpperCase()
    state = stateOfStat(stat)
  } else {
    return undefined
  }

  const tlvErr = networkErrorOf(input.networkErrorCode)
  const err = tlvErr ?? nonEmpty(fields.err)
  if (err !== undefined && err.length > maxReceiptErrLength) {
    return invalid(tlvErr !== undefined ? "network_error_code" : "err", err.length)
  }
  const submitDate = parseReceiptDate(fields.submitDate)
  const doneDate = parseReceiptDate(fields.doneDate)
  const submitted = countOf(fields.sub)
  const delivered = countOf(fields.dlvrd)
  return {
    smscMessageId,
    state,
    stat,
    ...(err === undefined ? {} : { err }),
    ...(submitDate === undefined ? {} : { submitDate }),
    ...(doneDate === undefined ? {} : { doneDate }),
    ...(submitted === undefined ? {} : { submitted }),
    ...(delivered === undefined ? {} : { delivered })
  }
}

/** The Appendix B `stat` a receipt we send says for a gateway status, and its message_state TLV value. */
export interface OutgoingState {
  readonly stat: "DELIVRD" | "UNDELIV" | "EXPIRED" | "REJECTD" | "ENROUTE"
  readonly messageState: number
  /** A final outcome (a delivery receipt), not an intermediate notification. */
  readonly final: boolean
}

/**
 * What a receipt to our own ESMEs (the SMPP server front) says for a move: delivered → DELIVRD, undelivered →
 * UNDELIV, expired → EXPIRED, failed (the gateway or its SMSC refused it: it never reached the handset) → REJECTD,
 * rejected → REJECTD; queued and submitted (intermediate, asked for with registered_delivery 0x10) → ENROUTE.
 */
export const outgoingStateOf = (status: MessageStatus): OutgoingState => {
  switch (status) {
    case "delivered":
      return { stat: "DELIVRD", messageState: 2, final: true }
    case "expired":
      return { stat: "EXPIRED", messageState: 3, final: true }
    case "undelivered":
      return { stat: "UNDELIV", messageState: 5, final: true }
    case "failed":
    case "rejected":
      return { stat: "REJECTD", messageState: 8, final: true }
    case "accepted":
    case "queued":
    case "submitted":
      return { stat: "ENROUTE", messageState: 1, final: false }
  }
}

const two = (n: number): string => (n < 10 ? `0${n}` : `${n}`)

/** YYMMDDhhmm in UTC, as Appendix B writes receipt dates. */
export const receiptDate = (ms: number): string => {
  const d = new Date(ms)
  return `${two(d.getUTCFullYear() % 100)}${two(d.getUTCMonth() + 1)}${two(d.getUTCDate())}${two(d.getUTCHours())}${two(d.getUTCMinutes())}`
}

/**
 * The Appendix B text of a receipt we send: `id:<id> sub:001 dlvrd:001 submit date:YYMMDDhhmm done date:YYMMDDhhmm
 * stat:DELIVRD err:000 text:` (dlvrd 000 and err 001 unless delivered; `text:` left empty: the gateway keeps no copy
 * of the message's text in a receipt). parseReceipt reads it back.
 */
export const formatReceipt = (receipt: {
  readonly id: string
  readonly stat: OutgoingState["stat"]
  readonly submittedAt: number
  readonly doneAt: number
}): string => {
  const delivered = receipt.stat === "DELIVRD"
  const pending = receipt.stat === "ENROUTE"
  return `id:${receipt.id} sub:001 dlvrd:${delivered ? "001" : "000"} submit date:${receiptDate(receipt.submittedAt)} ` +
    `done date:${receiptDate(receipt.doneAt)} stat:${receipt.stat} err:${delivered || pending ? "000" : "001"} text:`
}
