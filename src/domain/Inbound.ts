/**
 * Inbound (mobile-originated) messages as data: the routing document that maps the numbers the SMSCs deliver to (and
 * keywords) to apps, the opt-out and opt-in keywords per language, the decision for one message, and the body posted
 * to an app's callback when a message arrives.
 *
 * Routing: among the routes of the destination number, the one whose keyword is the message's first word wins, else
 * the number's route without a keyword. A message that is exactly an opt-out or opt-in keyword (case, accents, spaces
 * and trailing punctuation ignored) on a number whose only routes have keywords applies to every route of the number
 * with an opt-out list: STOP on a shared short code stops every programme on it.
 */
import { Schema } from "effect"

const Id = Schema.String.check(Schema.isPattern(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/))

/** A keyword as written in the document: letters and digits, matched without case or accents. */
export const Keyword = Schema.String.check(Schema.isPattern(/^[\p{L}\p{N}]{1,20}$/u, {
  message: "letters and digits only, 1 to 20"
}))

/** ISO 639-1 language code: the key of keyword lists and confirmation replies. */
export const Language = Schema.String.check(Schema.isPattern(/^[a-z]{2}$/, { message: "a two-letter language code, e.g. en" }))

/** The number an SMSC delivers to: a long number (E.164, `+` optional) or a short code, 3 to 15 digits. */
export const InboundNumber = Schema.String.check(Schema.isPattern(/^\+?\d{3,15}$/, {
  message: "a number of 3 to 15 digits (E.164 with an optional +, or a short code)"
}))

const ReplyText = Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(612))

export const Confirmations = Schema.Struct({
  /** Sent to a number that opted out, before it is listed. */
  optOut: Schema.optionalKey(ReplyText),
  /** Sent to a number that opted back in, after it is unlisted. */
  optIn: Schema.optionalKey(ReplyText)
})
export type Confirmations = typeof Confirmations.Type

export const InboundRoute = Schema.Struct({
  id: Id,
  number: InboundNumber,
  /** The first word of the message, to share a number between apps; none: every message to the number. */
  keyword: Schema.optionalKey(Keyword),
  appId: Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(64)),
  /** The app's organisation's blacklist (one without a file) that opt-out keywords add the sender to. */
  optOutList: Schema.optionalKey(Id),
  /** Confirmation replies per language (the language whose keyword the message matched; else the first listed). */
  replies: Schema.optionalKey(Schema.Record(Language, Confirmations))
})
export type InboundRoute = typeof InboundRoute.Type

export const defaultOptOutKeywords: Readonly<Record<string, ReadonlyArray<string>>> = {
  en: ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT"],
  fr: ["STOP", "ARRET"],
  de: ["STOP", "STOPP", "ABMELDEN"],
  es: ["BAJA", "PARAR"]
}

export const defaultOptInKeywords: Readonly<Record<string, ReadonlyArray<string>>> = {
  en: ["START", "UNSTOP"],
  fr: ["START"],
  de: ["START"],
  es: ["ALTA"]
}

export const maxInboundRoutes = 1000

/** Most inbound messages one page lists (REST and gRPC). */
export const maxInboundPage = 500

export const InboundDocument = Schema.Struct({
  routes: Schema.Array(InboundRoute).check(Schema.isMaxLength(maxInboundRoutes)),
  /** Per language; default `defaultOptOutKeywords`. */
  optOutKeywords: Schema.optionalKey(Schema.Record(Language, Schema.Array(Keyword).check(Schema.isMaxLength(50)))),
  /** Per language; default `defaultOptInKeywords`. */
  optInKeywords: Schema.optionalKey(Schema.Record(Language, Schema.Array(Keyword).check(Schema.isMaxLength(50))))
})
export type InboundDocument = typeof InboundDocument.Type

export const emptyInboundDocument: InboundDocument = { routes: [] }

export const InboundAction = Schema.Literals(["opt_out", "opt_in"])
export type InboundAction = typeof InboundAction.Type

/** Upper case, accents off: how keywords and words are compared. */
export const foldKeyword = (word: string): string => word.normalize("NFD").replace(/\p{M}/gu, "").toUpperCase()

/** The message's words, folded, without surrounding punctuation. */
const wordsOf = (text: string): ReadonlyArray<string> =>
  foldKeyword(text).split(/\s+/).map((w) => w.replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, "")).filter((w) => w !== "")

/** The digits of a number as SMSCs write it (no `+`, no leading `00`). */
export const numberKey = (number: string): string => number.replace(/^\+/, "").replace(/^00(?=\d{6})/, "")

export interface InboundDecision {
  /** The routes the message goes to: one, or every opt-out route of a shared number for an opt keyword; none: unrouted. */
  readonly routes: ReadonlyArray<InboundRoute>
  /** The route keyword matched (its folded form). */
  readonly keyword?: string
  readonly action?: InboundAction
  /** The language of the opt keyword matched. */
  readonly language?: string
}

