import { Effect, Result, Schema } from "effect"
import { describe, expect, it } from "vitest"
import type { RouteRule } from "../../src/routing/Rules.ts"
import { compileRules, countryOf, decodeRouteRules, resolveRoute, RouteRule as RouteRuleSchema } from "../../src/routing/Rules.ts"
import { explainRoute } from "../../src/routing/RouteExplain.ts"

const rule = (id: string, match: RouteRule["match"], target: RouteRule["target"] = { pool: id }): RouteRule =>
  ({ id, match, target })

const routeOf = (rules: ReadonlyArray<RouteRule>, request: Parameters<typeof resolveRoute>[1]) =>
  resolveRoute(compileRules(rules), request)?.ruleId

const errorsOf = (raw: unknown) => Effect.runSync(decodeRouteRules(raw).pipe(Effect.flip))

describe("routing rules", () => {
  it("first match wins by order, not by the longest prefix", () => {
    const rules = [rule("de", { prefixes: ["49"] }), rule("de-mobile", { prefixes: ["4915"] })]
    expect(routeOf(rules, { msisdn: "4915112345678" })).toBe("de")
    expect(routeOf([...rules].reverse(), { msisdn: "4915112345678" })).toBe("de-mobile")
    expect(routeOf([...rules].reverse(), { msisdn: "4930123456" })).toBe("de")
  })

  it("a rule with several prefixes matches any of them; a leading + is tolerated", () => {
    const rules = [rule("dach", { prefixes: ["49", "43", "41"] }), rule("uk", { prefixes: ["44"] })]
    expect(routeOf(rules, { msisdn: "4915112345678" })).toBe("dach")
    expect(routeOf(rules, { msisdn: "436641234567" })).toBe("dach")
    expect(routeOf(rules, { msisdn: "+41791234567" })).toBe("dach")
    expect(routeOf(rules, { msisdn: "447400123456" })).toBe("uk")
    expect(routeOf(rules, { msisdn: "33612345678" })).toBeUndefined()
    // A prefix longer than the number does not match it.
    expect(routeOf([rule("long", { prefixes: ["4915112345678"] })], { msisdn: "49151" })).toBeUndefined()
  })

  it("countries come from libphonenumber-js: +44… is GB, +49… is DE, shared calling codes are told apart", () => {
    const rules = [
      rule("uk", { countries: ["GB"] }),
      rule("de", { countries: ["DE", "AT"] }),
      rule("ca", { countries: ["CA"] }),
      rule("us", { countries: ["US"] })
    ]
    expect(routeOf(rules, { msisdn: "447400123456" })).toBe("uk")
    expect(routeOf(rules, { msisdn: "4915112345678" })).toBe("de")
    expect(routeOf(rules, { msisdn: "436641234567" })).toBe("de")
    expect(routeOf(rules, { msisdn: "14165550123" })).toBe("ca")
    expect(routeOf(rules, { msisdn: "12025550123" })).toBe("us")
    expect(routeOf(rules, { msisdn: "33612345678" })).toBeUndefined()
    // A non-geographic number has no country and matches no country rule.
    expect(routeOf(rules, { msisdn: "80012345678" })).toBeUndefined()
  })

  it("countryOf answers the same when cached and for single- and multi-region calling codes", () => {
    for (let round = 0; round < 2; round++) {
      expect(countryOf("447400123456")).toBe("GB")
      expect(countryOf("441534123456")).toBe("JE")
      expect(countryOf("4915112345678")).toBe("DE")
      expect(countryOf("79161234567")).toBe("RU")
      expect(countryOf("77012345678")).toBe("KZ")
      expect(countryOf("80012345678")).toBeUndefined()
    }
  })

  it("app, organisation, sender (any case) and message class filter; all given criteria must match", () => {
    const rules = [
      rule("vip-app", { appIds: ["app-1", "app-2"], prefixes: ["49"] }),
      rule("org", { orgIds: ["org-9"] }),
      rule("bank", { senders: ["MyBank"] }),
      rule("promo", { messageClasses: ["promotional"] })
    ]
    expect(routeOf(rules, { msisdn: "4915112345678", appId: "app-2" })).toBe("vip-app")
    // Right app, wrong prefix: the next rules are tried.
    expect(routeOf(rules, { msisdn: "447400123456", appId: "app-2" })).toBeUndefined()
    expect(routeOf(rules, { msisdn: "447400123456", appId: "app-2", orgId: "org-9" })).toBe("org")
    expect(routeOf(rules, { msisdn: "447400123456", sender: "MYBANK" })).toBe("bank")
    expect(routeOf(rules, { msisdn: "447400123456", sender: "mybank2" })).toBeUndefined()
    expect(routeOf(rules, { msisdn: "447400123456", messageClass: "promotional" })).toBe("promo")
    expect(routeOf(rules, { msisdn: "447400123456", messageClass: "transactional" })).toBeUndefined()
    // A rule asking for a criterion the request lacks does not match.
    expect(routeOf(rules, { msisdn: "4915112345678", appId: null, orgId: null, sender: null, messageClass: null }))
      .toBeUndefined()
  })

  it("an empty match is the default route; no match at all is undefined", () => {
    const rules = [
      rule("uk", { prefixes: ["44"] }, { link: "uk-direct" }),
      rule("default", {}, { pool: "global" })
    ]
    const compiled = compileRules(rules)
    expect(resolveRoute(compiled, { msisdn: "447400123456" })).toEqual({ ruleId: "uk", target: { link: "uk-direct" } })
    expect(resolveRoute(compiled, { msisdn: "4915112345678" })).toEqual({ ruleId: "default", target: { pool: "global" } })
    expect(resolveRoute(compileRules(rules.slice(0, 1)), { msisdn: "4915112345678" })).toBeUndefined()
    expect(resolveRoute(compileRules([]), { msisdn: "4915112345678" })).toBeUndefined()
    // The same decision object each time: nothing is allocated per message.
    expect(resolveRoute(compiled, { msisdn: "4930123456" })).toBe(resolveRoute(compiled, { msisdn: "4915112345678" }))
  })

  it("many lookups on one compiled set stay correct (prefix stamps are per lookup)", () => {
    const rules = Array.from({ length: 50 }, (_, i) => rule(`r${i}`, { prefixes: [String(100 + i)] }))
    const compiled = compileRules([...rules, rule("default", {})])
    for (let n = 0; n < 5000; n++) {
      const i = n % 60
      const expected = i < 50 ? `r${i}` : "default"
      expect(resolveRoute(compiled, { msisdn: `${100 + i}5550123` })?.ruleId).toBe(expected)
    }
  })

  it("decodes a valid rule list from config data", () => {
    const raw = [
      { id: "uk", match: { prefixes: ["44"], countries: ["GB"], messageClasses: ["transactional"] }, target: { link: "l1" } },
      { id: "default", match: {}, target: { pool: "global" } }
    ]
    const rules = Effect.runSync(decodeRouteRules(raw))
    expect(rules).toEqual(raw)
    expect(resolveRoute(compileRules(rules), { msisdn: "447400123456", messageClass: "transactional" })?.ruleId).toBe("uk")
  })

  it("decode errors name every bad key", () => {
    const error = errorsOf([
      { id: "a", match: { prefixes: ["+49"], countries: ["de"], messageClasses: ["bulk"] }, target: { pool: "p" } },
      { id: "b", match: { prefix: ["49"], appIds: [] }, target: { pool: "p", link: "l" } },
      { id: "a", match: {}, target: {} }
    ])
    const paths = error.issues.map((i) => i.path)
    expect(paths).toContain("[0].match.prefixes[0]")
    expect(paths).toContain("[0].match.countries[0]")
    expect(paths).toContain("[0].match.messageClasses[0]")
    expect(paths).toContain("[1].match.prefix")
    expect(paths).toContain("[1].match.appIds")
    expect(paths.some((p) => p.startsWith("[1].target"))).toBe(true)
    expect(paths.some((p) => p.startsWith("[2].target"))).toBe(true)
    expect(error.message).toContain("[0].match.countries[0]: Expected an ISO 3166 alpha-2 country code")
    expect(error.message).toContain("[0].match.messageClasses[0]: Expected \"transactional\" | \"promotional\"")
  })

  it("rule ids are unique", () => {
    const error = errorsOf([
      { id: "a", match: {}, target: { pool: "p" } },
      { id: "a", match: {}, target: { pool: "q" } }
    ])
    expect(error.message).toBe("[1].id: duplicate rule id \"a\"")
  })

  it("the RouteRule schema alone decodes one rule, as an admin API would", () => {
    const decode = Schema.decodeUnknownResult(RouteRuleSchema)
    expect(Result.isSuccess(decode({ id: "x", match: { orgIds: ["o"] }, target: { link: "l" } }))).toBe(true)
    expect(Result.isFailure(decode({ id: "x", match: {}, target: { pool: "a", link: "b" } }))).toBe(true)
    expect(Result.isFailure(decode({ id: "", match: {}, target: { pool: "a" } }))).toBe(true)
  })
})

