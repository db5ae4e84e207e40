import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { get, post, send, signUp, startGateway } from "../fixtures/Gateway.ts"
import { startMailbox, tokenIn } from "../fixtures/Mailbox.ts"

const auth = { issuer: "smsgw-test", audience: "smsgw-api", jwtKeys: [{ kid: "k1", secret: "test-signing-secret-of-at-least-32-bytes!" }] }
const password = "long enough password"
const bearer = (token: string) => ({ authorization: `Bearer ${token}` })
const unique = (label: string) => `${label}-${crypto.randomUUID().slice(0, 8)}@example.com`

type Reply = { readonly status: number; readonly json: Record<string, unknown> }
const expectStatus = (r: Reply, status: number) => expect(r.status, JSON.stringify(r.json)).toBe(status)

/** The gateway mailing through a real SMTP server started by the test. */
const withMail = (extra: Record<string, unknown> = {}) =>
  Effect.gen(function*() {
    const mailbox = yield* startMailbox
    const gw = yield* startGateway({
      config: {
        auth: { ...auth, ...extra },
        mail: { smtp: { host: "127.0.0.1", port: mailbox.port, secure: false, timeoutMs: 5_000 }, from: "gw@example.com", publicUrl: "https://gw.example.com" }
      }
    })
    return { gw, mailbox }
  })

const memberEmails = (baseUrl: string, headers: Record<string, string>) =>
  Effect.map(get(`${baseUrl}/v1/members`, headers), (r) => (r.json as unknown as Array<{ email: string }>).map((m) => m.email))

