/** The dashboard's arithmetic: SMPP statuses named from error texts, receipt-time buckets and quantiles, rates, windows, series. */
import { describe, expect, it } from "@effect/vitest"
import { keyedOf, rateRange, ratesOf, seriesOf, windowOf } from "../../src/pipeline/Dashboard.ts"
import { bucketValueMs, errorStatus, quantileMs, receiptBucket } from "../../src/storage/DashboardStats.ts"
import type { CountRow } from "../../src/storage/DashboardStats.ts"

const row = (metric: string, key: string, n: number, at = 0): CountRow => ({ scope: "o:x", at, metric, key, n })

describe("dashboard figures", () => {
  it("an error names its SMPP status: command status, a give-up's last answer, a receipt's error, else its words", () => {
    expect(errorStatus("ESME_RINVDSTADR (0x0b)", "unknown")).toBe("ESME_RINVDSTADR")
    expect(errorStatus("ESME_RTHROTTLED", "unknown")).toBe("ESME_RTHROTTLED")
    expect(errorStatus("gave up after 6 attempts: ESME_RSYSERR", "unknown")).toBe("ESME_RSYSERR")
    expect(errorStatus("0x9A (0x9a)", "unknown")).toBe("0x9A")
    expect(errorStatus("gave up after 3 attempts: SubmitTimeout", "unknown")).toBe("SubmitTimeout")
    expect(errorStatus("err 001", "UNDELIV")).toBe("err 001")
    expect(errorStatus(undefined, "UNDELIV")).toBe("UNDELIV")
    expect(errorStatus("  ", "EXPIRED")).toBe("EXPIRED")
    expect(errorStatus("x".repeat(200), "unknown")).toHaveLength(64)
  })

  it("receipt times: buckets 4 per doubling, so a quantile is within 9 % of the true time", () => {
    for (const ms of [1, 10, 11, 57, 100, 999, 2_100, 60_000, 3_600_000, 72 * 3_600_000]) {
      const estimate = bucketValueMs(receiptBucket(ms))
      if (ms > 10) expect(Math.abs(estimate - ms) / ms).toBeLessThan(0.09)
      else expect(estimate).toBeLessThanOrEqual(10)
    }
    expect(receiptBucket(-5)).toBe(0)
    // 90 messages at ~100 ms and 10 at ~5 s: the median is the first, the 95th percentile the second.
    const buckets = new Map([[receiptBucket(100), 90], [receiptBucket(5_000), 10]])
    expect(quantileMs(buckets, 0.5)).toBe(bucketValueMs(receiptBucket(100)))
    expect(quantileMs(buckets, 0.95)).toBe(bucketValueMs(receiptBucket(5_000)))
    expect(quantileMs(new Map(), 0.5)).toBeUndefined()
  })

  it("rates average the last 5 complete seconds, not the one being written", () => {
    const now = 1_000_000_500
    const { from, to } = rateRange(now)
    expect([from, to]).toEqual([999_994_000, 999_998_000])
    const rows = [
      row("accepted", "", 10, 999_994_000),
      row("accepted", "", 10, 999_998_000),
      row("accepted", "", 1000, 999_999_000), // still being written by some node
      row("accepted", "", 1000, 999_993_000), // too old
      row("delivered", "", 4, 999_996_000)
    ].map((r) => keyedOf(r, false))
    expect(ratesOf(rows, now)).toEqual({ accepted: 4, submitted: 0, delivered: 0.8, refused: 0 })
  })

  it("the window: totals, delivery rate over what became final, errors and refusals by count, a campaign's keys split by link", () => {
    const org = [
      row("accepted", "", 10),
      row("delivered", "", 6),
      row("undelivered", "", 1),
      row("failed", "", 1),
      row("refused", "", 3), // a per-second row carries no reason: not counted twice
      row("refused", "blacklisted|dnc", 2),
      row("refused", "rate_limited (app)|", 1),
      row("error", "failed|ESME_RINVDSTADR", 1),
      row("error", "retried|ESME_RTHROTTLED", 7),
      row("error", "bogus", 1),
      row("receipt", String(receiptBucket(200)), 6)
    ].map((r) => keyedOf(r, false))
    const w = windowOf(org)
    expect(w.totals).toEqual({ accepted: 10, submitted: 0, delivered: 6, undelivered: 1, expired: 0, failed: 1, refused: 3 })
    expect(w.deliveryRate).toBe(0.75)
    expect(w.errors).toEqual([{ kind: "retried", status: "ESME_RTHROTTLED", count: 7 }, { kind: "failed", status: "ESME_RINVDSTADR", count: 1 }])
    expect(w.refusals).toEqual([{ reason: "blacklisted", ruleId: "dnc", count: 2 }, { reason: "rate_limited (app)", count: 1 }])
    expect(w.receipt).toEqual({ count: 6, p50Ms: bucketValueMs(receiptBucket(200)), p95Ms: bucketValueMs(receiptBucket(200)) })
    expect(windowOf([]).deliveryRate).toBeUndefined()

    const campaign = [row("submitted", "a", 3), row("error", "a|retried|ESME_RTHROTTLED", 2), row("receipt", "b|12", 1), row("accepted", "pool:main", 3)]
      .map((r) => keyedOf(r, true))
    expect(campaign.map((k) => [k.metric, k.link, k.key])).toEqual([
      ["submitted", "a", ""],
      ["error", "a", "retried|ESME_RTHROTTLED"],
      ["receipt", "b", "12"],
      ["accepted", "", "pool:main"]
    ])
  })

  it("the series: one point per minute, oldest first, empty minutes as zeros", () => {
    const minute = 60_000
    const now = 100 * minute + 30_000
    const rows = [row("accepted", "", 5, 98 * minute), row("delivered", "", 4, 100 * minute), row("expired", "", 1, 100 * minute)]
      .map((r) => keyedOf(r, false))
    const points = seriesOf(rows, 97 * minute, now)
    expect(points.map((p) => [p.at, p.accepted, p.delivered, p.failed])).toEqual([
      [new Date(97 * minute).toISOString(), 0, 0, 0],
      [new Date(98 * minute).toISOString(), 5, 0, 0],
      [new Date(99 * minute).toISOString(), 0, 0, 0],
      [new Date(100 * minute).toISOString(), 0, 4, 1]
    ])
  })
})
