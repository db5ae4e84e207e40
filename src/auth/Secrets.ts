/**
 * Random secrets, their hashes and constant-time comparison: API keys, refresh tokens, mailed tokens.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto"

/** `bytes` of CSPRNG output, base64url without padding. */
export const randomToken = (bytes = 32): string => randomBytes(bytes).toString("base64url")

export const sha256Hex = (s: string): string => createHash("sha256").update(s, "utf8").digest("hex")

const sha256 = (s: string): Buffer => createHash("sha256").update(s, "utf8").digest()

/**
 * Compares two secrets in time independent of where they differ. Both sides are hashed first, so inputs of
 * different lengths compare as equal-length digests and the length check does not return early.
 */
export const constantTimeEqual = (a: string, b: string): boolean => timingSafeEqual(sha256(a), sha256(b))

/** Crockford's base32 alphabet in lower case: no i, l, o, u, so an id read aloud or copied by hand is unambiguous. */
const base32 = "0123456789abcdefghjkmnpqrstvwxyz"
const ID_LENGTH = 12
const SECRET_BYTES = 32
/** base64url of 32 bytes without padding. */
const SECRET_LENGTH = 43

/** 12 base32 characters, 60 random bits: a lookup key, not a secret. */
export const randomId = (): string => {
  const bytes = randomBytes(ID_LENGTH)
  let id = ""
  // 256 is a multiple of 32, so the low five bits of a uniform byte are uniform.
  for (const byte of bytes) id += base32[byte & 31]
  return id
}

const idPattern = `[${base32}]{${ID_LENGTH}}`
const secretPattern = `[A-Za-z0-9_-]{${SECRET_LENGTH}}`
const apiKeyRe = new RegExp(`^sgw_(${idPattern})_(${secretPattern})$`)
const refreshTokenRe = new RegExp(`^rt_(${idPattern})_(${secretPattern})$`)

export interface ApiKeyMaterial {
  /** Stored in clear: finds the row. */
  readonly id: string
  /** Shown to users to tell keys apart: the 12 characters after `sgw_`. */
  readonly prefix: string
  /** Shown once, never stored. */
  readonly secret: string
  /** What the client sends: `sgw_<id>_<secret>`. */
  readonly key: string
  /** sha256Hex(secret): what is stored. */
  readonly hash: string
}

export const makeApiKey = (): ApiKeyMaterial => {
  const id = randomId()
  const secret = randomToken(SECRET_BYTES)
  const key = `sgw_${id}_${secret}`
  return { id, prefix: key.slice(4, 4 + 12), secret, key, hash: sha256Hex(secret) }
}

export const parseApiKey = (key: string): { readonly id: string; readonly secret: string } | undefined => {
  const m = apiKeyRe.exec(key)
  return m?.[1] !== undefined && m[2] !== undefined ? { id: m[1], secret: m[2] } : undefined
}

export interface RefreshTokenMaterial {
  readonly id: string
  /** What the client holds: `rt_<id>_<secret>`. */
  readonly token: string
  /** sha256Hex(secret): what is stored. */
  readonly hash: string
}

export const makeRefreshToken = (): RefreshTokenMaterial => {
  const id = randomId()
  const secret = randomToken(SECRET_BYTES)
  return { id, token: `rt_${id}_${secret}`, hash: sha256Hex(secret) }
}

export const parseRefreshToken = (token: string): { readonly id: string; readonly secret: string } | undefined => {
  const m = refreshTokenRe.exec(token)
  return m?.[1] !== undefined && m[2] !== undefined ? { id: m[1], secret: m[2] } : undefined
}

/** What a single-use token mailed to a person is for: `inv` an invitation, `reg` a registration awaiting its mailbox. */
export type MailedTokenKind = "inv" | "reg"

const mailedTokenRe = new RegExp(`^(inv|reg)_(${idPattern})_(${secretPattern})$`)

/** `<kind>_<id>_<secret>`: the id finds the row, only sha256Hex(secret) is stored. */
export const makeMailedToken = (kind: MailedTokenKind): RefreshTokenMaterial => {
  const id = randomId()
  const secret = randomToken(SECRET_BYTES)
  return { id, token: `${kind}_${id}_${secret}`, hash: sha256Hex(secret) }
}

export const parseMailedToken = (
  kind: MailedTokenKind,
  token: string
): { readonly id: string; readonly secret: string } | undefined => {
  const m = mailedTokenRe.exec(token.trim())
  return m?.[1] === kind && m[2] !== undefined && m[3] !== undefined ? { id: m[2], secret: m[3] } : undefined
}

/** True when `secret` hashes to `storedHash` (hex), compared in constant time. */
export const secretMatches = (secret: string, storedHash: string): boolean =>
  constantTimeEqual(sha256Hex(secret), storedHash.toLowerCase())
