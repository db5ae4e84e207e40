/**
 * The campaigns and moderation API through the embedded gateway (issue 13): approval rules for every role and setting,
 * self-approval refused, rejection with its reason, resubmission, impossible transitions, tenant isolation, the
 * creation checks, the test send to the simulator, statistics / messages / recipients / export / SSE, and a small
 * campaign run by its actor. Contact lists are written by SQL as the lists' store writes them (migration 0012,
 * numbers E.164 without "+"): the lists API has its own tests.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { join } from "node:path"
import { DatabaseSync } from "node:sqlite"
import { freshPgDatabase, pgUrl, tempDir } from "../fixtures/Databases.ts"
import { eventually } from "../fixtures/Eventually.ts"
import type { RunningGateway, Tenant } from "../fixtures/Gateway.ts"
import type { GatewayConfig } from "../../src/layers/Config.ts"
import { get, post, send, signUp, startGateway, superadmin, waitForStatus } from "../fixtures/Gateway.ts"
import { startMailbox, tokenIn } from "../fixtures/Mailbox.ts"
import type { Mailbox } from "../fixtures/Mailbox.ts"
import { expectProblem, fieldErrors, fieldsOf } from "../fixtures/Problems.ts"

const bearer = (token: string) => ({ authorization: `Bearer ${token}` })
type Reply = { readonly status: number; readonly json: Record<string, unknown> }
const expectStatus = (r: Reply, status: number) => expect(r.status, JSON.stringify(r.json)).toBe(status)

/** The gateway's own SQLite database, opened beside it (WAL: both see each other's commits). */
const database = (gw: RunningGateway) => {
  const db = new DatabaseSync(join(gw.dataDir, "gateway.db"))
  db.exec("PRAGMA busy_timeout = 5000")
  return db
}

/** A contact list of the organisation with its contacts (vars keys in lower case, as the import writes them). */
const addList = (
  db: DatabaseSync,
  orgId: string,
  contacts: ReadonlyArray<{ readonly msisdn: string; readonly vars?: Record<string, string> }>
) => {
  const id = `lst_${crypto.randomUUID().slice(0, 8)}`
  const now = Date.now()
  db.prepare("INSERT INTO contact_lists (id, org_id, name, contacts, columns, created_at, updated_at) VALUES (?, ?, ?, ?, '[]', ?, ?)")
    .run(id, orgId, "list", contacts.length, now, now)
  const insert = db.prepare("INSERT INTO contacts (list_id, pos, msisdn, country, vars, created_at) VALUES (?, ?, ?, 'DE', ?, ?)")
  contacts.forEach((c, i) => insert.run(id, i + 1, c.msisdn.replace(/^\+/, ""), JSON.stringify(c.vars ?? {}), now))
  return id
}

interface Person {
  readonly userId: string
  readonly auth: Record<string, string>
}

/** An organisation with one person of every role (invited by mail, registered with the token). */
const team = (gw: RunningGateway, mailbox: Mailbox) =>
  Effect.gen(function*() {
    const owner = yield* signUp(gw.baseUrl)
    const join = (role: string) =>
      Effect.gen(function*() {
        const email = `${role}-${crypto.randomUUID().slice(0, 6)}@example.com`
        expectStatus(yield* post(`${gw.baseUrl}/v1/members`, { email, role }, owner.userAuth), 202)
        const invitationToken = tokenIn(yield* mailbox.waitFor(email, "Invitation"), "inv")
        const registered = yield* post(`${gw.baseUrl}/v1/auth/register`, { email, password: "another good password", name: role, invitationToken })
        expectStatus(registered, 201)
        const login = yield* post(`${gw.baseUrl}/v1/auth/token`, { email, password: "another good password" })
        const person: Person = { userId: String((registered.json.user as { id: string }).id), auth: bearer(String(login.json.accessToken)) }
        return person
      })
    const me = (yield* get(`${gw.baseUrl}/v1/members`, owner.userAuth)).json as unknown as Array<{ userId: string }>
    return {
      owner: { userId: me[0]?.userId ?? "", auth: owner.userAuth } satisfies Person,
      tenant: owner,
      admin: yield* join("admin"),
      moderator: yield* join("moderator"),
      moderator2: yield* join("moderator"),
      member: yield* join("member"),
      member2: yield* join("member"),
      viewer: yield* join("viewer")
    }
  })

const withTeam = (config: Partial<GatewayConfig> = {}, simulator: { readonly receiptDelayMs?: number } = {}) => Effect.gen(function*() {
  const mailbox = yield* startMailbox
  const gw = yield* startGateway({ config: { mail: { smtp: { host: "127.0.0.1", port: mailbox.port, secure: false } }, ...config }, simulator })
  const t = yield* team(gw, mailbox)
  const db = database(gw)
  yield* Effect.addFinalizer(() => Effect.sync(() => db.close()))
  return { gw, t, db }
})

const spec = (tenant: Tenant, lists: ReadonlyArray<string>, extra: Record<string, unknown> = {}) => ({
  name: "Winter sale",
  appId: tenant.appId,
  sender: "ACME",
  template: "Hi {{firstname|there}}, 20% off until Sunday",
  lists,
  ...extra
})

