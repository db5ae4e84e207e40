import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { TestClock } from "effect/testing"
import { type LoginKey, LoginThrottle } from "../../src/auth/LoginThrottle.ts"

const throttle = (maxEntries?: number) =>
  LoginThrottle.layerMemory({
    perAccount: { max: 3, windowMs: 60_000 },
    perIp: { max: 10, windowMs: 600_000 },
    registrations: { max: 2, windowMs: 3_600_000 },
    invitations: { max: 3, windowMs: 3_600_000 },
    ...(maxEntries === undefined ? {} : { maxEntries })
  })

/** Undefined when the attempt may go ahead, else the seconds to wait. */
const attempt = (key: LoginKey) =>
  LoginThrottle.use((t) => t.check(key)).pipe(
    Effect.as<number | undefined>(undefined),
    Effect.catchTag("LoginThrottled", (e) => Effect.succeed(e.retryAfterSeconds))
  )

const fail = (key: LoginKey) =>
  Effect.gen(function*() {
    const t = yield* LoginThrottle
    yield* t.check(key)
    yield* t.recordFailure(key)
  })

const alice = { account: "alice@example.com", ip: "198.51.100.7" }

describe("LoginThrottle", () => {
  it.effect("blocks an account from the failing address until its window has passed, and only from there", () =>
    Effect.gen(function*() {
      for (let i = 0; i < 3; i++) yield* fail(alice)
      expect(yield* attempt(alice)).toBe(60)
      // The owner at another address is not locked out by a stranger's guesses.
      expect(yield* attempt({ ...alice, ip: "203.0.113.1" })).toBeUndefined()
      yield* TestClock.adjust("30 seconds")
      expect(yield* attempt(alice)).toBe(30)
      yield* TestClock.adjust("29.5 seconds")
      expect(yield* attempt(alice)).toBe(1)
      yield* TestClock.adjust("0.5 seconds")
      expect(yield* attempt(alice)).toBeUndefined()
    }).pipe(Effect.provide(throttle())))

  it.effect("the account key ignores case and surrounding spaces", () =>
    Effect.gen(function*() {
      yield* fail({ ...alice, account: "Alice@Example.com" })
      yield* fail({ ...alice, account: " alice@example.COM " })
      yield* fail(alice)
      expect(yield* attempt({ ...alice, account: "ALICE@EXAMPLE.COM" })).toBe(60)
      expect(yield* attempt({ ...alice, account: "bob@example.com" })).toBeUndefined()
    }).pipe(Effect.provide(throttle())))

  it.effect("only the first refusal of a window is flagged for the audit log", () =>
    Effect.gen(function*() {
      const t = yield* LoginThrottle
      for (let i = 0; i < 3; i++) yield* fail(alice)
      const refusals = yield* Effect.forEach([1, 2, 3], () => Effect.flip(t.check(alice)))
      expect(refusals.map((e) => e.firstRefusal)).toEqual([true, false, false])
      yield* TestClock.adjust("61 seconds")
      for (let i = 0; i < 3; i++) yield* fail(alice)
      expect((yield* Effect.flip(t.check(alice))).firstRefusal).toBe(true)
    }).pipe(Effect.provide(throttle())))

  it.effect("registrations are counted per address, successful or not", () =>
    Effect.gen(function*() {
      const t = yield* LoginThrottle
      yield* t.registration("198.51.100.7")
      yield* t.registration("::ffff:198.51.100.7")
      expect((yield* Effect.flip(t.registration("198.51.100.7"))).retryAfterSeconds).toBe(3600)
      yield* t.registration("198.51.100.8")
      yield* TestClock.adjust("1 hour")
      yield* t.registration("198.51.100.7")
    }).pipe(Effect.provide(throttle())))

  it.effect("invitations are counted per organisation", () =>
    Effect.gen(function*() {
      const t = yield* LoginThrottle
      for (let i = 0; i < 3; i++) yield* t.invitation("org-a")
      expect((yield* Effect.flip(t.invitation("org-a"))).retryAfterSeconds).toBe(3600)
      yield* t.invitation("org-b")
      yield* TestClock.adjust("1 hour")
      yield* t.invitation("org-a")
    }).pipe(Effect.provide(throttle())))

  it.effect("a success clears the account's failures but not the address's", () =>
    Effect.gen(function*() {
      const t = yield* LoginThrottle
      yield* fail(alice)
      yield* fail(alice)
      yield* t.check(alice)
      yield* t.recordSuccess(alice)
      for (let i = 0; i < 3; i++) yield* fail(alice)
      expect(yield* attempt(alice)).toBe(60)
      // 5 failures from this address so far; 5 more and the address is blocked for everyone
      for (let i = 0; i < 5; i++) yield* fail({ account: `user${i}@example.com`, ip: alice.ip })
      expect(yield* attempt({ account: "carol@example.com", ip: alice.ip })).toBe(600)
    }).pipe(Effect.provide(throttle())))

  it.effect("blocks an address spraying many accounts, and only that address", () =>
    Effect.gen(function*() {
      for (let i = 0; i < 10; i++) yield* fail({ account: `victim${i}@example.com`, ip: "203.0.113.66" })
      expect(yield* attempt({ account: "new@example.com", ip: "203.0.113.66" })).toBe(600)
      expect(yield* attempt({ account: "new@example.com", ip: "::ffff:203.0.113.66" })).toBe(600)
      expect(yield* attempt({ account: "new@example.com", ip: "203.0.113.67" })).toBeUndefined()
      yield* TestClock.adjust("10 minutes")
      expect(yield* attempt({ account: "new2@example.com", ip: "203.0.113.66" })).toBeUndefined()
    }).pipe(Effect.provide(throttle())))

  it.effect("counts an IPv6 /64 as one address", () =>
    Effect.gen(function*() {
      for (let i = 0; i < 10; i++) yield* fail({ account: `v${i}@example.com`, ip: `2001:db8:1:2::${i + 1}` })
      expect(yield* attempt({ account: "x@example.com", ip: "2001:db8:1:2:ffff::9" })).toBe(600)
      expect(yield* attempt({ account: "x@example.com", ip: "2001:db8:1:3::1" })).toBeUndefined()
    }).pipe(Effect.provide(throttle())))

  it.effect("counts attempts in flight, so parallel guesses cannot all pass before their failures land", () =>
    Effect.gen(function*() {
      const t = yield* LoginThrottle
      const results = yield* Effect.forEach(
        Array.from({ length: 8 }, () => alice),
        (key) => Effect.exit(t.check(key)),
        { concurrency: "unbounded" }
      )
      expect(results.filter(Exit.isSuccess)).toHaveLength(3)
      // the three in flight end: two fail, one succeeds and clears the account
      yield* t.recordFailure(alice)
      yield* t.recordFailure(alice)
      yield* t.recordSuccess(alice)
      expect(yield* attempt(alice)).toBeUndefined()
    }).pipe(Effect.provide(throttle())))

  it.effect("keeps memory bounded and forgets expired windows", () =>
    Effect.gen(function*() {
      const t = yield* LoginThrottle
      for (let i = 0; i < 1000; i++) yield* fail({ account: `u${i}@example.com`, ip: `10.0.${i >> 8}.${i & 255}` })
      expect(yield* t.size).toBeLessThanOrEqual(200)
      yield* TestClock.adjust("11 minutes")
      yield* fail(alice)
      expect(yield* t.size).toBe(2)
    }).pipe(Effect.provide(throttle(100))))
})
