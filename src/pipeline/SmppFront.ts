/**
 * The SMPP server front (docs/smpp-server.md): ESMEs bind with their app's SMPP credentials and submit through
 * `Gateway.submit`, as REST and gRPC do; receipts and inbound messages go back to them as deliver_sm from the callback
 * outbox. The PDU level (framing, window, timers) is smpp/Server.ts; this module decides what binds and submits mean.
 *
 * - Bind: throttled per (systemId, peer address) and per peer address (auth/LoginThrottle.ts); an unknown systemId
 *   and a wrong password are both ESME_RINVPASWD (a guesser learns nothing of which systemIds exist); the password is
 *   compared with the stored hash in constant time; an app disabled, or a peer outside the app's allow-list, is
 *   ESME_RBINDFAIL; more than `maxConnectionsPerApp` binds of one app on this node is ESME_RALYBND.
 * - Submit: the PDU becomes a `SubmitMessage` (addresses and text decoded by data_coding), then `Gateway.submit` as the
 *   app; every refusal has its command_status (`statusOf`). A message asking for receipts (registered_delivery) is
 *   accepted with the callback target `smpp:`, so the store writes its receipts to the outbox with each move.
 * - Receipts: `smpp:` rows of the apps with a receiver bound on this node are claimed (the outbox's lease, oldest per
 *   message first, a share per app) and sent as deliver_sm; deliver_sm_resp OK deletes the row, anything else retries
 *   it with the callbacks' backoff; rows no receiver takes within `maxAgeMs` die, as HTTP callbacks do.
 */
import { Context, Effect, Exit, Layer, Option, Result, Schema } from "effect"
import { readFileSync } from "node:fs"
import type { App, Submitter } from "../domain/Account.ts"
import { AccountStore } from "../auth/AccountStore.ts"
import { allows, parseAllowList } from "../auth/IpAllowList.ts"
import { LoginThrottle } from "../auth/LoginThrottle.ts"
import { verifyPassword } from "../auth/Passwords.ts"
import { systemIdKey } from "../auth/SmppCredentials.ts"
import { smppCallbackUrl, smppPartsOf } from "../domain/Callback.ts"
import type { CallbackEvents } from "../domain/Callback.ts"
import { messageWithCauses } from "../domain/Errors.ts"
import { fieldIssues } from "../domain/FieldIssues.ts"
import { MessageStatus, SubmitMessage } from "../domain/Message.ts"
import { parseSender } from "../domain/Msisdn.ts"
import { SmppServerMetrics } from "../observability/Metrics.ts"
import type { SmppBindRefusal } from "../observability/Metrics.ts"
import { CommandStatus } from "../smpp/CommandStatus.ts"
import { concatOf, decodeUcs2, segment } from "../smpp/Encoding.ts"
import type { ConcatInfo } from "../smpp/Encoding.ts"
import { decodeGsm7, encodeGsm7 } from "../smpp/Gsm7.ts"
import { formatReceipt, outgoingStateOf } from "../smpp/Receipt.ts"
import { listen } from "../smpp/Server.ts"
import type { BindMode, BindOutcome, BindRequest, Connection, DeliverFailure, SubmitAnswer } from "../smpp/Server.ts"
import type { PDU, PduFields } from "smpp"
import { CallbackStore } from "../storage/CallbackStore.ts"
import type { DueCallback } from "../storage/CallbackStore.ts"
import { afterFailure, leaseMs } from "./Callbacks.ts"
import type { Backoff } from "./Callbacks.ts"
import { Gateway } from "./Gateway.ts"
import type { SubmitError } from "./Gateway.ts"

export interface SmppFrontOptions {
  readonly host: string
  readonly port: number
  readonly tls?: { readonly certFile: string; readonly keyFile: string } | undefined
  readonly maxConnections: number
  readonly maxConnectionsPerApp: number
  readonly window: number
  readonly maxPduBytes: number
  readonly bindTimeoutMs: number
  readonly enquireLinkIntervalMs: number
  readonly enquireLinkTimeoutMs: number
  readonly responseTimeoutMs: number
  readonly submitTimeoutMs: number
  readonly shutdownGraceMs: number
  /** How long the parts of a concatenated submit wait for the rest (then each is answered ESME_RSUBMITFAIL). */
  readonly concatTimeoutMs: number
  /** The outbox's side: the callbacks' poll interval, batch, share per app, retry window and backoff. */
  readonly receipts: {
    readonly pollIntervalMs: number
    readonly batchSize: number
    readonly concurrencyPerApp: number
    readonly maxAgeMs: number
    readonly backoff: Backoff
  }
}

