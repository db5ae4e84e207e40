/**
 * Traces: Effect's spans exported over OTLP/HTTP (effect/observability's OtlpTracer) when `telemetry.otlp` is set;
 * tracing off otherwise (spans are no-ops, nothing recorded). Sampling is decided where a trace starts — an API request
 * or a campaign batch, by `sampleRatio` — and inherited below it, a caller's `traceparent` deciding for its own trace.
 * Background work (polls, sweeps) starts no trace. The exporter's health gates sampling: while the collector fails or
 * falls behind, new traces are not sampled (counted), so a collector that is down costs a counter, not memory or
 * latency. A message carries its trace as a W3C `traceparent` string, so the link that sends it (on any node) and the
 * receipt that ends it (hours later) join the same trace.
 */
import { Clock, Context, Duration, Effect, Exit, Layer, Metric, Option, References, Tracer } from "effect"
import { FetchHttpClient, HttpClient, HttpClientError } from "effect/http"
import { OtlpExporter, OtlpSerialization, OtlpTracer } from "effect/observability"
import { registerSeries } from "./Metrics.ts"

export interface TelemetryOptions {
  readonly serviceName: string
  readonly serviceVersion: string
  /** The share of traces started here that are recorded (0..1). */
  readonly sampleRatio: number
  readonly otlp?: {
    /** The collector's base URL (`http://collector:4318`); spans go to `<endpoint>/v1/traces`. */
    readonly endpoint: string
    readonly headers: Readonly<Record<string, string>>
    readonly timeoutMs: number
    readonly exportIntervalMs: number
  } | undefined
  /** Extra resource attributes, e.g. the runner address of a cluster node. */
  readonly attributes?: Readonly<Record<string, string>> | undefined
}

const tracesDropped = Metric.counter("smsgw_traces_unsampled_total", {
  description: "Traces not recorded, by reason (exporter: the collector was failing or behind)"
})
const exportFailures = Metric.counter("smsgw_trace_exports_failed_total", {
  description: "Span exports to the OTLP collector that failed (timed out, refused, or answered an error)"
})

/** Span kinds that start a trace here: a request from outside, or work this node starts for a user (a campaign). */
const traceStarting = new Set<Tracer.SpanKind>(["server", "consumer", "producer"])

/**
 * The exporter's health as its HTTP requests show it: exports in flight, and since when they fail. While unhealthy,
 * one new trace a second is still sampled, so an export happens and can find the collector back.
 */
const exportHealth = () => {
  let inFlight = 0
  let failingSince: number | undefined
  let lastProbe = 0
  return {
    started: () => void inFlight++,
    finished: (ok: boolean) => {
      inFlight--
      failingSince = ok ? undefined : failingSince ?? Date.now()
    },
    /** Whether a new trace may be recorded now. */
    admits: (): boolean => {
      if (failingSince === undefined && inFlight < 2) return true
      const now = Date.now()
      if (now - lastProbe < 1000) return false
      lastProbe = now
      return true
    }
  }
}

/**
 * A span that is not recorded: no ids drawn, no attributes kept, nothing exported. Every span below it is one too
 * (sampling follows the parent), so at a low ratio most of the work's spans cost an object and nothing more.
 */
const UnrecordedSpan: Omit<Tracer.Span, "parent" | "name" | "annotations" | "kind" | "links"> = {
  _tag: "Span",
  spanId: "0000000000000000",
  traceId: "00000000000000000000000000000000",
  sampled: false,
  status: { _tag: "Ended", startTime: 0n, endTime: 0n, exit: Exit.void },
  attributes: new Map(),
  end() {},
  attribute() {},
  event() {},
  addLinks() {}
}

const unrecorded = (options: Parameters<Tracer.Tracer["span"]>[0]): Tracer.Span =>
  Object.assign(Object.create(UnrecordedSpan) as Tracer.Span, {
    name: options.name,
    parent: options.parent,
    annotations: options.annotations,
    kind: options.kind,
    links: options.links
  })

