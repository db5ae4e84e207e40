/**
 * An SMPP v3.4 server at the PDU level (the gateway's SMPP front, docs/smpp-server.md): TCP or TLS listener, framing,
 * bind states, a window of submits per connection, timers, deliver_sm with its response, graceful stop. What a bind
 * or a submit means is the handler's (pipeline/SmppFront.ts); this module knows nothing of apps or the pipeline.
 *
 * Invariants:
 * - Framing is ours, not npm `smpp`'s (whose reader stalls forever on a command_length of 0 and whose size limit is
 *   process-wide): a command_length below 16 or above `maxPduBytes`, or a PDU the codec cannot decode, is answered
 *   generic_nack and the connection closed; an unknown command_id is answered generic_nack ESME_RINVCMDID and the
 *   connection stays. Nothing a peer sends can throw out of a socket callback, so one connection never affects another.
 * - Window: at most `window` submit_sm per connection are with the handler at once. While the window is full the
 *   connection's reader stops (the socket is paused; TCP pushes back on the ESME) and resumes as answers go out.
 *   Answers go out as each submit completes, possibly out of order, each with its request's sequence_number.
 * - Timers: a connection not bound within `bindTimeoutMs` is closed; one silent for `enquireLinkIntervalMs` is sent
 *   enquire_link and closed if no PDU arrives within `enquireLinkTimeoutMs`; a deliver_sm unanswered within
 *   `responseTimeoutMs` is reported as a timeout.
 * - Stop: no new connections; bound ones are sent unbind; submits in flight are answered; after `graceMs` whatever
 *   is left is destroyed.
 */
import { createServer as createTcpServer } from "node:net"
import type { Server as NetServer, Socket } from "node:net"
import { createServer as createTlsServer } from "node:tls"
import smpp from "smpp"
import type { PDU, PduFields } from "smpp"
import { CommandStatus } from "./CommandStatus.ts"
import { useRawMessageBytes } from "./Session.ts"
import { coalesceWrites } from "./WriteCoalescing.ts"

export type BindMode = "transmitter" | "receiver" | "transceiver"

export interface ServerOptions {
  readonly host: string
  /** 0 takes a free port (tests); the bound one is in `SmppServerHandle.port`. */
  readonly port: number
  /** PEM contents: the listener speaks TLS with them. */
  readonly tls?: { readonly key: string | Buffer; readonly cert: string | Buffer } | undefined
  /** Connections at once; more are closed as they arrive. */
  readonly maxConnections: number
  /** submit_sm with the handler at once, per connection. */
  readonly window: number
  readonly maxPduBytes: number
  readonly bindTimeoutMs: number
  readonly enquireLinkIntervalMs: number
  readonly enquireLinkTimeoutMs: number
  /** How long a deliver_sm waits for its deliver_sm_resp. */
  readonly responseTimeoutMs: number
}

export interface BindRequest {
  readonly mode: BindMode
  readonly systemId: string
  readonly password: string
  readonly systemType: string
  readonly interfaceVersion: number
}

/** How a bind ends: bound with the handler's own state for the connection, or refused with a command_status. */
export type BindOutcome<B> =
  | { readonly _tag: "Bound"; readonly binding: B }
  | { readonly _tag: "Refused"; readonly status: number; readonly reason: string }

/** What a submit_sm is answered with. */
export interface SubmitAnswer {
  readonly status: number
  readonly messageId?: string
}

/** Why a deliver_sm got no status: nothing was sent (closed), or no answer came in time (timeout). */
export type DeliverFailure = "closed" | "timeout"

/** One connection as the handler sees it. */
export interface Connection<B> {
  readonly id: string
  /** The peer's address as the socket gives it (an IPv4-mapped IPv6 address stays so). */
  readonly peer: string
  readonly mode: BindMode | undefined
  readonly binding: B | undefined
  /** Bound as receiver or transceiver, not unbinding: it may be sent deliver_sm. */
  readonly canReceive: boolean
  /** Sends a deliver_sm; calls back with the deliver_sm_resp's command_status, or why there is none. */
  deliver(fields: PduFields, done: (result: number | DeliverFailure) => void): void
  /** unbind, then close (or close at once when not bound). */
  unbind(): void
}

export interface ServerHandler<B> {
  /** Decides a bind; answered with `bind_*_resp` once the callback runs. */
  readonly bind: (connection: Connection<B>, request: BindRequest, done: (outcome: BindOutcome<B>) => void) => void
  /** Handles a submit_sm of a bound transmitter or transceiver; answered once the callback runs. */
  readonly submit: (connection: Connection<B>, binding: B, pdu: PDU, done: (answer: SubmitAnswer) => void) => void
  /** After a bind_resp OK went out: the connection may be used. */
  readonly bound?: (connection: Connection<B>) => void
  /** The connection closed (bound or not); deliver_sm in flight were called back `closed`. */
  readonly closed?: (connection: Connection<B>) => void
  /** PDUs read and answered, for metrics: the command and the status answered (or the response's own status). */
  readonly pdu?: (command: string, status: number) => void
  /** A connection closed by the server before it bound: over maxConnections, or not bound in time. */
  readonly refusedConnection?: (reason: "max_connections" | "bind_timeout") => void
}

