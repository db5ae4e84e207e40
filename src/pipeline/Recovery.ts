/**
 * The recovery job (a singleton): re-drives messages accepted but not submitted, settles unknown outcomes.
 */
import { Effect, Layer, Schedule } from "effect"
import { Singleton } from "effect/cluster"
import type { MessageClass } from "../domain/Policy.ts"
import { Router } from "../routing/Router.ts"
import { MessageStore } from "../storage/MessageStore.ts"
import type { PendingMessage, UnknownOutcome, UnknownOutcomeAction } from "../storage/MessageStore.ts"
import { LinkDispatcher } from "../actors/LinkDispatcher.ts"
import { LinkMetrics, PoolMetrics } from "../observability/Metrics.ts"

/**
 * A lost one-time password or alert is worse than a second copy: resend. A second copy of an advertisement is a
 * billed nuisance, its loss cheap: report. A message stored without a class counts as transactional.
 */
export const unknownOutcomeDefaults: Record<MessageClass, UnknownOutcomeAction> = {
  transactional: "resend",
  promotional: "report"
}

export interface RecoveryOptions {
  /** A message untouched this long while not yet submitted is handed to its link again. */
  readonly idleMs: number
  readonly intervalMs: number
  /** Embedded mode: everything pending at start-up was left by the previous run, so re-drive it at once. */
  readonly recoverAllOnStart: boolean
  /** Per message class, what to do with a part handed to the SMSC whose answer was never stored (see defaults). */
  readonly unknownOutcome?: Partial<Record<MessageClass, UnknownOutcomeAction>> | undefined
}

/**
 * Settles the unknown outcomes among `found` (read by `store.pending`); answers the messages with the parts still to
 * send. A handed part is sent again only when it was settled here: one whose answer was stored between the read and
 * the settling (a link still draining, a node that was slow, not dead) is no unknown outcome, and re-driving it would
 * send it twice with nothing recorded.
 */
export const settlePending = (
  store: MessageStore["Service"],
  poolMetrics: PoolMetrics["Service"],
  actionFor: (messageClass: MessageClass | undefined) => UnknownOutcomeAction
) =>
  Effect.fnUntraced(function*(found: ReadonlyArray<PendingMessage>) {
    // Every part answered, the message's own update lost with a crash (a link stores part rows first).
    const caughtUp = found.filter((m) => m.pendingSeqs.length === 0)
    if (caughtUp.length > 0) yield* store.catchUp(caughtUp.map((m) => m.id))
    const pending = found.filter((m) => m.pendingSeqs.length > 0)
    const at = Date.now()
    const unknown: Array<UnknownOutcome> = pending.flatMap((m) => {
      const action = actionFor(m.messageClass)
      return m.handed.map((h) => ({ messageId: m.id, seq: h.seq, linkId: h.linkId, action, at }))
    })
    // Stored before the re-drive, so the link's fresh mark is not cleared behind it.
    const settled = unknown.length === 0 ? [] : yield* store.settleUnknown(unknown)
    if (settled.length > 0) {
      for (const u of settled) poolMetrics.unknownOutcomeRecovered(u.linkId ?? "", u.action)
      yield* Effect.logWarning("recovery found parts whose outcome is unknown").pipe(
        Effect.annotateLogs({
          resent: settled.filter((u) => u.action === "resend").length,
          reported: settled.filter((u) => u.action === "report").length
        })
      )
    }
    const resent = new Set(settled.filter((u) => u.action === "resend").map((u) => `${u.messageId}:${u.seq}`))
    return pending.flatMap((m) => {
      if (m.handed.length === 0) return [m]
      const handed = new Set(m.handed.map((h) => h.seq))
      const seqs = m.pendingSeqs.filter((seq) => !handed.has(seq) || resent.has(`${m.id}:${seq}`))
      return seqs.length === 0 ? [] : [{ ...m, pendingSeqs: seqs }]
    })
  })