/** The tracer, wrapped: trace-starting spans sampled by ratio and exporter health; internal roots never. */
const sampling = (
  inner: Tracer.Tracer,
  ratio: number,
  admits: () => boolean,
  unsampled: (reason: string) => void
): Tracer.Tracer =>
  Tracer.make({
    span(options) {
      if (!options.sampled) return unrecorded(options)
      if (Option.isSome(options.parent)) return options.parent.value.sampled ? inner.span(options) : unrecorded(options)
      if (!traceStarting.has(options.kind) || (ratio < 1 && Math.random() >= ratio)) return unrecorded(options)
      if (!admits()) {
        unsampled("exporter")
        return unrecorded(options)
      }
      return inner.span(options)
    },
    ...(inner.context !== undefined ? { context: inner.context } : {})
  })

/**
 * The tracing of a process: the OTLP tracer when an endpoint is configured, tracing disabled otherwise. Every export
 * request is bounded by `timeoutMs`; a failing one marks the exporter unhealthy until one succeeds.
 */
export const layer = (options: TelemetryOptions): Layer.Layer<never> => {
  const otlp = options.otlp
  if (otlp === undefined) return Layer.succeed(References.TracerEnabled, false)
  return Layer.effect(
    Tracer.Tracer,
    Effect.gen(function*() {
      const context = yield* Effect.context<never>()
      const health = exportHealth()
      const timeout = Duration.millis(otlp.timeoutMs)
      const client = (yield* HttpClient.HttpClient).pipe(
        HttpClient.transform((response, request) =>
          Effect.suspend(() => {
            health.started()
            return response
          }).pipe(
            Effect.timeoutOrElse({
              duration: timeout,
              orElse: () =>
                Effect.fail(
                  new HttpClientError.HttpClientError({
                    reason: new HttpClientError.TransportError({ request, description: `no answer within ${otlp.timeoutMs} ms` })
                  })
                )
            }),
            Effect.onExit((exit) =>
              Effect.sync(() => {
                const ok = exit._tag === "Success" && exit.value.status < 400
                health.finished(ok)
                if (!ok) exportFailures.updateUnsafe(1, context)
              })
            )
          )
        )
      )
      const tracer = yield* OtlpTracer.make({
        url: `${otlp.endpoint.replace(/\/+$/, "")}/v1/traces`,
        resource: {
          serviceName: options.serviceName,
          serviceVersion: options.serviceVersion,
          ...(options.attributes !== undefined ? { attributes: options.attributes } : {})
        },
        headers: otlp.headers,
        exportInterval: Duration.millis(otlp.exportIntervalMs),
        maxBatchSize: 512,
        shutdownTimeout: Duration.seconds(3)
      }).pipe(Effect.provideService(HttpClient.HttpClient, client))
      const unsampled = Metric.withAttributes(tracesDropped, { reason: "exporter" })
      registerSeries(unsampled, context)
      registerSeries(exportFailures, context)
      return sampling(tracer, options.sampleRatio, health.admits, () => unsampled.updateUnsafe(1, context))
    })
  ).pipe(
    Layer.provide(Layer.mergeAll(FetchHttpClient.layer, OtlpSerialization.layerJson, OtlpExporter.layerFlusher))
  )
}

/**
 * Span options that skip Effect's capture of the caller's stack (a `new Error()` on every call of `withSpan`, kept as
 * the span's source location): on the message path that capture cost more than the span itself, traced or not.
 */
export const untracedStack = { captureStackTrace: false } as const

/**
 * `Effect.withSpan` for the message path: the span when tracing is on (`telemetry.otlp`), else the effect itself. Off,
 * Effect would still make a no-op span and add it to the fiber's context as the parent span — on every message, several
 * times, and past eight additions Effect copies the request's whole context (~80 services).
 */