describe("explainRoute", () => {
  it("says which rule takes the message, why each before it did not, and agrees with the compiled lookup", () => {
    const rules: ReadonlyArray<RouteRule> = [
      { id: "otp", match: { appIds: ["app_otp"], messageClasses: ["transactional"] }, target: { link: "uk-1" } },
      { id: "brand", match: { senders: ["ACME"] }, target: { link: "de-b" } },
      { id: "uk", match: { countries: ["GB"] }, target: { link: "uk-1" } },
      { id: "de", match: { prefixes: ["4915", "4916"] }, target: { pool: "germany" } },
      { id: "default", match: {}, target: { pool: "germany" } }
    ]
    const input = { msisdn: "4915112345678", appId: "app_x", orgId: "org_a", sender: "Shop", messageClass: "promotional" as const }
    expect(explainRoute(rules, input)).toEqual([
      { ruleId: "otp", outcome: "no_match", detail: "message class promotional is not transactional" },
      { ruleId: "brand", outcome: "no_match", detail: "sender Shop is not ACME" },
      { ruleId: "uk", outcome: "no_match", detail: "country DE is not GB" },
      { ruleId: "de", outcome: "matched" },
      { ruleId: "default", outcome: "not_reached" }
    ])
    const compiled = compileRules(rules)
    for (const msisdn of ["4915112345678", "447911123456", "33612345678"]) {
      for (const sender of ["acme", "Shop"]) {
        const request = { ...input, msisdn, sender }
        const matched = explainRoute(rules, request).find((r) => r.outcome === "matched")?.ruleId
        expect(matched).toBe(resolveRoute(compiled, request)?.ruleId)
      }
    }
    expect(explainRoute(rules, { ...input, msisdn: "33612345678" })[3]).toEqual({
      ruleId: "de",
      outcome: "no_match",
      detail: "+33612345678 starts with none of 4915, 4916"
    })
  })
})
