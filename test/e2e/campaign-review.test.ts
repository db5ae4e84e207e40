/**
 * What the review of the campaign runner found, each against the embedded gateway and the SMSC simulator: the throttle
 * held below one message a tick, contacts added after approval without a required variable, lists deleted before the
 * campaign started; and statistics streams sharing their campaign's counts.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Stream } from "effect"
import { SqlClient } from "effect/sql"
import type { Principal } from "../../src/auth/Access.ts"
import { CampaignControl } from "../../src/pipeline/CampaignControl.ts"
import { Campaigns } from "../../src/pipeline/Campaigns.ts"
import { Audience } from "../../src/storage/Audience.ts"
import { CampaignStats } from "../../src/storage/CampaignStats.ts"
import { SenderUse } from "../../src/storage/SenderUse.ts"
import { approvedCampaign, campaignOf, germanContacts, receivedTexts, recipientCounts, seedList } from "../fixtures/Campaigns.ts"
import { eventually } from "../fixtures/Eventually.ts"
import { startGateway, signUp } from "../fixtures/Gateway.ts"
import type { RunningGateway } from "../fixtures/Gateway.ts"

const within = (gw: RunningGateway) => <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  effect.pipe(Effect.provideContext(gw.context)) as Effect.Effect<A, E, never>

const waitState = (gw: RunningGateway, id: string, state: string, timeout: number) =>
  eventually(`campaign ${id} ${state}`, within(gw)(campaignOf(id)), { timeout, interval: 100, until: (c) => c.state === state })

describe("campaign runner (review)", () => {
  it.live("a throttle of 2 a second sends 2 a second, not one a tick (5 a second)", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway()
      const t = yield* signUp(gw.baseUrl)
      const run = within(gw)
      const control = yield* run(Effect.service(CampaignControl))
      const list = yield* run(seedList(t.orgId, germanContacts(5)))
      const id = yield* run(approvedCampaign(t.orgId, t.appId, { lists: [list], throttle: 2 }))
      yield* run(control.start(id))
      yield* waitState(gw, id, "completed", 20_000)
      const times = yield* run(Effect.flatMap(Effect.service(SqlClient.SqlClient), (sql) =>
        sql<{ created_at: number | string }>`SELECT created_at FROM messages WHERE campaign_id = ${id} ORDER BY created_at`))
      expect(times.length).toBe(5)
      // Five messages at 2 a second: 0, 0.5, 1, 1.5 and 2 s (one a 200 ms tick would put them within 0.8 s).
      const spanMs = Number(times[4]?.created_at) - Number(times[0]?.created_at)
      expect(spanMs).toBeGreaterThanOrEqual(1_800)
    }).pipe(Effect.scoped), 40_000)

  it.live("a contact added after approval without a required variable fails with missing_variable; it is not sent with a hole", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway()
      const t = yield* signUp(gw.baseUrl)
      const run = within(gw)
      const control = yield* run(Effect.service(CampaignControl))
      const list = yield* run(seedList(t.orgId, [...germanContacts(3), { msisdn: "4915112199999", country: "DE", vars: {} }]))
      const id = yield* run(approvedCampaign(t.orgId, t.appId, { lists: [list] }))
      yield* run(control.start(id))
      yield* waitState(gw, id, "completed", 20_000)
      expect(yield* run(recipientCounts(id))).toEqual({ submitted: 3, failed: 1, "failed:missing_variable": 1 })
      const texts = yield* eventually("3 texts at the SMSC", receivedTexts(gw.sim, id), { until: (m) => m.size >= 3 })
      expect([...texts.keys()].sort()).toEqual([`${id} hello 0`, `${id} hello 1`, `${id} hello 2`])
    }).pipe(Effect.scoped), 40_000)

  it.live("a campaign whose list was deleted before it started holds with the reason instead of completing on nothing", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway()
      const t = yield* signUp(gw.baseUrl)
      const run = within(gw)
      const control = yield* run(Effect.service(CampaignControl))
      const kept = yield* run(seedList(t.orgId, germanContacts(2)))
      const deleted = yield* run(seedList(t.orgId, germanContacts(2, 10)))
      const id = yield* run(approvedCampaign(t.orgId, t.appId, { lists: [kept, deleted] }))
      yield* run(Effect.flatMap(Effect.service(SqlClient.SqlClient), (sql) => sql`DELETE FROM contact_lists WHERE id = ${deleted}`))
      yield* run(control.start(id))
      const held = yield* waitState(gw, id, "paused", 20_000)
      expect(held.pauseReason?.kind).toBe("auto")
      expect(held.pauseReason?.detail).toContain(deleted)
      expect(held.audience).toBe(0)
      expect((yield* receivedTexts(gw.sim, id)).size).toBe(0)
    }).pipe(Effect.scoped), 40_000)
})

describe("campaign statistics streams (review)", () => {
  it.live("five dashboards on one campaign share its counts: the database counts about once a second, not once per stream", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway()
      const t = yield* signUp(gw.baseUrl)
      const run = within(gw)
      const list = yield* run(seedList(t.orgId, germanContacts(3)))
      const id = yield* run(approvedCampaign(t.orgId, t.appId, { lists: [list] }))
      // The real statistics, counted where the campaigns service calls them.
      const real = yield* run(Effect.service(CampaignStats).pipe(Effect.provide(CampaignStats.layer)))
      let counted = 0
      const counting = CampaignStats.of({ ...real, counts: (campaignId, receipt) => Effect.suspend(() => {
        counted++
        return real.counts(campaignId, receipt)
      }) })
      const campaigns = yield* run(Effect.service(Campaigns).pipe(
        Effect.provide(Layer.fresh(Campaigns.layer({ testSendsPerDay: 1 })).pipe(Layer.provide(Layer.mergeAll(Audience.layer, SenderUse.layer, Layer.succeed(CampaignStats, counting)))))
      ))
      const owner: Principal = { kind: "user", orgId: t.orgId, userId: "usr_dashboard", role: "owner", superadmin: false, appId: null, apiKeyId: null }
      const watch = Effect.flatMap(campaigns.statisticsStream(owner, id), (stream) => Stream.runCollect(Stream.take(stream, 3)))
      const seen = yield* Effect.all(Array.from({ length: 5 }, () => watch), { concurrency: "unbounded" })
      expect(seen.map((events) => events.length)).toEqual([5, 5, 5, 5, 5].map(() => 3))
      expect(seen[0]?.[0]?.figures.audience).toBe(0)
      // Three events each, a second apart: about three counts shared, not fifteen.
      expect(counted).toBeLessThanOrEqual(6)
    }).pipe(Effect.scoped), 40_000)
})
