import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { ActorRegistry } from "../../src/actors/ActorRegistry.ts"
import { AccountStore } from "../../src/auth/AccountStore.ts"
import { CampaignStore } from "../../src/storage/CampaignStore.ts"
import { CampaignControl } from "../../src/pipeline/CampaignControl.ts"
import { campaignMessageId, legacyCampaignMessageId } from "../../src/domain/MessageId.ts"
import { approvedCampaign, campaignMessages, campaignOf, germanContacts, newCampaign, receivedTexts, recipientCounts, seedList } from "../fixtures/Campaigns.ts"
import type { Contact } from "../fixtures/Campaigns.ts"
import { eventually } from "../fixtures/Eventually.ts"
import { post, send, signUp, startGateway, superadmin } from "../fixtures/Gateway.ts"
import type { RunningGateway } from "../fixtures/Gateway.ts"

/** Runs `effect` with the embedded gateway's services (store, control, SQL). */
const within = (gw: RunningGateway) => <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  effect.pipe(Effect.provideContext(gw.context)) as Effect.Effect<A, E, never>

const waitState = (gw: RunningGateway, id: string, state: string, timeout: number) =>
  eventually(`campaign ${id} ${state}`, within(gw)(campaignOf(id)), { timeout, interval: 200, until: (c) => c.state === state })

/** Every recipient's text reached the SMSC exactly once (none missing, none twice). */
const expectEachOnce = (texts: ReadonlyMap<string, number>, id: string, count: number) => {
  const missing = Array.from({ length: count }, (_, n) => `${id} hello ${n}`).filter((t) => !texts.has(t))
  const twice = [...texts].filter(([, n]) => n > 1).map(([t]) => t)
  expect(missing.slice(0, 5)).toEqual([])
  expect(twice.slice(0, 5)).toEqual([])
  expect(texts.size).toBe(count)
}

