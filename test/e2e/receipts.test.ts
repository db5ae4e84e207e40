import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { DatabaseSync } from "node:sqlite"
import { join } from "node:path"
import { eventually } from "../fixtures/Eventually.ts"
import { get, post, signUp, startGateway, waitForStatus } from "../fixtures/Gateway.ts"

/** One value from the gateway's SQLite file, read on the side. */
const scalar = (dataDir: string, query: string): number => {
  const db = new DatabaseSync(join(dataDir, "gateway.db"), { readOnly: true })
  try {
    const row = db.prepare(query).get() as { n: number } | undefined
    return Number(row?.n ?? 0)
  } finally {
    db.close()
  }
}

/** A delivery receipt as an SMSC writes it (Appendix B text), sent as a deliver_sm. */
const receiptText = (id: string, stat: string) =>
  new TextEncoder().encode(`id:${id} sub:001 dlvrd:001 submit date:2601011200 done date:2601011201 stat:${stat} err:000`)

describe("delivery receipts end to end (embedded mode)", () => {
  it.live("an SMSC giving two messages one id: its receipt settles only the newer one", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({ simulator: { receipts: false } })
      const t = yield* signUp(gw.baseUrl)
      yield* gw.sim.setFaults({ messageId: "4711" })
      const send = (text: string) =>
        post(`${gw.baseUrl}/v1/messages`, { to: "+4915112345678", from: "ACME", text }, t.auth).pipe(
          Effect.map((r) => String(r.json.id))
        )
      const older = yield* send("first")
      expect((yield* waitForStatus(gw.baseUrl, older, "submitted", 10_000, t.auth)).status).toBe("submitted")
      const newer = yield* send("second")
      expect((yield* waitForStatus(gw.baseUrl, newer, "submitted", 10_000, t.auth)).status).toBe("submitted")

      yield* gw.sim.deliverMo({ sourceAddr: "4915112345678", destinationAddr: "ACME", esmClass: 0x04, shortMessage: receiptText("4711", "DELIVRD") })
      expect((yield* waitForStatus(gw.baseUrl, newer, "delivered", 10_000, t.auth)).status).toBe("delivered")
      yield* eventually("gw.sim.stats: s.mosAcked === 1", gw.sim.stats, { until: (s) => s.mosAcked === 1 })
      const view = yield* get(`${gw.baseUrl}/v1/messages/${older}`, t.auth)
      expect(view.json.status).toBe("submitted")
    }).pipe(Effect.scoped), 30_000)

  it.live("a message that never gets a receipt ends expired (no receipt) after validity + grace, counted by link", () =>
    Effect.gen(function*() {
      // No validity given: the assumed one (1 s here) counts; no grace; a sweep every second.
      const gw = yield* startGateway({
        simulator: { receipts: false },
        config: { receipts: { assumedValiditySeconds: 1, expireGraceSeconds: 0, sweepIntervalSeconds: 1 } }
      })
      const t = yield* signUp(gw.baseUrl)
      const accepted = yield* post(`${gw.baseUrl}/v1/messages`, { to: "+4915112345678", from: "ACME", text: "anyone?" }, t.auth)
      const id = String(accepted.json.id)
      const view = yield* waitForStatus(gw.baseUrl, id, "expired", 15_000, t.auth)
      expect(view.status).toBe("expired")
      expect(view.reason).toBe("no receipt")
      expect((view.events as Array<{ status: string }>).map((e) => e.status)).toEqual(["accepted", "submitted", "expired"])
      const metrics = yield* get(`${gw.baseUrl}/metrics`)
      expect(metrics.text).toMatch(/smsgw_messages_expired_no_receipt_total\{link="sim"\} [1-9]/)
    }).pipe(Effect.scoped), 30_000)

  it.live("a 10,000-character message_id is not stored or served; a receipt with an id beyond 64 characters is refused", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({ simulator: { receipts: false } })
      const t = yield* signUp(gw.baseUrl)
      yield* gw.sim.setFaults({ messageId: "7".repeat(10_000) })
      const accepted = yield* post(`${gw.baseUrl}/v1/messages`, { to: "+4915112345678", from: "ACME", text: "hi" }, t.auth)
      const view = yield* waitForStatus(gw.baseUrl, String(accepted.json.id), "submitted", 10_000, t.auth)
      expect(view.status).toBe("submitted")
      expect(JSON.stringify(view)).not.toContain("7".repeat(65))
      expect(scalar(gw.dataDir, "SELECT MAX(LENGTH(smsc_message_id)) AS n FROM message_parts")).toBe(0)

      yield* gw.sim.deliverMo({ sourceAddr: "4915112345678", destinationAddr: "ACME", esmClass: 0x04, shortMessage: receiptText("8".repeat(65), "DELIVRD") })
      const stats = yield* eventually("gw.sim.stats: s.receiptsNacked >= 1", gw.sim.stats, { until: (s) => s.receiptsNacked >= 1 })
      expect(stats.nacksByStatus["0x65"]).toBeGreaterThanOrEqual(1)
      expect(scalar(gw.dataDir, "SELECT COUNT(*) AS n FROM orphan_receipts")).toBe(0)
    }).pipe(Effect.scoped), 30_000)
})
