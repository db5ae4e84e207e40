import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { get, post, signUp, startGateway } from "../fixtures/Gateway.ts"

const auth = { issuer: "smsgw-test", audience: "smsgw-api", jwtKeys: [{ kid: "k1", secret: "test-signing-secret-of-at-least-32-bytes!" }] }
const password = "long enough password"

type Reply = { status: number; contentType: string | null; json: Record<string, unknown> }

const expectProblem = (r: Reply, status: number, type: string) => {
  expect(r.status, JSON.stringify(r.json)).toBe(status)
  expect(r.contentType).toContain("application/problem+json")
  expect(r.json.type).toBe(`urn:smsgw:problem:${type}`)
}

const fieldOf = (r: Reply) => (r.json.errors as Array<{ field: string }> | undefined)?.[0]?.field

const auditOf = (baseUrl: string, headers: Record<string, string>) =>
  Effect.map(get(`${baseUrl}/v1/audit?limit=500`, headers), (r) => r.json as unknown as Array<{ action: string; target?: string; ip?: string; detail?: string }>)

describe("hostile input on accounts (issue 11)", () => {
  it.live("look-alike accounts: control and invisible characters are refused, emails are NFC-normalised", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({ config: { auth } })
      const url = `${gw.baseUrl}/v1/auth/register`
      const cases: Array<[string, Record<string, string>, string]> = [
        ["NUL in the email", { email: "bob@b.test\u0000x", name: "Bob" }, "email"],
        ["zero-width space in the email", { email: "bo\u200bb@b.test", name: "Bob" }, "email"],
        ["BOM in the email", { email: "\ufeffbob@b.test", name: "Bob" }, "email"],
        ["word joiner in the email", { email: "bob@b\u2060.test", name: "Bob" }, "email"],
        ["C1 control in the email", { email: "bob\u0085@b.test", name: "Bob" }, "email"],
        ["right-to-left override in the name", { email: "rlo@b.test", name: "Bob\u202etxt.exe" }, "name"],
        ["zero-width joiner in the name", { email: "zwj@b.test", name: "B\u200dob" }, "name"],
        ["escape in the organisation", { email: "esc@b.test", name: "Bob", organisation: "Org\u001b[31m" }, "organisation"]
      ]
      for (const [what, body, field] of cases) {
        const r = yield* post(url, { password, ...body })
        expectProblem(r, 400, "validation")
        expect(fieldOf(r), what).toBe(field)
      }
      // A decomposed é and a composed one are the same address.
      const first = yield* post(url, { email: "Ame\u0301lie@Example.COM", password, name: "Ame\u0301lie" })
      expect(first.status).toBe(201)
      expect((first.json.user as { email: string; name: string }).email).toBe("am\u00e9lie@example.com")
      expect((first.json.user as { email: string; name: string }).name).toBe("Am\u00e9lie")
      expect((yield* post(`${gw.baseUrl}/v1/auth/token`, { email: "am\u00e9lie@example.com", password })).status).toBe(200)
      // Emoji with a variation selector remain fine in names.
      expect((yield* post(url, { email: "heart@example.com", password, name: "Ann \u2764\ufe0f" })).status).toBe(201)
    }).pipe(Effect.scoped), 30_000)

  it.live("an app token cannot read apps, keys, members, invitations or the audit log", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({ config: { auth } })
      const t = yield* signUp(gw.baseUrl)
      for (const path of ["/v1/apps", `/v1/apps/${t.appId}`, `/v1/apps/${t.appId}/keys`, "/v1/members", "/v1/invitations", "/v1/audit"]) {
        const r = yield* get(`${gw.baseUrl}${path}`, t.auth)
        expect(r.status, path).toBe(403)
        expect(r.json.type, path).toBe("urn:smsgw:problem:forbidden")
        expect((yield* get(`${gw.baseUrl}${path}`, t.userAuth)).status, path).toBe(200)
      }
      // It still sends and reads its own messages.
      const sent = yield* post(`${gw.baseUrl}/v1/messages`, { to: "+4915112345678", from: "ACME", text: "hi" }, t.auth)
      expect(sent.status).toBe(202)
      expect((yield* get(`${gw.baseUrl}/v1/messages/${String(sent.json.id)}`, t.auth)).status).toBe(200)
    }).pipe(Effect.scoped), 30_000)

  it.live("a failed key exchange is audited in the log of the app it names, not of the key's organisation", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({ config: { auth } })
      const a = yield* signUp(gw.baseUrl)
      const b = yield* signUp(gw.baseUrl)
      expectProblem(yield* post(`${gw.baseUrl}/v1/auth/token`, { appId: a.appId, apiKey: b.apiKey }), 401, "unauthorized")
      const inA = (yield* auditOf(gw.baseUrl, a.userAuth)).filter((e) => e.action === "app.login.failed")
      const inB = (yield* auditOf(gw.baseUrl, b.userAuth)).filter((e) => e.action === "app.login.failed")
      expect(inA.map((e) => e.target)).toEqual([a.appId])
      expect(inB).toEqual([])
    }).pipe(Effect.scoped), 30_000)

  it.live("a stranger's wrong guesses lock out the stranger's address, never the owner's; the targeted organisation sees it", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({
        config: {
          auth: { ...auth, loginThrottle: { perAccount: { max: 3, windowSeconds: 300 }, registrations: { max: 3, windowSeconds: 3600 } } },
          http: { trustedProxies: ["127.0.0.1/32", "::1"] }
        }
      })
      const from = (ip: string) => ({ "x-forwarded-for": ip })
      const stranger = from("203.0.113.9")
      const owner = from("198.51.100.1")
      const t = yield* signUp(gw.baseUrl)
      const token = `${gw.baseUrl}/v1/auth/token`
      const madeUp = `sgw_0123456789ab_${"A".repeat(43)}`
      for (let i = 0; i < 3; i++) expectProblem(yield* post(token, { appId: t.appId, apiKey: madeUp }, stranger), 401, "unauthorized")
      for (let i = 0; i < 3; i++) expectProblem(yield* post(token, { email: t.email, password: "not the password" }, stranger), 401, "unauthorized")
      // The stranger is now refused even with the right secrets...
      const refused = yield* post(token, { appId: t.appId, apiKey: t.apiKey }, stranger)
      expectProblem(refused, 429, "too-many-requests")
      expect(refused.headers.get("retry-after")).toBe(String(refused.json.retryAfterSeconds))
      expectProblem(yield* post(token, { email: t.email, password: t.password }, stranger), 429, "too-many-requests")
      expectProblem(yield* post(token, { email: t.email, password: t.password }, stranger), 429, "too-many-requests")
      // ...while the owner, from its own address, renews its tokens and signs in.
      expect((yield* post(token, { appId: t.appId, apiKey: t.apiKey }, owner)).status).toBe(200)
      expect((yield* post(token, { email: t.email, password: t.password }, owner)).status).toBe(200)
      const audit = yield* auditOf(gw.baseUrl, t.userAuth)
      const throttled = audit.filter((e) => e.action.endsWith(".throttled"))
      // One entry per lock (the first refusal), not one per refused request.
      expect(throttled.map((e) => [e.action, e.ip]).sort()).toEqual([
        ["app.login.throttled", "203.0.113.9"],
        ["login.throttled", "203.0.113.9"]
      ])
    }).pipe(Effect.scoped), 30_000)

  it.live("registration is throttled per client address", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({
        config: { auth: { ...auth, loginThrottle: { registrations: { max: 2, windowSeconds: 3600 } } }, http: { trustedProxies: ["127.0.0.1/32", "::1"] } }
      })
      const url = `${gw.baseUrl}/v1/auth/register`
      const register = (ip: string) =>
        post(url, { email: `r-${crypto.randomUUID().slice(0, 8)}@example.com`, password, name: "R" }, { "x-forwarded-for": ip })
      expect((yield* register("203.0.113.5")).status).toBe(201)
      expect((yield* register("203.0.113.5")).status).toBe(201)
      const third = yield* register("203.0.113.5")
      expectProblem(third, 429, "too-many-requests")
      expect(Number(third.headers.get("retry-after"))).toBeGreaterThan(3500)
      expect((yield* register("203.0.113.6")).status).toBe(201)
    }).pipe(Effect.scoped), 30_000)
})
