/**
 * The audit log's filters over HTTP (issue 14): action, actor (user or app), target and time range, each alone and
 * together, within the caller's organisation only; keyset paging (before + beforeId) that neither skips nor repeats
 * entries of the same millisecond, filters kept; the actions a filter offers; bad filters refused naming the field.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { AccountStore } from "../../src/auth/AccountStore.ts"
import type { RunningGateway } from "../fixtures/Gateway.ts"
import { get, post, send, signUp, startGateway } from "../fixtures/Gateway.ts"

interface Entry {
  readonly id: string
  readonly at: string
  readonly action: string
  readonly actorUserId?: string
  readonly actorAppId?: string
  readonly target?: string
}

const within = (gw: RunningGateway) => <A, E>(effect: Effect.Effect<A, E, AccountStore>) =>
  effect.pipe(Effect.provideContext(gw.context)) as Effect.Effect<A, E, never>

const auditOf = (baseUrl: string, headers: Record<string, string>, query: Record<string, string | number> = {}) =>
  Effect.gen(function*() {
    const search = new URLSearchParams(Object.entries(query).map(([k, v]): [string, string] => [k, String(v)]))
    const reply = yield* get(`${baseUrl}/v1/audit?${search.toString()}`, headers)
    expect(reply.status, reply.text).toBe(200)
    return reply.json as unknown as Array<Entry>
  })

/** Every page of `limit` entries, each asked with the previous page's last `at` and `id`. */
const allPages = (baseUrl: string, headers: Record<string, string>, query: Record<string, string | number>, limit: number) =>
  Effect.gen(function*() {
    const seen: Array<Entry> = []
    for (let page = 0; page < 100; page++) {
      const last = seen.at(-1)
      const entries = yield* auditOf(baseUrl, headers, { ...query, limit, ...(last !== undefined ? { before: last.at, beforeId: last.id } : {}) })
      seen.push(...entries)
      if (entries.length < limit) return seen
    }
    throw new Error("more than 100 pages")
  })

const fieldOf = (reply: { readonly status: number; readonly json: Record<string, unknown> }) =>
  [reply.status, (reply.json.errors as Array<{ field: string }> | undefined)?.[0]?.field]

