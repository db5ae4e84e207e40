/**
 * The contact policy as the screens read it: its types (from the generated API types), a rule in one line, and the
 * diff between two versions' documents, computed here from the two documents the API answers (small: a few KB).
 */
import type { Ok } from "../../api/types.ts"

export type PolicyView = Ok<"/v1/policies", "get">
export type Rule = PolicyView["rules"][number]
export type RuleType = Rule["type"]
export type BlacklistDefinition = NonNullable<PolicyView["blacklists"]>[number]
export interface PolicyDocument {
  readonly rules: ReadonlyArray<Rule>
  readonly blacklists?: ReadonlyArray<BlacklistDefinition>
}

export const typeLabel: Record<RuleType, string> = {
  blacklist: "Blacklist",
  quiet_hours: "Quiet hours",
  dedup: "Dedup",
  frequency_cap: "Frequency cap"
}

export const typeColor: Record<RuleType, string> = {
  blacklist: "dark",
  quiet_hours: "indigo",
  dedup: "grape",
  frequency_cap: "teal"
}

const windowText = (rule: Extract<Rule, { type: "frequency_cap" }>) =>
  rule.window === "rolling" ? `${rule.windowSeconds ?? "?"} s (rolling)` : `per ${rule.window}`

/** What a rule does, in one line. */
export const summary = (rule: Rule): string => {
  switch (rule.type) {
    case "frequency_cap":
      return `At most ${rule.max} ${windowText(rule)} to one recipient${rule.per !== undefined && rule.per !== "all" ? `, per ${rule.per}` : ""}`
    case "dedup":
      return `The same text within ${rule.windowSeconds} s: ${rule.mode === "reject" ? "refused" : "answered with the first message"}`
    case "blacklist":
      return `Not to numbers on ${rule.lists.join(", ")}`
    case "quiet_hours":
      return `No promotions ${rule.from}–${rule.to} in ${Object.keys(rule.countries).join(", ") || "no country"}`
  }
}

/** Whose messages a rule looks at. */
export const scopeText = (rule: Rule): string => {
  const scope = rule.scope === undefined || rule.scope === "global"
    ? "Everyone"
    : "org" in rule.scope ? `Organisation ${rule.scope.org}` : `App ${rule.scope.app}`
  const classes = rule.classes === undefined ? "" : ` · ${rule.classes.join(", ")} only`
  return `${scope}${classes}`
}

export interface FieldChange {
  readonly field: string
  readonly before: string
  readonly after: string
}

export type Change =
  | { readonly kind: "added" | "removed"; readonly what: "rule" | "blacklist"; readonly id: string; readonly text: string }
  | { readonly kind: "changed"; readonly what: "rule" | "blacklist"; readonly id: string; readonly fields: ReadonlyArray<FieldChange> }
  | { readonly kind: "moved"; readonly what: "rule"; readonly id: string; readonly from: number; readonly to: number }

const show = (value: unknown): string =>
  value === undefined ? "(not set)" : typeof value === "string" ? value : JSON.stringify(value)

/** The top-level fields of two records that differ (nested values compared as JSON). */
const fieldChanges = (before: Record<string, unknown>, after: Record<string, unknown>): Array<FieldChange> => {
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort()
  return keys.flatMap((field) =>
    JSON.stringify(before[field]) === JSON.stringify(after[field])
      ? []
      : [{ field, before: show(before[field]), after: show(after[field]) }]
  )
}

/**
 * From `a` to `b`: rules and blacklists matched by id (name), each added, removed or changed field by field; a rule
 * kept whose place in the document changed (relative to the rules both versions have) is reported as moved.
 */
export const diffPolicies = (a: PolicyDocument, b: PolicyDocument): Array<Change> => {
  const changes: Array<Change> = []
  const before = new Map(a.rules.map((r) => [r.id, r]))
  const after = new Map(b.rules.map((r) => [r.id, r]))
  for (const rule of a.rules) {
    if (!after.has(rule.id)) changes.push({ kind: "removed", what: "rule", id: rule.id, text: summary(rule) })
  }
  for (const rule of b.rules) {
    const old = before.get(rule.id)
    if (old === undefined) {
      changes.push({ kind: "added", what: "rule", id: rule.id, text: summary(rule) })
      continue
    }
    const fields = fieldChanges(old as Record<string, unknown>, rule as Record<string, unknown>)
    if (fields.length > 0) changes.push({ kind: "changed", what: "rule", id: rule.id, fields })
  }
  const keptBefore = a.rules.filter((r) => after.has(r.id)).map((r) => r.id)
  const keptAfter = b.rules.filter((r) => before.has(r.id)).map((r) => r.id)
  keptAfter.forEach((id, i) => {
    const from = keptBefore.indexOf(id)
    if (from !== i) changes.push({ kind: "moved", what: "rule", id, from: from + 1, to: i + 1 })
  })
  const listsBefore = new Map((a.blacklists ?? []).map((l) => [l.name, l]))
  const listsAfter = new Map((b.blacklists ?? []).map((l) => [l.name, l]))
  for (const [name, list] of listsBefore) {
    if (!listsAfter.has(name)) changes.push({ kind: "removed", what: "blacklist", id: name, text: listText(list) })
  }
  for (const [name, list] of listsAfter) {
    const old = listsBefore.get(name)
    if (old === undefined) changes.push({ kind: "added", what: "blacklist", id: name, text: listText(list) })
    else {
      const fields = fieldChanges(old as Record<string, unknown>, list as Record<string, unknown>)
      if (fields.length > 0) changes.push({ kind: "changed", what: "blacklist", id: name, fields })
    }
  }
  return changes
}

export const listText = (list: BlacklistDefinition): string =>
  `${list.org !== undefined ? `organisation ${list.org}, ` : ""}${
    list.object === null ? "entries through the API only" : `file ${list.object ?? `blacklists/${list.name}.txt`}`
  }`
