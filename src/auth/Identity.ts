/**
 * The one home of what an email address and a display name may be. Both are NFC-normalised; emails are lower-cased
 * whole (the `users.email` column is unique and every lookup compares it as stored). Characters that render as
 * nothing or rewrite their neighbours (controls, format characters such as zero-width spaces and bidi overrides,
 * other default-ignorable code points, line separators, lone surrogates) are refused, so two accounts never look the
 * same on a screen.
 */
import { Result } from "effect"

const emailPattern = /^[^\s@]{1,64}@[^\s@]{1,255}\.[^\s@]{2,63}$/

/** Controls (C0, C1), format characters (Cf: U+200B-U+200F, U+202A-U+202E, U+2060, U+FEFF ...), separators, private use. */
const invisible = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Co}\p{Default_Ignorable_Code_Point}]/u

/** Names may hold emoji with variation selectors (U+FE0E, U+FE0F), which render with the character before them. */
const invisibleInName = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Co}\u115F\u1160\u3164\uFFA0\u034F\u17B4\u17B5\u180B-\u180F\u2065]/u

/** Only ordinary spaces are trimmed: String.trim would also drop U+FEFF and other characters this module refuses. */
const trim = (value: string) => value.replace(/^[ \t\r\n]+|[ \t\r\n]+$/g, "")

const firstBad = (value: string, pattern: RegExp): string | undefined => {
  if (!value.isWellFormed()) return "contains an unpaired surrogate"
  const m = pattern.exec(value)
  if (m === null) return undefined
  const code = m[0].codePointAt(0) ?? 0
  return `contains an invisible or control character (U+${code.toString(16).toUpperCase().padStart(4, "0")})`
}

/** The stored form of an email address, or why it is not one. */
export const normaliseEmail = (raw: string): Result.Result<string, string> => {
  const email = trim(raw).normalize("NFC").toLowerCase()
  const bad = firstBad(email, invisible)
  if (bad !== undefined) return Result.fail(bad)
  return emailPattern.test(email) ? Result.succeed(email) : Result.fail("must be an email address")
}

/** The stored form of a display name (user or organisation), or why it cannot be one. */
export const normaliseName = (raw: string): Result.Result<string, string> => {
  const name = trim(raw).normalize("NFC")
  if (name === "") return Result.fail("must not be empty")
  const bad = firstBad(name, invisibleInName)
  return bad === undefined ? Result.succeed(name) : Result.fail(bad)
}

/** The key of an email for lookups that must not fail (throttle counters, login): best effort, never throws. */
export const emailKey = (raw: string): string => raw.trim().normalize("NFC").toLowerCase()
