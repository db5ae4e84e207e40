/**
 * The operators' policy and operations API against a real gateway and the SMPP simulator: versions kept, the dry run
 * of one message (which rule decides, nothing spent), per-rule counters, blacklist upload and search, live link
 * state, rebind and the route tester; non-superadmins refused.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { get, post, send, signUp, startGateway, startPooledGateway, superadmin } from "../fixtures/Gateway.ts"
import { eventually } from "../fixtures/Eventually.ts"
import { expectProblem, fieldsOf } from "../fixtures/Problems.ts"
import type { PolicyDocument } from "../../src/domain/Policy.ts"

const NOON = Date.UTC(2026, 0, 15, 12, 0)
const NIGHT = Date.UTC(2026, 0, 15, 22, 30)

const policy: PolicyDocument = {
  blacklists: [{ name: "dnd", object: null }],
  rules: [
    { id: "cap-1", type: "frequency_cap", max: 1, window: "day" },
    { id: "night", type: "quiet_hours", from: "21:00", to: "08:00", countries: { DE: "Europe/Berlin" } },
    { id: "dnd", type: "blacklist", lists: ["dnd"] },
    { id: "otp-once", classes: ["transactional"], type: "dedup", windowSeconds: 60, mode: "return_first" }
  ]
}

/** A file body sent as it is (an upload), not as JSON. */
const upload = (url: string, body: string, contentType: string, headers: Record<string, string>) =>
  Effect.promise(async () => {
    const response = await fetch(url, { method: "POST", headers: { "content-type": contentType, ...headers }, body })
    return { status: response.status, contentType: response.headers.get("content-type"), json: (await response.json()) as Record<string, unknown> }
  })

/** The first `count` events of an SSE stream, then the stream is closed. */
const firstEvents = (url: string, headers: Record<string, string>, count: number) =>
  Effect.promise(async () => {
    const response = await fetch(url, { headers })
    const reader = response.body?.getReader()
    const events: Array<Record<string, unknown>> = []
    if (reader === undefined) return { contentType: response.headers.get("content-type"), events }
    const decoder = new TextDecoder()
    let buffer = ""
    while (events.length < count) {
      const { done, value } = await reader.read()
      if (done) break
      buffer += decoder.decode(value, { stream: true })
      let end = buffer.indexOf("\n\n")
      while (end !== -1) {
        const data = buffer.slice(0, end).split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n")
        buffer = buffer.slice(end + 2)
        if (data !== "") events.push(JSON.parse(data) as Record<string, unknown>)
        end = buffer.indexOf("\n\n")
      }
    }
    await reader.cancel()
    return { contentType: response.headers.get("content-type"), events }
  })

type Trace = ReadonlyArray<{ ruleId: string; outcome: string; detail?: string }>
const outcomes = (json: Record<string, unknown>) => Object.fromEntries((json.rules as Trace).map((r) => [r.ruleId, r.outcome]))

