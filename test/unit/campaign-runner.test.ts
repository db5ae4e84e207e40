import { describe, expect, it } from "vitest"
import { autoPauseReason, campaignMessageId, canaryLimit } from "../../src/pipeline/CampaignRunner.ts"

const attempts = (submitted: number, failed: number, refused: number) => [
  ...Array.from({ length: submitted }, () => ({ kind: "submitted" as const })),
  ...Array.from({ length: failed }, () => ({ kind: "failed" as const })),
  ...Array.from({ length: refused }, () => ({ kind: "refused" as const }))
]

describe("campaign runner decisions", () => {
  it("a recipient's message id is the same for the same attempt, another for the next, a UUID", () => {
    const id = campaignMessageId("cmp-1", 42, 0)
    expect(campaignMessageId("cmp-1", 42, 0)).toBe(id)
    expect(campaignMessageId("cmp-1", 42, 1)).not.toBe(id)
    expect(campaignMessageId("cmp-1", 43, 0)).not.toBe(id)
    expect(campaignMessageId("cmp-2", 42, 0)).not.toBe(id)
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
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
})
