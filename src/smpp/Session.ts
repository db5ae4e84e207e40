/**
 * An SMPP v3.4 ESME client over npm `smpp`: binds, a submit window, per-PDU timeouts, enquire_link keepalive,
 * reconnect with backoff (a fresh library session per connection) and answers to the SMSC's own requests.
 *
 * The socket work is callback code in `Link`; Effect owns the lifecycle (one reconnect fiber per connection slot,
 * finalizers, delivery handlers). A submit is a single `Effect.callback`: no fiber is forked per message.
 */
import { Cause, Effect, Exit, FiberSet, Schema } from "effect"
import type { Fiber, Scope } from "effect"
import smpp from "smpp"
import type { PDU, PduFields, Session as LibSession, SessionOptions as LibSessionOptions } from "smpp"
import { isValidMessageId } from "./MessageId.ts"
import { coalesceWrites } from "./WriteCoalescing.ts"
import { CommandStatus } from "./CommandStatus.ts"

export class SubmitRejected extends Schema.TaggedError<SubmitRejected>()("SubmitRejected", {
  commandStatus: Schema.Number
}) {}

/** No response within `responseTimeoutMs`: the SMSC may or may not have accepted the message. */
export class SubmitTimeout extends Schema.TaggedError<SubmitTimeout>()("SubmitTimeout", {}) {}

/** No bound transmitting connection: nothing was sent. */
export class NotBound extends Schema.TaggedError<NotBound>()("NotBound", {}) {}

/** Sent, but the connection dropped before the response: outcome unknown, safe to retry on another bind. */
export class ConnectionLost extends Schema.TaggedError<ConnectionLost>()("ConnectionLost", {}) {}

/** No window slot freed up within `responseTimeoutMs`: nothing was sent. */
export class WindowTimeout extends Schema.TaggedError<WindowTimeout>()("WindowTimeout", {}) {}

/** Fails an `onDeliver` handler to refuse the PDU for good with this command_status (not "redeliver later"). */
export class DeliverRefused extends Schema.TaggedError<DeliverRefused>()("DeliverRefused", {
  commandStatus: Schema.Number
}) {}

export type SubmitError = SubmitRejected | SubmitTimeout | NotBound | ConnectionLost | WindowTimeout

export type BindMode = "transceiver" | "transmitter" | "receiver" | "pair"
export type ConnectionMode = "transceiver" | "transmitter" | "receiver"

export interface IncomingDeliver {
  readonly sourceAddr: string
  readonly destinationAddr: string
  readonly esmClass: number
  readonly dataCoding: number
  /** Raw octets of `short_message`, or of `message_payload` when `short_message` is empty. */
  readonly shortMessage: Uint8Array
  readonly receiptedMessageId?: string
  readonly messageState?: number
  readonly networkErrorCode?: Uint8Array
  /** A part of a concatenated message announced by the SAR TLVs (a UDH, when `esmClass` has 0x40, is in the bytes). */
  readonly sar?: { readonly ref: number; readonly total: number; readonly seq: number }
  readonly connectionId: string
}

export interface SessionOptions {
  readonly host: string
  readonly port: number
  readonly tls?: boolean | { readonly rejectUnauthorized?: boolean; readonly ca?: string; readonly servername?: string }
  readonly systemId: string
  readonly password: string
  readonly systemType?: string
  readonly bindMode: BindMode
  /** Max outstanding submit_sm on the transmitting connection. */
  readonly window: number
  /** Names the session in connection ids and logs (a link id). */
  readonly name?: string
  readonly responseTimeoutMs?: number
  readonly enquireLinkIntervalMs?: number
  readonly enquireLinkTimeoutMs?: number
  readonly reconnect?: { readonly initialMs: number; readonly maxMs: number }
  readonly connectTimeoutMs?: number
  /**
   * Receipts and MO. Success answers deliver_sm_resp ESME_ROK, DeliverRefused its status, any other failure 0x64
   * (ESME_RX_T_APPN: redeliver later). A deliver_sm with an address or short_message beyond its bound is refused here.
   */
  readonly onDeliver: (pdu: IncomingDeliver) => Effect.Effect<void, unknown>
  readonly onStateChange?: (state: SessionState) => Effect.Effect<void>
}

export interface SubmitRequest {
  readonly sourceAddr: string
  readonly sourceTon: number
  readonly sourceNpi: number
  readonly destinationAddr: string
  readonly destTon: number
  readonly destNpi: number
  readonly dataCoding: number
  /** The caller sets 0x40 when the message starts with a UDH. */
  readonly esmClass: number
  /** Sent as is; above 254 octets it goes in `message_payload` with `sm_length` 0. */
  readonly shortMessage: Uint8Array
  readonly registeredDelivery: number
  readonly validityPeriod?: string
  readonly serviceType?: string
  readonly protocolId?: number
}