describe("policy versions", () => {
  it.live("every PUT keeps a version with who, when and why; paged newest first; one version with its document", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway()
      const ops = yield* superadmin(gw.baseUrl)
      const base = `${gw.baseUrl}/v1/policies`
      for (const max of [3, 2, 1]) {
        const put = yield* send("PUT", base, { rules: [{ id: "cap", type: "frequency_cap", max, window: "day" }], note: `cap ${max}` }, ops)
        expect(put.status, JSON.stringify(put.json)).toBe(200)
      }
      expect((yield* get(base, ops)).json).toMatchObject({ version: 4, note: "cap 1" })

      const page = yield* get(`${base}/versions?limit=2`, ops)
      expect(page.status).toBe(200)
      const versions = page.json.versions as Array<Record<string, unknown>>
      expect(versions.map((v) => [v.version, v.note, v.live, v.rules])).toEqual([[4, "cap 1", true, 1], [3, "cap 2", false, 1]])
      expect(versions[0]).toMatchObject({ createdByEmail: "ops@example.com" })
      expect(Date.parse(String(versions[0]?.createdAt))).toBeGreaterThan(Date.now() - 60_000)
      expect(page.json.next).toBe(3)
      const older = yield* get(`${base}/versions?limit=2&before=3`, ops)
      expect((older.json.versions as Array<Record<string, unknown>>).map((v) => [v.version, v.createdBy])).toEqual([[2, expect.any(String)], [1, "config"]])
      expect(older.json.next).toBeUndefined()

      // Two versions' documents: what a diff is made from.
      const two = yield* get(`${base}/versions/2`, ops)
      expect(two.json).toMatchObject({ version: 2, live: false, note: "cap 3", document: { rules: [{ id: "cap", max: 3 }] } })
      expectProblem(yield* get(`${base}/versions/99`, ops), 404, "not-found")
      expect(fieldsOf(yield* get(`${base}/versions/zero`, ops))).toEqual(["params.version"])
    }).pipe(Effect.scoped), 60_000)

  it.live("a bad policy is refused naming each field's path, in a PUT and in a tested draft", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway()
      const ops = yield* superadmin(gw.baseUrl)
      const rules = [
        { id: "a", type: "dedup", windowSeconds: 60, mode: "reject" },
        { id: "b", type: "blacklist", lists: ["nope"] },
        { id: "c", type: "frequency_cap", max: 0, window: "rolling" }
      ]
      const put = yield* send("PUT", `${gw.baseUrl}/v1/policies`, { rules }, ops)
      expectProblem(put, 400, "validation")
      expect(fieldsOf(put)).toEqual(["rules[2].max"])
      const semantic = yield* send("PUT", `${gw.baseUrl}/v1/policies`, { rules: [rules[0], rules[1], { ...rules[2], max: 5 }] }, ops)
      expect(fieldsOf(semantic).sort()).toEqual(["rules[1].lists[0]", "rules[2].windowSeconds"])
      const draft = yield* post(`${gw.baseUrl}/v1/policies/test`, { to: "+4915112345678", text: "hi", policy: { rules: [rules[0], rules[1]] } }, ops)
      expectProblem(draft, 400, "validation")
      expect(fieldsOf(draft)).toEqual(["policy.rules[1].lists[0]"])
      expect(fieldsOf(yield* post(`${gw.baseUrl}/v1/policies/test`, { to: "12", text: "hi" }, ops))).toEqual(["to"])
      expect((yield* get(`${gw.baseUrl}/v1/policies`, ops)).json.version).toBe(1)
    }).pipe(Effect.scoped), 60_000)
})

