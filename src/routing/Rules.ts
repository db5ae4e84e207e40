/**
 * Routing rules as data: an ordered list, the first rule whose criteria all match decides where a message goes.
 * `compileRules` turns the list into lookups once (at start-up and on every live change); `resolveRoute` runs per
 * message and allocates nothing on the way.
 */
import { MessageClass } from "../domain/Policy.ts"
import { Effect, Schema } from "effect"
import {
  getCountries,
  getCountryCallingCode,
  isSupportedCountry,
  parsePhoneNumberFromString
} from "libphonenumber-js/max"
import { fieldIssues } from "../domain/FieldIssues.ts"
import { Id } from "./Links.ts"


// An empty list would silently mean "matches nothing": leave the key out to match anything.
const NonEmpty = <S extends Schema.Top>(item: S) => Schema.Array(item).check(Schema.isMinLength(1))


const Country = Schema.String.check(
  Schema.makeFilter((s: string) => /^[A-Z]{2}$/.test(s) && isSupportedCountry(s), {
    expected: "an ISO 3166 alpha-2 country code in upper case, e.g. \"DE\""
  })
)

export const RouteMatch = Schema.Struct({
  /** E.164 digits without "+": "4915" matches every number starting with them. */
  prefixes: Schema.optionalKey(NonEmpty(Schema.String.check(
    Schema.isPattern(/^[0-9]{1,15}$/, { expected: "1-15 digits of an E.164 number without \"+\", e.g. \"4915\"" })
  ))),
  /** The destination's region as libphonenumber-js names it. */
  countries: Schema.optionalKey(NonEmpty(Country)),
  appIds: Schema.optionalKey(NonEmpty(Schema.String.check(Schema.isMinLength(1)))),
  orgIds: Schema.optionalKey(NonEmpty(Schema.String.check(Schema.isMinLength(1)))),
  /** Exact sender ids (`from`), compared without regard to case. */
  senders: Schema.optionalKey(NonEmpty(Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(16)))),
  messageClasses: Schema.optionalKey(NonEmpty(MessageClass))
})
export type RouteMatch = typeof RouteMatch.Type

export const RouteTarget = Schema.Union([
  Schema.Struct({ pool: Id }),
  Schema.Struct({ link: Id })
], { mode: "oneOf" }).annotate({ message: "must be { pool: <pool id> } or { link: <link id> }, not both" })
export type RouteTarget = typeof RouteTarget.Type

/** One rule; an empty `match` is a catch-all (the default route, put it last). */
export const RouteRule = Schema.Struct({
  id: Id,
  match: RouteMatch,
  target: RouteTarget
})
export type RouteRule = typeof RouteRule.Type

/** The ordered rule list, with unique ids (an admin API addresses rules by id). */
export const RouteRules = Schema.Array(RouteRule).check(
  Schema.makeFilter((rules: ReadonlyArray<RouteRule>) => {
    const seen = new Set<string>()
    const issues: Array<Schema.FilterIssue> = []
    for (const [i, rule] of rules.entries()) {
      if (seen.has(rule.id)) issues.push({ path: [i, "id"], issue: `duplicate rule id "${rule.id}"` })
      seen.add(rule.id)
    }
    return issues
  })
)

export class RouteRulesError extends Schema.TaggedError<RouteRulesError>()("RouteRulesError", {
  /** One line per problem: `[2].match.countries[0]: Expected …`. */
  message: Schema.String,
  issues: Schema.Array(Schema.Struct({ path: Schema.String, message: Schema.String }))
}) {}

/** Decodes a rule list from config or an admin request; the error names every bad key (unknown keys included). */
export const decodeRouteRules = (raw: unknown): Effect.Effect<ReadonlyArray<RouteRule>, RouteRulesError> =>
  Schema.decodeUnknownEffect(RouteRules)(raw, { errors: "all", onExcessProperty: "error" }).pipe(
    Effect.mapError((error) => {
      const issues = fieldIssues(error.issue).map((i) => ({ path: i.field, message: i.message }))
      return new RouteRulesError({ message: issues.map((i) => `${i.path}: ${i.message}`).join("\n"), issues })
    })
  )

export interface RouteInput {
  /** E.164 digits without "+" (a leading "+" is tolerated). */
  readonly msisdn: string
  readonly appId?: string | null | undefined
  readonly orgId?: string | null | undefined
  readonly sender?: string | null | undefined
  readonly messageClass?: MessageClass | null | undefined
}

export interface RouteDecision {
  readonly ruleId: string
  readonly target: RouteTarget
}

/** A rule list made ready for per-message lookups; build it with `compileRules`. */
export interface CompiledRules {
  readonly rules: ReadonlyArray<RouteRule>
  readonly resolve: (request: RouteInput) => RouteDecision | undefined
}

interface CompiledRule {
  readonly decision: RouteDecision
  readonly index: number
  readonly hasPrefixes: boolean
  readonly countries: ReadonlySet<string> | undefined
  readonly appIds: ReadonlySet<string> | undefined
  readonly orgIds: ReadonlySet<string> | undefined
  readonly senders: ReadonlySet<string> | undefined
  readonly classes: ReadonlySet<MessageClass> | undefined
}

interface TrieNode {
  readonly children: Array<TrieNode | undefined>
  /** Indices of the rules with a prefix ending at this node. */
  readonly rules: Array<number>
}

const node = (): TrieNode => ({ children: new Array<TrieNode | undefined>(10).fill(undefined), rules: [] })

const setOf = <A>(items: ReadonlyArray<A> | undefined): ReadonlySet<A> | undefined =>
  items === undefined ? undefined : new Set(items)

