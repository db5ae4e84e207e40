/** CampaignStore on both dialects: fields round-trip, transitions checked in the database, tenant isolation, queue. */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import { SqlClient } from "effect/sql"
import { migrate } from "../../src/layers/Migrations.ts"
import type { NewCampaign } from "../../src/storage/CampaignStore.ts"
import { CampaignStore } from "../../src/storage/CampaignStore.ts"
import { newCampaign } from "../fixtures/Campaigns.ts"
import { pgLayer, sqliteLayer } from "../fixtures/Databases.ts"

/** Every optional field set, so the round trip covers the JSON columns. */
const fullCampaign = (orgId: string, overrides: Partial<NewCampaign> = {}): NewCampaign =>
  newCampaign(orgId, {
    createdBy: "usr_creator",
    name: "Winter sale",
    template: "Hi {{name|there}}, 20% off today",
    lists: ["lst_a", "lst_b"],
    startAt: { at: "2026-12-24T09:00", timeZone: "Europe/Berlin" },
    startTime: Date.UTC(2026, 11, 24, 8),
    sendWindow: { from: "21:00", to: "06:00" },
    throttle: 200,
    validitySeconds: 3600,
    canary: { percent: 5 },
    autoPause: { failureRatio: 0.2 },
    flags: ["link in text"],
    ...overrides
  })