/** What a bound connection stands for: its app, as read at bind and re-read every `appRecheckMs`. */
interface Binding {
  readonly systemId: string
  app: App
  checkedAt: number
}

/** How often a bound app is read again (disabled, deleted, its limits changed) while it submits. */
const appRecheckMs = 30_000
/** How often `smpp:` rows that no receiver took in their retry window are made dead. */
const expireIntervalMs = 60_000

const {
  ESME_ROK,
  ESME_RINVMSGLEN,
  ESME_RINVBNDSTS,
  ESME_RALYBND,
  ESME_RSYSERR,
  ESME_RINVSRCADR,
  ESME_RINVDSTADR,
  ESME_RBINDFAIL,
  ESME_RINVPASWD,
  ESME_RINVESMCLASS,
  ESME_RSUBMITFAIL,
  ESME_RTHROTTLED,
  ESME_RINVSCHED,
  ESME_RX_T_APPN,
  ESME_RX_R_APPN
} = CommandStatus

const ESM_CLASS_UDHI = 0x40
const ESM_CLASS_RECEIPT = 0x04
const ESM_CLASS_INTERMEDIATE = 0x20

/**
 * The command_status of each refusal of the pipeline (docs/smpp-server.md keeps the table): invalid fields by their
 * field, rate limits ESME_RTHROTTLED, a blocked recipient permanent (ESME_RX_R_APPN), a cap or quiet hours temporary
 * (ESME_RX_T_APPN), outages ESME_RSYSERR (retry).
 */
export const statusOf = (error: SubmitError): number => {
  switch (error._tag) {
    case "InvalidField":
      return error.field === "text"
        ? ESME_RINVMSGLEN
        : error.field === "to"
        ? ESME_RINVDSTADR
        : error.field === "from"
        ? ESME_RINVSRCADR
        : ESME_RSUBMITFAIL
    case "RateLimited":
      return ESME_RTHROTTLED
    case "NoRoute":
      return ESME_RINVDSTADR
    case "PolicyRejected":
      return error.reason === "frequency_cap" || error.reason === "quiet_hours" ? ESME_RX_T_APPN : ESME_RX_R_APPN
    case "LimiterUnavailable":
    case "PolicyUnavailable":
    case "StoreUnavailable":
    case "IdempotencyKeyInFlight":
    case "IdempotencyKeyReused":
      return ESME_RSYSERR
  }
}

/** The text of a short_message by data_coding: 0 GSM 03.38, 1 IA5 and 3 Latin-1, 8 UCS-2; undefined for others. */
export const textOf = (bytes: Uint8Array, dataCoding: number): string | undefined => {
  switch (dataCoding) {
    case 0x00:
      return decodeGsm7(bytes)
    case 0x01:
    case 0x03:
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1")
    case 0x08:
      return decodeUcs2(bytes)
    default:
      // Coding group 1111: bit 2 clear is the GSM default alphabet with a message class; set is 8-bit data.
      return (dataCoding & 0xf4) === 0xf0 ? decodeGsm7(bytes) : undefined
  }
}

/** The moves a submit asks to hear of (registered_delivery): none, the final one, or all (the intermediate bit 0x10). */
export const eventsOf = (registeredDelivery: number): CallbackEvents | undefined =>
  (registeredDelivery & 0x10) !== 0 ? "all" : (registeredDelivery & 0x03) !== 0 ? "final" : undefined

/** A submit_sm as the pipeline's input — with its place in a concatenated message when it is a part — or the status that refuses it. */
export const submitInput = (
  pdu: PDU
): Result.Result<{ readonly input: Record<string, unknown>; readonly concat?: ConcatInfo | undefined }, number> => {
  if ((pdu.schedule_delivery_time ?? "") !== "") return Result.fail(ESME_RINVSCHED)
  const short = pdu.short_message instanceof Uint8Array ? pdu.short_message : new Uint8Array(0)
  let bytes = short.length === 0 && pdu.message_payload instanceof Uint8Array ? pdu.message_payload : short
  let concat: ConcatInfo | undefined
  if (((pdu.esm_class ?? 0) & ESM_CLASS_UDHI) !== 0) {
    // A part of a concatenated message (its UDH names it): the text after the header. Any other UDH is refused.
    concat = concatOf(bytes, true)
    if (concat === undefined) return Result.fail(ESME_RINVESMCLASS)
    bytes = bytes.subarray(1 + (bytes[0] ?? 0))
  }
  if (bytes.length === 0) return Result.fail(ESME_RINVMSGLEN)
  const dataCoding = pdu.data_coding ?? 0
  const text = textOf(bytes, dataCoding)
  if (text === undefined) return Result.fail(ESME_RSUBMITFAIL)
  const destination = pdu.destination_addr ?? ""
  const source = pdu.source_addr ?? ""
  return Result.succeed({
    input: {
      to: destination.startsWith("+") ? destination : `+${destination}`,
      // An international number (TON 1) is given as digits: the pipeline reads it with its "+".
      from: pdu.source_addr_ton === 1 && /^[0-9]+$/.test(source) ? `+${source}` : source,
      text,
      encoding: dataCoding === 0x08 ? "ucs2" : "auto"
    },
    concat
  })
}

