import { Schema } from "effect"
import { parsePhoneNumberFromString } from "libphonenumber-js/max"

/** An E.164 number without the leading "+", as SMPP destination_addr carries it. */
export const Msisdn = Schema.String.pipe(Schema.brand("Msisdn"))
export type Msisdn = typeof Msisdn.Type

let lastInput = ""
let lastResult: Msisdn | undefined
let lastCountry: string | undefined

/**
 * "+4915112345678" (or "004915112345678") → "4915112345678"; undefined when not a valid number.
 * The last answer is kept: the request schema and the pipeline ask about the same number one after the other.
 */
export const parseMsisdn = (input: string): Msisdn | undefined => {
  if (input === lastInput) return lastResult
  const parsed = parse(input)
  lastResult = parsed?.msisdn
  lastCountry = parsed?.country
  lastInput = input
  return lastResult
}

const parse = (input: string): { readonly msisdn: Msisdn; readonly country: string | undefined } | undefined => {
  const international = input.startsWith("00") ? `+${input.slice(2)}` : input
  if (!international.startsWith("+")) return undefined
  const parsed = parsePhoneNumberFromString(international)
  if (parsed === undefined || !parsed.isValid()) return undefined
  return { msisdn: parsed.number.slice(1) as Msisdn, country: parsed.country }
}

/** The ISO 3166 country of a valid number (from its prefix and numbering plan), e.g. "DE"; undefined if unknown. */
export const countryOf = (msisdn: Msisdn): string | undefined => {
  if (msisdn === lastResult) return lastCountry
  return parse(`+${msisdn}`)?.country
}

export const invalidMsisdn = "must be a valid phone number in E.164 format, e.g. +4915112345678"
export const invalidSender = "must be an alphanumeric sender of 1-11 characters (with a letter) or a number of 3-15 digits"

export type SenderKind = "alphanumeric" | "shortcode" | "international"

export interface Sender {
  readonly addr: string
  readonly ton: number
  readonly npi: number
  readonly kind: SenderKind
}

const alphanumeric = /^[A-Za-z0-9 ._&'-]{1,11}$/
const digits = /^\+?[0-9]{3,15}$/

/** The SMPP source address for a `from`: alphanumeric (TON 5), short code (TON 3) or international number (TON 1). */
export const parseSender = (from: string): Sender | undefined => {
  if (digits.test(from)) {
    const addr = from.startsWith("+") ? from.slice(1) : from
    return addr.length <= 8
      ? { addr, ton: 3, npi: 0, kind: "shortcode" }
      : { addr, ton: 1, npi: 1, kind: "international" }
  }
  if (alphanumeric.test(from) && /[A-Za-z]/.test(from)) return { addr: from, ton: 5, npi: 0, kind: "alphanumeric" }
  return undefined
}