describe("campaigns API: moderation (issue 13: approval rules for every role; self-approval refused; audit entries written)", () => {
  it.live("every role and every approval setting, self-approval refused, rejection seen and resubmitted, 409 and 404, all audited", () =>
    Effect.gen(function*() {
      const { gw, t, db } = yield* withTeam()
      const base = gw.baseUrl
      const list = addList(db, t.tenant.orgId, [{ msisdn: "+4915112345601", vars: { firstname: "Ada" } }])
      const create = (who: Person, extra: Record<string, unknown> = {}) =>
        Effect.map(post(`${base}/v1/campaigns`, spec(t.tenant, [list], extra), who.auth), (r) => {
          expectStatus(r, 201)
          expect(r.json.state).toBe("draft")
          return String(r.json.id)
        })
      const act = (who: Person, id: string, action: string, body: unknown = {}) => post(`${base}/v1/campaigns/${id}/${action}`, body, who.auth)
      const stateOf = (id: string) => Effect.map(get(`${base}/v1/campaigns/${id}`, t.viewer.auth), (r) => r.json.state)
      const setApproval = (approval: string) =>
        Effect.map(send("PUT", `${base}/v1/moderation/settings`, { approval, keywords: ["sale"], urls: [] }, t.admin.auth), (r) => expectStatus(r, 200))

      // Viewers read, never write.
      expectProblem(yield* post(`${base}/v1/campaigns`, spec(t.tenant, [list]), t.viewer.auth), 403, "forbidden")
      expectStatus(yield* get(`${base}/v1/campaigns`, t.viewer.auth), 200)
      expect((yield* get(`${base}/v1/moderation/settings`, t.viewer.auth)).json).toEqual({ approval: "members", keywords: [], urls: [] })

      // App tokens send messages; campaigns need a user.
      expectProblem(yield* get(`${base}/v1/campaigns`, t.tenant.auth), 403, "forbidden")

      // Default rule "members": a member's campaign waits; the member cannot approve it, nor can another member touch it.
      const byMember = yield* create(t.member)
      expectProblem(yield* send("PATCH", `${base}/v1/campaigns/${byMember}`, { name: "mine now" }, t.member2.auth), 403, "forbidden")
      // A moderator may fix a member's draft.
      expect((yield* send("PATCH", `${base}/v1/campaigns/${byMember}`, { name: "Winter sale (fixed)" }, t.moderator2.auth)).json.name).toBe("Winter sale (fixed)")
      expectProblem(yield* act(t.viewer, byMember, "submit"), 403, "forbidden")
      expectProblem(yield* act(t.member2, byMember, "submit"), 403, "forbidden")
      const submitted = yield* act(t.member, byMember, "submit")
      expectStatus(submitted, 200)
      expect(submitted.json.state).toBe("pending_approval")
      expect(submitted.json.flags).toEqual(["new sender: ACME has not been used by the organisation"])
      expectProblem(yield* act(t.member, byMember, "approve"), 403, "forbidden")
      expectProblem(yield* act(t.viewer, byMember, "approve"), 403, "forbidden")
      const queue = yield* get(`${base}/v1/moderation/queue`, t.moderator.auth)
      expectStatus(queue, 200)
      expect((queue.json as unknown as Array<{ id: string; flags: Array<string> }>).map((c) => c.id)).toEqual([byMember])
      expectProblem(yield* get(`${base}/v1/moderation/queue`, t.member.auth), 403, "forbidden")

      // Reject with a reason the creator sees; edit; resubmit; approve.
      expectProblem(yield* act(t.moderator, byMember, "reject", {}), 400, "validation")
      const rejected = yield* act(t.moderator, byMember, "reject", { reason: "Say which shops take part" })
      expectStatus(rejected, 200)
      const seen = yield* get(`${base}/v1/campaigns/${byMember}`, t.member.auth)
      expect([seen.json.state, seen.json.rejectionReason]).toEqual(["rejected", "Say which shops take part"])
      expectProblem(yield* act(t.moderator, byMember, "approve"), 409, "conflict")
      expectStatus(yield* send("PATCH", `${base}/v1/campaigns/${byMember}`, { template: "Hi {{firstname|there}}, 20% off in Berlin shops" }, t.member.auth), 200)
      const again = yield* act(t.member, byMember, "submit")
      expect([again.json.state, again.json.rejectionReason]).toEqual(["pending_approval", undefined])
      const approved = yield* act(t.moderator, byMember, "approve")
      expectStatus(approved, 200)
      expect([approved.json.state, approved.json.approvedBy]).toEqual(["approved", t.moderator.userId])
      expectProblem(yield* act(t.moderator, byMember, "approve"), 409, "conflict")
      expectProblem(yield* send("PATCH", `${base}/v1/campaigns/${byMember}`, { name: "late edit" }, t.member.auth), 409, "conflict")

      // A moderator's own campaign under "members" is approved at submission (audited as such).
      const byModerator = yield* create(t.moderator)
      expect((yield* act(t.moderator, byModerator, "submit")).json.state).toBe("approved")

      // "all": everyone waits, and nobody approves their own, not even an owner.
      yield* setApproval("all")
      const ownerCampaign = yield* create(t.owner)
      expect((yield* act(t.owner, ownerCampaign, "submit")).json.state).toBe("pending_approval")
      expectProblem(yield* act(t.owner, ownerCampaign, "approve"), 403, "forbidden")
      expect((yield* act(t.admin, ownerCampaign, "approve")).json.state).toBe("approved")
      const modCampaign = yield* create(t.moderator)
      expect((yield* act(t.moderator, modCampaign, "submit")).json.state).toBe("pending_approval")
      expectProblem(yield* act(t.moderator, modCampaign, "approve"), 403, "forbidden")
      expectProblem(yield* act(t.moderator, modCampaign, "reject", { reason: "mine" }), 403, "forbidden")
      expect((yield* act(t.moderator2, modCampaign, "approve")).json.state).toBe("approved")
      const adminCampaign = yield* create(t.admin)
      expect((yield* act(t.admin, adminCampaign, "submit")).json.state).toBe("pending_approval")
      expect((yield* act(t.owner, adminCampaign, "approve")).json.state).toBe("approved")

      // "promotional": a transactional campaign goes through, a promotional one waits.
      yield* setApproval("promotional")
      const transactional = yield* create(t.member, { messageClass: "transactional" })
      expect((yield* act(t.member, transactional, "submit")).json.state).toBe("approved")
      const promotional = yield* create(t.member)
      expect((yield* act(t.member, promotional, "submit")).json.state).toBe("pending_approval")

      // "none": even a member's campaign is approved at submission. (It starts next year: nothing is sent.)
      yield* setApproval("none")
      const free = yield* create(t.member, { startAt: { at: "2031-06-01T09:00", timeZone: "Europe/Berlin" } })
      expect((yield* act(t.member, free, "submit")).json.state).toBe("approved")

      // Only admins and owners change the settings; unknown fields are refused.
      expectProblem(yield* send("PUT", `${base}/v1/moderation/settings`, { approval: "none", keywords: [], urls: [] }, t.moderator.auth), 403, "forbidden")
      const extra = yield* send("PUT", `${base}/v1/moderation/settings`, { approval: "none", keywords: [], urls: [], auto: true }, t.owner.auth)
      expectProblem(extra, 400, "validation")
      expect(fieldsOf(extra)).toEqual(["auto"])

      // Start, pause, resume, cancel: each only from its states.
      expectProblem(yield* act(t.member, promotional, "start"), 409, "conflict")
      expect((yield* act(t.member, free, "start")).json.state).toBe("scheduled")
      expectProblem(yield* act(t.member, free, "resume"), 409, "conflict")
      expect((yield* act(t.member, free, "pause")).json.state).toBe("paused")
      expect((yield* act(t.member, free, "resume")).json.state).toBe("scheduled")
      expectProblem(yield* act(t.viewer, free, "cancel"), 403, "forbidden")
      expect((yield* act(t.member, free, "cancel")).json.state).toBe("cancelled")
      expectProblem(yield* act(t.member, free, "cancel"), 409, "conflict")
      expect(yield* stateOf(free)).toBe("cancelled")

      // Another organisation's ids are unknown, whatever its role there.
      const stranger = yield* signUp(base)
      expectProblem(yield* get(`${base}/v1/campaigns/${promotional}`, stranger.userAuth), 404, "not-found")
      expectProblem(yield* act({ userId: "", auth: stranger.userAuth }, promotional, "approve"), 404, "not-found")
      expectProblem(yield* get(`${base}/v1/campaigns/${promotional}/stats`, stranger.userAuth), 404, "not-found")
      expect((yield* get(`${base}/v1/campaigns`, stranger.userAuth)).json).toEqual([])
      expect(yield* stateOf(promotional)).toBe("pending_approval")

      // Every decision is in the audit log, with who took it.
      const audit = (yield* get(`${base}/v1/audit?limit=500`, t.owner.auth)).json as unknown as Array<{
        action: string
        target?: string
        actorUserId?: string
        detail?: string
      }>
      // Entries written in the same millisecond have no defined order: compared as sorted lists.
      const entries = (id: string) => audit.filter((e) => e.target === id).map((e) => `${e.action}:${e.actorUserId}`).sort()
      expect(entries(byMember)).toEqual([
        `campaign.created:${t.member.userId}`,
        `campaign.edited:${t.moderator2.userId}`,
        `campaign.submitted:${t.member.userId}`,
        `campaign.rejected:${t.moderator.userId}`,
        `campaign.edited:${t.member.userId}`,
        `campaign.submitted:${t.member.userId}`,
        `campaign.approved:${t.moderator.userId}`
      ].sort())
      expect(entries(byModerator)).toEqual([
        `campaign.created:${t.moderator.userId}`,
        `campaign.submitted:${t.moderator.userId}`,
        `campaign.auto_approved:${t.moderator.userId}`
      ].sort())
      expect(entries(free)).toEqual([
        `campaign.created:${t.member.userId}`,
        `campaign.submitted:${t.member.userId}`,
        `campaign.auto_approved:${t.member.userId}`,
        `campaign.started:${t.member.userId}`,
        `campaign.paused:${t.member.userId}`,
        `campaign.resumed:${t.member.userId}`,
        `campaign.cancelled:${t.member.userId}`
      ].sort())
      expect(audit.find((e) => e.action === "campaign.rejected" && e.target === byMember)?.detail).toBe("Say which shops take part")
      expect(audit.filter((e) => e.action === "moderation.settings_changed").map((e) => e.detail)).toEqual([
        "approval=none keywords=1 urls=0",
        "approval=promotional keywords=1 urls=0",
        "approval=all keywords=1 urls=0"
      ])
    }).pipe(Effect.scoped), 90_000)

  it.live("a moderator who rewrote or submitted someone's campaign does not approve it (403); another moderator does", () =>
    Effect.gen(function*() {
      const { gw, t, db } = yield* withTeam()
      const base = gw.baseUrl
      const list = addList(db, t.tenant.orgId, [{ msisdn: "+4915112345601", vars: { firstname: "Ada" } }])
      expectStatus(yield* send("PUT", `${base}/v1/moderation/settings`, { approval: "all", keywords: [], urls: [] }, t.admin.auth), 200)
      const act = (who: Person, id: string, action: string) => post(`${base}/v1/campaigns/${id}/${action}`, {}, who.auth)
      const draft = () => Effect.map(post(`${base}/v1/campaigns`, spec(t.tenant, [list]), t.member.auth), (r) => String(r.json.id))

      // Rewritten by a moderator, submitted by its member creator: that moderator is one of its authors.
      const rewritten = yield* draft()
      expectStatus(yield* send("PATCH", `${base}/v1/campaigns/${rewritten}`, { template: "Hi {{firstname|there}}, click here" }, t.moderator.auth), 200)
      expect((yield* act(t.member, rewritten, "submit")).json.state).toBe("pending_approval")
      const refused = yield* act(t.moderator, rewritten, "approve")
      expectProblem(refused, 403, "forbidden")
      expect(refused.json.detail).toBe("nobody approves a campaign they edited or submitted")
      expect((yield* act(t.moderator2, rewritten, "approve")).json.state).toBe("approved")

      // Submitted by a moderator on a member's behalf: not approved by the same moderator.
      const submitted = yield* draft()
      expect((yield* act(t.moderator, submitted, "submit")).json.state).toBe("pending_approval")
      expectProblem(yield* act(t.moderator, submitted, "approve"), 403, "forbidden")
      expect((yield* act(t.admin, submitted, "approve")).json.state).toBe("approved")
    }).pipe(Effect.scoped), 90_000)

  it.live("a member does not resume what a moderator paused; what the member paused, the member resumes", () =>
    Effect.gen(function*() {
      const { gw, t, db } = yield* withTeam()
      const base = gw.baseUrl
      const list = addList(db, t.tenant.orgId, [{ msisdn: "+4915112345601", vars: { firstname: "Ada" } }])
      const act = (who: Person, id: string, action: string) => post(`${base}/v1/campaigns/${id}/${action}`, {}, who.auth)
      // Scheduled for 2031: nothing is sent while it is paused and resumed.
      const created = yield* post(`${base}/v1/campaigns`, spec(t.tenant, [list], { startAt: { at: "2031-06-01T09:00", timeZone: "Europe/Berlin" } }), t.member.auth)
      const id = String(created.json.id)
      expect((yield* act(t.member, id, "submit")).json.state).toBe("pending_approval")
      expect((yield* act(t.moderator, id, "approve")).json.state).toBe("approved")
      expect((yield* act(t.member, id, "start")).json.state).toBe("scheduled")

      const paused = yield* act(t.moderator2, id, "pause")
      expect([paused.json.state, paused.json.pauseReason]).toEqual(["paused", { kind: "user", detail: "paused by a moderator" }])
      expectProblem(yield* act(t.member, id, "resume"), 403, "forbidden")
      expect((yield* act(t.moderator, id, "resume")).json.state).toBe("scheduled")

      expect((yield* act(t.member, id, "pause")).json.pauseReason).toEqual({ kind: "user", detail: "paused by a user" })
      expect((yield* act(t.member, id, "resume")).json.state).toBe("scheduled")
      expect((yield* act(t.member, id, "cancel")).json.state).toBe("cancelled")
    }).pipe(Effect.scoped), 90_000)
})

