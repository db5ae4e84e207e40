import { describe, expect, it } from "vitest"
import { campaignMessageId, legacyCampaignMessageId } from "../../src/domain/MessageId.ts"
import { autoPauseReason, canaryLimit, pacing, settle } from "../../src/pipeline/CampaignRunner.ts"
import type { Turn } from "../../src/pipeline/CampaignRunner.ts"

/** The last minute as two batches, so the pause is judged on their sum. */
const attempts = (submitted: number, failed: number, refused: number) => [
  { submitted: Math.floor(submitted / 2), failed: Math.floor(failed / 2), refused: Math.floor(refused / 2) },
  { submitted: Math.ceil(submitted / 2), failed: Math.ceil(failed / 2), refused: Math.ceil(refused / 2) }
]

describe("campaign runner decisions", () => {
  it("a recipient's message id is the same for the same attempt, another for the next, a UUID", () => {
    const at = Date.UTC(2026, 11, 3, 10, 0, 0, 250)
    const c1 = { id: "cmp-1", createdAt: at }
    const id = campaignMessageId(c1, 42, 0)
    expect(campaignMessageId(c1, 42, 0)).toBe(id)
    expect(campaignMessageId(c1, 42, 1)).not.toBe(id)
    expect(campaignMessageId(c1, 43, 0)).not.toBe(id)
    // Another campaign created in the same millisecond.
    expect(campaignMessageId({ id: "cmp-2", createdAt: at }, 42, 0)).not.toBe(id)
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    // Time-ordered: the campaign's creation time first, then the position.
    expect(parseInt(id.replace(/-/g, "").slice(0, 12), 16)).toBe(at)
    const ids = Array.from({ length: 1000 }, (_, pos) => campaignMessageId(c1, pos * 4099, pos % 3))
    expect([...ids].sort()).toEqual(ids)
    expect(new Set(ids).size).toBe(ids.length)
    // Out of the layout's range: the hashed form, still one id per recipient and attempt.
    expect(campaignMessageId(c1, 1, 70_000)).toBe(legacyCampaignMessageId("cmp-1", 1, 70_000))
  })

  it("the form campaign ids had before is derived as it was (a batch in flight across an upgrade is found)", () => {
    expect(legacyCampaignMessageId("cmp-1", 42, 0)).toBe(legacyCampaignMessageId("cmp-1", 42, 0))
    expect(legacyCampaignMessageId("cmp-1", 42, 0)).not.toBe(legacyCampaignMessageId("cmp-1", 42, 1))
    expect(legacyCampaignMessageId("cmp-1", 42, 0)).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
  })

  it("the canary: a count, or a share of the audience rounded up", () => {
    expect(canaryLimit(undefined, 1000)).toBeUndefined()
    expect(canaryLimit({ count: 50 }, 1000)).toBe(50)
    expect(canaryLimit({ percent: 2.5 }, 1000)).toBe(25)
    expect(canaryLimit({ percent: 1 }, 10)).toBe(1)
  })

  it("automatic pause: judged after minAttempts, on failures and on refusals, naming the ratio", () => {
    expect(autoPauseReason(undefined, attempts(0, 50, 50))).toBeUndefined()
    expect(autoPauseReason({ failureRatio: 0.1 }, attempts(10, 9, 0))).toBeUndefined()
    const failing = autoPauseReason({ failureRatio: 0.1 }, attempts(15, 5, 0))
    expect(failing?.kind).toBe("auto")
    expect(failing?.detail).toContain("failure ratio 25 %")
    expect(autoPauseReason({ failureRatio: 0.3 }, attempts(15, 5, 0))).toBeUndefined()
    const refusing = autoPauseReason({ refusalRatio: 0.5, minAttempts: 4 }, attempts(1, 0, 3))
    expect(refusing?.detail).toContain("refusal ratio 75 %")
    expect(refusing?.detail).toContain("above 50 %")
  })

  it("settling a batch: the cursor passes what is settled and stops at the first page recipient left for later", () => {
    const done = (pos: number, state: "submitted" | "refused" | "deferred"): { r: { pos: number }; t: Turn } =>
      ({ r: { pos }, t: { _tag: "Done", outcome: { pos, state, attempts: 1 } } })
    const limited = (pos: number): { r: { pos: number }; t: Turn } =>
      ({ r: { pos }, t: { _tag: "Retry", afterMs: 1000, rateLimited: true } })
    // One due (deferred) recipient first: it never moves the cursor.
    const all = settle([done(3, "submitted"), done(10, "submitted"), done(11, "refused"), done(12, "deferred")], 1, 10, 0)
    expect(all.cursor).toBe(13)
    expect(all.submitted).toBe(2)
    expect(all.attempted).toEqual({ at: 0, submitted: 2, failed: 0, refused: 1 })
    const cut = settle([done(10, "submitted"), limited(11), done(12, "submitted")], 0, 10, 0)
    expect(cut.cursor).toBe(11)
    expect(cut.outcomes.map((o) => o.pos)).toEqual([10, 12])
    expect(cut.waitMs).toBe(1000)
    expect(cut.rateLimited).toBe(1)
    expect(settle([limited(10)], 0, 10, 0).cursor).toBe(10)
  })
})

describe("campaign pacing", () => {
  it("sends at the throttle exactly, below one message a tick too (1/s is one message a second, not one a tick)", () => {
    for (const perSecond of [1, 2, 3, 4, 7, 8, 13, 50, 200, 999, 10_000]) {
      const { size, intervalMs } = pacing(perSecond, 200)
      expect(size).toBeGreaterThanOrEqual(1)
      expect((size * 1000) / intervalMs).toBeCloseTo(perSecond, 9)
    }
    expect(pacing(1, 200)).toEqual({ size: 1, intervalMs: 1000 })
    expect(pacing(200, 200)).toEqual({ size: 40, intervalMs: 200 })
    // 8/s: two every 250 ms (rounding to one a tick would be 5/s, to two a tick 10/s).
    expect(pacing(8, 200)).toEqual({ size: 2, intervalMs: 250 })
  })
})