describe("audit log filters (issue 14)", () => {
  it.live("action, actor, target and time filters, alone and together, paged without skipping ties, per organisation", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway()
      const run = within(gw)
      const owner = yield* signUp(gw.baseUrl)
      const other = yield* signUp(gw.baseUrl)
      const ownerId = String(((yield* get(`${gw.baseUrl}/v1/me`, owner.userAuth)).json.user as { id: string }).id)
      const otherId = String(((yield* get(`${gw.baseUrl}/v1/me`, other.userAuth)).json.user as { id: string }).id)
      const appIds = [owner.appId]
      for (const name of ["billing", "alerts", "otp"]) {
        const app = yield* post(`${gw.baseUrl}/v1/apps`, { name }, owner.userAuth)
        expect(app.status).toBe(201)
        appIds.push(String(app.json.id))
      }
      expect((yield* send("PATCH", `${gw.baseUrl}/v1/apps/${appIds[1]}`, { name: "billing 2" }, owner.userAuth)).status).toBe(200)
      expect((yield* send("DELETE", `${gw.baseUrl}/v1/apps/${other.appId}`, {}, other.userAuth)).status).toBe(204)
      // Six entries of one app in one millisecond (what its actions would write): a page boundary falls among them.
      const tie = Date.now() - 60_000
      yield* run(Effect.gen(function*() {
        const store = yield* AccountStore
        for (let i = 0; i < 6; i++) {
          yield* store.audit({ orgId: owner.orgId, actorUserId: null, actorAppId: owner.appId, action: "list.updated", target: `lst_${i}`, ip: "127.0.0.1", at: tie, detail: null })
        }
        // The other organisation's entry matches the same filters and must never show.
        yield* store.audit({ orgId: other.orgId, actorUserId: null, actorAppId: owner.appId, action: "list.updated", target: "lst_0", ip: "127.0.0.1", at: tie, detail: null })
      }))

      const all = yield* auditOf(gw.baseUrl, owner.userAuth, { limit: 1000 })
      const times = all.map((e) => Date.parse(e.at))
      expect(times).toEqual([...times].sort((a, b) => b - a))
      expect(all.some((e) => e.actorUserId === otherId || e.target === other.appId)).toBe(false)

      const created = yield* auditOf(gw.baseUrl, owner.userAuth, { action: "app.created" })
      expect(created.map((e) => e.target).sort()).toEqual([...appIds].sort())
      expect(new Set(created.map((e) => e.actorUserId))).toEqual(new Set([ownerId]))

      const byOwner = yield* auditOf(gw.baseUrl, owner.userAuth, { actorUserId: ownerId, limit: 1000 })
      expect(byOwner.map((e) => e.id)).toEqual(all.filter((e) => e.actorUserId === ownerId).map((e) => e.id))
      expect(byOwner.map((e) => e.action)).toEqual(expect.arrayContaining(["app.created", "app.updated", "api_key.created"]))

      const byApp = yield* auditOf(gw.baseUrl, owner.userAuth, { actorAppId: owner.appId })
      expect(byApp.map((e) => [e.action, e.at])).toEqual(Array.from({ length: 6 }, () => ["list.updated", new Date(tie).toISOString()]))

      const aboutBilling = yield* auditOf(gw.baseUrl, owner.userAuth, { target: appIds[1] ?? "" })
      expect(aboutBilling.map((e) => e.action)).toEqual(["app.updated", "app.created"])
      expect(yield* auditOf(gw.baseUrl, owner.userAuth, { target: "lst_3", actorAppId: owner.appId, action: "list.updated" }))
        .toHaveLength(1)
      expect(yield* auditOf(gw.baseUrl, owner.userAuth, { target: "lst_3", action: "app.created" })).toEqual([])

      // since and until are inclusive; the millisecond of the tie alone holds its six entries.
      const tieIso = new Date(tie).toISOString()
      expect(yield* auditOf(gw.baseUrl, owner.userAuth, { since: tieIso, until: tieIso })).toHaveLength(6)
      const [newest, second] = created
      if (newest === undefined || second === undefined) throw new Error("four apps were created")
      const window = yield* auditOf(gw.baseUrl, owner.userAuth, { action: "app.created", since: second.at, until: newest.at })
      expect(window.map((e) => e.id)).toEqual([newest.id, second.id])

      // Pages of two read everything once, in order, ties included; filters hold across pages.
      expect((yield* allPages(gw.baseUrl, owner.userAuth, {}, 2)).map((e) => e.id)).toEqual(all.map((e) => e.id))
      expect((yield* allPages(gw.baseUrl, owner.userAuth, { actorAppId: owner.appId }, 4)).map((e) => e.id))
        .toEqual(byApp.map((e) => e.id))
      expect((yield* allPages(gw.baseUrl, owner.userAuth, { action: "app.created" }, 1)).map((e) => e.id))
        .toEqual(created.map((e) => e.id))

      // The other organisation sees none of the owner's entries, whatever it filters on.
      expect(yield* auditOf(gw.baseUrl, other.userAuth, { actorUserId: ownerId })).toEqual([])
      expect(yield* auditOf(gw.baseUrl, other.userAuth, { target: appIds[1] ?? "" })).toEqual([])
      expect((yield* auditOf(gw.baseUrl, other.userAuth, { actorAppId: owner.appId })).map((e) => e.target)).toEqual(["lst_0"])

      // The actions on offer are the organisation's own, sorted.
      const actions = yield* get(`${gw.baseUrl}/v1/audit/actions`, owner.userAuth)
      expect(actions.status).toBe(200)
      const offered = actions.json as unknown as Array<string>
      expect(offered).toEqual([...new Set(all.map((e) => e.action))].sort())
      expect(offered).not.toContain("app.deleted")
      expect(((yield* get(`${gw.baseUrl}/v1/audit/actions`, other.userAuth)).json as unknown as Array<string>)).toContain("app.deleted")
    }).pipe(Effect.scoped), 60_000)

  it.live("bad filters are refused naming the field; an app token is refused", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway()
      const owner = yield* signUp(gw.baseUrl)
      const audit = (query: string, headers = owner.userAuth) => get(`${gw.baseUrl}/v1/audit?${query}`, headers)
      expect(fieldOf(yield* audit("since=yesterday"))).toEqual([400, "query.since"])
      expect(fieldOf(yield* audit("until=2026-13-45T99:00:00Z"))).toEqual([400, "query.until"])
      expect(fieldOf(yield* audit("since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z"))).toEqual([400, "query.until"])
      expect(fieldOf(yield* audit("beforeId=aud_1"))).toEqual([400, "query.beforeId"])
      expect(fieldOf(yield* audit("before=soon&beforeId=aud_1"))).toEqual([400, "query.before"])
      expect((yield* audit("action=")).status).toBe(400)
      expect((yield* audit(`target=${"x".repeat(201)}`)).status).toBe(400)
      expect((yield* audit("limit=1001")).status).toBe(400)
      // A value is data, never SQL.
      const injected = yield* audit(`action=${encodeURIComponent("login' OR '1'='1")}`)
      expect([injected.status, injected.json]).toEqual([200, []])
      expect((yield* audit("", owner.auth)).status).toBe(403)
      expect((yield* get(`${gw.baseUrl}/v1/audit/actions`, owner.auth)).status).toBe(403)
    }).pipe(Effect.scoped), 60_000)
})