export interface SubmitResult {
  readonly messageId: string
}

export interface ConnectionState {
  readonly id: string
  readonly mode: ConnectionMode
  readonly bound: boolean
  readonly inFlight: number
  /** Epoch ms of the bind. */
  readonly since?: number
}

export interface SessionCounters {
  readonly submitted: number
  readonly submitOk: number
  readonly submitErrors: number
  readonly timeouts: number
  readonly windowTimeouts: number
  readonly connectionLost: number
  readonly reconnects: number
  readonly bindFailures: number
  readonly deliversReceived: number
  readonly deliverErrors: number
  /** deliver_sm refused for a field beyond its bound (here or by DeliverRefused). */
  readonly deliversRefused: number
  /** submit_sm_resp ESME_ROK whose message_id was beyond its bound: taken as submitted without an id. */
  readonly invalidMessageIds: number
  readonly enquireLinkSent: number
  readonly lastError?: string
}

export interface SessionState {
  /** Every connection of the session is bound. */
  readonly bound: boolean
  /** A transmitting connection is bound (submits can go out). */
  readonly canSubmit: boolean
  readonly connections: ReadonlyArray<ConnectionState>
  readonly windowInUse: number
  readonly window: number
  readonly counters: SessionCounters
}

export interface SmppSession {
  submit(req: SubmitRequest): Effect.Effect<SubmitResult, SubmitError>
  readonly state: Effect.Effect<SessionState>
  /** Unbind and reconnect now, skipping any backoff; completes when the old connections are closed. */
  readonly rebind: Effect.Effect<void>
}

const { ESME_ROK, ESME_RINVMSGLEN, ESME_RINVCMDID, ESME_RINVBNDSTS, ESME_RINVSRCADR, ESME_RINVDSTADR, ESME_RX_T_APPN } = CommandStatus
const INTERFACE_VERSION = 0x34
const MAX_SHORT_MESSAGE = 254
/** source_addr / destination_addr of deliver_sm: C-Octet Strings of at most 21 octets with the NUL (SMPP v3.4 §4.6.1). */
const MAX_ADDRESS = 20
const MAX_TLV_VALUE = 0xffff
/** Bind refusals that a quick retry will not fix (bind-count limits, bad credentials). */
const SLOW_RETRY_BIND_STATUSES: ReadonlySet<number> = new Set([0x05, 0x0d, 0x0e, 0x0f])
const UNBIND_WAIT_MS = 2_000
const EMPTY = Buffer.alloc(0)

let rawMessages = false

/**
 * Removes npm `smpp`'s text filters from `short_message` and `message_payload` so both travel as raw octets:
 * the library's decoder maps bytes through its own charsets and loses data. Process-wide and idempotent;
 * every user of the library in this codebase wants raw octets.
 */
export const useRawMessageBytes = (): void => {
  if (rawMessages) return
  rawMessages = true
  for (const command of Object.values(smpp.commands)) {
    const param = command.params?.["short_message"]
    if (param !== undefined) delete param.filter
  }
  const payload = smpp.tlvs["message_payload"]
  if (payload !== undefined) delete payload.filter
}

let statusNames: Map<number, string> | undefined

/** `ESME_RINVPASWD (0x0000000E)` */
const describeStatus = (status: number): string => {
  if (statusNames === undefined) {
    statusNames = new Map()
    for (const [name, code] of Object.entries(smpp.errors)) {
      if (!statusNames.has(code)) statusNames.set(code, name)
    }
  }
  const hex = `0x${status.toString(16).toUpperCase().padStart(8, "0")}`
  const name = statusNames.get(status)
  return name === undefined ? hex : `${name} (${hex})`
}

export const asBuffer = (bytes: Uint8Array): Buffer =>
  Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)

/** The first field of a deliver_sm beyond its SMPP v3.4 bound, with the status that refuses it. */
const outOfBounds = (pdu: PDU): { readonly field: string; readonly status: number } | undefined => {
  if ((pdu.source_addr ?? "").length > MAX_ADDRESS) return { field: "source_addr", status: ESME_RINVSRCADR }
  if ((pdu.destination_addr ?? "").length > MAX_ADDRESS) return { field: "destination_addr", status: ESME_RINVDSTADR }
  if (pdu.short_message instanceof Uint8Array && pdu.short_message.length > MAX_SHORT_MESSAGE) {
    return { field: "short_message", status: ESME_RINVMSGLEN }
  }
  return undefined
}