describe("campaigns API: listing", () => {
  it.live("the campaigns page newest first; before + beforeId skip none created in one millisecond, before alone as documented", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway()
      const owner = yield* signUp(gw.baseUrl)
      const db = database(gw)
      yield* Effect.addFinalizer(() => Effect.sync(() => db.close()))
      const base = `${gw.baseUrl}/v1/campaigns`
      const list = addList(db, owner.orgId, [{ msisdn: "+4915112345601" }])
      const ids: Array<string> = []
      for (let i = 0; i < 5; i++) {
        const created = yield* post(base, spec(owner, [list], { name: `c${i}` }), owner.userAuth)
        expectStatus(created, 201)
        ids.push(String(created.json.id))
      }
      // All five in one millisecond: only the id orders them, and a page of 2 ends inside the millisecond.
      db.prepare("UPDATE campaigns SET created_at = 1000 WHERE org_id = ?").run(owner.orgId)
      const newestFirst = [...ids].sort().reverse()
      type Listed = { readonly id: string; readonly createdAt: string }
      const page = (query: string) =>
        Effect.map(get(`${base}${query}`, owner.userAuth), (r) => {
          expectStatus(r, 200)
          return r.json as unknown as ReadonlyArray<Listed>
        })
      const seen: Array<string> = []
      let current = yield* page("?limit=2")
      for (;;) {
        seen.push(...current.map((c) => c.id))
        const last = current.at(-1)
        if (last === undefined || current.length < 2) break
        current = yield* page(`?limit=2&before=${encodeURIComponent(last.createdAt)}&beforeId=${last.id}`)
      }
      expect(seen).toEqual(newestFirst)
      // The documented `before` alone: campaigns created strictly before that time.
      expect(yield* page(`?before=${encodeURIComponent(new Date(1000).toISOString())}`)).toEqual([])
      expect((yield* page(`?before=${encodeURIComponent(new Date(1001).toISOString())}&state=draft`)).length).toBe(5)
      expect(fieldsOf(yield* get(`${base}?beforeId=${ids[0]}`, owner.userAuth))).toEqual(["query.beforeId"])
      expect(fieldsOf(yield* get(`${base}?before=soon`, owner.userAuth))).toEqual(["query.before"])
    }).pipe(Effect.scoped), 30_000)
})

