/**
 * The Message Center's message search and message view against a real gateway (SQLite, the SMPP simulator): messages
 * sent through the API by two apps of one organisation, a campaign's and another organisation's; every filter, the
 * organisation and app scopes, paging with no duplicate and no gap, bad and unknown query keys named, and the view's
 * parts and timeline explaining a refusal (policy rule) and a failure (SMPP command_status).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { CampaignControl } from "../../src/pipeline/CampaignControl.ts"
import { approvedCampaign, campaignOf, germanContacts, seedList } from "../fixtures/Campaigns.ts"
import { eventually } from "../fixtures/Eventually.ts"
import { get, post, signUp, startGateway, waitForStatus } from "../fixtures/Gateway.ts"
import type { RunningGateway, Tenant } from "../fixtures/Gateway.ts"
import { expectProblem, fieldsOf } from "../fixtures/Problems.ts"

interface Summary {
  readonly id: string
  readonly to: string
  readonly status: string
  readonly appId?: string
  readonly campaignId?: string
  readonly clientRef?: string
  readonly reason?: string
  readonly ruleId?: string
  readonly createdAt: string
}

interface Page {
  readonly items: ReadonlyArray<Summary>
  readonly next?: string
}

const within = (gw: RunningGateway) => <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  effect.pipe(Effect.provideContext(gw.context)) as Effect.Effect<A, E, never>

const search = (gw: RunningGateway, auth: Record<string, string>, query: Record<string, string>) =>
  get(`${gw.baseUrl}/v1/messages?${new URLSearchParams(query).toString()}`, auth)

/** The ids a search finds (one page of up to 200), sorted, after checking the answer is a page. */
const found = (gw: RunningGateway, auth: Record<string, string>, query: Record<string, string>) =>
  Effect.map(search(gw, auth, { limit: "200", ...query }), (r) => {
    expect(r.status, `${JSON.stringify(query)}: ${r.text}`).toBe(200)
    const page = r.json as unknown as Page
    expect(page.next).toBeUndefined()
    const times = page.items.map((m) => Date.parse(m.createdAt))
    expect(times.every((t, i) => i === 0 || t <= (times[i - 1] ?? Infinity)), "newest first").toBe(true)
    return page.items.map((m) => m.id).sort()
  })

/** A second app of the tenant's organisation and its app token's Authorization header. */
const secondApp = (gw: RunningGateway, t: Tenant) =>
  Effect.gen(function*() {
    const app = yield* post(`${gw.baseUrl}/v1/apps`, { name: "second app", allowList: [] }, t.userAuth)
    const appId = String(app.json.id)
    const key = yield* post(`${gw.baseUrl}/v1/apps/${appId}/keys`, {}, t.userAuth)
    const token = yield* post(`${gw.baseUrl}/v1/auth/token`, { appId, apiKey: String(key.json.key) })
    return { appId, auth: { authorization: `Bearer ${String(token.json.accessToken)}` } }
  })

const submit = (gw: RunningGateway, auth: Record<string, string>, body: Record<string, unknown>) =>
  Effect.map(post(`${gw.baseUrl}/v1/messages`, { from: "ACME", text: "Hello", ...body }, auth), (r) => {
    expect([202, 422], JSON.stringify(r.json)).toContain(r.status)
    return String(r.status === 202 ? r.json.id : r.json.messageId)
  })

const sorted = (ids: ReadonlyArray<string>) => [...ids].sort()