describe("test this message", () => {
  it.live("names the rule that would decide and spends no counter: the real message afterwards still passes the cap", () =>
    Effect.gen(function*() {
      let now = NOON
      const gw = yield* startGateway({ clock: { now: () => now }, config: { policy } })
      const ops = yield* superadmin(gw.baseUrl)
      const a = yield* signUp(gw.baseUrl)
      const test = (body: Record<string, unknown>) => post(`${gw.baseUrl}/v1/policies/test`, { text: "Sale!", from: "Shop", ...body }, ops)
      expect((yield* post(`${gw.baseUrl}/v1/blacklists/dnd/entries`, { numbers: ["+4915100000001"] }, ops)).status).toBe(200)

      // Tested three times: admitted each time, since a dry run counts nothing.
      for (let i = 0; i < 3; i++) {
        const tested = yield* test({ to: "+49 151 12345678", appId: a.appId, messageClass: "promotional" })
        expect(tested.status, JSON.stringify(tested.json)).toBe(200)
        expect(tested.json).toMatchObject({ decision: "admit", policyVersion: 1, to: "+4915112345678", country: "DE", orgId: a.orgId, messageClass: "promotional" })
        expect(tested.json.ruleId).toBeUndefined()
        expect(outcomes(tested.json)).toEqual({ dnd: "passed", night: "passed", "otp-once": "not_applicable", "cap-1": "passed" })
      }
      // The cap of one a day is whole: the real message goes; then the test names the cap.
      const sent = yield* post(`${gw.baseUrl}/v1/messages`, { to: "+4915112345678", from: "Shop", text: "Sale!", messageClass: "promotional" }, a.auth)
      expect(sent.status, JSON.stringify(sent.json)).toBe(202)
      const capped = yield* test({ to: "+4915112345678", appId: a.appId, messageClass: "promotional" })
      expect(capped.json).toMatchObject({ decision: "refuse", ruleId: "cap-1", reason: "frequency_cap", retryAt: "2026-01-16T00:00:00.000Z", retryAfterSeconds: 12 * 3600 })
      expect(outcomes(capped.json)).toMatchObject({ dnd: "passed", night: "passed", "cap-1": "refused" })
      const again = yield* post(`${gw.baseUrl}/v1/messages`, { to: "+4915112345678", from: "Shop", text: "Sale 2", messageClass: "promotional" }, a.auth)
      expect(again.json).toMatchObject({ reason: "frequency_cap", ruleId: "cap-1" })

      // Blacklisted: decided by the list; the rules after it are not reached.
      const listed = yield* test({ to: "+4915100000001" })
      expect(listed.json).toMatchObject({ decision: "refuse", ruleId: "dnd", reason: "blacklisted", messageClass: "transactional" })
      expect(outcomes(listed.json)).toEqual({ dnd: "refused", night: "not_applicable", "otp-once": "not_reached", "cap-1": "not_reached" })
      expect((listed.json.rules as Trace).find((r) => r.ruleId === "night")?.detail).toBe("quiet hours apply to promotional messages only")

      // At night a promotion is deferred until the quiet hours end, 08:00 in Berlin.
      const night = yield* test({ to: "+4915112340000", messageClass: "promotional", at: new Date(NIGHT).toISOString() })
      expect(night.json).toMatchObject({ decision: "defer", ruleId: "night", reason: "quiet_hours", retryAt: "2026-01-16T07:00:00.000Z" })

      // Dedup in return_first mode: the earlier message is named; the policy's counters stay as they were.
      const otp = { to: "+4915112349999", from: "Shop", text: "code 1234" }
      const first = yield* post(`${gw.baseUrl}/v1/messages`, otp, a.auth)
      expect(first.status).toBe(202)
      const duplicate = yield* test({ ...otp, appId: a.appId })
      expect(duplicate.json).toMatchObject({ decision: "refuse", ruleId: "otp-once", reason: "duplicate", firstMessageId: first.json.id })

      // A draft is tested against the same counters: a cap of 5 would let the capped recipient through.
      const draft = yield* test({
        to: "+4915112345678",
        appId: a.appId,
        messageClass: "promotional",
        policy: { blacklists: [{ name: "fresh", object: null }], rules: [{ id: "cap-1", type: "frequency_cap", max: 5, window: "day" }] }
      })
      expect(draft.json).toMatchObject({ decision: "admit", unloadedLists: ["fresh"] })
      expect(draft.json.policyVersion).toBeUndefined()
      now += 86_400_000
      expect(fieldsOf(yield* test({ to: "+4915112345678", appId: "app_nope" }))).toEqual(["appId"])
    }).pipe(Effect.scoped), 60_000)
})