/** The id a part of a concatenated submit is answered with (and its receipt names): the message's, and its number. */
export const partId = (messageId: string, seq: number) => `${messageId}-${seq}`

const decodeSubmit = Schema.decodeUnknownEffect(SubmitMessage)

/** The first field a decode refused, as the status that names it. */
const inputStatus = (field: string | undefined): number =>
  field === "to" ? ESME_RINVDSTADR : field === "from" ? ESME_RINVSRCADR : field === "text" ? ESME_RINVMSGLEN : ESME_RSUBMITFAIL

const submitterOf = (
  app: App,
  events: CallbackEvents | undefined,
  parts?: { readonly total: number; readonly receipts: ReadonlyArray<number> }
): Submitter => ({
  orgId: app.orgId,
  appId: app.id,
  appLimits: app.limits,
  messageClass: app.messageClass,
  // Over SMPP, receipts go back over SMPP: the app's HTTP callback is for its REST and gRPC messages.
  ...(events !== undefined ? { callback: { url: smppCallbackUrl(parts), events } } : {}),
  canSignCallbacks: app.callbackSecretPrefix !== undefined
})

const StatusBody = Schema.fromJsonString(Schema.Struct({
  type: Schema.Literal("message.status"),
  messageId: Schema.String,
  status: MessageStatus,
  at: Schema.String,
  to: Schema.String,
  from: Schema.optionalKey(Schema.String),
  acceptedAt: Schema.optionalKey(Schema.String)
}))

/** What the inbound storage writes for a mobile-originated message owed to an ESME. */
const ReceivedBody = Schema.fromJsonString(Schema.Struct({
  type: Schema.Literal("message.received"),
  inboundId: Schema.String,
  from: Schema.String,
  to: Schema.String,
  text: Schema.String,
  receivedAt: Schema.String,
  appId: Schema.String
}))

const decodeStatusBody = Schema.decodeUnknownOption(StatusBody)
const decodeReceivedBody = Schema.decodeUnknownOption(ReceivedBody)

const plain = (address: string) => (address.startsWith("+") ? address.slice(1) : address)

const timeOf = (iso: string | undefined, fallback: number): number => {
  const ms = iso === undefined ? Number.NaN : Date.parse(iso)
  return Number.isFinite(ms) ? ms : fallback
}

const common: PduFields = {
  service_type: "",
  protocol_id: 0,
  priority_flag: 0,
  schedule_delivery_time: "",
  validity_period: "",
  registered_delivery: 0,
  replace_if_present_flag: 0,
  sm_default_msg_id: 0
}

/**
 * The deliver_sm PDUs one outbox row is sent as, or undefined for a body we cannot read: a receipt — one per part that
 * asked for one when the ESME sent the message in parts (`url` names them; each part was answered with its own id) — or an inbound
 * message (a long text: several parts).
 */
export const deliverFieldsOf = (body: string, reference: number, url = ""): ReadonlyArray<PduFields> | undefined => {
  const status = decodeStatusBody(body)
  if (Option.isSome(status)) {
    const b = status.value
    const parts = smppPartsOf(url)
    const ids = parts === undefined ? [b.messageId] : parts.receipts.map((seq) => partId(b.messageId, seq))
    return ids.map((id) => receiptFields(b, id))
  }
  const received = decodeReceivedBody(body)
  if (Option.isNone(received)) return undefined
  return inboundFields(received.value, reference)
}

