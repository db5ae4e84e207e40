/** One preview or dry run per organisation at a time: a second meanwhile is refused at once, the key freed however the first ends. */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber } from "effect"
import { onePerKey } from "../../src/pipeline/CampaignInsight.ts"

describe("onePerKey", () => {
  it.effect("a second run for the same key while the first runs fails with InsightBusy; other keys run; the key is freed after", () =>
    Effect.gen(function*() {
      const exclusive = onePerKey()
      const release = yield* Deferred.make<void>()
      const started = yield* Deferred.make<void>()
      const first = yield* exclusive("org-a", Deferred.succeed(started, undefined).pipe(Effect.andThen(Deferred.await(release)), Effect.as("first"))).pipe(
        Effect.forkChild
      )
      yield* Deferred.await(started)
      const busy = yield* exclusive("org-a", Effect.succeed("second")).pipe(Effect.flip)
      expect(busy).toMatchObject({ _tag: "InsightBusy", retryAfterSeconds: 2 })
      expect(yield* exclusive("org-b", Effect.succeed("other organisation"))).toBe("other organisation")
      yield* Deferred.succeed(release, undefined)
      expect(yield* Fiber.join(first)).toBe("first")
      expect(yield* exclusive("org-a", Effect.succeed("after"))).toBe("after")
    }))

  it.effect("a run that fails or is interrupted frees its key", () =>
    Effect.gen(function*() {
      const exclusive = onePerKey()
      const failed = yield* Effect.exit(exclusive("org-a", Effect.fail("boom")))
      expect(Exit.isFailure(failed)).toBe(true)
      const running = yield* exclusive("org-a", Effect.never).pipe(Effect.forkChild)
      yield* Effect.yieldNow
      expect((yield* exclusive("org-a", Effect.succeed("meanwhile")).pipe(Effect.flip))._tag).toBe("InsightBusy")
      yield* Fiber.interrupt(running)
      expect(yield* exclusive("org-a", Effect.succeed("free again"))).toBe("free again")
    }))
})
