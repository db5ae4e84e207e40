import { describe, expect, it } from "vitest"
import type { MessageView } from "../../src/domain/Message.ts"
import { unsentEvents } from "../../src/grpc/MessageService.ts"
import { SharedStatus } from "../../src/grpc/Health.ts"
import { HealthCheckResponse_ServingStatus as ServingStatus } from "../../src/grpc/gen/grpc/health/v1/health_pb.ts"

type Event = MessageView["events"][number]

const accepted: Event = { at: "2026-12-03T07:00:00.000Z", status: "accepted", kind: "accepted" }
const submitted: Event = { at: "2026-12-03T07:00:01.000Z", status: "submitted", kind: "submitted", part: 1, linkId: "a" }
const delivered: Event = { at: "2026-12-03T07:00:05.000Z", status: "delivered", kind: "receipt", part: 1, linkId: "a" }
// Written after `delivered` by a node whose clock is behind: ordered by time, it lands before it.
const late: Event = { at: "2026-12-03T07:00:03.000Z", status: "submitted", kind: "retry", part: 1, linkId: "b", detail: "throttled" }

describe("WatchMessage's new events", () => {
  it("an event written late with an earlier time is sent once, and no event is sent twice", () => {
    const sent = new Set<string>()
    expect(unsentEvents(sent, [accepted, submitted])).toEqual([accepted, submitted])
    expect(unsentEvents(sent, [accepted, submitted, delivered])).toEqual([delivered])
    // A count would take the last event (delivered, again) and miss `late`.
    expect(unsentEvents(sent, [accepted, submitted, late, delivered])).toEqual([late])
    expect(unsentEvents(sent, [accepted, submitted, late, delivered])).toEqual([])
  })

  it("events alike but for one field are different events", () => {
    const sent = new Set<string>()
    const other = { ...submitted, part: 2 }
    expect(unsentEvents(sent, [submitted, other])).toEqual([submitted, other])
  })
})

describe("health's shared readiness", () => {
  it("one check per interval however many callers, and a caller that goes away does not cancel it", async () => {
    let now = 0
    let checks = 0
    const shared = new SharedStatus(async () => {
      checks++
      return ServingStatus.SERVING
    }, 1000, () => now)
    const never = new AbortController().signal
    const answers = await Promise.all(Array.from({ length: 50 }, () => shared.current(never)))
    expect(answers.every((s) => s === ServingStatus.SERVING)).toBe(true)
    expect(checks).toBe(1)
    now = 999
    await shared.current(never)
    expect(checks).toBe(1)
    now = 1000
    const gone = new AbortController()
    const left = shared.current(gone.signal)
    gone.abort()
    await expect(left).rejects.toBeDefined()
    expect(await shared.current(never)).toBe(ServingStatus.SERVING)
    expect(checks).toBe(2)
    expect(shared.checks).toBe(2)
  })

  it("a check that fails is NOT_SERVING for its interval", async () => {
    const shared = new SharedStatus(() => Promise.reject(new Error("down")), 1000, () => 0)
    expect(await shared.current(new AbortController().signal)).toBe(ServingStatus.NOT_SERVING)
  })
})