const toIncoming = (pdu: PDU, connectionId: string): IncomingDeliver => {
  let bytes: Uint8Array = pdu.short_message instanceof Uint8Array ? pdu.short_message : EMPTY
  if (bytes.length === 0 && pdu.message_payload instanceof Uint8Array) bytes = pdu.message_payload
  const deliver: {
    -readonly [K in keyof IncomingDeliver]: IncomingDeliver[K]
  } = {
    sourceAddr: pdu.source_addr ?? "",
    destinationAddr: pdu.destination_addr ?? "",
    esmClass: pdu.esm_class ?? 0,
    dataCoding: pdu.data_coding ?? 0,
    shortMessage: bytes,
    connectionId
  }
  if (typeof pdu.receipted_message_id === "string") deliver.receiptedMessageId = pdu.receipted_message_id
  if (typeof pdu.message_state === "number") deliver.messageState = pdu.message_state
  if (pdu.network_error_code instanceof Uint8Array) deliver.networkErrorCode = pdu.network_error_code
  const { sar_msg_ref_num: ref, sar_total_segments: total, sar_segment_seqnum: seq } = pdu
  if (typeof ref === "number" && typeof total === "number" && typeof seq === "number" && seq >= 1 && seq <= total) {
    deliver.sar = { ref, total, seq }
  }
  return deliver
}

const submitFields = (req: SubmitRequest): PduFields | undefined => {
  const bytes = asBuffer(req.shortMessage)
  if (bytes.length > MAX_TLV_VALUE) return undefined
  const payload = bytes.length > MAX_SHORT_MESSAGE
  const fields: PduFields = {
    service_type: req.serviceType ?? "",
    source_addr_ton: req.sourceTon,
    source_addr_npi: req.sourceNpi,
    source_addr: req.sourceAddr,
    dest_addr_ton: req.destTon,
    dest_addr_npi: req.destNpi,
    destination_addr: req.destinationAddr,
    esm_class: req.esmClass,
    protocol_id: req.protocolId ?? 0,
    priority_flag: 0,
    schedule_delivery_time: "",
    validity_period: req.validityPeriod ?? "",
    registered_delivery: req.registeredDelivery,
    replace_if_present_flag: 0,
    data_coding: req.dataCoding,
    sm_default_msg_id: 0,
    short_message: payload ? EMPTY : bytes
  }
  if (payload) fields.message_payload = bytes
  return fields
}

type Resume = (effect: Effect.Effect<SubmitResult, SubmitError>) => void

const WAITING = 0
const IN_FLIGHT = 1
const DONE = 2

class PendingSubmit {
  state = WAITING
  timer: ReturnType<typeof setTimeout> | undefined = undefined
  link: Link | undefined = undefined
  seq = 0
  result: Effect.Effect<SubmitResult, SubmitError> | undefined = undefined
  readonly pdu: PDU
  readonly resume: Resume
  constructor(pdu: PDU, resume: Resume) {
    this.pdu = pdu
    this.resume = resume
  }
}

interface Outcome {
  readonly wasBound: boolean
  readonly bindStatus?: number
}

interface Slot {
  readonly mode: ConnectionMode
  link: Link | undefined
  wake: (() => void) | undefined
  skipBackoff: boolean
}

interface ResolvedOptions extends SessionOptions {
  readonly responseTimeoutMs: number
  readonly enquireLinkIntervalMs: number
  readonly enquireLinkTimeoutMs: number
  readonly reconnect: { readonly initialMs: number; readonly maxMs: number }
  readonly connectTimeoutMs: number
}

type RunFork = <A, E>(effect: Effect.Effect<A, E>) => Fiber.Fiber<A, E>

type MutableCounters = { -readonly [K in keyof SessionCounters]: SessionCounters[K] }

/** One TCP/TLS connection and its library session, from connect to close. Never reused. */
class Link {
  readonly id: string
  readonly mode: ConnectionMode
  readonly conn: LibSession
  readonly inflight = new Map<number, PendingSubmit>()
  bound = false
  since: number | undefined = undefined
  finished = false
  private readonly engine: Engine
  private readonly done: (outcome: Outcome) => void
  private seq = 0
  private bindSeq = -1
  private unbindSeq = -1
  private wasBound = false
  private bindStatus: number | undefined = undefined
  private connectTimer: ReturnType<typeof setTimeout> | undefined
  private bindTimer: ReturnType<typeof setTimeout> | undefined = undefined
  private pingTimer: ReturnType<typeof setTimeout> | undefined = undefined
  private unbindTimer: ReturnType<typeof setTimeout> | undefined = undefined
  private keepalive: ReturnType<typeof setInterval> | undefined = undefined
  private readonly closeWaiters: Array<() => void> = []

