/**
 * Call detail records (CDRs): one record per message that reached a final status, its columns (the one list the
 * writers, the docs and their test read), its CSV and JSON Lines forms, and where its object lives.
 */
import { parseRecipient } from "./Msisdn.ts"

export const CdrFormat = ["csv", "jsonl"] as const
export type CdrFormat = (typeof CdrFormat)[number]

/** One finished message as its CDR holds it. Times are epoch milliseconds; absent values are null. */
export interface CdrRecord {
  readonly id: string
  readonly organisation: string
  readonly app: string | null
  readonly campaign: string | null
  readonly clientReference: string | null
  readonly messageClass: string | null
  readonly to: string
  readonly from: string
  readonly destinationCountry: string | null
  readonly links: ReadonlyArray<string>
  readonly smscMessageIds: ReadonlyArray<string>
  readonly parts: number
  readonly encoding: string
  readonly status: string
  readonly acceptedAt: number
  readonly submittedAt: number | null
  readonly finalAt: number
  readonly error: string | null
  readonly policyReason: string | null
  readonly policyRule: string | null
  readonly attempts: number
}

type Cell = string | number | null

/** The columns in their order: the CSV header, the JSON keys, and docs/cdr.md's table (a test keeps them in step). */
export const cdrColumns: ReadonlyArray<{
  readonly name: string
  readonly description: string
  readonly value: (r: CdrRecord) => Cell
}> = [
  { name: "id", description: "The message id (as answered at submission)", value: (r) => r.id },
  { name: "organisation", description: "The organisation's id", value: (r) => r.organisation },
  { name: "app", description: "The app that submitted it (empty for campaign sends)", value: (r) => r.app },
  { name: "campaign", description: "The campaign it belongs to, if any", value: (r) => r.campaign },
  { name: "client_reference", description: "The caller's `clientRef`, if given", value: (r) => r.clientReference },
  { name: "message_class", description: "`transactional` or `promotional`", value: (r) => r.messageClass },
  { name: "to", description: "Recipient, E.164 digits without `+`", value: (r) => r.to },
  { name: "from", description: "Sender as submitted (alphanumeric or digits)", value: (r) => r.from },
  {
    name: "destination_country",
    description: "ISO 3166 alpha-2 country of the recipient's number (libphonenumber), empty when unknown",
    value: (r) => r.destinationCountry
  },
  { name: "links", description: "SMPP link(s) its parts went out on, `;`-separated", value: (r) => joined(r.links) },
  {
    name: "smsc_message_ids",
    description: "The SMSC's message id of each part, in part order, `;`-separated",
    value: (r) => joined(r.smscMessageIds)
  },
  { name: "parts", description: "Number of SMS parts (segments): what a carrier bills", value: (r) => r.parts },
  { name: "encoding", description: "`gsm7` or `ucs2`", value: (r) => r.encoding },
  {
    name: "status",
    description: "Final status: `delivered`, `undelivered`, `expired`, `failed` or `rejected`",
    value: (r) => r.status
  },
  { name: "accepted_at", description: "When it was accepted (ISO 8601, UTC, milliseconds)", value: (r) => iso(r.acceptedAt) },
  {
    name: "submitted_at",
    description: "When its first part was submitted to the SMSC; empty if never",
    value: (r) => r.submittedAt === null ? null : iso(r.submittedAt)
  },
  { name: "final_at", description: "When it reached its final status", value: (r) => iso(r.finalAt) },
  {
    name: "error",
    description: "Why it did not deliver: the receipt's or SMSC's error per part (`;`-separated), or the gateway's reason",
    value: (r) => r.error
  },
  {
    name: "policy_reason",
    description: "For `rejected`: the contact-policy or validation reason (e.g. `frequency_cap`, `blacklisted`)",
    value: (r) => r.policyReason
  },
  { name: "policy_rule", description: "For `rejected`: the id of the policy rule that refused it", value: (r) => r.policyRule },
  { name: "attempts", description: "Re-drives after a crash or an unknown outcome (0 for most messages)", value: (r) => r.attempts }
]

const joined = (values: ReadonlyArray<string>): string | null => values.length === 0 ? null : values.join(";")

const iso = (ms: number): string => new Date(ms).toISOString()