describe("campaigns API: creation checks", () => {
  it.live("a missing variable names the rows; throttle above the app's limit, unknown lists, bad templates and start times name their field", () =>
    Effect.gen(function*() {
      const { gw, t, db } = yield* withTeam()
      const base = gw.baseUrl
      const good = addList(db, t.tenant.orgId, [{ msisdn: "+4915112345601", vars: { firstname: "Ada", code: "A1" } }])
      const gaps = addList(db, t.tenant.orgId, [
        { msisdn: "+4915112345602", vars: { firstname: "Bo", code: "B2" } },
        { msisdn: "+4915112345603", vars: { firstname: "Cy" } },
        { msisdn: "+4915112345604", vars: { firstname: "Di", code: "" } }
      ])
      const create = (body: Record<string, unknown>) => post(`${base}/v1/campaigns`, spec(t.tenant, [good, gaps], body), t.member.auth)

      const missing = yield* create({ template: "Hi {{FirstName}}, your code is {{code}} ({{shop|any shop}})" })
      expectProblem(missing, 400, "validation")
      expect(fieldErrors(missing)).toEqual([
        { field: "template", message: `{{code}} has no value and no default for list ${gaps} position 2 (+4915112345603)` },
        { field: "template", message: `{{code}} has no value and no default for list ${gaps} position 3 (+4915112345604)` }
      ])
      expectStatus(yield* create({ template: "Hi {{FirstName}}, your code is {{code|at the till}}" }), 201)

      // The app's per-second limit bounds the throttle.
      expectStatus(yield* send("PATCH", `${base}/v1/apps/${t.tenant.appId}`, { limits: { perSecond: 20 } }, t.owner.auth), 200)
      const fast = yield* create({ throttle: 50 })
      expectProblem(fast, 400, "validation")
      expect(fieldErrors(fast)[0]?.field).toBe("throttle")
      expect(fieldErrors(fast)[0]?.message).toContain("limit of 20")
      const within = yield* create({ throttle: 20 })
      expectStatus(within, 201)
      // An edit is checked the same way.
      const edited = yield* send("PATCH", `${base}/v1/campaigns/${String(within.json.id)}`, { throttle: 21 }, t.member.auth)
      expect(fieldsOf(edited)).toEqual(["throttle"])

      const other = yield* signUp(base)
      const foreign = addList(db, other.orgId, [{ msisdn: "+4915112345605" }])
      expect(fieldsOf(yield* post(`${base}/v1/campaigns`, spec(t.tenant, [good, foreign]), t.member.auth))).toEqual(["lists[1]"])
      expect(fieldsOf(yield* post(`${base}/v1/campaigns`, spec(other, [good]), t.member.auth))).toEqual(["appId"])
      const unclosed = yield* create({ template: "Hi {{firstname" })
      expect(fieldErrors(unclosed)).toEqual([{ field: "template", message: "at offset 3: a \"{{\" is not closed by \"}}\"" }])
      expect(fieldsOf(yield* create({ startAt: { at: "2030-01-01T09:00", timeZone: "Europe/Atlantis" } }))).toEqual(["startAt.timeZone"])
      expect(fieldsOf(yield* create({ startAt: { at: "2020-01-01T09:00", timeZone: "Europe/Berlin" } }))).toEqual(["startAt.at"])
      expect(fieldsOf(yield* create({ sender: "this sender is far too long" }))).toEqual(["sender"])
      expect(fieldErrors(yield* create({ template: "Hi {{firstname}} — ok", encoding: "gsm7" }))[0]?.message).toContain("\"—\" at offset 17")
      expect(fieldErrors(yield* create({ template: "Hi {{firstname|Zoë}}", encoding: "gsm7" }))[0]?.message).toBe(
        "character \"ë\" in the default of {{firstname}} is not in GSM 03.38; use encoding \"ucs2\" or \"auto\""
      )
      expect(fieldsOf(yield* create({ colour: "blue" }))).toEqual(["colour"])
      const later = yield* create({ startAt: { at: "2030-01-01T09:00", timeZone: "Europe/Berlin" } })
      expectStatus(later, 201)
      expect(later.json.startTime).toBe("2030-01-01T08:00:00.000Z")

      // The OpenAPI document describes the group, the stream and the export.
      const openapi = (yield* get(`${base}/openapi.json`)).json as { paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, unknown> }>; description?: string }>> }
      expect(Object.keys(openapi.paths)).toEqual(expect.arrayContaining([
        "/v1/campaigns",
        "/v1/campaigns/{id}",
        "/v1/campaigns/{id}/submit",
        "/v1/campaigns/{id}/approve",
        "/v1/campaigns/{id}/reject",
        "/v1/campaigns/{id}/test",
        "/v1/campaigns/{id}/stats/stream",
        "/v1/campaigns/{id}/recipients",
        "/v1/campaigns/{id}/export",
        "/v1/moderation/queue",
        "/v1/moderation/settings"
      ]))
      expect(Object.keys(openapi.paths["/v1/campaigns/{id}/stats/stream"]?.get?.responses["200"]?.content ?? {})).toEqual(["text/event-stream"])
      expect(Object.keys(openapi.paths["/v1/campaigns/{id}/export"]?.get?.responses["200"]?.content ?? {})).toEqual(["text/csv"])
      expect(openapi.paths["/v1/campaigns/{id}/approve"]?.post?.description).toContain("never one's own")
      expect(JSON.stringify(openapi.paths["/v1/moderation/settings"]?.put)).toContain("\"examples\":[{\"approval\":\"all\"")
    }).pipe(Effect.scoped), 60_000)
})

