/**
 * Why each routing rule did or did not take a message, for the operators' "which route would this number take"
 * tester. The same criteria as Rules.ts's compiled lookup (first rule whose criteria all match wins), read one rule
 * at a time in plain code: this runs once per question, not per message, and must say which criterion failed.
 */
import type { RouteInput, RouteRule } from "./Rules.ts"
import { countryOf } from "./Rules.ts"

export interface RuleExplanation {
  readonly ruleId: string
  /** matched: this rule takes the message; no_match: `detail` names the first criterion that failed. */
  readonly outcome: "matched" | "no_match" | "not_reached"
  readonly detail?: string
}

const list = (items: ReadonlyArray<string>) => items.length <= 5 ? items.join(", ") : `${items.slice(0, 5).join(", ")}, …`

/** The first criterion of `rule` the message fails, or undefined when all match. */
const failure = (rule: RouteRule, input: RouteInput, digits: string): string | undefined => {
  const m = rule.match
  if (m.messageClasses !== undefined && (input.messageClass == null || !m.messageClasses.includes(input.messageClass))) {
    return `message class ${input.messageClass ?? "(none)"} is not ${list(m.messageClasses)}`
  }
  if (m.appIds !== undefined && (input.appId == null || !m.appIds.includes(input.appId))) {
    return `app ${input.appId ?? "(none)"} is not ${list(m.appIds)}`
  }
  if (m.orgIds !== undefined && (input.orgId == null || !m.orgIds.includes(input.orgId))) {
    return `organisation ${input.orgId ?? "(none)"} is not ${list(m.orgIds)}`
  }
  if (m.senders !== undefined) {
    const sender = input.sender?.toLowerCase()
    if (sender === undefined || !m.senders.some((s) => s.toLowerCase() === sender)) {
      return `sender ${input.sender ?? "(none)"} is not ${list(m.senders)}`
    }
  }
  if (m.prefixes !== undefined && !m.prefixes.some((p) => digits.startsWith(p))) {
    return `+${digits} starts with none of ${list(m.prefixes)}`
  }
  if (m.countries !== undefined) {
    const country = countryOf(digits)
    if (country === undefined || !m.countries.includes(country)) {
      return `country ${country ?? "(unknown)"} is not ${list(m.countries)}`
    }
  }
  return undefined
}

/** Every rule in order: the first that matches, those before it with why not, those after it not reached. */
export const explainRoute = (rules: ReadonlyArray<RouteRule>, input: RouteInput): ReadonlyArray<RuleExplanation> => {
  const digits = input.msisdn.startsWith("+") ? input.msisdn.slice(1) : input.msisdn
  let matched = false
  return rules.map((rule): RuleExplanation => {
    if (matched) return { ruleId: rule.id, outcome: "not_reached" }
    const why = failure(rule, input, digits)
    if (why !== undefined) return { ruleId: rule.id, outcome: "no_match", detail: why }
    matched = true
    return { ruleId: rule.id, outcome: "matched" }
  })
}