export interface SmppServerHandle {
  readonly port: number
  /** Connections open now. */
  readonly connections: () => number
  /** Stops: no new connections, unbind to bound ones, submits in flight answered; destroyed after `graceMs`. */
  readonly stop: (graceMs: number) => Promise<void>
}

const {
  ESME_ROK,
  ESME_RINVCMDLEN,
  ESME_RINVCMDID,
  ESME_RINVBNDSTS,
  ESME_RALYBND,
  ESME_RSYSERR
} = CommandStatus

const HEADER_BYTES = 16
const GENERIC_NACK = 0x80000000

const bindModes: Record<string, BindMode> = {
  bind_transmitter: "transmitter",
  bind_receiver: "receiver",
  bind_transceiver: "transceiver"
}

let connectionCounter = 0

class ServerConnection<B> implements Connection<B> {
  readonly id: string
  readonly peer: string
  mode: BindMode | undefined = undefined
  binding: B | undefined = undefined
  private bindPending = false
  private unbinding = false
  private closed = false
  private inflight = 0
  private readingPaused = false
  private buffer: Buffer = Buffer.alloc(0)
  private seq = 0
  private lastHeardAt = Date.now()
  private enquireSeq = -1
  private enquireTimer: ReturnType<typeof setTimeout> | undefined = undefined
  private readonly bindTimer: ReturnType<typeof setTimeout>
  private readonly idleTimer: ReturnType<typeof setInterval>
  private readonly delivers = new Map<number, { readonly done: (result: number | DeliverFailure) => void; readonly timer: ReturnType<typeof setTimeout> }>()
  private readonly socket: Socket
  private readonly server: Engine<B>

  constructor(server: Engine<B>, socket: Socket) {
    this.server = server
    this.socket = socket
    this.id = `smpp-${++connectionCounter}`
    this.peer = socket.remoteAddress ?? ""
    const o = server.options
    socket.setNoDelay(true)
    coalesceWrites(socket)
    socket.on("data", this.onData)
    socket.on("error", () => socket.destroy())
    socket.on("close", this.onClose)
    this.bindTimer = setTimeout(() => {
      if (this.mode !== undefined) return
      server.handler.refusedConnection?.("bind_timeout")
      this.socket.destroy()
    }, o.bindTimeoutMs)
    this.idleTimer = setInterval(this.checkIdle, Math.max(100, Math.min(o.enquireLinkIntervalMs, 5_000)))
  }

  get canReceive(): boolean {
    return !this.closed && !this.unbinding && (this.mode === "receiver" || this.mode === "transceiver")
  }

  deliver(fields: PduFields, done: (result: number | DeliverFailure) => void): void {
    if (!this.canReceive || !this.socket.writable) {
      done("closed")
      return
    }
    const seq = this.nextSeq()
    let pdu: PDU
    try {
      pdu = new smpp.PDU("deliver_sm", { ...fields, sequence_number: seq })
      this.write(pdu)
    } catch {
      // A field the codec cannot encode: nothing went out.
      done("closed")
      return
    }
    const timer = setTimeout(() => {
      if (this.delivers.delete(seq)) done("timeout")
    }, this.server.options.responseTimeoutMs)
    this.delivers.set(seq, { done, timer })
  }

  unbind(): void {
    if (this.closed) return
    if (this.mode === undefined || this.unbinding || !this.socket.writable) {
      this.socket.destroy()
      return
    }
    this.unbinding = true
    this.write(new smpp.PDU("unbind", { sequence_number: this.nextSeq() }))
  }

  destroy(): void {
    this.socket.destroy()
  }

  private nextSeq(): number {
    this.seq = this.seq >= 0x7fffffff ? 1 : this.seq + 1
    return this.seq
  }

  private write(pdu: PDU): void {
    if (this.closed || !this.socket.writable) return
    this.socket.write(pdu.toBuffer())
  }

  /** Answers a request with `status` (a response of the request's own command, generic_nack for an unknown one). */
  private respond(pdu: PDU, status: number, fields: PduFields = {}): void {
    this.server.handler.pdu?.(pdu.command, status)
    const resp = status === ESME_ROK ? pdu.response(fields) : pdu.response({ command_status: status })
    this.write(resp)
  }

