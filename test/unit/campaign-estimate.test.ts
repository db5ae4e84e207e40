/** The arithmetic of preview and dry run: parts by encoding, the pace under every limit, send windows, local start times. */
import { describe, expect, it } from "vitest"
import { instantOf, pace, partsCounter, windowOpening } from "../../src/pipeline/CampaignEstimate.ts"

const at = (iso: string) => Date.parse(iso)

describe("partsCounter", () => {
  it("tallies messages and parts per encoding and in total", () => {
    const counter = partsCounter()
    counter.add("gsm7", 1)
    counter.add("gsm7", 3)
    counter.add("ucs2", 2)
    expect(counter.summary()).toEqual({
      messages: 3,
      segments: 6,
      gsm7: { messages: 2, segments: 4 },
      ucs2: { messages: 1, segments: 2 }
    })
  })
})

describe("pace", () => {
  const base = { throttle: 10, app: {}, organisation: {}, routes: [] }

  it("is the slowest limit: throttle, quotas beyond their first allowance, or a route's parts", () => {
    expect(pace({ ...base, messages: 1_000 })).toMatchObject({ seconds: 100, bottleneck: "campaign throttle" })
    // The app's 5 a second is slower than the campaign's 10.
    expect(pace({ ...base, messages: 1_000, app: { perSecond: 5 } })).toMatchObject({ seconds: 200, bottleneck: "app per second" })
    // 600 a minute: the first 600 go at once (the bucket starts full), the other 3,000 at 600 a minute: 300 s.
    expect(pace({ ...base, throttle: 1_000, messages: 3_600, organisation: { perMinute: 600 } }))
      .toMatchObject({ seconds: 300, bottleneck: "organisation per minute" })
    // 10,000 a day: the 5,000 beyond the first day's quota wait 12 hours.
    expect(pace({ ...base, throttle: 1_000, messages: 15_000, app: { perDay: 10_000 } }))
      .toMatchObject({ seconds: 43_200, bottleneck: "app per day" })
    // Parts count against the link: 1,000 messages of 3 parts on a 50 parts/s link take 60 s.
    expect(pace({ ...base, throttle: 100, messages: 1_000, routes: [{ target: "eu", segments: 3_000, capacityTps: 50 }] }))
      .toMatchObject({ seconds: 60, bottleneck: "eu" })
  })

  it("lists every limit with what it alone would take", () => {
    const result = pace({ ...base, messages: 100, app: { perSecond: 20 }, routes: [{ target: "pool:eu", segments: 150, capacityTps: 300 }] })
    expect(result.limits).toEqual([
      { name: "campaign throttle", detail: "10 messages/s", seconds: 10 },
      { name: "app per second", detail: "20 messages/s", seconds: 5 },
      { name: "pool:eu", detail: "300 parts/s", seconds: 0.5 }
    ])
  })
})

describe("windowOpening", () => {
  it("is the instant itself inside the window, else the next opening in the zone's local time", () => {
    const window = { from: "09:00", to: "20:00" }
    expect(windowOpening(window, "Europe/Berlin", at("2026-12-23T10:00:00Z"))).toBe(at("2026-12-23T10:00:00Z"))
    // 21:00 in Berlin: tomorrow 09:00 CET.
    expect(windowOpening(window, "Europe/Berlin", at("2026-12-23T20:00:00Z"))).toBe(at("2026-12-24T08:00:00Z"))
    // 06:30 in New York: 09:00 EST the same day.
    expect(windowOpening(window, "America/New_York", at("2026-12-23T11:30:00Z"))).toBe(at("2026-12-23T14:00:00Z"))
  })

  it("crosses midnight when from is after to, and is always open when they are equal", () => {
    const night = { from: "22:00", to: "02:00" }
    expect(windowOpening(night, "UTC", at("2026-12-23T23:30:00Z"))).toBe(at("2026-12-23T23:30:00Z"))
    expect(windowOpening(night, "UTC", at("2026-12-24T01:59:00Z"))).toBe(at("2026-12-24T01:59:00Z"))
    expect(windowOpening(night, "UTC", at("2026-12-24T02:00:00Z"))).toBe(at("2026-12-24T22:00:00Z"))
    expect(windowOpening({ from: "08:00", to: "08:00" }, "UTC", at("2026-12-24T03:00:00Z"))).toBe(at("2026-12-24T03:00:00Z"))
  })

  it("opens at local 09:00 across a daylight-saving change", () => {
    // Berlin moves to summer time on 2026-03-29 at 01:00 UTC: 09:00 that day is 07:00 UTC, the day before 08:00 UTC.
    expect(windowOpening({ from: "09:00", to: "17:00" }, "Europe/Berlin", at("2026-03-28T18:00:00Z"))).toBe(at("2026-03-29T07:00:00Z"))
  })
})

describe("instantOf", () => {
  it("reads a local date-time in its zone, summer and winter", () => {
    expect(instantOf("2026-12-24T09:00", "Europe/Berlin")).toBe(at("2026-12-24T08:00:00Z"))
    expect(instantOf("2026-07-01T09:00", "Europe/Berlin")).toBe(at("2026-07-01T07:00:00Z"))
    expect(instantOf("2026-07-01T09:00:30", "America/New_York")).toBe(at("2026-07-01T13:00:30Z"))
    expect(instantOf("2026-07-01T09:00", "UTC")).toBe(at("2026-07-01T09:00:00Z"))
  })
})