describe("per-rule counters", () => {
  it.live("admitted and refused per rule, summed in SQL, in evaluation order; once and over SSE", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({ clock: { now: () => NOON }, config: { policy } })
      const ops = yield* superadmin(gw.baseUrl)
      const a = yield* signUp(gw.baseUrl)
      expect((yield* post(`${gw.baseUrl}/v1/blacklists/dnd/entries`, { numbers: ["+4915100000001"] }, ops)).status).toBe(200)
      const submit = (to: string, text: string) => post(`${gw.baseUrl}/v1/messages`, { to, from: "Shop", text, messageClass: "promotional" }, a.auth)
      expect((yield* submit("+4915112345678", "one")).status).toBe(202)
      expect((yield* submit("+4915112345678", "two")).status).toBe(422)
      expect((yield* submit("+4915100000001", "three")).status).toBe(422)
      expect((yield* submit("+4915112345679", "four")).status).toBe(202)

      const stats = yield* eventually("the counts written", Effect.map(get(`${gw.baseUrl}/v1/policies/stats?minutes=5`, ops), (r) => r.json), {
        timeout: 10_000,
        until: (json) => json.admitted === 2 && json.refused === 2
      })
      const byRule = Object.fromEntries((stats.rules as Array<Record<string, unknown>>).map((r) => [r.ruleId, r]))
      expect((stats.rules as Array<{ ruleId: string }>).map((r) => r.ruleId)).toEqual(["dnd", "night", "otp-once", "cap-1"])
      expect(byRule.dnd).toMatchObject({ position: 0, type: "blacklist", admitted: 2, refused: 1, byReason: { blacklisted: 1 } })
      expect(byRule["cap-1"]).toMatchObject({ position: 3, admitted: 2, refused: 1, byReason: { frequency_cap: 1 } })
      expect(byRule.night).toMatchObject({ admitted: 2, refused: 0 })
      expect(byRule["otp-once"]).toMatchObject({ admitted: 0, refused: 0 })
      expect(stats.policyVersion).toBe(1)
      // Dry runs are not counted.
      expect((yield* post(`${gw.baseUrl}/v1/policies/test`, { to: "+4915100000001", text: "x" }, ops)).json.decision).toBe("refuse")
      const stream = yield* firstEvents(`${gw.baseUrl}/v1/policies/stats/stream?minutes=5`, ops, 2)
      expect(stream.contentType).toContain("text/event-stream")
      expect(stream.events.map((e) => [e.admitted, e.refused])).toEqual([[2, 2], [2, 2]])
    }).pipe(Effect.scoped), 60_000)
})

describe("blacklists: upload, search, load state", () => {
  it.live("a file of numbers is added (or removed) in one go, with a report; search finds them by their start", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway()
      const ops = yield* superadmin(gw.baseUrl)
      const a = yield* signUp(gw.baseUrl)
      const b = yield* signUp(gw.baseUrl)
      const put = yield* send("PUT", `${gw.baseUrl}/v1/policies`, {
        blacklists: [{ name: "optout", org: a.orgId, object: null }],
        rules: [{ id: "optout", scope: { org: a.orgId }, type: "blacklist", lists: ["optout"] }]
      }, ops)
      expect(put.status).toBe(200)
      const url = `${gw.baseUrl}/v1/blacklists/optout/entries`

      const csv = "phone,name\n+4915112345601,Ann\n\"+49 151 1234-5602\",Bob\n+4915112345601,Ann again\n+4916012345603,Cid\nnot a phone,x\n"
      const added = yield* upload(`${url}/upload`, csv, "text/csv", a.userAuth)
      expect(added.status, JSON.stringify(added.json)).toBe(200)
      expect(added.json).toEqual({
        lines: 6, numbers: 3, changed: 3, duplicates: 1, invalid: 1, invalidLines: [{ line: 6, text: "not a phone,x" }], header: true
      })
      const refused = yield* post(`${gw.baseUrl}/v1/messages`, { to: "+4915112345602", from: "Shop", text: "hi" }, a.auth)
      expect(refused.json).toMatchObject({ reason: "blacklisted", ruleId: "optout" })

      const search = yield* get(`${url}?q=%2B49151`, a.userAuth)
      expect(search.json).toEqual({ entries: [{ number: "+4915112345601", source: "added" }, { number: "+4915112345602", source: "added" }], more: false })
      expect((yield* get(`${url}?limit=2`, a.userAuth)).json).toMatchObject({ more: true })
      expect(fieldsOf(yield* get(`${url}?q=abc`, a.userAuth))).toEqual(["query.q"])

      const removed = yield* upload(`${url}/upload?mode=remove`, "+4915112345602\n", "text/plain", a.userAuth)
      expect(removed.json).toMatchObject({ numbers: 1, changed: 1 })
      expect((yield* get(`${url}?q=4915112345602`, a.userAuth)).json).toEqual({ entries: [], more: false })

      // The wrong file is refused whole; another organisation's admins do not see the list.
      const wrong = yield* upload(`${url}/upload`, "a,b\n1,2\nx,y\n+4915112345609\n", "text/csv", a.userAuth)
      expectProblem(wrong, 400, "validation")
      expect(fieldsOf(wrong)).toEqual(["body"])
      expect((yield* get(`${url}?q=4915112345609`, a.userAuth)).json).toEqual({ entries: [], more: false })
      expectProblem(yield* upload(`${url}/upload`, "+4915112345609\n", "text/plain", b.userAuth), 404, "not-found")
      expectProblem(yield* get(url, b.userAuth), 404, "not-found")
      expect((yield* upload(`${url}/upload`, "+4915112345609\n", "application/json", a.userAuth)).status).toBe(415)

      // Load state: how many entries, from where.
      const lists = (yield* get(`${gw.baseUrl}/v1/blacklists`, ops)).json as unknown as Array<Record<string, unknown>>
      expect(lists).toEqual([expect.objectContaining({ name: "optout", object: null, added: 2, removed: 1, entries: 1, stale: false })])
    }).pipe(Effect.scoped), 60_000)
})

