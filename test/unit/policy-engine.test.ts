import { describe, expect, it } from "vitest"
import type { Msisdn } from "../../src/domain/Msisdn.ts"
import { checkPolicy } from "../../src/domain/Policy.ts"
import type { PolicyDocument } from "../../src/domain/Policy.ts"
import { bucketOf, compilePolicy, contentKey, evaluationOrder, localMinutes, notApplicable } from "../../src/policy/PolicyEngine.ts"
import type { PolicySubject } from "../../src/policy/PolicyEngine.ts"

const de = "4915112345678" as Msisdn
const uk = "447911123456" as Msisdn

const subject = (over: Partial<PolicySubject> = {}): PolicySubject => ({
  orgId: "org_a",
  appId: "app_a",
  messageClass: "promotional",
  to: de,
  country: "DE",
  from: "Shop",
  text: "Sale!",
  ...over
})

const noLists = () => false

describe("policy engine", () => {
  it("applies a rule only to its scope and message classes", () => {
    const doc: PolicyDocument = {
      rules: [
        { id: "app-cap", scope: { app: "app_a" }, type: "frequency_cap", max: 2, window: "hour" },
        { id: "org-cap", scope: { org: "org_b" }, type: "frequency_cap", max: 5, window: "day" },
        { id: "promo-cap", classes: ["promotional"], type: "frequency_cap", max: 3, window: "day" },
        { id: "off", enabled: false, type: "frequency_cap", max: 1, window: "minute" }
      ]
    }
    const policy = compilePolicy(1, doc, noLists)
    const ids = (s: PolicySubject) => {
      const screen = policy.screen(s, 0)
      return screen._tag === "Checks" ? screen.checks.map((c) => c.ruleId) : [screen._tag]
    }
    expect(ids(subject())).toEqual(["app-cap", "promo-cap"])
    expect(ids(subject({ appId: "app_x", orgId: "org_b" }))).toEqual(["org-cap", "promo-cap"])
    expect(ids(subject({ messageClass: "transactional" }))).toEqual(["app-cap"])
    expect(policy.stateful).toBe(true)
  })

  it("turns caps and dedup into bucket checks: dedup first, windows in ms, counters apart per organisation or app", () => {
    const doc: PolicyDocument = {
      rules: [
        { id: "all", type: "frequency_cap", max: 3, window: "day" },
        { id: "per-org", type: "frequency_cap", max: 2, window: "rolling", windowSeconds: 90, per: "organisation" },
        { id: "per-app", type: "frequency_cap", max: 1, window: "minute", per: "app" },
        { id: "otp", type: "dedup", windowSeconds: 60, mode: "return_first" }
      ]
    }
    const screen = compilePolicy(1, doc, noLists).screen(subject(), 0)
    expect(screen).toEqual({
      _tag: "Checks",
      checks: [
        { kind: "dedup", ruleId: "otp", key: `otp|org_a|${contentKey("org_a", "Shop", "Sale!")}`, windowMs: 60_000, mode: "return_first" },
        { kind: "cap", ruleId: "all", key: "all", max: 3, window: { type: "fixed", ms: 86_400_000 } },
        { kind: "cap", ruleId: "per-org", key: "per-org|o:org_a", max: 2, window: { type: "rolling", ms: 90_000 } },
        { kind: "cap", ruleId: "per-app", key: "per-app|a:app_a", max: 1, window: { type: "fixed", ms: 60_000 } }
      ],
      applied: ["otp", "all", "per-org", "per-app"]
    })
  })

  it("dedup keys tell organisations, senders and texts apart", () => {
    const key = contentKey("org_a", "Shop", "Your code is 1234")
    expect(contentKey("org_a", "Shop", "Your code is 1234")).toBe(key)
    expect(contentKey("org_b", "Shop", "Your code is 1234")).not.toBe(key)
    expect(contentKey("org_a", "Shop2", "Your code is 1234")).not.toBe(key)
    expect(contentKey("org_a", "Shop", "Your code is 1235")).not.toBe(key)
  })

  it("rejects a blacklisted recipient, and never applies one organisation's list to another's messages", () => {
    const doc: PolicyDocument = {
      blacklists: [{ name: "dnd" }, { name: "a-optout", org: "org_a" }],
      rules: [
        { id: "global-dnd", type: "blacklist", lists: ["dnd"] },
        // Scoped to an app (its organisation is not known to the document): the list's owner still decides.
        { id: "a-optout", scope: { app: "app_a" }, type: "blacklist", lists: ["a-optout"] }
      ]
    }
    const listed = new Set(["dnd:447911123456", "a-optout:4915112345678"])
    const policy = compilePolicy(1, doc, (list, msisdn) => listed.has(`${list}:${msisdn}`))
    expect(policy.screen(subject({ to: uk, country: "GB" }), 0)).toEqual({ _tag: "Reject", ruleId: "global-dnd", reason: "blacklisted" })
    expect(policy.screen(subject(), 0)).toEqual({ _tag: "Reject", ruleId: "a-optout", reason: "blacklisted" })
    expect(policy.screen(subject({ orgId: "org_other" }), 0)).toEqual({ _tag: "Checks", checks: [], applied: ["global-dnd", "a-optout"] })
    expect(policy.stateful).toBe(false)
  })

  it("keeps promotions out of the recipient country's quiet hours, across midnight and daylight saving", () => {
    const doc: PolicyDocument = {
      rules: [{ id: "night", type: "quiet_hours", from: "21:00", to: "08:00", countries: { DE: "Europe/Berlin" } }]
    }
    const policy = compilePolicy(1, doc, noLists)
    // 21:30 UTC in January is 22:30 in Berlin (UTC+1): quiet until 08:00 local = 07:00 UTC next day.
    const winterNight = Date.UTC(2026, 0, 15, 21, 30)
    expect(policy.screen(subject(), winterNight)).toEqual({
      _tag: "Reject", ruleId: "night", reason: "quiet_hours", retryAt: Date.UTC(2026, 0, 16, 7, 0)
    })
    // 06:59 UTC in January = 07:59 local: still quiet; 07:00 UTC = 08:00 local: open.
    expect(policy.screen(subject(), Date.UTC(2026, 0, 16, 6, 59))._tag).toBe("Reject")
    expect(policy.screen(subject(), Date.UTC(2026, 0, 16, 7, 0))._tag).toBe("Checks")
    // 19:30 UTC in July is 21:30 in Berlin (UTC+2): quiet; the same time in January (20:30 local) is not.
    expect(policy.screen(subject(), Date.UTC(2026, 6, 15, 19, 30))._tag).toBe("Reject")
    expect(policy.screen(subject(), Date.UTC(2026, 0, 15, 19, 30))._tag).toBe("Checks")
    // Transactional messages and countries without a rule pass.
    expect(policy.screen(subject({ messageClass: "transactional" }), winterNight)._tag).toBe("Checks")
    expect(policy.screen(subject({ to: uk, country: "GB" }), winterNight)._tag).toBe("Checks")
    expect(policy.screen(subject({ country: undefined }), winterNight)._tag).toBe("Checks")
  })

  it("reads local time in any zone, including half-hour offsets", () => {
    expect(localMinutes("Asia/Kolkata", Date.UTC(2026, 2, 1, 20, 0))).toBe(1 * 60 + 30)
    expect(localMinutes("America/New_York", Date.UTC(2026, 6, 1, 3, 15))).toBe(23 * 60 + 15)
    expect(localMinutes("UTC", Date.UTC(2026, 6, 1, 12, 5))).toBe(12 * 60 + 5)
  })

  it("spreads recipients over buckets deterministically", () => {
    const counts = new Array<number>(16).fill(0)
    for (let i = 0; i < 16_000; i++) {
      const b = bucketOf(`49151${String(1_000_000 + i)}`, 16)
      expect(b).toBe(bucketOf(`49151${String(1_000_000 + i)}`, 16))
      counts[b] = (counts[b] ?? 0) + 1
    }
    for (const c of counts) expect(c).toBeGreaterThan(700)
  })

  it("names every semantic problem of a document", () => {
    const problems = checkPolicy({
      blacklists: [{ name: "x" }, { name: "x" }, { name: "b-list", org: "org_b" }],
      rules: [
        { id: "r", type: "frequency_cap", max: 1, window: "rolling" },
        { id: "r", type: "frequency_cap", max: 1, window: "hour", windowSeconds: 60 },
        { id: "bl", type: "blacklist", lists: ["nope", "b-list"] },
        { id: "bl2", scope: { org: "org_a" }, type: "blacklist", lists: ["b-list"] },
        { id: "q", type: "quiet_hours", from: "22:00", to: "22:00", countries: { DE: "Mars/Olympus" } }
      ]
    })
    expect(problems.map((p) => p.field)).toEqual([
      "blacklists[1].name",
      "rules[0].windowSeconds",
      "rules[1].id",
      "rules[1].windowSeconds",
      "rules[2].lists[0]",
      "rules[2].lists[1]",
      "rules[3].lists[0]",
      "rules[4].to",
      "rules[4].countries.DE"
    ])
  })

  it("orders rules as messages meet them, and says why a rule does not look at a message", () => {
    const doc: PolicyDocument = {
      blacklists: [{ name: "dnd" }],
      rules: [
        { id: "cap", type: "frequency_cap", max: 3, window: "day" },
        { id: "night", type: "quiet_hours", from: "21:00", to: "08:00", countries: { DE: "Europe/Berlin" } },
        { id: "otp", classes: ["transactional"], type: "dedup", windowSeconds: 60, mode: "reject" },
        { id: "dnd", type: "blacklist", lists: ["dnd"] },
        { id: "cap2", scope: { org: "org_b" }, type: "frequency_cap", max: 1, window: "hour" },
        { id: "off", enabled: false, scope: { app: "app_z" }, type: "frequency_cap", max: 1, window: "hour" }
      ]
    }
    expect(evaluationOrder(doc.rules).map((r) => r.id)).toEqual(["dnd", "night", "otp", "cap", "cap2", "off"])
    const why = (id: string, over: Partial<PolicySubject> = {}) =>
      notApplicable(doc.rules.find((r) => r.id === id)!, subject(over))
    expect(why("cap")).toBeUndefined()
    expect(why("otp")).toBe("not for promotional messages")
    expect(why("night", { messageClass: "transactional" })).toBe("quiet hours apply to promotional messages only")
    expect(why("cap2")).toBe("another organisation's rule")
    expect(why("off")).toBe("disabled")
    // The screen names the rules that looked at the message, in the same order.
    const screen = compilePolicy(1, doc, noLists).screen(subject({ country: "GB", to: uk }), 0)
    expect(screen._tag === "Checks" ? screen.applied : []).toEqual(["dnd", "night", "cap"])
  })
})
