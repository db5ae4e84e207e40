/**
 * Status callbacks delivered by the embedded gateway to real node:http receivers: signed (checked with the documented
 * verifySignature), posted again after a receiver that was down comes back, in order per message; a redirect not
 * followed; a slow receiver cut at the timeout and holding only its app's share; private and link-local addresses
 * refused before any connection; dead after the retry window, listed by the API and replayed through it; the backlog
 * gauge, and leases given back when the deliverer stops. Outbox rows are written as the message store writes them in a
 * move's transaction (test/fixtures/Callbacks.ts).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import type { Context } from "effect"
import { SqlClient } from "effect/sql"
import { execFileSync } from "node:child_process"
import { readFileSync } from "node:fs"
import { createServer as createHttpsServer } from "node:https"
import type { Server } from "node:https"
import type { AddressInfo } from "node:net"
import { join } from "node:path"
import { createSecureContext } from "node:tls"
import { verifySignature } from "../../src/domain/Callback.ts"
import { productVersion } from "../../src/layers/Version.ts"
import { NodeSqliteClient } from "../../src/storage/NodeSqliteClient.ts"
import type { GatewayConfig } from "../../src/layers/Config.ts"
import { outbox, queueCallback, seedMessage, startReceiver } from "../fixtures/Callbacks.ts"
import type { QueuedCallback, Received } from "../fixtures/Callbacks.ts"
import { tempDir } from "../fixtures/Databases.ts"
import { eventually } from "../fixtures/Eventually.ts"
import { get, post, signUp, startGateway } from "../fixtures/Gateway.ts"
import type { RunningGateway, Tenant } from "../fixtures/Gateway.ts"

const fast = { pollIntervalMs: 50, backoff: { initialMs: 50, maxMs: 200 } }

const start = (callbacks: NonNullable<GatewayConfig["callbacks"]>) => startGateway({ config: { callbacks } })

/** The gateway's own database, as the message store would write it. */
const inStore = <A, E>(gw: RunningGateway, effect: Effect.Effect<A, E, SqlClient.SqlClient>) =>
  effect.pipe(Effect.provideContext(gw.context as Context.Context<SqlClient.SqlClient>))

/** A tenant whose app signs with `secret` (and `previous`, mid-rotation). */
const tenantWithSecret = (gw: RunningGateway, secret: string, previous?: string) =>
  Effect.gen(function*() {
    const tenant = yield* signUp(gw.baseUrl)
    yield* inStore(gw, Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql`UPDATE apps SET callback_secret = ${secret}, callback_secret_previous = ${previous ?? null},
          callback_secret_previous_until = ${previous === undefined ? null : Date.now() + 3_600_000}
        WHERE id = ${tenant.appId}`
    }).pipe(Effect.orDie))
    return tenant
  })

const moves = ["queued", "submitted", "delivered"] as const

/** `count` messages of the tenant's app, each with its callbacks queued for `statuses` in order. */
const queueMessages = (
  gw: RunningGateway,
  tenant: Tenant,
  url: string,
  count: number,
  statuses: ReadonlyArray<typeof moves[number]> = moves
) =>
  inStore(gw, Effect.gen(function*() {
    const queued: Array<QueuedCallback & { readonly messageId: string; readonly status: string }> = []
    for (let i = 0; i < count; i++) {
      const messageId = `msg_${crypto.randomUUID()}`
      yield* seedMessage({ id: messageId, orgId: tenant.orgId, appId: tenant.appId })
      for (const status of statuses) {
        queued.push({ ...(yield* queueCallback({ messageId, orgId: tenant.orgId, appId: tenant.appId, url, status })), messageId, status })
      }
    }
    return queued
  }))

const bodyOf = (r: Received) => JSON.parse(r.body) as { eventId: string; messageId: string; status: string }