const keywordLanguage = (lists: Readonly<Record<string, ReadonlyArray<string>>>, word: string): string | undefined => {
  for (const [language, words] of Object.entries(lists)) {
    if (words.some((w) => foldKeyword(w) === word)) return language
  }
  return undefined
}

/** Where a message to `destination` saying `text` goes, and whether it opts its sender out or in. */
export const decideInbound = (document: InboundDocument, destination: string, text: string): InboundDecision => {
  const words = wordsOf(text)
  const first = words[0] ?? ""
  const whole = words.length === 1 ? first : undefined
  let action: InboundAction | undefined
  let language: string | undefined
  if (whole !== undefined) {
    language = keywordLanguage(document.optOutKeywords ?? defaultOptOutKeywords, whole)
    if (language !== undefined) action = "opt_out"
    else {
      language = keywordLanguage(document.optInKeywords ?? defaultOptInKeywords, whole)
      if (language !== undefined) action = "opt_in"
    }
  }
  const key = numberKey(destination)
  const onNumber = document.routes.filter((r) => numberKey(r.number) === key)
  const byKeyword = onNumber.find((r) => r.keyword !== undefined && foldKeyword(r.keyword) === first)
  const base = {
    ...(action !== undefined ? { action } : {}),
    ...(language !== undefined ? { language } : {})
  }
  if (byKeyword !== undefined) return { routes: [byKeyword], keyword: first, ...base }
  const plain = onNumber.find((r) => r.keyword === undefined)
  if (plain !== undefined) return { routes: [plain], ...base }
  if (action !== undefined) return { routes: onNumber.filter((r) => r.optOutList !== undefined), ...base }
  return { routes: [], ...base }
}

/** The confirmation reply of a route for an action, in the matched language or else the route's first. */
export const confirmationOf = (route: InboundRoute, action: InboundAction, language: string | undefined): string | undefined => {
  const replies = route.replies
  if (replies === undefined) return undefined
  const pick = (c: Confirmations | undefined) => (action === "opt_out" ? c?.optOut : c?.optIn)
  return pick(language !== undefined ? replies[language] : undefined) ?? pick(Object.values(replies)[0])
}

export interface InboundProblem {
  readonly field: string
  readonly message: string
}

/** What the schema cannot say: unique ids, one route per number and keyword, keywords that mean one thing. */
export const checkInboundDocument = (document: InboundDocument): ReadonlyArray<InboundProblem> => {
  const problems: Array<InboundProblem> = []
  const ids = new Set<string>()
  const slots = new Map<string, number>()
  const optOut = new Set(Object.values(document.optOutKeywords ?? defaultOptOutKeywords).flat().map(foldKeyword))
  const optIn = new Set(Object.values(document.optInKeywords ?? defaultOptInKeywords).flat().map(foldKeyword))
  for (const word of optOut) {
    if (optIn.has(word)) problems.push({ field: "optInKeywords", message: `${word} is also an opt-out keyword` })
  }
  for (const [i, route] of document.routes.entries()) {
    if (ids.has(route.id)) problems.push({ field: `routes[${i}].id`, message: `route id ${route.id} is used twice` })
    ids.add(route.id)
    const keyword = route.keyword === undefined ? "" : foldKeyword(route.keyword)
    const slot = `${numberKey(route.number)} ${keyword}`
    const earlier = slots.get(slot)
    if (earlier !== undefined) {
      problems.push({
        field: `routes[${i}]`,
        message: `routes[${earlier}] already takes ${keyword === "" ? "every message" : `keyword ${keyword}`} to ${route.number}`
      })
    } else slots.set(slot, i)
    if (keyword !== "" && (optOut.has(keyword) || optIn.has(keyword))) {
      problems.push({ field: `routes[${i}].keyword`, message: `${keyword} is an opt-out or opt-in keyword` })
    }
  }
  return problems
}

/** The body posted to an app's callback URL when a message for it arrives (`type` tells it from status callbacks). */
export interface InboundCallbackBody {
  readonly type: "message.received"
  readonly eventId: string
  readonly inboundId: string
  readonly appId: string
  readonly from: string
  readonly to: string
  readonly text: string
  /** ISO 8601: when the last part reached the gateway. */
  readonly receivedAt: string
  readonly parts: number
  /** Parts that never came (the message was completed after the reassembly wait). */
  readonly missingParts?: number
  readonly keyword?: string
  readonly action?: InboundAction
}

export const inboundCallbackBody = (body: InboundCallbackBody): string => JSON.stringify(body)

/** An inbound message as the API and gRPC show it. */
export const InboundView = Schema.Struct({
  id: Schema.String,
  appId: Schema.NullOr(Schema.String),
  routeId: Schema.NullOr(Schema.String),
  linkId: Schema.String,
  from: Schema.String,
  to: Schema.String,
  text: Schema.String,
  encoding: Schema.String,
  parts: Schema.Int,
  missingParts: Schema.Int,
  keyword: Schema.NullOr(Schema.String),
  action: Schema.NullOr(InboundAction),
  receivedAt: Schema.String
})
export type InboundView = typeof InboundView.Type
