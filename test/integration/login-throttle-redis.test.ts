import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { LoginThrottle } from "../../src/auth/LoginThrottle.ts"
import * as LoginThrottleRedis from "../../src/auth/LoginThrottleRedis.ts"

const node = (keyPrefix: string, port = 6379) =>
  LoginThrottleRedis.layerRedis({
    perAccount: { max: 3, windowMs: 60_000 },
    perIp: { max: 100, windowMs: 60_000 },
    host: "127.0.0.1",
    port,
    keyPrefix,
    timeoutMs: 200
  })

/** One node's throttle, as a fresh layer: two of these share nothing but Redis. */
const onNode = <A, E>(keyPrefix: string, f: (t: LoginThrottle["Service"]) => Effect.Effect<A, E>, port?: number) =>
  Effect.flatMap(LoginThrottle, f).pipe(Effect.provide(node(keyPrefix, port)))

const attempt = (t: LoginThrottle["Service"], email: string, ip: string) =>
  Effect.exit(t.check({ email, ip }).pipe(Effect.andThen(t.recordFailure({ email, ip }))))

describe("login throttling shared through Redis", () => {
  it.live("failed logins on two nodes add up, and a success clears the account", () =>
    Effect.gen(function*() {
      const prefix = `smsgw:test:login:${crypto.randomUUID().slice(0, 8)}:`
      const email = "victim@example.com"
      yield* onNode(prefix, (a) => Effect.all([attempt(a, email, "10.0.0.1"), attempt(a, email, "10.0.0.2")]))
      const third = yield* onNode(prefix, (b) => attempt(b, email, "10.0.0.3"))
      expect(Exit.isSuccess(third)).toBe(true)
      const fourth = yield* onNode(prefix, (a) => attempt(a, email, "10.0.0.4"))
      expect(Exit.isFailure(fourth)).toBe(true)
      const throttled = yield* onNode(prefix, (b) => b.check({ email: "Victim@Example.com ", ip: "10.0.0.5" }).pipe(Effect.flip))
      expect(throttled.retryAfterSeconds).toBeGreaterThan(0)
      // Another account is not affected; a success clears this one.
      expect(Exit.isSuccess(yield* onNode(prefix, (b) => attempt(b, "other@example.com", "10.0.0.6")))).toBe(true)
      const other = "second@example.com"
      yield* onNode(prefix, (a) => Effect.all([attempt(a, other, "10.1.0.1"), attempt(a, other, "10.1.0.2")]))
      yield* onNode(prefix, (b) => b.check({ email: other, ip: "10.1.0.3" }).pipe(Effect.andThen(b.recordSuccess({ email: other, ip: "10.1.0.3" }))))
      expect(Exit.isSuccess(yield* onNode(prefix, (a) => attempt(a, other, "10.1.0.4")))).toBe(true)
    }))

  it.live("with Redis unreachable each node still throttles on its own", () =>
    Effect.gen(function*() {
      const exits = yield* onNode("smsgw:test:down:", (t) =>
        Effect.forEach(Array.from({ length: 5 }), () => attempt(t, "x@example.com", "10.9.9.9")), 1)
      expect(exits.filter(Exit.isSuccess)).toHaveLength(3)
    }))
})