  /** generic_nack for what could not be read, then close once it is written. */
  private nackAndClose(sequence: number, status: number, command: string): void {
    this.server.handler.pdu?.(command, status)
    if (!this.closed && this.socket.writable) {
      this.socket.end(new smpp.PDU("generic_nack", { command_status: status, sequence_number: sequence }).toBuffer())
    }
    this.buffer = Buffer.alloc(0)
    this.closed = true
    // end() waits for the peer's FIN: a peer that never closes is cut after a moment.
    setTimeout(() => this.socket.destroy(), 1_000).unref()
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.closed) return
    this.lastHeardAt = Date.now()
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk])
    this.drain()
  }

  /** Reads every whole PDU buffered, unless the window is full. */
  private drain(): void {
    const max = this.server.options.maxPduBytes
    while (!this.closed && this.buffer.length >= 4) {
      if (this.inflight >= this.server.options.window) {
        if (!this.readingPaused) {
          this.readingPaused = true
          this.socket.pause()
        }
        return
      }
      const length = this.buffer.readUInt32BE(0)
      if (length < HEADER_BYTES || length > max) {
        const seq = this.buffer.length >= HEADER_BYTES ? this.buffer.readUInt32BE(12) : 0
        this.nackAndClose(seq, ESME_RINVCMDLEN, "invalid")
        return
      }
      if (this.buffer.length < length) break
      const bytes = this.buffer.subarray(0, length)
      this.buffer = this.buffer.length === length ? Buffer.alloc(0) : this.buffer.subarray(length)
      let pdu: PDU
      try {
        pdu = new smpp.PDU(bytes)
      } catch {
        this.nackAndClose(bytes.readUInt32BE(12), ESME_RINVCMDLEN, "invalid")
        return
      }
      try {
        this.dispatch(pdu)
      } catch {
        // A handler bug or a value the codec refuses to encode: this connection only.
        this.nackAndClose(pdu.sequence_number, ESME_RSYSERR, pdu.command)
        return
      }
    }
    if (this.readingPaused) {
      this.readingPaused = false
      this.socket.resume()
    }
  }

  private dispatch(pdu: PDU): void {
    if (pdu.command === "unknown") {
      if ((pdu.command_id & GENERIC_NACK) !== 0) return
      this.respond(pdu, ESME_RINVCMDID)
      return
    }
    const mode = bindModes[pdu.command]
    if (mode !== undefined) {
      this.onBind(pdu, mode)
      return
    }
    switch (pdu.command) {
      case "submit_sm":
        this.onSubmit(pdu)
        return
      case "deliver_sm_resp":
        this.onDeliverResp(pdu)
        return
      case "enquire_link":
        this.respond(pdu, ESME_ROK)
        return
      case "enquire_link_resp":
        if (pdu.sequence_number === this.enquireSeq) {
          this.enquireSeq = -1
          clearTimeout(this.enquireTimer)
        }
        return
      case "unbind":
        this.unbinding = true
        this.server.handler.pdu?.(pdu.command, ESME_ROK)
        this.socket.end(pdu.response().toBuffer())
        return
      case "unbind_resp":
        this.socket.end()
        return
      case "generic_nack":
        this.server.handler.pdu?.(pdu.command, pdu.command_status)
        this.onDeliverResp(pdu)
        return
      default:
        // deliver_sm from an ESME, data_sm, query_sm, replace_sm, cancel_sm, submit_multi...: not served here.
        if (pdu.isResponse()) return
        this.respond(pdu, pdu.command === "deliver_sm" ? ESME_RINVBNDSTS : ESME_RINVCMDID)
    }
  }

  private onBind(pdu: PDU, mode: BindMode): void {
    if (this.mode !== undefined || this.bindPending) {
      this.respond(pdu, ESME_RALYBND)
      return
    }
    this.bindPending = true
    const request: BindRequest = {
      mode,
      systemId: pdu.system_id ?? "",
      password: pdu.password ?? "",
      systemType: pdu.system_type ?? "",
      interfaceVersion: pdu.interface_version ?? 0
    }
    this.server.handler.bind(this, request, (outcome) => {
      this.bindPending = false
      if (this.closed) {
        // Closed while the bind was decided: the handler learns of the binding it made, and that it is gone.
        if (outcome._tag === "Bound") {
          this.mode = mode
          this.binding = outcome.binding
          this.server.handler.closed?.(this)
        }
        return
      }
      if (outcome._tag === "Refused") {
        this.respond(pdu, outcome.status)
        return
      }
      clearTimeout(this.bindTimer)
      this.mode = mode
      this.binding = outcome.binding
      this.respond(pdu, ESME_ROK, { system_id: this.server.systemId })
      this.server.handler.bound?.(this)
    })
  }

  private onSubmit(pdu: PDU): void {
    const binding = this.binding
    if (binding === undefined || this.mode === "receiver" || this.unbinding) {
      this.respond(pdu, ESME_RINVBNDSTS)
      return
    }
    this.inflight++
    this.server.inflight++
    this.server.handler.submit(this, binding, pdu, (answer) => {
      this.inflight--
      this.server.inflight--
      this.server.settled()
      if (!this.closed) {
        if (answer.status === ESME_ROK) this.respond(pdu, ESME_ROK, { message_id: answer.messageId ?? "" })
        else this.respond(pdu, answer.status)
      }
      if (this.readingPaused) this.drain()
    })
  }

  private onDeliverResp(pdu: PDU): void {
    const waiting = this.delivers.get(pdu.sequence_number)
    if (waiting === undefined) return
    this.delivers.delete(pdu.sequence_number)
    clearTimeout(waiting.timer)
    if (pdu.command === "deliver_sm_resp") this.server.handler.pdu?.(pdu.command, pdu.command_status)
    waiting.done(pdu.command_status)
  }

  /** A connection silent for the interval is asked whether it is there; no PDU at all within the timeout closes it. */
  private readonly checkIdle = (): void => {
    const o = this.server.options
    if (this.closed || this.enquireSeq !== -1 || this.mode === undefined) return
    if (Date.now() - this.lastHeardAt < o.enquireLinkIntervalMs) return
    this.enquireSeq = this.nextSeq()
    const asked = Date.now()
    this.write(new smpp.PDU("enquire_link", { sequence_number: this.enquireSeq }))
    this.enquireTimer = setTimeout(() => {
      if (this.lastHeardAt < asked) this.socket.destroy()
      else this.enquireSeq = -1
    }, o.enquireLinkTimeoutMs)
  }

  private readonly onClose = (): void => {
    this.closed = true
    clearTimeout(this.bindTimer)
    clearTimeout(this.enquireTimer)
    clearInterval(this.idleTimer)
    const waiting = [...this.delivers.values()]
    this.delivers.clear()
    for (const w of waiting) {
      clearTimeout(w.timer)
      w.done("closed")
    }
    this.server.connections.delete(this)
    this.server.handler.closed?.(this)
    this.server.settled()
  }
}

