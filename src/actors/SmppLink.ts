import { Effect, Queue, Result, Schedule } from "effect"
import { Entity } from "effect/cluster"
import { Rpc } from "effect/rpc"
import { parseMsisdn, parseSender } from "../domain/Msisdn.ts"
import { linkDefaults } from "../layers/Config.ts"
import { LinkMetrics } from "../observability/Metrics.ts"
import type { PartOutcome } from "../storage/MessageStore.ts"
import { MessageStore } from "../storage/MessageStore.ts"
import { classifyCommandStatus, commandStatusName } from "../smpp/CommandStatus.ts"
import { decodeShortMessage, segment } from "../smpp/Encoding.ts"
import { messageIdCandidates, normalizeMessageId } from "../smpp/MessageId.ts"
import { finalStatusOf, isReceipt, parseReceipt } from "../smpp/Receipt.ts"
import * as Session from "../smpp/Session.ts"
import { LinkDirectory } from "./LinkDirectory.ts"
import { SmppLink } from "./SmppLinkProtocol.ts"
import type { LinkState, Outbound } from "./SmppLinkProtocol.ts"

/** A stable concatenation reference per message, so a re-driven message rebuilds the same UDH. */
export const referenceOf = (messageId: string): number => {
  let h = 0x811c9dc5
  for (let i = 0; i < messageId.length; i++) h = Math.imul(h ^ messageId.charCodeAt(i), 0x01000193)
  return h >>> 0
}

/** `YYMMDDhhmmss000R`: a validity period relative to now (SMPP v3.4 §7.1.1). */
export const relativeValidity = (seconds: number): string => {
  const d = Math.floor(seconds / 86400)
  const h = Math.floor((seconds % 86400) / 3600)
  const m = Math.floor((seconds % 3600) / 60)
  const s = seconds % 60
  const two = (n: number) => String(n).padStart(2, "0")
  return `0000${two(d)}${two(h)}${two(m)}${two(s)}000R`
}

const retryDelayMs = (attempt: number) => Math.min(30_000, 500 * 2 ** Math.min(attempt, 6))

interface WorkItem {
  readonly message: Outbound
  readonly attempt: number
}

