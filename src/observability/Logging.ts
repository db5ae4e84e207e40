/**
 * The process's log lines (`log:` in the configuration): logfmt text, or one JSON object a line carrying the trace
 * and span ids of the work that logged it, so a line leads to its trace; the lowest level written, overall and per
 * module (each part of the gateway annotates its lines with `module`, see `inModule`).
 */
import { Cause, Context, Effect, Layer, Logger, LogLevel, References, Tracer } from "effect"

/** The parts of the gateway whose lines carry a `module` annotation, each with a level of its own if configured. */
export const logModules = ["http", "grpc", "link", "policy", "ratelimit", "campaign", "recovery", "cdr", "callbacks", "inbound", "cluster", "smpp-server"] as const
export type LogModule = typeof logModules[number]

/** The levels a configuration names (`log.level`, `log.modules.*`). */
export const logLevels = ["debug", "info", "warning", "error"] as const
export type Level = typeof logLevels[number]

export interface LogOptions {
  readonly format: "text" | "json"
  readonly level: Level
  /** A level per module, above or below `level`. */
  readonly modules?: Partial<Record<LogModule, Level>> | undefined
}

const levels: Record<Level, LogLevel.LogLevel> = {
  debug: "Debug",
  info: "Info",
  warning: "Warn",
  error: "Error"
}

const text = (message: unknown): string => {
  const parts = Array.isArray(message) ? message : [message]
  return parts.map((p) => typeof p === "string" ? p : p instanceof Error ? p.message : JSON.stringify(p)).join(" ")
}

/**
 * One JSON object a line: time, level, message, the fiber, every log annotation as a field of its own (never over
 * the fixed ones), the cause when there is one, and `trace_id` / `span_id` inside a recorded span.
 */
export const jsonLogger = Logger.make(({ cause, date, fiber, logLevel, message }) => {
  const line: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(fiber.getRef(References.CurrentLogAnnotations))) line[key] = value
  line.timestamp = date.toISOString()
  line.level = logLevel.toUpperCase()
  line.message = text(message)
  line.fiber = `#${fiber.id}`
  if (cause.reasons.length > 0) line.cause = Cause.pretty(cause)
  const span = Context.getOrUndefined(fiber.context, Tracer.ParentSpan)
  if (span !== undefined && span.sampled) {
    line.trace_id = span.traceId
    line.span_id = span.spanId
  }
  globalThis.console.log(JSON.stringify(line))
})

/** Lines of a module below its own level are dropped; the others follow the overall level. */
const byModule = (inner: Logger.Logger<unknown, void>, options: LogOptions): Logger.Logger<unknown, void> => {
  const overall = levels[options.level]
  const own = new Map(Object.entries(options.modules ?? {}).map(([module, level]) => [module, levels[level]]))
  if (own.size === 0) return inner
  return Logger.make((line) => {
    const module = line.fiber.getRef(References.CurrentLogAnnotations).module
    const minimum = (typeof module === "string" ? own.get(module) : undefined) ?? overall
    if (LogLevel.isGreaterThanOrEqualTo(line.logLevel, minimum)) inner.log(line)
  })
}

export const layer = (options: LogOptions): Layer.Layer<never> => {
  const lowest = [levels[options.level], ...Object.values(options.modules ?? {}).map((l) => levels[l])]
    .reduce((a, b) => LogLevel.isLessThan(b, a) ? b : a)
  return Layer.merge(
    Logger.layer([byModule(options.format === "json" ? jsonLogger : Logger.consoleLogFmt, options)]),
    // Lines below every level are not even formatted; the module filter decides between.
    Layer.succeed(References.MinimumLogLevel, lowest)
  )
}

/** A layer whose work logs under `module` (its lines annotated `module=<name>`, and held to that module's level). */
export const inModule = (module: LogModule) => <A, E, R>(layer: Layer.Layer<A, E, R>): Layer.Layer<A, E, R> =>
  Layer.provide(layer, Layer.succeed(References.CurrentLogAnnotations, { module }))

/** Work that logs under `module`: an entity's construction (an entity runs in the cluster runtime's fibers, not its layer's). */
export const logsAs = (module: LogModule) => <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.annotateLogs(effect, "module", module)