export const traced = (name: string, options?: { readonly attributes?: Record<string, unknown>; readonly kind?: Tracer.SpanKind }) =>
<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.withFiber((fiber) =>
    fiber.getRef(References.TracerEnabled) ? Effect.withSpan(effect, name, { ...options, ...untracedStack }) : effect
  )

/** The span work runs in, when a recorded one (never an error when there is none: this is on every message's path). */
export const recordedSpan: Effect.Effect<Tracer.AnySpan | undefined> = Effect.map(
  Effect.serviceOption(Tracer.ParentSpan),
  (span) => Option.isSome(span) && span.value.sampled ? span.value : undefined
)

/**
 * Long-lived work started from inside a request (an actor's loop that a request woke): out of that request's trace,
 * which it would otherwise fill for as long as it runs. Work inside it that starts a trace of its own (a root span of
 * kind producer, such as a campaign batch) is still recorded.
 */
export const detached = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.withSpan(effect, "smsgw.background", { ...untracedStack, root: true })

/** A span's W3C `traceparent`, what a message carries and stores; only for a sampled span (else nothing to join). */
export const traceparentOf = (span: Tracer.AnySpan): string | undefined =>
  span.sampled ? `00-${span.traceId}-${span.spanId}-01` : undefined

/** The current span's `traceparent`, when there is a sampled one. */
export const currentTraceparent: Effect.Effect<string | undefined> = Effect.map(
  recordedSpan,
  (span) => span === undefined ? undefined : traceparentOf(span)
)

const traceparentPattern = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/

/** The span a `traceparent` names, as the parent of spans that continue its trace. */
export const parentOf = (traceparent: string | undefined): Tracer.ExternalSpan | undefined => {
  if (traceparent === undefined) return undefined
  const [, traceId, spanId, flags] = traceparentPattern.exec(traceparent) ?? []
  if (traceId === undefined || spanId === undefined || flags === undefined) return undefined
  return Tracer.externalSpan({ traceId, spanId, sampled: (Number.parseInt(flags, 16) & 1) === 1 })
}

/**
 * A span of work done for a message elsewhere than where its trace started (a link's queue, its submit, its receipt):
 * the effect runs inside it when the message carries a trace, as is otherwise. No trace, no span.
 */
export const withMessageSpan = (
  traceparent: string | undefined,
  name: string,
  attributes: Record<string, unknown>,
  kind: Tracer.SpanKind = "internal"
) =>
<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => {
  const parent = parentOf(traceparent)
  return parent === undefined || !parent.sampled ? effect : Effect.withSpan(effect, name, { ...untracedStack, parent, attributes, kind })
}

/**
 * A span of work already done for a message, from `startedAt` until now: a wait in a link's queue,
 * a receipt whose message (and so whose trace) the store found only after. Nothing when the message is not traced.
 */
export const recordMessageSpan = (
  traceparent: string | undefined,
  name: string,
  /** Epoch milliseconds, sub-millisecond precise (`preciseNow`). */
  startedAt: number,
  attributes: Record<string, unknown>,
  kind: Tracer.SpanKind = "internal"
): Effect.Effect<void> =>
  Effect.suspend(() => {
    const parent = parentOf(traceparent)
    if (parent === undefined || !parent.sampled) return Effect.void
    return Effect.gen(function*() {
      if (!(yield* References.TracerEnabled)) return
      const tracer = yield* Tracer.Tracer
      const span = tracer.span({
        name,
        parent: Option.some(parent),
        annotations: Context.empty(),
        links: [],
        startTime: BigInt(Math.round(startedAt * 1_000_000)),
        kind,
        root: false,
        sampled: true
      })
      for (const [key, value] of Object.entries(attributes)) span.attribute(key, value)
      span.end(yield* Clock.currentTimeNanos, Exit.void)
    })
  })

/** Now in epoch milliseconds, sub-millisecond precise: when work began whose span is recorded later (or its wait). */
export const preciseNow = (): number => performance.timeOrigin + performance.now()
