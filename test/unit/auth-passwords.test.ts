import { randomBytes, scryptSync } from "node:crypto"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import {
  currentParams,
  dummyVerify,
  hashPassword,
  needsRehash,
  passwordProblem,
  verifyPassword
} from "../../src/auth/Passwords.ts"

const b64 = (buf: Buffer) => buf.toString("base64").replace(/=+$/, "")

const timed = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const t0 = performance.now()
    yield* effect
    return performance.now() - t0
  })

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

describe("Passwords", () => {
  it.effect("hashes to a PHC Argon2id string and verifies the right password only", () =>
    Effect.gen(function*() {
      expect(currentParams).toEqual({ alg: "argon2id", m: 19_456, t: 2, p: 1 })
      const stored = yield* hashPassword("correct horse battery")
      expect(stored).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/)
      expect(yield* verifyPassword("correct horse battery", stored)).toBe(true)
      expect(yield* verifyPassword("correct horse batterY", stored)).toBe(false)
      expect(yield* verifyPassword("", stored)).toBe(false)
      expect(yield* verifyPassword("correct horse battery".repeat(100), stored)).toBe(false)
      // a fresh salt every time
      expect(yield* hashPassword("correct horse battery")).not.toBe(stored)
      expect(needsRehash(stored)).toBe(false)
    }))

  it.effect("reads hashes made by other Argon2id implementations (argon2-cffi's documented example)", () =>
    Effect.gen(function*() {
      const stored = "$argon2id$v=19$m=65536,t=3,p=4$MIIRqgvgQbgj220jfp0MPA$YfwJSVjtjSU0zzV/P3S9nnQ/USre2wvJMjfCIjrTQbg"
      expect(yield* verifyPassword("correct horse battery staple", stored)).toBe(true)
      expect(yield* verifyPassword("correct horse battery stapler", stored)).toBe(false)
      // stronger than ours: no need to rehash
      expect(needsRehash(stored)).toBe(false)
      expect(needsRehash("$argon2id$v=19$m=4096,t=2,p=1$MIIRqgvgQbgj220jfp0MPA$YfwJSVjtjSU0zzV/P3S9nnQ/USre2wvJMjfCIjrTQbg"))
        .toBe(true)
    }))

  it.effect("verifies scrypt hashes (the fallback format) and asks for a rehash", () =>
    Effect.gen(function*() {
      const salt = randomBytes(16)
      const hash = scryptSync("an older password", salt, 32, { N: 2 ** 14, r: 8, p: 1 })
      const stored = `$scrypt$ln=14,r=8,p=1$${b64(salt)}$${b64(hash)}`
      expect(yield* verifyPassword("an older password", stored)).toBe(true)
      expect(yield* verifyPassword("an older passw0rd", stored)).toBe(false)
      expect(needsRehash(stored)).toBe(true)
    }))

  it.effect("answers false for malformed, hostile or missing hashes", () =>
    Effect.gen(function*() {
      const salt = "MIIRqgvgQbgj220jfp0MPA"
      const hash = "YfwJSVjtjSU0zzV/P3S9nnQ/USre2wvJMjfCIjrTQbg"
      for (
        const stored of [
          "",
          "plaintext",
          "$argon2i$v=19$m=19456,t=2,p=1$" + salt + "$" + hash,
          "$argon2id$v=16$m=19456,t=2,p=1$" + salt + "$" + hash,
          "$argon2id$v=19$m=99999999,t=2,p=1$" + salt + "$" + hash,
          "$argon2id$v=19$t=2,m=19456,p=1$" + salt + "$" + hash,
          "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$",
          "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + hash + "$",
          "$scrypt$ln=30,r=8,p=1$" + salt + "$" + hash
        ]
      ) {
        expect(yield* verifyPassword("correct horse battery staple", stored)).toBe(false)
        expect(needsRehash(stored)).toBe(true)
      }
      expect(yield* verifyPassword("anything at all", undefined)).toBe(false)
      expect(yield* verifyPassword("anything at all", null)).toBe(false)
      expect(yield* dummyVerify("anything at all")).toBe(false)
    }))

  it.effect("treats the same password typed in another Unicode form as the same (NFKC)", () =>
    Effect.gen(function*() {
      const stored = yield* hashPassword("Ａｐｐｌｅ ｐｉｅ ｆｏｒ ｍｅ") // full-width forms
      expect(yield* verifyPassword("Apple pie for me", stored)).toBe(true)
      const accented = yield* hashPassword("cafe\u0301 au lait!") // e + combining acute
      expect(yield* verifyPassword("caf\u00e9 au lait!", accented)).toBe(true)
    }))

  it.live("costs the same for an unknown user, a wrong password and a malformed hash (timing sanity)", () =>
    Effect.gen(function*() {
      const stored = yield* hashPassword("the real password")
      const wrong: Array<number> = []
      const unknown: Array<number> = []
      const malformed: Array<number> = []
      for (let i = 0; i < 3; i++) {
        wrong.push(yield* timed(verifyPassword("not the password", stored)))
        unknown.push(yield* timed(dummyVerify("not the password")))
        malformed.push(yield* timed(verifyPassword("not the password", "garbage")))
      }
      const w = median(wrong)
      // memory-hard, not instant
      expect(w).toBeGreaterThan(5)
      for (const other of [median(unknown), median(malformed)]) {
        expect(other / w).toBeGreaterThan(0.33)
        expect(other / w).toBeLessThan(3)
      }
    }))

  it("states what is wrong with a new password", () => {
    expect(passwordProblem("short")).toMatch(/at least 10/)
    expect(passwordProblem("aaaaaaaaaaaa")).toMatch(/single character/)
    expect(passwordProblem("x".repeat(9) + "y")).toBeUndefined()
    expect(passwordProblem("p".repeat(200) + "q".repeat(57))).toMatch(/at most 256/)
    expect(passwordProblem("p".repeat(200) + "q".repeat(56))).toBeUndefined()
    // characters, not UTF-16 units: five emoji are five characters
    expect(passwordProblem("🔑🔒🔓🗝️🚪")).toMatch(/at least 10/)
    expect(passwordProblem("🔑🔒🔓🚪🔑🔒🔓🚪🔑🔒")).toBeUndefined()
  })
})
