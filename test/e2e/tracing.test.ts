import { describe, expect, it } from "@effect/vitest"
import type { Context} from "effect";
import { Effect } from "effect"
import { randomBytes } from "node:crypto"
import { approvedCampaign, germanContacts, seedList } from "../fixtures/Campaigns.ts"
import { eventually } from "../fixtures/Eventually.ts"
import { get, post, signUp, startGateway, waitForStatus } from "../fixtures/Gateway.ts"
import { client, grpc, MessageServiceClient, metadataOf } from "../fixtures/GrpcClient.ts"
import { otlpReceiver, traceOf } from "../fixtures/OtlpReceiver.ts"
import type { OtlpReceiver, ReceivedSpan } from "../fixtures/OtlpReceiver.ts"

const sms = { to: "+4915112345678", from: "ACME", text: "traced" }

const hex = (bytes: number) => randomBytes(bytes).toString("hex")

const tracedGateway = (receiver: OtlpReceiver, telemetry: Record<string, unknown> = {}, timeoutMs = 2_000) =>
  startGateway({
    config: {
      telemetry: {
        serviceName: "smsgw-test",
        otlp: { endpoint: receiver.endpoint, exportIntervalMs: 100, timeoutMs, headers: { "x-collector-key": "collector secret 42" } },
        ...telemetry
      }
    }
  })

const byName = (spans: ReadonlyArray<ReceivedSpan>, name: string) => {
  const found = spans.filter((s) => s.name === name)
  if (found.length !== 1) throw new Error(`${found.length} spans named ${name}: ${spans.map((s) => s.name).join(", ")}`)
  return found[0]!
}