/** RFC 4180: a field with a comma, quote, CR or LF is quoted, its quotes doubled; null is an empty field. */
const csvField = (cell: Cell): string => {
  if (cell === null) return ""
  const text = String(cell)
  // A leading =, +, - or @ is left as it is: the file is data for billing systems, not a spreadsheet to open.
  return /[",\r\n]/.test(text) ? `"${text.replaceAll("\"", "\"\"")}"` : text
}

export const csvHeader = `${cdrColumns.map((c) => c.name).join(",")}\r\n`

export const csvLine = (r: CdrRecord): string => `${cdrColumns.map((c) => csvField(c.value(r))).join(",")}\r\n`

export const jsonLine = (r: CdrRecord): string => {
  const object: Record<string, Cell> = {}
  for (const c of cdrColumns) object[c.name] = c.value(r)
  return `${JSON.stringify(object)}\n`
}

/** The recipient's country from its digits; one parse per distinct number of a run (callers keep the cache). */
export const countryOf = (digits: string, cache: Map<string, string | null>): string | null => {
  const known = cache.get(digits)
  if (known !== undefined) return known
  const country = parseRecipient(`+${digits}`)?.country ?? null
  if (cache.size >= 100_000) cache.clear()
  cache.set(digits, country)
  return country
}

/** An hour in milliseconds: CDR objects are per hour of acceptance (UTC). */
export const hourMs = 3_600_000

const two = (n: number) => String(n).padStart(2, "0")

/** The folder of one organisation's objects of one day (UTC): `<prefix>/<org>/yyyy/mm/dd`. */
export const cdrDayFolder = (prefix: string, organisation: string, hour: number): string => {
  const d = new Date(hour * hourMs)
  return `${prefix}/${organisation}/${d.getUTCFullYear()}/${two(d.getUTCMonth() + 1)}/${two(d.getUTCDate())}`
}

/**
 * The object of one organisation's messages accepted in one hour (UTC), written by one export run:
 * `<prefix>/<org>/yyyy/mm/dd/hh/<run>.<format>.gz`. `run` is the batch's number (zero-padded, so keys sort by it) and
 * token, or a re-export's own name: the same batch always writes the same keys, so writing it again replaces, never doubles.
 */
export const cdrObjectKey = (prefix: string, organisation: string, hour: number, run: string, format: CdrFormat): string =>
  `${cdrDayFolder(prefix, organisation, hour)}/${two(new Date(hour * hourMs).getUTCHours())}/${run}.${format}.gz`

/** The hour number (hours since the epoch) of an instant. */
export const hourOf = (ms: number): number => Math.floor(ms / hourMs)

/** A batch's file name without its extension: `b000000000042-3f9a0c1e` (its number, then its token). */
export const batchRunName = (batch: number, token: string): string => `b${String(batch).padStart(12, "0")}-${token}`

/** The folder of messages that have no organisation (rows older than accounts); no organisation id looks like it. */
export const noOrganisation = "_none"

export const contentTypes: Record<CdrFormat, string> = {
  csv: "text/csv; charset=utf-8",
  jsonl: "application/x-ndjson"
}

/** "2026-12-03T14": an hour as the CDR API names it (UTC). */
export const hourLabel = (hour: number): string => new Date(hour * hourMs).toISOString().slice(0, 13)

/** The hour of a label ("2026-12-03T14"); undefined when it is not one. */
export const parseHourLabel = (label: string): number | undefined => {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}$/.test(label)) return undefined
  const ms = Date.parse(`${label}:00:00Z`)
  return Number.isNaN(ms) || hourLabel(ms / hourMs) !== label ? undefined : ms / hourMs
}

/** A file name the export writes: `b000000000042-3f9a0c1e.csv.gz` (a batch) or `part.jsonl.gz` (a re-export). */
export const isCdrFileName = (name: string): boolean => /^[a-z0-9][a-z0-9-]{0,40}\.(csv|jsonl)\.gz$/.test(name)

/** The hour and name of an object under `<prefix>/<org>/`; undefined for anything else found there. */
export const parseCdrObjectKey = (prefix: string, organisation: string, key: string): { readonly hour: number; readonly name: string } | undefined => {
  const base = `${prefix}/${organisation}/`
  if (!key.startsWith(base)) return undefined
  const [year, month, day, hh, name, ...rest] = key.slice(base.length).split("/")
  if (name === undefined || rest.length > 0 || !isCdrFileName(name)) return undefined
  const hour = parseHourLabel(`${year}-${month}-${day}T${hh}`)
  return hour === undefined ? undefined : { hour, name }
}