class Engine<B> {
  readonly options: ServerOptions
  readonly handler: ServerHandler<B>
  readonly systemId: string
  readonly connections = new Set<ServerConnection<B>>()
  readonly listener: NetServer
  inflight = 0
  private stopping = false
  private readonly waiters: Array<() => void> = []

  constructor(options: ServerOptions, handler: ServerHandler<B>, systemId: string) {
    this.options = options
    this.handler = handler
    this.systemId = systemId
    this.listener = options.tls === undefined
      ? createTcpServer(this.accept)
      : createTlsServer({ key: options.tls.key, cert: options.tls.cert }, this.accept)
  }

  private readonly accept = (socket: Socket): void => {
    socket.on("error", () => socket.destroy())
    if (this.stopping || this.connections.size >= this.options.maxConnections) {
      this.handler.refusedConnection?.("max_connections")
      socket.destroy()
      return
    }
    this.connections.add(new ServerConnection(this, socket))
  }

  /** A submit answered or a connection closed: a stop waiting for the last of them may finish. */
  settled(): void {
    if (this.inflight > 0 || this.connections.size > 0) return
    for (const w of this.waiters.splice(0)) w()
  }

  stop(graceMs: number): Promise<void> {
    this.stopping = true
    return new Promise((resolve) => {
      const listenerClosed = new Promise<void>((done) => this.listener.close(() => done()))
      for (const c of this.connections) c.unbind()
      // Every submit answered and every peer gone (each answers the unbind and closes), or the grace is over.
      const drained = new Promise<void>((done) => {
        if (this.inflight === 0 && this.connections.size === 0) done()
        else this.waiters.push(done)
      })
      const timer = setTimeout(() => {
        for (const c of this.connections) c.destroy()
      }, graceMs)
      void drained.then(() => listenerClosed).then(() => {
        clearTimeout(timer)
        resolve()
      })
    })
  }
}

/** Starts listening; the handle stops it. `systemId` is what bind_resp names the server. */
export const listen = <B>(options: ServerOptions, handler: ServerHandler<B>, systemId = "SMSGW"): Promise<SmppServerHandle> => {
  useRawMessageBytes()
  const engine = new Engine(options, handler, systemId)
  return new Promise((resolve, reject) => {
    const listener = engine.listener
    const onError = (error: Error) => reject(error)
    listener.once("error", onError)
    listener.listen(options.port, options.host, () => {
      listener.off("error", onError)
      // A later listener error (EMFILE on accept) must not crash the process.
      listener.on("error", () => undefined)
      const address = listener.address()
      resolve({
        port: typeof address === "object" && address !== null ? address.port : options.port,
        connections: () => engine.connections.size,
        stop: (graceMs) => engine.stop(graceMs)
      })
    })
  })
}