describe("running campaigns", () => {
  it.live("a 10,000-recipient campaign at 200 msg/s completes: every recipient reached the SMSC once, counts exact", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({ link: { tps: 1000, window: 20 } })
      const t = yield* signUp(gw.baseUrl)
      const run = within(gw)
      // Two lists; a number in both is one recipient, at its place in the first list.
      const first = yield* run(seedList(t.orgId, germanContacts(9_999)))
      const second: Array<Contact> = [{ msisdn: "4915112100005", country: "DE", vars: { n: "dup" } }, ...germanContacts(1, 9_999)]
      const list = yield* run(seedList(t.orgId, second))
      const id = yield* run(approvedCampaign(t.orgId, t.appId, { lists: [first, list], throttle: 200 }))
      const control = yield* run(Effect.service(CampaignControl))
      const started = Date.now()
      yield* run(control.start(id))
      const done = yield* waitState(gw, id, "completed", 120_000)
      const elapsed = Date.now() - started
      expect(done.audience).toBe(10_000)
      expect(done.finishedAt).toBeGreaterThan(0)
      expect(yield* run(recipientCounts(id))).toEqual({ submitted: 10_000 })
      expect(yield* run(campaignMessages(id))).toBe(10_000)
      const texts = yield* eventually("10,000 texts at the SMSC", receivedTexts(gw.sim, id), { timeout: 20_000, until: (m) => m.size >= 10_000 })
      expectEachOnce(texts, id, 10_000)
      expect(texts.has(`${id} hello dup`)).toBe(false)
      // The throttle held: 10,000 at 200 per second take 50 s (a tick's batch may run ahead by one).
      expect(elapsed).toBeGreaterThan(45_000)
    }).pipe(Effect.scoped), 150_000)

  it.live("pause mid-run: nothing is submitted after the answer; resume completes; cancel stops for good", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({ link: { tps: 1000, window: 20 } })
      const t = yield* signUp(gw.baseUrl)
      const run = within(gw)
      const control = yield* run(Effect.service(CampaignControl))
      const list = yield* run(seedList(t.orgId, germanContacts(2_000)))
      const id = yield* run(approvedCampaign(t.orgId, t.appId, { lists: [list], throttle: 200 }))
      yield* run(control.start(id))
      yield* eventually("400 at the SMSC", receivedTexts(gw.sim, id), { timeout: 30_000, until: (m) => m.size >= 400 })
      const asked = Date.now()
      const paused = yield* run(control.pause(id))
      const answeredInMs = Date.now() - asked
      console.log(`pause answered in ${answeredInMs} ms`)
      // Within a second: the answer waits for the batch in flight only (a fifth of a second's messages).
      expect(answeredInMs).toBeLessThan(1_000)
      expect(paused.state).toBe("paused")
      expect(paused.pauseReason?.kind).toBe("user")
      const atAnswer = yield* run(campaignMessages(id))
      expect(atAnswer).toBeLessThan(2_000)
      // What was accepted before the answer reaches the SMSC; then nothing more, for two seconds of looking.
      yield* eventually("the SMSC caught up with what was accepted", receivedTexts(gw.sim, id), { until: (m) => m.size === atAnswer })
      const watchedUntil = Date.now() + 2_000
      while (Date.now() < watchedUntil) {
        expect(yield* run(campaignMessages(id))).toBe(atAnswer)
        expect((yield* receivedTexts(gw.sim, id)).size).toBe(atAnswer)
        yield* Effect.sleep("200 millis")
      }
      const resumed = yield* run(control.resume(id))
      expect(resumed.state).toBe("running")
      expect(resumed.pauseReason).toBeUndefined()
      yield* waitState(gw, id, "completed", 60_000)
      expect(yield* run(recipientCounts(id))).toEqual({ submitted: 2_000 })
      expectEachOnce(yield* eventually("2,000 texts", receivedTexts(gw.sim, id), { until: (m) => m.size >= 2_000 }), id, 2_000)

      // Cancel: a second campaign stopped for good mid-run.
      const list2 = yield* run(seedList(t.orgId, germanContacts(2_000, 5_000)))
      const id2 = yield* run(approvedCampaign(t.orgId, t.appId, { lists: [list2], throttle: 200 }))
      yield* run(control.start(id2))
      yield* eventually("300 at the SMSC", receivedTexts(gw.sim, id2), { timeout: 30_000, until: (m) => m.size >= 300 })
      const cancelled = yield* run(control.cancel(id2))
      expect(cancelled.state).toBe("cancelled")
      const atCancel = yield* run(campaignMessages(id2))
      yield* eventually("the SMSC caught up", receivedTexts(gw.sim, id2), { until: (m) => m.size === atCancel })
      const cancelWatch = Date.now() + 2_000
      while (Date.now() < cancelWatch) {
        expect(yield* run(campaignMessages(id2))).toBe(atCancel)
        yield* Effect.sleep("200 millis")
      }
      expect(atCancel).toBeLessThan(2_000)
      const refused = yield* run(control.resume(id2)).pipe(Effect.flip)
      expect(refused._tag).toBe("InvalidTransition")
      expect((yield* run(campaignOf(id2))).state).toBe("cancelled")
    }).pipe(Effect.scoped), 120_000)

  it.live("cancelling a campaign never started answers without starting its actor; a started one is stopped by its actor", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway()
      const t = yield* signUp(gw.baseUrl)
      const run = within(gw)
      const control = yield* run(Effect.service(CampaignControl))
      const registry = yield* run(Effect.service(ActorRegistry))
      const list = yield* run(seedList(t.orgId, germanContacts(5)))
      const draft = yield* run(Effect.flatMap(Effect.service(CampaignStore), (s) => s.create(newCampaign(t.orgId, { appId: t.appId, lists: [list] }))))
      expect((yield* run(control.cancel(draft.id))).state).toBe("cancelled")
      // The actor registers itself as it starts, before it could answer: no row, no actor.
      expect((yield* run(registry.list("Campaign"))).map((e) => e.id)).not.toContain(draft.id)
      const started = yield* run(approvedCampaign(t.orgId, t.appId, { lists: [list], throttle: 1 }))
      yield* run(control.start(started))
      yield* run(control.cancel(started))
      expect((yield* run(registry.list("Campaign"))).map((e) => e.id)).toContain(started)
    }).pipe(Effect.scoped), 30_000)

  it.live("a canary holds after its first N messages until someone resumes", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway()
      const t = yield* signUp(gw.baseUrl)
      const run = within(gw)
      const control = yield* run(Effect.service(CampaignControl))
      const list = yield* run(seedList(t.orgId, germanContacts(300)))
      const id = yield* run(approvedCampaign(t.orgId, t.appId, { lists: [list], throttle: 100, canary: { count: 50 } }))
      yield* run(control.start(id))
      const held = yield* waitState(gw, id, "paused", 30_000)
      expect(held.pauseReason?.kind).toBe("canary")
      expect((yield* run(recipientCounts(id))).submitted).toBe(50)
      // What the campaign did by itself is in the organisation's audit log, with no person as its actor.
      const audit = yield* run(Effect.flatMap(Effect.service(AccountStore), (s) => s.listAudit(t.orgId, { limit: 50 })))
      expect(audit.filter((e) => e.target === id).map((e) => [e.action, e.actorUserId, e.detail])).toContainEqual(
        ["campaign.paused", null, "canary: canary of 50 messages sent; resume to send the rest"]
      )
      expect(yield* run(campaignMessages(id))).toBe(50)
      yield* eventually("50 at the SMSC", receivedTexts(gw.sim, id), { until: (m) => m.size === 50 })
      yield* run(control.resume(id))
      yield* waitState(gw, id, "completed", 30_000)
      expect(yield* run(recipientCounts(id))).toEqual({ submitted: 300 })
      const actions = (yield* run(Effect.flatMap(Effect.service(AccountStore), (s) => s.listAudit(t.orgId, { limit: 50 }))))
        .filter((e) => e.target === id).map((e) => e.action)
      expect(actions).toContain("campaign.completed")
      expectEachOnce(yield* eventually("300 texts", receivedTexts(gw.sim, id), { until: (m) => m.size >= 300 }), id, 300)
    }).pipe(Effect.scoped), 60_000)

  it.live("a send window crossing midnight in the recipients' zones: deferred, then sent when it opens (policy clock moved)", () =>
    Effect.gen(function*() {
      // 06:00 UTC on 15 January: 15:00 in Tokyo, 07:00 in Berlin; the window 22:00-06:00 is closed in both.
      let now = Date.parse("2026-01-15T06:00:00Z")
      const gw = yield* startGateway({ clock: { now: () => now } })
      const t = yield* signUp(gw.baseUrl)
      const run = within(gw)
      const control = yield* run(Effect.service(CampaignControl))
      const japanese: Array<Contact> = Array.from({ length: 20 }, (_, i) => ({
        msisdn: `8190${String(12_340_000 + i)}`,
        country: "JP",
        vars: { n: String(i) }
      }))
      const list = yield* run(seedList(t.orgId, [...japanese, ...germanContacts(20, 20)]))
      const id = yield* run(approvedCampaign(t.orgId, t.appId, { lists: [list], throttle: 100, sendWindow: { from: "22:00", to: "06:00" } }))
      yield* run(control.start(id))
      yield* eventually("all deferred by the window", run(recipientCounts(id)), { until: (c) => c["deferred:send_window"] === 40 })
      expect((yield* receivedTexts(gw.sim, id)).size).toBe(0)
      // 13:00 UTC: 22:00 in Tokyo (the window opens there), 14:00 in Berlin.
      now = Date.parse("2026-01-15T13:00:00Z")
      yield* eventually("the Japanese recipients sent", run(recipientCounts(id)), { timeout: 20_000, until: (c) => c.submitted === 20 })
      expect((yield* run(recipientCounts(id)))["deferred:send_window"]).toBe(20)
      const texts = yield* eventually("20 at the SMSC", receivedTexts(gw.sim, id), { until: (m) => m.size === 20 })
      expect([...texts.keys()].sort()).toEqual(Array.from({ length: 20 }, (_, i) => `${id} hello ${i}`).sort())
      expect((yield* run(campaignOf(id))).state).toBe("running")
      // 23:30 UTC: 00:30 in Berlin, past midnight inside its window; 08:30 in Tokyo (closed, nobody left there).
      now = Date.parse("2026-01-15T23:30:00Z")
      yield* waitState(gw, id, "completed", 20_000)
      expect(yield* run(recipientCounts(id))).toEqual({ submitted: 40 })
      expectEachOnce(yield* eventually("40 texts", receivedTexts(gw.sim, id), { until: (m) => m.size >= 40 }), id, 40)
    }).pipe(Effect.scoped), 60_000)

  it.live("policy refusals are counted by reason with their rule and not retried; a refusal ratio pauses the campaign by itself", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway()
      const ops = yield* superadmin(gw.baseUrl)
      const t = yield* signUp(gw.baseUrl)
      const run = within(gw)
      const control = yield* run(Effect.service(CampaignControl))
      const policy = {
        blacklists: [{ name: "optout", org: t.orgId, object: null }],
        rules: [
          { id: "optout", scope: { org: t.orgId }, type: "blacklist", lists: ["optout"] },
          { id: "cap-day", type: "frequency_cap", max: 1, window: "day" }
        ]
      }
      expect((yield* send("PUT", `${gw.baseUrl}/v1/policies`, policy, ops)).status).toBe(200)
      const contacts = germanContacts(100, 1_000)
      const optedOut = contacts.slice(0, 5).map((c) => `+${c.msisdn}`)
      expect((yield* post(`${gw.baseUrl}/v1/blacklists/optout/entries`, { numbers: optedOut }, t.userAuth)).status).toBe(200)
      // Ten recipients had their message of the day already.
      for (const c of contacts.slice(5, 15)) {
        expect((yield* post(`${gw.baseUrl}/v1/messages`, { to: `+${c.msisdn}`, from: "ACME", text: "earlier today" }, t.auth)).status).toBe(202)
      }
      const list = yield* run(seedList(t.orgId, contacts))
      const id = yield* run(approvedCampaign(t.orgId, t.appId, { lists: [list], throttle: 100 }))
      yield* run(control.start(id))
      yield* waitState(gw, id, "completed", 30_000)
      expect(yield* run(recipientCounts(id))).toEqual({
        submitted: 85,
        excluded: 5,
        "excluded:blacklisted": 5,
        refused: 10,
        "refused:frequency_cap": 10
      })
      const rows = yield* run(Effect.flatMap(Effect.service(SqlClient.SqlClient), (sql) =>
        sql<{ state: string; rule_id: string | null; attempts: number | string }>`
          SELECT state, rule_id, attempts FROM campaign_recipients WHERE campaign_id = ${id} AND state <> 'submitted'`
      )).pipe(Effect.orDie)
      expect(new Set(rows.map((r) => `${r.state}:${r.rule_id}`))).toEqual(new Set(["excluded:optout", "refused:cap-day"]))
      // Tried once each, never again.
      expect(rows.every((r) => Number(r.attempts) === 1)).toBe(true)
      expect((yield* eventually("85 texts", receivedTexts(gw.sim, id), { until: (m) => m.size === 85 })).size).toBe(85)

      // The same audience again: everyone is capped or opted out now; the refusal ratio trips after 20 attempts.
      const again = yield* run(approvedCampaign(t.orgId, t.appId, { lists: [list], throttle: 100, autoPause: { refusalRatio: 0.5, minAttempts: 20 } }))
      yield* run(control.start(again))
      const paused = yield* waitState(gw, again, "paused", 30_000)
      expect(paused.pauseReason?.kind).toBe("auto")
      expect(paused.pauseReason?.detail).toContain("refusal ratio")
      const counts = yield* run(recipientCounts(again))
      expect(counts.submitted ?? 0).toBe(0)
      expect(counts.pending).toBeGreaterThan(0)
    }).pipe(Effect.scoped), 60_000)

  it.live("a recipient whose message was accepted before a crash is marked submitted, not sent again", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway()
      const t = yield* signUp(gw.baseUrl)
      const run = within(gw)
      const control = yield* run(Effect.service(CampaignControl))
      const list = yield* run(seedList(t.orgId, germanContacts(10, 2_000)))
      const id = yield* run(approvedCampaign(t.orgId, t.appId, { lists: [list], throttle: 100 }))
      const campaign = yield* run(Effect.flatMap(Effect.service(CampaignStore), (s) => s.get(t.orgId, id))).pipe(Effect.orDie)
      // What a runner killed between submit and record leaves: the first recipient's message stored under its derived
      // id; the second's under the form ids had before they were time-ordered (a batch in flight across an upgrade).
      const messageId = campaignMessageId(campaign, 0, 0)
      const legacyId = legacyCampaignMessageId(id, 1, 0)
      const contacts = germanContacts(2, 2_000)
      for (const [n, stored] of [messageId, legacyId].entries()) {
        yield* run(Effect.flatMap(Effect.service(SqlClient.SqlClient), (sql) =>
          sql`INSERT INTO messages ${sql.insert({
            id: stored,
            org_id: t.orgId,
            app_id: t.appId,
            campaign_id: id,
            to_addr: contacts[n]!.msisdn,
            from_addr: "ACME",
            text: `${id} hello ${2000 + n}`,
            encoding: "gsm7",
            segments: 1,
            status: "delivered",
            status_rank: 3,
            created_at: Date.now(),
            updated_at: Date.now()
          })}`
        )).pipe(Effect.orDie)
      }
      yield* run(control.start(id))
      yield* waitState(gw, id, "completed", 30_000)
      expect(yield* run(recipientCounts(id))).toEqual({ submitted: 10 })
      const view = yield* run(control.inspect(id))
      expect(view.recoveredSubmitted).toBe(2)
      const texts = yield* eventually("8 texts", receivedTexts(gw.sim, id), { until: (m) => m.size === 8 })
      expect(texts.has(`${id} hello 2000`)).toBe(false)
      expect(texts.has(`${id} hello 2001`)).toBe(false)
      const recorded = yield* run(Effect.flatMap(Effect.service(SqlClient.SqlClient), (sql) =>
        sql<{ pos: number; message_id: string }>`
          SELECT pos, message_id FROM campaign_recipients WHERE campaign_id = ${id} AND pos < 2 ORDER BY pos`
      )).pipe(Effect.orDie)
      expect(recorded.map((r) => r.message_id)).toEqual([messageId, legacyId])
      // The others were sent under the time-ordered form: ids of the campaign's creation time, in position order.
      const sent = yield* run(Effect.flatMap(Effect.service(SqlClient.SqlClient), (sql) =>
        sql<{ message_id: string }>`
          SELECT message_id FROM campaign_recipients WHERE campaign_id = ${id} AND pos >= 2 ORDER BY pos`
      )).pipe(Effect.orDie)
      expect(sent.map((r) => r.message_id)).toEqual(Array.from({ length: 8 }, (_, i) => campaignMessageId(campaign, i + 2, 0)))
      expect([...sent.map((r) => r.message_id)].sort()).toEqual(sent.map((r) => r.message_id))
    }).pipe(Effect.scoped), 60_000)

  it.live("a scheduled campaign starts at its time (policy clock moved), not before", () =>
    Effect.gen(function*() {
      let now = Date.parse("2026-05-04T08:00:00Z")
      const gw = yield* startGateway({ clock: { now: () => now } })
      const t = yield* signUp(gw.baseUrl)
      const run = within(gw)
      const control = yield* run(Effect.service(CampaignControl))
      const list = yield* run(seedList(t.orgId, germanContacts(20, 3_000)))
      const startTime = Date.parse("2026-05-04T09:00:00Z")
      const id = yield* run(approvedCampaign(t.orgId, t.appId, {
        lists: [list],
        throttle: 100,
        startAt: { at: "2026-05-04T11:00", timeZone: "Europe/Berlin" },
        startTime
      }))
      expect((yield* run(control.start(id))).state).toBe("scheduled")
      // The supervisor wakes it every second; three looks at it, and it still waits.
      for (let i = 0; i < 3; i++) {
        yield* Effect.sleep("1 second")
        expect((yield* run(campaignOf(id))).state).toBe("scheduled")
      }
      expect(yield* run(campaignMessages(id))).toBe(0)
      now = startTime + 1_000
      const done = yield* waitState(gw, id, "completed", 20_000)
      expect(done.startedAt).toBeGreaterThan(0)
      expect(yield* run(recipientCounts(id))).toEqual({ submitted: 20 })
    }).pipe(Effect.scoped), 60_000)

  it.live("failures over the ratio pause the campaign by itself; a disabled app pauses it too", () =>
    Effect.gen(function*() {
      // Only numbers from the United Kingdom have a route: the German audience fails with no_route.
      const gw = yield* startGateway({ config: { routes: [{ id: "uk", match: { prefixes: ["44"] }, target: { link: "sim" } }] } })
      const t = yield* signUp(gw.baseUrl)
      const run = within(gw)
      const control = yield* run(Effect.service(CampaignControl))
      const list = yield* run(seedList(t.orgId, germanContacts(200, 4_000)))
      const id = yield* run(approvedCampaign(t.orgId, t.appId, { lists: [list], throttle: 100, autoPause: { failureRatio: 0.2, minAttempts: 20 } }))
      yield* run(control.start(id))
      const paused = yield* waitState(gw, id, "paused", 30_000)
      expect(paused.pauseReason).toEqual({ kind: "auto", detail: expect.stringContaining("failure ratio 100 %") })
      const counts = yield* run(recipientCounts(id))
      expect(counts["failed:no_route"]).toBeGreaterThanOrEqual(20)
      expect(counts.pending).toBeGreaterThan(0)

      // A campaign whose app was disabled pauses as it starts, naming the app, and sends nothing.
      const routed = yield* run(seedList(t.orgId, [{ msisdn: "447911123456", country: "GB", vars: { n: "0" } }]))
      const second = yield* run(approvedCampaign(t.orgId, t.appId, { lists: [routed], throttle: 10 }))
      expect((yield* send("PATCH", `${gw.baseUrl}/v1/apps/${t.appId}`, { active: false }, t.userAuth)).status).toBe(200)
      yield* run(control.start(second))
      const stopped = yield* waitState(gw, second, "paused", 15_000)
      expect(stopped.pauseReason).toEqual({ kind: "auto", detail: `app ${t.appId} is disabled` })
      expect(yield* run(campaignMessages(second))).toBe(0)
    }).pipe(Effect.scoped), 60_000)
})
