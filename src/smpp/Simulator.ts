/**
 * An SMSC simulator: a real SMPP v3.4 server (npm `smpp`) for tests, demos and benchmarks. It accepts binds,
 * answers submit_sm with unique message ids, sends delivery receipts, and injects faults on command.
 * Built for thousands of submits per second: counters only, no per-PDU logging, a bounded log of received messages.
 */
import { createHash } from "node:crypto"
import { Effect, Result, Schema } from "effect"
import type { Scope } from "effect"
import smpp from "smpp"
import type { PDU, PduFields, Server, Session as LibSession } from "smpp"
import { asBuffer, useRawMessageBytes } from "./Session.ts"
import { coalesceWrites } from "./WriteCoalescing.ts"
import { CommandStatus } from "./CommandStatus.ts"
import { segment } from "./Encoding.ts"

export type ReceiptState = "DELIVRD" | "UNDELIV" | "EXPIRED" | "REJECTD"

export interface SimulatorOptions {
  /** 0 picks a free port. */
  readonly port: number
  readonly host: string
  /** When set, binds must carry this system_id (else ESME_RINVSYSID). */
  readonly systemId?: string
  /** When set, binds must carry this password (else ESME_RINVPASWD). */
  readonly password?: string
  readonly receiptDelayMs: number
  readonly receiptState: ReceiptState
  /** Send receipts when the submit asked for them (registered_delivery & 0x03). */
  readonly receipts: boolean
  readonly messageIdFormat: "hex" | "decimal"
  /** Id in receipts: as issued, or re-printed in another base (hex is upper-case) to exercise id normalisation. */
  readonly receiptIdFormat: "same" | "hex" | "decimal"
  /** Also carry receipted_message_id, message_state (and network_error_code on failures) as TLVs. */
  readonly receiptTlvs: boolean
  /** Serve SMPP over TLS with this PEM key and certificate. */
  readonly tls?: { readonly key: string; readonly cert: string }
  /** Entries kept by `received` (default 100 000). */
  readonly receivedLimit: number
  /** Distinct messages remembered for `uniqueMessages` (default 1 000 000); counting stops beyond it. */
  readonly uniqueLimit: number
  /** deliver_sm attempts per receipt or MO when the ESME answers with an error (default 3). */
  readonly maxDeliveryAttempts: number
}

export const Faults = Schema.Struct({
  /** command_status to answer binds with. */
  rejectBinds: Schema.optionalKey(Schema.Number),
  /** Answer ESME_RTHROTTLED (0x58) to submits above this many per second. */
  throttleAboveTps: Schema.optionalKey(Schema.Number),
  /** Answer ESME_RMSGQFUL (0x14) to every submit. */
  queueFull: Schema.optionalKey(Schema.Boolean),
  /** Read PDUs but answer nothing, not even enquire_link. */
  stopAnswering: Schema.optionalKey(Schema.Boolean),
  responseDelayMs: Schema.optionalKey(Schema.Number),
  /** Answer every submit with this command_status. */
  submitStatus: Schema.optionalKey(Schema.Number),
  /** Answer every accepted submit (and write its receipts) with this message_id: an SMSC reusing ids, or a broken one. */
  messageId: Schema.optionalKey(Schema.String)
})
export type Faults = typeof Faults.Type

export interface SimulatorStats {
  /** Successful binds since start. */
  readonly binds: number
  readonly bindsRejected: number
  readonly boundSessions: number
  readonly submits: number
  /** By command_status, as "0x00", "0x58", … */
  readonly submitsByStatus: Record<string, number>
  readonly receiptsSent: number
  readonly receiptsAcked: number
  /** deliver_sm answered with a non-zero status (e.g. 0x64), by any ESME. */
  readonly receiptsNacked: number
  /** Those answers (receipts and MOs) by command_status, as "0x64", "0x65", … */
  readonly nacksByStatus: Record<string, number>
  /** Receipts and MOs waiting for a receiver of their system_id. */
  readonly receiptsQueued: number
  /** Receipts waiting for their `receiptDelayMs`. */
  readonly receiptsScheduled: number
  readonly mosSent: number
  readonly mosAcked: number
  readonly uniqueMessages: number
  /** Most submit_sm awaiting our response on one connection at any moment. */
  readonly maxInFlight: number
  /** submit_sm awaiting our response now, on open connections. */
  readonly inFlight: number
  readonly enquireLinks: number
  readonly unbindsReceived: number
  /** PDUs read while `stopAnswering` was on. */
  readonly ignoredPdus: number
}

