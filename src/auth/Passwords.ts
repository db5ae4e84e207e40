/**
 * Password hashing (Argon2id, off the event loop) and the password rules.
 */
import * as crypto from "node:crypto"
import { Effect } from "effect"

/**
 * Password hashes are PHC strings, compatible with the reference Argon2 encoding and passlib's scrypt:
 *   $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>      (memory in KiB, passes, lanes)
 *   $scrypt$ln=15,r=8,p=1$<salt>$<hash>                (N = 2^ln)
 * salt and hash are standard base64 without padding.
 */
type Params =
  | { readonly alg: "argon2id"; readonly m: number; readonly t: number; readonly p: number }
  | { readonly alg: "scrypt"; readonly ln: number; readonly r: number; readonly p: number }

interface Parsed {
  readonly params: Params
  readonly salt: Buffer
  readonly hash: Buffer
}

/** OWASP's Argon2id baseline: 19 MiB, 2 passes, 1 lane (~50–100 ms on this class of machine). */
const argon2Params: Params = { alg: "argon2id", m: 19_456, t: 2, p: 1 }
/** Fallback where node:crypto has no Argon2 (Node < 24.7): 32 MiB. */
const scryptParams: Params = { alg: "scrypt", ln: 15, r: 8, p: 1 }

const hasArgon2 = typeof crypto.argon2 === "function"

/** The parameters new hashes are made with. */
export const currentParams: Params = hasArgon2 ? argon2Params : scryptParams

const SALT_BYTES = 16
const HASH_BYTES = 32
/** Longer inputs are refused before any work: the policy stops at 256 characters. */
const MAX_INPUT_LENGTH = 1024

const b64 = (buf: Buffer): string => buf.toString("base64").replace(/=+$/, "")

const format = (params: Params, salt: Buffer, hash: Buffer): string =>
  params.alg === "argon2id"
    ? `$argon2id$v=19$m=${params.m},t=${params.t},p=${params.p}$${b64(salt)}$${b64(hash)}`
    : `$scrypt$ln=${params.ln},r=${params.r},p=${params.p}$${b64(salt)}$${b64(hash)}`

const b64Re = /^[A-Za-z0-9+/]+$/
const intRe = /^[1-9][0-9]{0,9}$/

const fromB64 = (s: string | undefined, min: number, max: number): Buffer | undefined => {
  if (s === undefined || !b64Re.test(s)) return undefined
  const buf = Buffer.from(s, "base64")
  return buf.length >= min && buf.length <= max ? buf : undefined
}

/** `k=v,k=v` with positive integers, exactly the expected keys in order. */
const readParams = (s: string | undefined, keys: ReadonlyArray<string>): ReadonlyArray<number> | undefined => {
  const pairs = s?.split(",") ?? []
  if (pairs.length !== keys.length) return undefined
  const values: Array<number> = []
  for (const [i, pair] of pairs.entries()) {
    const [k, v] = pair.split("=")
    if (k !== keys[i] || v === undefined || !intRe.test(v)) return undefined
    values.push(Number(v))
  }
  return values
}

/** Bounds keep a tampered row from turning one login into a denial of service. */
const parse = (stored: string): Parsed | undefined => {
  const parts = stored.split("$")
  if (parts.length === 6 && parts[0] === "" && parts[1] === "argon2id" && parts[2] === "v=19") {
    const values = readParams(parts[3], ["m", "t", "p"])
    const salt = fromB64(parts[4], 8, 64)
    const hash = fromB64(parts[5], 16, 64)
    if (values === undefined || salt === undefined || hash === undefined) return undefined
    const [m = 0, t = 0, p = 0] = values
    if (p > 16 || m < 8 * p || m > 1_048_576 || t > 16) return undefined
    return { params: { alg: "argon2id", m, t, p }, salt, hash }
  }
  if (parts.length === 5 && parts[0] === "" && parts[1] === "scrypt") {
    const values = readParams(parts[2], ["ln", "r", "p"])
    const salt = fromB64(parts[3], 8, 64)
    const hash = fromB64(parts[4], 16, 64)
    if (values === undefined || salt === undefined || hash === undefined) return undefined
    const [ln = 0, r = 0, p = 0] = values
    if (ln > 20 || r > 32 || p > 16 || 128 * r * 2 ** ln > 1024 ** 3) return undefined
    return { params: { alg: "scrypt", ln, r, p }, salt, hash }
  }
  return undefined
}