  constructor(engine: Engine, mode: ConnectionMode, id: string, done: (outcome: Outcome) => void) {
    this.engine = engine
    this.mode = mode
    this.id = id
    this.done = done
    const o = engine.options
    const connect: LibSessionOptions = { host: o.host, port: o.port }
    if (o.tls !== undefined && o.tls !== false) {
      connect.tls = true
      if (typeof o.tls === "object") {
        if (o.tls.rejectUnauthorized !== undefined) connect.rejectUnauthorized = o.tls.rejectUnauthorized
        if (o.tls.ca !== undefined) connect.ca = o.tls.ca
        if (o.tls.servername !== undefined) connect.servername = o.tls.servername
      }
    }
    this.conn = new smpp.Session(connect)
    this.conn.socket.setNoDelay(true)
    coalesceWrites(this.conn.socket)
    this.conn.on("error", this.onError)
    this.conn.on("close", this.onClose)
    this.conn.on("pdu", this.onPdu)
    this.conn.once(connect.tls === true ? "secureConnect" : "connect", this.onConnect)
    this.connectTimer = setTimeout(() => this.drop("connect timeout"), o.connectTimeoutMs)
  }

  nextSeq(): number {
    this.seq = this.seq >= 0x7fffffff ? 1 : this.seq + 1
    return this.seq
  }

  /** Answers a request PDU of the SMSC on this connection, if it is still open. */
  respond(pdu: PDU, status: number, afterWrite?: () => void): void {
    if (this.finished || !this.conn.socket.writable) return
    const resp = status === ESME_ROK ? pdu.response() : pdu.response({ command_status: status })
    if (afterWrite === undefined) this.conn.send(resp)
    else this.conn.send(resp, afterWrite)
  }

  /** Destroys the socket at once; `close` follows and ends the link. */
  drop(reason: string): void {
    if (this.finished) return
    this.engine.recordError(`${this.id}: ${reason}`)
    this.markDown(reason)
    this.conn.destroy()
  }

  /** unbind → unbind_resp (bounded wait) → close; `onClosed` runs once the socket is closed. */
  gracefulClose(timeoutMs: number, onClosed: () => void): void {
    if (this.finished) {
      onClosed()
      return
    }
    this.closeWaiters.push(onClosed)
    if (this.unbindSeq !== -1) return
    if (!this.bound || !this.conn.socket.writable) {
      this.markDown("closed by us")
      this.conn.destroy()
      return
    }
    this.markDown("unbound by us")
    this.unbindSeq = this.nextSeq()
    this.conn.send(new smpp.PDU("unbind", { sequence_number: this.unbindSeq }))
    this.unbindTimer = setTimeout(() => this.conn.destroy(), timeoutMs)
  }

  private readonly onConnect = (): void => {
    clearTimeout(this.connectTimer)
    const o = this.engine.options
    this.bindSeq = this.nextSeq()
    const pdu = new smpp.PDU(`bind_${this.mode}`, {
      sequence_number: this.bindSeq,
      system_id: o.systemId,
      password: o.password,
      system_type: o.systemType ?? "",
      interface_version: INTERFACE_VERSION,
      addr_ton: 0,
      addr_npi: 0,
      address_range: ""
    })
    this.conn.send(pdu)
    this.bindTimer = setTimeout(() => this.drop(`bind_${this.mode} timeout`), o.responseTimeoutMs)
  }

  private readonly onError = (error: unknown): void => {
    this.drop(error instanceof Error ? error.message : String(error))
  }

  private readonly onClose = (): void => {
    if (this.finished) return
    this.finished = true
    clearTimeout(this.connectTimer)
    clearTimeout(this.bindTimer)
    clearTimeout(this.unbindTimer)
    this.markDown("connection closed")
    const outcome: Outcome = this.bindStatus === undefined
      ? { wasBound: this.wasBound }
      : { wasBound: this.wasBound, bindStatus: this.bindStatus }
    for (const waiter of this.closeWaiters.splice(0)) waiter()
    this.done(outcome)
  }

  private readonly onPdu = (pdu: PDU): void => {
    // The library calls us synchronously from its socket reader: a throw here would be an uncaught exception.
    try {
      this.dispatch(pdu)
    } catch (error) {
      this.drop(`handling ${pdu.command} failed: ${error instanceof Error ? error.message : String(error)}`)
    }
  }

