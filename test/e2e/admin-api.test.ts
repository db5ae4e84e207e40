import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { get, post, send, signUp, startGateway } from "../fixtures/Gateway.ts"
import type { Reply } from "../fixtures/Problems.ts"
import { expectProblem, fieldsOf } from "../fixtures/Problems.ts"

const operator = { email: "ops@example.com", password: "operator password 1" }
// Distinctive enough that finding them anywhere in a response means a leak.
const secret1 = "Zq7!kP2x"
const secret2 = "Wm4#tR9y"

const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

const newLink = (id: string, password: string) => ({
  id,
  host: "127.0.0.1",
  port: 2776,
  systemId: "carrier",
  password,
  window: 4,
  tps: 30
})

describe("admin API: links, pools and routes over HTTP", () => {
  it.live("only superadmins get in; links, pools and routes change live; passwords never come back", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({ config: { auth: { superadmin: operator } } })
      const base = `${gw.baseUrl}/v1/admin`
      const replies: Array<Reply> = []
      const call = (method: string, path: string, body?: unknown): Effect.Effect<Reply> => {
        const request: Effect.Effect<Reply> = method === "GET"
          ? get(`${base}${path}`, auth)
          : send(method, `${base}${path}`, body ?? {}, auth)
        return Effect.tap(request, (r) => Effect.sync(() => replies.push(r)))
      }

      // Tenants, users and apps alike, are refused; no token at all is a 401.
      const tenant = yield* signUp(gw.baseUrl)
      expectProblem(yield* get(`${base}/links`, tenant.userAuth), 403, "forbidden")
      expectProblem(yield* get(`${base}/links`, tenant.auth), 403, "forbidden")
      expectProblem(yield* post(`${base}/links`, newLink("evil", "x"), tenant.userAuth), 403, "forbidden")
      expectProblem(yield* send("PUT", `${base}/routes`, { routes: [] }, tenant.userAuth), 403, "forbidden")
      expectProblem(yield* get(`${base}/links`), 401, "unauthorized")

      const login = yield* post(`${gw.baseUrl}/v1/auth/token`, operator)
      expect(login.status).toBe(200)
      const auth = bearer(String(login.json.accessToken))

      // The configured link, without its password.
      const listed = yield* call("GET", "/links")
      expect(listed.status).toBe(200)
      expect(listed.json).toEqual([expect.objectContaining({ id: "sim", hasPassword: true, enabled: true, tps: 1000 })])

      // Links: add, conflicts, validation.
      const added = yield* call("POST", "/links", newLink("l2", secret1))
      expect(added.status, JSON.stringify(added.json)).toBe(201)
      expect(added.json).toEqual({ ...newLink("l2", "x"), password: undefined, hasPassword: true, enabled: true })
      expectProblem(yield* call("POST", "/links", newLink("l2", secret1)), 409, "conflict")
      const invalid = yield* call("POST", "/links", { ...newLink("l3", secret1), port: 70_000, systemId: "x".repeat(16) })
      expectProblem(invalid, 400, "validation")
      expect(fieldsOf(invalid).sort()).toEqual(["port", "systemId"])

      // Patch: settings and the write-only password.
      const patched = yield* call("PATCH", "/links/l2", { tps: 50, window: 8, password: secret2, bindMode: "transmitter" })
      expect(patched.status, JSON.stringify(patched.json)).toBe(200)
      expect(patched.json).toMatchObject({ id: "l2", tps: 50, window: 8, bindMode: "transmitter", host: "127.0.0.1", hasPassword: true })
      const badPatch = yield* call("PATCH", "/links/l2", { window: 0 })
      expectProblem(badPatch, 400, "validation")
      expect(fieldsOf(badPatch)).toEqual(["window"])
      expectProblem(yield* call("PATCH", "/links/nope", { tps: 1 }), 404, "not-found")

      // Disable and enable.
      expect((yield* call("POST", "/links/l2/disable")).json).toMatchObject({ id: "l2", enabled: false })
      expect((yield* call("GET", "/links/l2")).json).toMatchObject({ id: "l2", enabled: false, tps: 50 })
      expect((yield* call("POST", "/links/l2/enable")).json).toMatchObject({ id: "l2", enabled: true })
      expectProblem(yield* call("POST", "/links/nope/disable"), 404, "not-found")

      // Pools: members must be links; weights change; a pool replaces whole.
      const badPool = yield* call("POST", "/pools", { id: "main", members: [{ link: "sim" }, { link: "zzz" }] })
      expectProblem(badPool, 400, "validation")
      expect(fieldsOf(badPool)).toEqual(["members[1].link"])
      const pool = yield* call("POST", "/pools", { id: "main", members: [{ link: "sim", weight: 3 }, { link: "l2" }] })
      expect(pool.status, JSON.stringify(pool.json)).toBe(201)
      expect(pool.json).toEqual({ id: "main", members: [{ link: "sim", weight: 3 }, { link: "l2" }] })
      expectProblem(yield* call("POST", "/pools", { id: "main", members: [{ link: "sim" }] }), 409, "conflict")
      const weights = yield* call("PATCH", "/pools/main/weights", { weights: { l2: 1 } })
      expect(weights.json).toEqual({ id: "main", members: [{ link: "sim", weight: 3 }, { link: "l2", weight: 1 }] })
      const notMember = yield* call("PATCH", "/pools/main/weights", { weights: { zzz: 1 } })
      expectProblem(notMember, 400, "validation")
      expect(fieldsOf(notMember)).toEqual(["weights.zzz"])
      expectProblem(yield* call("PATCH", "/pools/main/weights", { weights: { l2: -1 } }), 400, "validation")
      const spare = yield* call("PUT", "/pools/spare", { members: [{ link: "l2" }] })
      expect(spare.json).toEqual({ id: "spare", members: [{ link: "l2" }] })
      expect((yield* call("PUT", "/pools/spare", { members: [{ link: "sim", weight: 2 }] })).json).toEqual({
        id: "spare",
        members: [{ link: "sim", weight: 2 }]
      })
      expect((yield* call("GET", "/pools")).json).toEqual([weights.json, { id: "spare", members: [{ link: "sim", weight: 2 }] }])
      expect((yield* call("GET", "/pools/main")).json).toEqual(weights.json)
      expectProblem(yield* call("GET", "/pools/nope"), 404, "not-found")

      // Routes: the whole ordered list; a target that does not exist is named.
      const badTarget = yield* call("PUT", "/routes", {
        routes: [
          { id: "de", match: { prefixes: ["49"] }, target: { pool: "main" } },
          { id: "default", match: {}, target: { pool: "nowhere" } }
        ]
      })
      expectProblem(badTarget, 400, "validation")
      expect(fieldsOf(badTarget)).toEqual(["routes[1].target.pool"])
      expect(String(badTarget.json.detail)).toContain("nowhere")
      const badMatch = yield* call("PUT", "/routes", { routes: [{ id: "x", match: { countries: ["XX"] }, target: { link: "sim" } }] })
      expectProblem(badMatch, 400, "validation")
      expect(fieldsOf(badMatch)).toEqual(["routes[0].match.countries[0]"])
      const routes = [
        { id: "de", match: { prefixes: ["49"] }, target: { pool: "main" } },
        { id: "default", match: {}, target: { link: "l2" } }
      ]
      const put = yield* call("PUT", "/routes", { routes })
      expect(put.status, JSON.stringify(put.json)).toBe(200)
      expect(put.json).toEqual({ routes })
      expect((yield* call("GET", "/routes")).json).toEqual({ routes })

      // Removal: refused while something uses it.
      expectProblem(yield* call("DELETE", "/pools/main"), 409, "conflict")
      const linkInUse = yield* call("DELETE", "/links/l2")
      expectProblem(linkInUse, 409, "conflict")
      expect(String(linkInUse.json.detail)).toContain("pool main")
      expect((yield* call("PUT", "/routes", { routes: [{ id: "all", match: {}, target: { pool: "spare" } }] })).status).toBe(200)
      expect((yield* call("DELETE", "/pools/main")).status).toBe(204)
      expect((yield* call("DELETE", "/links/l2")).status).toBe(204)
      expectProblem(yield* call("GET", "/links/l2"), 404, "not-found")
      expectProblem(yield* call("DELETE", "/pools/main"), 404, "not-found")
      expect(((yield* call("GET", "/links")).json as unknown as ReadonlyArray<{ id: string }>).map((l) => l.id)).toEqual(["sim"])

      // No answer ever carried a password.
      expect(replies.length).toBeGreaterThan(30)
      for (const reply of replies) {
        const text = JSON.stringify(reply.json)
        expect(text).not.toContain(secret1)
        expect(text).not.toContain(secret2)
        expect(text).not.toMatch(/"password"/)
      }
    }).pipe(Effect.scoped), 30_000)

  it.live("pools and routes of the configuration file seed the database and are served like any other", () =>
    Effect.gen(function*() {
      const pools = [{ id: "seeded", members: [{ link: "sim", weight: 2 }] }]
      const routes = [{ id: "default", match: {}, target: { pool: "seeded" } }]
      const gw = yield* startGateway({ config: { auth: { superadmin: operator }, pools, routes } })
      const login = yield* post(`${gw.baseUrl}/v1/auth/token`, operator)
      const auth = bearer(String(login.json.accessToken))
      expect((yield* get(`${gw.baseUrl}/v1/admin/pools`, auth)).json).toEqual(pools)
      expect((yield* get(`${gw.baseUrl}/v1/admin/routes`, auth)).json).toEqual({ routes })
      expectProblem(yield* send("DELETE", `${gw.baseUrl}/v1/admin/links/sim`, {}, auth), 409, "conflict")
    }).pipe(Effect.scoped), 30_000)
})