describe("invitations are mailed single-use tokens (issue 11: 3, 5)", () => {
  it.live("registering an invited address without the token joins nothing; with it, joins once with the role", () =>
    Effect.gen(function*() {
      const { gw, mailbox } = yield* withMail()
      const owner = yield* signUp(gw.baseUrl)
      const email = unique("invitee")
      const invited = yield* post(`${gw.baseUrl}/v1/members`, { email, role: "admin" }, owner.userAuth)
      expectStatus(invited, 202)
      expect(Object.keys(invited.json).sort()).toEqual(["createdAt", "email", "expiresAt", "id", "role"])
      const mail = yield* mailbox.waitFor(email, "Invitation")
      expect(mail.text).toContain("https://gw.example.com/invitations/accept#token=inv_")
      const token = tokenIn(mail, "inv")
      // Whoever registers the address first, without the token, gets an organisation of their own.
      const squatter = unique("squatter")
      const otherAddress = yield* post(`${gw.baseUrl}/v1/auth/register`, { email: squatter, password, name: "S", invitationToken: token })
      expectStatus(otherAddress, 400)
      expect((otherAddress.json.errors as Array<{ field: string }>)[0]?.field).toBe("invitationToken")
      expect(yield* memberEmails(gw.baseUrl, owner.userAuth)).toEqual([owner.email])
      // The invitee, holding the token, joins with the role.
      const joined = yield* post(`${gw.baseUrl}/v1/auth/register`, { email, password, name: "Invitee", invitationToken: token })
      expectStatus(joined, 201)
      expect([(joined.json.organisation as { id: string }).id, joined.json.role]).toEqual([owner.orgId, "admin"])
      expect(yield* memberEmails(gw.baseUrl, owner.userAuth)).toEqual([owner.email, email])
      // Single use.
      const again = yield* post(`${gw.baseUrl}/v1/auth/register`, { email: unique("late"), password, name: "L", invitationToken: token })
      expectStatus(again, 400)
      expect((yield* get(`${gw.baseUrl}/v1/invitations`, owner.userAuth)).json).toEqual([])
    }).pipe(Effect.scoped), 30_000)

  it.live("an organisation sends a bounded number of invitations: no mail cannon for a throwaway account", () =>
    Effect.gen(function*() {
      const { gw } = yield* withMail({ loginThrottle: { invitations: { max: 2, windowSeconds: 3600 } } })
      const spammer = yield* signUp(gw.baseUrl)
      for (let i = 0; i < 2; i++) expectStatus(yield* post(`${gw.baseUrl}/v1/members`, { email: unique("target"), role: "viewer" }, spammer.userAuth), 202)
      const refused = yield* post(`${gw.baseUrl}/v1/members`, { email: unique("target"), role: "viewer" }, spammer.userAuth)
      expectStatus(refused, 429)
      expect(refused.json.type).toBe("urn:smsgw:problem:too-many-requests")
      expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(3500)
      // Another organisation's budget is its own.
      const other = yield* signUp(gw.baseUrl)
      expectStatus(yield* post(`${gw.baseUrl}/v1/members`, { email: unique("friend"), role: "viewer" }, other.userAuth), 202)
    }).pipe(Effect.scoped), 30_000)

  it.live("registration without a token never joins an organisation, even for an invited address", () =>
    Effect.gen(function*() {
      const { gw, mailbox } = yield* withMail()
      const owner = yield* signUp(gw.baseUrl)
      const email = unique("owner-to-be")
      expectStatus(yield* post(`${gw.baseUrl}/v1/members`, { email, role: "owner" }, owner.userAuth), 202)
      yield* mailbox.waitFor(email, "Invitation")
      const registered = yield* post(`${gw.baseUrl}/v1/auth/register`, { email, password, name: "Mallory" })
      expectStatus(registered, 201)
      expect((registered.json.organisation as { id: string }).id).not.toBe(owner.orgId)
      expect(registered.json.role).toBe("owner")
      expect(yield* memberEmails(gw.baseUrl, owner.userAuth)).toEqual([owner.email])
    }).pipe(Effect.scoped), 30_000)

  it.live("inviting answers alike for registered and unknown addresses; an existing user is listed only after accepting", () =>
    Effect.gen(function*() {
      const { gw, mailbox } = yield* withMail()
      const a = yield* signUp(gw.baseUrl)
      const bob = yield* signUp(gw.baseUrl)
      const carol = unique("carol")
      const toBob = yield* post(`${gw.baseUrl}/v1/members`, { email: bob.email, role: "member" }, a.userAuth)
      const toCarol = yield* post(`${gw.baseUrl}/v1/members`, { email: carol, role: "member" }, a.userAuth)
      expectStatus(toBob, 202)
      expectStatus(toCarol, 202)
      expect(Object.keys(toBob.json).sort()).toEqual(Object.keys(toCarol.json).sort())
      expect(JSON.stringify(toBob.json)).not.toContain("Test User")
      expect(toBob.json.email).toBe(bob.email)
      // Not listed, not named, before consenting.
      expect(yield* memberEmails(gw.baseUrl, a.userAuth)).toEqual([a.email])
      const pending = (yield* get(`${gw.baseUrl}/v1/invitations`, a.userAuth)).json as unknown as Array<Record<string, unknown>>
      expect(pending.map((i) => i.email).sort()).toEqual([bob.email, carol].sort())
      expect(JSON.stringify(pending)).not.toContain("Test User")

      const bobsToken = tokenIn(yield* mailbox.waitFor(bob.email, "Invitation"), "inv")
      const carolsToken = tokenIn(yield* mailbox.waitFor(carol, "Invitation"), "inv")
      // Bob cannot use Carol's invitation, and an app token cannot accept anything.
      expectStatus(yield* post(`${gw.baseUrl}/v1/invitations/accept`, { token: carolsToken }, bob.userAuth), 403)
      expectStatus(yield* post(`${gw.baseUrl}/v1/invitations/accept`, { token: bobsToken }, bob.auth), 403)
      const accepted = yield* post(`${gw.baseUrl}/v1/invitations/accept`, { token: bobsToken }, bob.userAuth)
      expectStatus(accepted, 200)
      expect([(accepted.json.organisation as { id: string }).id, accepted.json.role]).toEqual([a.orgId, "member"])
      expect(yield* memberEmails(gw.baseUrl, a.userAuth)).toEqual([a.email, bob.email])
      // Bob signs in to the new organisation by naming it.
      const inA = yield* post(`${gw.baseUrl}/v1/auth/token`, { email: bob.email, password: bob.password, organisationId: a.orgId })
      expectStatus(inA, 200)
      expectStatus(yield* get(`${gw.baseUrl}/v1/members`, bearer(String(inA.json.accessToken))), 200)

      // A revoked invitation is dead.
      const carolsId = String(toCarol.json.id)
      expectStatus(yield* send("DELETE", `${gw.baseUrl}/v1/invitations/${carolsId}`, undefined, a.userAuth), 204)
      expectStatus(yield* send("DELETE", `${gw.baseUrl}/v1/invitations/${carolsId}`, undefined, bob.userAuth), 404)
      expectStatus(yield* post(`${gw.baseUrl}/v1/auth/register`, { email: carol, password, name: "C", invitationToken: carolsToken }), 400)
      const actions = ((yield* get(`${gw.baseUrl}/v1/audit?limit=100`, a.userAuth)).json as unknown as Array<{ action: string }>).map((e) => e.action)
      expect(actions).toEqual(expect.arrayContaining(["member.invited", "member.joined", "invitation.revoked"]))
    }).pipe(Effect.scoped), 30_000)

  it.live("owner invitations are made and revoked by owners only", () =>
    Effect.gen(function*() {
      const { gw, mailbox } = yield* withMail()
      const owner = yield* signUp(gw.baseUrl)
      const adminEmail = unique("admin")
      expectStatus(yield* post(`${gw.baseUrl}/v1/members`, { email: adminEmail, role: "admin" }, owner.userAuth), 202)
      const token = tokenIn(yield* mailbox.waitFor(adminEmail, "Invitation"), "inv")
      expectStatus(yield* post(`${gw.baseUrl}/v1/auth/register`, { email: adminEmail, password, name: "A", invitationToken: token }), 201)
      const admin = bearer(String((yield* post(`${gw.baseUrl}/v1/auth/token`, { email: adminEmail, password })).json.accessToken))
      expectStatus(yield* post(`${gw.baseUrl}/v1/members`, { email: unique("o"), role: "owner" }, admin), 403)
      const ownerInvite = yield* post(`${gw.baseUrl}/v1/members`, { email: unique("o"), role: "owner" }, owner.userAuth)
      expectStatus(ownerInvite, 202)
      expectStatus(yield* send("DELETE", `${gw.baseUrl}/v1/invitations/${String(ownerInvite.json.id)}`, undefined, admin), 403)
      expectStatus(yield* send("DELETE", `${gw.baseUrl}/v1/invitations/${String(ownerInvite.json.id)}`, undefined, owner.userAuth), 204)
    }).pipe(Effect.scoped), 30_000)

  it.live("when the mail cannot be sent the invitation answers 503 and is not left usable", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({
        config: { auth, mail: { smtp: { host: "127.0.0.1", port: 1, secure: false, timeoutMs: 2_000 }, from: "gw@example.com" } }
      })
      const owner = yield* signUp(gw.baseUrl)
      const r = yield* post(`${gw.baseUrl}/v1/members`, { email: unique("x"), role: "viewer" }, owner.userAuth)
      expectStatus(r, 503)
      expect((yield* get(`${gw.baseUrl}/v1/invitations`, owner.userAuth)).json).toEqual([])
    }).pipe(Effect.scoped), 30_000)
})

