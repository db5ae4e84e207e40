/**
 * Contact policy as data: the rules that protect recipients (frequency caps, dedup, blacklists, quiet hours) and the
 * blacklists they name. One versioned document for the whole deployment, set in the configuration file (first start)
 * and through `PUT /v1/policies`.
 */
import { Schema } from "effect"
import { isTimeZone } from "./ZonedTime.ts"

export const MessageClass = Schema.Literals(["transactional", "promotional"])
export type MessageClass = typeof MessageClass.Type

const Id = Schema.String.check(Schema.isPattern(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/))

/** Which messages a rule looks at: all of them, one organisation's, or one app's. */
export const PolicyScope = Schema.Union([
  Schema.Literal("global"),
  Schema.Struct({ org: Schema.String.check(Schema.isMinLength(1)) }),
  Schema.Struct({ app: Schema.String.check(Schema.isMinLength(1)) })
]).annotate({ description: "\"global\", { \"org\": orgId } or { \"app\": appId }" })
export type PolicyScope = typeof PolicyScope.Type

const common = {
  /** Stable id, reported with every rejection the rule causes. */
  id: Id,
  scope: Schema.optionalKey(PolicyScope),
  /** The message classes the rule applies to (default: both; quiet hours: promotional only, always). */
  classes: Schema.optionalKey(Schema.Array(MessageClass).check(Schema.isMinLength(1))),
  enabled: Schema.optionalKey(Schema.Boolean)
}

const Count = Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 10_000 }))
const Seconds = Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 366 * 86_400 }))

export const FrequencyCapRule = Schema.Struct({
  ...common,
  type: Schema.Literal("frequency_cap"),
  /** At most this many messages to one recipient per window. */
  max: Count,
  /** Calendar windows (UTC) or a rolling window of `windowSeconds`. */
  window: Schema.Literals(["minute", "hour", "day", "rolling"]),
  windowSeconds: Schema.optionalKey(Seconds),
  /** Whose messages count together: everyone's in the scope (default), or each organisation's / app's apart. */
  per: Schema.optionalKey(Schema.Literals(["all", "organisation", "app"]))
})
export type FrequencyCapRule = typeof FrequencyCapRule.Type

export const DedupRule = Schema.Struct({
  ...common,
  type: Schema.Literal("dedup"),
  /** The same (recipient, sender, text) from one organisation within this many seconds is a duplicate. */
  windowSeconds: Seconds,
  /** reject: 422 `duplicate`; return_first: answer with the first message's id and send nothing. */
  mode: Schema.Literals(["reject", "return_first"])
})
export type DedupRule = typeof DedupRule.Type

export const BlacklistRule = Schema.Struct({
  ...common,
  type: Schema.Literal("blacklist"),
  /** Names of blacklists (see `blacklists`). */
  lists: Schema.Array(Id).check(Schema.isMinLength(1))
})
export type BlacklistRule = typeof BlacklistRule.Type

const ClockTime = Schema.String.check(Schema.isPattern(/^([01]\d|2[0-3]):[0-5]\d$/))

export const QuietHoursRule = Schema.Struct({
  ...common,
  type: Schema.Literal("quiet_hours"),
  /** Local time in the recipient's country, "HH:MM"; `from` after `to` spans midnight. */
  from: ClockTime,
  to: ClockTime,
  /** Destination countries (ISO 3166 alpha-2, from the number) and the IANA time zone their clock is read in. */
  countries: Schema.Record(Schema.String.check(Schema.isPattern(/^[A-Z]{2}$/)), Schema.String)
})
export type QuietHoursRule = typeof QuietHoursRule.Type

export const PolicyRule = Schema.Union([FrequencyCapRule, DedupRule, BlacklistRule, QuietHoursRule])
export type PolicyRule = typeof PolicyRule.Type

export const BlacklistDefinition = Schema.Struct({
  name: Id,
  /**
   * The list's file in the object store (default `blacklists/<name>.txt`), or null: no file, the entries are edited
   * through the API only (an organisation's opt-out list), so nothing is polled and the list is never stale.
   */
  object: Schema.optionalKey(Schema.NullOr(Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(1024)))),
  /** Owned by this organisation: its owners and admins edit the entries, and only its messages are checked. */
  org: Schema.optionalKey(Schema.String.check(Schema.isMinLength(1)))
})
export type BlacklistDefinition = typeof BlacklistDefinition.Type

export const PolicyDocument = Schema.Struct({
  rules: Schema.Array(PolicyRule),
  blacklists: Schema.optionalKey(Schema.Array(BlacklistDefinition))
})
export type PolicyDocument = typeof PolicyDocument.Type

export const emptyPolicy: PolicyDocument = { rules: [] }

export const RejectionReason = Schema.Literals(["blacklisted", "frequency_cap", "duplicate", "quiet_hours"])
export type RejectionReason = typeof RejectionReason.Type

/** The key of the list's file in the object store; null for a list without a file (entries through the API only). */
export const blacklistObject = (list: BlacklistDefinition): string | null =>
  list.object === undefined ? `blacklists/${list.name}.txt` : list.object

export interface PolicyProblem {
  readonly field: string
  readonly message: string
}

/**
 * What the schema cannot say: unique ids, lists that exist, time zones that exist, windows that need seconds, and an
 * organisation's list used only by that organisation's rules (another tenant's list would leak its entries).
 */
export const checkPolicy = (document: PolicyDocument): ReadonlyArray<PolicyProblem> => {
  const problems: Array<PolicyProblem> = []
  const lists = new Map<string, BlacklistDefinition>()
  for (const [i, list] of (document.blacklists ?? []).entries()) {
    if (lists.has(list.name)) problems.push({ field: `blacklists[${i}].name`, message: `duplicate blacklist "${list.name}"` })
    lists.set(list.name, list)
  }
  const ids = new Set<string>()
  for (const [i, rule] of document.rules.entries()) {
    const at = `rules[${i}]`
    if (ids.has(rule.id)) problems.push({ field: `${at}.id`, message: `duplicate rule id "${rule.id}"` })
    ids.add(rule.id)
    switch (rule.type) {
      case "frequency_cap":
        if (rule.window === "rolling" && rule.windowSeconds === undefined) {
          problems.push({ field: `${at}.windowSeconds`, message: "required when window is rolling" })
        }
        if (rule.window !== "rolling" && rule.windowSeconds !== undefined) {
          problems.push({ field: `${at}.windowSeconds`, message: "only for a rolling window" })
        }
        break
      case "blacklist":
        for (const [j, name] of rule.lists.entries()) {
          const list = lists.get(name)
          if (list === undefined) {
            problems.push({ field: `${at}.lists[${j}]`, message: `no blacklist "${name}"` })
          } else if (list.org !== undefined) {
            const scope = rule.scope ?? "global"
            if (scope === "global" || ("org" in scope && scope.org !== list.org)) {
              problems.push({ field: `${at}.lists[${j}]`, message: `blacklist "${name}" belongs to organisation ${list.org}: only its own rules may use it` })
            }
          }
        }
        break
      case "quiet_hours":
        if (rule.from === rule.to) problems.push({ field: `${at}.to`, message: "must differ from from" })
        for (const [country, zone] of Object.entries(rule.countries)) {
          if (!isTimeZone(zone)) problems.push({ field: `${at}.countries.${country}`, message: `unknown time zone "${zone}"` })
        }
        break
      case "dedup":
        break
    }
  }
  return problems
}
