/**
 * Addresses as the gateway takes them: a recipient (an E.164 number and its country) and a sender (its SMPP TON/NPI).
 * Parsed once at the edge by the `Recipient` and `Sender` schemas, so the pipeline reads facts instead of asking again;
 * every front (REST now, gRPC, campaigns and batches later) decodes through the same two schemas.
 */
import { Effect, Schema, SchemaGetter, SchemaIssue } from "effect"
import { parseRecipient } from "./RecipientParse.ts"

/** An E.164 number without the leading "+", as SMPP destination_addr carries it. */
export const Msisdn = Schema.String.pipe(Schema.brand("Msisdn"))
export type Msisdn = typeof Msisdn.Type

export const invalidMsisdn = "must be a valid phone number in E.164 format, e.g. +4915112345678"
export const invalidSender = "must be an alphanumeric sender of 1-11 characters (with a letter) or a number of 3-15 digits"

/** A valid recipient: its number, and the ISO 3166 country its prefix and numbering plan place it in (e.g. "DE"). */
export const Recipient = Schema.Struct({
  msisdn: Msisdn,
  country: Schema.UndefinedOr(Schema.String)
}).pipe(Schema.brand("Recipient"))
export type Recipient = typeof Recipient.Type

// Parsing lives in RecipientParse.ts (no Effect there, so a worker thread loads it in milliseconds).
export { isCountry, parseRecipient, parseRecipientIn } from "./RecipientParse.ts"
export type { RecipientRefusal } from "./RecipientParse.ts"

/** "+4915112345678" (or "004915112345678") → "4915112345678"; undefined when not a valid number. */
export const parseMsisdn = (input: string): Msisdn | undefined => parseRecipient(input)?.msisdn

/** The request's `to` (a string) decoded into a `Recipient`; encodes back as "+" and the number. */
export const RecipientFromString = Schema.String.annotate({ description: "Recipient in E.164, e.g. +4915112345678" }).pipe(
  Schema.decodeTo(Recipient, {
    decode: SchemaGetter.transformEffect((input: string, options) => {
      const recipient = parseRecipient(input)
      return recipient === undefined
        ? Effect.fail(new SchemaIssue.InvalidValue({ message: invalidMsisdn }, input, options))
        : Effect.succeed(recipient)
    }),
    encode: SchemaGetter.transform((recipient) => `+${recipient.msisdn}`)
  })
)

export const SenderKind = Schema.Literals(["alphanumeric", "shortcode", "international"])
export type SenderKind = typeof SenderKind.Type

/** A valid sender: as given (stored, routed on and shown as is), and the SMPP source address it becomes. */
export const Sender = Schema.Struct({
  given: Schema.String,
  addr: Schema.String,
  ton: Schema.Number,
  npi: Schema.Number,
  kind: SenderKind
}).pipe(Schema.brand("Sender"))
export type Sender = typeof Sender.Type

const alphanumeric = /^[A-Za-z0-9 ._&'-]{1,11}$/
const digits = /^\+?[0-9]{3,15}$/

/** The SMPP source address for a `from`: alphanumeric (TON 5), short code (TON 3) or international number (TON 1). */
export const parseSender = (from: string): Sender | undefined => {
  if (digits.test(from)) {
    const addr = from.startsWith("+") ? from.slice(1) : from
    return (addr.length <= 8
      ? { given: from, addr, ton: 3, npi: 0, kind: "shortcode" }
      : { given: from, addr, ton: 1, npi: 1, kind: "international" }) as Sender
  }
  if (alphanumeric.test(from) && /[A-Za-z]/.test(from)) {
    return { given: from, addr: from, ton: 5, npi: 0, kind: "alphanumeric" } as Sender
  }
  return undefined
}

/** The request's `from` (a string) decoded into a `Sender`; encodes back as given. */
export const SenderFromString = Schema.String.annotate({
  description: "Sender: alphanumeric (up to 11 characters), short code or E.164 number"
}).pipe(
  Schema.decodeTo(Sender, {
    decode: SchemaGetter.transformEffect((from: string, options) => {
      const sender = parseSender(from)
      return sender === undefined
        ? Effect.fail(new SchemaIssue.InvalidValue({ message: invalidSender }, from, options))
        : Effect.succeed(sender)
    }),
    encode: SchemaGetter.transform((sender) => sender.given)
  })
)

/**
 * The SMPP addresses of a message read back as strings (from the store or a hand-off): the sender parsed once for its
 * TON/NPI, the recipient taken as the number the `Recipient` schema stored (not asked of libphonenumber again).
 * Undefined when the sender is not one.
 */
export const storedAddresses = (to: string, from: string): { readonly destination: Msisdn; readonly source: Sender } | undefined => {
  const source = parseSender(from)
  return source === undefined ? undefined : { destination: to as Msisdn, source }
}
