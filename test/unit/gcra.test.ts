import { describe, expect, it } from "vitest"
import * as Gcra from "../../src/ratelimit/Gcra.ts"
import type { LimitSpec } from "../../src/ratelimit/Gcra.ts"

/** A time well after the epoch, as Date.now() gives it. */
const T0 = Date.UTC(2027, 4, 17, 12, 0, 0)

const once = (state: Map<string, number>, limits: ReadonlyArray<LimitSpec>, now: number, cost = 1) =>
  Gcra.decide(state, { limits, cost }, now)

const allowedOf = (state: Map<string, number>, limits: ReadonlyArray<LimitSpec>, now: number, times: number, cost = 1) => {
  let allowed = 0
  for (let i = 0; i < times; i++) if (once(state, limits, now, cost).allowed) allowed++
  return allowed
}

describe("Gcra", () => {
  it("limitSpec: the emission is the period over the limit, the capacity a burst of them", () => {
    expect(Gcra.limitSpec("k", { limit: 100, periodMs: 1000, burst: 10 })).toEqual({ key: "k", emissionMs: 10, capacityMs: 100 })
    expect(Gcra.limitSpec("k", { limit: 5, periodMs: 60_000, burst: 0 }).capacityMs).toBe(12_000)
  })

  it("lets a burst through at once, then one per emission", () => {
    const state = new Map<string, number>()
    const limit = Gcra.limitSpec("k", { limit: 100, periodMs: 1000, burst: 10 })
    expect(allowedOf(state, [limit], T0, 50)).toBe(10)
    // Steady: one more every 10 ms, never two.
    for (let step = 1; step <= 100; step++) {
      expect(allowedOf(state, [limit], T0 + step * 10 - 1, 1)).toBe(0)
      expect(allowedOf(state, [limit], T0 + step * 10, 5)).toBe(1)
    }
    // Over one second after the burst: burst + 100 in total.
    expect(allowedOf(state, [limit], T0 + 1000, 5)).toBe(0)
  })

  it("a burst is exact for fractional emissions too", () => {
    for (const [limit, periodMs] of [[3, 1000], [78, 1000], [1500, 1000], [7, 60_000], [1_000_000, 86_400_000]] as const) {
      for (const burst of [1, Math.ceil(limit / 10), Math.min(limit, 2000)]) {
        const state = new Map<string, number>()
        const spec = Gcra.limitSpec("k", { limit, periodMs, burst })
        const first = once(state, [spec], T0 + 0.25)
        expect(first.remaining).toBe(burst - 1)
        expect(1 + allowedOf(state, [spec], T0 + 0.25, burst + 3)).toBe(burst)
      }
    }
  })

  it("is all or nothing across limits", () => {
    const state = new Map<string, number>()
    const wide = Gcra.limitSpec("wide", { limit: 100, periodMs: 1000, burst: 100 })
    const narrow = Gcra.limitSpec("narrow", { limit: 2, periodMs: 1000, burst: 2 })
    expect(allowedOf(state, [wide, narrow], T0, 5)).toBe(2)
    // The refusals by `narrow` did not spend `wide`: 98 left of its 100.
    expect(allowedOf(state, [wide], T0, 200)).toBe(98)
    // And a refusal by `wide` does not spend `narrow`.
    const later = T0 + 1000
    expect(once(state, [wide, narrow], later).allowed).toBe(true)
    expect(state.get("narrow")).toBe(Gcra.ticksOf(later) + 500 * Gcra.TICKS_PER_MS)
    const before = state.get("narrow")
    const refused = once(state, [narrow, Gcra.limitSpec("wide", { limit: 100, periodMs: 1000, burst: 1 })], later)
    expect(refused).toMatchObject({ allowed: false, limitIndex: 1 })
    expect(state.get("narrow")).toBe(before)
  })

  it("cost above one spends several units, and a cost above the burst never fits", () => {
    const state = new Map<string, number>()
    const limit = Gcra.limitSpec("k", { limit: 10, periodMs: 1000, burst: 10 })
    expect(once(state, [limit], T0, 4)).toMatchObject({ allowed: true, remaining: 6 })
    expect(once(state, [limit], T0, 4)).toMatchObject({ allowed: true, remaining: 2 })
    expect(once(state, [limit], T0, 4)).toMatchObject({ allowed: false, remaining: 2, retryAfterMs: 200 })
    expect(once(state, [limit], T0, 2)).toMatchObject({ allowed: true, remaining: 0 })
    expect(once(state, [limit], T0 + 10_000, 11)).toMatchObject({ allowed: false, retryAfterMs: 100 })
  })

  it("retryAfter is exact: refused one ms before it, allowed at it", () => {
    const state = new Map<string, number>()
    const limit = Gcra.limitSpec("k", { limit: 5, periodMs: 1000, burst: 2 })
    expect(allowedOf(state, [limit], T0, 2)).toBe(2)
    const refused = once(state, [limit], T0 + 37)
    expect(refused).toMatchObject({ allowed: false, retryAfterMs: 163, limitIndex: 0 })
    expect(once(state, [limit], T0 + 37 + refused.retryAfterMs - 1)).toMatchObject({ allowed: false, retryAfterMs: 1 })
    expect(once(state, [limit], T0 + 37 + refused.retryAfterMs).allowed).toBe(true)
  })

  it("a rejection names the limit needing the longest wait", () => {
    const state = new Map<string, number>()
    const a = Gcra.limitSpec("a", { limit: 10, periodMs: 1000, burst: 1 })
    const b = Gcra.limitSpec("b", { limit: 1, periodMs: 1000, burst: 1 })
    const c = Gcra.limitSpec("c", { limit: 100, periodMs: 1000, burst: 1 })
    expect(once(state, [a, b, c], T0).allowed).toBe(true)
    expect(once(state, [a, b, c], T0)).toEqual({ allowed: false, retryAfterMs: 1000, limitIndex: 1, remaining: 0, resetMs: 1000 })
  })

  it("remaining and reset belong to the limit with the fewest units left", () => {
    const state = new Map<string, number>()
    const perSecond = Gcra.limitSpec("s", { limit: 10, periodMs: 1000, burst: 5 })
    const perMinute = Gcra.limitSpec("m", { limit: 6, periodMs: 60_000, burst: 6 })
    expect(once(state, [perSecond, perMinute], T0)).toEqual({ allowed: true, retryAfterMs: 0, limitIndex: 0, remaining: 4, resetMs: 100 })
    expect(once(state, [perSecond, perMinute], T0)).toEqual({ allowed: true, retryAfterMs: 0, limitIndex: 0, remaining: 3, resetMs: 200 })
    // A second later the per-second limit is full again (4 left after this one) and the per-minute one binds.
    expect(once(state, [perSecond, perMinute], T0 + 1000)).toEqual({ allowed: true, retryAfterMs: 0, limitIndex: 1, remaining: 3, resetMs: 29_000 })
    // A rejection reports what is left before it.
    const tight = Gcra.limitSpec("t", { limit: 1, periodMs: 1000, burst: 3 })
    expect(allowedOf(state, [tight], T0, 2)).toBe(2)
    expect(once(state, [tight], T0, 2)).toEqual({ allowed: false, retryAfterMs: 1000, limitIndex: 0, remaining: 1, resetMs: 2000 })
  })

  it("an idle limit recovers fully, and no further than its burst", () => {
    const state = new Map<string, number>()
    const limit = Gcra.limitSpec("k", { limit: 10, periodMs: 1000, burst: 3 })
    expect(allowedOf(state, [limit], T0, 10)).toBe(3)
    expect(allowedOf(state, [limit], T0 + 150, 10)).toBe(1)
    const idle = T0 + 3_600_000
    expect(once(state, [limit], idle)).toMatchObject({ allowed: true, remaining: 2, resetMs: 100 })
    expect(allowedOf(state, [limit], idle, 10)).toBe(2)
  })

  it("a decision without limits is allowed and binds nothing", () => {
    expect(Gcra.decide(new Map(), { limits: [], cost: 1 }, T0)).toEqual({
      allowed: true,
      retryAfterMs: 0,
      limitIndex: -1,
      remaining: Infinity,
      resetMs: 0
    })
  })
})