const metricValue = (text: string, series: string) => {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `))
  return line === undefined ? 0 : Number(line.slice(series.length + 1))
}

/**
 * How much the callback counters grew since this was made: metrics are the process's, and every gateway of this file
 * runs in one process.
 */
const countersFrom = (gw: RunningGateway) =>
  Effect.gen(function*() {
    const read = Effect.map(get(`${gw.baseUrl}/metrics`), (r) => r.text)
    const before = yield* read
    return Effect.map(read, (after) => (series: string) => metricValue(after, series) - metricValue(before, series))
  })

describe("status callbacks, delivered", () => {
  it.live("signed with every secret in force; a receiver down for a while gets every callback later, each in order per message", () =>
    Effect.gen(function*() {
      const gw = yield* start({ ...fast, allowPrivateNetworks: true })
      const counters = yield* countersFrom(gw)
      let down = true
      const delivered: Array<Received> = []
      // Answered as they come: 503 while down, then 200 with a body past the 4 KB the gateway reads.
      const receiver = yield* startReceiver((req, res) => {
        if (!down) delivered.push(req)
        res.statusCode = down ? 503 : 200
        res.end(down ? "down" : "x".repeat(64 * 1024))
      })
      const tenant = yield* tenantWithSecret(gw, "whsec_new", "whsec_old")
      const queued = yield* queueMessages(gw, tenant, `${receiver.url}/hooks/sms?app=1`, 4)

      // Down: each message's first move is tried, refused, tried again; never a later move of a message.
      yield* eventually("several refused attempts", Effect.sync(() => receiver.requests.length >= 8))
      expect(receiver.requests.every((r) => bodyOf(r).status === "queued")).toBe(true)
      down = false
      yield* eventually(
        "every callback answered 200",
        inStore(gw, outbox).pipe(Effect.map((rows) => rows.length === 0)),
        { timeout: 20_000 }
      )
      const seen = delivered.map(bodyOf)
      expect(seen.map((b) => b.eventId).sort()).toEqual(queued.map((q) => q.eventId).sort())
      // In order per message: the statuses each message's requests carried never go back.
      for (const messageId of new Set(queued.map((q) => q.messageId))) {
        expect(seen.filter((b) => b.messageId === messageId).map((b) => b.status)).toEqual([...moves])
        // Every request of the message, refused ones too: a later move only after the earlier one was taken.
        const order = receiver.requests.map(bodyOf).filter((b) => b.messageId === messageId).map((b) => moves.indexOf(b.status as typeof moves[number]))
        expect(order).toEqual([...order].sort((a, b) => a - b))
      }
      // The exact body as queued, signed with both secrets, with the event's id, by this version.
      const now = Math.floor(Date.now() / 1000)
      for (const r of receiver.requests) {
        const q = queued.find((x) => x.eventId === bodyOf(r).eventId)
        expect(r.body).toBe(q?.body)
        expect(r.path).toBe("/hooks/sms?app=1")
        expect(r.headers["content-type"]).toBe("application/json")
        expect(r.headers["user-agent"]).toBe(`smsgw-callbacks/${productVersion}`)
        expect(r.headers["smsgw-event-id"]).toBe(q?.eventId)
        const signature = String(r.headers["smsgw-signature"])
        expect(signature).toMatch(/^t=\d+,v1=[0-9a-f]{64},v1=[0-9a-f]{64}$/)
        expect(verifySignature("whsec_new", signature, r.body, now)).toBe(true)
        expect(verifySignature("whsec_old", signature, r.body, now)).toBe(true)
        expect(verifySignature("whsec_other", signature, r.body, now)).toBe(false)
        expect(verifySignature("whsec_new", signature, `${r.body} `, now)).toBe(false)
      }
      const grew = yield* counters
      expect(grew("smsgw_callbacks_delivered_total")).toBe(12)
      expect(grew("smsgw_callbacks_failed_total{reason=\"http_5xx\"}")).toBeGreaterThanOrEqual(8)
      expect(grew("smsgw_callbacks_dead_total")).toBe(0)
      expect((yield* get(`${gw.baseUrl}/metrics`)).text).toContain("smsgw_callbacks_due ")
    }), 60_000)

  it.live("a redirect is not followed; a receiver slower than the timeout, to answer or to finish its body, is a failure", () =>
    Effect.gen(function*() {
      const gw = yield* start({ ...fast, allowPrivateNetworks: true, timeoutMs: 400 })
      const counters = yield* countersFrom(gw)
      const receiver = yield* startReceiver((req, res) => {
        if (req.path.startsWith("/moved")) {
          res.writeHead(302, { location: "/elsewhere" })
          res.end()
        } else if (req.path.startsWith("/trickle")) {
          // Headers at once, the body never finished.
          res.writeHead(200, { "content-type": "text/plain" })
          res.write("partial")
        }
        // /silent: never answered.
      })
      const tenant = yield* tenantWithSecret(gw, "whsec_s")
      const [moved] = yield* queueMessages(gw, tenant, `${receiver.url}/moved`, 1, ["delivered"])
      const [silent] = yield* queueMessages(gw, tenant, `${receiver.url}/silent`, 1, ["delivered"])
      const [trickle] = yield* queueMessages(gw, tenant, `${receiver.url}/trickle`, 1, ["delivered"])
      const rowOf = (id: number) => inStore(gw, outbox).pipe(Effect.map((rows) => rows.find((r) => r.id === id)))
      const failedTwice = (id: number) => eventually(`callback ${id} failed twice`, rowOf(id), { until: (r) => r.attempts >= 2 })

      expect(yield* failedTwice(moved!.id)).toMatchObject({ state: "pending", lastError: "HTTP 302 (redirects are not followed)", lastStatus: 302 })
      expect(receiver.requests.some((r) => r.path === "/elsewhere")).toBe(false)
      expect(yield* failedTwice(silent!.id)).toMatchObject({ lastError: "no complete answer within 400 ms", lastStatus: null })
      expect(yield* failedTwice(trickle!.id)).toMatchObject({ lastError: "no complete answer within 400 ms", lastStatus: null })
      const grew = yield* counters
      expect(grew("smsgw_callbacks_failed_total{reason=\"redirect\"}")).toBeGreaterThanOrEqual(2)
      expect(grew("smsgw_callbacks_failed_total{reason=\"timeout\"}")).toBeGreaterThanOrEqual(4)
      expect(grew("smsgw_callbacks_delivered_total")).toBe(0)
    }), 60_000)

  it.live("a receiver that never answers holds only its app's share: concurrencyPerApp posts, while another app's go through", () =>
    Effect.gen(function*() {
      const gw = yield* start({ ...fast, allowPrivateNetworks: true, timeoutMs: 20_000, concurrencyPerApp: 2 })
      const stuck = yield* startReceiver(() => undefined)
      const fine = yield* startReceiver()
      const slowApp = yield* tenantWithSecret(gw, "whsec_slow")
      const quickApp = yield* tenantWithSecret(gw, "whsec_quick")
      yield* queueMessages(gw, slowApp, `${stuck.url}/hook`, 6, ["delivered"])
      yield* eventually("the slow app's share in flight", Effect.sync(() => stuck.requests.length === 2))
      const quick = yield* queueMessages(gw, quickApp, `${fine.url}/hook`, 6, ["delivered"])
      yield* eventually("the other app's callbacks delivered", Effect.sync(() => fine.requests.length === quick.length))
      // Delivered rows go at the next poll; the slow app's six stay, two of them in flight.
      yield* eventually("only the slow app's callbacks left", inStore(gw, outbox), { until: (rows) => rows.length === 6 })
      expect(stuck.requests.length).toBe(2)
    }), 60_000)

  it.live("https keeps certificate checking on, with the URL's host as SNI: a self-signed receiver is refused", () =>
    Effect.gen(function*() {
      const gw = yield* start({ ...fast, allowPrivateNetworks: true })
      const dir = yield* tempDir
      execFileSync("openssl", [
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
        "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
        "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem")
      ], { stdio: "ignore" })
      const names: Array<string> = []
      let answered = 0
      const context = createSecureContext({ key: readFileSync(join(dir, "key.pem")), cert: readFileSync(join(dir, "cert.pem")) })
      const server = yield* Effect.acquireRelease(
        Effect.callback<Server>((resume) => {
          const s = createHttpsServer({
            SNICallback: (name, cb) => {
              names.push(name)
              cb(null, context)
            }
          }, (_, res) => {
            answered++
            res.end()
          })
          s.listen(0, "127.0.0.1", () => resume(Effect.succeed(s)))
        }),
        (s) => Effect.sync(() => s.close())
      )
      const port = (server.address() as AddressInfo).port
      const tenant = yield* tenantWithSecret(gw, "whsec_tls")
      const [row] = yield* queueMessages(gw, tenant, `https://localhost:${port}/hook`, 1, ["delivered"])
      const failed = yield* eventually("the callback refused by the certificate check", inStore(gw, outbox).pipe(Effect.map((rows) => rows.find((r) => r.id === row!.id))), {
        until: (r) => r.attempts >= 1
      })
      expect(failed.lastError).toMatch(/self-signed certificate/)
      expect(names).toContain("localhost")
      expect(answered).toBe(0)
    }), 60_000)

  it.live("private, loopback and link-local addresses are refused before any connection when the configuration does not allow them", () =>
    Effect.gen(function*() {
      const gw = yield* start({ ...fast, allowPrivateNetworks: false })
      const counters = yield* countersFrom(gw)
      const receiver = yield* startReceiver()
      const tenant = yield* tenantWithSecret(gw, "whsec_p")
      const port = new URL(receiver.url).port
      const targets = {
        private: "http://10.255.255.1/hook",
        metadata: "http://169.254.169.254/latest/meta-data/",
        loopbackByName: `http://localhost:${port}/hook`,
        loopback: `${receiver.url}/hook`,
        mapped: `http://[::ffff:127.0.0.1]:${port}/hook`
      }
      const rows: Record<string, number> = {}
      for (const [name, url] of Object.entries(targets)) rows[name] = (yield* queueMessages(gw, tenant, url, 1, ["delivered"]))[0]!.id
      const errors = yield* eventually(
        "every callback refused",
        inStore(gw, outbox).pipe(Effect.map((all) => Object.fromEntries(Object.entries(rows).map(([name, id]) => [name, all.find((r) => r.id === id)?.lastError])))),
        { until: (e) => Object.values(e).every((v) => v !== null && v !== undefined) }
      )
      expect(errors).toEqual({
        private: "address 10.255.255.1 is private; callbacks.allowPrivateNetworks is off",
        metadata: "address 169.254.169.254 is link-local; callbacks.allowPrivateNetworks is off",
        loopbackByName: expect.stringMatching(/^address (127\.0\.0\.1|::1) is loopback; callbacks\.allowPrivateNetworks is off$/),
        loopback: "address 127.0.0.1 is loopback; callbacks.allowPrivateNetworks is off",
        mapped: "address ::ffff:7f00:1 is loopback; callbacks.allowPrivateNetworks is off"
      })
      expect(receiver.connections()).toBe(0)
      const grew = yield* counters
      expect(grew("smsgw_callbacks_failed_total{reason=\"refused_address\"}")).toBeGreaterThanOrEqual(5)
    }), 60_000)

  it.live("dead after the retry window; listed by the app's admins and its own token only; replayed through the API and delivered", () =>
    Effect.gen(function*() {
      const gw = yield* start({ ...fast, allowPrivateNetworks: true, maxAgeSeconds: 1 })
      const counters = yield* countersFrom(gw)
      let broken = true
      const receiver = yield* startReceiver((_, res) => {
        res.statusCode = broken ? 500 : 204
        res.end()
      })
      const tenant = yield* tenantWithSecret(gw, "whsec_d")
      const queued = yield* queueMessages(gw, tenant, `${receiver.url}/hook`, 2, ["queued", "delivered"])
      // Each message's first move dies, then its second is tried and dies too: all four dead.
      yield* eventually(
        "every callback dead",
        inStore(gw, outbox),
        { timeout: 20_000, until: (rows) => rows.length === 4 && rows.every((r) => r.state === "dead") }
      )
      const byStatus = (r: Received) => bodyOf(r).status
      for (const messageId of new Set(queued.map((q) => q.messageId))) {
        const statuses = receiver.requests.filter((r) => bodyOf(r).messageId === messageId).map(byStatus)
        expect(statuses.indexOf("delivered")).toBeGreaterThan(statuses.lastIndexOf("queued"))
      }

      const base = `${gw.baseUrl}/v1/apps/${tenant.appId}/callbacks`
      const listed = yield* get(`${base}?state=dead&limit=3`, tenant.userAuth)
      expect(listed.status).toBe(200)
      const items = listed.json.items as Array<Record<string, unknown>>
      const newest = [...queued].sort((a, b) => b.id - a.id)
      expect(items.map((i) => i.id)).toEqual(newest.slice(0, 3).map((q) => String(q.id)))
      expect(items[0]).toMatchObject({
        id: String(newest[0]!.id),
        eventId: newest[0]!.eventId,
        messageId: newest[0]!.messageId,
        status: newest[0]!.status,
        url: `${receiver.url}/hook`,
        state: "dead",
        lastError: "HTTP 500",
        lastStatus: 500
      })
      expect(typeof items[0]!.deadAt).toBe("string")
      const page2 = yield* get(`${base}?state=dead&cursor=${String(listed.json.next)}`, tenant.auth)
      expect(page2.status).toBe(200)
      expect((page2.json.items as Array<Record<string, unknown>>).map((i) => i.id)).toEqual([String(newest[3]!.id)])
      expect(page2.json.next).toBeUndefined()
      expect(((yield* get(`${base}?state=failing`, tenant.userAuth)).json.items as Array<unknown>).length).toBe(0)

      // Nobody else: another organisation (404, as for no app), another app's token (403); bad queries are 400.
      const other = yield* signUp(gw.baseUrl)
      expect((yield* get(base, other.userAuth)).status).toBe(404)
      expect((yield* get(base, other.auth)).status).toBe(403)
      expect((yield* post(`${base}/replay`, { all: true }, other.userAuth)).status).toBe(404)
      const unknownKey = yield* get(`${base}?status=dead`, tenant.userAuth)
      expect(unknownKey.status).toBe(400)
      expect(unknownKey.contentType).toContain("application/problem+json")
      expect((yield* get(`${base}?state=gone`, tenant.userAuth)).status).toBe(400)
      expect((yield* post(`${base}/replay`, { ids: [], all: true }, tenant.userAuth)).status).toBe(400)
      expect((yield* post(`${base}/replay`, {}, tenant.userAuth)).status).toBe(400)
      expect((yield* get(`${gw.baseUrl}/v1/apps/app_nope/callbacks`, tenant.userAuth)).status).toBe(404)

      // One by id (by the app's own token), then every dead one: delivered now that the receiver works, in order.
      broken = false
      const before = receiver.requests.length
      const first = queued.find((q) => q.status === "queued")!
      const one = yield* post(`${base}/replay`, { ids: [String(first.id), "999999"] }, tenant.auth)
      expect(one.status).toBe(200)
      expect(one.json).toEqual({ requeued: 1 })
      yield* eventually("the replayed callback delivered", inStore(gw, outbox), { until: (rows) => !rows.some((r) => r.id === first.id) })
      const all = yield* post(`${base}/replay`, { all: true }, tenant.userAuth)
      expect(all.json).toEqual({ requeued: 3 })
      yield* eventually("every replayed callback delivered", inStore(gw, outbox), { until: (rows) => rows.length === 0 })
      const replayed = receiver.requests.slice(before).map(bodyOf)
      expect(replayed.map((b) => b.eventId).sort()).toEqual(queued.map((q) => q.eventId).sort())
      for (const messageId of new Set(queued.map((q) => q.messageId))) {
        expect(replayed.filter((b) => b.messageId === messageId).map((b) => b.status)).toEqual(["queued", "delivered"])
      }
      // Audited: who replayed what.
      const audit = yield* get(`${gw.baseUrl}/v1/audit?action=callbacks.replayed`, tenant.userAuth)
      expect((audit.json as unknown as Array<Record<string, unknown>>).map((e) => [e.target, e.detail])).toEqual([
        [tenant.appId, "all=dead requeued=3"],
        [tenant.appId, "ids=2 requeued=1"]
      ])
      const grew = yield* counters
      expect(grew("smsgw_callbacks_dead_total")).toBeGreaterThanOrEqual(4)
      expect(grew("smsgw_callbacks_delivered_total")).toBe(4)
    }), 60_000)

  it.live("at most maxConcurrency in hand, the rest counted as the due backlog; a deliverer that stops gives back what it holds", () =>
    Effect.gen(function*() {
      const receiver = yield* startReceiver(() => undefined)
      const database = join(yield* tempDir, "gateway.db")
      let stoppedAt = 0
      yield* Effect.scoped(Effect.gen(function*() {
        const gw = yield* startGateway({
          config: {
            storage: { kind: "sqlite", path: database },
            callbacks: { ...fast, allowPrivateNetworks: true, timeoutMs: 30_000, maxConcurrency: 2 }
          }
        })
        const tenant = yield* tenantWithSecret(gw, "whsec_stop")
        yield* queueMessages(gw, tenant, `${receiver.url}/hold`, 3, ["delivered"])
        yield* eventually("two callbacks in flight", Effect.sync(() => receiver.requests.length === 2))
        // The third waits for room: due, not taken, and the gauges say so (read every 20 polls).
        const gauges = yield* eventually(
          "the backlog gauge at 1",
          Effect.map(get(`${gw.baseUrl}/metrics`), (r) => ({
            due: metricValue(r.text, "smsgw_callbacks_due"),
            age: metricValue(r.text, "smsgw_callbacks_due_age_seconds")
          })),
          { until: (g) => g.due === 1 }
        )
        expect(gauges.age).toBeGreaterThan(0)
        expect(receiver.requests.length).toBe(2)
        // The two in flight are leased for 95 s (three timeouts and 5 s).
        const leased = (yield* inStore(gw, outbox)).filter((r) => r.nextAt > Date.now() + 60_000)
        expect(leased.length).toBe(2)
        stoppedAt = Date.now()
      }))
      const rows = yield* outbox.pipe(Effect.provide(NodeSqliteClient.layer({ filename: database })), Effect.orDie)
      expect(rows.length).toBe(3)
      for (const row of rows) {
        expect(row).toMatchObject({ state: "pending", attempts: 0 })
        expect(row.nextAt).toBeLessThan(stoppedAt + 10_000)
      }
      expect(rows.filter((r) => r.nextAt >= stoppedAt).length).toBe(2)
    }), 60_000)
})
