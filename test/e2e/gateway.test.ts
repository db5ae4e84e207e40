import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { DatabaseSync } from "node:sqlite"
import { join } from "node:path"
import v8 from "node:v8"
import { runInNewContext } from "node:vm"
import { eventually } from "../fixtures/Eventually.ts"
import { get, post, signUp, startGateway, waitForStatus } from "../fixtures/Gateway.ts"

/** Parts the link sent again after a submit whose outcome was unknown (a timeout, a lost connection), from /metrics. */
const unknownOutcomeResends = (baseUrl: string) =>
  Effect.map(get(`${baseUrl}/metrics`), (m) => Number(/smsgw_link_unknown_outcome_resends_total\{link="sim"\} (\d+)/.exec(m.text)?.[1] ?? "0"))

const countMessages = (dataDir: string) => {
  const db = new DatabaseSync(join(dataDir, "gateway.db"), { readOnly: true })
  try {
    const row = db.prepare("SELECT COUNT(*) AS n FROM messages").get() as { n: number }
    return Number(row.n)
  } finally {
    db.close()
  }
}

describe("gateway over HTTP and SMPP (embedded mode)", () => {
  it.live("an SMS is accepted, submitted to the SMSC and delivered", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway()
      const t = yield* signUp(gw.baseUrl)
      const accepted = yield* post(`${gw.baseUrl}/v1/messages`, {
        to: "+4915112345678",
        from: "ACME",
        text: "Hello",
        clientRef: "order-42"
      }, t.auth)
      expect(accepted.status).toBe(202)
      expect(accepted.json).toMatchObject({ status: "accepted", segments: 1, encoding: "gsm7" })
      const id = String(accepted.json.id)
      const view = yield* waitForStatus(gw.baseUrl, id, "delivered", 10_000, t.auth)
      expect(view.status).toBe("delivered")
      expect(view.clientRef).toBe("order-42")
      expect((view.events as Array<{ status: string }>).map((e) => e.status)).toEqual(["accepted", "submitted", "delivered"])
      const received = yield* gw.sim.received
      expect(received).toHaveLength(1)
      expect(received[0]).toMatchObject({ destinationAddr: "4915112345678", sourceAddr: "ACME", dataCoding: 0, registeredDelivery: 1 })
      expect(Buffer.from(received[0]!.shortMessage).toString("latin1")).toBe("Hello")
      const part = (view.parts as Array<{ smscMessageId: string }>)[0]
      expect(part?.smscMessageId).toBe(received[0]?.messageId.toLowerCase().replace(/^0+/, ""))
    }).pipe(Effect.scoped), 30_000)

  it.live("a long UCS-2 text with emoji goes as concatenated parts and is delivered when every part is", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({ simulator: { receiptIdFormat: "hex", messageIdFormat: "decimal" } })
      const t = yield* signUp(gw.baseUrl)
      const text = "Привет 👋 ".repeat(12)
      const accepted = yield* post(`${gw.baseUrl}/v1/messages`, { to: "+447911123456", from: "447700900123", text }, t.auth)
      expect(accepted.status).toBe(202)
      expect(accepted.json).toMatchObject({ encoding: "ucs2", segments: 2 })
      const view = yield* waitForStatus(gw.baseUrl, String(accepted.json.id), "delivered", 10_000, t.auth)
      expect(view.status).toBe("delivered")
      const received = yield* gw.sim.received
      expect(received).toHaveLength(2)
      for (const r of received) {
        expect(r.dataCoding).toBe(8)
        expect(r.esmClass & 0x40).toBe(0x40)
        expect(r.sourceAddr).toBe("447700900123")
      }
      const payloads = received.map((r) => Buffer.from(r.shortMessage.subarray(6)).swap16().toString("utf16le"))
      expect(payloads.join("")).toBe(text)
    }).pipe(Effect.scoped), 30_000)

  it.live("bad requests get problem+json naming the field, and nothing is stored", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway()
      const t = yield* signUp(gw.baseUrl)
      const url = `${gw.baseUrl}/v1/messages`
      const cases: Array<[unknown, string]> = [
        [{ to: 4915112345678, from: "ACME", text: "x" }, "to"],
        [{ to: "+49151", from: "ACME", text: "x" }, "to"],
        [{ to: "not a number", from: "ACME", text: "x" }, "to"],
        [{ to: "+4915112345678", from: "ACME", text: "" }, "text"],
        [{ to: "+4915112345678", from: "ACME" }, "text"],
        [{ to: "+4915112345678", from: "THIS SENDER IS TOO LONG", text: "x" }, "from"],
        [{ to: "+4915112345678", from: "ACME", text: "x", encoding: "latin9" }, "encoding"],
        [{ to: "+4915112345678", from: "ACME", text: "ł", encoding: "gsm7" }, "text"],
        [{ to: "+4915112345678", from: "ACME", text: "x", validitySeconds: "soon" }, "validitySeconds"],
        ["{not json", "body"],
        [[1, 2, 3], "body"]
      ]
      for (const [body, field] of cases) {
        const r = yield* post(url, body, t.auth)
        expect(r.status, JSON.stringify(body)).toBe(400)
        expect(r.contentType).toContain("application/problem+json")
        expect(r.json.type).toBe("urn:smsgw:problem:validation")
        expect((r.json.errors as Array<{ field: string }>).map((e) => e.field), JSON.stringify(body)).toContain(field)
      }
      const several = yield* post(url, { to: "12", from: "THIS SENDER IS TOO LONG", text: "" }, t.auth)
      expect((several.json.errors as Array<{ field: string }>).map((e) => e.field).sort()).toEqual(["from", "text", "to"])
      const big = yield* post(url, { to: "+4915112345678", from: "ACME", text: "x".repeat(20_000) }, t.auth)
      expect(big.status).toBe(413)
      expect(big.json.type).toBe("urn:smsgw:problem:payload-too-large")
      const form = yield* Effect.promise(() =>
        fetch(url, { method: "POST", headers: { "content-type": "text/plain", ...t.auth }, body: "to=1" }).then((r) => r.status)
      )
      expect(form).toBe(415)
      expect(countMessages(gw.dataDir)).toBe(0)
      expect((yield* gw.sim.stats).submits).toBe(0)
    }).pipe(Effect.scoped), 30_000)

  it.live("status of an unknown id is a 404 problem; OpenAPI, docs, health, readiness and metrics are served", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway()
      const t = yield* signUp(gw.baseUrl)
      const missing = yield* get(`${gw.baseUrl}/v1/messages/${crypto.randomUUID()}`, t.auth)
      expect(missing.status).toBe(404)
      expect(missing.contentType).toContain("application/problem+json")
      expect(missing.json.type).toBe("urn:smsgw:problem:not-found")
      const openapi = yield* get(`${gw.baseUrl}/openapi.json`)
      expect(Object.keys(openapi.json.paths as object)).toEqual(expect.arrayContaining(["/v1/messages", "/v1/messages/{id}"]))
      expect((yield* get(`${gw.baseUrl}/docs`)).status).toBe(200)
      expect((yield* get(`${gw.baseUrl}/healthz`)).json).toEqual({ status: "ok" })
      const ready = yield* eventually("ready", get(`${gw.baseUrl}/readyz`), { timeout: 5_000, until: (r) => r.status === 200 })
      expect(ready.json).toMatchObject({ ready: true, storage: true, linksBound: ["sim"] })
      const accepted = yield* post(`${gw.baseUrl}/v1/messages`, { to: "+4915112345678", from: "ACME", text: "metrics" }, t.auth)
      yield* waitForStatus(gw.baseUrl, String(accepted.json.id), "delivered", 10_000, t.auth)
      const metrics = yield* get(`${gw.baseUrl}/metrics`)
      // The metric registry is per process, and other tests of this file count too: assert presence, not totals.
      expect(metrics.text).toMatch(/smsgw_link_submit_responses_total\{link="sim",status="ESME_ROK"\} [1-9]/)
      expect(metrics.text).toMatch(/smsgw_link_receipts_total\{link="sim",state="delivered"\} [1-9]/)
      expect(metrics.text).toContain('smsgw_link_bound{link="sim"} 1')
      expect(metrics.text).toMatch(/smsgw_http_requests_total\{route="\/v1\/messages",status="202"\} [1-9]/)
      expect(metrics.text).toContain("smsgw_message_submit_latency_seconds_bucket")
      // The process's own: CPU and memory, the event loop's delay since the previous scrape, GC pauses by kind.
      const value = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, "m").exec(metrics.text)?.[1])
      expect(value("process_cpu_seconds_total")).toBeGreaterThan(0)
      expect(value("process_resident_memory_bytes")).toBeGreaterThan(10_000_000)
      expect(value("nodejs_heap_size_used_bytes")).toBeGreaterThan(0)
      expect(value("process_start_time_seconds")).toBeLessThanOrEqual(Date.now() / 1000)
      expect(value("nodejs_eventloop_lag_p99_seconds")).toBeGreaterThanOrEqual(0)
      expect(value("nodejs_eventloop_lag_max_seconds")).toBeGreaterThanOrEqual(value("nodejs_eventloop_lag_p50_seconds"))
      expect(metrics.text).toMatch(/nodejs_gc_duration_seconds_count\{kind="minor"\} [1-9]/)
      // A full collection (this process runs the gateway) is counted as major.
      v8.setFlagsFromString("--expose-gc")
      ;(runInNewContext("gc") as () => void)()
      yield* eventually(
        "a mark-compact counted as major",
        Effect.map(get(`${gw.baseUrl}/metrics`), (r) => /nodejs_gc_duration_seconds_count\{kind="major"\} [1-9]/.test(r.text) ? true : undefined),
        { timeout: 5_000 }
      )
      // CPU only grows from one scrape to the next.
      const again = yield* get(`${gw.baseUrl}/metrics`)
      const cpuAgain = Number(/^process_cpu_seconds_total ([0-9.e+-]+)$/m.exec(again.text)?.[1])
      expect(cpuAgain).toBeGreaterThanOrEqual(value("process_cpu_seconds_total"))
    }).pipe(Effect.scoped), 30_000)

  it.live("a permanent SMSC rejection fails the message with the SMPP status", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway()
      const t = yield* signUp(gw.baseUrl)
      yield* gw.sim.setFaults({ submitStatus: 0x0b })
      const accepted = yield* post(`${gw.baseUrl}/v1/messages`, { to: "+4915112345678", from: "ACME", text: "nope" }, t.auth)
      const view = yield* waitForStatus(gw.baseUrl, String(accepted.json.id), "failed", 10_000, t.auth)
      expect(view.status).toBe("failed")
      expect(String(view.reason)).toContain("ESME_RINVDSTADR")
      expect((yield* gw.sim.stats).submits).toBe(1)
    }).pipe(Effect.scoped), 30_000)

  it.live("throttling (ESME_RTHROTTLED) and a full queue delay messages but every one ends delivered", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway()
      const t = yield* signUp(gw.baseUrl)
      yield* gw.sim.setFaults({ throttleAboveTps: 25 })
      const ids = yield* Effect.forEach(Array.from({ length: 60 }, (_, i) => i), (i) =>
        post(`${gw.baseUrl}/v1/messages`, { to: "+4915112345678", from: "ACME", text: `burst ${i}` }, t.auth).pipe(
          Effect.map((r) => String(r.json.id))
        ), { concurrency: 20 })
      const views = yield* Effect.forEach(ids, (id) => waitForStatus(gw.baseUrl, id, "delivered", 20_000, t.auth), { concurrency: 10 })
      expect(views.filter((v) => v.status === "delivered")).toHaveLength(60)
      const stats = yield* gw.sim.stats
      expect(stats.submitsByStatus["0x58"] ?? 0).toBeGreaterThan(0)
      expect(stats.uniqueMessages).toBe(60)
    }).pipe(Effect.scoped), 60_000)

  it.live("the SMSC dropping the connection mid-window strands nothing: every message ends delivered", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({ link: { reconnectMaxMs: 300 } })
      const t = yield* signUp(gw.baseUrl)
      // The metric registry is per process and other tests of this file count too: this test's share is the difference.
      const resendsBefore = yield* unknownOutcomeResends(gw.baseUrl)
      yield* gw.sim.setFaults({ responseDelayMs: 150 })
      const ids = yield* Effect.forEach(Array.from({ length: 40 }, (_, i) => i), (i) =>
        post(`${gw.baseUrl}/v1/messages`, { to: "+4915112345678", from: "ACME", text: `in flight ${i}` }, t.auth).pipe(
          Effect.map((r) => String(r.json.id))
        ), { concurrency: 40 })
      // A full window at the SMSC, its answers 150 ms away: the drop cuts them off.
      yield* eventually("a window of submits at the SMSC", gw.sim.stats, { until: (s) => s.submits >= 10 })
      yield* gw.sim.dropConnections
      yield* gw.sim.clearFaults
      const views = yield* Effect.forEach(ids, (id) => waitForStatus(gw.baseUrl, id, "delivered", 20_000, t.auth), { concurrency: 10 })
      expect(views.map((v) => v.status)).toEqual(ids.map(() => "delivered"))
      // Submits cut off by the drop had an unknown outcome and were sent again: at least once each, counted.
      const stats = yield* gw.sim.stats
      expect(stats.uniqueMessages).toBe(40)
      const resends = (yield* unknownOutcomeResends(gw.baseUrl)) - resendsBefore
      expect(resends).toBeGreaterThanOrEqual(1)
      // The parts cut off had reached the SMSC before the drop, and reached it again when resent.
      expect(stats.submits).toBeGreaterThan(40)
    }).pipe(Effect.scoped), 60_000)
})