/** Reads Server-Sent Events until the stream ends or `max` events arrived; calls `onEvent` after each. */
const readEvents = (url: string, headers: Record<string, string>, onEvent: (n: number) => void, max = 30) =>
  Effect.promise(async () => {
    const response = await fetch(url, { headers })
    const events: Array<Record<string, unknown>> = []
    const reader = response.body?.getReader()
    if (reader === undefined) return { contentType: response.headers.get("content-type"), events, ended: false }
    const decoder = new TextDecoder()
    let buffer = ""
    while (events.length < max) {
      const { done, value } = await reader.read()
      if (done) return { contentType: response.headers.get("content-type"), events, ended: true }
      buffer += decoder.decode(value, { stream: true })
      let end = buffer.indexOf("\n\n")
      while (end !== -1) {
        const block = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n")
        if (data !== "") {
          events.push(JSON.parse(data) as Record<string, unknown>)
          onEvent(events.length)
        }
        end = buffer.indexOf("\n\n")
      }
    }
    await reader.cancel()
    return { contentType: response.headers.get("content-type"), events, ended: false }
  })

describe("campaigns API: test send and statistics", () => {
  it.live("a test send reaches the simulator rendered; stats, messages, recipients, export and SSE tell what happened", () =>
    Effect.gen(function*() {
      const { gw, t, db } = yield* withTeam()
      const base = gw.baseUrl
      const list = addList(db, t.tenant.orgId, [
        { msisdn: "+4915112345601", vars: { firstname: "Ada" } },
        { msisdn: "+4915112345602", vars: { firstname: "Bo" } }
      ])
      const created = yield* post(`${base}/v1/campaigns`, spec(t.tenant, [list], { template: "Hi {{firstname}}, see www.acme.example/sale" }), t.member.auth)
      const id = String(created.json.id)

      // The test send: the first contact's variables, or the ones given; one message, through the pipeline, audited.
      const sent = yield* post(`${base}/v1/campaigns/${id}/test`, { to: "+4915112345699" }, t.member.auth)
      expectStatus(sent, 202)
      expect(sent.json).toMatchObject({ to: "+4915112345699", text: "Hi Ada, see www.acme.example/sale", segments: 1, encoding: "gsm7" })
      const withVars = yield* post(`${base}/v1/campaigns/${id}/test`, { to: "+4915112345698", vars: { FirstName: "Zed" } }, t.member.auth)
      expectStatus(withVars, 202)
      const texts = yield* eventually("both test messages at the simulator", Effect.map(gw.sim.received, (received) => {
        const seen = received.map((m) => `${m.destinationAddr} ${m.sourceAddr} ${Buffer.from(m.shortMessage).toString("latin1")}`)
        return seen.length >= 2 ? seen : undefined
      }))
      expect(texts.sort()).toEqual(["4915112345698 ACME Hi Zed, see www.acme.example/sale", "4915112345699 ACME Hi Ada, see www.acme.example/sale"])
      yield* waitForStatus(base, String(sent.json.messageId), "delivered", 10_000, t.tenant.auth)
      expect(fieldsOf(yield* post(`${base}/v1/campaigns/${id}/test`, { to: "+4915112345698", vars: { name: "x" } }, t.member.auth))).toEqual(["vars"])
      expect(fieldsOf(yield* post(`${base}/v1/campaigns/${id}/test`, { to: "12" }, t.member.auth))).toEqual(["to"])
      expectProblem(yield* post(`${base}/v1/campaigns/${id}/test`, { to: "+4915112345698" }, t.viewer.auth), 403, "forbidden")
      // The test messages are not the campaign's.
      expect((yield* get(`${base}/v1/campaigns/${id}/stats`, t.viewer.auth)).json).toMatchObject({ audience: 0, submitted: 0, parts: 0 })

      // Submitted with a keyword set: the content check finds the link and the keyword; the sender is known now.
      expectStatus(yield* send("PUT", `${base}/v1/moderation/settings`, { approval: "all", keywords: ["SALE"], urls: ["acme.example"] }, t.admin.auth), 200)
      const submitted = yield* post(`${base}/v1/campaigns/${id}/submit`, {}, t.member.auth)
      expect(submitted.json.flags).toEqual([
        "keyword: \"SALE\"",
        "listed link: www.acme.example/sale (acme.example)",
        "link in text: www.acme.example/sale"
      ])
      expect(((yield* get(`${base}/v1/moderation/queue`, t.moderator.auth)).json as unknown as Array<{ flags: unknown }>)[0]?.flags).toEqual(submitted.json.flags)
      expect((yield* post(`${base}/v1/campaigns/${id}/test`, { to: "+4915112345698" }, t.member.auth)).status).toBe(202)
      expect((yield* post(`${base}/v1/campaigns/${id}/approve`, {}, t.moderator.auth)).json.state).toBe("approved")

      // What a run that paused leaves, written here (no actor runs a paused campaign): three recipients sent (real
      // messages, delivered by the simulator), one excluded by a blacklist, one refused by a cap, one deferred by the
      // send window.
      db.prepare("UPDATE campaigns SET state = 'paused', started_at = ?, pause_reason = ? WHERE id = ?")
        .run(Date.now(), JSON.stringify({ kind: "auto", detail: "refusal ratio 40 % above 30 %" }), id)
      expectProblem(yield* post(`${base}/v1/campaigns/${id}/test`, { to: "+4915112345698" }, t.member.auth), 409, "conflict")
      const ids: Array<string> = []
      for (const n of ["+4915112345611", "+4915112345612", "+4915112345613"]) {
        const r = yield* post(`${base}/v1/messages`, { to: n, from: "ACME", text: "Hi from the campaign" }, t.tenant.auth)
        expectStatus(r, 202)
        ids.push(String(r.json.id))
      }
      for (const m of ids) yield* waitForStatus(base, m, "delivered", 10_000, t.tenant.auth)
      const now = Date.now()
      for (const m of ids) db.prepare("UPDATE messages SET campaign_id = ? WHERE id = ?").run(id, m)
      const recipient = db.prepare(`INSERT INTO campaign_recipients (campaign_id, pos, msisdn, country, vars, state, next_at, attempts,
        message_id, reason, rule_id, updated_at) VALUES (?, ?, ?, 'DE', '{}', ?, ?, ?, ?, ?, ?, ?)`)
      recipient.run(id, 1, "4915112345611", "submitted", null, 1, ids[0] ?? "", null, null, now)
      recipient.run(id, 2, "4915112345612", "submitted", null, 1, ids[1] ?? "", null, null, now)
      recipient.run(id, 3, "4915112345620", "excluded", null, 0, null, "blacklisted", "dnc-list", now)
      recipient.run(id, 4, "4915112345613", "submitted", null, 1, ids[2] ?? "", null, null, now)
      recipient.run(id, 5, "4915112345621", "refused", null, 1, null, "frequency_cap", "promo-cap", now)
      recipient.run(id, 6, "4915112345622", "deferred", now + 3_600_000, 1, null, "send_window", "window", now)

      const stats = yield* get(`${base}/v1/campaigns/${id}/stats`, t.viewer.auth)
      expectStatus(stats, 200)
      expect(stats.json).toMatchObject({
        id,
        state: "paused",
        pauseReason: { kind: "auto", detail: "refusal ratio 40 % above 30 %" },
        audience: 6,
        recipients: { pending: 0, deferred: 1, excluded: 1, refused: 1, failed: 0, submitted: 3 },
        messages: { inFlight: 0, delivered: 3, undelivered: 0, expired: 0, failed: 0, rejected: 0 },
        submitted: 3,
        deliveryRate: 1,
        parts: 3
      })
      const receipt = stats.json.receipt as { count: number; medianMs: number; p95Ms: number }
      expect(receipt.count).toBe(3)
      expect(receipt.medianMs).toBeGreaterThanOrEqual(0)
      expect(receipt.p95Ms).toBeGreaterThanOrEqual(receipt.medianMs)
      expect(stats.json.reasons).toEqual(expect.arrayContaining([
        { state: "excluded", reason: "blacklisted", ruleId: "dnc-list", count: 1 },
        { state: "refused", reason: "frequency_cap", ruleId: "promo-cap", count: 1 },
        { state: "deferred", reason: "send_window", ruleId: "window", count: 1 }
      ]))

      const excluded = yield* get(`${base}/v1/campaigns/${id}/recipients?state=excluded`, t.viewer.auth)
      expect(excluded.json).toEqual({
        items: [expect.objectContaining({ position: 3, msisdn: "+4915112345620", state: "excluded", reason: "blacklisted", ruleId: "dnc-list" })]
      })
      const firstPage = yield* get(`${base}/v1/campaigns/${id}/recipients?limit=4`, t.viewer.auth)
      expect((firstPage.json.items as Array<{ position: number }>).map((r) => r.position)).toEqual([1, 2, 3, 4])
      expect(firstPage.json.next).toBe(4)
      const secondPage = yield* get(`${base}/v1/campaigns/${id}/recipients?limit=4&after=4`, t.viewer.auth)
      expect((secondPage.json.items as Array<{ position: number }>).map((r) => r.position)).toEqual([5, 6])
      expect(secondPage.json.next).toBeUndefined()
      const delivered = yield* get(`${base}/v1/campaigns/${id}/messages?status=delivered`, t.viewer.auth)
      expect((delivered.json.items as Array<{ messageId: string; status: string }>).map((m) => [m.messageId, m.status])).toEqual(ids.map((m) => [m, "delivered"]))
      expect((yield* get(`${base}/v1/campaigns/${id}/messages?status=failed`, t.viewer.auth)).json).toEqual({ items: [] })
      expect(fieldsOf(yield* get(`${base}/v1/campaigns/${id}/messages?status=lost`, t.viewer.auth))).toEqual(["query.status"])

      const csv = yield* Effect.promise(async () => {
        const response = await fetch(`${base}/v1/campaigns/${id}/export`, { headers: t.viewer.auth })
        return { status: response.status, type: response.headers.get("content-type"), text: await response.text() }
      })
      expect([csv.status, csv.type]).toEqual([200, "text/csv"])
      const lines = csv.text.trimEnd().split("\r\n")
      expect(lines[0]).toBe("position,msisdn,state,reason,rule_id,next_at,attempts,message_id,status,segments,message_reason,accepted_at,updated_at")
      expect(lines).toHaveLength(7)
      expect(lines[3]).toMatch(/^3,\+4915112345620,excluded,blacklisted,dnc-list,,0,,,,,,/)
      expect(lines[1]).toMatch(new RegExp(`^1,\\+4915112345611,submitted,,,,1,${ids[0]},delivered,1,,`))

      // SSE: the figures every second; the event showing the campaign completed is the last.
      const stream = yield* readEvents(`${base}/v1/campaigns/${id}/stats/stream`, t.viewer.auth, (n) => {
        if (n === 2) db.prepare("UPDATE campaigns SET state = 'completed', finished_at = ? WHERE id = ?").run(Date.now(), id)
      })
      expect(stream.contentType).toContain("text/event-stream")
      expect(stream.ended).toBe(true)
      expect(stream.events.map((e) => e.state)).toEqual(["paused", "paused", "completed"])
      expect(stream.events[0]).toMatchObject({ id, audience: 6, messages: { delivered: 3 } })
      expectProblem(yield* get(`${base}/v1/campaigns/${id}/stats/stream`, (yield* signUp(base)).userAuth), 404, "not-found")

      const audit = (yield* get(`${base}/v1/audit?limit=500`, t.owner.auth)).json as unknown as Array<{ action: string; target?: string; detail?: string }>
      const tests = audit.filter((e) => e.target === id && e.action === "campaign.test_sent").map((e) => e.detail)
      expect(tests).toHaveLength(3)
      expect(tests).toEqual(expect.arrayContaining([`message=${String(sent.json.messageId)}`, `message=${String(withVars.json.messageId)}`]))
      expect(audit.some((e) => e.target === id && e.action === "campaign.exported")).toBe(true)
    }).pipe(Effect.scoped), 90_000)
})

