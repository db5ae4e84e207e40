/**
 * Browser sessions over real HTTP: the refresh token only ever in its HttpOnly cookie, rotated on refresh, refused
 * from another site without being spent, organisation switch, sign-out, sign-out everywhere, and /v1/me.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { get, post, send, signUp, startGateway } from "../fixtures/Gateway.ts"
import { expectProblem } from "../fixtures/Problems.ts"

interface Answer {
  readonly status: number
  readonly contentType: string | null
  readonly json: Record<string, unknown>
  readonly cookies: ReadonlyArray<string>
}

const call = (url: string, init: { method: string; body?: unknown; headers?: Record<string, string> }) =>
  Effect.promise(async (): Promise<Answer> => {
    const response = await fetch(url, {
      method: init.method,
      headers: { ...(init.body !== undefined ? { "content-type": "application/json" } : {}), ...init.headers },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {})
    })
    const text = await response.text()
    return { status: response.status, contentType: response.headers.get("content-type"), json: text === "" ? {} : JSON.parse(text) as Record<string, unknown>, cookies: response.headers.getSetCookie() }
  })

const cookieValue = (answer: Answer, name: string) => {
  const header = answer.cookies.find((c) => c.startsWith(`${name}=`))
  return header?.slice(name.length + 1).split(";", 1)[0]
}

const signIn = (base: string, email: string, password: string, extra: Record<string, unknown> = {}) =>
  call(`${base}/v1/auth/session`, { method: "POST", body: { email, password, ...extra } })

const refresh = (base: string, token: string, body: Record<string, unknown> = {}, headers: Record<string, string> = {}) =>
  call(`${base}/v1/auth/session/refresh`, { method: "POST", body, headers: { cookie: `smsgw_refresh=${token}`, ...headers } })

describe("browser sessions", () => {
  it.live("the refresh token lives only in an HttpOnly, Secure, SameSite=Strict cookie scoped to the session path", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway()
      const t = yield* signUp(gw.baseUrl)
      const signedIn = yield* signIn(gw.baseUrl, t.email, t.password)
      expect(signedIn.status).toBe(200)
      expect(signedIn.json.refreshToken).toBeUndefined()
      const refreshCookie = signedIn.cookies.find((c) => c.startsWith("smsgw_refresh="))
      expect(refreshCookie).toMatch(/; Path=\/v1\/auth\/session/)
      expect(refreshCookie).toMatch(/HttpOnly/)
      expect(refreshCookie).toMatch(/Secure/)
      expect(refreshCookie).toMatch(/SameSite=Strict/)
      // The marker a page may read holds no secret.
      expect(signedIn.cookies.find((c) => c.startsWith("smsgw_session="))).toMatch(/^smsgw_session=1; .*Path=\//)

      const me = yield* get(`${gw.baseUrl}/v1/me`, { authorization: `Bearer ${String(signedIn.json.accessToken)}` })
      expect(me.status).toBe(200)
      expect(me.json).toMatchObject({ user: { email: t.email, superadmin: false }, organisation: { id: t.orgId }, role: "owner" })
      expect(me.json.organisations).toEqual([{ id: t.orgId, name: "Test Org", role: "owner" }])

      // Rotation: the next cookie works, the spent one is refused (and, reused, ends every session of the user).
      const first = cookieValue(signedIn, "smsgw_refresh") ?? ""
      const rotated = yield* refresh(gw.baseUrl, first)
      expect(rotated.status).toBe(200)
      const second = cookieValue(rotated, "smsgw_refresh") ?? ""
      expect(second).not.toBe(first)
      expectProblem(yield* refresh(gw.baseUrl, first), 401, "unauthorized")
      expect((yield* refresh(gw.baseUrl, second)).status).toBe(401)

      expectProblem(yield* call(`${gw.baseUrl}/v1/auth/session/refresh`, { method: "POST", body: {} }), 401, "unauthorized")
    }).pipe(Effect.scoped), 30_000)

  it.live("a refresh from another site is refused before the cookie is used", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway()
      const t = yield* signUp(gw.baseUrl)
      const token = cookieValue(yield* signIn(gw.baseUrl, t.email, t.password), "smsgw_refresh") ?? ""
      const host = new URL(gw.baseUrl).host
      expect((yield* refresh(gw.baseUrl, token, {}, { origin: "https://evil.example" })).status).toBe(403)
      expect((yield* refresh(gw.baseUrl, token, {}, { "sec-fetch-site": "cross-site" })).status).toBe(403)
      expect((yield* refresh(gw.baseUrl, token, {}, { origin: "null" })).status).toBe(403)
      // Not spent by the refusals: the same-origin refresh still works.
      expect((yield* refresh(gw.baseUrl, token, {}, { origin: `http://${host}`, "sec-fetch-site": "same-origin" })).status).toBe(200)
    }).pipe(Effect.scoped), 30_000)

  it.live("switching organisation needs membership; sign-out and sign-out everywhere end sessions", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway()
      const owner = yield* signUp(gw.baseUrl)
      const guest = yield* signUp(gw.baseUrl)
      const invited = yield* post(`${gw.baseUrl}/v1/members`, { email: guest.email, role: "viewer" }, owner.userAuth)
      expect(invited.status).toBeLessThan(300)
      // Invited but not yet a member (the invitation is not accepted): the switch is refused, the cookie not spent.
      const signedIn = yield* signIn(gw.baseUrl, guest.email, guest.password)
      const token = cookieValue(signedIn, "smsgw_refresh") ?? ""
      const refused = yield* refresh(gw.baseUrl, token, { organisationId: owner.orgId })
      expect(refused.status).toBe(404)
      const stillGood = yield* refresh(gw.baseUrl, token)
      expect(stillGood.status).toBe(200)

      // Sign out: cookie cleared and the token revoked.
      const current = cookieValue(stillGood, "smsgw_refresh") ?? ""
      const out = yield* call(`${gw.baseUrl}/v1/auth/session`, { method: "DELETE", headers: { cookie: `smsgw_refresh=${current}` } })
      expect(out.status).toBe(204)
      expect(out.cookies.find((c) => c.startsWith("smsgw_refresh="))).toMatch(/Max-Age=0/)
      expect((yield* refresh(gw.baseUrl, current)).status).toBe(401)

      // Everywhere: two sessions, both end.
      const a = yield* signIn(gw.baseUrl, guest.email, guest.password)
      const b = yield* signIn(gw.baseUrl, guest.email, guest.password)
      const everywhere = yield* send("POST", `${gw.baseUrl}/v1/me/sign-out-everywhere`, undefined, {
        authorization: `Bearer ${String(a.json.accessToken)}`
      })
      expect(everywhere.status).toBe(204)
      expect((yield* refresh(gw.baseUrl, cookieValue(a, "smsgw_refresh") ?? "")).status).toBe(401)
      expect((yield* refresh(gw.baseUrl, cookieValue(b, "smsgw_refresh") ?? "")).status).toBe(401)
      // App tokens have no profile.
      expectProblem(yield* get(`${gw.baseUrl}/v1/me`, guest.auth), 403, "forbidden")
    }).pipe(Effect.scoped), 30_000)
})
