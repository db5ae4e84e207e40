import { describe, expect, it } from "@effect/vitest"
import {
  constantTimeEqual,
  makeApiKey,
  makeRefreshToken,
  parseApiKey,
  parseRefreshToken,
  randomToken,
  secretMatches,
  sha256Hex
} from "../../src/auth/Secrets.ts"

describe("Secrets", () => {
  it("makes API keys that parse back and whose hash is of the secret", () => {
    const k = makeApiKey()
    expect(k.key).toMatch(/^sgw_[0-9a-z]{12}_[A-Za-z0-9_-]{43}$/)
    expect(k.key).toBe(`sgw_${k.id}_${k.secret}`)
    expect(k.prefix).toBe(k.key.slice(4, 16))
    expect(k.hash).toBe(sha256Hex(k.secret))
    expect(k.hash).toMatch(/^[0-9a-f]{64}$/)
    expect(parseApiKey(k.key)).toEqual({ id: k.id, secret: k.secret })
    expect(secretMatches(k.secret, k.hash)).toBe(true)
    expect(secretMatches(k.secret + "x", k.hash)).toBe(false)
    expect(makeApiKey().id).not.toBe(k.id)
  })

  it("refuses anything that is not exactly a key", () => {
    const k = makeApiKey()
    for (
      const bad of [
        "",
        k.key.slice(0, -1),
        k.key + "A",
        " " + k.key,
        k.key.replace("sgw_", "SGW_"),
        k.key.replace("sgw_", "rt_"),
        `sgw_${k.id.toUpperCase()}_${k.secret}`,
        `sgw_${k.id}-${k.secret}`
      ]
    ) {
      expect(parseApiKey(bad)).toBeUndefined()
    }
  })

  it("makes refresh tokens that parse back, distinct from API keys", () => {
    const r = makeRefreshToken()
    expect(r.token).toMatch(/^rt_[0-9a-z]{12}_[A-Za-z0-9_-]{43}$/)
    const parsed = parseRefreshToken(r.token)
    expect(parsed?.id).toBe(r.id)
    expect(sha256Hex(parsed!.secret)).toBe(r.hash)
    expect(parseApiKey(r.token)).toBeUndefined()
    expect(parseRefreshToken(makeApiKey().key)).toBeUndefined()
  })

  it("compares secrets of any length", () => {
    expect(constantTimeEqual("abc", "abc")).toBe(true)
    expect(constantTimeEqual("abc", "abd")).toBe(false)
    expect(constantTimeEqual("abc", "abcd")).toBe(false)
    expect(constantTimeEqual("", "")).toBe(true)
    expect(constantTimeEqual("", "a")).toBe(false)
    expect(randomToken()).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(randomToken(16)).toMatch(/^[A-Za-z0-9_-]{22}$/)
    expect(sha256Hex("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
  })
})