describe("registration confirms the mailbox when auth.requireVerifiedEmail is on (issue 11: 8)", () => {
  it.live("a new and a taken address get the same answer; only the mailbox learns which; the link creates the account once", () =>
    Effect.gen(function*() {
      const { gw, mailbox } = yield* withMail({ requireVerifiedEmail: true })
      const url = `${gw.baseUrl}/v1/auth/register`
      const email = unique("new")
      const fresh = yield* post(url, { email, password, name: "New" })
      expectStatus(fresh, 202)
      expect(fresh.json.status).toBe("confirmation-mailed")
      // Nothing exists yet.
      expectStatus(yield* post(`${gw.baseUrl}/v1/auth/token`, { email, password }), 401)
      const token = tokenIn(yield* mailbox.waitFor(email, "Confirm"), "reg")
      const confirmed = yield* post(`${gw.baseUrl}/v1/auth/confirm`, { token })
      expectStatus(confirmed, 201)
      expect([(confirmed.json.user as { email: string }).email, confirmed.json.role]).toEqual([email, "owner"])
      expectStatus(yield* post(`${gw.baseUrl}/v1/auth/token`, { email, password }), 200)
      expectStatus(yield* post(`${gw.baseUrl}/v1/auth/confirm`, { token }), 400)

      const taken = yield* post(url, { email, password: "some other password", name: "Someone" })
      expectStatus(taken, 202)
      expect(Object.keys(taken.json).sort()).toEqual(Object.keys(fresh.json).sort())
      expect(taken.json.status).toBe(fresh.json.status)
      yield* mailbox.waitFor(email, "Someone tried to register")
      // The account keeps its password.
      expectStatus(yield* post(`${gw.baseUrl}/v1/auth/token`, { email, password }), 200)
      // Both answers are in the API description.
      const paths = (yield* get(`${gw.baseUrl}/openapi.json`)).json.paths as Record<string, Record<string, { responses: Record<string, unknown> }>>
      expect(Object.keys(paths["/v1/auth/register"]?.post?.responses ?? {})).toEqual(expect.arrayContaining(["201", "202"]))
      expect(Object.keys(paths)).toEqual(expect.arrayContaining(["/v1/auth/confirm", "/v1/invitations", "/v1/invitations/accept"]))
    }).pipe(Effect.scoped), 30_000)
})