describe("operations: live links and pools, rebind, route tester", () => {
  it.live("the live state of every link and pool; a rebind binds again; the tester names the rule, pool and next link", () =>
    Effect.gen(function*() {
      const gw = yield* startPooledGateway({
        links: [{ id: "a" }, { id: "b" }],
        pools: [{ id: "de", members: [{ link: "a", weight: 3 }, { link: "b", weight: 1 }] }],
        routes: [
          { id: "uk", match: { countries: ["GB"] }, target: { link: "b" } },
          { id: "de", match: { prefixes: ["49"] }, target: { pool: "de" } }
        ]
      })
      const ops = yield* superadmin(gw.baseUrl)
      const live = yield* eventually("both links bound", Effect.map(get(`${gw.baseUrl}/v1/admin/state`, ops), (r) => r.json), {
        timeout: 15_000,
        until: (json) => (json.links as Array<{ state?: { bound: boolean } }>).every((l) => l.state?.bound === true)
      })
      expect((live.links as Array<Record<string, unknown>>).map((l) => l.linkId)).toEqual(["a", "b"])
      expect((live.links as Array<{ state: Record<string, unknown> }>)[0]?.state).toMatchObject({ linkId: "a", health: "bound", window: 10, tps: 1000 })
      expect(live.pools).toEqual([expect.objectContaining({ poolId: "de", nextPick: "a", state: expect.objectContaining({ poolId: "de" }) })])

      const reconnects = (json: Record<string, unknown>) =>
        (json.links as Array<{ state?: { counters: { reconnects: number }; bound: boolean } }>)[0]?.state
      const before = reconnects(live)?.counters.reconnects ?? 0
      const rebind = yield* post(`${gw.baseUrl}/v1/admin/links/a/rebind`, {}, ops)
      expect(rebind.status, JSON.stringify(rebind.json)).toBe(204)
      yield* eventually("link a bound again", Effect.map(get(`${gw.baseUrl}/v1/admin/state`, ops), (r) => reconnects(r.json)), {
        timeout: 15_000,
        until: (s) => s !== undefined && s.bound && s.counters.reconnects > before
      })
      expectProblem(yield* post(`${gw.baseUrl}/v1/admin/links/nope/rebind`, {}, ops), 404, "not-found")

      const toPool = yield* post(`${gw.baseUrl}/v1/admin/routes/test`, { to: "+4915112345678" }, ops)
      expect(toPool.status, JSON.stringify(toPool.json)).toBe(200)
      expect(toPool.json).toMatchObject({
        to: "+4915112345678",
        country: "DE",
        routed: true,
        ruleId: "de",
        target: { pool: "de" },
        capacityTps: 2000,
        defaultRoute: false,
        rules: [{ ruleId: "uk", outcome: "no_match", detail: "country DE is not GB" }, { ruleId: "de", outcome: "matched" }],
        pool: { poolId: "de", nextPick: "a" }
      })
      const toLink = yield* post(`${gw.baseUrl}/v1/admin/routes/test`, { to: "+442071234567" }, ops)
      expect(toLink.json).toMatchObject({ ruleId: "uk", target: { link: "b" }, link: { linkId: "b", enabled: true, state: { bound: true } } })
      const nowhere = yield* post(`${gw.baseUrl}/v1/admin/routes/test`, { to: "+33612345678" }, ops)
      expect(nowhere.json).toMatchObject({ routed: false, noRoute: expect.stringContaining("no routing rule matches") })

      // Disabled, the link leaves the pool's rotation: the next pick is the other member.
      expect((yield* post(`${gw.baseUrl}/v1/admin/links/a/disable`, {}, ops)).json).toMatchObject({ enabled: false })
      const disabled = yield* eventually("a out of rotation", Effect.map(post(`${gw.baseUrl}/v1/admin/routes/test`, { to: "+4915112345678" }, ops), (r) => r.json), {
        timeout: 10_000,
        until: (json) => (json.pool as { nextPick?: string } | undefined)?.nextPick === "b"
      })
      expect(disabled).toMatchObject({ capacityTps: 1000 })
      expect((yield* post(`${gw.baseUrl}/v1/admin/links/a/enable`, {}, ops)).json).toMatchObject({ enabled: true })

      const stream = yield* firstEvents(`${gw.baseUrl}/v1/admin/state/stream`, ops, 2)
      expect(stream.contentType).toContain("text/event-stream")
      expect(stream.events).toHaveLength(2)
      expect((stream.events[1]?.links as Array<unknown>).length).toBe(2)
    }).pipe(Effect.scoped), 90_000)
})