describe("campaigns API: the test-send quota (campaigns.testSendsPerDay) and the blacklist", () => {
  it.live("two test sends pass, the third is 429 with Retry-After until the oldest leaves the 24 h window; another user still sends; a blacklisted number is refused and not counted", () =>
    Effect.gen(function*() {
      const { gw, t, db } = yield* withTeam({ campaigns: { testSendsPerDay: 2 } })
      const base = gw.baseUrl
      const list = addList(db, t.tenant.orgId, [{ msisdn: "+4915112345601", vars: { firstname: "Ada" } }])
      const created = yield* post(`${base}/v1/campaigns`, spec(t.tenant, [list]), t.member.auth)
      expectStatus(created, 201)
      const id = String(created.json.id)
      const testTo = (who: Person, to: string) => post(`${base}/v1/campaigns/${id}/test`, { to }, who.auth)

      // The organisation's opt-out list holds one number: a test send to it is refused by the contact policy, as a
      // message would be, and does not use up the quota.
      const optout = {
        blacklists: [{ name: "optout", org: t.tenant.orgId, object: null }],
        rules: [{ id: "optout", scope: { org: t.tenant.orgId }, type: "blacklist", lists: ["optout"] }]
      }
      expectStatus(yield* send("PUT", `${base}/v1/policies`, optout, yield* superadmin(base)), 200)
      expect((yield* post(`${base}/v1/blacklists/optout/entries`, { numbers: ["+4915112345690"] }, t.owner.auth)).json).toEqual({ changed: 1 })
      const refused = yield* testTo(t.member, "+4915112345690")
      expectProblem(refused, 422, "policy-rejected")
      expect(refused.json).toMatchObject({ reason: "blacklisted", ruleId: "optout" })

      expectStatus(yield* testTo(t.member, "+4915112345691"), 202)
      expectStatus(yield* testTo(t.member, "+4915112345692"), 202)
      const over = yield* testTo(t.member, "+4915112345693")
      expectProblem(over, 429, "too-many-requests")
      expect(over.json.detail).toContain("test sends are limited to 2 per user per 24 hours")
      const retryAfter = Number(over.headers.get("retry-after"))
      expect(retryAfter).toBeGreaterThan(86_400 - 120)
      expect(retryAfter).toBeLessThanOrEqual(86_400)
      expect(over.json.retryAfterSeconds).toBe(retryAfter)

      // Another user of the organisation has a quota of their own.
      expectStatus(yield* testTo(t.moderator, "+4915112345694"), 202)

      // The oldest counted send, moved back to a minute before it leaves the window: Retry-After says that minute.
      const sends = () =>
        db.prepare("SELECT id, at FROM audit_log WHERE actor_user_id = ? AND action = 'campaign.test_sent' ORDER BY at")
          .all(t.member.userId) as Array<{ id: string; at: number }>
      expect(sends()).toHaveLength(2)
      const oldest = sends()[0]?.id ?? ""
      db.prepare("UPDATE audit_log SET at = ? WHERE id = ?").run(Date.now() - 86_400_000 + 60_000, oldest)
      const soon = yield* testTo(t.member, "+4915112345693")
      expectProblem(soon, 429, "too-many-requests")
      const soonAfter = Number(soon.headers.get("retry-after"))
      expect(soonAfter).toBeGreaterThanOrEqual(50)
      expect(soonAfter).toBeLessThanOrEqual(60)
      // Out of the window: one more passes, and the quota is full again.
      db.prepare("UPDATE audit_log SET at = ? WHERE id = ?").run(Date.now() - 86_400_000 - 1000, oldest)
      expectStatus(yield* testTo(t.member, "+4915112345693"), 202)
      expectProblem(yield* testTo(t.member, "+4915112345695"), 429, "too-many-requests")

    }).pipe(Effect.scoped), 90_000)
})

