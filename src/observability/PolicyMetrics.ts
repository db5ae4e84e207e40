/**
 * Metrics of the contact-policy stage. Blacklist series carry a `list` attribute; they are updated when a list loads
 * or its overlay changes (never per message), so an update as an effect is cheap enough.
 */
import { Context, Effect, Layer, Metric } from "effect"
import { labelled, registerSeries } from "./Metrics.ts"

export const blacklistEntries = Metric.gauge("smsgw_blacklist_entries", {
  description: "Numbers a blacklist holds: its file's plus those added through the API"
})
export const blacklistLoadSeconds = Metric.gauge("smsgw_blacklist_load_seconds", {
  description: "Duration of a blacklist's last successful load (download, parse, build)"
})
export const blacklistLoadFailures = Metric.counter("smsgw_blacklist_load_failures_total", {
  description: "Failed checks or loads of a blacklist's file (missing, unreadable, corrupt): the previous version stays"
})
export const blacklistStale = Metric.gauge("smsgw_blacklist_stale", {
  description: "1 while a blacklist's last check or load failed, so the version in use may be older than its file"
})

const forList = <Input, State>(metric: Metric.Metric<Input, State>, list: string) =>
  Metric.withAttributes(metric, { list })

/** The blacklist series of one list. */
export const blacklistMetrics = (list: string) => {
  const entries = forList(blacklistEntries, list)
  const loadSeconds = forList(blacklistLoadSeconds, list)
  const failures = forList(blacklistLoadFailures, list)
  const stale = forList(blacklistStale, list)
  return {
    entries: (n: number) => Metric.update(entries, n),
    loaded: (seconds: number) => Effect.andThen(Metric.update(loadSeconds, seconds), Metric.update(stale, 0)),
    failed: Effect.andThen(Metric.update(failures, 1), Metric.update(stale, 1)),
    fresh: Metric.update(stale, 0),
    /** A list no longer configured: its series leave the registry, so no alert fires for a list that is gone. */
    remove: Effect.all([Metric.remove(entries), Metric.remove(loadSeconds), Metric.remove(failures), Metric.remove(stale)], {
      discard: true
    })
  }
}

const decisions = Metric.counter("smsgw_policy_decisions_total", {
  description: "Contact-policy decisions: admitted, or refused by a rule (rule, result = reason)"
})
const counterWrites = Metric.counter("smsgw_policy_counts_written_total", {
  description: "Recipient states written behind to the counter store"
})
const counterFailures = Metric.counter("smsgw_policy_counts_store_failures_total", {
  description: "Failed loads or writes of recipient counters (decisions go on from this node's memory)"
})
const bucketsOwned = Metric.gauge("smsgw_policy_buckets_owned", {
  description: "Recipient buckets (RecipientPolicy actors) running on this node"
})

/** Hot-path policy metrics, updated synchronously (each labelled series made once). */
export class PolicyMetrics extends Context.Service<PolicyMetrics, {
  readonly decision: (rule: string, result: string) => void
  readonly counterWrites: (n: number) => void
  readonly counterStoreFailure: (operation: "load" | "save") => void
  readonly bucketsOwned: (n: number) => void
}>()("smsgw/observability/PolicyMetrics") {
  static readonly layer = Layer.effect(
    PolicyMetrics,
    Effect.gen(function*() {
      const context = yield* Effect.context<never>()
      const tagged = labelled()
      registerSeries(counterWrites, context)
      registerSeries(bucketsOwned, context)
      for (const operation of ["load", "save"]) registerSeries(tagged(counterFailures, operation, { operation }), context)
      return PolicyMetrics.of({
        decision: (rule, result) => tagged(decisions, `${rule}|${result}`, { rule, result }).updateUnsafe(1, context),
        counterWrites: (n) => counterWrites.updateUnsafe(n, context),
        counterStoreFailure: (operation) => tagged(counterFailures, operation, { operation }).updateUnsafe(1, context),
        bucketsOwned: (n) => bucketsOwned.updateUnsafe(n, context)
      })
    })
  )
}