const receiptFields = (b: typeof StatusBody.Type, id: string): PduFields => {
  const state = outgoingStateOf(b.status)
  const done = timeOf(b.at, Date.now())
  const text = formatReceipt({ id, stat: state.stat, submittedAt: timeOf(b.acceptedAt, done), doneAt: done })
  const sender = b.from === undefined ? undefined : parseSender(b.from)
  return {
    ...common,
    source_addr_ton: 1,
    source_addr_npi: 1,
    source_addr: plain(b.to),
    dest_addr_ton: sender?.ton ?? 0,
    dest_addr_npi: sender?.npi ?? 0,
    destination_addr: sender?.addr ?? b.from ?? "",
    esm_class: state.final ? ESM_CLASS_RECEIPT : ESM_CLASS_INTERMEDIATE,
    data_coding: 0,
    short_message: encodeGsm7(text),
    receipted_message_id: id,
    message_state: state.messageState
  }
}

const inboundFields = (mo: typeof ReceivedBody.Type, reference: number): ReadonlyArray<PduFields> | undefined => {
  const parts = segment(mo.text, { encoding: "auto", reference })
  if (Result.isFailure(parts)) return undefined
  const sender = parseSender(mo.from)
  return parts.success.parts.map((part) => ({
    ...common,
    source_addr_ton: sender?.ton ?? 1,
    source_addr_npi: sender?.npi ?? 1,
    source_addr: sender?.addr ?? plain(mo.from),
    dest_addr_ton: 0,
    dest_addr_npi: 0,
    destination_addr: plain(mo.to),
    esm_class: part.udhi ? ESM_CLASS_UDHI : 0,
    data_coding: parts.success.dataCoding,
    short_message: part.shortMessage
  }))
}

/** The running front: where ESMEs reach it, and what is bound on this node. */
export class SmppServer extends Context.Service<SmppServer, {
  readonly address: { readonly host: string; readonly port: number }
  readonly tls: boolean
  /** Binds open on this node, by app and mode. */
  readonly binds: () => ReadonlyArray<{ readonly appId: string; readonly mode: BindMode }>
}>()("smsgw/pipeline/SmppServer") {
  static readonly layer = (options: SmppFrontOptions) => Layer.effect(SmppServer, make(options))
}

type Refusal = { readonly _tag: "Refused"; readonly status: number; readonly reason: SmppBindRefusal }
type Decision = { readonly _tag: "Bound"; readonly binding: Binding } | Refusal

const refuse = (status: number, reason: SmppBindRefusal): Refusal => ({ _tag: "Refused", status, reason })

