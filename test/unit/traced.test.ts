import { describe, expect, it } from "@effect/vitest"
import { Effect, Option, References, Tracer } from "effect"
import { traced } from "../../src/observability/Tracing.ts"

/** The span the effect runs in, by name, if any. */
const parentName = Effect.map(Effect.serviceOption(Tracer.ParentSpan), (span) =>
  Option.match(span, { onNone: () => undefined, onSome: (s) => s._tag === "Span" ? s.name : "external" }))

describe("traced", () => {
  it.effect("with tracing off, runs the effect as it is: no span, not even a no-op one, in its context", () =>
    Effect.gen(function*() {
      expect(yield* parentName.pipe(traced("smsgw.route"))).toBeUndefined()
    }).pipe(Effect.provideService(References.TracerEnabled, false)))

  it.effect("with tracing on, runs the effect in a span of that name and attributes", () =>
    Effect.gen(function*() {
      expect(yield* parentName.pipe(traced("smsgw.route"))).toBe("smsgw.route")
      const attributes = yield* Effect.map(Effect.currentSpan, (s) => s.attributes.get("smsgw.messages")).pipe(
        traced("smsgw.store.accept", { attributes: { "smsgw.messages": 3 } })
      )
      expect(attributes).toBe(3)
    }).pipe(Effect.provideService(References.TracerEnabled, true)))
})
