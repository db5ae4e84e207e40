/** The arithmetic of preview and dry run: parts by encoding, the pace under every limit, the dry run's tally. */
import { describe, expect, it } from "vitest"
import { dryRunTally, pace, partsCounter } from "../../src/pipeline/CampaignEstimate.ts"

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

describe("a route with no capacity (a pool whose links are all disabled)", () => {
  const start = at("2026-12-23T12:00:00Z")
  const context = { campaignId: "cmp_1", policyVersion: 3, missingLists: [], throttle: 2, app: {}, organisation: {} }

  it("is the bottleneck with no time and no finish, not an infinite number of seconds (which no JSON or date carries)", () => {
    const result = pace({ throttle: 10, app: {}, organisation: {}, messages: 10, routes: [{ target: "pool:eu", segments: 10, capacityTps: 0 }] })
    expect(result.seconds).toBeUndefined()
    expect(result.bottleneck).toBe("pool:eu")
    expect(result.limits).toContainEqual({ name: "pool:eu", detail: "no enabled link: nothing is sent through it" })
    const tally = dryRunTally(start)
    tally.send({ encoding: "gsm7", segments: 1, target: "pool:eu", capacityTps: 0, checks: [], at: start, deferral: undefined })
    const estimate = tally.result(context).estimate
    expect(estimate.finishAt).toBeUndefined()
    expect(estimate.durationSeconds).toBeUndefined()
    expect(estimate.bottleneck).toBe("pool:eu: no enabled link, nothing is sent through it")
    expect(JSON.parse(JSON.stringify(estimate)).startAt).toBe("2026-12-23T12:00:00.000Z")
  })
})