export interface ReceivedMessage {
  readonly messageId: string
  readonly systemId: string
  readonly destinationAddr: string
  readonly sourceAddr: string
  readonly esmClass: number
  readonly dataCoding: number
  readonly registeredDelivery: number
  /** `short_message`, or `message_payload` when that carried the text. */
  readonly shortMessage: Uint8Array
  readonly at: number
}

export interface MobileOriginated {
  readonly sourceAddr: string
  readonly destinationAddr: string
  readonly shortMessage: Uint8Array
  readonly dataCoding?: number
  readonly esmClass?: number
  /** Deliver to sessions of this system_id; defaults to the configured one, else any receiver. */
  readonly systemId?: string
  /** A part of a concatenated message announced by the SAR TLVs instead of a UDH. */
  readonly sar?: { readonly ref: number; readonly total: number; readonly seq: number }
}

/**
 * A handset's text as the deliver_sm an SMSC sends for it: one part, or UDH-concatenated parts (GSM 7 when the text
 * fits it, else UCS-2), in order.
 */
export const moParts = (
  message: { readonly from: string; readonly to: string; readonly text: string; readonly reference?: number }
): ReadonlyArray<MobileOriginated> => {
  const segmented = segment(message.text, { encoding: "auto", reference: message.reference ?? Math.floor(Math.random() * 256) })
  if (Result.isFailure(segmented)) throw new Error(`the text cannot be sent: ${segmented.failure._tag}`)
  return segmented.success.parts.map((part) => ({
    sourceAddr: message.from,
    destinationAddr: message.to,
    shortMessage: part.shortMessage,
    dataCoding: segmented.success.dataCoding,
    esmClass: part.udhi ? 0x40 : 0
  }))
}

export interface SmscSimulator {
  readonly port: number
  /** Replaces the active faults. */
  setFaults(faults: Faults): Effect.Effect<void>
  readonly clearFaults: Effect.Effect<void>
  /** Destroys every socket now. */
  readonly dropConnections: Effect.Effect<void>
  /** Sends unbind to every bound session and closes each once it answers (or after 1 s). */
  readonly unbindAll: Effect.Effect<void>
  /** Queues an MO deliver_sm to a receiver/transceiver (sent at once if one is bound). */
  deliverMo(message: MobileOriginated): Effect.Effect<void>
  readonly stats: Effect.Effect<SimulatorStats>
  readonly received: Effect.Effect<ReadonlyArray<ReceivedMessage>>
  readonly close: Effect.Effect<void>
}

export class SimulatorStartError extends Schema.TaggedError<SimulatorStartError>()("SimulatorStartError", {
  message: Schema.String
}) {}

const { ESME_ROK, ESME_RINVBNDSTS, ESME_RALYBND, ESME_RINVPASWD, ESME_RINVSYSID, ESME_RMSGQFUL, ESME_RTHROTTLED } = CommandStatus
const ESM_CLASS_RECEIPT = 0x04
const ESM_CLASS_UDHI = 0x40
const DATA_CODING_UCS2 = 0x08

const MESSAGE_STATE: Record<ReceiptState, number> = { DELIVRD: 2, EXPIRED: 3, UNDELIV: 5, REJECTD: 8 }

type Mode = "transceiver" | "transmitter" | "receiver"

interface OutDeliver {
  readonly systemId: string
  readonly fields: PduFields
  readonly receipt: boolean
  /** The session that submitted: preferred for the receipt while it is bound and can receive. */
  origin: SimSession | undefined
  attempts: number
}

