/**
 * Ends what waits for a receipt that will not come, one job per cluster (a singleton, like recovery):
 * - parts still `submitted` past their submit + validity + grace end `expired` (reason `no receipt`), in bounded
 *   batches per tick, so a message always reaches a final status;
 * - receipts kept for a submit result that never came (orphans) are dropped after `orphanTtlMs`.
 * Both are counted by link. The queries and the thresholds live in the store (MessageStore, ReceiptSettings).
 */
import { Effect, Layer, Schedule } from "effect"
import { Singleton } from "effect/cluster"
import { LinkMetrics } from "../observability/Metrics.ts"
import { MessageStore } from "../storage/MessageStore.ts"

export interface ReceiptSweeperOptions {
  readonly intervalMs: number
  /** Receipts kept this long for a submit result that never comes are dropped. */
  readonly orphanTtlMs: number
  /** Parts expired per statement, and statements per tick (bounds one tick's work). */
  readonly batch?: number
  readonly maxBatchesPerTick?: number
}

export const layer = (options: ReceiptSweeperOptions) =>
  Layer.unwrap(Effect.gen(function*() {
    const store = yield* MessageStore
    const metrics = yield* LinkMetrics
    const batch = options.batch ?? 500
    const maxBatches = options.maxBatchesPerTick ?? 20

    const expire = Effect.gen(function*() {
      let total = 0
      for (let i = 0; i < maxBatches; i++) {
        const expired = yield* store.expireOverdue({ now: Date.now(), limit: batch })
        if (expired.length === 0) break
        for (const { linkId, messages } of expired) {
          metrics.expiredNoReceipt(linkId, messages)
          total += messages
        }
      }
      if (total > 0) yield* Effect.logInfo("messages expired without a receipt").pipe(Effect.annotateLogs({ count: total }))
    })

    const dropOrphans = Effect.gen(function*() {
      const dropped = yield* store.dropOrphansBefore(Date.now() - options.orphanTtlMs)
      let total = 0
      for (const { linkId, receipts } of dropped) {
        metrics.orphansDropped(linkId, "ttl", receipts)
        total += receipts
      }
      if (total > 0) {
        yield* Effect.logInfo("dropped receipts that never found their message").pipe(
          Effect.annotateLogs({ count: total, olderThanSeconds: options.orphanTtlMs / 1000 })
        )
      }
    })

    const tick = Effect.all([expire, dropOrphans], { discard: true }).pipe(
      Effect.catchCause((cause) => Effect.logWarning("receipt sweep failed").pipe(Effect.annotateLogs({ cause: String(cause) })))
    )
    return Singleton.make("smsgw/receipt-sweeper", tick.pipe(Effect.delay(options.intervalMs), Effect.repeat(Schedule.spaced(options.intervalMs))))
  }))
