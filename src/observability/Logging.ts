/**
 * The process's log lines (`log:` in the configuration): logfmt text, or one JSON object a line carrying the trace
 * and span ids of the work that logged it, so a line leads to its trace; and the lowest level written.
 */
import { Cause, Context, Layer, Logger, References, Tracer } from "effect"
import type { LogLevel } from "effect"

export interface LogOptions {
  readonly format: "text" | "json"
  readonly level: "debug" | "info" | "warning" | "error"
}

const levels: Record<LogOptions["level"], LogLevel.LogLevel> = {
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

export const layer = (options: LogOptions): Layer.Layer<never> =>
  Layer.merge(
    Logger.layer([options.format === "json" ? jsonLogger : Logger.consoleLogFmt]),
    Layer.succeed(References.MinimumLogLevel, levels[options.level])
  )