class SimSession {
  readonly conn: LibSession
  mode: Mode | undefined = undefined
  systemId = ""
  closed = false
  unbinding = false
  pendingResponses = 0
  seq = 0
  readonly outstanding = new Map<number, OutDeliver>()
  constructor(conn: LibSession) {
    this.conn = conn
  }
  get canReceive(): boolean {
    return !this.closed && !this.unbinding && (this.mode === "transceiver" || this.mode === "receiver")
  }
}

const pad2 = (n: number): string => (n < 10 ? `0${n}` : `${n}`)

/** YYMMDDhhmm in UTC. */
const receiptDate = (ms: number): string => {
  const d = new Date(ms)
  return `${pad2(d.getUTCFullYear() % 100)}${pad2(d.getUTCMonth() + 1)}${pad2(d.getUTCDate())}` +
    `${pad2(d.getUTCHours())}${pad2(d.getUTCMinutes())}`
}

/** The first 20 characters for a receipt's `text:` field; printable ASCII only, UDH skipped. */
const receiptSnippet = (bytes: Uint8Array, dataCoding: number, esmClass: number): string => {
  let start = 0
  if ((esmClass & ESM_CLASS_UDHI) !== 0 && bytes.length > 0) start = (bytes[0] ?? 0) + 1
  let text = ""
  if (dataCoding === DATA_CODING_UCS2) {
    for (let i = start; i + 1 < bytes.length && text.length < 20; i += 2) {
      const unit = ((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)
      text += unit >= 0x20 && unit < 0x7f ? String.fromCharCode(unit) : "?"
    }
  } else {
    for (let i = start; i < bytes.length && text.length < 20; i++) {
      const b = bytes[i] ?? 0
      text += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : "?"
    }
  }
  return text
}

const statusKey = (status: number): string => `0x${status.toString(16).padStart(2, "0")}`

class Smsc {
  readonly options: SimulatorOptions
  readonly server: Server
  readonly sessions = new Set<SimSession>()
  faults: Faults = {}
  private readonly idPrefix = 1 + Math.floor(Math.random() * 0xfffff)
  private idCounter = 0
  private binds = 0
  private bindsRejected = 0
  private submits = 0
  private readonly byStatus = new Map<number, number>()
  private readonly nackStatuses = new Map<number, number>()
  private receiptsSent = 0
  private receiptsAcked = 0
  private receiptsNacked = 0
  private mosSent = 0
  private mosAcked = 0
  private maxInFlight = 0
  private enquireLinks = 0
  private unbindsReceived = 0
  private ignoredPdus = 0
  private tpsSecond = 0
  private tpsCount = 0
  private readonly received: Array<ReceivedMessage> = []
  private receivedNext = 0
  private readonly unique = new Set<string>()
  private readonly queued = new Map<string, Array<OutDeliver>>()
  private queuedCount = 0
  /** Receipts in due order: the delay is constant, so appending keeps the order. */
  private readonly due: Array<{ at: number; deliver: OutDeliver }> = []
  private dueHead = 0
  private dueTimer: ReturnType<typeof setTimeout> | undefined = undefined
  private readonly timers = new Set<ReturnType<typeof setTimeout>>()
  private closed = false

  constructor(options: SimulatorOptions) {
    this.options = options
    const serverOptions = options.tls === undefined ? {} : { key: options.tls.key, cert: options.tls.cert }
    this.server = smpp.createServer(serverOptions, this.onSession)
  }

  setFaults(faults: Faults): void {
    this.faults = faults
  }

  dropConnections(): void {
    for (const s of this.sessions) s.conn.destroy()
  }

  unbindAll(): void {
    for (const s of this.sessions) {
      if (s.mode === undefined || s.unbinding || s.closed) continue
      s.unbinding = true
      s.conn.send(new smpp.PDU("unbind", { sequence_number: this.nextSeq(s) }))
      this.later(1_000, () => s.conn.destroy())
    }
  }

  deliverMo(mo: MobileOriginated): void {
    this.dispatch({
      systemId: mo.systemId ?? this.options.systemId ?? "",
      receipt: false,
      origin: undefined,
      attempts: 0,
      fields: {
        source_addr_ton: 1,
        source_addr_npi: 1,
        source_addr: mo.sourceAddr,
        dest_addr_ton: 0,
        dest_addr_npi: 0,
        destination_addr: mo.destinationAddr,
        esm_class: mo.esmClass ?? 0,
        data_coding: mo.dataCoding ?? 0,
        short_message: asBuffer(mo.shortMessage),
        ...(mo.sar !== undefined
          ? { sar_msg_ref_num: mo.sar.ref, sar_total_segments: mo.sar.total, sar_segment_seqnum: mo.sar.seq }
          : {})
      }
    })
  }

  stats(): SimulatorStats {
    let bound = 0
    let inFlight = 0
    for (const s of this.sessions) {
      if (s.mode !== undefined && !s.closed) bound++
      if (!s.closed) inFlight += s.pendingResponses
    }
    const submitsByStatus: Record<string, number> = {}
    for (const [status, count] of this.byStatus) submitsByStatus[statusKey(status)] = count
    const nacksByStatus: Record<string, number> = {}
    for (const [status, count] of this.nackStatuses) nacksByStatus[statusKey(status)] = count
    return {
      binds: this.binds,
      bindsRejected: this.bindsRejected,
      boundSessions: bound,
      submits: this.submits,
      submitsByStatus,
      receiptsSent: this.receiptsSent,
      receiptsAcked: this.receiptsAcked,
      receiptsNacked: this.receiptsNacked,
      nacksByStatus,
      receiptsQueued: this.queuedCount,
      receiptsScheduled: this.due.length - this.dueHead,
      mosSent: this.mosSent,
      mosAcked: this.mosAcked,
      uniqueMessages: this.unique.size,
      maxInFlight: this.maxInFlight,
      inFlight,
      enquireLinks: this.enquireLinks,
      unbindsReceived: this.unbindsReceived,
      ignoredPdus: this.ignoredPdus
    }
  }

  receivedLog(): ReadonlyArray<ReceivedMessage> {
    if (this.received.length < this.options.receivedLimit) return this.received.slice()
    return [...this.received.slice(this.receivedNext), ...this.received.slice(0, this.receivedNext)]
  }

  shutdown(onClosed: () => void): void {
    if (this.closed) {
      onClosed()
      return
    }
    this.closed = true
    clearTimeout(this.dueTimer)
    for (const timer of this.timers) clearTimeout(timer)
    this.timers.clear()
    this.server.close(() => onClosed())
    this.dropConnections()
  }

  private readonly onSession = (conn: LibSession): void => {
    const s = new SimSession(conn)
    if (this.closed) {
      conn.destroy()
      return
    }
    conn.socket.setNoDelay(true)
    coalesceWrites(conn.socket)
    this.sessions.add(s)
    conn.on("error", () => conn.destroy())
    conn.on("close", () => this.onClose(s))
    conn.on("pdu", (pdu: PDU) => {
      try {
        this.onPdu(s, pdu)
      } catch {
        conn.destroy()
      }
    })
  }

  private onClose(s: SimSession): void {
    s.closed = true
    this.sessions.delete(s)
    const unanswered = [...s.outstanding.values()]
    s.outstanding.clear()
    for (const d of unanswered) {
      d.origin = undefined
      this.dispatch(d)
    }
  }

  private onPdu(s: SimSession, pdu: PDU): void {
    if (this.faults.stopAnswering === true) {
      this.ignoredPdus++
      return
    }
    switch (pdu.command) {
      case "submit_sm":
        this.onSubmit(s, pdu)
        return
      case "deliver_sm_resp":
        this.onDeliverResp(s, pdu)
        return
      case "enquire_link":
        this.enquireLinks++
        this.respond(s, pdu, ESME_ROK)
        return
      case "bind_transceiver":
        this.onBind(s, pdu, "transceiver")
        return
      case "bind_transmitter":
        this.onBind(s, pdu, "transmitter")
        return
      case "bind_receiver":
        this.onBind(s, pdu, "receiver")
        return
      case "unbind":
        this.unbindsReceived++
        s.unbinding = true
        this.respond(s, pdu, ESME_ROK, () => s.conn.close())
        return
      case "unbind_resp":
        s.conn.destroy()
        return
      case "enquire_link_resp":
      case "generic_nack":
        return
      default:
        if (!pdu.isResponse()) this.respond(s, pdu, 0x03)
    }
  }

  private onBind(s: SimSession, pdu: PDU, mode: Mode): void {
    const o = this.options
    let status: number = ESME_ROK
    if (s.mode !== undefined) status = ESME_RALYBND
    else if (this.faults.rejectBinds !== undefined) status = this.faults.rejectBinds
    else if (o.systemId !== undefined && pdu.system_id !== o.systemId) status = ESME_RINVSYSID
    else if (o.password !== undefined && pdu.password !== o.password) status = ESME_RINVPASWD
    if (status !== ESME_ROK) {
      this.bindsRejected++
      s.conn.send(pdu.response({ command_status: status }))
      return
    }
    s.mode = mode
    s.systemId = pdu.system_id ?? ""
    this.binds++
    s.conn.send(pdu.response({ system_id: "SMSCSIM" }))
    if (s.canReceive) this.flushQueued(s.systemId)
  }

  private onSubmit(s: SimSession, pdu: PDU): void {
    this.submits++
    let status: number = ESME_ROK
    const f = this.faults
    if (s.mode === undefined || s.mode === "receiver" || s.unbinding) status = ESME_RINVBNDSTS
    else if (f.queueFull === true) status = ESME_RMSGQFUL
    else if (f.submitStatus !== undefined) status = f.submitStatus
    else if (f.throttleAboveTps !== undefined) {
      const second = Math.floor(Date.now() / 1000)
      if (second !== this.tpsSecond) {
        this.tpsSecond = second
        this.tpsCount = 0
      }
      if (++this.tpsCount > f.throttleAboveTps) status = ESME_RTHROTTLED
    }
    this.byStatus.set(status, (this.byStatus.get(status) ?? 0) + 1)
    const delay = f.responseDelayMs ?? 0
    s.pendingResponses++
    if (s.pendingResponses > this.maxInFlight) this.maxInFlight = s.pendingResponses
    if (delay > 0) this.later(delay, () => this.answerSubmit(s, pdu, status))
    else this.answerSubmit(s, pdu, status)
  }

  private answerSubmit(s: SimSession, pdu: PDU, status: number): void {
    s.pendingResponses--
    if (s.closed) return
    if (status !== ESME_ROK) {
      this.respond(s, pdu, status)
      return
    }
    const value = this.idPrefix * 0x100000000 + ++this.idCounter
    const messageId = this.faults.messageId ??
      (this.options.messageIdFormat === "decimal" ? value.toString(10) : value.toString(16))
    s.conn.send(pdu.response({ message_id: messageId }))
    const now = Date.now()
    const sm = pdu.short_message instanceof Uint8Array ? pdu.short_message : new Uint8Array(0)
    const bytes = sm.length === 0 && pdu.message_payload instanceof Uint8Array ? pdu.message_payload : sm
    const message: ReceivedMessage = {
      messageId,
      systemId: s.systemId,
      destinationAddr: pdu.destination_addr ?? "",
      sourceAddr: pdu.source_addr ?? "",
      esmClass: pdu.esm_class ?? 0,
      dataCoding: pdu.data_coding ?? 0,
      registeredDelivery: pdu.registered_delivery ?? 0,
      shortMessage: bytes,
      at: now
    }
    this.remember(message)
    const requested = message.registeredDelivery & 0x03
    const failed = this.options.receiptState !== "DELIVRD"
    if (this.options.receipts && (requested === 1 || (requested === 2 && failed))) {
      this.due.push({ at: now + this.options.receiptDelayMs, deliver: this.receipt(s, pdu, message, value) })
      this.armDue()
    }
  }

  private remember(message: ReceivedMessage): void {
    const limit = this.options.receivedLimit
    if (this.received.length < limit) this.received.push(message)
    else {
      this.received[this.receivedNext] = message
      this.receivedNext = (this.receivedNext + 1) % limit
    }
    if (this.unique.size < this.options.uniqueLimit) {
      const key = createHash("sha1")
        .update(`${message.sourceAddr}\u0000${message.destinationAddr}\u0000${message.dataCoding}\u0000${message.esmClass}\u0000`)
        .update(message.shortMessage)
        .digest("base64")
      this.unique.add(key)
    }
  }

  private receipt(s: SimSession, pdu: PDU, message: ReceivedMessage, idValue: number): OutDeliver {
    const o = this.options
    const state = o.receiptState
    const receiptId = this.faults.messageId !== undefined
      ? message.messageId
      : o.receiptIdFormat === "hex"
      ? idValue.toString(16).toUpperCase()
      : o.receiptIdFormat === "decimal"
      ? idValue.toString(10)
      : message.messageId
    const delivered = state === "DELIVRD"
    const date = receiptDate(message.at)
    const doneDate = receiptDate(message.at + o.receiptDelayMs)
    const text = `id:${receiptId} sub:001 dlvrd:${delivered ? "001" : "000"} submit date:${date} ` +
      `done date:${doneDate} stat:${state} err:${delivered ? "000" : "001"} ` +
      `text:${receiptSnippet(message.shortMessage, message.dataCoding, message.esmClass)}`
    const fields: PduFields = {
      source_addr_ton: pdu.dest_addr_ton ?? 0,
      source_addr_npi: pdu.dest_addr_npi ?? 0,
      source_addr: message.destinationAddr,
      dest_addr_ton: pdu.source_addr_ton ?? 0,
      dest_addr_npi: pdu.source_addr_npi ?? 0,
      destination_addr: message.sourceAddr,
      esm_class: ESM_CLASS_RECEIPT,
      data_coding: 0,
      short_message: Buffer.from(text, "latin1")
    }
    if (o.receiptTlvs) {
      fields.receipted_message_id = receiptId
      fields.message_state = MESSAGE_STATE[state]
      if (!delivered) fields.network_error_code = Buffer.from([0x03, 0x00, 0x01])
    }
    return { systemId: s.systemId, fields, receipt: true, origin: s, attempts: 0 }
  }

  private armDue(): void {
    if (this.dueTimer !== undefined || this.closed) return
    const next = this.due[this.dueHead]
    if (next === undefined) return
    this.dueTimer = setTimeout(this.flushDue, Math.max(0, next.at - Date.now()))
  }

  private readonly flushDue = (): void => {
    this.dueTimer = undefined
    const now = Date.now()
    while (this.dueHead < this.due.length) {
      const next = this.due[this.dueHead]
      if (next === undefined || next.at > now) break
      this.dueHead++
      this.dispatch(next.deliver)
    }
    if (this.dueHead === this.due.length) {
      this.due.length = 0
      this.dueHead = 0
    } else if (this.dueHead > 4096) {
      this.due.splice(0, this.dueHead)
      this.dueHead = 0
    }
    this.armDue()
  }

  /** Sends to the origin if it can receive, else to any bound receiver of the system_id, else queues. */
  private dispatch(d: OutDeliver): void {
    if (this.closed) return
    let target = d.origin !== undefined && d.origin.canReceive ? d.origin : undefined
    if (target === undefined) {
      for (const s of this.sessions) {
        if (s.canReceive && (d.systemId === "" || s.systemId === d.systemId)) {
          target = s
          break
        }
      }
    }
    if (target === undefined) {
      this.enqueue(d)
      return
    }
    const seq = this.nextSeq(target)
    target.outstanding.set(seq, d)
    d.attempts++
    if (!target.conn.send(new smpp.PDU("deliver_sm", { ...d.fields, sequence_number: seq }))) {
      target.outstanding.delete(seq)
      d.attempts--
      d.origin = undefined
      this.enqueue(d)
      return
    }
    if (d.receipt) this.receiptsSent++
    else this.mosSent++
  }

  private enqueue(d: OutDeliver): void {
    const list = this.queued.get(d.systemId)
    if (list === undefined) this.queued.set(d.systemId, [d])
    else list.push(d)
    this.queuedCount++
  }

  private flushQueued(systemId: string): void {
    const lists = [...this.queued.entries()].filter(([id]) => id === "" || id === systemId)
    for (const [id, list] of lists) {
      this.queued.delete(id)
      this.queuedCount -= list.length
      for (const d of list) this.dispatch(d)
    }
  }

  private onDeliverResp(s: SimSession, pdu: PDU): void {
    const d = s.outstanding.get(pdu.sequence_number)
    if (d === undefined) return
    s.outstanding.delete(pdu.sequence_number)
    if (pdu.command_status === ESME_ROK) {
      if (d.receipt) this.receiptsAcked++
      else this.mosAcked++
      return
    }
    this.receiptsNacked++
    this.nackStatuses.set(pdu.command_status, (this.nackStatuses.get(pdu.command_status) ?? 0) + 1)
    if (d.attempts < this.options.maxDeliveryAttempts) {
      this.later(Math.max(50, this.options.receiptDelayMs), () => this.dispatch(d))
    }
  }

  private respond(s: SimSession, pdu: PDU, status: number, afterWrite?: () => void): void {
    if (s.closed || !s.conn.socket.writable) return
    const resp = status === ESME_ROK ? pdu.response() : pdu.response({ command_status: status })
    if (afterWrite === undefined) s.conn.send(resp)
    else s.conn.send(resp, afterWrite)
  }

  private nextSeq(s: SimSession): number {
    s.seq = s.seq >= 0x7fffffff ? 1 : s.seq + 1
    return s.seq
  }

  private later(ms: number, f: () => void): void {
    if (this.closed) return
    const timer = setTimeout(() => {
      this.timers.delete(timer)
      f()
    }, ms)
    this.timers.add(timer)
  }
}

const listen = (smsc: Smsc): Effect.Effect<number, SimulatorStartError> =>
  Effect.callback<number, SimulatorStartError>((resume) => {
    const server = smsc.server
    const onError = (error: Error) => resume(Effect.fail(new SimulatorStartError({ message: error.message })))
    server.once("error", onError)
    server.listen(smsc.options.port, smsc.options.host, () => {
      server.off("error", onError)
      // A later server error (e.g. EMFILE on accept) must not crash the process.
      server.on("error", () => undefined)
      const address = server.address()
      resume(Effect.succeed(typeof address === "object" && address !== null ? address.port : smsc.options.port))
    })
  })

/** Starts the simulator; it stops when the scope closes (or on `close`). */
export const start = Effect.fn("SmscSimulator.start")(
  function*(options: Partial<SimulatorOptions> = {}): Effect.fn.Return<SmscSimulator, SimulatorStartError, Scope.Scope> {
    useRawMessageBytes()
    const resolved: SimulatorOptions = {
      port: 0,
      host: "127.0.0.1",
      receiptDelayMs: 100,
      receiptState: "DELIVRD",
      receipts: true,
      messageIdFormat: "hex",
      receiptIdFormat: "same",
      receiptTlvs: false,
      receivedLimit: 100_000,
      uniqueLimit: 1_000_000,
      maxDeliveryAttempts: 3,
      ...options
    }
    let smsc: Smsc
    try {
      smsc = new Smsc(resolved)
    } catch (error) {
      return yield* new SimulatorStartError({ message: error instanceof Error ? error.message : String(error) })
    }
    const close = Effect.callback<void>((resume) => smsc.shutdown(() => resume(Effect.void)))
    const port = yield* Effect.acquireRelease(listen(smsc), () => close)
    const simulator: SmscSimulator = {
      port,
      setFaults: (faults) => Effect.sync(() => smsc.setFaults(faults)),
      clearFaults: Effect.sync(() => smsc.setFaults({})),
      dropConnections: Effect.sync(() => smsc.dropConnections()),
      unbindAll: Effect.sync(() => smsc.unbindAll()),
      deliverMo: (mo) => Effect.sync(() => smsc.deliverMo(mo)),
      stats: Effect.sync(() => smsc.stats()),
      received: Effect.sync(() => smsc.receivedLog()),
      close
    }
    return simulator
  }
)
