/**
 * An app's SMPP credentials (docs/smpp-server.md): the rules of a `systemId` and the making of its password.
 *
 * Invariants: a systemId is 1-15 printable ASCII characters without spaces (SMPP v3.4 §4.1: system_id is a C-Octet
 * String of at most 16 octets with its NUL), unique across the installation whatever the case; a password is 8
 * characters (password's own limit is 9 octets with the NUL) drawn uniformly from an alphabet without look-alikes,
 * shown once and stored only as a password hash (auth/Passwords.ts).
 */
import { randomInt } from "node:crypto"

/** SMPP v3.4 system_id: 16 octets with the NUL. */
export const SYSTEM_ID_MAX_LENGTH = 15
/** SMPP v3.4 password: 9 octets with the NUL. */
export const SMPP_PASSWORD_LENGTH = 8

/** No 0/O/o, 1/l/I/i: a password read aloud or off a screen is typed right. */
const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghjkmnpqrstuvwxyz23456789"

const systemIdPattern = /^[A-Za-z0-9._-]{1,15}$/

/** What is wrong with a systemId, or undefined when it is one. */
export const systemIdProblem = (systemId: string): string | undefined =>
  systemIdPattern.test(systemId)
    ? undefined
    : `must be 1 to ${SYSTEM_ID_MAX_LENGTH} characters of A-Z, a-z, 0-9, '.', '_' or '-'`

/** The form a systemId is compared and stored unique in: ESMEs (and their operators) vary the case. */
export const systemIdKey = (systemId: string): string => systemId.toLowerCase()

/** A new password: 8 characters, each uniform over the alphabet (crypto.randomInt rejects biased draws). */
export const newSmppPassword = (): string => {
  let out = ""
  for (let i = 0; i < SMPP_PASSWORD_LENGTH; i++) out += alphabet.charAt(randomInt(alphabet.length))
  return out
}
