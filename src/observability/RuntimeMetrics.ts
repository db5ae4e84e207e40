/**
 * The process's own metrics, read when /metrics is scraped, under the names Node services commonly export (those of
 * prom-client's default metrics, so existing dashboards work): CPU, memory, the event loop's delay since the previous
 * scrape, and garbage collection pauses by kind. The event loop's delay is what a request waits before its turn: the
 * first thing to read when latency has a tail.
 */
import { Context, Effect, Layer, Metric } from "effect"
import { constants, monitorEventLoopDelay, PerformanceObserver } from "node:perf_hooks"
import type { ELDHistogram } from "node:perf_hooks"
import { labelled, registerSeries } from "./Metrics.ts"

const cpuUser = Metric.counter("process_cpu_user_seconds_total", { description: "User CPU time spent, in seconds" })
const cpuSystem = Metric.counter("process_cpu_system_seconds_total", { description: "System CPU time spent, in seconds" })
const cpuTotal = Metric.counter("process_cpu_seconds_total", { description: "User and system CPU time spent, in seconds" })
const startTime = Metric.gauge("process_start_time_seconds", { description: "Start time of the process since the epoch, in seconds" })
const rss = Metric.gauge("process_resident_memory_bytes", { description: "Resident memory size, in bytes" })
const heapTotal = Metric.gauge("nodejs_heap_size_total_bytes", { description: "V8 heap size, in bytes" })
const heapUsed = Metric.gauge("nodejs_heap_size_used_bytes", { description: "V8 heap used, in bytes" })
const external = Metric.gauge("nodejs_external_memory_bytes", { description: "Memory of C++ objects bound to JavaScript objects, in bytes" })
const lag = {
  min: Metric.gauge("nodejs_eventloop_lag_min_seconds", { description: "Smallest event loop delay since the previous scrape" }),
  max: Metric.gauge("nodejs_eventloop_lag_max_seconds", { description: "Largest event loop delay since the previous scrape" }),
  mean: Metric.gauge("nodejs_eventloop_lag_mean_seconds", { description: "Mean event loop delay since the previous scrape" }),
  stddev: Metric.gauge("nodejs_eventloop_lag_stddev_seconds", { description: "Standard deviation of the event loop delay since the previous scrape" }),
  p50: Metric.gauge("nodejs_eventloop_lag_p50_seconds", { description: "Median event loop delay since the previous scrape" }),
  p90: Metric.gauge("nodejs_eventloop_lag_p90_seconds", { description: "90th percentile of the event loop delay since the previous scrape" }),
  p99: Metric.gauge("nodejs_eventloop_lag_p99_seconds", { description: "99th percentile of the event loop delay since the previous scrape" })
}
const gcDuration = Metric.histogram("nodejs_gc_duration_seconds", {
  description: "Garbage collection pauses by kind (minor: scavenge; major: mark-compact)",
  boundaries: [0.001, 0.01, 0.1, 1, 2, 5]
})

/**
 * V8's GC kinds, keyed by perf_hooks' own constants (`NODE_PERFORMANCE_GC_*`: 1, 4, 8, 16; a hand-written 1/2/4/8 map
 * once labelled every mark-compact "incremental"): four values, so the label stays bounded.
 */
const gcKinds: Record<number, string> = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: "minor",
  [constants.NODE_PERFORMANCE_GC_MAJOR]: "major",
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: "incremental",
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: "weakcb"
}

/** CPU counted into the counters so far: one per process (tests run several gateways in one), so none is counted twice. */
let cpuCounted = { user: 0, system: 0 }

/** Sampling interval of the event loop's delay; the overhead is one timer of this period. */
const lagResolutionMs = 10

export class RuntimeMetrics extends Context.Service<RuntimeMetrics, {
  /** Brings the gauges up to date (and starts a new window for the event loop's delay): call before formatting. */
  readonly collect: Effect.Effect<void>
}>()("smsgw/observability/RuntimeMetrics") {
  static readonly layer = Layer.effect(
    RuntimeMetrics,
    Effect.gen(function*() {
      const context = yield* Effect.context<never>()
      const histogram: ELDHistogram = yield* Effect.acquireRelease(
        Effect.sync(() => {
          const h = monitorEventLoopDelay({ resolution: lagResolutionMs })
          h.enable()
          return h
        }),
        (h) => Effect.sync(() => h.disable())
      )
      const gcSeries = labelled()
      for (const kind of Object.values(gcKinds)) registerSeries(gcSeries(gcDuration, kind, { kind }), context)
      yield* Effect.acquireRelease(
        Effect.sync(() => {
          const observer = new PerformanceObserver((list) => {
            for (const entry of list.getEntries()) {
              const kind = gcKinds[((entry as { readonly detail?: { readonly kind?: number } }).detail?.kind ?? 0)] ?? "other"
              gcSeries(gcDuration, kind, { kind }).updateUnsafe(entry.duration / 1000, context)
            }
          })
          observer.observe({ entryTypes: ["gc"] })
          return observer
        }),
        (observer) => Effect.sync(() => observer.disconnect())
      )
      startTime.updateUnsafe(Math.round(Date.now() / 1000 - process.uptime()), context)
      const collect = Effect.sync(() => {
        const now = process.cpuUsage()
        const before = cpuCounted
        cpuCounted = now
        cpuUser.updateUnsafe((now.user - before.user) / 1e6, context)
        cpuSystem.updateUnsafe((now.system - before.system) / 1e6, context)
        cpuTotal.updateUnsafe((now.user - before.user + now.system - before.system) / 1e6, context)
        const memory = process.memoryUsage()
        rss.updateUnsafe(memory.rss, context)
        heapTotal.updateUnsafe(memory.heapTotal, context)
        heapUsed.updateUnsafe(memory.heapUsed, context)
        external.updateUnsafe(memory.external, context)
        // Nanoseconds between two ticks of the sampling timer, so each holds the resolution itself: what is reported is
        // the delay beyond it (prom-client reports the raw value, ~10 ms more). An empty window reads as 0.
        const seconds = (ns: number) =>
          Number.isFinite(ns) && histogram.count > 0 ? Math.max(0, ns - lagResolutionMs * 1e6) / 1e9 : 0
        lag.min.updateUnsafe(seconds(histogram.min), context)
        lag.max.updateUnsafe(seconds(histogram.max), context)
        lag.mean.updateUnsafe(seconds(histogram.mean), context)
        lag.stddev.updateUnsafe(seconds(histogram.stddev), context)
        lag.p50.updateUnsafe(seconds(histogram.percentile(50)), context)
        lag.p90.updateUnsafe(seconds(histogram.percentile(90)), context)
        lag.p99.updateUnsafe(seconds(histogram.percentile(99)), context)
        histogram.reset()
      })
      return RuntimeMetrics.of({ collect })
    })
  )
}