describe("operator screens' API: superadmins only", () => {
  it.live("an organisation's owner is refused 403 on every operator endpoint", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({ config: { policy } })
      const a = yield* signUp(gw.baseUrl)
      const base = gw.baseUrl
      for (const reply of [
        yield* get(`${base}/v1/policies/versions`, a.userAuth),
        yield* get(`${base}/v1/policies/versions/1`, a.userAuth),
        yield* get(`${base}/v1/policies/stats`, a.userAuth),
        yield* get(`${base}/v1/policies/stats/stream`, a.userAuth),
        yield* post(`${base}/v1/policies/test`, { to: "+4915112345678", text: "hi" }, a.userAuth),
        yield* get(`${base}/v1/admin/state`, a.userAuth),
        yield* get(`${base}/v1/admin/state/stream`, a.userAuth),
        yield* post(`${base}/v1/admin/links/sim/rebind`, {}, a.userAuth),
        yield* post(`${base}/v1/admin/routes/test`, { to: "+4915112345678" }, a.userAuth),
        yield* send("PUT", `${base}/v1/policies`, { rules: [] }, a.userAuth)
      ]) {
        expectProblem(reply, 403, "forbidden")
      }
      // An app token is no operator either; a global list is not an organisation's to search.
      expectProblem(yield* post(`${base}/v1/policies/test`, { to: "+4915112345678", text: "hi" }, a.auth), 403, "forbidden")
      expectProblem(yield* get(`${base}/v1/blacklists/dnd/entries`, a.userAuth), 404, "not-found")
    }).pipe(Effect.scoped), 60_000)
})
