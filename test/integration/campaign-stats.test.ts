/**
 * CampaignStats and SenderUse on both dialects: exact figures (counts by state and status, parts, delivery rate,
 * median and p95 time to receipt), reasons by rule, outcomes paged by position, the CSV export across pages.
 */
import { describe, expect, it } from "@effect/vitest"
import { Array as Arr, Effect, Layer, Stream } from "effect"
import { SqlClient } from "effect/sql"
import { migrate } from "../../src/layers/Migrations.ts"
import { CampaignStats, exportColumns } from "../../src/storage/CampaignStats.ts"
import { CampaignStore } from "../../src/storage/CampaignStore.ts"
import { SenderUse } from "../../src/storage/SenderUse.ts"
import { newCampaign } from "../fixtures/Campaigns.ts"
import { pgLayer, sqliteLayer } from "../fixtures/Databases.ts"

const t0 = Date.UTC(2026, 11, 1, 9)

const statsCampaign = (orgId: string, sender = "ACME") =>
  newCampaign(orgId, { name: "Stats", sender, template: "Hi {{name|there}}", lists: ["lst_a"] })

interface Msg {
  readonly status: string
  readonly segments?: number
  readonly reason?: string
  readonly ruleId?: string
  /** Receipt times of the parts after acceptance (ms). */
  readonly doneAfter?: ReadonlyArray<number>
}

const insertMessage = (campaignId: string, orgId: string, n: number, m: Msg) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const id = `${campaignId}-m${n}`
    const rank = m.status === "submitted" ? 2 : 3
    yield* sql`INSERT INTO messages ${sql.insert({
      id,
      org_id: orgId,
      app_id: "app_1",
      to_addr: `49151000000${String(n).padStart(2, "0")}`,
      from_addr: "ACME",
      text: "Hi",
      encoding: "gsm7",
      segments: m.segments ?? 1,
      status: m.status,
      status_rank: rank,
      reason: m.reason ?? null,
      rule_id: m.ruleId ?? null,
      created_at: t0 + n,
      updated_at: t0 + n,
      campaign_id: campaignId
    })}`
    const parts = m.doneAfter ?? [undefined]
    for (const [seq, after] of parts.entries()) {
      yield* sql`INSERT INTO message_parts ${sql.insert({
        message_id: id,
        seq: seq + 1,
        status: m.status,
        status_rank: rank,
        submitted_at: t0 + n,
        done_at: after === undefined ? null : t0 + n + after
      })}`
    }
    return id
  })

const insertRecipient = (
  campaignId: string,
  pos: number,
  state: string,
  extra: { readonly messageId?: string; readonly reason?: string; readonly ruleId?: string } = {}
) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql`INSERT INTO campaign_recipients ${sql.insert({
      campaign_id: campaignId,
      pos,
      msisdn: `4916000${String(pos).padStart(5, "0")}`,
      country: "DE",
      vars: "{}",
      state,
      attempts: state === "pending" ? 0 : 1,
      message_id: extra.messageId ?? null,
      reason: extra.reason ?? null,
      rule_id: extra.ruleId ?? null,
      updated_at: t0
    })}`)