  private dispatch(pdu: PDU): void {
    switch (pdu.command) {
      case "submit_sm_resp":
        this.engine.completeSubmit(this, pdu.sequence_number, pdu.command_status, pdu.message_id)
        return
      case "deliver_sm":
        if (this.bound) this.engine.onDeliver(this, pdu)
        else this.respond(pdu, ESME_RINVBNDSTS)
        return
      case "enquire_link":
        this.respond(pdu, ESME_ROK)
        return
      case "enquire_link_resp":
        this.clearPing()
        return
      case "unbind":
        this.engine.recordError(`${this.id}: unbind from SMSC`)
        this.markDown("unbind from SMSC")
        this.respond(pdu, ESME_ROK, () => this.conn.close())
        this.unbindTimer = setTimeout(() => this.conn.destroy(), UNBIND_WAIT_MS)
        return
      case "unbind_resp":
        if (pdu.sequence_number === this.unbindSeq) this.conn.destroy()
        return
      case "bind_transceiver_resp":
      case "bind_transmitter_resp":
      case "bind_receiver_resp":
        this.onBindResp(pdu.sequence_number, pdu.command_status)
        return
      case "generic_nack":
        this.onGenericNack(pdu)
        return
      case "alert_notification":
        return
      default:
        if (!pdu.isResponse()) this.respond(pdu, ESME_RINVCMDID)
    }
  }

  private onBindResp(seq: number, status: number): void {
    if (seq !== this.bindSeq || this.bound) return
    clearTimeout(this.bindTimer)
    if (status !== ESME_ROK) {
      this.bindStatus = status
      this.engine.onBindFailed(this, status)
      this.conn.destroy()
      return
    }
    this.bound = true
    this.wasBound = true
    this.since = Date.now()
    this.keepalive = setInterval(this.ping, this.engine.options.enquireLinkIntervalMs)
    this.engine.onBound(this)
  }

  private onGenericNack(pdu: PDU): void {
    const seq = pdu.sequence_number
    const status = pdu.command_status === ESME_ROK ? ESME_RINVCMDID : pdu.command_status
    this.engine.recordError(`${this.id}: generic_nack ${describeStatus(status)} for sequence ${seq}`)
    if (seq === this.bindSeq && !this.bound) this.onBindResp(seq, status)
    else if (this.inflight.has(seq)) this.engine.completeSubmit(this, seq, status, undefined)
    else this.clearPing()
  }

  private readonly ping = (): void => {
    if (this.pingTimer !== undefined || !this.bound) return
    this.conn.send(new smpp.PDU("enquire_link", { sequence_number: this.nextSeq() }))
    this.engine.counters.enquireLinkSent++
    this.pingTimer = setTimeout(() => this.drop("enquire_link timeout"), this.engine.options.enquireLinkTimeoutMs)
  }

  private clearPing(): void {
    clearTimeout(this.pingTimer)
    this.pingTimer = undefined
  }

  /** No longer usable for submits: stop timers and fail what is in flight. Idempotent. */
  private markDown(reason: string): void {
    clearInterval(this.keepalive)
    this.keepalive = undefined
    this.clearPing()
    if (!this.bound) return
    this.bound = false
    this.engine.onDown(this, reason)
  }
}

class Engine {
  readonly options: ResolvedOptions
  readonly counters: MutableCounters = {
    submitted: 0,
    submitOk: 0,
    submitErrors: 0,
    timeouts: 0,
    windowTimeouts: 0,
    connectionLost: 0,
    reconnects: 0,
    bindFailures: 0,
    deliversReceived: 0,
    deliverErrors: 0,
    deliversRefused: 0,
    invalidMessageIds: 0,
    enquireLinkSent: 0
  }
  readonly slots: Array<Slot> = []
  closing = false
  private readonly runFork: RunFork
  private readonly window: number
  private inUse = 0
  private queue: Array<PendingSubmit | undefined> = []
  private head = 0
  private tx: Link | undefined = undefined
  private linkCount = 0
  /** Finished submits whose fibers are resumed once the engine's state is consistent (see `flush`). */
  private readonly completed: Array<PendingSubmit> = []
  private flushing = false

  constructor(options: ResolvedOptions, runFork: RunFork) {
    this.options = options
    this.runFork = runFork
    this.window = Math.max(1, Math.floor(options.window))
  }

  newLinkId(mode: ConnectionMode): string {
    this.linkCount++
    const name = this.options.name ?? `${this.options.systemId}@${this.options.host}:${this.options.port}`
    return `${name}/${mode}#${this.linkCount}`
  }

  submit(req: SubmitRequest, resume: Resume): PendingSubmit | undefined {
    if (this.tx === undefined || this.closing) {
      resume(Effect.fail(new NotBound()))
      return undefined
    }
    const fields = submitFields(req)
    // Too long even for message_payload: answered here as an SMSC would (ESME_RINVMSGLEN); nothing is sent.
    if (fields === undefined) {
      resume(Effect.fail(new SubmitRejected({ commandStatus: ESME_RINVMSGLEN })))
      return undefined
    }
    const op = new PendingSubmit(new smpp.PDU("submit_sm", fields), resume)
    if (this.inUse < this.window) {
      this.inUse++
      if (!this.start(op)) this.releaseSlot()
    } else {
      this.queue.push(op)
      op.timer = setTimeout(this.windowExpired, this.options.responseTimeoutMs, op)
    }
    this.flush()
    return op
  }