describe("campaigns API: the test-send quota on PostgreSQL", () => {
  it.live("twelve test sends of one user sent together: two pass, ten are 429 (no request passes the check before another is counted)", () =>
    Effect.gen(function*() {
      const database = yield* freshPgDatabase
      const runner = yield* tempDir
      const gw = yield* startGateway({
        config: {
          storage: { kind: "postgres", url: pgUrl(database), runnerPath: join(runner, "runner.db") },
          campaigns: { testSendsPerDay: 2 }
        }
      })
      const owner = yield* signUp(gw.baseUrl)
      const list = yield* post(`${gw.baseUrl}/v1/lists`, { name: "empty" }, owner.userAuth)
      expectStatus(list, 201)
      const created = yield* post(`${gw.baseUrl}/v1/campaigns`, spec(owner, [String(list.json.id)]), owner.userAuth)
      expectStatus(created, 201)
      const together = yield* Effect.all(
        Array.from({ length: 12 }, (_, i) => post(`${gw.baseUrl}/v1/campaigns/${String(created.json.id)}/test`, { to: `+49151123456${70 + i}` }, owner.userAuth)),
        { concurrency: "unbounded" }
      )
      expect(together.map((r) => r.status).sort()).toEqual([202, 202, ...Array.from({ length: 10 }, () => 429)])
    }).pipe(Effect.scoped), 90_000)
})

