import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { LoginThrottle } from "../../src/auth/LoginThrottle.ts"
import * as LoginThrottleRedis from "../../src/storage/LoginThrottleRedis.ts"

const node = (keyPrefix: string, port = 6379) =>
  LoginThrottleRedis.layerRedis({
    perAccount: { max: 3, windowMs: 60_000 },
    perIp: { max: 100, windowMs: 60_000 },
    registrations: { max: 2, windowMs: 60_000 },
    invitations: { max: 2, windowMs: 60_000 },
    host: "127.0.0.1",
    port,
    keyPrefix,
    timeoutMs: 200
  })

/** One node's throttle, as a fresh layer: two of these share nothing but Redis. */
const onNode = <A, E>(keyPrefix: string, f: (t: LoginThrottle["Service"]) => Effect.Effect<A, E>, port?: number) =>
  Effect.flatMap(LoginThrottle, f).pipe(Effect.provide(node(keyPrefix, port)))

const attempt = (t: LoginThrottle["Service"], email: string, ip: string) =>
  Effect.exit(t.check({ account: email, ip }).pipe(Effect.andThen(t.recordFailure({ account: email, ip }))))

describe("login throttling shared through Redis", () => {
  it.live("failed logins of one account from one address add up over two nodes; another address is not locked out", () =>
    Effect.gen(function*() {
      const prefix = `smsgw:test:login:${crypto.randomUUID().slice(0, 8)}:`
      const email = "victim@example.com"
      const attacker = "10.0.0.1"
      yield* onNode(prefix, (a) => Effect.all([attempt(a, email, attacker), attempt(a, email, attacker)]))
      const third = yield* onNode(prefix, (b) => attempt(b, email, attacker))
      expect(Exit.isSuccess(third)).toBe(true)
      // The first refusal of the window is flagged once, whichever node sees it.
      const fourth = yield* onNode(prefix, (a) => a.check({ account: email, ip: attacker }).pipe(Effect.flip))
      expect(fourth.firstRefusal).toBe(true)
      const refusals = yield* Effect.all([
        onNode(prefix, (b) => b.check({ account: "Victim@Example.com ", ip: attacker }).pipe(Effect.flip)),
        onNode(prefix, (a) => a.check({ account: email, ip: attacker }).pipe(Effect.flip))
      ])
      expect(refusals.map((r) => r.retryAfterSeconds > 0)).toEqual([true, true])
      expect(refusals.map((r) => r.firstRefusal)).toEqual([false, false])
      // The owner, at another address, still gets in; another account from the attacker's address too.
      expect(Exit.isSuccess(yield* onNode(prefix, (b) => b.check({ account: email, ip: "10.0.0.2" }).pipe(Effect.exit)))).toBe(true)
      expect(Exit.isSuccess(yield* onNode(prefix, (b) => attempt(b, "other@example.com", attacker)))).toBe(true)
      // A success clears the pair.
      const other = "second@example.com"
      yield* onNode(prefix, (a) => Effect.all([attempt(a, other, "10.1.0.1"), attempt(a, other, "10.1.0.1")]))
      yield* onNode(prefix, (b) => b.check({ account: other, ip: "10.1.0.1" }).pipe(Effect.andThen(b.recordSuccess({ account: other, ip: "10.1.0.1" }))))
      expect(Exit.isSuccess(yield* onNode(prefix, (a) => attempt(a, other, "10.1.0.1")))).toBe(true)
      // Registrations from one address are counted over both nodes.
      yield* onNode(prefix, (a) => a.registration("10.2.0.1"))
      yield* onNode(prefix, (b) => b.registration("10.2.0.1"))
      const refused = yield* onNode(prefix, (a) => a.registration("10.2.0.1").pipe(Effect.flip))
      expect(refused.retryAfterSeconds).toBeGreaterThan(0)
      // So are an organisation's invitations.
      yield* onNode(prefix, (a) => a.invitation("org-1"))
      yield* onNode(prefix, (b) => b.invitation("org-1"))
      expect((yield* onNode(prefix, (a) => a.invitation("org-1").pipe(Effect.flip))).retryAfterSeconds).toBeGreaterThan(0)
      yield* onNode(prefix, (b) => b.invitation("org-2"))
    }))

  it.live("with Redis unreachable each node still throttles on its own", () =>
    Effect.gen(function*() {
      const exits = yield* onNode("smsgw:test:down:", (t) =>
        Effect.forEach(Array.from({ length: 5 }), () => attempt(t, "x@example.com", "10.9.9.9")), 1)
      expect(exits.filter(Exit.isSuccess)).toHaveLength(3)
    }))
})
