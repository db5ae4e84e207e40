import { describe, expect, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { InvalidField, MessageNotFound, StoreUnavailable } from "../../src/domain/Errors.ts"
import { NotFoundProblem } from "../../src/http/Problems.ts"
import { RateLimited } from "../../src/ratelimit/RateLimiter.ts"

const frames = (error: Error) => (error.stack ?? "").split("\n").filter((line) => line.trimStart().startsWith("at ")).length

describe("errors that are answers are built without a stack trace", () => {
  it("an answer keeps its tag, fields, class and schema; it has no frames; a defect-like error keeps its stack", () => {
    const limit = Error.stackTraceLimit
    const notFound = new MessageNotFound({ id: "m1" })
    expect(notFound).toBeInstanceOf(MessageNotFound)
    expect(notFound).toBeInstanceOf(Error)
    expect([notFound._tag, notFound.id]).toEqual(["MessageNotFound", "m1"])
    expect(frames(notFound)).toBe(0)
    expect(Schema.is(MessageNotFound)(notFound)).toBe(true)
    const limited = new RateLimited({ policy: "app", retryAfterSeconds: 1, layer: "L1", policies: [] })
    expect(frames(limited)).toBe(0)
    expect(frames(new NotFoundProblem({ detail: "no message m1" } as never))).toBe(0)
    expect(frames(new StoreUnavailable({ message: "database down" }))).toBeGreaterThan(0)
    expect(Error.stackTraceLimit).toBe(limit)
  })

  it("the stack trace limit is restored when the constructor throws", () => {
    const limit = Error.stackTraceLimit
    expect(() => new InvalidField({ field: 1, message: "x" } as never)).toThrow()
    expect(Error.stackTraceLimit).toBe(limit)
  })

  it.effect("an answer fails an effect and is caught by its tag as before", () =>
    Effect.gen(function*() {
      const caught = yield* Effect.fail(new MessageNotFound({ id: "m2" })).pipe(
        Effect.catchTag("MessageNotFound", (e) => Effect.succeed(e.id))
      )
      expect(caught).toBe("m2")
    }))
})