  /** The caller's fiber was interrupted. */
  cancel(op: PendingSubmit): void {
    if (op.state === WAITING) {
      op.state = DONE
      clearTimeout(op.timer)
    } else if (op.state === IN_FLIGHT) {
      op.state = DONE
      clearTimeout(op.timer)
      op.link?.inflight.delete(op.seq)
      this.releaseSlot()
      this.flush()
    }
  }

  completeSubmit(link: Link, seq: number, status: number, messageId: string | undefined): void {
    const op = link.inflight.get(seq)
    if (op === undefined) return
    link.inflight.delete(seq)
    if (status === ESME_ROK) {
      this.counters.submitOk++
      // The SMSC took the message: a resend would duplicate it. An id beyond its bound is not kept; no receipt will
      // match the part, which ends `expired` (no receipt) after its validity.
      let id = messageId ?? ""
      if (id !== "" && !isValidMessageId(id)) {
        this.counters.invalidMessageIds++
        this.recordError(`${link.id}: submit_sm_resp message_id beyond its bound (${id.length} characters)`)
        this.runFork(Effect.logWarning("submit_sm_resp message_id beyond its bound: not kept").pipe(
          Effect.annotateLogs({ connection: link.id, length: id.length })
        ))
        id = ""
      }
      this.finish(op, Effect.succeed({ messageId: id }))
    } else {
      this.counters.submitErrors++
      this.finish(op, Effect.fail(new SubmitRejected({ commandStatus: status })))
    }
    this.releaseSlot()
    this.flush()
  }

  onBound(link: Link): void {
    if (link.mode !== "receiver") this.tx = link
    this.runFork(Effect.logInfo("smpp bound").pipe(Effect.annotateLogs({ connection: link.id, mode: link.mode })))
    this.notify()
  }

  onBindFailed(link: Link, status: number): void {
    this.counters.bindFailures++
    this.recordError(`${link.id}: bind_${link.mode} rejected: ${describeStatus(status)}`)
    this.runFork(
      Effect.logWarning("smpp bind rejected").pipe(
        Effect.annotateLogs({ connection: link.id, commandStatus: describeStatus(status) })
      )
    )
    this.notify()
  }

  onDown(link: Link, reason: string): void {
    if (this.tx === link) this.tx = undefined
    const lost = link.inflight.size
    for (const op of link.inflight.values()) this.finish(op, Effect.fail(new ConnectionLost()))
    link.inflight.clear()
    this.counters.connectionLost += lost
    for (let i = 0; i < lost; i++) this.releaseSlot()
    this.flush()
    const log = this.closing ? Effect.logInfo("smpp connection closed") : Effect.logWarning("smpp connection down")
    this.runFork(log.pipe(Effect.annotateLogs({ connection: link.id, lostInFlight: lost, reason })))
    this.notify()
  }

  onDeliver(link: Link, pdu: PDU): void {
    this.counters.deliversReceived++
    const bad = outOfBounds(pdu)
    if (bad !== undefined) {
      this.refuseDeliver(link, pdu, bad.status, bad.field)
      return
    }
    const handled = Effect.suspend(() => this.options.onDeliver(toIncoming(pdu, link.id)))
    this.runFork(Effect.flatMap(Effect.exit(handled), (exit) =>
      Effect.sync(() => {
        if (Exit.isSuccess(exit)) {
          link.respond(pdu, ESME_ROK)
          return
        }
        const error = Cause.findErrorOption(exit.cause)
        if (error._tag === "Some" && error.value instanceof DeliverRefused) {
          this.counters.deliversRefused++
          link.respond(pdu, error.value.commandStatus)
        } else if (!Cause.hasInterruptsOnly(exit.cause)) {
          this.counters.deliverErrors++
          link.respond(pdu, ESME_RX_T_APPN)
        }
      })))
  }

  refuseDeliver(link: Link, pdu: PDU, status: number, field: string): void {
    this.counters.deliversRefused++
    this.recordError(`${link.id}: deliver_sm refused: ${field} beyond its bound`)
    this.runFork(Effect.logWarning("deliver_sm refused: a field beyond its bound").pipe(
      Effect.annotateLogs({ connection: link.id, field, commandStatus: describeStatus(status) })
    ))
    link.respond(pdu, status)
  }

  recordError(message: string): void {
    this.counters.lastError = message
  }

  /** Ends every connection (unbind first, bounded) and fails whatever still waits for a window slot. */
  closeAll(timeoutMs: number, onClosed: () => void): void {
    let pending = 1
    const closed = () => {
      if (--pending === 0) onClosed()
    }
    for (const slot of this.slots) {
      const link = slot.link
      if (link !== undefined && !link.finished) {
        pending++
        link.gracefulClose(timeoutMs, closed)
      }
    }
    closed()
  }