const compileRule = (rule: RouteRule, index: number): CompiledRule => ({
  decision: { ruleId: rule.id, target: rule.target },
  index,
  hasPrefixes: rule.match.prefixes !== undefined,
  countries: setOf(rule.match.countries),
  appIds: setOf(rule.match.appIds),
  orgIds: setOf(rule.match.orgIds),
  senders: setOf(rule.match.senders?.map((s) => s.toLowerCase())),
  classes: setOf(rule.match.messageClasses)
})

/** Precomputes the lookups of a rule list (already decoded: see RouteRules). Compile again on every change. */
export const compileRules = (rules: ReadonlyArray<RouteRule>): CompiledRules => {
  const compiled = rules.map(compileRule)
  const usesSenders = compiled.some((r) => r.senders !== undefined)
  // One trie over the prefixes of all rules: a lookup walks at most 15 digits, whatever the number of rules.
  const trie = node()
  for (const [index, rule] of rules.entries()) {
    for (const prefix of rule.match.prefixes ?? []) {
      let at = trie
      for (let i = 0; i < prefix.length; i++) {
        const digit = prefix.charCodeAt(i) - 48
        const next = at.children[digit] ?? node()
        at.children[digit] = next
        at = next
      }
      at.rules.push(index)
    }
  }
  // Rule i's prefix matched in this lookup when prefixHit[i] === stamp; bumping the stamp clears them all at once.
  const prefixHit = new Uint32Array(rules.length)
  let stamp = 0

  const markPrefixes = (digits: string, from: number): void => {
    if (stamp === 0xffffffff) {
      prefixHit.fill(0)
      stamp = 0
    }
    stamp++
    let at: TrieNode | undefined = trie
    for (let i = from; i < digits.length; i++) {
      const digit = digits.charCodeAt(i) - 48
      if (digit < 0 || digit > 9) break
      at = at.children[digit]
      if (at === undefined) break
      for (const r of at.rules) prefixHit[r] = stamp
    }
  }

  const resolve = (request: RouteInput): RouteDecision | undefined => {
    const msisdn = request.msisdn
    const from = msisdn.charCodeAt(0) === 43 ? 1 : 0 // a leading "+"
    // Each computed at most once per call, and only when a rule gets as far as needing it.
    let marked = false
    let country: string | undefined | null = null
    const sender = usesSenders && request.sender != null ? request.sender.toLowerCase() : undefined
    for (const rule of compiled) {
      if (rule.classes !== undefined && (request.messageClass == null || !rule.classes.has(request.messageClass))) continue
      if (rule.appIds !== undefined && (request.appId == null || !rule.appIds.has(request.appId))) continue
      if (rule.orgIds !== undefined && (request.orgId == null || !rule.orgIds.has(request.orgId))) continue
      if (rule.senders !== undefined && (sender === undefined || !rule.senders.has(sender))) continue
      if (rule.hasPrefixes) {
        if (!marked) {
          markPrefixes(msisdn, from)
          marked = true
        }
        if (prefixHit[rule.index] !== stamp) continue
      }
      if (rule.countries !== undefined) {
        if (country === null) country = countryOf(from === 0 ? msisdn : msisdn.slice(1))
        if (country === undefined || !rule.countries.has(country)) continue
      }
      return rule.decision
    }
    return undefined
  }

  return { rules, resolve }
}

/** The first rule matching the request, or undefined (the caller rejects the message with `no_route`). */
export const resolveRoute = (compiled: CompiledRules, request: RouteInput): RouteDecision | undefined =>
  compiled.resolve(request)

// Calling code → its only region (49 → "DE"); codes shared by several regions (1, 7, 44…) are absent.
let singleRegion: Map<number, string> | undefined

const singleRegionOf = (): Map<number, string> => {
  if (singleRegion !== undefined) return singleRegion
  const regions = new Map<number, Array<string>>()
  for (const country of getCountries()) {
    const code = Number(getCountryCallingCode(country))
    const list = regions.get(code)
    if (list === undefined) regions.set(code, [country])
    else list.push(country)
  }
  singleRegion = new Map()
  for (const [code, list] of regions) if (list.length === 1) singleRegion.set(code, list[0] as string)
  return singleRegion
}

const countryCacheMax = 10_000
const countryCache = new Map<string, string | undefined>()

/**
 * The region of an E.164 number (digits without "+"), as libphonenumber-js names it; undefined for non-geographic or
 * unknown numbers. A calling code with one region answers without parsing (numbers reach routing validated); the
 * others are parsed once and cached.
 */
export const countryOf = (msisdn: string): string | undefined => {
  const regions = singleRegionOf()
  // Calling codes are 1–3 digits and prefix-free, so at most one of the first three prefixes is a code.
  let code = 0
  for (let i = 0; i < 3 && i < msisdn.length; i++) {
    const digit = msisdn.charCodeAt(i) - 48
    if (digit < 0 || digit > 9 || (i === 0 && digit === 0)) break
    code = code * 10 + digit
    const region = regions.get(code)
    if (region !== undefined) return region
  }
  const cached = countryCache.get(msisdn)
  if (cached !== undefined || countryCache.has(msisdn)) return cached
  const country = parsePhoneNumberFromString(`+${msisdn}`)?.country
  // Oldest first out: Maps iterate in insertion order, so this is a FIFO bound with no extra bookkeeping.
  if (countryCache.size >= countryCacheMax) {
    const oldest = countryCache.keys().next()
    if (oldest.done !== true) countryCache.delete(oldest.value)
  }
  countryCache.set(msisdn, country)
  return country
}
