/**
 * The SmppLink entity: exactly one bind per link in the cluster, its window, send rate (AIMD), health, retries,
 * failover to pool members, handed marks and receipts.
 */
import { Deferred, Effect, Exit, Queue, Result, Schedule, Scope, Stream } from "effect"
import { Entity } from "effect/cluster"
import { Rpc } from "effect/rpc"
import { storedAddresses } from "../domain/Msisdn.ts"
import type { LinkConfig } from "../routing/Links.ts"
import { linkDefaults } from "../routing/Links.ts"
import { LinkMetrics, PoolMetrics } from "../observability/Metrics.ts"
import * as Tracing from "../observability/Tracing.ts"
import { LinkDispatcher } from "./LinkDispatcher.ts"
import type { Aimd } from "../routing/Aimd.ts"
import { makeAimd } from "../routing/Aimd.ts"
import { makeLinkHealth } from "../routing/LinkHealth.ts"
import type { LinkRecord } from "../routing/RoutingConfig.ts"
import { RoutingConfig } from "../routing/RoutingConfig.ts"
import { concatOf, decodeShortMessage, segment } from "../smpp/Encoding.ts"
import { messageIdCandidates } from "../smpp/MessageId.ts"
import { finalStatusOf, isInvalidReceipt, isReceipt, parseReceipt } from "../smpp/Receipt.ts"
import * as Session from "../smpp/Session.ts"
import type { HandedPart, PartOutcome } from "../storage/MessageStore.ts"
import { MessageStore } from "../storage/MessageStore.ts"
import { InboundStore } from "../storage/InboundStore.ts"
import { ActorRegistry } from "./ActorRegistry.ts"
import { afterAttempt, decideSubmit, isDown, notBound } from "./SmppLinkDecisions.ts"
import type { SubmitDecision } from "./SmppLinkDecisions.ts"
import { SmppLink } from "./SmppLinkProtocol.ts"
import type { LinkState, Outbound } from "./SmppLinkProtocol.ts"
import { poolsOf } from "./VirtualPool.ts"
import { VirtualPool } from "./VirtualPoolProtocol.ts"
import type { HealthState } from "./VirtualPoolProtocol.ts"
import { logsAs } from "../observability/Logging.ts"

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

/** What the link's fast path writes, in order: parts answered, and marks of parts about to be sent (awaited). */
type Progress =
  | { readonly _tag: "Outcome"; readonly outcome: PartOutcome }
  /** `stored` answers whether the part may be sent: false when the store has it submitted or final already. */
  | { readonly _tag: "Handed"; readonly part: HandedPart; readonly stored: Deferred.Deferred<boolean> }

interface WorkItem {
  readonly message: Outbound
  readonly attempt: number
  /** Links of the pool this message already failed on. */
  readonly tried: ReadonlyArray<string>
  /** When it entered the queue from outside (epoch ms, sub-ms precise): its wait is measured, and traced if it is. */
  readonly queuedAt?: number
}

/** What of a link's configuration needs a new session when it changes. */
const sessionKey = (c: LinkConfig) =>
  JSON.stringify([c.host, c.port, c.systemId, c.password, c.systemType, c.bindMode, c.window, c.tls,
    c.tlsRejectUnauthorized, c.responseTimeoutMs, c.enquireLinkIntervalMs, c.reconnectMaxMs])

/** What a link actor takes from the process configuration. */
export interface LinkOptions {
  /** Recovery re-drives messages idle this long: a link actor re-checks its queue at a third of it. */
  readonly recoveryIdleMs: number
}