  shutdown(onClosed: () => void): void {
    this.closing = true
    this.tx = undefined
    for (const slot of this.slots) slot.wake?.()
    this.closeAll(Math.min(UNBIND_WAIT_MS, this.options.responseTimeoutMs), () => {
      while (this.head < this.queue.length) {
        const op = this.queue[this.head++]
        if (op !== undefined && op.state === WAITING) this.finish(op, Effect.fail(new NotBound()))
      }
      this.queue = []
      this.head = 0
      this.flush()
      onClosed()
    })
  }

  snapshot(): SessionState {
    const connections: Array<ConnectionState> = []
    let bound = this.slots.length > 0
    for (const slot of this.slots) {
      const link = slot.link
      const linkBound = link !== undefined && link.bound
      if (!linkBound) bound = false
      const base = { id: link?.id ?? `${slot.mode}#-`, mode: slot.mode, bound: linkBound, inFlight: link?.inflight.size ?? 0 }
      connections.push(linkBound && link.since !== undefined ? { ...base, since: link.since } : base)
    }
    return {
      bound,
      canSubmit: this.tx !== undefined && this.tx.bound,
      connections,
      windowInUse: this.inUse,
      window: this.window,
      counters: { ...this.counters }
    }
  }

  private start(op: PendingSubmit): boolean {
    const link = this.tx
    if (link === undefined || !link.bound) {
      this.finish(op, Effect.fail(new NotBound()))
      return false
    }
    const seq = link.nextSeq()
    op.pdu.sequence_number = seq
    let sent: boolean
    try {
      sent = link.conn.send(op.pdu)
    } catch (error) {
      this.finish(op, Effect.die(error))
      return false
    }
    if (!sent) {
      this.finish(op, Effect.fail(new NotBound()))
      return false
    }
    op.state = IN_FLIGHT
    op.link = link
    op.seq = seq
    link.inflight.set(seq, op)
    op.timer = setTimeout(this.responseExpired, this.options.responseTimeoutMs, op)
    this.counters.submitted++
    return true
  }

  /** A slot is free: hand it to the next waiter that can start, else return it. */
  private releaseSlot(): void {
    while (this.head < this.queue.length) {
      const op = this.queue[this.head]
      this.queue[this.head] = undefined
      this.head++
      if (op === undefined || op.state !== WAITING) continue
      clearTimeout(op.timer)
      op.timer = undefined
      if (this.start(op)) {
        if (this.head > 1024 && this.head * 2 > this.queue.length) {
          this.queue = this.queue.slice(this.head)
          this.head = 0
        }
        return
      }
    }
    this.queue = []
    this.head = 0
    this.inUse--
  }

  private finish(op: PendingSubmit, effect: Effect.Effect<SubmitResult, SubmitError>): void {
    if (op.state === DONE) return
    op.state = DONE
    clearTimeout(op.timer)
    op.timer = undefined
    op.result = effect
    this.completed.push(op)
  }

  /**
   * Resumes finished submits. A resumed fiber runs synchronously and may call back into the engine, so every
   * entry point settles its state first and flushes last; re-entrant calls leave the draining to the outer one.
   */
  private flush(): void {
    if (this.flushing) return
    this.flushing = true
    try {
      for (let i = 0; i < this.completed.length; i++) {
        const op = this.completed[i]
        const result = op?.result
        if (op === undefined || result === undefined) continue
        op.result = undefined
        op.resume(result)
      }
    } finally {
      this.completed.length = 0
      this.flushing = false
    }
  }

  private readonly responseExpired = (op: PendingSubmit): void => {
    if (op.state !== IN_FLIGHT) return
    op.link?.inflight.delete(op.seq)
    this.counters.timeouts++
    this.finish(op, Effect.fail(new SubmitTimeout()))
    this.releaseSlot()
    this.flush()
  }

  private readonly windowExpired = (op: PendingSubmit): void => {
    if (op.state !== WAITING) return
    this.counters.windowTimeouts++
    this.finish(op, Effect.fail(new WindowTimeout()))
    this.flush()
  }

  private notify(): void {
    const onStateChange = this.options.onStateChange
    if (onStateChange !== undefined) this.runFork(onStateChange(this.snapshot()))
  }
}

const runLink = (engine: Engine, slot: Slot): Effect.Effect<Outcome> =>
  Effect.callback<Outcome>((resume) => {
    let link: Link
    try {
      link = new Link(engine, slot.mode, engine.newLinkId(slot.mode), (outcome) => resume(Effect.succeed(outcome)))
    } catch (error) {
      engine.recordError(`connect failed: ${error instanceof Error ? error.message : String(error)}`)
      resume(Effect.succeed({ wasBound: false }))
      return
    }
    slot.link = link
    return Effect.sync(() => link.drop("session closed"))
  })

