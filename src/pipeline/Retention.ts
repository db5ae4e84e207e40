/**
 * Retention: a cluster singleton that deletes messages (parts, events and receipts with them) older than
 * `retention.days`, but only once their CDR is exported, and audit entries older than `retention.auditDays`. It
 * deletes in bounded batches with a pause between them, so submissions never wait behind it.
 */
import { Effect, Layer, Schedule } from "effect"
import { Singleton } from "effect/cluster"
import { RetentionStore } from "../storage/RetentionStore.ts"
import { CdrMetrics } from "../observability/Metrics.ts"

export interface RetentionOptions {
  readonly messageDays: number
  readonly auditDays: number
  /**
   * With the CDR export on: only messages whose batch was done at least this long ago (a slow second exporter, a
   * singleton moving, may still be writing a batch another marked done); undefined: by age alone.
   */
  readonly exportGraceMs: number | undefined
  readonly batchSize: number
  readonly intervalMs: number
  /** Pause between two batches: the writers' turn. */
  readonly pauseMs?: number
}

const dayMs = 86_400_000

/** One pass: every batch due, then the batch bookkeeping. Answers the rows removed per table. */
export const purgeOnce = (options: RetentionOptions, now: number) =>
  Effect.gen(function*() {
    const store = yield* RetentionStore
    const metrics = yield* CdrMetrics
    const drain = (table: "messages" | "audit_log", purge: Effect.Effect<number, unknown>) =>
      Effect.gen(function*() {
        let total = 0
        for (;;) {
          const n = yield* purge
          total += n
          if (n > 0) metrics.purged(table, n)
          if (n < options.batchSize) return total
          yield* Effect.sleep(options.pauseMs ?? 50)
        }
      })
    const exportedBefore = options.exportGraceMs === undefined ? undefined : now - options.exportGraceMs
    const messages = yield* drain("messages", store.purgeMessages(now - options.messageDays * dayMs, options.batchSize, exportedBefore))
    const audit = yield* drain("audit_log", store.purgeAudit(now - options.auditDays * dayMs, options.batchSize))
    yield* store.purgeBatches
    if (messages + audit > 0) {
      yield* Effect.logInfo("retention purged old rows").pipe(Effect.annotateLogs({ messages, audit }))
    }
    return { messages, audit }
  })

export const layer = (options: RetentionOptions) =>
  Layer.unwrap(Effect.gen(function*() {
    const context = yield* Effect.context<RetentionStore | CdrMetrics>()
    const tick = Effect.suspend(() => purgeOnce(options, Date.now())).pipe(
      Effect.provideContext(context),
      Effect.catchCause((cause) => Effect.logWarning("retention pass failed; retried next interval").pipe(Effect.annotateLogs({ cause: String(cause) })))
    )
    return Singleton.make("smsgw/retention", tick.pipe(Effect.delay(Math.min(options.intervalMs, 10_000)), Effect.repeat(Schedule.spaced(options.intervalMs))))
  }))
