/**
 * The live dashboard and a campaign's health through the embedded gateway and its simulators (issue 14): messages
 * sent move the stream's figures (accepted, delivered, time to receipt), a policy refusal appears with its reason and
 * rule, an SMSC refusal with its SMPP status; another organisation sees nothing of them; viewers read, app tokens are
 * refused; a superadmin also sees each link's state and each pool's weights. A campaign's health names the pool and
 * links its messages use with the campaign's own share only.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Schema } from "effect"
import { CampaignHealthView, DashboardView } from "../../src/domain/Dashboard.ts"
import { CampaignControl } from "../../src/pipeline/CampaignControl.ts"
import { approvedCampaign, campaignOf, germanContacts, seedList } from "../fixtures/Campaigns.ts"
import { eventually } from "../fixtures/Eventually.ts"
import type { PooledGateway, Tenant } from "../fixtures/Gateway.ts"
import { get, post, send, signUp, startPooledGateway, superadmin, waitForStatus } from "../fixtures/Gateway.ts"
import { startMailbox, tokenIn } from "../fixtures/Mailbox.ts"
import type { Mailbox } from "../fixtures/Mailbox.ts"
import { expectProblem } from "../fixtures/Problems.ts"

/** Answers are read through the API's own schemas: a figure missing or mistyped fails the test. */
const asDashboard = Schema.decodeUnknownSync(DashboardView)
const asHealth = Schema.decodeUnknownSync(CampaignHealthView)

/**
 * Reads Server-Sent Events until one satisfies `until` (then stops reading) or `timeoutMs` passes; every event read is
 * kept, so a test sees how the figures moved.
 */
const watch = <A>(
  url: string,
  headers: Record<string, string>,
  decode: (data: unknown) => A,
  until: (event: A) => boolean,
  timeoutMs = 20_000
) =>
  Effect.promise(async () => {
    const abort = new AbortController()
    const timer = setTimeout(() => abort.abort(), timeoutMs)
    const events: Array<A> = []
    let status = 0
    let contentType: string | null = null
    try {
      const response = await fetch(url, { headers, signal: abort.signal })
      status = response.status
      contentType = response.headers.get("content-type")
      const reader = response.body?.getReader()
      if (reader === undefined) return { status, contentType, events, matched: false }
      const decoder = new TextDecoder()
      let buffer = ""
      for (;;) {
        const { done, value } = await reader.read()
        if (done) return { status, contentType, events, matched: false }
        buffer += decoder.decode(value, { stream: true })
        let end = buffer.indexOf("\n\n")
        while (end !== -1) {
          const data = buffer.slice(0, end).split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n")
          buffer = buffer.slice(end + 2)
          if (data !== "") {
            const event = decode(JSON.parse(data))
            events.push(event)
            if (until(event)) {
              await reader.cancel()
              return { status, contentType, events, matched: true }
            }
          }
          end = buffer.indexOf("\n\n")
        }
      }
    } catch {
      return { status, contentType, events, matched: false }
    } finally {
      clearTimeout(timer)
    }
  })

/** A member of `owner`'s organisation with `role`, invited by mail; its Authorization header. */
const invite = (gw: PooledGateway, mailbox: Mailbox, owner: Tenant, role: string) =>
  Effect.gen(function*() {
    const email = `${role}-${crypto.randomUUID().slice(0, 6)}@example.com`
    expect((yield* post(`${gw.baseUrl}/v1/members`, { email, role }, owner.userAuth)).status).toBe(202)
    const invitationToken = tokenIn(yield* mailbox.waitFor(email, "Invitation"), "inv")
    expect((yield* post(`${gw.baseUrl}/v1/auth/register`, { email, password: "another good password", name: role, invitationToken })).status).toBe(201)
    const login = yield* post(`${gw.baseUrl}/v1/auth/token`, { email, password: "another good password" })
    return { authorization: `Bearer ${String(login.json.accessToken)}` }
  })

