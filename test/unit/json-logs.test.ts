import { describe, expect, it } from "@effect/vitest"
import { Effect, Logger, References } from "effect"
import * as Logging from "../../src/observability/Logging.ts"
import { jsonLogger } from "../../src/observability/Logging.ts"

/** The lines `log.format: json` writes, captured from the console they go to. */
const linesOf = (effect: Effect.Effect<void>) => {
  const lines: Array<string> = []
  const original = globalThis.console.log
  globalThis.console.log = (line: string) => void lines.push(line)
  try {
    Effect.runSync(effect.pipe(Effect.provide(Logger.layer([jsonLogger]))))
  } finally {
    globalThis.console.log = original
  }
  return lines.map((l) => JSON.parse(l) as Record<string, unknown>)
}

describe("JSON log lines", () => {
  it("one object a line: level, message, annotations as fields, trace and span ids inside a span", () => {
    const [outside, inside] = linesOf(Effect.gen(function*() {
      yield* Effect.logWarning("link unbound").pipe(Effect.annotateLogs({ linkId: "sim", level: "not the level" }))
      yield* Effect.logInfo("submitted", 3).pipe(Effect.withSpan("work"))
    }))
    expect(outside).toMatchObject({ level: "WARN", message: "link unbound", linkId: "sim" })
    expect(outside?.timestamp).toMatch(/^\d{4}-\d\d-\d\dT/)
    expect(outside?.trace_id).toBeUndefined()
    expect(inside).toMatchObject({ level: "INFO", message: "submitted 3" })
    expect(inside?.trace_id).toMatch(/^[0-9a-f]{32}$/)
    expect(inside?.span_id).toMatch(/^[0-9a-f]{16}$/)
  })

  it("a failure's cause is a field; lines below the minimum level are not written", () => {
    const lines = linesOf(Effect.gen(function*() {
      yield* Effect.logDebug("noise")
      yield* Effect.logError("request failed", new Error("boom"))
    }).pipe(Effect.provideService(References.MinimumLogLevel, "Info")))
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatchObject({ level: "ERROR", message: "request failed boom" })
  })

  it("a module's own level: its lines below the overall level are written, other modules' are not", () => {
    const lines: Array<string> = []
    const original = globalThis.console.log
    globalThis.console.log = (line: string) => void lines.push(line)
    try {
      Effect.runSync(Effect.gen(function*() {
        yield* Effect.logDebug("submit_sm sent").pipe(Logging.logsAs("link"))
        yield* Effect.logInfo("policy applied").pipe(Logging.logsAs("policy"))
        yield* Effect.logInfo("starting")
        yield* Effect.logWarning("policy store down").pipe(Logging.logsAs("policy"))
      }).pipe(Effect.provide(Logging.layer({ format: "json", level: "warning", modules: { link: "debug" } }))))
    } finally {
      globalThis.console.log = original
    }
    expect(lines.map((l) => JSON.parse(l) as Record<string, unknown>).map((l) => [l.module, l.message])).toEqual([
      ["link", "submit_sm sent"],
      ["policy", "policy store down"]
    ])
  })
})
