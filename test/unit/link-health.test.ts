import { describe, expect, it } from "vitest"
import type { LinkHealth, LinkResult } from "../../src/routing/LinkHealth.ts"
import { makeLinkHealth } from "../../src/routing/LinkHealth.ts"

const T0 = Date.UTC(2027, 4, 17, 12, 0, 0)

/** `n` results one millisecond apart from `at`; returns the time after the last. */
const feed = (health: LinkHealth, at: number, n: number, result: LinkResult) => {
  for (let i = 0; i < n; i++) health.onResult(at + i, result)
  return at + n
}

describe("LinkHealth", () => {
  it("starts unbound; a bind makes it bound, an unbind unbound again", () => {
    const health = makeLinkHealth()
    expect(health.state(T0)).toBe("unbound")
    health.onBound(T0)
    expect(health.state(T0)).toBe("bound")
    health.onUnbound(T0 + 10)
    expect(health.state(T0 + 10)).toBe("unbound")
  })

  it("observe reports a state only once, when it changes", () => {
    const health = makeLinkHealth()
    expect(health.observe(T0)).toEqual({ state: "unbound" })
    health.onBound(T0)
    expect(health.observe(T0)).toEqual({ state: "bound", changedFrom: "unbound" })
    expect(health.observe(T0 + 1)).toEqual({ state: "bound" })
    expect("changedFrom" in health.observe(T0 + 2)).toBe(false)
    health.onUnbound(T0 + 3)
    expect(health.observe(T0 + 3)).toEqual({ state: "unbound", changedFrom: "bound" })
    // Down and up again between two observations is no change to report.
    health.onBound(T0 + 4)
    health.onUnbound(T0 + 5)
    expect(health.observe(T0 + 5)).toEqual({ state: "unbound" })
  })

  it("degraded when errors and timeouts pass the threshold, with enough samples", () => {
    const health = makeLinkHealth()
    health.onBound(T0)
    // 19 failures alone are too few samples to judge.
    let now = feed(health, T0, 19, "timeout")
    expect(health.state(now)).toBe("bound")
    now = feed(health, now, 1, false)
    expect(health.observe(now)).toEqual({ state: "degraded", changedFrom: "unbound" })
    expect(health.snapshot(now)).toMatchObject({ samples: 20, errors: 1, timeouts: 19 })
  })

  it("the threshold is a ratio over the window: 20% is fine, above is degraded, and good results heal it", () => {
    const health = makeLinkHealth()
    health.onBound(T0)
    let now = feed(health, T0, 80, true)
    now = feed(health, now, 20, false)
    expect(health.state(now)).toBe("bound")
    // The window holds the last 100: one more failure pushes out a success, 21/100 > 0.2.
    now = feed(health, now, 1, "timeout")
    expect(health.observe(now)).toEqual({ state: "degraded", changedFrom: "unbound" })
    // Successes push the failures out of the window again.
    now = feed(health, now, 100, true)
    expect(health.snapshot(now)).toMatchObject({ state: "bound", samples: 100, errors: 0, timeouts: 0 })
    expect(health.observe(now)).toEqual({ state: "bound", changedFrom: "degraded" })
  })

  it("old results age out of the window", () => {
    const health = makeLinkHealth({ windowMs: 30_000 })
    health.onBound(T0)
    feed(health, T0, 30, false)
    expect(health.state(T0 + 29_000)).toBe("degraded")
    // 30 s after the failures they no longer count, with nothing newer in the window.
    expect(health.state(T0 + 30_030)).toBe("bound")
    expect(health.snapshot(T0 + 30_030).samples).toBe(0)
  })

  it("a new bind starts with a clean record", () => {
    const health = makeLinkHealth()
    health.onBound(T0)
    feed(health, T0, 50, "timeout")
    expect(health.state(T0 + 100)).toBe("degraded")
    health.onUnbound(T0 + 100)
    expect(health.state(T0 + 100)).toBe("unbound")
    health.onBound(T0 + 2000)
    expect(health.snapshot(T0 + 2000)).toMatchObject({ state: "bound", samples: 0 })
  })

  it("throttled for the hold time after the last throttling answer", () => {
    const health = makeLinkHealth({ throttleHoldMs: 5000 })
    health.onBound(T0)
    health.onThrottled(T0 + 1000)
    expect(health.observe(T0 + 1000)).toEqual({ state: "throttled", changedFrom: "unbound" })
    health.onThrottled(T0 + 3000)
    expect(health.state(T0 + 7999)).toBe("throttled")
    expect(health.snapshot(T0 + 7999).throttledUntil).toBe(T0 + 8000)
    expect(health.observe(T0 + 8000)).toEqual({ state: "bound", changedFrom: "throttled" })
    // A late answer with an older time does not shorten the hold.
    health.onThrottled(T0 + 10_000)
    health.onThrottled(T0 + 9000)
    expect(health.state(T0 + 14_999)).toBe("throttled")
  })

  it("unbound outranks throttled, throttled outranks degraded", () => {
    const health = makeLinkHealth({ throttleHoldMs: 5000 })
    health.onBound(T0)
    const now = feed(health, T0, 40, false)
    expect(health.state(now)).toBe("degraded")
    health.onThrottled(now)
    expect(health.state(now)).toBe("throttled")
    health.onUnbound(now + 1)
    expect(health.state(now + 1)).toBe("unbound")
    health.onBound(now + 2)
    // Rebound inside the hold: still throttled (the carrier's pushback outlives the session), then bound.
    expect(health.state(now + 2)).toBe("throttled")
    expect(health.state(now + 5000)).toBe("bound")
  })

  it("thresholds, sample counts and window sizes are options", () => {
    const health = makeLinkHealth({ windowSize: 10, minSamples: 5, errorThreshold: 0.5 })
    health.onBound(T0)
    let now = feed(health, T0, 5, true)
    now = feed(health, now, 5, false)
    expect(health.state(now)).toBe("bound")
    now = feed(health, now, 1, false)
    expect(health.snapshot(now)).toMatchObject({ state: "degraded", samples: 10, errors: 6 })
  })
})
