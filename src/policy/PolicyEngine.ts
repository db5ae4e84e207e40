/**
 * The policy document compiled for the hot path. For each (app, message class) the applicable rules are picked once
 * and kept, so screening a message is a few map lookups: the stateless checks (blacklists, quiet hours) are decided
 * here, on the node that took the request; the stateful ones (frequency caps, dedup) become `PolicyCheck`s for the
 * recipient's bucket actor, the single writer of their counters.
 */
import type { BlacklistRule, FrequencyCapRule, MessageClass, PolicyDocument, PolicyRule, PolicyScope, QuietHoursRule, RejectionReason } from "../domain/Policy.ts"
import type { Msisdn } from "../domain/Msisdn.ts"
import type { PolicyCheck, Window } from "./RecipientState.ts"
import { offsetAt } from "../domain/ZonedTime.ts"

export interface PolicySubject {
  readonly orgId: string
  readonly appId: string
  readonly messageClass: MessageClass
  /** E.164 without "+". */
  readonly to: Msisdn
  /** The number's ISO 3166 country, when known (quiet hours). */
  readonly country: string | undefined
  readonly from: string
  readonly text: string
}

export type Screen =
  | { readonly _tag: "Reject"; readonly ruleId: string; readonly reason: RejectionReason; readonly retryAt?: number }
  | {
    readonly _tag: "Checks"
    readonly checks: ReadonlyArray<PolicyCheck>
    /** Every rule that looked at the message (in evaluation order): each lets it pass if the checks do. */
    readonly applied: ReadonlyArray<string>
  }

export interface CompiledPolicy {
  readonly version: number
  readonly screen: (subject: PolicySubject, now: number) => Screen
  /** Whether any rule needs the recipient's counters (so the actor call can be skipped entirely). */
  readonly stateful: boolean
}

const MINUTE = 60_000
const DAY = 86_400_000

interface QuietCompiled {
  readonly ruleId: string
  readonly from: number
  readonly to: number
  readonly zones: ReadonlyMap<string, string>
}

interface Applicable {
  readonly blacklists: ReadonlyArray<{ readonly ruleId: string; readonly lists: ReadonlyArray<string> }>
  readonly quiet: ReadonlyArray<QuietCompiled>
  /** Dedup rules first: a duplicate is reported as such, not as a cap hit. */
  readonly stateful: ReadonlyArray<PolicyRule>
  /** The screen when no stateful rule applies: no checks, the applied rules named. */
  readonly passed: Screen
  readonly applied: ReadonlyArray<string>
}

const minutesOf = (clock: string): number => Number(clock.slice(0, 2)) * 60 + Number(clock.slice(3, 5))

const inScope = (scope: PolicyScope | undefined, orgId: string, appId: string): boolean =>
  scope === undefined || scope === "global" || ("org" in scope ? scope.org === orgId : scope.app === appId)

type Addressed = { readonly orgId: string; readonly appId: string; readonly messageClass: MessageClass }

/** Why a rule does not look at a message, or undefined when it does. */
export const notApplicable = (rule: PolicyRule, subject: Addressed): string | undefined => {
  if (rule.enabled === false) return "disabled"
  if (!inScope(rule.scope, subject.orgId, subject.appId)) {
    return typeof rule.scope === "object" && "org" in rule.scope ? "another organisation's rule" : "another app's rule"
  }
  if (rule.classes !== undefined && !rule.classes.includes(subject.messageClass)) return `not for ${subject.messageClass} messages`
  // Quiet hours keep promotions away at night; a one-time password must still arrive.
  if (rule.type === "quiet_hours" && subject.messageClass !== "promotional") return "quiet hours apply to promotional messages only"
  return undefined
}

const appliesTo = (rule: PolicyRule, subject: Addressed): boolean => notApplicable(rule, subject) === undefined

const stage: Record<PolicyRule["type"], number> = { blacklist: 0, quiet_hours: 1, dedup: 2, frequency_cap: 3 }

/**
 * The rules in the order a message meets them: blacklists, quiet hours, dedup, frequency caps (each kind in document
 * order). The first refusal wins, so a rule later in this order never sees a message an earlier one refused.
 */
export const evaluationOrder = <R extends PolicyRule>(rules: ReadonlyArray<R>): ReadonlyArray<R> =>
  rules.map((rule, index) => ({ rule, index }))
    .sort((a, b) => stage[a.rule.type] - stage[b.rule.type] || a.index - b.index)
    .map((x) => x.rule)

/** A 53-bit string hash (cyrb53): dedup keys need no cryptographic strength, only few collisions, and speed. */
const hash53 = (text: string, seed: number): number => {
  let h1 = 0xdeadbeef ^ seed
  let h2 = 0x41c6ce57 ^ seed
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i)
    h1 = Math.imul(h1 ^ ch, 2654435761)
    h2 = Math.imul(h2 ^ ch, 1597334677)
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909)
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909)
  return 4294967296 * (2097151 & h2) + (h1 >>> 0)
}

/** The content key of a message for dedup: its organisation (never across tenants), sender and text; 106 bits. */
export const contentKey = (orgId: string, from: string, text: string): string => {
  const material = `${orgId}\u0000${from}\u0000${text}`
  return `${hash53(material, 1).toString(36)}.${hash53(material, 2).toString(36)}`
}