const makeLink = (options: LinkOptions) => Effect.gen(function*() {
  const address = yield* Entity.CurrentAddress
  const linkId = address.entityId
  const routing = yield* RoutingConfig
  const store = yield* MessageStore
  const inbound = yield* InboundStore
  const metrics = yield* LinkMetrics
  const poolMetrics = yield* PoolMetrics
  metrics.initLink(linkId)
  poolMetrics.initLink(linkId)
  const dispatcher = yield* LinkDispatcher
  const poolFor = yield* VirtualPool.client
  const entityScope = yield* Effect.scope
  const recoveryIdleMs = options.recoveryIdleMs

  const initial = routing.link(linkId)
  if (initial._tag === "None") return yield* Effect.die(new Error(`link ${linkId} is not configured`))
  let config: LinkRecord = initial.value
  let settings = linkDefaults(config)

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
    unknownOutcomeResends: 0,
    failovers: 0
  }
  /** Messages queued or in flight here: a re-drive of one of them is ignored. */
  const active = new Set<string>()
  const queue = yield* Queue.unbounded<WorkItem>()
  const outcomes = yield* Queue.unbounded<PartOutcome>()
  const progress = yield* Queue.unbounded<Progress>()
  const health = makeLinkHealth()
  let aimd: Aimd = makeAimd({ configuredTps: settings.tps })
  let unboundSince: number | undefined = Date.now()

  // Health changes and rate changes go to every pool of the link, persisted and fire-and-forget.
  let reported: { state: HealthState; tps: number } | undefined
  const report = Effect.suspend(() => {
    const now = Date.now()
    const state: HealthState = config.enabled ? health.observe(now).state : "disabled"
    const tps = Math.round(aimd.current(now) * 100) / 100
    poolMetrics.link(linkId, { currentTps: tps, health: state })
    if (reported !== undefined && reported.state === state && Math.abs(reported.tps - tps) < settings.tps * 0.05) {
      return Effect.void
    }
    reported = { state, tps }
    return Effect.forEach(poolsOf(routing.current(), linkId), (poolId) =>
      poolFor(poolId).ReportHealth({ linkId, state, currentTps: tps, at: now }, { discard: true }).pipe(
        Effect.timeout("5 seconds"),
        Effect.ignore
      ), { discard: true })
  })

  const onDeliver = (pdu: Session.IncomingDeliver) =>
    Effect.gen(function*() {
      counters.deliversReceived++
      if (!isReceipt(pdu.esmClass)) {
        // Stored before the SMSC is answered (a failure answers "redeliver later"); the inbound processor
        // (pipeline/Inbound.ts) reassembles, routes and delivers it.
        metrics.inbound(linkId)
        return yield* inbound.receive({
          linkId,
          source: pdu.sourceAddr,
          destination: pdu.destinationAddr,
          esmClass: pdu.esmClass,
          dataCoding: pdu.dataCoding,
          payload: pdu.shortMessage,
          concat: concatOf(pdu.shortMessage, (pdu.esmClass & 0x40) !== 0) ?? pdu.sar,
          receivedAt: Date.now()
        })
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
      if (isInvalidReceipt(receipt)) {
        metrics.receipt(linkId, "refused")
        yield* Effect.logWarning("delivery receipt refused: a field beyond its bound").pipe(
          Effect.annotateLogs({ linkId, field: receipt.field, length: receipt.length })
        )
        return yield* new Session.DeliverRefused({ commandStatus: receipt.commandStatus })
      }
      const status = finalStatusOf(receipt.state)
      metrics.receipt(linkId, receipt.state)
      if (status === undefined) return
      const received = Tracing.preciseNow()
      const error = receipt.err !== undefined && receipt.err !== "000" ? receipt.err : undefined
      const at = Date.now()
      const found = yield* store.recordReceipt({
        linkId,
        candidates: messageIdCandidates(receipt.smscMessageId),
        status,
        error,
        at
      })
      if (!found.matched) return
      counters.receiptsMatched++
      if (found.submittedAt !== undefined) metrics.receiptLatency(linkId, Math.max(0, at - found.submittedAt) / 1000)
      // The receipt joins its message's trace, however long after the submit it came.
      yield* Tracing.recordMessageSpan(found.trace, "smsgw.receipt", received, {
        "smsgw.link_id": linkId,
        "smsgw.smsc_message_id": receipt.smscMessageId,
        "smsgw.status": status,
        ...(error !== undefined ? { "smsgw.error": error } : {})
      }, "consumer")
    })

  const onStateChange = (state: Session.SessionState) =>
    Effect.gen(function*() {
      const now = Date.now()
      metrics.bindChange(linkId, state.bound)
      if (state.bound) {
        health.onBound(now)
        unboundSince = undefined
      } else {
        health.onUnbound(now)
        unboundSince ??= now
      }
      yield* Effect.logInfo(state.bound ? "link bound" : "link unbound").pipe(
        Effect.annotateLogs({ linkId, lastError: state.counters.lastError ?? "" })
      )
      yield* report
    })

  // The session lives in a scope of its own, so a changed configuration replaces it without restarting the actor.
  let session: Session.SmppSession | undefined
  let sessionScope: Scope.Closeable | undefined
  let openedWith = ""
  const closeSession = Effect.suspend(() => {
    const scope = sessionScope
    session = undefined
    sessionScope = undefined
    openedWith = ""
    return scope === undefined ? Effect.void : Scope.close(scope, Exit.void)
  })
  const openSession = Effect.gen(function*() {
    yield* closeSession
    const scope = yield* Scope.fork(entityScope)
    sessionScope = scope
    openedWith = sessionKey(config)
    session = yield* Session.make({
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
      onStateChange
    }).pipe(Scope.provide(scope))
  })

  const applyConfig = (next: LinkRecord) =>
    Effect.gen(function*() {
      const previousTps = settings.tps
      config = next
      settings = linkDefaults(next)
      if (settings.tps !== previousTps) aimd = makeAimd({ configuredTps: settings.tps })
      if (!next.enabled) {
        if (session !== undefined) {
          yield* Effect.logInfo("link disabled: unbinding").pipe(Effect.annotateLogs({ linkId }))
          yield* closeSession
        }
        unboundSince ??= Date.now()
      } else if (session === undefined || openedWith !== sessionKey(next)) {
        yield* Effect.logInfo("link (re)configured: binding").pipe(Effect.annotateLogs({ linkId }))
        yield* openSession
      }
      yield* report
    })

  // The token bucket: each part takes one slot of 1/rate s, the rate being AIMD's; up to 100 ms of slots may burst.
  let nextSlot = 0
  const takeSlot = Effect.suspend(() => {
    const now = performance.now()
    const at = Math.max(nextSlot, now - 100)
    nextSlot = at + 1000 / aimd.current(Date.now())
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
      readonly mayHaveReached?: boolean
      readonly commandStatus?: number | undefined
    }
  ) => {
    const outcome: PartOutcome = { ...result, messageId: message.messageId, seq, segments, linkId, at: Date.now() }
    Queue.offerUnsafe(progress, { _tag: "Outcome", outcome })
    Queue.offerUnsafe(outcomes, outcome)
  }

  /**
   * Marks a part as handed to the SMSC and waits until that is stored, after every answer recorded before it: after a
   * crash, a part marked without a result is one that was in the window (an unknown outcome), never one long answered.
   * Answers false for a part the store has submitted or final already: a stale hand-off (one re-driven while its
   * first hand-off was still on its way, say) brought it again, and sending it would reach the SMSC twice unrecorded.
   */
  const markHanded = (messageId: string, seq: number) =>
    Effect.suspend(() => {
      const stored = Deferred.makeUnsafe<boolean>()
      Queue.offerUnsafe(progress, { _tag: "Handed", part: { messageId, seq, linkId, at: Date.now() }, stored })
      return Deferred.await(stored)
    })

  const requeueLater = (item: WorkItem, seqs: ReadonlyArray<number>, delayMs: number) =>
    Effect.sleep(delayMs).pipe(
      Effect.andThen(Queue.offer(queue, { message: { ...item.message, seqs }, attempt: item.attempt + 1, tried: item.tried })),
      Effect.forkIn(entityScope)
    )

  /** Pool messages go to another member; what no member takes stays here. */
  const handOff = (items: ReadonlyArray<WorkItem>) =>
    Effect.gen(function*() {
      const byPool = new Map<string, Array<WorkItem>>()
      for (const item of items) {
        const pool = item.message.pool
        if (pool === undefined) continue
        const list = byPool.get(pool) ?? []
        list.push(item)
        byPool.set(pool, list)
      }
      const kept: Array<WorkItem> = items.filter((item) => item.message.pool === undefined)
      for (const [poolId, group] of byPool) {
        const exclude = [...new Set(group.flatMap((i) => [...i.tried, linkId]))]
        const left = yield* dispatcher.reroute(poolId, group.map((i) => i.message), exclude)
        const leftIds = new Set(left.map((m) => m.messageId))
        const moved = group.length - leftIds.size
        if (moved > 0) {
          counters.failovers += moved
          poolMetrics.failover(linkId, moved)
        }
        for (const item of group) {
          if (leftIds.has(item.message.messageId)) kept.push(item)
          else active.delete(item.message.messageId)
        }
      }
      return kept
    })

  /** A link down for a while, or disabled, moves its queued pool messages to the other members. */
  const failover = Effect.gen(function*() {
    if (!isDown({ enabled: config.enabled, unboundSince }, Date.now())) return
    const queued = yield* Queue.clear(queue)
    if (queued.length === 0) return
    const kept = yield* handOff(queued)
    if (kept.length < queued.length) {
      yield* Effect.logWarning("link down: messages moved to other pool members").pipe(
        Effect.annotateLogs({ linkId, moved: queued.length - kept.length, kept: kept.length })
      )
    }
    for (const item of kept) Queue.offerUnsafe(queue, item)
  })

  /** An answer's signals to the link's health and rate; a throttling cut also pushes the next token-bucket slot out. */
  const apply = (decision: SubmitDecision, now: number) => {
    if (decision.health === "throttled") health.onThrottled(now)
    else if (decision.health !== undefined) health.onResult(now, decision.health)
    if (decision._tag !== "Retry") return
    if (decision.rate === "throttled") {
      aimd.onThrottled(now)
      nextSlot = performance.now() + 1000 / aimd.current(now)
    } else if (decision.rate === "queueFull") {
      aimd.onQueueFull(now)
    }
  }

  /**
   * A stopping link (SIGTERM, its shard moving to another node) sends nothing more but waits for the answers of the
   * parts already in its window: a part handed without its answer stored is an unknown outcome, which recovery resends
   * (the SMSC then has it twice). `inWindow` counts the parts between their handed mark and their recorded result.
   */
  let draining = false
  let inWindow = 0

  const sendOne = (item: WorkItem) =>
    Effect.gen(function*() {
      const message = item.message
      const addresses = storedAddresses(message.to, message.from)
      const segmented = segment(message.text, {
        encoding: message.encoding,
        reference: referenceOf(message.messageId),
        referenceBits: settings.udhReferenceBits
      })
      if (addresses === undefined || Result.isFailure(segmented)) {
        const error = addresses === undefined ? "invalid sender" : segmented._tag === "Failure" ? segmented.failure._tag : ""
        // 0 parts: unknown, so the store recomputes the message from its parts.
        for (const seq of message.seqs) record(message, seq, 0, { _tag: "Failed", error })
        return "done" as const
      }
      const parts = segmented.success.parts
      const retry: Array<number> = []
      /** Parts whose submit timed out or lost its connection: the SMSC may have them. */
      const unknownSeqs = new Set<number>()
      let lastError = ""
      let lastStatus: number | undefined
      for (const seq of message.seqs) {
        const part = parts[seq - 1]
        if (part === undefined) continue
        const current = session
        if (current === undefined || !config.enabled) {
          lastError = notBound
          lastStatus = undefined
          retry.push(seq)
          continue
        }
        yield* takeSlot
        // Stopping: the rest of this message stays with the store (released below, re-driven by recovery at once).
        if (draining) return "released" as const
        inWindow++
        const sendable = yield* markHanded(message.messageId, seq).pipe(Effect.onError(() => Effect.sync(() => inWindow--)))
        if (!sendable) {
          inWindow--
          yield* Effect.logWarning("part already submitted, not sent again").pipe(
            Effect.annotateLogs({ linkId, messageId: message.messageId, seq })
          )
          continue
        }
        counters.submitted++
        const submitted = current.submit({
          sourceAddr: addresses.source.addr,
          sourceTon: addresses.source.ton,
          sourceNpi: addresses.source.npi,
          destinationAddr: addresses.destination,
          destTon: 1,
          destNpi: 1,
          dataCoding: segmented.success.dataCoding,
          esmClass: part.udhi ? 0x40 : 0,
          shortMessage: part.shortMessage,
          registeredDelivery: settings.registeredDelivery ? 1 : 0,
          ...(message.validitySeconds !== undefined ? { validityPeriod: relativeValidity(message.validitySeconds) } : {})
        })
        const sentAt = performance.now()
        const result = yield* (message.trace === undefined ? submitted : submitted.pipe(
          Effect.tap((r) => Effect.annotateCurrentSpan("smsgw.smsc_message_id", r.messageId)),
          Effect.tapError((e) => Effect.annotateCurrentSpan("smsgw.error", e._tag)),
          Effect.withSpan("smsgw.smpp.submit_sm", { kind: "client", attributes: { "smsgw.part": seq, "smsgw.parts": parts.length } }, Tracing.untracedStack)
        )).pipe(Effect.result)
        const now = Date.now()
        metrics.submitDuration(linkId, (performance.now() - sentAt) / 1000)
        if (Result.isSuccess(result)) {
          counters.submitOk++
          metrics.response(linkId, 0)
          metrics.submitLatency(now - message.acceptedAt)
        } else {
          counters.submitErrors++
          if (result.failure._tag === "SubmitRejected") metrics.response(linkId, result.failure.commandStatus)
          if (result.failure._tag === "SubmitTimeout") counters.timeouts++
        }
        const decision = decideSubmit(result)
        apply(decision, now)
        inWindow--
        switch (decision._tag) {
          case "Submitted":
            record(message, seq, parts.length, { _tag: "Submitted", smscMessageId: decision.smscMessageId })
            break
          case "Failed":
            counters.failed++
            record(message, seq, parts.length, { _tag: "Failed", error: decision.error, commandStatus: decision.commandStatus })
            break
          case "Retry":
            if (decision.rebind) yield* Effect.forkIn(current.rebind, entityScope)
            if (decision.unknownOutcome) {
              // The SMSC may have taken it: a resend can duplicate, so it is counted.
              counters.unknownOutcomeResends++
              poolMetrics.unknownOutcome(linkId)
              unknownSeqs.add(seq)
            }
            lastError = decision.error
            lastStatus = decision.commandStatus
            retry.push(seq)
        }
      }
      yield* report
      if (retry.length === 0) return "done" as const
      const next = afterAttempt(item.attempt, settings.maxRetries, lastError)
      if (next._tag === "GiveUp") {
        for (const seq of retry) {
          counters.failed++
          record(message, seq, parts.length, { _tag: "Failed", error: next.error, commandStatus: lastStatus })
        }
        return "done" as const
      }
      counters.retries++
      poolMetrics.retry(linkId)
      for (const seq of retry) {
        record(message, seq, parts.length, {
          _tag: "Requeued",
          error: lastError,
          mayHaveReached: unknownSeqs.has(seq),
          commandStatus: lastStatus
        })
      }
      const moving: WorkItem = { message: { ...message, seqs: retry }, attempt: item.attempt + 1, tried: [...item.tried, linkId] }
      // A pool message tries another member at once; a link's own message (or one no member takes) waits here.
      const kept = message.pool === undefined ? [moving] : yield* handOff([moving])
      if (kept.length === 0) return "moved" as const
      yield* requeueLater(item, retry, next.delayMs)
      return "requeued" as const
    })

  /** Its wait in the queue measured; the send of a traced message a span of its trace, after one for the wait. */
  const traced = (item: WorkItem) => {
    if (item.queuedAt !== undefined) metrics.queueWait(linkId, (Tracing.preciseNow() - item.queuedAt) / 1000)
    return item.message.trace === undefined || item.queuedAt === undefined ? sendOne(item) : Tracing.recordMessageSpan(
      item.message.trace,
      "smsgw.link.queue",
      item.queuedAt,
      { "smsgw.link_id": linkId, "smsgw.attempt": item.attempt }
    ).pipe(
      Effect.andThen(sendOne(item)),
      Tracing.withMessageSpan(item.message.trace, "smsgw.link.send", {
        "smsgw.link_id": linkId,
        "smsgw.message_id": item.message.messageId,
        "smsgw.attempt": item.attempt
      })
    )
  }

  const worker = Queue.take(queue).pipe(
    Effect.flatMap((item) =>
      traced(item).pipe(
        Effect.tap((r) => r === "done" ? Effect.sync(() => active.delete(item.message.messageId)) : Effect.void),
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

  yield* applyConfig(config)
  yield* Effect.forkScoped(Effect.all(Array.from({ length: Math.max(settings.window, 1) }, () => worker), {
    concurrency: "unbounded",
    discard: true
  }))

  const retryStore = Schedule.min([Schedule.exponential(100), Schedule.spaced(5000)])
  // Submit results reach the store in batches; a store outage delays them, never drops them.
  yield* Queue.takeBetween(outcomes, 1, 1000).pipe(
    Effect.flatMap((batch) =>
      store.recordOutcomes(batch).pipe(
        Effect.tapError((e) =>
          Effect.logWarning("storing submit results failed, retrying").pipe(Effect.annotateLogs({ linkId, error: e.message }))
        ),
        Effect.retry(retryStore)
      )
    ),
    Effect.forever,
    Effect.forkScoped
  )
  // The fast path, in the order things happened: answers (part rows only), then marks, whose senders then go on; a
  // store outage holds the sends (nothing is sent unmarked).
  const storeProgress = (batch: ReadonlyArray<Progress>) => {
    const answered = batch.flatMap((p) => p._tag === "Outcome" ? [p.outcome] : [])
    const marks = batch.flatMap((p) => p._tag === "Handed" ? [p] : [])
    return store.recordHanded(answered, marks.map((m) => m.part)).pipe(
      Effect.map((unmarked) => {
        const stale = new Set(unmarked)
        for (const m of marks) Deferred.doneUnsafe(m.stored, Exit.succeed(!stale.has(m.part)))
      })
    )
  }
  yield* Queue.takeBetween(progress, 1, 1000).pipe(
    Effect.flatMap((batch) =>
      storeProgress(batch).pipe(
        Effect.tapError((e) =>
          Effect.logWarning("marking parts as handed failed, retrying").pipe(Effect.annotateLogs({ linkId, error: e.message }))
        ),
        Effect.retry(retryStore)
      )
    ),
    Effect.forever,
    Effect.forkScoped
  )

  // The messages this link holds (queued or in its window) are touched well within recovery's idle time, so recovery
  // leaves them here instead of handing a merely waiting message to another link as well (a backlog longer than the
  // idle time otherwise sent messages of a pool twice, once on each link). A stopped link stops touching: recovery
  // then takes its messages after the idle time, or at once for the ones it released.
  let stopping = false
  yield* Effect.suspend(() =>
    stopping || active.size === 0 ? Effect.void : store.touch([...active]).pipe(
      Effect.catch((e) => Effect.logWarning("could not mark held messages as live").pipe(Effect.annotateLogs({ linkId, error: e.message })))
    )
  ).pipe(
    Effect.repeat(Schedule.spaced(Math.max(100, Math.floor(recoveryIdleMs / 3)))),
    Effect.forkScoped
  )

  // Live configuration: a changed link re-binds, a disabled one unbinds; the rate recovers and is reported.
  yield* routing.changes.pipe(
    Stream.runForEach((snapshot) => {
      const next = snapshot.links.find((l) => l.id === linkId)
      if (next === undefined) return applyConfig({ ...config, enabled: false })
      return JSON.stringify(next) === JSON.stringify(config) ? Effect.void : applyConfig(next)
    }),
    Effect.forkScoped
  )
  yield* Effect.all([failover, report], { discard: true }).pipe(
    Effect.repeat(Schedule.spaced("250 millis")),
    Effect.forkScoped
  )

  // Stopping (SIGTERM, a shard moving): results still buffered are stored, then what is left unsent goes back to
  // the store for recovery to re-drive at once, instead of after the idle time.
  yield* Effect.addFinalizer(() =>
    Effect.suspend(() => {
      stopping = true
      return store.release([...active])
    }).pipe(Effect.ignore)
  )
  yield* Effect.addFinalizer(() =>
    Queue.clear(outcomes).pipe(
      Effect.flatMap((left) => left.length === 0 ? Effect.void : store.recordOutcomes(left)),
      Effect.ignore
    )
  )
  // Runs first (finalizers run last-added first): the window drains, within the response timeout, while the session,
  // the workers and the writers are still up; what it answered is then in `outcomes`, stored by the finalizer above.
  yield* Effect.addFinalizer(() =>
    Effect.suspend(() => {
      draining = true
      return inWindow === 0 ? Effect.void : Effect.logInfo("link stopping: waiting for the answers in its window").pipe(
        Effect.annotateLogs({ linkId, inWindow }),
        Effect.andThen(Effect.sleep(5).pipe(Effect.repeat({ until: () => inWindow <= 0 }))),
        Effect.timeout(settings.responseTimeoutMs + 1_000),
        Effect.ignore
      )
    })
  )

  yield* Entity.keepAlive(true)
  yield* (yield* ActorRegistry).register("SmppLink", linkId)
  yield* Effect.logInfo("link actor started").pipe(Effect.annotateLogs({ linkId, host: config.host, port: config.port }))

  const inspect = Effect.gen(function*() {
    const queued = yield* Queue.size(queue)
    const s = session === undefined ? undefined : yield* session.state
    const now = Date.now()
    const state: LinkState = {
      linkId,
      bound: s?.bound ?? false,
      connections: (s?.connections ?? []).map((c) => ({ mode: c.mode, bound: c.bound, inFlight: c.inFlight })),
      window: settings.window,
      windowInUse: s?.windowInUse ?? 0,
      tps: settings.tps,
      currentTps: aimd.current(now),
      health: config.enabled ? health.state(now) : "disabled",
      enabled: config.enabled,
      queued,
      counters: { ...counters, reconnects: s?.counters.reconnects ?? 0 },
      ...(s?.counters.lastError !== undefined ? { lastError: s.counters.lastError } : {})
    }
    return state
  })

  return SmppLink.of({
    Submit: ({ payload }) =>
      Effect.gen(function*() {
        const fresh: Array<WorkItem> = []
        const queuedAt = Tracing.preciseNow()
        for (const message of payload.messages) {
          if (active.has(message.messageId)) continue
          active.add(message.messageId)
          fresh.push({ message, attempt: 0, tried: [], queuedAt })
        }
        // A link that is down passes pool messages on at once instead of holding them.
        const kept = isDown({ enabled: config.enabled, unboundSince }, Date.now()) ? yield* handOff(fresh) : fresh
        for (const item of kept) Queue.offerUnsafe(queue, item)
        return { queued: kept.length }
      }),
    Inspect: () => inspect.pipe(Rpc.fork),
    Rebind: () => (session === undefined ? Effect.void : session.rebind).pipe(Rpc.fork)
  })
})

/** Its lines (and its session's) log under `module=link`. */
export const layer = (options: LinkOptions) =>
  SmppLink.toLayer(makeLink(options).pipe(logsAs("link")), { concurrency: "unbounded" })