describe("tracing over OTLP", () => {
  it.live("one message's trace: the caller's traceparent, every stage, the link and the receipt, nothing secret", () =>
    Effect.gen(function*() {
      const receiver = yield* otlpReceiver
      const gw = yield* tracedGateway(receiver)
      const t = yield* signUp(gw.baseUrl)
      const traceId = hex(16)
      const callerSpan = hex(8)
      const sent = yield* post(`${gw.baseUrl}/v1/messages`, sms, { ...t.auth, traceparent: `00-${traceId}-${callerSpan}-01` })
      expect(sent.status).toBe(202)
      // The answer names the trace it joined.
      expect(sent.headers.get("traceresponse")).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`))
      const id = String(sent.json.id)
      yield* waitForStatus(gw.baseUrl, id, "delivered", 10_000, t.auth)

      const spans = yield* traceOf(receiver, traceId, "smsgw.receipt")
      const server = byName(spans, "POST /v1/messages")
      expect(server.parentSpanId).toBe(callerSpan)
      expect(server.kind).toBe(2) // SERVER
      expect(server.attributes["http.route"]).toBe("/v1/messages")
      expect(server.attributes["http.response.status_code"]).toBe(202)
      expect(server.service["service.name"]).toBe("smsgw-test")

      const message = byName(spans, "smsgw.message")
      expect(message.attributes).toMatchObject({
        "smsgw.message_id": id,
        "smsgw.org_id": t.orgId,
        "smsgw.app_id": t.appId,
        "smsgw.segments": 1,
        "smsgw.outcome": "accepted"
      })
      // Every span of the trace hangs from another of it, the server span from the caller's.
      const ids = new Set(spans.map((s) => s.spanId))
      for (const s of spans) {
        if (s !== server) expect(ids.has(s.parentSpanId ?? ""), `${s.name}'s parent`).toBe(true)
      }
      const parentOf = (name: string) => spans.find((s) => s.spanId === byName(spans, name).parentSpanId)?.name
      expect(parentOf("smsgw.auth.authenticate")).toBe("POST /v1/messages")
      for (const stage of ["smsgw.route", "smsgw.ratelimit", "smsgw.policy"]) expect(parentOf(stage)).toBe("smsgw.message")
      expect(parentOf("smsgw.store.accept")).toBe("POST /v1/messages")
      // The link's work and the receipt continue the message's span, after the answer was sent.
      expect(parentOf("smsgw.link.queue")).toBe("smsgw.message")
      expect(parentOf("smsgw.link.send")).toBe("smsgw.message")
      expect(parentOf("smsgw.smpp.submit_sm")).toBe("smsgw.link.send")
      expect(parentOf("smsgw.receipt")).toBe("smsgw.message")
      const submit = byName(spans, "smsgw.smpp.submit_sm")
      expect(submit.kind).toBe(3) // CLIENT
      expect(submit.attributes["smsgw.smsc_message_id"]).toEqual(expect.any(String))
      const receipt = byName(spans, "smsgw.receipt")
      expect(receipt.attributes).toMatchObject({ "smsgw.status": "delivered", "smsgw.link_id": "sim" })
      expect(receipt.startNanos).toBeGreaterThanOrEqual(submit.endNanos)

      // Nothing secret went to the collector: not the token, not the app's key, not the exporter's own header.
      const exported = receiver.bodies.join("\n")
      expect(exported).not.toContain(t.appToken)
      expect(exported).not.toContain(t.apiKey)
      expect(exported).not.toContain(t.password)
      expect(exported).not.toContain("collector secret 42")
    }).pipe(Effect.scoped), 60_000)

  it.live("a gRPC call: the caller's traceparent continues, the answer's trailers name the trace", () =>
    Effect.gen(function*() {
      const receiver = yield* otlpReceiver
      const gw = yield* tracedGateway(receiver)
      const t = yield* signUp(gw.baseUrl)
      const messages = yield* client(MessageServiceClient, gw.grpcAddress)
      const traceId = hex(16)
      const callerSpan = hex(8)
      const call = (method: string, request: unknown, headers: Record<string, string>) =>
        Effect.callback<{ readonly code: number; readonly trailer: unknown }>((resume) => {
          const fn = (messages as unknown as Record<string, (...args: Array<unknown>) => grpc.ClientUnaryCall>)[method]!
          const pending = fn.call(messages, request, metadataOf(headers), () => undefined)
          pending.on("status", (status: grpc.StatusObject) => resume(Effect.succeed({ code: status.code, trailer: status.metadata.get("traceresponse")[0] })))
        })
      const sent = yield* call("SendMessage", sms, { ...t.auth, traceparent: `00-${traceId}-${callerSpan}-01` })
      expect(sent.code).toBe(grpc.status.OK)
      expect(String(sent.trailer)).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`))
      const refused = yield* call("SendMessage", { ...sms, to: "x" }, t.auth)
      expect(refused.code).toBe(grpc.status.INVALID_ARGUMENT)
      expect(String(refused.trailer)).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/)
      const spans = yield* traceOf(receiver, traceId, "smsgw.smpp.submit_sm")
      const server = byName(spans, "smsgw.v1.MessageService/SendMessage")
      expect(server.parentSpanId).toBe(callerSpan)
      expect(server.kind).toBe(2)
      expect(server.attributes).toMatchObject({ "rpc.system": "grpc", "rpc.method": "SendMessage" })
      expect(spans.find((s) => s.spanId === byName(spans, "smsgw.message").parentSpanId)?.name).toBe("smsgw.v1.MessageService/SendMessage")
      const metrics = (yield* get(`${gw.baseUrl}/metrics`)).text
      expect(metrics).toMatch(/smsgw_grpc_requests_total\{[^}]*method="SendMessage"[^}]*code="OK"[^}]*\} 1|smsgw_grpc_requests_total\{[^}]*code="OK"[^}]*method="SendMessage"[^}]*\} 1/)
      expect(metrics).toMatch(/smsgw_grpc_requests_total\{[^}]*INVALID_ARGUMENT[^}]*\} 1/)
    }).pipe(Effect.scoped), 60_000)

  it.live("a refusal's problem+json carries the trace id; a trace starts here without a traceparent", () =>
    Effect.gen(function*() {
      const receiver = yield* otlpReceiver
      const gw = yield* tracedGateway(receiver)
      const t = yield* signUp(gw.baseUrl)
      const refused = yield* post(`${gw.baseUrl}/v1/messages`, { ...sms, to: "not a number" }, t.auth)
      expect(refused.status).toBe(400)
      const traceId = String(refused.json.traceId)
      expect(traceId).toMatch(/^[0-9a-f]{32}$/)
      expect(refused.headers.get("traceresponse")).toContain(traceId)
      const server = yield* eventually(
        "the refused request's span",
        Effect.sync(() => receiver.spans.find((s) => s.traceId === traceId && s.name === "POST /v1/messages"))
      )
      expect(server.parentSpanId).toBeUndefined()
      expect(server.attributes["http.response.status_code"]).toBe(400)
    }).pipe(Effect.scoped), 60_000)

  it.live("sampling: the ratio for traces started here, the caller's flag for its own", () =>
    Effect.gen(function*() {
      const receiver = yield* otlpReceiver
      const gw = yield* tracedGateway(receiver, { sampleRatio: 0.25 })
      const t = yield* signUp(gw.baseUrl)
      const answers = yield* Effect.forEach(
        Array.from({ length: 200 }, () => 0),
        () => post(`${gw.baseUrl}/v1/messages`, sms, t.auth),
        { concurrency: 10 }
      )
      expect(answers.every((a) => a.status === 202)).toBe(true)
      const traced = answers.filter((a) => a.headers.get("traceresponse") !== null).length
      // 200 draws at 0.25: 50 expected, sd 6; outside 20..80 is a broken sampler, not chance.
      expect(traced).toBeGreaterThan(20)
      expect(traced).toBeLessThan(80)
      // A caller that sampled its trace is followed; one that did not is not, whatever the ratio.
      const kept = hex(16)
      const dropped = hex(16)
      yield* post(`${gw.baseUrl}/v1/messages`, sms, { ...t.auth, traceparent: `00-${kept}-${hex(8)}-01` })
      const unsampled = yield* post(`${gw.baseUrl}/v1/messages`, sms, { ...t.auth, traceparent: `00-${dropped}-${hex(8)}-00` })
      expect(unsampled.headers.get("traceresponse")).toBeNull()
      yield* eventually("the sampled caller's trace", Effect.sync(() => receiver.spans.some((s) => s.traceId === kept)))
      const servers = yield* eventually(
        "every sampled request's server span",
        Effect.sync(() => receiver.spans.filter((s) => s.name === "POST /v1/messages")),
        { until: (s) => s.length >= traced + 1 }
      )
      expect(servers.length).toBe(traced + 1)
      expect(receiver.spans.some((s) => s.traceId === dropped)).toBe(false)
    }).pipe(Effect.scoped), 60_000)

  it.live("a collector that hangs costs the gateway nothing but a counter, and is found again when it answers", () =>
    Effect.gen(function*() {
      const receiver = yield* otlpReceiver
      receiver.mode = "hang"
      const gw = yield* tracedGateway(receiver, {}, 200)
      const t = yield* signUp(gw.baseUrl)
      const answers = yield* Effect.forEach(
        Array.from({ length: 300 }, () => 0),
        () => post(`${gw.baseUrl}/v1/messages`, sms, t.auth),
        { concurrency: 10 }
      )
      expect(answers.filter((a) => a.status === 202).length).toBe(300)
      // While the collector hung, most new traces were not recorded (one a second probes for it).
      expect(answers.filter((a) => a.headers.get("traceresponse") !== null).length).toBeLessThan(100)
      const metrics = yield* eventually(
        "exports counted as failed, traces as unsampled",
        Effect.map(get(`${gw.baseUrl}/metrics`), (m) => m.text),
        { until: (text) => /smsgw_trace_exports_failed_total [1-9]/.test(text) && /smsgw_traces_unsampled_total\{reason="exporter"\} [1-9]/.test(text) }
      )
      expect(metrics).toContain("smsgw_traces_unsampled_total")
      receiver.mode = "ok"
      // Effect's exporter rests for 60 s after an export that failed all its retries; meanwhile one trace a second probes.
      const traceId = yield* eventually(
        "an answer naming a recorded trace again",
        Effect.map(post(`${gw.baseUrl}/v1/messages`, sms, t.auth), (sent) => sent.headers.get("traceresponse")?.split("-")[1]),
        { timeout: 90_000, interval: 500 }
      )
      yield* eventually("its spans exported", Effect.sync(() => receiver.spans.some((s) => s.traceId === traceId)))
    }).pipe(Effect.scoped), 120_000)

  it.live("a campaign's batches are traces of their own, linked to the request that started it", () =>
    Effect.gen(function*() {
      const receiver = yield* otlpReceiver
      const gw = yield* tracedGateway(receiver)
      const t = yield* signUp(gw.baseUrl)
      const run = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.provide(effect, gw.context as Context.Context<R>)
      const list = yield* run(seedList(t.orgId, germanContacts(6)))
      const id = yield* run(approvedCampaign(t.orgId, t.appId, { lists: [list], throttle: 3 }))
      const startTrace = hex(16)
      const started = yield* post(`${gw.baseUrl}/v1/campaigns/${id}/start`, {}, { ...t.userAuth, traceparent: `00-${startTrace}-${hex(8)}-01` })
      expect(started.status).toBe(200)
      const batches = yield* eventually(
        "batch spans covering the six recipients",
        Effect.sync(() => receiver.spans.filter((s) => s.name === "smsgw.campaign.batch" && s.attributes["smsgw.campaign_id"] === id)),
        { timeout: 20_000, until: (found) => found.reduce((n, b) => n + Number(b.attributes["smsgw.messages"]), 0) >= 6 }
      )
      expect(batches.length).toBeGreaterThan(1) // three a second: more than one batch
      for (const batch of batches) {
        expect(batch.kind).toBe(4) // PRODUCER
        expect(batch.traceId).not.toBe(startTrace)
        expect(batch.links.map((l) => l.traceId)).toEqual([startTrace])
      }
      // The link names a span of the start request's trace (the one current when the campaign was started).
      const startSpans = receiver.spans.filter((s) => s.traceId === startTrace)
      expect(startSpans.map((s) => s.name)).toContain("POST /v1/campaigns/:id/start")
      expect(startSpans.map((s) => s.spanId)).toContain(batches[0]!.links[0]!.spanId)
      // The campaign's actor, woken by that request, does not fill its trace with every tick of its loop.
      expect(startSpans.filter((s) => s.name === "sql.transaction")).toEqual([])
      // Each recipient's message is a child of its batch, and its link's spans follow it into that trace.
      const messages = yield* eventually(
        "the six messages' spans",
        Effect.sync(() => receiver.spans.filter((s) => s.name === "smsgw.message" && batches.some((b) => b.spanId === s.parentSpanId))),
        { until: (found) => found.length >= 6 }
      )
      expect(messages.length).toBe(6)
      expect(new Set(messages.map((m) => m.attributes["smsgw.message_id"])).size).toBe(6)
    }).pipe(Effect.scoped), 60_000)

  it.live("off by default: no trace header, a caller's traceparent goes nowhere", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway()
      const t = yield* signUp(gw.baseUrl)
      const sent = yield* post(`${gw.baseUrl}/v1/messages`, sms, { ...t.auth, traceparent: `00-${hex(16)}-${hex(8)}-01` })
      expect(sent.status).toBe(202)
      expect(sent.headers.get("traceresponse")).toBeNull()
      const refused = yield* post(`${gw.baseUrl}/v1/messages`, { ...sms, to: "x" }, t.auth)
      expect(refused.json.traceId).toBeUndefined()
    }).pipe(Effect.scoped), 60_000)
})
