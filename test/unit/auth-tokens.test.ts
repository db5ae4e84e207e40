import { createHmac } from "node:crypto"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { TestClock } from "effect/testing"
import { SignJWT } from "jose"
import { type TokenOptions, Tokens } from "../../src/auth/Tokens.ts"

const k1 = { kid: "k1", secret: "k1-secret-0123456789abcdef0123456789" }
const k2 = { kid: "k2", secret: "k2-secret-0123456789abcdef0123456789" }
const base: TokenOptions = { issuer: "smsgw", audience: "smsgw-api", keys: [k1], accessTtlSeconds: 900 }
const start = Date.parse("2025-06-01T12:00:00Z")

/** A Tokens service of its own (own keys, own cache), as another deployment or a later configuration would have. */
const tokensWith = (options: TokenOptions) =>
  Effect.gen(function*() {
    return yield* Tokens
  }).pipe(Effect.provide(Tokens.layer(options)))

const reasonOf = (token: string, tokens: Tokens["Service"]) =>
  tokens.verify(token).pipe(
    Effect.flip,
    Effect.map((e) => e.reason)
  )

const b64url = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString("base64url")

/** A JWT put together by hand: any header, any payload, HMAC-SHA256 with `secret` (or no signature). */
const craft = (header: unknown, payload: unknown, secret: string | undefined): string => {
  const input = `${b64url(header)}.${b64url(payload)}`
  const signature = secret === undefined ? "" : createHmac("sha256", secret).update(input).digest("base64url")
  return `${input}.${signature}`
}

const nowSeconds = () => Math.floor(start / 1000)
const goodPayload = () => ({
  iss: "smsgw",
  aud: "smsgw-api",
  sub: "user-1",
  org: "org-1",
  role: "admin",
  iat: nowSeconds(),
  exp: nowSeconds() + 600,
  jti: "jti-1"
})
const goodHeader = { alg: "HS256", kid: "k1", typ: "at+jwt" }

