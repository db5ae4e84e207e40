import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { DatabaseSync } from "node:sqlite"
import { AdminClient, renderBlacklist } from "../../src/cli/admin.ts"
import { bucketOf } from "../../src/policy/PolicyEngine.ts"
import { get, post, send, signUp, startGateway, superadmin } from "../fixtures/Gateway.ts"
import type { RunningGateway } from "../fixtures/Gateway.ts"
import { eventually } from "../fixtures/Eventually.ts"

const policies = (gw: RunningGateway) => `${gw.baseUrl}/v1/policies`
const entries = (gw: RunningGateway, list: string) => `${gw.baseUrl}/v1/blacklists/${list}/entries`

const fieldsOf = (json: Record<string, unknown>) => ((json.errors ?? []) as Array<{ field: string }>).map((e) => e.field)

/** A blacklist file in the gateway's local object store (`objectStore.root` of the fixture). */
const putFile = (gw: RunningGateway, key: string, text: string) =>
  Effect.sync(() => {
    const path = join(gw.dataDir, "objects", key)
    mkdirSync(join(path, ".."), { recursive: true })
    writeFileSync(path, text)
  })

const admin = <A, E>(baseUrl: string, authorization: Record<string, string>, f: (client: AdminClient["Service"]) => Effect.Effect<A, E>) =>
  AdminClient.use(f).pipe(
    Effect.provide(AdminClient.layer(baseUrl, (authorization.authorization ?? "").replace(/^Bearer /, "")))
  )

