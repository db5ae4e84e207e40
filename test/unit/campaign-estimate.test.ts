/** The arithmetic of preview and dry run: parts by encoding, the pace under every limit, send windows, local start times. */
import { describe, expect, it } from "vitest"
import { dryRunTally, instantOf, pace, partsCounter, windowOpening } from "../../src/pipeline/CampaignEstimate.ts"

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

describe("dryRunTally", () => {
  const start = at("2026-12-23T12:00:00Z")
  const context = { campaignId: "cmp_1", policyVersion: 3, missingLists: [], throttle: 2, app: {}, organisation: {} }
  const message = { encoding: "gsm7" as const, segments: 1, target: "eu", capacityTps: 100, checks: [] }

  it("counts every recipient once, under its outcome, and the rules and routes of those that go", () => {
    const tally = dryRunTally(start)
    tally.unsendable("missingVariable")
    tally.noRoute("no routing rule matches +1212")
    tally.excluded("optout", "blacklisted")
    tally.excluded("optout", "blacklisted")
    tally.excluded("dnd", "blacklisted")
    tally.send({ ...message, at: start, deferral: undefined, checks: [{ kind: "cap", ruleId: "once" }, { kind: "dedup", ruleId: "same" }] })
    tally.send({ ...message, at: start, deferral: undefined, encoding: "ucs2", segments: 3, target: "pool:x", checks: [{ kind: "cap", ruleId: "once" }] })
    const result = tally.result(context)
    expect(result).toMatchObject({
      recipients: 7,
      toSend: 2,
      excluded: {
        total: 3,
        byRule: [{ ruleId: "optout", reason: "blacklisted", recipients: 2 }, { ruleId: "dnd", reason: "blacklisted", recipients: 1 }]
      },
      noRoute: { total: 1, byReason: [{ reason: "no routing rule matches +1212", recipients: 1 }] },
      unsendable: { missingVariable: 1, notRepresentable: 0, tooLong: 0 },
      decidedAtSendTime: [
        { ruleId: "once", kind: "frequency_cap", recipients: 2 },
        { ruleId: "same", kind: "dedup", recipients: 1 }
      ],
      parts: { messages: 2, segments: 4, gsm7: { messages: 1, segments: 1 }, ucs2: { messages: 1, segments: 3 } },
      routes: [
        { target: "eu", messages: 1, segments: 1, capacityTps: 100 },
        { target: "pool:x", messages: 1, segments: 3, capacityTps: 100 }
      ]
    })
    // Two messages at 2 a second.
    expect(result.estimate).toMatchObject({ finishAt: "2026-12-23T12:00:01.000Z", durationSeconds: 1, bottleneck: "campaign throttle" })
  })

  it("finishes no earlier than the last deferred recipients can go after their opening", () => {
    const tally = dryRunTally(start)
    for (let i = 0; i < 10; i++) tally.send({ ...message, at: start, deferral: undefined })
    const window = { ruleId: "send_window", reason: "send_window" as const }
    tally.send({ ...message, at: at("2026-12-23T14:00:00Z"), deferral: window })
    for (let i = 0; i < 9; i++) tally.send({ ...message, at: at("2026-12-24T08:00:00Z"), deferral: window })
    const result = tally.result(context)
    expect(result.deferred).toEqual({
      total: 10,
      byRule: [{
        ruleId: "send_window",
        reason: "send_window",
        recipients: 10,
        firstUntil: "2026-12-23T14:00:00.000Z",
        lastUntil: "2026-12-24T08:00:00.000Z"
      }]
    })
    // The 10 deferred may all go at the last opening: 5 s at 2 a second.
    expect(result.estimate).toMatchObject({
      startAt: "2026-12-23T12:00:00.000Z",
      finishAt: "2026-12-24T08:00:05.000Z",
      bottleneck: "deferred until 2026-12-24T08:00:00.000Z (send_window)"
    })
    expect(result.estimate.limits[0]).toEqual({ name: "campaign throttle", detail: "2 messages/s", seconds: 10 })
  })
})
