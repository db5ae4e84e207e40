/**
 * Numbers as libphonenumber reads them, without Effect: a recipient's number and country from what was written
 * (international, or national completed with a default country). Msisdn.ts re-exports all of it; this module is
 * apart so that a worker thread (ContactParser.worker.ts) loads it without loading Effect (~2 s and ~40 MB of heap).
 */
import { isSupportedCountry, parsePhoneNumberFromString } from "libphonenumber-js/max"
import type { CountryCode } from "libphonenumber-js/max"
import type { Recipient } from "./Msisdn.ts"

/** "+4915112345678" (or "004915112345678") → its number and country; undefined when not a valid number. */
export const parseRecipient = (input: string): Recipient | undefined => {
  const international = input.startsWith("00") ? `+${input.slice(2)}` : input
  if (!international.startsWith("+")) return undefined
  const parsed = parsePhoneNumberFromString(international)
  if (parsed === undefined || !parsed.isValid()) return undefined
  return { msisdn: parsed.number.slice(1), country: parsed.country } as Recipient
}

/** Why an address list's entry is not a recipient (contact imports report it per row). */
export type RecipientRefusal = "empty" | "invalid" | "national-without-country" | "invalid-country"

/**
 * An entry of an address list: international ("+…" or "00…") as `parseRecipient` takes it, or national ("0151 1234567")
 * completed with `defaultCountry` (ISO 3166 alpha-2). `completed` says the country was supplied by the default.
 */
export const parseRecipientIn = (
  input: string,
  defaultCountry: string | undefined
):
  | { readonly recipient: Recipient; readonly completed: boolean }
  | { readonly refusal: RecipientRefusal } =>
{
  const trimmed = input.trim()
  if (trimmed === "") return { refusal: "empty" }
  if (trimmed.startsWith("+") || trimmed.startsWith("00")) {
    const recipient = parseRecipient(trimmed)
    return recipient === undefined ? { refusal: "invalid" } : { recipient, completed: false }
  }
  if (defaultCountry === undefined) return { refusal: "national-without-country" }
  if (!isCountry(defaultCountry)) return { refusal: "invalid-country" }
  const parsed = parsePhoneNumberFromString(trimmed, defaultCountry)
  if (parsed === undefined || !parsed.isValid()) return { refusal: "invalid" }
  return { recipient: { msisdn: parsed.number.slice(1), country: parsed.country } as Recipient, completed: true }
}

/** An ISO 3166 alpha-2 code libphonenumber knows a numbering plan for ("DE", "GB"...). */
export const isCountry = (code: string): code is CountryCode => isSupportedCountry(code)