const makeLink = Effect.gen(function*() {
  const address = yield* Entity.CurrentAddress
  const linkId = address.entityId
  const directory = yield* LinkDirectory
  const store = yield* MessageStore
  const metrics = yield* LinkMetrics
  const config = yield* Effect.orDie(directory.get(linkId))
  const settings = linkDefaults(config)

  const counters = {
    submitted: 0,
    submitOk: 0,
    submitErrors: 0,
    timeouts: 0,
    reconnects: 0,
    deliversReceived: 0,
    receiptsMatched: 0,
    retries: 0,
    failed: 0,
    unknownOutcomeResends: 0
  }
  /** Messages queued or in flight here: a re-drive of one of them is ignored. */
  const active = new Set<string>()
  const queue = yield* Queue.unbounded<WorkItem>()
  const outcomes = yield* Queue.unbounded<PartOutcome>()

  const onDeliver = (pdu: Session.IncomingDeliver) =>
    Effect.gen(function*() {
      counters.deliversReceived++
      if (!isReceipt(pdu.esmClass)) {
        yield* Effect.logInfo("mobile-originated message ignored").pipe(
          Effect.annotateLogs({ linkId, from: pdu.sourceAddr })
        )
        return
      }
      const udhi = (pdu.esmClass & 0x40) !== 0
      const receipt = parseReceipt({
        shortMessageText: decodeShortMessage(pdu.shortMessage, pdu.dataCoding, udhi),
        receiptedMessageId: pdu.receiptedMessageId,
        messageState: pdu.messageState,
        networkErrorCode: pdu.networkErrorCode
      })
      if (receipt === undefined) {
        yield* Effect.logWarning("unparseable delivery receipt").pipe(Effect.annotateLogs({ linkId }))
        return
      }
      const status = finalStatusOf(receipt.state)
      metrics.receipt(linkId, receipt.state)
      if (status === undefined) return
      const matched = yield* store.recordReceipt({
        linkId,
        candidates: messageIdCandidates(receipt.smscMessageId),
        status,
        error: receipt.err !== undefined && receipt.err !== "000" ? receipt.err : undefined,
        at: Date.now()
      })
      if (matched) counters.receiptsMatched++
    })

  const session = yield* Session.make({
    host: config.host,
    port: config.port,
    tls: settings.tls ? { rejectUnauthorized: config.tlsRejectUnauthorized ?? true } : false,
    systemId: config.systemId,
    password: config.password,
    name: linkId,
    ...(config.systemType !== undefined ? { systemType: config.systemType } : {}),
    bindMode: settings.bindMode,
    window: settings.window,
    responseTimeoutMs: settings.responseTimeoutMs,
    enquireLinkIntervalMs: settings.enquireLinkIntervalMs,
    enquireLinkTimeoutMs: Math.min(settings.responseTimeoutMs, 10_000),
    reconnect: { initialMs: 1_000, maxMs: settings.reconnectMaxMs },
    onDeliver,
    onStateChange: (state) =>
      Effect.logInfo(state.bound ? "link bound" : "link unbound").pipe(
        Effect.annotateLogs({ linkId, lastError: state.counters.lastError ?? "" })
      )
  })

  // The token bucket: each part takes one slot of 1/tps s; up to 100 ms of unused slots may burst.
  const slotMs = 1000 / settings.tps
  let nextSlot = 0
  const takeSlot = Effect.suspend(() => {
    const now = performance.now()
    const at = Math.max(nextSlot, now - 100)
    nextSlot = at + slotMs
    const wait = at - now
    return wait >= 1 ? Effect.sleep(wait) : Effect.void
  })

  const record = (
    message: Outbound,
    seq: number,
    segments: number,
    result: { readonly _tag: "Submitted"; readonly smscMessageId: string } | {
      readonly _tag: "Failed" | "Requeued"
      readonly error: string
    }
  ) => Queue.offerUnsafe(outcomes, { ...result, messageId: message.messageId, seq, segments, linkId, at: Date.now() })

  const requeueLater = (item: WorkItem, seqs: ReadonlyArray<number>) =>
    Effect.sleep(retryDelayMs(item.attempt)).pipe(
      Effect.andThen(Queue.offer(queue, { message: { ...item.message, seqs }, attempt: item.attempt + 1 })),
      Effect.forkDetach
    )

  const sendOne = (item: WorkItem) =>
    Effect.gen(function*() {
      const message = item.message
      const sender = parseSender(message.from)
      const to = parseMsisdn(`+${message.to}`) ?? message.to
      const segmented = segment(message.text, {
        encoding: message.encoding,
        reference: referenceOf(message.messageId),
        referenceBits: settings.udhReferenceBits
      })
      if (sender === undefined || Result.isFailure(segmented)) {
        const error = sender === undefined ? "invalid sender" : segmented._tag === "Failure" ? segmented.failure._tag : ""
        for (const seq of message.seqs) {
          // 0 parts: unknown, so the store recomputes the message from its parts.
          record(message, seq, 0, { _tag: "Failed", error })
        }
        return
      }
      const parts = segmented.success.parts
      const retry: Array<number> = []
      let lastError = ""
      for (const seq of message.seqs) {
        const part = parts[seq - 1]
        if (part === undefined) continue
        yield* takeSlot
        counters.submitted++
        const result = yield* session.submit({
          sourceAddr: sender.addr,
          sourceTon: sender.ton,
          sourceNpi: sender.npi,
          destinationAddr: to,
          destTon: 1,
          destNpi: 1,
          dataCoding: segmented.success.dataCoding,
          esmClass: part.udhi ? 0x40 : 0,
          shortMessage: part.shortMessage,
          registeredDelivery: settings.registeredDelivery ? 1 : 0,
          ...(message.validitySeconds !== undefined ? { validityPeriod: relativeValidity(message.validitySeconds) } : {})
        }).pipe(Effect.result)
        const at = Date.now()
        if (Result.isSuccess(result)) {
          counters.submitOk++
          metrics.response(linkId, 0)
          metrics.submitLatency(at - message.acceptedAt)
          record(message, seq, parts.length, {
            _tag: "Submitted",
            smscMessageId: normalizeMessageId(result.success.messageId)
          })
          continue
        }
        const error = result.failure
        counters.submitErrors++
        switch (error._tag) {
          case "SubmitRejected": {
            metrics.response(linkId, error.commandStatus)
            const kind = classifyCommandStatus(error.commandStatus)
            const name = commandStatusName(error.commandStatus)
            if (kind === "permanent") {
              counters.failed++
              record(message, seq, parts.length, {
                _tag: "Failed",
                error: `${name} (0x${error.commandStatus.toString(16).padStart(2, "0")})`
              })
            } else {
              if (kind === "throttled") nextSlot = performance.now() + 1000
              if (kind === "rebind") yield* Effect.forkDetach(session.rebind)
              lastError = name
              retry.push(seq)
            }
            break
          }
          case "SubmitTimeout":
          case "ConnectionLost": {
            // The SMSC may have taken it: a resend can duplicate, so it is counted.
            if (error._tag === "SubmitTimeout") counters.timeouts++
            counters.unknownOutcomeResends++
            lastError = error._tag
            retry.push(seq)
            break
          }
          default: {
            lastError = error._tag
            retry.push(seq)
          }
        }
      }
      if (retry.length === 0) return
      if (item.attempt >= settings.maxRetries && lastError !== "NotBound") {
        for (const seq of retry) {
          counters.failed++
          record(message, seq, parts.length, {
            _tag: "Failed",
            error: `gave up after ${item.attempt + 1} attempts: ${lastError}`
          })
        }
        return
      }
      counters.retries++
      for (const seq of retry) {
        record(message, seq, parts.length, { _tag: "Requeued", error: lastError })
      }
      yield* requeueLater(item, retry)
      return "requeued" as const
    })

  const worker = Queue.take(queue).pipe(
    Effect.flatMap((item) =>
      sendOne(item).pipe(
        Effect.tap((r) => r === "requeued" ? Effect.void : Effect.sync(() => active.delete(item.message.messageId))),
        Effect.catchCause((cause) =>
          Effect.logError("link worker failed on a message").pipe(
            Effect.annotateLogs({ linkId, messageId: item.message.messageId, cause: String(cause) }),
            Effect.andThen(Effect.sync(() => active.delete(item.message.messageId)))
          )
        )
      )
    ),
    Effect.forever
  )
  yield* Effect.forkScoped(Effect.all(Array.from({ length: settings.window }, () => worker), {
    concurrency: "unbounded",
    discard: true
  }))

  // Submit results reach the store in batches; a store outage delays them, never drops them.
  yield* Queue.takeBetween(outcomes, 1, 1000).pipe(
    Effect.flatMap((batch) =>
      store.recordOutcomes(batch).pipe(
        Effect.tapError((e) => Effect.logWarning("storing submit results failed, retrying").pipe(
          Effect.annotateLogs({ linkId, error: e.message })
        )),
        Effect.retry(Schedule.min([Schedule.exponential(100), Schedule.spaced(5000)]))
      )
    ),
    Effect.forever,
    Effect.forkScoped
  )

  yield* Entity.keepAlive(true)
  yield* Effect.logInfo("link actor started").pipe(Effect.annotateLogs({ linkId, host: config.host, port: config.port }))

  const inspect = Effect.gen(function*() {
    const s = yield* session.state
    const queued = yield* Queue.size(queue)
    const state: LinkState = {
      linkId,
      bound: s.bound,
      connections: s.connections.map((c) => ({ mode: c.mode, bound: c.bound, inFlight: c.inFlight })),
      window: settings.window,
      windowInUse: s.windowInUse,
      tps: settings.tps,
      queued,
      counters: { ...counters, reconnects: s.counters.reconnects },
      ...(s.counters.lastError !== undefined ? { lastError: s.counters.lastError } : {})
    }
    return state
  })

  return SmppLink.of({
    Submit: ({ payload }) =>
      Effect.sync(() => {
        let queued = 0
        for (const message of payload.messages) {
          if (active.has(message.messageId)) continue
          active.add(message.messageId)
          Queue.offerUnsafe(queue, { message, attempt: 0 })
          queued++
        }
        return { queued }
      }),
    Inspect: () => inspect.pipe(Rpc.fork),
    Rebind: () => session.rebind.pipe(Rpc.fork)
  })
})

export const layer = SmppLink.toLayer(makeLink, { concurrency: "unbounded" })