describe("Tokens", () => {
  it.effect("issues and verifies a user token with its claims", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(start)
      const tokens = yield* tokensWith(base)
      const issued = yield* tokens.issueUserToken({ userId: "user-1", orgId: "org-1", role: "admin", superadmin: false })
      expect(issued.expiresAt).toBe(start + 900_000)
      const claims = yield* tokens.verify(issued.token)
      expect(claims).toMatchObject({
        kind: "user",
        sub: "user-1",
        org: "org-1",
        role: "admin",
        sa: false,
        iat: start / 1000,
        exp: start / 1000 + 900
      })
      expect(claims.jti.length).toBeGreaterThanOrEqual(20)
      const header = JSON.parse(Buffer.from(issued.token.split(".")[0]!, "base64url").toString())
      expect(header).toEqual({ alg: "HS256", kid: "k1", typ: "at+jwt" })
      const payload = JSON.parse(Buffer.from(issued.token.split(".")[1]!, "base64url").toString())
      expect(payload).toMatchObject({ iss: "smsgw", aud: "smsgw-api", sub: "user-1" })
      expect(payload).not.toHaveProperty("sa")

      const admin = yield* tokens.issueUserToken({ userId: "root", orgId: "org-1", role: "owner", superadmin: true })
      expect(yield* tokens.verify(admin.token)).toMatchObject({ kind: "user", sub: "root", sa: true, role: "owner" })
    }))

  it.effect("issues and verifies an app token", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(start)
      const tokens = yield* tokensWith(base)
      const { token } = yield* tokens.issueAppToken({ appId: "app-9", orgId: "org-1", apiKeyId: "key-3" })
      const claims = yield* tokens.verify(token)
      expect(claims).toMatchObject({ kind: "app", sub: "app:app-9", org: "org-1", app: "app-9", akid: "key-3" })
      expect(claims.role).toBeUndefined()
      // twice: the second answer comes from the cache and is the same
      expect(yield* tokens.verify(token)).toEqual(claims)
    }))

  it.effect("rejects an expired token, with 5 s of tolerance, and keeps rejecting it once cached", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(start)
      const tokens = yield* tokensWith({ ...base, accessTtlSeconds: 60 })
      const never = yield* tokens.issueUserToken({ userId: "u", orgId: "o", role: "member", superadmin: false })
      const cached = yield* tokens.issueUserToken({ userId: "v", orgId: "o", role: "member", superadmin: false })
      yield* tokens.verify(cached.token)
      yield* tokens.verify(cached.token)

      yield* TestClock.adjust("64 seconds")
      expect((yield* tokens.verify(cached.token)).sub).toBe("v")
      expect((yield* tokens.verify(never.token)).sub).toBe("u")

      yield* TestClock.adjust("1 second")
      expect(yield* reasonOf(cached.token, tokens)).toBe("expired")
      expect(yield* reasonOf(cached.token, tokens)).toBe("expired")
      const fresh = yield* tokensWith({ ...base, accessTtlSeconds: 60 })
      expect(yield* reasonOf(never.token, fresh)).toBe("expired")
    }))

  it.effect("a cache hit is checked against the clock, not only remembered", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(start)
      const tokens = yield* tokensWith({ ...base, accessTtlSeconds: 1 })
      const { token } = yield* tokens.issueAppToken({ appId: "a", orgId: "o", apiKeyId: "k" })
      for (let i = 0; i < 100; i++) yield* tokens.verify(token)
      yield* TestClock.adjust("6 seconds")
      expect(yield* reasonOf(token, tokens)).toBe("expired")
    }))

  it.effect("rejects a tampered payload and a tampered signature", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(start)
      const tokens = yield* tokensWith(base)
      const { token } = yield* tokens.issueUserToken({ userId: "u", orgId: "o", role: "viewer", superadmin: false })
      yield* tokens.verify(token)
      const [header, payload, signature] = token.split(".") as [string, string, string]

      const claims = JSON.parse(Buffer.from(payload, "base64url").toString())
      const promoted = `${header}.${b64url({ ...claims, role: "owner", sa: true })}.${signature}`
      expect(yield* reasonOf(promoted, tokens)).toBe("signature")

      const flipped = `${header}.${payload}.${signature[0] === "A" ? "B" : "A"}${signature.slice(1)}`
      expect(yield* reasonOf(flipped, tokens)).toBe("signature")
      expect(yield* reasonOf(`${header}.${payload}.`, tokens)).toBe("signature")
    }))

  it.effect("rejects a token for another audience or from another issuer", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(start)
      const tokens = yield* tokensWith(base)
      const otherAudience = yield* tokensWith({ ...base, audience: "billing" })
      const otherIssuer = yield* tokensWith({ ...base, issuer: "someone-else" })
      const a = yield* otherAudience.issueUserToken({ userId: "u", orgId: "o", role: "admin", superadmin: false })
      const b = yield* otherIssuer.issueUserToken({ userId: "u", orgId: "o", role: "admin", superadmin: false })
      expect(yield* reasonOf(a.token, tokens)).toBe("claims")
      expect(yield* reasonOf(b.token, tokens)).toBe("claims")
    }))

  it.effect("rejects alg none and every algorithm but HS256", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(start)
      const tokens = yield* tokensWith(base)
      expect(yield* reasonOf(craft({ alg: "none" }, goodPayload(), undefined), tokens)).toBe("algorithm")
      expect(yield* reasonOf(craft({ alg: "none", kid: "k1", typ: "at+jwt" }, goodPayload(), undefined), tokens))
        .toBe("algorithm")
      expect(yield* reasonOf(craft({ alg: "None", kid: "k1", typ: "at+jwt" }, goodPayload(), k1.secret), tokens))
        .toBe("algorithm")
      // an RS256 label over an HMAC made with the shared secret: the classic key-confusion attack
      expect(yield* reasonOf(craft({ alg: "RS256", kid: "k1", typ: "at+jwt" }, goodPayload(), k1.secret), tokens))
        .toBe("algorithm")
      const hs512 = yield* Effect.promise(() =>
        new SignJWT(goodPayload()).setProtectedHeader({ alg: "HS512", kid: "k1", typ: "at+jwt" })
          .sign(new TextEncoder().encode(k1.secret))
      )
      expect(yield* reasonOf(hs512, tokens)).toBe("algorithm")
      // the same hand-made token with the right algorithm passes: the refusals above are about the algorithm
      expect((yield* tokens.verify(craft(goodHeader, goodPayload(), k1.secret))).sub).toBe("user-1")
    }))

  it.effect("rejects an unknown or missing key id", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(start)
      const tokens = yield* tokensWith(base)
      expect(yield* reasonOf(craft({ ...goodHeader, kid: "k9" }, goodPayload(), k1.secret), tokens)).toBe("unknown_key")
      expect(yield* reasonOf(craft({ alg: "HS256", typ: "at+jwt" }, goodPayload(), k1.secret), tokens))
        .toBe("unknown_key")
      expect(yield* reasonOf(craft({ ...goodHeader, kid: 1 }, goodPayload(), k1.secret), tokens)).toBe("unknown_key")
      // a known kid with another key's signature
      expect(yield* reasonOf(craft(goodHeader, goodPayload(), k2.secret), tokens)).toBe("signature")
    }))

  it.effect("rotates keys: the first signs, all verify, a removed key no longer verifies", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(start)
      const before = yield* tokensWith({ ...base, keys: [k1] })
      const during = yield* tokensWith({ ...base, keys: [k2, k1] })
      const after = yield* tokensWith({ ...base, keys: [k2] })
      const old = yield* before.issueUserToken({ userId: "u", orgId: "o", role: "member", superadmin: false })
      const fresh = yield* during.issueUserToken({ userId: "u", orgId: "o", role: "member", superadmin: false })
      expect(JSON.parse(Buffer.from(fresh.token.split(".")[0]!, "base64url").toString()).kid).toBe("k2")
      expect((yield* during.verify(old.token)).sub).toBe("u")
      expect((yield* during.verify(fresh.token)).sub).toBe("u")
      expect((yield* after.verify(fresh.token)).sub).toBe("u")
      expect(yield* reasonOf(old.token, after)).toBe("unknown_key")
      expect(yield* reasonOf(fresh.token, before)).toBe("unknown_key")
    }))

  it.effect("rejects missing or inconsistent claims", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(start)
      const tokens = yield* tokensWith(base)
      const signed = (payload: Record<string, unknown>, header: unknown = goodHeader) =>
        reasonOf(craft(header, payload, k1.secret), tokens)
      const { org: _org, ...noOrg } = goodPayload()
      const { jti: _jti, ...noJti } = goodPayload()
      const { exp: _exp, ...noExp } = goodPayload()
      expect(yield* signed(noOrg)).toBe("claims")
      expect(yield* signed(noJti)).toBe("claims")
      expect(yield* signed(noExp)).toBe("claims")
      expect(yield* signed({ ...goodPayload(), role: "god" })).toBe("claims")
      expect(yield* signed({ ...goodPayload(), exp: "later" })).toBe("claims")
      // a user subject dressed as an app, and an app token carrying a role
      expect(yield* signed({ ...goodPayload(), sub: "app:a" })).toBe("claims")
      expect(yield* signed({ ...goodPayload(), sub: "app:a", app: "a", akid: "k" })).toBe("claims")
      const { role: _role, ...appPayload } = goodPayload()
      expect(yield* signed({ ...appPayload, sub: "app:b", app: "a", akid: "k" })).toBe("claims")
      expect((yield* tokens.verify(craft(goodHeader, { ...appPayload, sub: "app:a", app: "a", akid: "k" }, k1.secret))).kind)
        .toBe("app")
      // another type of JWT signed with the same keys is not an access token
      expect(yield* signed(goodPayload(), { alg: "HS256", kid: "k1", typ: "JWT" })).toBe("claims")
      expect(yield* signed(goodPayload(), { alg: "HS256", kid: "k1" })).toBe("claims")
    }))

  it.effect("rejects malformed tokens", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(start)
      const tokens = yield* tokensWith(base)
      const valid = craft(goodHeader, goodPayload(), k1.secret)
      for (const bad of ["", "abc", "a.b", "a.b.c.d", "!!!.e30.sig", `${b64url([1])}.e30.x`, `e30.${"A".repeat(9000)}.x`]) {
        expect(yield* reasonOf(bad, tokens)).toBe("malformed")
      }
      // correctly signed, but the payload is not JSON
      const input = `${valid.split(".")[0]}.${Buffer.from("not json").toString("base64url")}`
      const notJson = `${input}.${createHmac("sha256", k1.secret).update(input).digest("base64url")}`
      expect(yield* reasonOf(notJson, tokens)).toBe("malformed")
    }))

  it.effect("refuses weak or inconsistent key configuration", () =>
    Effect.gen(function*() {
      const failures = [
        { ...base, keys: [] },
        { ...base, keys: [{ kid: "short", secret: "too-short-secret" }] },
        { ...base, keys: [k1, { ...k2, kid: "k1" }] },
        { ...base, accessTtlSeconds: 0 }
      ]
      for (const options of failures) {
        const exit = yield* Effect.exit(tokensWith(options))
        expect(Exit.isFailure(exit)).toBe(true)
      }
    }))
})
