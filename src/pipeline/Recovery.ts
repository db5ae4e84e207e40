import { Effect, Layer, Schedule } from "effect"
import { Singleton } from "effect/cluster"
import { Router } from "../routing/Router.ts"
import { MessageStore } from "../storage/MessageStore.ts"
import { LinkDispatcher } from "./LinkDispatcher.ts"
import { LinkMetrics } from "../observability/Metrics.ts"

export interface RecoveryOptions {
  /** A message untouched this long while not yet submitted is handed to its link again. */
  readonly idleMs: number
  readonly intervalMs: number
  /** Embedded mode: everything pending at start-up was left by the previous run, so re-drive it at once. */
  readonly recoverAllOnStart: boolean
}

/**
 * Re-drives messages that were accepted but never submitted: after a crash, a lost hand-off, a link outage, a link
 * that handed its queue back when it stopped. One job per cluster: a singleton, which moves to a survivor with its
 * runner's shards.
 */
export const layer = (options: RecoveryOptions) =>
  Layer.unwrap(Effect.gen(function*() {
    const store = yield* MessageStore
    const router = yield* Router
    const dispatcher = yield* LinkDispatcher
    const metrics = yield* LinkMetrics

    /** Re-drives every pending message last touched before `updatedBefore` (epoch ms); pages when `all`. */
    const pass = (updatedBefore: number, all: boolean) =>
      Effect.gen(function*() {
        let total = 0
        for (;;) {
          const pending = yield* store.pending({ updatedBefore, limit: 1000, offset: all ? total : 0 })
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
              acceptedAt: Date.now()
            })))
          }
          total += pending.length
          // Only the start-up pass pages through everything; periodic passes take one page per tick.
          if (pending.length < 1000 || !all) break
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