const sendSms = (gw: PooledGateway, t: Tenant, to: string, text = "dashboard test") =>
  post(`${gw.baseUrl}/v1/messages`, { to, from: "ACME", text }, t.auth)

const pooled = (mailbox?: Mailbox) =>
  startPooledGateway({
    links: [{ id: "a" }, { id: "b" }],
    pools: [{ id: "main", members: [{ link: "a", weight: 3 }, { link: "b", weight: 1 }] }],
    routes: [{ id: "default", match: {}, target: { pool: "main" } }],
    ...(mailbox !== undefined ? { config: { mail: { smtp: { host: "127.0.0.1", port: mailbox.port, secure: false } } } } : {})
  })


const dashboard = (base: string, auth: Record<string, string>) => Effect.map(get(`${base}/v1/dashboard`, auth), (r) => asDashboard(r.json))
const health = (base: string, id: string, auth: Record<string, string>) =>
  Effect.map(get(`${base}/v1/campaigns/${id}/health`, auth), (r) => asHealth(r.json))

const nothing = { accepted: 0, submitted: 0, delivered: 0, undelivered: 0, expired: 0, failed: 0, refused: 0 }

describe("the live dashboard (issue 14)", () => {
  it.live("sent messages move the stream's figures; refusals and SMPP errors appear by reason; other organisations see none of it", () =>
    Effect.gen(function*() {
      const mailbox = yield* startMailbox
      const gw = yield* pooled(mailbox)
      const base = gw.baseUrl
      const ops = yield* superadmin(base)
      const a = yield* signUp(base)
      const b = yield* signUp(base)
      const viewer = yield* invite(gw, mailbox, a, "viewer")
      // A's recipients get one message per hour: the second to a number is refused by rule `one-an-hour`.
      const policy = yield* send("PUT", `${base}/v1/policies`, {
        rules: [{ id: "one-an-hour", scope: { org: a.orgId }, type: "frequency_cap", max: 1, window: "rolling", windowSeconds: 3600 }]
      }, ops)
      expect(policy.status, JSON.stringify(policy.json)).toBe(200)

      // Before: nothing counted, an hour of empty minutes.
      const before = yield* dashboard(base, a.userAuth)
      expect(before.window.totals).toEqual(nothing)
      expect(before.series).toHaveLength(60)
      expect(before.operator).toBeUndefined()

      // The stream is open while the messages go: its figures move without a new request.
      const live = yield* Effect.forkChild(watch(`${base}/v1/dashboard/stream`, viewer, asDashboard, (e) =>
        e.window.totals.delivered >= 5 && e.window.receipt.count >= 5 && e.window.refusals.length > 0))
      const ids: Array<string> = []
      for (let i = 0; i < 5; i++) {
        const sent = yield* sendSms(gw, a, `+4915112${String(300_000 + i)}`)
        expect(sent.status, JSON.stringify(sent.json)).toBe(202)
        ids.push(String(sent.json.id))
      }
      const refused = yield* sendSms(gw, a, "+4915112300000")
      expect(refused.status).toBe(422)
      expect(refused.json.reason).toBe("frequency_cap")
      for (const id of ids) yield* waitForStatus(base, id, "delivered", 10_000, a.auth)
      const stream = yield* Fiber.join(live)
      expect(stream.status).toBe(200)
      expect(stream.contentType).toContain("text/event-stream")
      const first = stream.events[0]
      const last = stream.events.at(-1)
      if (first === undefined || last === undefined) throw new Error("no event")
      expect(stream.matched, JSON.stringify(last)).toBe(true)
      expect(first.window.totals.delivered).toBeLessThan(5)
      expect(last.window.totals).toMatchObject({ accepted: 5, delivered: 5, refused: 1, failed: 0 })
      expect(last.window.refusals).toEqual([{ reason: "frequency_cap", ruleId: "one-an-hour", count: 1 }])
      // The simulator answers after 50 ms: the time to receipt is that and the path through the gateway, not zero.
      expect(last.window.receipt.p50Ms).toBeGreaterThan(20)
      expect(last.window.receipt.p95Ms).toBeGreaterThanOrEqual(last.window.receipt.p50Ms ?? 0)
      expect(last.window.deliveryRate).toBe(1)
      expect(last.series).toHaveLength(2)
      expect(last.series.reduce((n, p) => n + p.delivered, 0)).toBe(5)
      expect(last.orgId).toBe(a.orgId)
      expect(last.operator).toBeUndefined()

      // The rates follow the last complete seconds: they rise with the traffic.
      const rising = yield* eventually("accepted per second above zero", dashboard(base, a.userAuth), { until: (v) => v.rates.accepted > 0 })
      expect(rising.rates.accepted).toBeLessThanOrEqual(5)

      // An SMSC refusal: counted by its command status.
      yield* Effect.forEach(Object.values(gw.sims), (sim) => sim.setFaults({ submitStatus: 0x0b }))
      const bad = yield* sendSms(gw, a, "+4915112399999")
      expect(bad.status).toBe(202)
      yield* waitForStatus(base, String(bad.json.id), "failed", 10_000, a.auth)
      const errors = yield* eventually("the refusal in the figures", dashboard(base, a.userAuth), { until: (v) => v.window.totals.failed === 1 })
      expect(errors.window.errors).toEqual([{ kind: "failed", status: "ESME_RINVDSTADR", count: 1 }])
      expect(errors.window.deliveryRate).toBeCloseTo(5 / 6)

      // Another organisation: nothing of A's, on the snapshot and the stream.
      const other = yield* dashboard(base, b.userAuth)
      expect(other.window.totals).toEqual(nothing)
      expect(other.window).toMatchObject({ errors: [], refusals: [], receipt: { count: 0 } })
      expect(other.rates).toEqual({ accepted: 0, submitted: 0, delivered: 0, refused: 0 })
      expect(other.series.every((p) => p.accepted === 0 && p.delivered === 0 && p.refused === 0)).toBe(true)
      const otherStream = yield* watch(`${base}/v1/dashboard/stream`, b.userAuth, asDashboard, () => true)
      expect(otherStream.events[0]?.window.totals).toEqual(nothing)

      // A superadmin also sees every link and pool: state, window, queue, rate, weights.
      const operator = yield* eventually("links with their traffic", Effect.map(dashboard(base, ops), (v) => v.operator), {
        until: (o) => o.links.every((l) => l.state === "bound") && o.links.reduce((n, l) => n + l.figures.totals.submitted, 0) >= 5
      })
      expect(operator.links.map((l) => l.linkId)).toEqual(["a", "b"])
      expect(operator.links[0]).toMatchObject({ enabled: true, bound: true, window: 10, tps: 1000, throttled: false, queued: 0 })
      expect(operator.pools).toEqual([{
        poolId: "main",
        members: [
          expect.objectContaining({ linkId: "a", configuredWeight: 3, state: "bound" }),
          expect.objectContaining({ linkId: "b", configuredWeight: 1, state: "bound" })
        ]
      }])
      const opsStream = yield* watch(`${base}/v1/dashboard/stream`, ops, asDashboard, () => true)
      expect(opsStream.events[0]?.operator?.links).toHaveLength(2)

      // Access: viewers read; app tokens and anonymous callers do not.
      expect((yield* get(`${base}/v1/dashboard`, viewer)).status).toBe(200)
      expectProblem(yield* get(`${base}/v1/dashboard`, a.auth), 403, "forbidden")
      expectProblem(yield* get(`${base}/v1/dashboard/stream`, a.auth), 403, "forbidden")
      expect((yield* get(`${base}/v1/dashboard`)).status).toBe(401)

      // The OpenAPI document describes both.
      const openapi = yield* get(`${base}/openapi.json`)
      const paths = openapi.json.paths as Record<string, { get?: { description?: string; responses: Record<string, { content?: object }> } }>
      expect(Object.keys(paths["/v1/dashboard/stream"]?.get?.responses["200"]?.content ?? {})).toEqual(["text/event-stream"])
      expect(paths["/v1/dashboard"]?.get?.description).toContain("operator")
    }).pipe(Effect.scoped), 90_000)

  it.live("a campaign's health: the pool and links its messages use, its own share of them, their state; another organisation gets 404", () =>
    Effect.gen(function*() {
      const gw = yield* pooled()
      const base = gw.baseUrl
      const a = yield* signUp(base)
      const b = yield* signUp(base)
      const run = <A, E, R>(effect: Effect.Effect<A, E, R>) => effect.pipe(Effect.provideContext(gw.context)) as Effect.Effect<A, E, never>

      // The organisation's own messages on the same links are not the campaign's.
      for (let i = 0; i < 4; i++) expect((yield* sendSms(gw, a, `+4915112${String(400_000 + i)}`)).status).toBe(202)
      const list = yield* run(seedList(a.orgId, germanContacts(40)))
      const id = yield* run(approvedCampaign(a.orgId, a.appId, { lists: [list], throttle: 100 }))

      const empty = yield* health(base, id, a.userAuth)
      expect(empty).toMatchObject({ campaignId: id, state: "approved", throttle: 100, links: [], pools: [] })
      expect(empty.window.totals).toEqual(nothing)

      const control = yield* run(Effect.service(CampaignControl))
      yield* run(control.start(id))
      yield* eventually(`campaign ${id} completed`, run(campaignOf(id)), { timeout: 30_000, interval: 200, until: (c) => c.state === "completed" })
      const done = yield* eventually("the campaign's 40 delivered", health(base, id, a.userAuth), { until: (v) => v.window.totals.delivered === 40 })
      expect(done.state).toBe("completed")
      expect(done.window.totals).toMatchObject({ accepted: 40, submitted: 40, delivered: 40, failed: 0 })
      expect(done.links.map((l) => l.linkId)).toEqual(["a", "b"])
      for (const link of done.links) {
        expect(link).toMatchObject({ state: "bound", throttled: false })
        expect(link.figures.receipt.count).toBe(link.figures.totals.delivered)
      }
      // Only the campaign's messages: the organisation's four others on the same links are not in it.
      expect(done.links.reduce((n, l) => n + l.figures.totals.submitted, 0)).toBe(40)
      expect(done.pools).toEqual([{
        poolId: "main",
        members: [
          expect.objectContaining({ linkId: "a", configuredWeight: 3, state: "bound" }),
          expect.objectContaining({ linkId: "b", configuredWeight: 1, state: "bound" })
        ]
      }])
      expect(done.pools[0]?.members.reduce((n, m) => n + m.submitted, 0)).toBe(40)
      expect(done.window.receipt.count).toBe(40)

      const stream = yield* watch(`${base}/v1/campaigns/${id}/health/stream`, a.userAuth, asHealth, () => true)
      expect(stream.status).toBe(200)
      expect(stream.events[0]?.links).toHaveLength(2)

      // Another organisation's campaign is as unknown as a missing one; app tokens are refused.
      expectProblem(yield* get(`${base}/v1/campaigns/${id}/health`, b.userAuth), 404, "not-found")
      expectProblem(yield* get(`${base}/v1/campaigns/${id}/health/stream`, b.userAuth), 404, "not-found")
      expectProblem(yield* get(`${base}/v1/campaigns/nope/health`, a.userAuth), 404, "not-found")
      expectProblem(yield* get(`${base}/v1/campaigns/${id}/health`, a.auth), 403, "forbidden")
    }).pipe(Effect.scoped), 90_000)
})