/** The bucket (actor) of a recipient: FNV-1a of its digits, mod the bucket count. */
export const bucketOf = (msisdn: string, buckets: number): number => {
  let h = 0x811c9dc5
  for (let i = 0; i < msisdn.length; i++) {
    h ^= msisdn.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return (h >>> 0) % buckets
}

/**
 * A time zone's UTC offset, kept for 15 minutes of UTC time: every offset change in the tz database falls on a
 * quarter hour, so a cached offset is exact until the next boundary, and formatting runs a few times an hour per zone.
 */
const offsets = new Map<string, { readonly until: number; readonly offsetMinutes: number }>()
const QUARTER = 15 * MINUTE

const offsetMinutes = (zone: string, now: number): number => {
  const cached = offsets.get(zone)
  if (cached !== undefined && now < cached.until && now >= cached.until - QUARTER) return cached.offsetMinutes
  const start = now - (now % QUARTER)
  const offset = Math.round(offsetAt(start, zone) / MINUTE)
  offsets.set(zone, { until: start + QUARTER, offsetMinutes: offset })
  return offset
}

/** Minutes since local midnight in `zone` at `now`. */
export const localMinutes = (zone: string, now: number): number => {
  const utcMinutes = Math.floor((now % DAY) / MINUTE)
  return (((utcMinutes + offsetMinutes(zone, now)) % 1440) + 1440) % 1440
}

const quietAt = (rule: QuietCompiled, minutes: number): boolean =>
  rule.from < rule.to ? minutes >= rule.from && minutes < rule.to : minutes >= rule.from || minutes < rule.to

/** When the quiet period that holds at `now` ends (epoch ms, to the minute). */
const quietEndsAt = (rule: QuietCompiled, minutes: number, now: number): number => {
  const wait = ((rule.to - minutes) % 1440 + 1440) % 1440
  return now - (now % MINUTE) + wait * MINUTE
}

const windowOf = (rule: FrequencyCapRule): Window =>
  rule.window === "rolling"
    ? { type: "rolling", ms: (rule.windowSeconds ?? 60) * 1000 }
    : { type: "fixed", ms: rule.window === "minute" ? MINUTE : rule.window === "hour" ? 60 * MINUTE : DAY }

/**
 * Compiles a document. `ownerOf(list)` tells a list's organisation (undefined: global) so an organisation's list is
 * never applied to another organisation's messages, whatever the rule's scope says; `listed(list, msisdn)` is the
 * blacklist lookup.
 */
export const compilePolicy = (
  version: number,
  document: PolicyDocument,
  listed: (list: string, msisdn: string) => boolean
): CompiledPolicy => {
  const owners = new Map((document.blacklists ?? []).map((l) => [l.name, l.org]))
  const rules = document.rules.filter((r) => r.enabled !== false)
  const stateful = rules.some((r) => r.type === "frequency_cap" || r.type === "dedup")
  const cache = new Map<string, Applicable>()

  const applicable = (subject: PolicySubject): Applicable => {
    const key = `${subject.appId}\u0000${subject.orgId}\u0000${subject.messageClass}`
    const found = cache.get(key)
    if (found !== undefined) return found
    const mine = rules.filter((r) => appliesTo(r, subject))
    const applied = evaluationOrder(mine).map((r) => r.id)
    const compiled: Applicable = {
      applied,
      passed: { _tag: "Checks", checks: [], applied },
      blacklists: mine.filter((r): r is BlacklistRule => r.type === "blacklist").map((r) => ({
        ruleId: r.id,
        lists: r.lists.filter((name) => {
          const owner = owners.get(name)
          return owner === undefined || owner === subject.orgId
        })
      })),
      quiet: mine.filter((r): r is QuietHoursRule => r.type === "quiet_hours").map((r) => ({
        ruleId: r.id,
        from: minutesOf(r.from),
        to: minutesOf(r.to),
        zones: new Map(Object.entries(r.countries))
      })),
      stateful: [...mine.filter((r) => r.type === "dedup"), ...mine.filter((r) => r.type === "frequency_cap")]
    }
    // One entry per (app, class): bounded by the apps that send.
    if (cache.size > 100_000) cache.clear()
    cache.set(key, compiled)
    return compiled
  }

  const screen = (subject: PolicySubject, now: number): Screen => {
    const rulesFor = applicable(subject)
    for (const rule of rulesFor.blacklists) {
      for (const list of rule.lists) {
        if (listed(list, subject.to)) return { _tag: "Reject", ruleId: rule.ruleId, reason: "blacklisted" }
      }
    }
    if (rulesFor.quiet.length > 0) {
      const country = subject.country
      if (country !== undefined) {
        for (const rule of rulesFor.quiet) {
          const zone = rule.zones.get(country)
          if (zone === undefined) continue
          const minutes = localMinutes(zone, now)
          if (quietAt(rule, minutes)) {
            return { _tag: "Reject", ruleId: rule.ruleId, reason: "quiet_hours", retryAt: quietEndsAt(rule, minutes, now) }
          }
        }
      }
    }
    if (rulesFor.stateful.length === 0) return rulesFor.passed
    const checks: Array<PolicyCheck> = []
    let content: string | undefined
    for (const rule of rulesFor.stateful) {
      if (rule.type === "dedup") {
        content ??= contentKey(subject.orgId, subject.from, subject.text)
        // The organisation in clear, not only inside the hash: no collision can match another tenant's message.
        checks.push({
          kind: "dedup",
          ruleId: rule.id,
          key: `${rule.id}|${subject.orgId}|${content}`,
          windowMs: rule.windowSeconds * 1000,
          mode: rule.mode
        })
      } else if (rule.type === "frequency_cap") {
        const per = rule.per ?? "all"
        const key = per === "all" ? rule.id : per === "organisation" ? `${rule.id}|o:${subject.orgId}` : `${rule.id}|a:${subject.appId}`
        checks.push({ kind: "cap", ruleId: rule.id, key, max: rule.max, window: windowOf(rule) })
      }
    }
    return { _tag: "Checks", checks, applied: rulesFor.applied }
  }

  return { version, screen, stateful }
}
