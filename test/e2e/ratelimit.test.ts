import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { DatabaseSync } from "node:sqlite"
import { join } from "node:path"
import { post, send, signUp, startGateway } from "../fixtures/Gateway.ts"

const sms = { to: "+4915112345678", from: "ACME", text: "hi" }

const burst = (url: string, n: number, headers: Record<string, string>) =>
  Effect.forEach(Array.from({ length: n }), () => post(url, sms, headers), { concurrency: n })

describe("rate limiting (embedded: L1 + in-memory L2)", () => {
  it.live("an app's limit answers 429 with Retry-After and RateLimit headers; accepted answers carry them too", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway()
      const t = yield* signUp(gw.baseUrl)
      yield* send("PATCH", `${gw.baseUrl}/v1/apps/${t.appId}`, { limits: { perSecond: 5, burst: 3, perDay: 1000 } }, t.userAuth)
      const started = performance.now()
      const results = yield* burst(`${gw.baseUrl}/v1/messages`, 10, t.auth)
      const elapsedSeconds = (performance.now() - started) / 1000
      const ok = results.filter((r) => r.status === 202)
      const limited = results.filter((r) => r.status === 429)
      // The burst of 3, plus what 5/s refills while the ten requests are being decided (none when they take < 200 ms;
      // a loaded machine can take longer): never more, and the rest refused.
      expect(ok.length).toBeGreaterThanOrEqual(3)
      expect(ok.length).toBeLessThanOrEqual(3 + Math.ceil(elapsedSeconds * 5))
      expect(limited).toHaveLength(10 - ok.length)
      expect(limited.length).toBeGreaterThan(0)
      const first = ok[0]!
      expect(first.headers.get("ratelimit-policy")).toBe(`"app:${t.appId}-s";q=5;w=1, "app:${t.appId}-d";q=1000;w=86400, "link:sim-s";q=2000;w=2`)
      expect(first.headers.get("ratelimit")).toMatch(new RegExp(`^"app:${t.appId}-s";r=[0-2];t=1$`))
      const refused = limited[0]!
      expect(refused.contentType).toContain("application/problem+json")
      expect(refused.json.type).toBe("urn:smsgw:problem:too-many-requests")
      expect(refused.headers.get("retry-after")).toBe("1")
      expect(refused.headers.get("ratelimit")).toBe(`"app:${t.appId}-s";r=0;t=1`)
      yield* Effect.sleep(1100)
      expect((yield* post(`${gw.baseUrl}/v1/messages`, sms, t.auth)).status).toBe(202)
    }).pipe(Effect.scoped), 30_000)

  it.live("a change of an app's limits applies at once, without restart", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway()
      const t = yield* signUp(gw.baseUrl)
      const url = `${gw.baseUrl}/v1/messages`
      yield* send("PATCH", `${gw.baseUrl}/v1/apps/${t.appId}`, { limits: { perMinute: 2 } }, t.userAuth)
      expect((yield* burst(url, 5, t.auth)).filter((r) => r.status === 202)).toHaveLength(2)
      yield* send("PATCH", `${gw.baseUrl}/v1/apps/${t.appId}`, { limits: { perMinute: 10 } }, t.userAuth)
      // The new limit starts a fresh bucket of 10 at once.
      expect((yield* burst(url, 12, t.auth)).filter((r) => r.status === 202)).toHaveLength(10)
    }).pipe(Effect.scoped), 30_000)

  it.live("organisation limits from configuration and a link's capacity (counted in parts) apply too", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({
        link: { tps: 2 },
        config: { rateLimits: { organisation: { perMinute: 100 } } }
      })
      const t = yield* signUp(gw.baseUrl)
      const url = `${gw.baseUrl}/v1/messages`
      // 2 parts/s, queueing at most two seconds (4 parts): a two-part message weighs two.
      const long = yield* post(url, { ...sms, text: "x".repeat(200) }, t.auth)
      expect(long.status).toBe(202)
      expect((yield* post(url, { ...sms, text: "y".repeat(200) }, t.auth)).status).toBe(202)
      expect(long.headers.get("ratelimit-policy")).toContain(`"org:${t.orgId}-m";q=100;w=60`)
      const next = yield* post(url, sms, t.auth)
      expect(next.status).toBe(429)
      expect(String(next.json.detail)).toContain("link:sim-s")
    }).pipe(Effect.scoped), 30_000)

  it.live("refusals are not stored by default, and stored as rejected/rate_limited when configured", () =>
    Effect.gen(function*() {
      const count = (dir: string) => {
        const db = new DatabaseSync(join(dir, "gateway.db"), { readOnly: true })
        try {
          return db.prepare("SELECT status, reason FROM messages ORDER BY created_at").all() as Array<{ status: string; reason: string | null }>
        } finally {
          db.close()
        }
      }
      for (const recordRejected of [false, true]) {
        const gw = yield* startGateway({ config: { rateLimits: { recordRejected } } })
        const t = yield* signUp(gw.baseUrl)
        yield* send("PATCH", `${gw.baseUrl}/v1/apps/${t.appId}`, { limits: { perMinute: 1 } }, t.userAuth)
        yield* burst(`${gw.baseUrl}/v1/messages`, 3, t.auth)
        const rows = count(gw.dataDir)
        expect(rows.filter((r) => r.status !== "rejected")).toHaveLength(1)
        const rejected = rows.filter((r) => r.status === "rejected")
        expect(rejected).toHaveLength(recordRejected ? 2 : 0)
        for (const r of rejected) expect(r.reason).toContain("rate_limited")
      }
    }).pipe(Effect.scoped), 30_000)
})