/**
 * Re-drives messages that were accepted but never submitted: after a crash, a lost hand-off, a link outage, a link
 * that handed its queue back when it stopped. One job per cluster: a singleton, which moves to a survivor with its
 * runner's shards.
 *
 * A pending part marked as handed to a link was in that link's window when its node stopped: the SMSC may have it.
 * It is resent or reported as its message class is configured, counted and recorded on the message; every other
 * pending part was never sent and is simply re-driven.
 */
export const layer = (options: RecoveryOptions) =>
  Layer.unwrap(Effect.gen(function*() {
    const store = yield* MessageStore
    const router = yield* Router
    const dispatcher = yield* LinkDispatcher
    const metrics = yield* LinkMetrics
    const poolMetrics = yield* PoolMetrics
    const actionFor = (messageClass: MessageClass | undefined): UnknownOutcomeAction => {
      const cls = messageClass ?? "transactional"
      return options.unknownOutcome?.[cls] ?? unknownOutcomeDefaults[cls]
    }

    const settle = settlePending(store, poolMetrics, actionFor)

    /** Re-drives every pending message last touched before `updatedBefore` (epoch ms); all of them when `all`. */
    const pass = (updatedBefore: number, all: boolean) =>
      Effect.gen(function*() {
        let total = 0
        for (;;) {
          // Every message found leaves the set (re-driven: touched; reported: submitted), so each page is the first.
          const found = yield* store.pending({ updatedBefore, limit: 1000 })
          const pending = yield* settle(found)
          // Before the hand-off: a pass a second later must not hand a message again that its link has sent meanwhile
          // (a link only touches what it holds every third of the idle time, and forgets what it has sent).
          yield* store.redriven(found.map((m) => m.id))
          const byTarget = new Map<string, Array<(typeof pending)[number]>>()
          for (const m of pending) {
            const key = m.routeLinkId ?? ""
            const list = byTarget.get(key) ?? []
            list.push(m)
            byTarget.set(key, list)
          }
          for (const [key, messages] of byTarget) {
            // A target removed since (or none stored): route the message again.
            const route = yield* router.target(key).pipe(
              Effect.catch(() => router.route({ to: messages[0]?.to ?? "", appId: null, orgId: null, sender: null })),
              Effect.option
            )
            if (route._tag === "None") continue
            const target = route.value.target
            yield* dispatcher.dispatchAll(target, messages.map((m) => ({
              ...(target._tag === "Pool" ? { pool: target.id } : {}),
              messageId: m.id,
              to: m.to,
              from: m.from,
              text: m.text,
              encoding: m.encoding,
              seqs: m.pendingSeqs,
              ...(m.validitySeconds !== undefined ? { validitySeconds: m.validitySeconds } : {}),
              acceptedAt: Date.now(),
              ...(m.trace !== undefined ? { trace: m.trace } : {})
            })))
          }
          total += found.length
          // Only the start-up pass pages through everything; periodic passes take one page per tick.
          if (found.length < 1000 || !all) break
        }
        if (total > 0) yield* Effect.logInfo("recovery re-drove pending messages").pipe(Effect.annotateLogs({ count: total }))
      }).pipe(
        Effect.catchCause((cause) => Effect.logWarning("recovery pass failed").pipe(Effect.annotateLogs({ cause: String(cause) })))
      )

    const job = Effect.gen(function*() {
      if (options.recoverAllOnStart) yield* pass(Date.now(), true)
      yield* Effect.gen(function*() {
        // Released by a stopping link (updated_at = 0): at once. Untouched for idleMs: a crash or a lost hand-off.
        yield* pass(1, false)
        yield* pass(Date.now() - options.idleMs, false)
        const backlog = yield* store.pendingCount.pipe(Effect.option)
        if (backlog._tag === "Some") metrics.pending(backlog.value)
      }).pipe(Effect.delay(options.intervalMs), Effect.repeat(Schedule.spaced(options.intervalMs)))
    })
    return Singleton.make("smsgw/recovery", job)
  }))
