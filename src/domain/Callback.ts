/**
 * Status callbacks as data: which moves an app is told about, the URL rule, the body posted for a move, and the
 * signature over it (`Smsgw-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`). The store writes the
 * body when the move commits; the deliverer posts those exact bytes and signs them.
 */
import { Schema } from "effect"
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto"
import type { MessageStatus } from "./Message.ts"
import { isFinal } from "./Message.ts"

/** `final`: one callback when the message ends (delivered, undelivered, expired, failed); `all`: every move. */
export const CallbackEvents = Schema.Literals(["final", "all"])
export type CallbackEvents = typeof CallbackEvents.Type

/**
 * The callback URL of a message submitted over SMPP that asked for receipts: its moves go back to its app's receiver
 * binds as deliver_sm (pipeline/SmppFront.ts), never over HTTP.
 */
export const SMPP_CALLBACK_URL = "smpp:"

/** Every SMPP target as a SQL LIKE pattern: `smpp:`, and `smpp:parts=<n>` below. */
export const SMPP_CALLBACK_PATTERN = `${SMPP_CALLBACK_URL}%`

/**
 * The SMPP target of a message an ESME sent as `total` concatenated submit_sm: each part was answered with an id of
 * its own (`<message id>-<n>`), and the parts in `receipts` (those whose submit asked for one) each get a receipt.
 */
export const smppCallbackUrl = (parts?: { readonly total: number; readonly receipts: ReadonlyArray<number> }): string =>
  parts === undefined ? SMPP_CALLBACK_URL : `${SMPP_CALLBACK_URL}parts=${parts.total}&receipts=${parts.receipts.join(",")}`

/** The parts an SMPP target names (undefined: the message came in one submit_sm). */
export const smppPartsOf = (url: string): { readonly total: number; readonly receipts: ReadonlyArray<number> } | undefined => {
  const match = /^smpp:parts=(\d{1,3})&receipts=([\d,]*)$/.exec(url)
  if (match === null) return undefined
  return { total: Number(match[1]), receipts: (match[2] ?? "").split(",").filter((n) => n !== "").map(Number) }
}

/** What a message's moves are posted to, fixed when it is accepted. */
export interface CallbackTarget {
  readonly url: string
  readonly events: CallbackEvents
}

/**
 * Whether a move to `status` is posted under `events`. Acceptance (and a refusal, `rejected`) is the answer to the
 * request itself, never posted.
 */
export const postsMove = (events: CallbackEvents, status: MessageStatus): boolean =>
  status !== "accepted" && status !== "rejected" && (events === "all" || isFinal(status))

/** The body of one callback: what moved, when, and the facts of the move. */
export interface CallbackBody {
  readonly type: "message.status"
  /** Unique per callback: a receiver that sees one twice (delivery is at least once) can drop the repeat. */
  readonly eventId: string
  readonly messageId: string
  readonly status: MessageStatus
  /** When the move happened (ISO 8601). */
  readonly at: string
  readonly clientRef?: string
  readonly to: string
  /** The sender as given. */
  readonly from?: string
  /** When the message was accepted (ISO 8601). */
  readonly acceptedAt?: string
  /** Why it ended failed, undelivered or expired. */
  readonly reason?: string
  readonly appId: string
}

export const callbackBody = (body: CallbackBody): string => JSON.stringify(body)

/** A new callback secret: 32 random bytes, `whsec_` and base64url. */
export const newCallbackSecret = (): string => `whsec_${randomBytes(32).toString("base64url")}`

const mac = (secret: string, timestamp: number, body: string) =>
  createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex")

/** The `Smsgw-Signature` header: one `v1` per secret in force (the current one first, during a rotation the previous). */
export const signatureHeader = (secrets: ReadonlyArray<string>, timestamp: number, body: string): string =>
  [`t=${timestamp}`, ...secrets.map((s) => `v1=${mac(s, timestamp, body)}`)].join(",")

/**
 * What a receiver does (docs/callbacks.md shows it in several languages): true when a `v1` of the header is the HMAC of
 * `<t>.<body>` under `secret` and `t` is within `toleranceSeconds` of `now`. Constant-time comparison.
 */
export const verifySignature = (
  secret: string,
  header: string,
  body: string,
  nowSeconds: number,
  toleranceSeconds = 300
): boolean => {
  const fields = header.split(",").map((f) => f.trim().split("="))
  const t = Number(fields.find(([k]) => k === "t")?.[1])
  if (!Number.isInteger(t) || Math.abs(nowSeconds - t) > toleranceSeconds) return false
  const expected = Buffer.from(mac(secret, t, body), "hex")
  return fields.some(([k, v]) => {
    if (k !== "v1" || v === undefined || !/^[0-9a-f]{64}$/.test(v)) return false
    return timingSafeEqual(Buffer.from(v, "hex"), expected)
  })
}
