import { describe, expect, it } from "vitest"
import { contentFlags, isAllCaps, linksIn } from "../../src/domain/ContentCheck.ts"
import { zonedToEpoch } from "../../src/domain/ZonedTime.ts"
import { needsApproval } from "../../src/pipeline/Campaigns.ts"

const none = { keywords: [], urls: [] }

describe("content check", () => {
  it("a plain text from a used sender raises nothing", () => {
    expect(contentFlags({ template: "Hi {{name|there}}, your order ships today.", sender: "ACME", senderUsed: true }, none)).toEqual([])
  })

  it("organisation keywords match whole words, case-insensitively, and placeholders are not text", () => {
    const flags = contentFlags(
      { template: "Get it FREE today, no carefree promises {{casino}}", sender: "ACME", senderUsed: true },
      { keywords: ["free", "casino", " win big "], urls: [] }
    )
    expect(flags).toEqual(["keyword: \"free\""])
    expect(contentFlags({ template: "You can win  big? No: WIN BIG!", sender: "A", senderUsed: true }, { keywords: ["win big"], urls: [] }))
      .toEqual(["keyword: \"win big\""])
  })

  it("links are flagged with and without a scheme; listed domains match their subdomains, not look-alikes", () => {
    expect(linksIn("see https://acme.example/s?x=1. or www.acme.example, or bit.ly/abc!")).toEqual([
      "https://acme.example/s?x=1",
      "www.acme.example",
      "bit.ly/abc"
    ])
    const flags = contentFlags(
      { template: "Offer: https://go.bit.ly/x and notbit.ly/y", sender: "ACME", senderUsed: true },
      { keywords: [], urls: ["bit.ly", "https://evil.example/path"] }
    )
    expect(flags).toEqual(["listed link: https://go.bit.ly/x (bit.ly)", "link in text: https://go.bit.ly/x, notbit.ly/y"])
    expect(contentFlags({ template: "x https://evil.example/path/deeper", sender: "A", senderUsed: true }, { keywords: [], urls: ["https://evil.example/path"] })[0])
      .toBe("listed link: https://evil.example/path/deeper (https://evil.example/path)")
    expect(contentFlags({ template: "x https://evil.example/other", sender: "A", senderUsed: true }, { keywords: [], urls: ["https://evil.example/path"] }))
      .toEqual(["link in text: https://evil.example/other"])
  })

  it("all capitals is shouting only with enough letters", () => {
    expect(isAllCaps("LAST CHANCE: 50% OFF EVERYTHING")).toBe(true)
    expect(isAllCaps("Reply STOP to opt out")).toBe(false)
    expect(isAllCaps("OK 123")).toBe(false)
    expect(isAllCaps("ÜBERRASCHUNG FÜR SIE")).toBe(true)
    expect(contentFlags({ template: "HELLO {{name}} BIG SALE NOW", sender: "ACME", senderUsed: true }, none)).toEqual(["all capitals"])
  })

  it("a sender the organisation never used is flagged, last", () => {
    expect(contentFlags({ template: "BIG SALE TODAY ONLY", sender: "NEWBRAND", senderUsed: false }, { keywords: ["sale"], urls: [] })).toEqual([
      "keyword: \"sale\"",
      "all capitals",
      "new sender: NEWBRAND has not been used by the organisation"
    ])
  })
})

describe("start times in a time zone", () => {
  it("a local time reads with the zone's offset, summer time included", () => {
    expect(zonedToEpoch("2026-12-24T09:00", "Europe/Berlin")).toBe(Date.UTC(2026, 11, 24, 8, 0))
    expect(zonedToEpoch("2026-07-01T09:00:30", "Europe/Berlin")).toBe(Date.UTC(2026, 6, 1, 7, 0, 30))
    expect(zonedToEpoch("2026-07-01T09:00", "America/New_York")).toBe(Date.UTC(2026, 6, 1, 13, 0))
    expect(zonedToEpoch("2026-07-01T09:00", "UTC")).toBe(Date.UTC(2026, 6, 1, 9, 0))
  })

  it("a skipped hour moves forward, a repeated one is its first occurrence; unknown zones and dates are undefined", () => {
    expect(zonedToEpoch("2026-03-29T02:30", "Europe/Berlin")).toBe(Date.UTC(2026, 2, 29, 1, 30))
    expect(zonedToEpoch("2026-10-25T02:30", "Europe/Berlin")).toBe(Date.UTC(2026, 9, 25, 0, 30))
    expect(zonedToEpoch("2026-07-01T09:00", "Mars/Olympus")).toBeUndefined()
    expect(zonedToEpoch("2026-02-30T09:00", "UTC")).toBeUndefined()
  })
})

describe("which submitted campaigns wait for a moderator", () => {
  const promo = { messageClass: "promotional" as const }
  const transactional = { messageClass: "transactional" as const }
  it("members (the default): a member's campaign waits, a moderator's or admin's does not, a departed creator's does", () => {
    expect(needsApproval("members", promo, { creator: "member", submitter: "member" })).toBe(true)
    expect(needsApproval("members", promo, { creator: "member", submitter: "admin" })).toBe(true)
    expect(needsApproval("members", promo, { creator: "moderator", submitter: "moderator" })).toBe(false)
    expect(needsApproval("members", transactional, { creator: "owner", submitter: "admin" })).toBe(false)
    expect(needsApproval("members", promo, { creator: undefined, submitter: "admin" })).toBe(true)
  })
  it("all, promotional, none", () => {
    expect(needsApproval("all", transactional, { creator: "owner", submitter: "owner" })).toBe(true)
    expect(needsApproval("promotional", promo, { creator: "owner", submitter: "owner" })).toBe(true)
    expect(needsApproval("promotional", transactional, { creator: "member", submitter: "member" })).toBe(false)
    expect(needsApproval("none", promo, { creator: "member", submitter: "member" })).toBe(false)
  })
})
