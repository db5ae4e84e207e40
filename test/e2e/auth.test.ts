import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { SignJWT } from "jose"
import { get, post, send, signUp, startGateway, waitForStatus } from "../fixtures/Gateway.ts"
import { startMailbox, tokenIn } from "../fixtures/Mailbox.ts"

const secret = "test-signing-secret-of-at-least-32-bytes!"
const auth = { issuer: "smsgw-test", audience: "smsgw-api", jwtKeys: [{ kid: "k1", secret }] }
const sms = { to: "+4915112345678", from: "ACME", text: "hi" }
const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url")

const expectProblem = (r: { status: number; contentType: string | null; json: Record<string, unknown> }, status: number, type: string) => {
  expect(r.status, JSON.stringify(r.json)).toBe(status)
  expect(r.contentType).toContain("application/problem+json")
  expect(r.json.type).toBe(`urn:smsgw:problem:${type}`)
}

describe("accounts, apps and access control over HTTP", () => {
  it.live("the quick start: register, token, app, key, app token, send, status", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({ config: { auth } })
      const t = yield* signUp(gw.baseUrl)
      const accepted = yield* post(`${gw.baseUrl}/v1/messages`, sms, t.auth)
      expect(accepted.status).toBe(202)
      const view = yield* waitForStatus(gw.baseUrl, String(accepted.json.id), "delivered", 10_000, t.auth)
      expect(view.status).toBe("delivered")
      // A user token may send too, naming the app.
      const asUser = yield* post(`${gw.baseUrl}/v1/messages`, sms, { ...t.userAuth, "x-app-id": t.appId })
      expect(asUser.status).toBe(202)
      const noApp = yield* post(`${gw.baseUrl}/v1/messages`, sms, t.userAuth)
      expectProblem(noApp, 403, "forbidden")
      // The refresh token rotates: the new pair works, the spent token does not.
      const refreshed = yield* post(`${gw.baseUrl}/v1/auth/refresh`, { refreshToken: t.refreshToken })
      expect(refreshed.status).toBe(200)
      expect((yield* get(`${gw.baseUrl}/v1/apps`, bearer(String(refreshed.json.accessToken)))).status).toBe(200)
      expectProblem(yield* post(`${gw.baseUrl}/v1/auth/refresh`, { refreshToken: t.refreshToken }), 401, "unauthorized")
    }).pipe(Effect.scoped), 30_000)

  it.live("missing, expired, tampered, wrong-audience, wrong-issuer, unknown-key and alg:none tokens are refused with 401", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({ config: { auth } })
      const t = yield* signUp(gw.baseUrl)
      const url = `${gw.baseUrl}/v1/messages`
      const key = new TextEncoder().encode(secret)
      const claims = { org: t.orgId, app: t.appId, akid: t.apiKey.split("_")[1] }
      const sign = (options: { exp?: number; aud?: string; iss?: string; kid?: string; key?: Uint8Array }) =>
        Effect.promise(() =>
          new SignJWT(claims)
            .setProtectedHeader({ alg: "HS256", typ: "at+jwt", kid: options.kid ?? "k1" })
            .setJti(crypto.randomUUID())
            .setSubject(`app:${t.appId}`)
            .setIssuer(options.iss ?? auth.issuer)
            .setAudience(options.aud ?? auth.audience)
            .setIssuedAt()
            .setExpirationTime(options.exp ?? Math.floor(Date.now() / 1000) + 600)
            .sign(options.key ?? key)
        )
      const [header, payload, signature] = t.appToken.split(".")
      const tampered = `${header}.${b64({ ...JSON.parse(Buffer.from(payload!, "base64url").toString()), org: "org_someone_else" })}.${signature}`
      const none = `${b64({ alg: "none", typ: "at+jwt", kid: "k1" })}.${payload}.`
      const cases: Array<[string, string | undefined]> = [
        ["missing", undefined],
        ["garbage", "not.a.jwt"],
        ["expired", yield* sign({ exp: Math.floor(Date.now() / 1000) - 60 })],
        ["wrong audience", yield* sign({ aud: "someone-else" })],
        ["wrong issuer", yield* sign({ iss: "evil" })],
        ["unknown kid", yield* sign({ kid: "k9" })],
        ["wrong key", yield* sign({ key: new TextEncoder().encode("another-secret-of-at-least-32-bytes!!") })],
        ["tampered", tampered],
        ["alg none", none]
      ]
      for (const [name, token] of cases) {
        const r = yield* post(url, sms, token === undefined ? {} : bearer(token))
        expect(r.status, name).toBe(401)
        expect(r.json.type, name).toBe("urn:smsgw:problem:unauthorized")
      }
      // The same claims, correctly signed, are accepted: the cases above fail for the reason they name.
      expect((yield* post(url, sms, bearer(yield* sign({})))).status).toBe(202)
    }).pipe(Effect.scoped), 30_000)

  it.live("the IP allow-list holds, and a forged X-Forwarded-For from an untrusted peer changes nothing", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({ config: { auth } })
      const t = yield* signUp(gw.baseUrl, { allowList: ["10.0.0.0/8", "2001:db8::/32"] })
      const url = `${gw.baseUrl}/v1/messages`
      expectProblem(yield* post(url, sms, t.auth), 403, "forbidden")
      expectProblem(yield* post(url, sms, { ...t.auth, "x-forwarded-for": "10.1.2.3" }), 403, "forbidden")
      const widened = yield* send("PATCH", `${gw.baseUrl}/v1/apps/${t.appId}`, { allowList: ["10.0.0.0/8", "127.0.0.1"] }, t.userAuth)
      expect(widened.status).toBe(200)
      expect((yield* post(url, sms, t.auth)).status).toBe(202)
      const bad = yield* send("PATCH", `${gw.baseUrl}/v1/apps/${t.appId}`, { allowList: ["10.0.0.0/33"] }, t.userAuth)
      expectProblem(bad, 400, "validation")
    }).pipe(Effect.scoped), 30_000)

  it.live("behind a trusted proxy the client address is read from X-Forwarded-For, right to left", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({ config: { auth, http: { trustedProxies: ["127.0.0.1/32", "::1"] } } })
      const t = yield* signUp(gw.baseUrl, { allowList: ["10.0.0.0/8"] })
      const url = `${gw.baseUrl}/v1/messages`
      expect((yield* post(url, sms, { ...t.auth, "x-forwarded-for": "10.1.2.3" })).status).toBe(202)
      // The client's own (forgeable) entry is left of the proxy's: only the rightmost untrusted one counts.
      expectProblem(yield* post(url, sms, { ...t.auth, "x-forwarded-for": "10.1.2.3, 192.168.7.7" }), 403, "forbidden")
      expectProblem(yield* post(url, sms, t.auth), 403, "forbidden")
    }).pipe(Effect.scoped), 30_000)

  it.live("organisations are isolated: another organisation's apps and messages answer 404, its app cannot be used", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({ config: { auth } })
      const a = yield* signUp(gw.baseUrl)
      const b = yield* signUp(gw.baseUrl)
      const sent = yield* post(`${gw.baseUrl}/v1/messages`, sms, a.auth)
      const id = String(sent.json.id)
      expect((yield* get(`${gw.baseUrl}/v1/messages/${id}`, a.auth)).status).toBe(200)
      expectProblem(yield* get(`${gw.baseUrl}/v1/messages/${id}`, b.auth), 404, "not-found")
      expectProblem(yield* get(`${gw.baseUrl}/v1/messages/${id}`, b.userAuth), 404, "not-found")
      expectProblem(yield* get(`${gw.baseUrl}/v1/apps/${a.appId}`, b.userAuth), 404, "not-found")
      expectProblem(yield* send("PATCH", `${gw.baseUrl}/v1/apps/${a.appId}`, { active: false }, b.userAuth), 404, "not-found")
      expectProblem(yield* get(`${gw.baseUrl}/v1/apps/${a.appId}/keys`, b.userAuth), 404, "not-found")
      expectProblem(yield* post(`${gw.baseUrl}/v1/apps/${a.appId}/keys`, {}, b.userAuth), 404, "not-found")
      expectProblem(yield* post(`${gw.baseUrl}/v1/messages`, sms, { ...b.userAuth, "x-app-id": a.appId }), 403, "forbidden")
      const listed = yield* get(`${gw.baseUrl}/v1/apps`, b.userAuth)
      expect((listed.json as unknown as Array<{ id: string }>).map((x) => x.id)).toEqual([b.appId])
      // A's app key does not open B's app.
      expectProblem(yield* post(`${gw.baseUrl}/v1/auth/token`, { appId: b.appId, apiKey: a.apiKey }), 401, "unauthorized")
    }).pipe(Effect.scoped), 30_000)

  it.live("a revoked API key, a disabled app and a logged-out refresh token stop working", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({ config: { auth } })
      const t = yield* signUp(gw.baseUrl)
      const keys = yield* get(`${gw.baseUrl}/v1/apps/${t.appId}/keys`, t.userAuth)
      const listed = keys.json as unknown as Array<{ id: string; prefix: string }>
      expect(listed).toHaveLength(1)
      expect(JSON.stringify(keys.json)).not.toContain(t.apiKey)
      const revoked = yield* send("DELETE", `${gw.baseUrl}/v1/apps/${t.appId}/keys/${listed[0]!.id}`, undefined, t.userAuth)
      expect(revoked.status).toBe(200)
      expectProblem(yield* post(`${gw.baseUrl}/v1/auth/token`, { appId: t.appId, apiKey: t.apiKey }), 401, "unauthorized")
      expectProblem(yield* post(`${gw.baseUrl}/v1/messages`, sms, t.auth), 401, "unauthorized")

      yield* send("PATCH", `${gw.baseUrl}/v1/apps/${t.appId}`, { active: false }, t.userAuth)
      expectProblem(yield* post(`${gw.baseUrl}/v1/messages`, sms, { ...t.userAuth, "x-app-id": t.appId }), 403, "forbidden")

      expect((yield* post(`${gw.baseUrl}/v1/auth/logout`, { refreshToken: t.refreshToken })).status).toBe(204)
      expectProblem(yield* post(`${gw.baseUrl}/v1/auth/refresh`, { refreshToken: t.refreshToken }), 401, "unauthorized")
    }).pipe(Effect.scoped), 30_000)

  it.live("roles: members send but do not manage; only owners touch owners; the last owner stays", () =>
    Effect.gen(function*() {
      const mailbox = yield* startMailbox
      const gw = yield* startGateway({ config: { auth, mail: { smtp: { host: "127.0.0.1", port: mailbox.port, secure: false } } } })
      const owner = yield* signUp(gw.baseUrl)
      const base = gw.baseUrl
      const join = (role: string) =>
        Effect.gen(function*() {
          const email = `${role}-${crypto.randomUUID().slice(0, 6)}@example.com`
          const invited = yield* post(`${base}/v1/members`, { email, role }, owner.userAuth)
          expect(invited.status).toBe(202)
          const invitationToken = tokenIn(yield* mailbox.waitFor(email, "Invitation"), "inv")
          const registered = yield* post(`${base}/v1/auth/register`, { email, password: "another good password", name: role, invitationToken })
          expect(registered.status).toBe(201)
          expect((registered.json.organisation as { id: string }).id).toBe(owner.orgId)
          const login = yield* post(`${base}/v1/auth/token`, { email, password: "another good password" })
          return { userId: String((registered.json.user as { id: string }).id), auth: bearer(String(login.json.accessToken)) }
        })
      const member = yield* join("member")
      const viewer = yield* join("viewer")
      const admin = yield* join("admin")

      expect((yield* post(`${base}/v1/messages`, sms, { ...member.auth, "x-app-id": owner.appId })).status).toBe(202)
      expectProblem(yield* post(`${base}/v1/messages`, sms, { ...viewer.auth, "x-app-id": owner.appId }), 403, "forbidden")
      expect((yield* get(`${base}/v1/apps`, viewer.auth)).status).toBe(200)
      expectProblem(yield* post(`${base}/v1/apps`, { name: "x" }, member.auth), 403, "forbidden")
      expectProblem(yield* post(`${base}/v1/members`, { email: "z@example.com", role: "viewer" }, member.auth), 403, "forbidden")
      expectProblem(yield* get(`${base}/v1/audit`, member.auth), 403, "forbidden")
      expect((yield* post(`${base}/v1/apps`, { name: "admin app" }, admin.auth)).status).toBe(201)
      expectProblem(yield* send("PATCH", `${base}/v1/members/${viewer.userId}`, { role: "owner" }, admin.auth), 403, "forbidden")
      expect((yield* send("PATCH", `${base}/v1/members/${viewer.userId}`, { role: "member" }, admin.auth)).status).toBe(200)
      const me = (yield* get(`${base}/v1/members`, owner.userAuth)).json as unknown as Array<{ userId: string; role: string }>
      const ownerId = me.find((m) => m.role === "owner")?.userId ?? ""
      expectProblem(yield* send("DELETE", `${base}/v1/members/${ownerId}`, undefined, owner.userAuth), 409, "conflict")
      expectProblem(yield* send("PATCH", `${base}/v1/members/${ownerId}`, { role: "admin" }, owner.userAuth), 409, "conflict")
      expect((yield* send("DELETE", `${base}/v1/members/${member.userId}`, undefined, admin.auth)).status).toBe(204)
      expectProblem(yield* post(`${base}/v1/members`, { email: owner.email, role: "viewer" }, owner.userAuth), 409, "conflict")

      const audit = yield* get(`${base}/v1/audit?limit=200`, owner.userAuth)
      expect(audit.status).toBe(200)
      const actions = (audit.json as unknown as Array<{ action: string; ip?: string }>).map((e) => e.action)
      expect(actions).toEqual(expect.arrayContaining([
        "login",
        "app.created",
        "api_key.created",
        "member.invited",
        "member.joined",
        "member.role_changed",
        "member.removed"
      ]))
      expect((audit.json as unknown as Array<{ ip?: string }>)[0]?.ip).toMatch(/127\.0\.0\.1|::1/)
    }).pipe(Effect.scoped), 30_000)

  it.live("logins are throttled per account and address, and a wrong email answers exactly like a wrong password", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({ config: { auth: { ...auth, loginThrottle: { perAccount: { max: 3, windowSeconds: 60 } } } } })
      const t = yield* signUp(gw.baseUrl)
      const url = `${gw.baseUrl}/v1/auth/token`
      const wrongPassword = yield* post(url, { email: t.email, password: "not the password at all" })
      const wrongEmail = yield* post(url, { email: "nobody@example.com", password: "not the password at all" })
      expectProblem(wrongPassword, 401, "unauthorized")
      expect(wrongEmail.status).toBe(wrongPassword.status)
      expect(wrongEmail.json).toEqual(wrongPassword.json)
      yield* post(url, { email: t.email, password: "still not the password" })
      yield* post(url, { email: t.email, password: "and again not it" })
      const throttled = yield* post(url, { email: t.email, password: t.password })
      expectProblem(throttled, 429, "too-many-requests")
      expect(Number(throttled.json.retryAfterSeconds)).toBeGreaterThan(0)
      expect(throttled.headers.get("retry-after")).toBe(String(throttled.json.retryAfterSeconds))
    }).pipe(Effect.scoped), 30_000)

  it.live("registration validates its input and refuses a taken email", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({ config: { auth } })
      const url = `${gw.baseUrl}/v1/auth/register`
      expectProblem(yield* post(url, { email: "not-an-email", password: "long enough password", name: "x" }), 400, "validation")
      expectProblem(yield* post(url, { email: "a@example.com", password: "short", name: "x" }), 400, "validation")
      expect((yield* post(url, { email: "a@example.com", password: "long enough password", name: "x" })).status).toBe(201)
      expectProblem(yield* post(url, { email: "A@Example.com", password: "long enough password", name: "y" }), 409, "conflict")
    }).pipe(Effect.scoped), 30_000)

  it.live("the superadmin from configuration can sign in", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({
        config: { auth: { ...auth, superadmin: { email: "ops@example.com", password: "operator password 1" } } }
      })
      const login = yield* post(`${gw.baseUrl}/v1/auth/token`, { email: "ops@example.com", password: "operator password 1" })
      expect(login.status).toBe(200)
      const payload = JSON.parse(Buffer.from(String(login.json.accessToken).split(".")[1]!, "base64url").toString())
      expect(payload.sa).toBe(true)
    }).pipe(Effect.scoped), 30_000)
})