const sleepUnlessWoken = (slot: Slot, ms: number): Effect.Effect<void> =>
  Effect.callback<void>((resume) => {
    if (ms <= 0) {
      resume(Effect.void)
      return
    }
    const timer = setTimeout(() => {
      slot.wake = undefined
      resume(Effect.void)
    }, ms)
    slot.wake = () => {
      clearTimeout(timer)
      slot.wake = undefined
      resume(Effect.void)
    }
    return Effect.sync(() => {
      clearTimeout(timer)
      slot.wake = undefined
    })
  })

/** Full jitter: uniform in [0, min(max, initial · 2^attempt)]. */
const backoffMs = (attempt: number, initialMs: number, maxMs: number): number =>
  Math.random() * Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30))

const connectionLoop = (engine: Engine, slot: Slot): Effect.Effect<void> =>
  Effect.gen(function*() {
    const { initialMs, maxMs } = engine.options.reconnect
    let attempt = 0
    // A connection that never binds (refused, timed out, TLS) is logged once per distinct reason, not per retry.
    let reported: string | undefined
    while (!engine.closing) {
      const outcome = yield* runLink(engine, slot)
      if (engine.closing) return
      engine.counters.reconnects++
      // The reason without the connection's name (`esme@host:port/mode#n: `), which numbers every attempt.
      const reason = engine.counters.lastError?.replace(/^\S+#\d+: /, "")
      if (outcome.wasBound) reported = undefined
      else if (outcome.bindStatus === undefined && reason !== reported) {
        reported = reason
        yield* Effect.logWarning("smpp connection failed, retrying").pipe(
          Effect.annotateLogs({ connection: slot.mode, error: engine.counters.lastError ?? "" })
        )
      }
      let delay: number
      if (slot.skipBackoff) {
        slot.skipBackoff = false
        attempt = 0
        delay = 0
      } else if (outcome.bindStatus !== undefined && SLOW_RETRY_BIND_STATUSES.has(outcome.bindStatus)) {
        delay = maxMs / 2 + Math.random() * maxMs / 2
      } else {
        if (outcome.wasBound) attempt = 0
        delay = backoffMs(attempt, initialMs, maxMs)
        attempt++
      }
      yield* sleepUnlessWoken(slot, delay)
    }
  })

/**
 * Starts the session: background fibers connect and reconnect until the scope closes. Closing the scope unbinds
 * (waiting up to ~2 s for unbind_resp), closes the sockets and fails in-flight submits with `ConnectionLost`.
 */
export const make = Effect.fn("SmppSession.make")(
  function*(options: SessionOptions): Effect.fn.Return<SmppSession, never, Scope.Scope> {
    useRawMessageBytes()
    const runFork = yield* FiberSet.makeRuntime<never, unknown, unknown>()
    const engine = new Engine({
      ...options,
      responseTimeoutMs: options.responseTimeoutMs ?? 10_000,
      enquireLinkIntervalMs: options.enquireLinkIntervalMs ?? 30_000,
      enquireLinkTimeoutMs: options.enquireLinkTimeoutMs ?? 10_000,
      reconnect: options.reconnect ?? { initialMs: 1_000, maxMs: 60_000 },
      connectTimeoutMs: options.connectTimeoutMs ?? options.responseTimeoutMs ?? 10_000
    }, runFork)
    const modes: ReadonlyArray<ConnectionMode> = options.bindMode === "pair"
      ? ["transmitter", "receiver"]
      : [options.bindMode]
    for (const mode of modes) {
      const slot: Slot = { mode, link: undefined, wake: undefined, skipBackoff: false }
      engine.slots.push(slot)
      yield* Effect.forkScoped(connectionLoop(engine, slot))
    }
    // Added last, so it runs first on scope close: unbind while the loops still exist but no longer reconnect.
    yield* Effect.addFinalizer(() => Effect.callback<void>((resume) => engine.shutdown(() => resume(Effect.void))))

    const session: SmppSession = {
      submit: (req) =>
        Effect.callback<SubmitResult, SubmitError>((resume) => {
          const op = engine.submit(req, resume)
          return op === undefined ? undefined : Effect.sync(() => engine.cancel(op))
        }),
      state: Effect.sync(() => engine.snapshot()),
      rebind: Effect.callback<void>((resume) => {
        for (const slot of engine.slots) {
          if (slot.link !== undefined && !slot.link.finished) slot.skipBackoff = true
          else slot.wake?.()
        }
        engine.closeAll(Math.min(UNBIND_WAIT_MS, engine.options.responseTimeoutMs), () => resume(Effect.void))
      })
    }
    return session
  }
)