const make = (options: SmppFrontOptions) =>
  Effect.gen(function*() {
    const gateway = yield* Gateway
    const accounts = yield* AccountStore
    const throttle = yield* LoginThrottle
    const outbox = yield* CallbackStore
    const metrics = yield* SmppServerMetrics
    const context = yield* Effect.context<never>()
    const runCallback = Effect.runCallbackWith(context)

    /** Runs an effect from socket code; its answer goes to `done`, a defect is logged and answered `fallback`. */
    const runThen = <A>(effect: Effect.Effect<A>, done: (a: A) => void, fallback: A) =>
      void runCallback(effect, {
        onExit: (exit) => {
          if (Exit.isSuccess(exit)) return done(exit.value)
          done(fallback)
          runCallback(Effect.logError("SMPP front: handling a PDU failed", exit.cause))
        }
      })

    /** Binds of this node: every one by app (the per-app cap), and the receivers by app (where receipts go). */
    const byApp = new Map<string, Set<Connection<Binding>>>()
    /** Binds decided but not yet answered, by app: counted against the cap so parallel binds cannot pass it together. */
    const pendingByApp = new Map<string, number>()
    const modes: Record<BindMode, number> = { transmitter: 0, receiver: 0, transceiver: 0 }
    let nextReceiver = 0

    const bindsOf = (appId: string) => (byApp.get(appId)?.size ?? 0) + (pendingByApp.get(appId) ?? 0)
    const unpend = (appId: string) => {
      const n = (pendingByApp.get(appId) ?? 1) - 1
      if (n <= 0) pendingByApp.delete(appId)
      else pendingByApp.set(appId, n)
    }

    const receiversOf = (appId: string): Array<Connection<Binding>> =>
      [...(byApp.get(appId) ?? [])].filter((c) => c.canReceive)

    const receivingApps = (): Array<string> => [...byApp.keys()].filter((appId) => receiversOf(appId).length > 0)

    const decideBind = Effect.fnUntraced(function*(connection: Connection<Binding>, request: BindRequest) {
      const key = { account: `smpp:${systemIdKey(request.systemId)}`, ip: connection.peer }
      const allowed = yield* throttle.check(key).pipe(Effect.as(true), Effect.catchTag("LoginThrottled", () => Effect.succeed(false)))
      if (!allowed) return refuse(ESME_RBINDFAIL, "throttled")
      const found = yield* accounts.findSmppLogin(request.systemId).pipe(Effect.result)
      if (Result.isFailure(found)) {
        yield* throttle.recordSuccess(key)
        yield* Effect.logError("SMPP front: the account store failed during a bind").pipe(
          Effect.annotateLogs({ error: found.failure.message })
        )
        return refuse(ESME_RSYSERR, "unavailable")
      }
      const login = Option.getOrUndefined(found.success)
      // An unknown systemId costs one hash check too, and is answered as a wrong password.
      const matches = yield* verifyPassword(request.password, login?.passwordHash)
      if (login === undefined || !matches) {
        yield* throttle.recordFailure(key)
        return refuse(ESME_RINVPASWD, "credentials")
      }
      yield* throttle.recordSuccess(key)
      const app = login.app
      if (!app.active) return refuse(ESME_RBINDFAIL, "app_disabled")
      const allowList = parseAllowList(app.allowList)
      if (Result.isFailure(allowList) || !allows(allowList.success, connection.peer)) return refuse(ESME_RBINDFAIL, "address")
      if (bindsOf(app.id) >= options.maxConnectionsPerApp) return refuse(ESME_RALYBND, "per_app_limit")
      pendingByApp.set(app.id, (pendingByApp.get(app.id) ?? 0) + 1)
      const outcome: Decision = { _tag: "Bound", binding: { systemId: request.systemId, app, checkedAt: Date.now() } }
      return outcome
    })

    const bind = (connection: Connection<Binding>, request: BindRequest, done: (outcome: BindOutcome<Binding>) => void) =>
      runThen(
        decideBind(connection, request).pipe(
          Effect.tap((outcome) => {
            const annotations = { systemId: request.systemId, mode: request.mode, peer: connection.peer, connection: connection.id }
            if (outcome._tag === "Refused") {
              metrics.refused(outcome.reason)
              return Effect.logInfo("SMPP bind refused").pipe(Effect.annotateLogs({ ...annotations, reason: outcome.reason }))
            }
            return Effect.logInfo("SMPP bind").pipe(Effect.annotateLogs({ ...annotations, appId: outcome.binding.app.id }))
          })
        ),
        done,
        refuse(ESME_RSYSERR, "unavailable")
      )

    const bound = (connection: Connection<Binding>) => {
      const binding = connection.binding
      const mode = connection.mode
      if (binding === undefined || mode === undefined) return
      unpend(binding.app.id)
      let set = byApp.get(binding.app.id)
      if (set === undefined) byApp.set(binding.app.id, set = new Set())
      set.add(connection)
      metrics.binds(mode, ++modes[mode])
    }

    const closed = (connection: Connection<Binding>) => {
      const binding = connection.binding
      const mode = connection.mode
      if (binding === undefined || mode === undefined) return
      const set = byApp.get(binding.app.id)
      if (set === undefined || !set.delete(connection)) {
        // Closed between its bind's decision and its answer.
        unpend(binding.app.id)
        return
      }
      if (set.size === 0) byApp.delete(binding.app.id)
      metrics.binds(mode, --modes[mode])
      runCallback(Effect.logInfo("SMPP unbound").pipe(
        Effect.annotateLogs({ systemId: binding.systemId, appId: binding.app.id, mode, connection: connection.id })
      ))
    }

    /** The bound app as it is now: re-read every `appRecheckMs`; undefined once it is disabled, deleted or bound no more. */
    const currentApp = (binding: Binding) =>
      Effect.gen(function*() {
        if (Date.now() - binding.checkedAt < appRecheckMs) return binding.app
        binding.checkedAt = Date.now()
        const read = yield* accounts.findAppById(binding.app.id).pipe(Effect.result)
        // A store that fails now keeps the bind as it was: the next recheck decides.
        if (Result.isFailure(read)) return binding.app
        if (Option.isNone(read.success)) return undefined
        const app = read.success.value
        binding.app = app
        return app.active && app.smppSystemId !== undefined && systemIdKey(app.smppSystemId) === systemIdKey(binding.systemId)
          ? app
          : undefined
      })

    /** The pipeline's answer to one whole message, as the status (and id) an ESME is answered with. */
    const submitWhole = Effect.fnUntraced(function*(
      app: App,
      input: Record<string, unknown>,
      registeredDelivery: number,
      parts?: { readonly total: number; readonly receipts: ReadonlyArray<number> }
    ) {
      const decoded = yield* decodeSubmit(input, { errors: "first", onExcessProperty: "error" }).pipe(Effect.result)
      if (Result.isFailure(decoded)) {
        return { status: inputStatus(fieldIssues(decoded.failure.issue)[0]?.field) } satisfies SubmitAnswer
      }
      const submitter = submitterOf(app, eventsOf(registeredDelivery), parts)
      const outcome = yield* gateway.submit(decoded.success, submitter).pipe(
        Effect.timeoutOption(options.submitTimeoutMs),
        Effect.result
      )
      if (Result.isFailure(outcome)) {
        const error = outcome.failure
        if (error._tag === "StoreUnavailable" || error._tag === "PolicyUnavailable" || error._tag === "LimiterUnavailable") {
          yield* Effect.logWarning("SMPP submit: a pipeline stage is unavailable").pipe(
            Effect.annotateLogs({ appId: app.id, error: error.message })
          )
        }
        return { status: statusOf(error) } satisfies SubmitAnswer
      }
      if (Option.isNone(outcome.success)) {
        yield* Effect.logWarning("SMPP submit: no answer from the pipeline in time").pipe(Effect.annotateLogs({ appId: app.id }))
        return { status: ESME_RSYSERR } satisfies SubmitAnswer
      }
      return { status: ESME_ROK, messageId: outcome.success.value.accepted.id } satisfies SubmitAnswer
    })

    /**
     * Concatenated submits waiting for their other parts, by app, addresses and reference. Nothing is answered until
     * the whole message is accepted (or refused): an ESME that hears nothing resends, so a crash loses nothing it was
     * told was taken. Each part is then answered with its own id (`<message id>-<n>`), which its receipt names.
     */
    const concatenations = new Map<string, {
      readonly total: number
      readonly parts: Map<number, {
        readonly text: string
        readonly ucs2: boolean
        readonly registeredDelivery: number
        readonly answers: Array<(answer: SubmitAnswer) => void>
      }>
      readonly timer: ReturnType<typeof setTimeout>
    }>()

    // Stopping: parts still waiting are never answered (their connections close; the ESMEs send them again).
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        for (const group of concatenations.values()) clearTimeout(group.timer)
        concatenations.clear()
      })
    )

    const submitPart = (
      binding: Binding,
      pdu: PDU,
      input: Record<string, unknown>,
      concat: ConcatInfo,
      done: (answer: SubmitAnswer) => void
    ) => {
      const key = [binding.app.id, String(input.from), String(input.to), concat.ref, concat.total].join("\u0000")
      let group = concatenations.get(key)
      if (group === undefined) {
        const timer = setTimeout(() => {
          const stale = concatenations.get(key)
          if (stale === undefined) return
          concatenations.delete(key)
          for (const part of stale.parts.values()) for (const answer of part.answers) answer({ status: ESME_RSUBMITFAIL })
          runCallback(Effect.logWarning("SMPP submit: a concatenated message's parts did not all come").pipe(
            Effect.annotateLogs({ appId: binding.app.id, parts: stale.parts.size, total: stale.total })
          ))
        }, options.concatTimeoutMs)
        group = { total: concat.total, parts: new Map(), timer }
        concatenations.set(key, group)
      }
      const seen = group.parts.get(concat.seq)
      if (seen !== undefined) seen.answers.push(done)
      else {
        group.parts.set(concat.seq, {
          text: String(input.text),
          ucs2: input.encoding === "ucs2",
          registeredDelivery: pdu.registered_delivery ?? 0,
          answers: [done]
        })
      }
      if (group.parts.size < group.total) return
      concatenations.delete(key)
      clearTimeout(group.timer)
      const ordered = [...group.parts.entries()].sort((a, b) => a[0] - b[0])
      const whole = {
        ...input,
        text: ordered.map(([, part]) => part.text).join(""),
        encoding: ordered.some(([, part]) => part.ucs2) ? "ucs2" : "auto"
      }
      const answerAll = (answer: SubmitAnswer) => {
        for (const [seq, part] of ordered) {
          const own = answer.status === ESME_ROK && answer.messageId !== undefined ? { ...answer, messageId: partId(answer.messageId, seq) } : answer
          for (const reply of part.answers) reply(own)
        }
      }
      // Receipts as the parts asked: the message follows the widest request, each asking part gets its own receipt.
      const registeredDelivery = ordered.reduce((all, [, part]) => all | part.registeredDelivery, 0)
      const receipts = ordered.filter(([, part]) => eventsOf(part.registeredDelivery) !== undefined).map(([seq]) => seq)
      runThen(submitWhole(binding.app, whole, registeredDelivery, { total: group.total, receipts }), answerAll, { status: ESME_RSYSERR })
    }

    const submit = (connection: Connection<Binding>, binding: Binding, pdu: PDU, done: (answer: SubmitAnswer) => void) =>
      runThen(
        Effect.gen(function*() {
          const app = yield* currentApp(binding)
          if (app === undefined) {
            connection.unbind()
            return { status: ESME_RINVBNDSTS } satisfies SubmitAnswer
          }
          const read = submitInput(pdu)
          if (Result.isFailure(read)) return { status: read.failure } satisfies SubmitAnswer
          const { concat, input } = read.success
          if (concat !== undefined && concat.total > 1) {
            submitPart(binding, pdu, input, concat, done)
            return undefined
          }
          // A "concatenated" message of one part is a whole one, answered with the message's own id.
          return yield* submitWhole(app, input, pdu.registered_delivery ?? 0)
        }),
        (answer) => {
          if (answer !== undefined) done(answer)
        },
        { status: ESME_RSYSERR }
      )

    const tls = options.tls === undefined
      ? undefined
      : yield* Effect.try({
        try: () => ({ key: readFileSync(options.tls?.keyFile ?? ""), cert: readFileSync(options.tls?.certFile ?? "") }),
        catch: (error) => new Error(`smppServer.tls: ${messageWithCauses(error)}`)
      }).pipe(Effect.orDie)

    const server = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () =>
          listen<Binding>({
            host: options.host,
            port: options.port,
            tls,
            maxConnections: options.maxConnections,
            window: options.window,
            maxPduBytes: options.maxPduBytes,
            bindTimeoutMs: options.bindTimeoutMs,
            enquireLinkIntervalMs: options.enquireLinkIntervalMs,
            enquireLinkTimeoutMs: options.enquireLinkTimeoutMs,
            responseTimeoutMs: options.responseTimeoutMs
          }, {
            bind,
            submit,
            bound,
            closed,
            pdu: metrics.pdu,
            refusedConnection: (reason) => metrics.refused(reason)
          }),
        catch: (error) => new Error(`smppServer: cannot listen on ${options.host}:${options.port}: ${messageWithCauses(error)}`)
      }).pipe(Effect.orDie),
      (handle) => Effect.promise(() => handle.stop(options.shutdownGraceMs))
    )
    yield* Effect.logInfo("SMPP server listening").pipe(Effect.annotateLogs({ host: options.host, port: server.port, tls: tls !== undefined }))

    // Receipts and inbound messages: rows in hand are leased; a stop gives them back.
    const receipts = options.receipts
    const lease = leaseMs(options.responseTimeoutMs)
    const held = new Set<number>()

    const sendOne = (connection: Connection<Binding>, fields: PduFields) =>
      Effect.callback<number | DeliverFailure>((resume) => connection.deliver(fields, (result) => resume(Effect.succeed(result))))

    const settle = (row: DueCallback, error: string) =>
      Effect.gen(function*() {
        const now = Date.now()
        const next = afterFailure(row, now, { backoff: receipts.backoff, maxAgeMs: receipts.maxAgeMs }, Math.random())
        if (next._tag === "Dead") {
          metrics.delivery("dead")
          yield* outbox.dead(row.id, { attempts: next.attempts, at: now, error, status: null })
          yield* Effect.logWarning("SMPP receipt dead: its retry window is over").pipe(
            Effect.annotateLogs({ callbackId: row.id, messageId: row.messageId, appId: row.appId, error })
          )
          return
        }
        metrics.delivery("failed")
        yield* outbox.failed(row.id, { attempts: next.attempts, nextAt: next.nextAt, error, status: null })
      })

    /** One row sent (each of its deliver_sm acknowledged in turn); true when it was delivered and may be deleted. */
    const deliverRow = (row: DueCallback) =>
      Effect.gen(function*() {
        if (row.appGone) {
          metrics.delivery("dead")
          yield* outbox.dead(row.id, { attempts: row.attempts, at: Date.now(), error: `app ${row.appId} was deleted`, status: null })
          return false
        }
        const pdus = deliverFieldsOf(row.body, Math.floor(Math.random() * 256), row.url)
        if (pdus === undefined) {
          metrics.delivery("dead")
          yield* outbox.dead(row.id, { attempts: row.attempts, at: Date.now(), error: "a body the SMPP front cannot send", status: null })
          return false
        }
        const receivers = receiversOf(row.appId)
        const connection = receivers[nextReceiver++ % Math.max(1, receivers.length)]
        if (connection === undefined) {
          yield* outbox.release([row.id], Date.now())
          return false
        }
        for (const fields of pdus) {
          const result = yield* sendOne(connection, fields)
          if (result !== ESME_ROK) {
            const error = typeof result === "number" ? `deliver_sm_resp 0x${result.toString(16).padStart(2, "0")}` : `deliver_sm ${result}`
            yield* settle(row, error)
            return false
          }
        }
        metrics.delivery("delivered")
        return true
      }).pipe(
        Effect.catch((error) =>
          Effect.as(
            Effect.logWarning("SMPP receipt not settled; tried again when its lease ends").pipe(
              Effect.annotateLogs({ callbackId: row.id, error: error.message })
            ),
            false
          )
        ),
        // Interrupted (the front stopping), the row stays held: the finalizer gives its lease back.
        Effect.onExit((exit) => Exit.isSuccess(exit) && !exit.value ? Effect.sync(() => void held.delete(row.id)) : Effect.void)
      )

    /**
     * One round: the due rows of the apps with a receiver here, a fair share each (at least the callbacks' per-app
     * concurrency, at most the batch), all sent at once (a receiver pipelines them), the delivered ones deleted together.
     */
    const pumpOnce = Effect.gen(function*() {
      const apps = receivingApps()
      if (apps.length === 0) return 0
      const now = Date.now()
      const rows = yield* outbox.due(now, {
        limit: receipts.batchSize,
        perApp: Math.max(receipts.concurrencyPerApp, Math.ceil(receipts.batchSize / apps.length)),
        leaseUntil: now + lease,
        smppApps: apps
      })
      for (const row of rows) held.add(row.id)
      const sent = yield* Effect.forEach(rows, deliverRow, { concurrency: "unbounded" })
      const delivered = rows.filter((_, i) => sent[i] === true).map((row) => row.id)
      if (delivered.length > 0) {
        // Not deleted (the store failing): they stay held and leased, and are sent again when the lease ends.
        yield* outbox.delivered(delivered)
        for (const id of delivered) held.delete(id)
      }
      return rows.length
    })

    const pump = Effect.gen(function*() {
      let storeDown = false
      for (;;) {
        const result = yield* Effect.result(pumpOnce)
        if (Result.isFailure(result)) {
          if (!storeDown) {
            yield* Effect.logWarning("SMPP receipts: the store failed; tried again every interval").pipe(
              Effect.annotateLogs({ error: result.failure.message })
            )
          }
          storeDown = true
        } else storeDown = false
        // Rows claimed: more may be due, claim again at once; none (or the store down): wait for the interval.
        const claimed = Result.isSuccess(result) ? result.success : 0
        if (claimed === 0) yield* Effect.sleep(receipts.pollIntervalMs)
      }
    })

    const expire = Effect.gen(function*() {
      for (;;) {
        yield* Effect.sleep(expireIntervalMs)
        const now = Date.now()
        const n = yield* outbox.expireSmpp(now - receipts.maxAgeMs, now).pipe(Effect.orElseSucceed(() => 0))
        if (n > 0) {
          for (let i = 0; i < n; i++) metrics.delivery("dead")
          yield* Effect.logWarning("SMPP receipts dead: no receiver of their app bound in their retry window").pipe(
            Effect.annotateLogs({ count: n })
          )
        }
      }
    })

    // Registered before the loops: they are interrupted first, then their rows in hand are given back.
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => held.size === 0 ? Effect.void : outbox.release([...held], Date.now())).pipe(
        Effect.timeout("5 seconds"),
        Effect.ignore
      )
    )
    yield* Effect.forkScoped(pump)
    yield* Effect.forkScoped(expire)

    return SmppServer.of({
      address: { host: options.host, port: server.port },
      tls: tls !== undefined,
      binds: () =>
        [...byApp.entries()].flatMap(([appId, set]) =>
          [...set].flatMap((c) => c.mode === undefined ? [] : [{ appId, mode: c.mode }])
        )
    })
  })
