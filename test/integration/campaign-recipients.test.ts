/** CampaignRecipients on both dialects: the audience copied once in list order, deduplicated; outcomes with the cursor. */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { migrate } from "../../src/layers/Migrations.ts"
import { CampaignRecipients } from "../../src/storage/CampaignRecipients.ts"
import { CampaignStore } from "../../src/storage/CampaignStore.ts"
import { approvedCampaign, seedList } from "../fixtures/Campaigns.ts"
import { pgLayer, sqliteLayer } from "../fixtures/Databases.ts"

const contact = (n: number, vars: Record<string, string> = {}) => ({ msisdn: `4915112${100_000 + n}`, country: "DE", vars })

const suite = (name: string, database: Layer.Layer<SqlClient.SqlClient>) =>
  describe(`CampaignRecipients on ${name}`, () => {
    const TestStores = Layer.mergeAll(CampaignRecipients.layer, CampaignStore.layer).pipe(
      Layer.provideMerge(Layer.effectDiscard(Effect.orDie(migrate))),
      Layer.provideMerge(database)
    )
    it.layer(TestStores, { timeout: 60_000 })((it) => {
      it.effect("the audience: lists in the campaign's order, a number at its first place, copied once", () =>
        Effect.gen(function*() {
          const recipients = yield* CampaignRecipients
          const a = yield* seedList("org_a", [contact(1, { name: "first" }), contact(2), contact(3)])
          const b = yield* seedList("org_a", [contact(2, { name: "again" }), contact(4)])
          const foreign = yield* seedList("org_b", [contact(9)])
          const id = yield* approvedCampaign("org_a", "app", { lists: [b, a, foreign] })
          const campaign = { id, orgId: "org_a", lists: [b, a, foreign] }
          expect(yield* recipients.materialise(campaign)).toBe(4)
          // A second call (a new actor after a crash) copies nothing.
          expect(yield* recipients.materialise(campaign)).toBe(4)
          const page = yield* recipients.page(id, 0, 10)
          expect(page.map((r) => [r.pos, r.msisdn.slice(-1), r.vars.name])).toEqual([
            [0, "2", "again"],
            [1, "4", undefined],
            [2, "1", "first"],
            [3, "3", undefined]
          ])
          const stored = yield* (yield* CampaignStore).find(id)
          expect(stored._tag === "Some" && stored.value.audience).toBe(4)
        }))

      it.effect("outcomes and the cursor are written together; deferred recipients come back when due", () =>
        Effect.gen(function*() {
          const recipients = yield* CampaignRecipients
          const list = yield* seedList("org_a", [contact(1), contact(2), contact(3), contact(4)])
          const id = yield* approvedCampaign("org_a", "app", { lists: [list] })
          yield* recipients.materialise({ id, orgId: "org_a", lists: [list] })
          yield* recipients.record(id, [
            { pos: 0, state: "submitted", attempts: 1, messageId: "m0" },
            { pos: 1, state: "deferred", attempts: 0, reason: "send_window", nextAt: 5_000 },
            { pos: 2, state: "refused", attempts: 1, reason: "frequency_cap", ruleId: "cap-1" }
          ], 3)
          expect(yield* recipients.cursor(id)).toBe(3)
          expect((yield* recipients.page(id, 3, 10)).map((r) => r.pos)).toEqual([3])
          // The cursor never moves back.
          yield* recipients.record(id, [], 1)
          expect(yield* recipients.cursor(id)).toBe(3)
          expect(yield* recipients.due(id, 4_999, 10)).toEqual([])
          expect((yield* recipients.due(id, 5_000, 10)).map((r) => r.pos)).toEqual([1])
          expect(yield* recipients.deferred(id)).toEqual({ count: 1, nextAt: 5_000 })
          const counts = yield* recipients.counts(id)
          expect(counts).toContainEqual({ state: "refused", reason: "frequency_cap", count: 1 })
          expect(counts).toContainEqual({ state: "pending", reason: "", count: 1 })
          const sql = yield* SqlClient.SqlClient
          const rule = yield* sql<{ rule_id: string }>`SELECT rule_id FROM campaign_recipients WHERE campaign_id = ${id} AND pos = 2`
          expect(rule[0]?.rule_id).toBe("cap-1")
        }))

      it.effect("which derived ids already exist as messages", () =>
        Effect.gen(function*() {
          const recipients = yield* CampaignRecipients
          const sql = yield* SqlClient.SqlClient
          const now = Date.now()
          yield* sql`INSERT INTO messages ${sql.insert({
            id: "exists-1",
            to_addr: "4915112100001",
            from_addr: "ACME",
            text: "t",
            encoding: "gsm7",
            segments: 1,
            status: "accepted",
            status_rank: 0,
            created_at: now,
            updated_at: now
          })}`
          expect([...(yield* recipients.existing(["exists-1", "missing"]))]).toEqual(["exists-1"])
          expect((yield* recipients.existing([])).size).toBe(0)
        }))
    })
  })

suite("SQLite", sqliteLayer)
suite("PostgreSQL", pgLayer)