/** Runs on the libuv thread pool: the event loop never waits for the KDF. */
const derive = (params: Params, password: string, salt: Buffer, length: number): Effect.Effect<Buffer> =>
  Effect.callback<Buffer>((resume) => {
    const done = (err: Error | null, key: Buffer) => resume(err === null ? Effect.succeed(key) : Effect.die(err))
    try {
      if (params.alg === "argon2id") {
        crypto.argon2(
          "argon2id",
          { message: password, nonce: salt, parallelism: params.p, tagLength: length, memory: params.m, passes: params.t },
          done
        )
      } else {
        const N = 2 ** params.ln
        crypto.scrypt(password, salt, length, { N, r: params.r, p: params.p, maxmem: 256 * N * params.r }, done)
      }
    } catch (err) {
      resume(Effect.die(err))
    }
  })

/** NFKC, as NIST SP 800-63B asks, so the same password typed on two keyboards gives the same bytes. */
const normalize = (password: string): string => password.normalize("NFKC")

export const hashPassword = Effect.fn("Passwords.hash")(function*(password: string) {
  const salt = crypto.randomBytes(SALT_BYTES)
  const hash = yield* derive(currentParams, normalize(password), salt, HASH_BYTES)
  return format(currentParams, salt, hash)
})

/** A well-formed hash of nothing anyone knows, at the current cost: verifying against it costs what a real check costs. */
const dummyStored: Parsed = {
  params: currentParams,
  salt: crypto.randomBytes(SALT_BYTES),
  hash: crypto.randomBytes(HASH_BYTES)
}

/**
 * True when `password` matches `stored`. An absent, malformed or over-long input still runs one KDF at the current
 * cost before answering false, so an unknown e-mail and a wrong password take the same time.
 */
export const verifyPassword = Effect.fn("Passwords.verify")(function*(
  password: string,
  stored: string | null | undefined
) {
  const parsed = stored === null || stored === undefined ? undefined : parse(stored)
  const usable = parsed !== undefined && password.length <= MAX_INPUT_LENGTH
  const target = usable ? parsed : dummyStored
  const candidate = usable ? normalize(password) : "x"
  const derived = yield* derive(target.params, candidate, target.salt, target.hash.length)
  return crypto.timingSafeEqual(derived, target.hash) && usable
})

/** For a login with an unknown e-mail: costs one verification, answers false. */
export const dummyVerify = (password: string): Effect.Effect<boolean> => verifyPassword(password, undefined)

/** True when `stored` was made with another algorithm or weaker parameters than new hashes get: rehash on login. */
export const needsRehash = (stored: string): boolean => {
  const parsed = parse(stored)
  if (parsed === undefined) return true
  const p = parsed.params
  const c = currentParams
  if (p.alg !== c.alg) return true
  if (parsed.salt.length < SALT_BYTES || parsed.hash.length < HASH_BYTES) return true
  if (p.alg === "argon2id" && c.alg === "argon2id") return p.m < c.m || p.t < c.t || p.p < c.p
  if (p.alg === "scrypt" && c.alg === "scrypt") return p.ln < c.ln || p.r < c.r || p.p < c.p
  return true
}

export const PASSWORD_MIN_LENGTH = 10
export const PASSWORD_MAX_LENGTH = 256

/** Why `password` is not acceptable as a new password, or undefined. Length counts characters (code points). */
export const passwordProblem = (password: string): string | undefined => {
  const chars = Array.from(normalize(password))
  if (chars.length < PASSWORD_MIN_LENGTH) return `must be at least ${PASSWORD_MIN_LENGTH} characters`
  if (chars.length > PASSWORD_MAX_LENGTH) return `must be at most ${PASSWORD_MAX_LENGTH} characters`
  if (chars.every((c) => c === chars[0])) return "must not repeat a single character"
  return undefined
}