const suite = (name: string, database: Layer.Layer<SqlClient.SqlClient>) =>
  describe(`CampaignStore on ${name}`, () => {
    const TestStore = CampaignStore.layer.pipe(
      Layer.provideMerge(Layer.effectDiscard(Effect.orDie(migrate))),
      Layer.provideMerge(database)
    )
    it.layer(TestStore, { timeout: 60_000 })((it) => {
      it.effect("a created campaign reads back as written, in draft, and only in its organisation", () =>
        Effect.gen(function*() {
          const store = yield* CampaignStore
          const input = fullCampaign("org_a")
          const created = yield* store.create(input)
          expect(created).toMatchObject({
            id: input.id,
            orgId: "org_a",
            state: "draft",
            lists: ["lst_a", "lst_b"],
            startAt: input.startAt,
            sendWindow: input.sendWindow,
            canary: { percent: 5 },
            autoPause: { failureRatio: 0.2 },
            flags: ["link in text"],
            throttle: 200,
            audience: 0
          })
          expect(yield* store.get("org_a", input.id)).toEqual(created)
          const other = yield* store.get("org_b", input.id).pipe(Effect.flip)
          expect(other._tag).toBe("CampaignNotFound")
          expect(Option.isSome(yield* store.find(input.id))).toBe(true)
        }))

      it.effect("a transition happens only from a state that allows it; the refusal names the current state", () =>
        Effect.gen(function*() {
          const store = yield* CampaignStore
          const { id } = yield* store.create(fullCampaign("org_t"))
          const refused = yield* store.transition(id, "approve", "approved", { orgId: "org_t" }).pipe(Effect.flip)
          expect(refused).toMatchObject({ _tag: "InvalidTransition", action: "approve", state: "draft" })
          const pending = yield* store.transition(id, "submit", "pending_approval", { orgId: "org_t", patch: { submittedAt: 5 } })
          expect([pending.state, pending.submittedAt]).toEqual(["pending_approval", 5])
          const edit = yield* store.update("org_t", id, fullCampaign("org_t", { name: "changed" })).pipe(Effect.flip)
          expect(edit).toMatchObject({ _tag: "InvalidTransition", state: "pending_approval" })
          const wrongOrg = yield* store.transition(id, "approve", "approved", { orgId: "org_x" }).pipe(Effect.flip)
          expect(wrongOrg._tag).toBe("CampaignNotFound")
          const approved = yield* store.transition(id, "approve", "approved", { orgId: "org_t", patch: { approvedBy: "usr_mod" } })
          expect([approved.state, approved.approvedBy]).toEqual(["approved", "usr_mod"])
          const paused = yield* store.transition(id, "start", "running", { patch: { startedAt: 9 } }).pipe(
            Effect.andThen(store.transition(id, "pause", "paused", { patch: { pauseReason: { kind: "canary", detail: "5 % sent" } } }))
          )
          expect(paused.pauseReason).toEqual({ kind: "canary", detail: "5 % sent" })
          const resumed = yield* store.transition(id, "resume", "running", { patch: { pauseReason: null } })
          expect([resumed.state, resumed.pauseReason]).toEqual(["running", undefined])
          expect((yield* store.active).some((a) => a.id === id)).toBe(true)
        }))

      it.effect("two racing transitions from one state: exactly one wins", () =>
        Effect.gen(function*() {
          const store = yield* CampaignStore
          const { id } = yield* store.create(fullCampaign("org_r"))
          yield* store.transition(id, "submit", "pending_approval")
          const results = yield* Effect.all([
            store.transition(id, "approve", "approved").pipe(Effect.result),
            store.transition(id, "reject", "rejected").pipe(Effect.result)
          ], { concurrency: 2 })
          expect(results.filter((r) => r._tag === "Success")).toHaveLength(1)
        }))

      it.effect("the moderation queue lists pending campaigns oldest submission first; settings default then stick", () =>
        Effect.gen(function*() {
          const store = yield* CampaignStore
          const org = `org_q${crypto.randomUUID().slice(0, 6)}`
          const a = yield* store.create(fullCampaign(org, { name: "a" }))
          const b = yield* store.create(fullCampaign(org, { name: "b" }))
          yield* store.create(fullCampaign(org, { name: "draft stays out" }))
          yield* store.transition(b.id, "submit", "pending_approval", { patch: { submittedAt: 1 } })
          yield* store.transition(a.id, "submit", "pending_approval", { patch: { submittedAt: 2 } })
          expect((yield* store.moderationQueue(org, 10)).map((c) => c.name)).toEqual(["b", "a"])
          expect((yield* store.settings(org)).approval).toBe("members")
          yield* store.setSettings(org, { approval: "all", keywords: ["free"], urls: ["bit.ly"] })
          yield* store.setSettings(org, { approval: "promotional", keywords: ["free"], urls: [] })
          expect(yield* store.settings(org)).toEqual({ approval: "promotional", keywords: ["free"], urls: [] })
          expect((yield* store.list(org, { limit: 10 })).length).toBe(3)
          expect((yield* store.list(org, { limit: 10, state: "pending_approval" })).length).toBe(2)
        }))

      it.effect("paging by (createdAt, id) neither skips nor repeats campaigns created in the same millisecond", () =>
        Effect.gen(function*() {
          const store = yield* CampaignStore
          const sql = yield* SqlClient.SqlClient
          const org = `org_p${crypto.randomUUID().slice(0, 6)}`
          const ids = ["cmp_a", "cmp_b", "cmp_c", "cmp_d", "cmp_e"].map((id) => `${id}_${org}`)
          for (const id of ids) yield* store.create(fullCampaign(org, { id }))
          // Three in one millisecond, two in the one before: every page boundary of 2 falls inside a millisecond.
          yield* sql`UPDATE campaigns SET created_at = 1000 WHERE id IN ${sql.in(ids.slice(0, 3))}`
          yield* sql`UPDATE campaigns SET created_at = 999 WHERE id IN ${sql.in(ids.slice(3))}`
          const seen: Array<string> = []
          let page = yield* store.list(org, { limit: 2 })
          while (page.length > 0) {
            seen.push(...page.map((c) => c.id))
            const last = page[page.length - 1]
            if (last === undefined || page.length < 2) break
            page = yield* store.list(org, { limit: 2, before: { at: last.createdAt, id: last.id } })
          }
          expect(seen).toEqual([ids[2], ids[1], ids[0], ids[4], ids[3]])
          // `before` alone keeps its meaning: strictly older than that millisecond.
          expect((yield* store.list(org, { limit: 10, before: { at: 1000 } })).map((c) => c.id)).toEqual([ids[4], ids[3]])
          expect(yield* store.list(`${org}x`, { limit: 10 })).toEqual([])
        }))
    })
  })

suite("SQLite", sqliteLayer)
suite("PostgreSQL", pgLayer)