describe("message search and view (REST, embedded gateway)", () => {
  it.live("every filter finds its messages of the organisation only; an app token sees its own app's", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({
        config: { policy: { rules: [{ id: "promo-once", classes: ["promotional"], type: "frequency_cap", max: 1, window: "hour" }] } }
      })
      const a = yield* signUp(gw.baseUrl)
      const b = yield* signUp(gw.baseUrl)
      const a2 = yield* secondApp(gw, a)

      const first = yield* submit(gw, a.auth, { to: "+4915112345601", clientRef: "order-1" })
      const second = yield* submit(gw, a.auth, { to: "+4915112345602", clientRef: "order-2" })
      const promo = yield* submit(gw, a.auth, { to: "+4915112345603", messageClass: "promotional" })
      const refused = yield* submit(gw, a.auth, { to: "+4915112345603", messageClass: "promotional" })
      const byApp2 = yield* submit(gw, a2.auth, { to: "+4915112345602", clientRef: "order-2" })
      const others = yield* submit(gw, b.auth, { to: "+4915112345602", clientRef: "order-2" })
      // A campaign of organisation a: its three messages carry its id.
      const run = within(gw)
      const list = yield* run(seedList(a.orgId, germanContacts(3)))
      const campaign = yield* run(approvedCampaign(a.orgId, a.appId, { lists: [list] }))
      const control = yield* run(Effect.service(CampaignControl))
      yield* run(control.start(campaign))
      yield* eventually(`campaign ${campaign} completed`, run(campaignOf(campaign)), { until: (c) => c.state === "completed" })
      const campaignIds = (yield* found(gw, a.userAuth, { campaignId: campaign }))
      expect(campaignIds).toHaveLength(3)
      for (const id of [first, second, promo, byApp2, ...campaignIds]) yield* waitForStatus(gw.baseUrl, id, "delivered", 10_000, a.userAuth)

      const all = [first, second, promo, refused, byApp2, ...campaignIds]
      expect(yield* found(gw, a.userAuth, {})).toEqual(sorted(all))
      expect(yield* found(gw, a.userAuth, { id: second })).toEqual([second])
      // The number is read as a submit reads it: spaces or 00 instead of + find the same messages.
      expect(yield* found(gw, a.userAuth, { to: "+49 151 12345602" })).toEqual(sorted([second, byApp2]))
      expect(yield* found(gw, a.userAuth, { to: "004915112345602" })).toEqual(sorted([second, byApp2]))
      expect(yield* found(gw, a.userAuth, { clientRef: "order-2" })).toEqual(sorted([second, byApp2]))
      expect(yield* found(gw, a.userAuth, { status: "rejected" })).toEqual([refused])
      expect(yield* found(gw, a.userAuth, { status: "delivered" })).toEqual(sorted(all.filter((id) => id !== refused)))
      expect(yield* found(gw, a.userAuth, { appId: a2.appId })).toEqual([byApp2])
      expect(yield* found(gw, a.userAuth, { appId: a.appId, to: "+4915112345602" })).toEqual([second])
      expect(yield* found(gw, a.userAuth, { campaignId: campaign, status: "delivered" })).toEqual(campaignIds)

      // Time range: since is inclusive, until exclusive, on the creation time the list shows.
      const page = (yield* search(gw, a.userAuth, { id: promo })).json as unknown as Page
      const promoAt = page.items[0]?.createdAt ?? ""
      const since = yield* found(gw, a.userAuth, { since: promoAt })
      const until = yield* found(gw, a.userAuth, { until: promoAt })
      expect(since).toContain(promo)
      expect(until).not.toContain(promo)
      expect(sorted([...since, ...until])).toEqual(sorted(all))
      expect(until).toContain(first)
      expect(yield* found(gw, a.userAuth, { since: "2000-01-01", until: "2000-01-02" })).toEqual([])

      // The refused message says why in the list too.
      const refusedRow = ((yield* search(gw, a.userAuth, { id: refused })).json as unknown as Page).items[0]
      expect(refusedRow).toMatchObject({ status: "rejected", reason: "frequency_cap", ruleId: "promo-once", to: "+4915112345603" })

      // Another organisation's message: never listed, its id finds nothing, its view is 404 — and b sees only its own.
      expect(yield* found(gw, a.userAuth, { id: others })).toEqual([])
      expectProblem(yield* get(`${gw.baseUrl}/v1/messages/${others}`, a.userAuth), 404, "not-found")
      expect(yield* found(gw, b.userAuth, {})).toEqual([others])
      expect(yield* found(gw, b.auth, { clientRef: "order-2" })).toEqual([others])

      // An app token: its own app's messages only, whatever it asks; naming another app is refused.
      expect(yield* found(gw, a2.auth, {})).toEqual([byApp2])
      expect(yield* found(gw, a2.auth, { to: "+4915112345602" })).toEqual([byApp2])
      expectProblem(yield* search(gw, a2.auth, { appId: a.appId }), 403, "forbidden")
      expectProblem(yield* get(`${gw.baseUrl}/v1/messages/${second}`, a2.auth), 404, "not-found")
      expect((yield* get(`${gw.baseUrl}/v1/messages/${byApp2}`, a2.auth)).status).toBe(200)
      // Without a token: 401.
      expect((yield* search(gw, {}, {})).status).toBe(401)
    }).pipe(Effect.scoped), 60_000)

  it.live("paging: pages of every size walk all messages once, newest first; bad and unknown query keys are named", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway()
      const t = yield* signUp(gw.baseUrl)
      // Sent concurrently: many share a creation millisecond, so pages end between ties.
      const sent = yield* Effect.forEach(
        Array.from({ length: 23 }, (_, i) => i),
        (i) => submit(gw, t.auth, { to: `+49151123456${String(i).padStart(2, "0")}` }),
        { concurrency: 8 }
      )
      for (const limit of [1, 5, 22, 23, 200]) {
        const seen: Array<string> = []
        let after: string | undefined
        let pages = 0
        do {
          const r = yield* search(gw, t.userAuth, { limit: String(limit), ...(after !== undefined ? { after } : {}) })
          expect(r.status, r.text).toBe(200)
          const page = r.json as unknown as Page
          pages++
          expect(page.items.length).toBeLessThanOrEqual(limit)
          seen.push(...page.items.map((m) => m.id))
          after = page.next
        } while (after !== undefined && pages < 50)
        expect(seen.length, `limit ${limit}`).toBe(23)
        expect(sorted(seen)).toEqual(sorted(sent))
        expect(pages).toBe(Math.ceil(23 / limit))
      }
      // No limit: 100 a page.
      expect(((yield* search(gw, t.userAuth, {})).json as unknown as Page).items).toHaveLength(23)

      const bad: Array<[Record<string, string>, string]> = [
        [{ limit: "0" }, "query.limit"],
        [{ limit: "201" }, "query.limit"],
        [{ limit: "ten" }, "query.limit"],
        [{ status: "lost" }, "query.status"],
        [{ to: "not a number" }, "query.to"],
        [{ since: "yesterday" }, "query.since"],
        [{ until: "2026-12-01T09:00:00" }, "query.until"],
        [{ after: "no-cursor" }, "query.after"],
        [{ recipient: "+4915112345601" }, "query.recipient"]
      ]
      for (const [query, field] of bad) {
        const r = yield* search(gw, t.userAuth, query)
        expectProblem(r, 400, "validation")
        expect(fieldsOf(r), JSON.stringify(query)).toContain(field)
      }
      // Every bad key at once, each named.
      const many = yield* search(gw, t.userAuth, { limit: "0", status: "lost", color: "red" })
      expect(fieldsOf(many).sort()).toEqual(["query.color", "query.limit", "query.status"])
    }).pipe(Effect.scoped), 60_000)

  it.live("a message's view: parts with link and SMSC id, a timeline of kinds; a failure names the SMPP command_status", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway()
      const t = yield* signUp(gw.baseUrl)
      const ok = yield* submit(gw, t.auth, { to: "+4915112345678", text: "x".repeat(200), clientRef: "two-parts" })
      const delivered = yield* waitForStatus(gw.baseUrl, ok, "delivered", 10_000, t.userAuth)
      expect(delivered).toMatchObject({ appId: t.appId, text: "x".repeat(200), segments: 2, messageClass: "transactional" })
      const parts = delivered.parts as ReadonlyArray<Record<string, unknown>>
      expect(parts.map((p) => [p.seq, p.linkId, p.status])).toEqual([[1, "sim", "delivered"], [2, "sim", "delivered"]])
      for (const p of parts) {
        expect(typeof p.smscMessageId).toBe("string")
        expect(Date.parse(String(p.doneAt))).toBeGreaterThanOrEqual(Date.parse(String(p.submittedAt)))
      }
      const events = delivered.events as ReadonlyArray<Record<string, unknown>>
      expect(events.map((e) => [e.kind, e.status])).toEqual([["accepted", "accepted"], ["submitted", "submitted"], ["receipt", "delivered"]])
      expect(events[1]).toMatchObject({ linkId: "sim" })

      yield* gw.sim.setFaults({ submitStatus: 0x0b })
      const refused = yield* submit(gw, t.auth, { to: "+4915112345679" })
      const failed = yield* waitForStatus(gw.baseUrl, refused, "failed", 10_000, t.userAuth)
      expect((failed.events as ReadonlyArray<Record<string, unknown>>).at(-1)).toMatchObject({
        kind: "failed",
        status: "failed",
        part: 1,
        linkId: "sim",
        commandStatus: 0x0b,
        commandStatusName: "ESME_RINVDSTADR"
      })
      expect(failed.parts).toEqual([expect.objectContaining({ seq: 1, status: "failed", error: "ESME_RINVDSTADR (0x0b)" })])
      expect(yield* found(gw, t.userAuth, { status: "failed" })).toEqual([refused])
    }).pipe(Effect.scoped), 60_000)
})
