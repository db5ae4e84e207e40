/**
 * The content check a moderator sees beside a submitted campaign: what in its text or sender deserves a second look
 * (the organisation's keywords and listed domains, links, text in capitals, a sender the organisation never used).
 * Pure: the caller says whether the sender was used before. Flags inform a person; they never refuse by themselves.
 */
import type { ModerationSettings } from "./Campaign.ts"

export interface ContentInput {
  /** The template's source: placeholders are not content, they are dropped before the text is judged. */
  readonly template: string
  readonly sender: string
  /** Whether the organisation has sent from this sender before (API messages or campaigns). */
  readonly senderUsed: boolean
}

/** Links as people write them in an SMS: with a scheme, `www.`, or a bare domain with a path. */
const linkPattern = /\b(?:https?:\/\/[^\s]+|www\.[^\s]+|[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}\/[^\s]*)/gi

/** Letters needed before a text counts as shouting (an "OK" or "STOP" alone is not). */
const minCapsLetters = 8

const withoutPlaceholders = (template: string): string => template.replace(/\{\{[^}]*\}\}/g, " ")

/** The host of a link, lower case, without `www.` (for matching the organisation's listed domains). */
const hostOf = (link: string): string => {
  const noScheme = link.replace(/^https?:\/\//i, "")
  const end = noScheme.search(/[/?#:]/)
  return (end === -1 ? noScheme : noScheme.slice(0, end)).toLowerCase().replace(/^www\./, "")
}

/** A listed entry ("bit.ly", "https://evil.example/path") matches a link to that host or one of its subdomains. */
const matchesListed = (link: string, entry: string): boolean => {
  const listed = entry.trim().toLowerCase()
  if (listed === "") return false
  if (/^https?:\/\//.test(listed) || listed.includes("/")) {
    const a = link.toLowerCase().replace(/^https?:\/\//, "").replace(/^www\./, "")
    const b = listed.replace(/^https?:\/\//, "").replace(/^www\./, "")
    return a.startsWith(b)
  }
  const host = hostOf(link)
  const domain = listed.replace(/^www\./, "")
  return host === domain || host.endsWith(`.${domain}`)
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

/** A keyword matches as a whole word or phrase, case-insensitively ("free" flags "FREE offer", not "carefree"). */
const containsKeyword = (text: string, keyword: string): boolean => {
  const k = keyword.trim()
  if (k === "") return false
  return new RegExp(`(^|[^\\p{L}\\p{N}])${escapeRegExp(k)}($|[^\\p{L}\\p{N}])`, "iu").test(text)
}

/** The links of a text, in order of appearance (trailing punctuation dropped). */
export const linksIn = (text: string): ReadonlyArray<string> =>
  Array.from(text.matchAll(linkPattern), (m) => m[0].replace(/[.,;:!?)\]]+$/, ""))

/** True when the text's letters are (nearly) all capitals and there are enough of them to read as shouting. */
export const isAllCaps = (text: string): boolean => {
  const letters = Array.from(text).filter((c) => c.toLowerCase() !== c.toUpperCase())
  if (letters.length < minCapsLetters) return false
  const upper = letters.filter((c) => c === c.toUpperCase()).length
  return upper / letters.length >= 0.9
}

/**
 * The flags of a campaign, each a short sentence naming what was found, in a stable order: keywords, listed domains,
 * links, capitals, sender.
 */
export const contentFlags = (input: ContentInput, settings: Pick<ModerationSettings, "keywords" | "urls">): ReadonlyArray<string> => {
  const text = withoutPlaceholders(input.template)
  const flags: Array<string> = []
  for (const keyword of settings.keywords) {
    if (containsKeyword(text, keyword)) flags.push(`keyword: "${keyword.trim()}"`)
  }
  const links = linksIn(text)
  for (const entry of settings.urls) {
    const hit = links.find((link) => matchesListed(link, entry))
    if (hit !== undefined) flags.push(`listed link: ${hit} (${entry.trim()})`)
  }
  if (links.length > 0) flags.push(`link in text: ${links.join(", ")}`)
  if (isAllCaps(text)) flags.push("all capitals")
  if (!input.senderUsed) flags.push(`new sender: ${input.sender} has not been used by the organisation`)
  return flags
}