describe("the contact-policy API", () => {
  it.live("PUT /v1/policies refuses unknown keys, naming them, instead of dropping them", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway()
      const ops = yield* superadmin(gw.baseUrl)
      const a = yield* signUp(gw.baseUrl)

      // A misspelt `classes` would otherwise make a promotional cap count every message.
      const typo = yield* send("PUT", policies(gw), {
        rules: [{ id: "x", type: "frequency_cap", max: 1, window: "hour", clases: ["promotional"] }]
      }, ops)
      expect(typo.status, JSON.stringify(typo.json)).toBe(400)
      expect(typo.json.type).toBe("urn:smsgw:problem:validation")
      expect(fieldsOf(typo.json)).toEqual(["rules[0].clases"])
      expect(String(typo.json.detail)).toContain("rules[0].clases")

      // A scope naming both an organisation and an app is not narrowed to one of them silently.
      const scope = yield* send("PUT", policies(gw), {
        rules: [{ id: "y", scope: { org: a.orgId, app: a.appId }, type: "dedup", windowSeconds: 60, mode: "reject" }]
      }, ops)
      expect(scope.status, JSON.stringify(scope.json)).toBe(400)
      expect(fieldsOf(scope.json).every((f) => f.startsWith("rules[0].scope"))).toBe(true)
      expect(fieldsOf(scope.json).length).toBeGreaterThan(0)

      // Unknown keys at every level, all in one answer.
      const several = yield* send("PUT", policies(gw), {
        rules: [],
        blacklist: [{ name: "dnd" }],
        blacklists: [{ name: "dnd", owner: "x" }]
      }, ops)
      expect(several.status).toBe(400)
      expect(fieldsOf(several.json).sort()).toEqual(["blacklist", "blacklists[0].owner"])

      // Nothing was stored; a correct document still goes through, and so do the entries endpoints' bodies.
      const current = yield* get(policies(gw), ops)
      expect(current.json.version).toBe(1)
      const good = yield* send("PUT", policies(gw), {
        rules: [{ id: "x", type: "frequency_cap", max: 1, window: "hour", classes: ["promotional"] }],
        expectedVersion: 1
      }, ops)
      expect(good.status, JSON.stringify(good.json)).toBe(200)
      expect(good.json).toMatchObject({ version: 2, rules: [{ id: "x", classes: ["promotional"] }] })

      // The OpenAPI document still describes the body.
      const openapi = yield* get(`${gw.baseUrl}/openapi.json`)
      const put = (openapi.json.paths as Record<string, Record<string, { requestBody?: unknown }>>)["/v1/policies"]?.put
      expect(JSON.stringify(put?.requestBody)).toMatch(/"\$ref"|"rules"/)
    }).pipe(Effect.scoped), 60_000)

  it.live("a stored version that does not decode: GET answers the version in use and names the unreadable one; PUT goes on top", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({ config: { policy: { rules: [{ id: "cap", type: "frequency_cap", max: 5, window: "day" }] } } })
      const ops = yield* superadmin(gw.baseUrl)
      // A corrupt row written behind the gateway's back (or a document a newer release no longer accepts).
      const db = new DatabaseSync(join(gw.dataDir, "gateway.db"))
      db.exec("PRAGMA busy_timeout = 5000")
      db.prepare("INSERT INTO policy_versions (version, document, created_at, created_by) VALUES (?, ?, ?, ?)")
        .run(2, "{\"rules\": [", Date.now(), "old release")
      db.close()

      const read = yield* get(policies(gw), ops)
      expect(read.status, read.text).toBe(200)
      expect(read.json).toMatchObject({ version: 1, rules: [{ id: "cap", max: 5 }], unreadableVersions: [{ version: 2 }] })
      expect(typeof (read.json.unreadableVersions as Array<{ error: string }>)[0]?.error).toBe("string")
      // Still answered on the next reads (the problem stays visible until a new version is written).
      expect((yield* get(policies(gw), ops)).json).toMatchObject({ version: 1, unreadableVersions: [{ version: 2 }] })

      const put = yield* send("PUT", policies(gw), { rules: [{ id: "cap", type: "frequency_cap", max: 2, window: "day" }], expectedVersion: 1 }, ops)
      expect(put.status, JSON.stringify(put.json)).toBe(200)
      expect(put.json.version).toBe(3)
      expect(put.json.unreadableVersions).toBeUndefined()
      const after = yield* get(policies(gw), ops)
      expect(after.json).toMatchObject({ version: 3, rules: [{ id: "cap", max: 2 }] })
      expect(after.json.unreadableVersions).toBeUndefined()
    }).pipe(Effect.scoped), 60_000)

  it.live("a list removed from the policy takes its API entries with it: created again (for anyone), it starts empty", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway()
      const ops = yield* superadmin(gw.baseUrl)
      const a = yield* signUp(gw.baseUrl)
      const b = yield* signUp(gw.baseUrl)
      const optout = (org: string) => ({
        blacklists: [{ name: "optout", org, object: null }],
        rules: [{ id: "optout", scope: { org }, type: "blacklist", lists: ["optout"] }]
      })
      expect((yield* send("PUT", policies(gw), optout(a.orgId), ops)).status).toBe(200)
      expect((yield* post(entries(gw, "optout"), { numbers: ["+4915112345678"] }, a.userAuth)).json).toEqual({ changed: 1 })
      const refused = yield* post(`${gw.baseUrl}/v1/messages`, { to: "+4915112345678", from: "Shop", text: "hi" }, a.auth)
      expect(refused.status).toBe(422)

      // Removed, then the name is given to another organisation: its list must not hold a's opt-outs.
      expect((yield* send("PUT", policies(gw), { rules: [] }, ops)).status).toBe(200)
      expect((yield* send("PUT", policies(gw), optout(b.orgId), ops)).status).toBe(200)
      const lists = yield* get(`${gw.baseUrl}/v1/blacklists`, b.userAuth)
      expect(lists.json).toEqual([expect.objectContaining({ name: "optout", org: b.orgId, added: 0, removed: 0 })])
      const sent = yield* post(`${gw.baseUrl}/v1/messages`, { to: "+4915112345678", from: "Shop", text: "hi" }, b.auth)
      expect(sent.status, JSON.stringify(sent.json)).toBe(202)

      // Removed and re-created for the same organisation in one change each: empty too.
      expect((yield* post(entries(gw, "optout"), { numbers: ["+4915112345679"] }, b.userAuth)).json).toEqual({ changed: 1 })
      expect((yield* send("PUT", policies(gw), { rules: [] }, ops)).status).toBe(200)
      expect((yield* send("PUT", policies(gw), optout(b.orgId), ops)).status).toBe(200)
      expect((yield* get(`${gw.baseUrl}/v1/blacklists`, b.userAuth)).json).toEqual([expect.objectContaining({ added: 0 })])
    }).pipe(Effect.scoped), 60_000)

  it.live("an organisation's list without a file is never stale; others' view of a list hides the file, its ETag and errors", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({ config: { policy: { blacklistPollSeconds: 1 } } })
      const ops = yield* superadmin(gw.baseUrl)
      const a = yield* signUp(gw.baseUrl)
      yield* putFile(gw, "blacklists/dnd.txt", "+447911123456\n")
      const put = yield* send("PUT", policies(gw), {
        blacklists: [
          { name: "dnd" },
          { name: "a-optout", org: a.orgId, object: null },
          { name: "a-vip", org: a.orgId } // its file, blacklists/a-vip.txt, does not exist
        ],
        rules: [
          { id: "dnd", type: "blacklist", lists: ["dnd"] },
          { id: "a-lists", scope: { org: a.orgId }, type: "blacklist", lists: ["a-optout", "a-vip"] }
        ]
      }, ops)
      expect(put.status, JSON.stringify(put.json)).toBe(200)
      expect(put.json.blacklists).toEqual([
        { name: "dnd" },
        { name: "a-optout", org: a.orgId, object: null },
        { name: "a-vip", org: a.orgId }
      ])
      expect((yield* post(entries(gw, "a-optout"), { numbers: ["+4915112345678"] }, a.userAuth)).json).toEqual({ changed: 1 })

      // Polls go by (every second): the file-less list stays fresh; the missing file makes a-vip stale.
      const lists = yield* eventually("dnd loaded and a-vip stale", Effect.map(get(`${gw.baseUrl}/v1/blacklists`, ops), (r) => {
        const all = r.json as unknown as Array<Record<string, unknown>>
        return all.find((l) => l.name === "dnd")?.etag !== undefined && all.find((l) => l.name === "a-vip")?.stale === true ? all : undefined
      }), { timeout: 10_000 })
      yield* Effect.sleep(1_500)
      const byName = (all: ReadonlyArray<Record<string, unknown>>, name: string) => all.find((l) => l.name === name)
      const later = (yield* get(`${gw.baseUrl}/v1/blacklists`, ops)).json as unknown as Array<Record<string, unknown>>
      expect(byName(later, "a-optout")).toEqual({
        name: "a-optout", object: null, org: a.orgId, baseEntries: 0, added: 1, removed: 0, entries: 1, invalidLines: 0, stale: false
      })
      expect(byName(lists, "dnd")).toMatchObject({ object: "blacklists/dnd.txt", baseEntries: 1, stale: false })
      expect(byName(lists, "a-vip")).toMatchObject({ object: "blacklists/a-vip.txt", stale: true, lastError: expect.stringContaining("not found") })
      const reload = yield* post(`${gw.baseUrl}/v1/blacklists/a-optout/reload`, {}, ops)
      expect(reload.json).toMatchObject({ name: "a-optout", object: null, stale: false })
      expect(reload.json.lastError).toBeUndefined()
      const rejected = yield* post(`${gw.baseUrl}/v1/messages`, { to: "+4915112345678", from: "Shop", text: "hi" }, a.auth)
      expect(rejected.json).toMatchObject({ reason: "blacklisted", ruleId: "a-lists" })

      // The organisation's admins: counts and freshness of their own lists, not where the files live nor why they fail.
      const theirs = (yield* get(`${gw.baseUrl}/v1/blacklists`, a.userAuth)).json as unknown as Array<Record<string, unknown>>
      expect(theirs.map((l) => l.name)).toEqual(["a-optout", "a-vip"])
      expect(byName(theirs, "a-optout")).toEqual({
        name: "a-optout", org: a.orgId, baseEntries: 0, added: 1, removed: 0, entries: 1, invalidLines: 0, stale: false
      })
      const vip = byName(theirs, "a-vip")
      expect(vip).toMatchObject({ name: "a-vip", stale: true })
      expect(Object.keys(vip ?? {}).filter((k) => ["object", "etag", "lastError"].includes(k))).toEqual([])
    }).pipe(Effect.scoped), 60_000)

  it.live("entries: up to 2,000 numbers per call, which fits the default body limit; more is a 400 naming numbers", () =>
    Effect.gen(function*() {
      // The gateway's default request body limit (the test fixture's is lower).
      const gw = yield* startGateway({ config: { http: { maxBodyBytes: 64 * 1024 } } })
      const ops = yield* superadmin(gw.baseUrl)
      expect((yield* send("PUT", policies(gw), { blacklists: [{ name: "dnd", object: null }], rules: [] }, ops)).status).toBe(200)
      const numbers = Array.from({ length: 2_001 }, (_, i) => `+49151${String(10_000_000 + i)}`)
      const added = yield* post(entries(gw, "dnd"), { numbers: numbers.slice(0, 2_000) }, ops)
      expect(added.status, JSON.stringify(added.json)).toBe(200)
      expect(added.json).toEqual({ changed: 2_000 })
      const removed = yield* send("DELETE", entries(gw, "dnd"), { numbers: numbers.slice(0, 2_000) }, ops)
      expect(removed.json).toEqual({ changed: 2_000 })
      const tooMany = yield* post(entries(gw, "dnd"), { numbers }, ops)
      expect(tooMany.status).toBe(400)
      expect(fieldsOf(tooMany.json)).toEqual(["numbers"])
      // Unknown keys in these bodies are refused too.
      const typo = yield* post(entries(gw, "dnd"), { numbers: ["+4915112345678"], list: "dnd" }, ops)
      expect(typo.status).toBe(400)
      expect(fieldsOf(typo.json)).toEqual(["list"])
      const openapi = yield* get(`${gw.baseUrl}/openapi.json`)
      expect(openapi.text).toContain("up to 2,000 per call")
      expect(openapi.text).not.toContain("10,000 per call")
    }).pipe(Effect.scoped), 60_000)

  it.live("admin RPC: a reload answers the file's, added and removed counts apart; a bucket by any spelling of a number", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({ config: { policy: { buckets: 64 } } })
      const ops = yield* superadmin(gw.baseUrl)
      yield* putFile(gw, "blacklists/dnd.txt", "+447911123456\n+447911123457\n+447911123458\n")
      expect((yield* send("PUT", policies(gw), { blacklists: [{ name: "dnd" }, { name: "api-only", object: null }], rules: [] }, ops)).status).toBe(200)
      expect((yield* post(entries(gw, "dnd"), { numbers: ["+4915112345678"] }, ops)).json).toEqual({ changed: 1 })
      expect((yield* send("DELETE", entries(gw, "dnd"), { numbers: ["+447911123456"] }, ops)).json).toEqual({ changed: 1 })

      const reloaded = yield* admin(gw.baseUrl, ops, (c) => c.ReloadBlacklist({ name: "dnd" }))
      expect(reloaded).toMatchObject({ name: "dnd", baseEntries: 3, added: 1, removed: 1, entries: 3, object: "blacklists/dnd.txt", stale: false })
      expect(renderBlacklist(reloaded)).toMatch(/^blacklist dnd: ~3 entries \(file 3, added 1, removed 1\), etag \S+$/)
      const apiOnly = yield* admin(gw.baseUrl, ops, (c) => c.ReloadBlacklist({ name: "api-only" }))
      expect(apiOnly).toMatchObject({ baseEntries: 0, added: 0, removed: 0, entries: 0, object: null, etag: null, stale: false })
      expect(renderBlacklist(apiOnly)).toContain("no file")

      // The bucket the pipeline uses for +4915112345678 (its digits), whichever way the number is written.
      const expected = bucketOf("4915112345678", 64)
      for (const recipient of ["+4915112345678", "+49 151 1234 5678", "004915112345678", "4915112345678"]) {
        const view = yield* admin(gw.baseUrl, ops, (c) => c.InspectBucket({ recipient }))
        expect(view.bucket, recipient).toBe(expected)
      }
      for (const recipient of ["+12", "not a number", "+49 151"]) {
        const error = yield* admin(gw.baseUrl, ops, (c) => c.InspectBucket({ recipient })).pipe(Effect.flip)
        expect(error, recipient).toMatchObject({ _tag: "AdminNotFound", what: "bucket", id: recipient })
      }
    }).pipe(Effect.scoped), 60_000)
})