describe("campaigns API: a small campaign run by its actor", () => {
  it.live("created, approved and started through the API, it completes; stats, messages and SSE show exact figures", () =>
    Effect.gen(function*() {
      // Receipts come 2 s after each submit: the campaign completes (everything sent) before its last deliveries.
      const { gw, t, db } = yield* withTeam({}, { receiptDelayMs: 2_000 })
      const base = gw.baseUrl
      const list = addList(db, t.tenant.orgId, Array.from({ length: 5 }, (_, i) => ({ msisdn: `+49151123457${String(i).padStart(2, "0")}`, vars: { firstname: `P${i}` } })))
      const created = yield* post(`${base}/v1/campaigns`, spec(t.tenant, [list], { template: "Run {{firstname}}", throttle: 5 }), t.member.auth)
      const id = String(created.json.id)
      expect((yield* post(`${base}/v1/campaigns/${id}/submit`, {}, t.member.auth)).json.state).toBe("pending_approval")
      expect((yield* post(`${base}/v1/campaigns/${id}/approve`, {}, t.moderator.auth)).json.state).toBe("approved")
      expect((yield* post(`${base}/v1/campaigns/${id}/start`, {}, t.member.auth)).json.state).toBe("running")
      const stream = yield* readEvents(`${base}/v1/campaigns/${id}/stats/stream`, t.viewer.auth, () => undefined, 120)
      expect(stream.ended).toBe(true)
      // The stream outlives the completion until the last receipt: its last event has every message delivered.
      expect(stream.events.at(-1)).toMatchObject({ state: "completed", messages: { delivered: 5, inFlight: 0 } })
      const stats = yield* eventually("all five delivered", Effect.map(get(`${base}/v1/campaigns/${id}/stats`, t.viewer.auth), (r) => r.json), {
        until: (s) => (s.messages as { delivered: number }).delivered === 5
      })
      expect(stats).toMatchObject({
        state: "completed",
        audience: 5,
        recipients: { pending: 0, deferred: 0, excluded: 0, refused: 0, failed: 0, submitted: 5 },
        messages: { inFlight: 0, delivered: 5, undelivered: 0, expired: 0, failed: 0, rejected: 0 },
        submitted: 5,
        deliveryRate: 1,
        parts: 5,
        receipt: { count: 5 }
      })
      const texts = (yield* get(`${base}/v1/campaigns/${id}/messages?status=delivered`, t.viewer.auth)).json.items as Array<{ msisdn: string }>
      expect(texts.map((m) => m.msisdn)).toEqual(Array.from({ length: 5 }, (_, i) => `+49151123457${String(i).padStart(2, "0")}`))
    }).pipe(Effect.scoped), 90_000)
})