const suite = (name: string, database: Layer.Layer<SqlClient.SqlClient>) =>
  describe(`CampaignStats on ${name}`, () => {
    const TestStats = Layer.mergeAll(CampaignStats.layer, CampaignStore.layer, SenderUse.layer).pipe(
      Layer.provideMerge(Layer.effectDiscard(Effect.orDie(migrate))),
      Layer.provideMerge(database)
    )
    it.layer(TestStats, { timeout: 60_000 })((it) => {
      it.effect("figures are exact: counts, parts, delivery rate, median and p95 time to receipt, reasons by rule", () =>
        Effect.gen(function*() {
          const store = yield* CampaignStore
          const stats = yield* CampaignStats
          const org = `org_${crypto.randomUUID().slice(0, 6)}`
          const c = yield* store.create(statsCampaign(org))
          const messages: Array<Msg> = [
            // Ten delivered, receipts after 100..1000 ms; the first has two parts (the later receipt counts).
            { status: "delivered", segments: 2, doneAfter: [50, 100] },
            ...Arr.range(2, 10).map((k): Msg => ({ status: "delivered", doneAfter: [k * 100] })),
            { status: "undelivered", reason: "UNDELIV", doneAfter: [300] },
            { status: "expired", reason: "no receipt", doneAfter: [9000] },
            { status: "failed", reason: "submit_sm_resp 0x45" },
            { status: "submitted" },
            { status: "rejected", reason: "frequency_cap", ruleId: "cap-daily" }
          ]
          let pos = 0
          for (const [n, m] of messages.entries()) {
            const id = yield* insertMessage(c.id, org, n, m)
            yield* insertRecipient(c.id, ++pos, "submitted", { messageId: id })
          }
          yield* insertRecipient(c.id, ++pos, "excluded", { reason: "blacklisted", ruleId: "dnc" })
          yield* insertRecipient(c.id, ++pos, "excluded", { reason: "blacklisted", ruleId: "dnc" })
          yield* insertRecipient(c.id, ++pos, "refused", { reason: "duplicate", ruleId: "dedup-1h" })
          yield* insertRecipient(c.id, ++pos, "failed", { reason: "no_route" })
          yield* insertRecipient(c.id, ++pos, "deferred", { reason: "send_window", ruleId: "window" })
          yield* insertRecipient(c.id, ++pos, "pending")
          yield* insertRecipient(c.id, ++pos, "pending")
          // Another campaign's rows change nothing.
          const other = yield* store.create(statsCampaign(org))
          yield* insertRecipient(other.id, 1, "excluded", { reason: "blacklisted", ruleId: "dnc" })
          yield* insertMessage(other.id, org, 99, { status: "delivered", doneAfter: [1] })

          const figures = yield* stats.figures(c.id)
          expect(figures).toEqual({
            audience: 22,
            recipients: { pending: 2, deferred: 1, excluded: 2, refused: 1, failed: 1, submitted: 15 },
            messages: { inFlight: 1, delivered: 10, undelivered: 1, expired: 1, failed: 1, rejected: 1 },
            submitted: 14,
            deliveryRate: 10 / 14,
            receipt: { count: 10, medianMs: 500, p95Ms: 1000 },
            parts: 15,
            reasons: [
              { state: "excluded", reason: "blacklisted", ruleId: "dnc", count: 2 },
              { state: "deferred", reason: "send_window", ruleId: "window", count: 1 },
              { state: "failed", reason: "no_route", ruleId: undefined, count: 1 },
              { state: "message", reason: "frequency_cap", ruleId: "cap-daily", count: 1 },
              { state: "message", reason: "no receipt", ruleId: undefined, count: 1 },
              { state: "message", reason: "submit_sm_resp 0x45", ruleId: undefined, count: 1 },
              { state: "message", reason: "UNDELIV", ruleId: undefined, count: 1 },
              { state: "refused", reason: "duplicate", ruleId: "dedup-1h", count: 1 }
            ]
          })
          const empty = yield* stats.figures(`cmp_none`)
          expect([empty.audience, empty.submitted, empty.deliveryRate, empty.receipt]).toEqual([0, 0, undefined, { count: 0, medianMs: undefined, p95Ms: undefined }])

          const excluded = yield* stats.outcomes(c.id, { state: "excluded", limit: 10 })
          expect(excluded.map((o) => [o.position, o.reason, o.ruleId])).toEqual([[16, "blacklisted", "dnc"], [17, "blacklisted", "dnc"]])
          const delivered = yield* stats.outcomes(c.id, { status: "delivered", withMessage: true, limit: 4, after: 2 })
          expect(delivered.map((o) => [o.position, o.status, o.messageId])).toEqual([3, 4, 5, 6].map((p) => [p, "delivered", `${c.id}-m${p - 1}`]))
          expect((yield* stats.outcomes(c.id, { withMessage: true, limit: 100 })).length).toBe(15)
        }))

      it.effect("the CSV export pages through every recipient in order, one page in memory at a time", () =>
        Effect.gen(function*() {
          const store = yield* CampaignStore
          const stats = yield* CampaignStats
          const sql = yield* SqlClient.SqlClient
          const c = yield* store.create(statsCampaign("org_export"))
          const rows = Arr.range(1, 2_500).map((pos) => ({
            campaign_id: c.id,
            pos,
            msisdn: `4917000${String(pos).padStart(5, "0")}`,
            vars: "{}",
            state: pos % 500 === 0 ? "excluded" : "pending",
            reason: pos % 500 === 0 ? "opted out, \"STOP\"" : null,
            rule_id: pos % 500 === 0 ? "opt-out" : null,
            updated_at: t0
          }))
          for (const batch of Arr.chunksOf(rows, 500)) yield* sql`INSERT INTO campaign_recipients ${sql.insert(batch)}`
          const chunks = yield* Stream.runCollect(stats.exportCsv(c.id))
          // The header, then one chunk per page of 1,000.
          expect(chunks.length).toBe(4)
          const lines = chunks.join("").split("\r\n").filter((l) => l !== "")
          expect(lines[0]).toBe(exportColumns.join(","))
          expect(lines.length).toBe(2_501)
          expect(lines.slice(1).map((l) => Number(l.split(",")[0]))).toEqual(Arr.range(1, 2_500))
          expect(lines[500]).toBe(`500,+491700000500,excluded,"opted out, ""STOP""",opt-out,,0,,,,,,${new Date(t0).toISOString()}`)
        }))

      it.effect("a sender is known once the organisation sent from it or had a campaign with it approved", () =>
        Effect.gen(function*() {
          const store = yield* CampaignStore
          const senders = yield* SenderUse
          const org = `org_${crypto.randomUUID().slice(0, 6)}`
          const draft = yield* store.create(statsCampaign(org, "NEWS"))
          expect(yield* senders.usedBefore(org, "NEWS", "cmp_x")).toBe(false)
          yield* store.transition(draft.id, "submit", "approved")
          expect(yield* senders.usedBefore(org, "NEWS", "cmp_x")).toBe(true)
          expect(yield* senders.usedBefore(org, "NEWS", draft.id)).toBe(false)
          yield* insertMessage("cmp_api", org, 1, { status: "delivered" }).pipe(
            Effect.andThen(Effect.flatMap(SqlClient.SqlClient, (sql) => sql`UPDATE messages SET campaign_id = NULL, from_addr = 'Shop' WHERE id = 'cmp_api-m1'`))
          )
          expect(yield* senders.usedBefore(org, "Shop", "cmp_x")).toBe(true)
          expect(yield* senders.usedBefore("org_other", "Shop", "cmp_x")).toBe(false)
        }))
    })
  })

suite("SQLite", sqliteLayer)
suite("PostgreSQL", pgLayer)
