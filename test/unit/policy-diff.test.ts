/** The Message Center's diff between two policy versions (web/src/screens/policy/model.ts): what an operator reads. */
import { describe, expect, it } from "vitest"
import { diffPolicies } from "../../web/src/screens/policy/model.ts"
import type { PolicyDocument } from "../../web/src/screens/policy/model.ts"

const before: PolicyDocument = {
  blacklists: [{ name: "dnd" }, { name: "old", object: null }],
  rules: [
    { id: "dnd", type: "blacklist", lists: ["dnd"] },
    { id: "cap", type: "frequency_cap", max: 3, window: "day" },
    { id: "otp", type: "dedup", windowSeconds: 60, mode: "reject" },
    { id: "gone", type: "quiet_hours", from: "21:00", to: "08:00", countries: { DE: "Europe/Berlin" } }
  ]
}

describe("policy diff", () => {
  it("matches rules and lists by id: added, removed, changed field by field, moved", () => {
    const after: PolicyDocument = {
      blacklists: [{ name: "dnd", object: "lists/dnd-2026.txt" }, { name: "new", org: "org_a", object: null }],
      rules: [
        { id: "otp", type: "dedup", windowSeconds: 60, mode: "return_first" },
        { id: "dnd", type: "blacklist", lists: ["dnd"] },
        { id: "cap", type: "frequency_cap", max: 2, window: "day", classes: ["promotional"] },
        { id: "night", type: "quiet_hours", from: "22:00", to: "07:00", countries: { FR: "Europe/Paris" } }
      ]
    }
    expect(diffPolicies(before, after)).toEqual([
      { kind: "removed", what: "rule", id: "gone", text: "No promotions 21:00–08:00 in DE" },
      { kind: "changed", what: "rule", id: "otp", fields: [{ field: "mode", before: "reject", after: "return_first" }] },
      {
        kind: "changed",
        what: "rule",
        id: "cap",
        fields: [{ field: "classes", before: "(not set)", after: "[\"promotional\"]" }, { field: "max", before: "3", after: "2" }]
      },
      { kind: "added", what: "rule", id: "night", text: "No promotions 22:00–07:00 in FR" },
      { kind: "moved", what: "rule", id: "otp", from: 3, to: 1 },
      { kind: "moved", what: "rule", id: "dnd", from: 1, to: 2 },
      { kind: "moved", what: "rule", id: "cap", from: 2, to: 3 },
      { kind: "removed", what: "blacklist", id: "old", text: "entries through the API only" },
      { kind: "changed", what: "blacklist", id: "dnd", fields: [{ field: "object", before: "(not set)", after: "lists/dnd-2026.txt" }] },
      { kind: "added", what: "blacklist", id: "new", text: "organisation org_a, entries through the API only" }
    ])
    expect(diffPolicies(before, before)).toEqual([])
  })
})
