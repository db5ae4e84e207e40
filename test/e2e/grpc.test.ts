import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Schema } from "effect"
import { SubmitMessage } from "../../src/domain/Message.ts"
import { fingerprint } from "../../src/pipeline/Idempotency.ts"
import { IdempotencyStore } from "../../src/storage/IdempotencyStore.ts"
import { SignJWT } from "jose"
import { DatabaseSync } from "node:sqlite"
import { join } from "node:path"
import { get, post, send, signUp, startGateway } from "../fixtures/Gateway.ts"
import { client, grpc, MessageServiceClient, serverStream, unary } from "../fixtures/GrpcClient.ts"
import type { CallError, Reply } from "../fixtures/GrpcClient.ts"

const secret = "test-signing-secret-of-at-least-32-bytes!"
const auth = { issuer: "smsgw-test", audience: "smsgw-api", jwtKeys: [{ kid: "k1", secret }] }
const sms = { to: "+4915112345678", from: "ACME", text: "hi" }
const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

type Accepted = { id: string; status: string; segments: number; encoding: string; duplicate: boolean; replayed: boolean }
type View = { id: string; status: string; to: string; text: string; parts: Array<{ status: string }>; events: Array<{ status: string; kind: string }> }

const failed = <A>(reply: Reply<A>): CallError => {
  if (reply.ok) throw new Error(`expected a failure, got ${JSON.stringify(reply.value)}`)
  return reply.error
}

const succeeded = <A>(reply: Reply<A>): A => {
  if (!reply.ok) throw new Error(`expected success, got ${reply.error.code} ${reply.error.message} ${JSON.stringify(reply.error.status)}`)
  return reply.value
}

const violations = (e: CallError) =>
  (e.status?.details["google.rpc.BadRequest"]?.field_violations as Array<{ field: string; description: string }> | undefined) ?? []

describe("the gRPC front (issue 15)", () => {
  it.live("every RPC over real HTTP/2: send, get, watch until delivered, list with filters and pages, batch", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({ config: { auth } })
      const t = yield* signUp(gw.baseUrl)
      const messages = yield* client(MessageServiceClient, gw.grpcAddress)
      const sent = succeeded(yield* unary<Accepted>(messages, "SendMessage", { ...sms, client_ref: "order-1" }, t.auth))
      expect(sent).toMatchObject({ status: "MESSAGE_STATUS_ACCEPTED", segments: 1, encoding: "ENCODING_GSM7", duplicate: false, replayed: false })
      // The same store as REST: the message is there under the same id.
      const rest = yield* get(`${gw.baseUrl}/v1/messages/${sent.id}`, t.auth)
      expect(rest.json.clientRef).toBe("order-1")

      const watched = yield* serverStream<{ message: View; new_events: Array<{ status: string }> }>(
        messages, "WatchMessage", { id: sent.id }, t.auth, { deadlineMs: 15_000 })
      expect(watched.error).toBeUndefined()
      const statuses = watched.messages.map((m) => m.message.status)
      expect(statuses.at(-1)).toBe("MESSAGE_STATUS_DELIVERED")
      // One response per change, each adding the events since the previous one: together, the whole timeline.
      const last = watched.messages.at(-1)!.message
      expect(watched.messages.flatMap((m) => m.new_events).length).toBe(last.events.length)
      expect(last.parts.map((p) => p.status)).toEqual(["MESSAGE_STATUS_DELIVERED"])

      const got = succeeded(yield* unary<{ message: View }>(messages, "GetMessage", { id: sent.id }, t.auth))
      expect(got.message).toMatchObject({ id: sent.id, to: "+4915112345678", text: "hi", status: "MESSAGE_STATUS_DELIVERED" })

      // A user token sends too, naming the app in x-app-id; without it, PERMISSION_DENIED.
      const asUser = succeeded(yield* unary<Accepted>(messages, "SendMessage", { ...sms, to: "+4915112345679" }, { ...t.userAuth, "x-app-id": t.appId }))
      expect(failed(yield* unary(messages, "SendMessage", sms, t.userAuth)).code).toBe(grpc.status.PERMISSION_DENIED)

      // The batch: results in order, the bad number refused in place with its own status, the others accepted.
      const batch = succeeded(yield* unary<{ results: Array<{ result: string; accepted?: Accepted; error?: { code: number; message: string } }> }>(
        messages, "SendMessages", {
          messages: [
            { ...sms, to: "+4915112345670" },
            { ...sms, to: "not a number" },
            { ...sms, to: "+4915112345671", idempotency_key: "k-1" }
          ]
        }, t.auth))
      expect(batch.results.map((r) => r.result)).toEqual(["accepted", "error", "accepted"])
      expect(batch.results[1]!.error!.code).toBe(grpc.status.INVALID_ARGUMENT)
      expect(batch.results[1]!.error!.message).toContain("to:")

      // Listed newest first, filtered like GET /v1/messages, paged by an opaque token.
      const all = succeeded(yield* unary<{ messages: Array<{ id: string }>; next_page_token: string }>(messages, "ListMessages", {}, t.auth))
      const ids = all.messages.map((m) => m.id)
      // Newest first (the batch's two may share a millisecond: then they are ordered by id).
      expect(new Set(ids.slice(0, 2))).toEqual(new Set([batch.results[0]!.accepted!.id, batch.results[2]!.accepted!.id]))
      expect(ids.slice(2)).toEqual([asUser.id, sent.id])
      expect(all.next_page_token).toBe("")
      const first = succeeded(yield* unary<{ messages: Array<{ id: string }>; next_page_token: string }>(messages, "ListMessages", { page_size: 3 }, t.auth))
      expect(first.messages.map((m) => m.id)).toEqual(ids.slice(0, 3))
      const second = succeeded(yield* unary<{ messages: Array<{ id: string }>; next_page_token: string }>(
        messages, "ListMessages", { page_size: 3, page_token: first.next_page_token }, t.auth))
      expect(second.messages.map((m) => m.id)).toEqual([sent.id])
      const byRef = succeeded(yield* unary<{ messages: Array<{ id: string }> }>(messages, "ListMessages", { client_ref: "order-1" }, t.auth))
      expect(byRef.messages.map((m) => m.id)).toEqual([sent.id])
      const byTo = succeeded(yield* unary<{ messages: Array<{ id: string }> }>(messages, "ListMessages", { to: "0049 151 12345679" }, t.auth))
      expect(byTo.messages.map((m) => m.id)).toEqual([asUser.id])
      const delivered = succeeded(yield* unary<{ messages: Array<{ id: string }> }>(
        messages, "ListMessages", { status: "MESSAGE_STATUS_DELIVERED", since: { seconds: Math.floor(Date.now() / 1000) - 600 } }, t.auth))
      expect(delivered.messages.map((m) => m.id)).toContain(sent.id)
      const bad = failed(yield* unary(messages, "ListMessages", { page_size: 500, page_token: "garbage", to: "x" }, t.auth))
      expect(bad.code).toBe(grpc.status.INVALID_ARGUMENT)
      expect(violations(bad).map((v) => v.field).sort()).toEqual(["page_size", "page_token", "to"])
    }).pipe(Effect.scoped), 60_000)

  it.live("a batch: one bad number among 1,000 answered in place; 1,001 refused whole; an empty one refused", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({ config: { auth } })
      const t = yield* signUp(gw.baseUrl)
      const messages = yield* client(MessageServiceClient, gw.grpcAddress)
      const thousand = Array.from({ length: 1000 }, (_, i) => ({ ...sms, to: `+49151${String(10_000_000 + i)}`, text: `batch ${i}` }))
      thousand[417] = { ...sms, to: "+49", text: "bad" }
      const batch = succeeded(yield* unary<{ results: Array<{ result: string; accepted?: Accepted; error?: { code: number } }> }>(
        messages, "SendMessages", { messages: thousand }, t.auth, { deadlineMs: 30_000 }))
      expect(batch.results).toHaveLength(1000)
      expect(batch.results.filter((r) => r.result === "accepted")).toHaveLength(999)
      expect(batch.results[417]).toMatchObject({ result: "error", error: { code: grpc.status.INVALID_ARGUMENT } })
      expect(new Set(batch.results.flatMap((r) => r.accepted?.id ?? [])).size).toBe(999)

      const tooMany = failed(yield* unary(messages, "SendMessages", { messages: [...thousand, sms] }, t.auth))
      expect(tooMany.code).toBe(grpc.status.INVALID_ARGUMENT)
      expect(violations(tooMany)).toEqual([{ field: "messages", description: "at most 1000 messages per call; this one has 1001" }])
      expect(violations(failed(yield* unary(messages, "SendMessages", { messages: [] }, t.auth))).map((v) => v.field)).toEqual(["messages"])
    }).pipe(Effect.scoped), 60_000)

  it.live("errors are status codes with google.rpc details: BadRequest, NOT_FOUND, FAILED_PRECONDITION + ErrorInfo, RESOURCE_EXHAUSTED + RetryInfo, UNAVAILABLE", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({
        config: {
          auth,
          policy: { rules: [{ id: "one-a-day", type: "frequency_cap", max: 1, window: "day" }] },
          routes: [{ id: "de-only", match: { prefixes: ["49"] }, target: { link: "sim" } }]
        }
      })
      const t = yield* signUp(gw.baseUrl)
      const messages = yield* client(MessageServiceClient, gw.grpcAddress)

      // Every bad field at once, named as the proto names it.
      const invalid = failed(yield* unary(messages, "SendMessage", { to: "12", from: "", text: "", validity_seconds: 5, client_ref: "x".repeat(129) }, t.auth))
      expect(invalid.code).toBe(grpc.status.INVALID_ARGUMENT)
      expect(violations(invalid).map((v) => v.field).sort()).toEqual(["client_ref", "from", "text", "to", "validity_seconds"])
      // What the pipeline refuses beyond the schema, too: GSM 03.38 asked for a text that is not in it.
      const gsm = failed(yield* unary(messages, "SendMessage", { ...sms, text: "日本", encoding: "ENCODING_GSM7" }, t.auth))
      expect(violations(gsm).map((v) => v.field)).toEqual(["text"])

      const notFound = failed(yield* unary(messages, "GetMessage", { id: crypto.randomUUID() }, t.auth))
      expect(notFound.code).toBe(grpc.status.NOT_FOUND)

      // A policy refusal: FAILED_PRECONDITION, ErrorInfo with the reason, the rule and the recorded message's id.
      succeeded(yield* unary(messages, "SendMessage", sms, t.auth))
      const capped = failed(yield* unary(messages, "SendMessage", sms, t.auth))
      expect(capped.code).toBe(grpc.status.FAILED_PRECONDITION)
      const info = capped.status?.details["google.rpc.ErrorInfo"] as { reason: string; domain: string; metadata: Record<string, string> }
      expect(info).toMatchObject({ reason: "FREQUENCY_CAP", domain: "smsgw", metadata: { rule_id: "one-a-day" } })
      const rejected = succeeded(yield* unary<{ message: View }>(messages, "GetMessage", { id: info.metadata.message_id }, t.auth))
      expect(rejected.message.status).toBe("MESSAGE_STATUS_REJECTED")
      expect(capped.status?.details["google.rpc.RetryInfo"]).toBeDefined()

      // No route: FAILED_PRECONDITION with ErrorInfo NO_ROUTE.
      const noRoute = failed(yield* unary(messages, "SendMessage", { ...sms, to: "+447911123456" }, t.auth))
      expect(noRoute.code).toBe(grpc.status.FAILED_PRECONDITION)
      expect(noRoute.status?.details["google.rpc.ErrorInfo"]).toMatchObject({ reason: "NO_ROUTE", domain: "smsgw" })

      // A rate limit: RESOURCE_EXHAUSTED with RetryInfo.
      yield* send("PATCH", `${gw.baseUrl}/v1/apps/${t.appId}`, { limits: { perMinute: 1 } }, t.userAuth)
      succeeded(yield* unary(messages, "SendMessage", { ...sms, to: "+4915112340001" }, t.auth))
      const limited = failed(yield* unary(messages, "SendMessage", { ...sms, to: "+4915112340002" }, t.auth))
      expect(limited.code).toBe(grpc.status.RESOURCE_EXHAUSTED)
      const retry = limited.status?.details["google.rpc.RetryInfo"] as { retry_delay: { seconds: number } }
      expect(retry.retry_delay.seconds).toBeGreaterThan(0)
      expect(limited.status?.details["google.rpc.ErrorInfo"]).toMatchObject({ reason: "RATE_LIMITED" })
      yield* send("PATCH", `${gw.baseUrl}/v1/apps/${t.appId}`, { limits: {} }, t.userAuth)

      // The store fails: UNAVAILABLE, and nothing of the database's words reaches the client.
      const db = new DatabaseSync(join(gw.dataDir, "gateway.db"))
      db.exec(`CREATE TRIGGER fail_once BEFORE INSERT ON messages WHEN NEW.text = 'fail me'
        BEGIN SELECT RAISE(ABORT, 'injected failure'); END`)
      const down = failed(yield* unary(messages, "SendMessage", { ...sms, to: "+4915112340003", text: "fail me" }, t.auth))
      db.exec("DROP TRIGGER fail_once")
      db.close()
      expect(down.code).toBe(grpc.status.UNAVAILABLE)
      expect(down.message).not.toContain("injected")
    }).pipe(Effect.scoped), 60_000)

  it.live("idempotency keys: a retry answers the first result (replayed), another message under the key is INVALID_ARGUMENT, one in flight ABORTED", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({ config: { auth } })
      const t = yield* signUp(gw.baseUrl)
      const messages = yield* client(MessageServiceClient, gw.grpcAddress)
      const key = `k-${crypto.randomUUID()}`
      const first = succeeded(yield* unary<Accepted>(messages, "SendMessage", { ...sms, idempotency_key: key }, t.auth))
      expect(first.replayed).toBe(false)
      const again = succeeded(yield* unary<Accepted>(messages, "SendMessage", { ...sms, idempotency_key: key }, t.auth))
      expect(again).toMatchObject({ id: first.id, replayed: true })
      // The same key across the fronts: REST's Idempotency-Key names the same request.
      const rest = yield* post(`${gw.baseUrl}/v1/messages`, sms, { ...t.auth, "idempotency-key": key })
      expect(rest.json.id).toBe(first.id)
      const reused = failed(yield* unary(messages, "SendMessage", { ...sms, text: "another", idempotency_key: key }, t.auth))
      expect(reused.code).toBe(grpc.status.INVALID_ARGUMENT)
      expect(violations(reused).map((v) => v.field)).toEqual(["idempotency_key"])
      const badKey = failed(yield* unary(messages, "SendMessage", { ...sms, idempotency_key: "has space" }, t.auth))
      expect(violations(badKey).map((v) => v.field)).toEqual(["idempotency_key"])
      // In a batch, each message has its own key: the repeated one replays, a new one is sent.
      const batch = succeeded(yield* unary<{ results: Array<{ result: string; accepted?: Accepted }> }>(messages, "SendMessages", {
        messages: [{ ...sms, idempotency_key: key }, { ...sms, to: "+4915112345670", idempotency_key: `${key}-2` }]
      }, t.auth))
      expect(batch.results.map((r) => [r.accepted?.id === first.id, r.accepted?.replayed])).toEqual([[true, true], [false, false]])

      // Another request holds a key right now (on another node, say): ABORTED, with RetryInfo.
      const idempotency = Context.get(gw.context as Context.Context<IdempotencyStore>, IdempotencyStore)
      const held = `held-${crypto.randomUUID()}`
      yield* idempotency.claim([{
        orgId: t.orgId,
        appId: t.appId,
        key: held,
        fingerprint: fingerprint(Schema.decodeUnknownSync(SubmitMessage)(sms)),
        messageId: crypto.randomUUID()
      }], Date.now())
      const busy = failed(yield* unary(messages, "SendMessage", { ...sms, idempotency_key: held }, t.auth))
      expect(busy.code).toBe(grpc.status.ABORTED)
      expect(busy.status?.details["google.rpc.RetryInfo"]).toMatchObject({ retry_delay: { seconds: 1 } })
      expect(busy.status?.details["google.rpc.ErrorInfo"]).toMatchObject({ reason: "IDEMPOTENCY_KEY_IN_FLIGHT" })
    }).pipe(Effect.scoped), 30_000)

  it.live("the REST auth attacks over gRPC: missing, garbled, expired, forged tokens; wrong app; allow-list; other organisations", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({ config: { auth } })
      const a = yield* signUp(gw.baseUrl)
      const b = yield* signUp(gw.baseUrl)
      const messages = yield* client(MessageServiceClient, gw.grpcAddress)
      const key = new TextEncoder().encode(secret)
      const sign = (options: { exp?: number; key?: Uint8Array }) =>
        Effect.promise(() =>
          new SignJWT({ org: a.orgId, app: a.appId, akid: a.apiKey.split("_")[1] })
            .setProtectedHeader({ alg: "HS256", typ: "at+jwt", kid: "k1" })
            .setJti(crypto.randomUUID())
            .setSubject(`app:${a.appId}`)
            .setIssuer(auth.issuer)
            .setAudience(auth.audience)
            .setIssuedAt()
            .setExpirationTime(options.exp ?? Math.floor(Date.now() / 1000) + 600)
            .sign(options.key ?? key)
        )
      const cases: Array<[string, Record<string, string>]> = [
        ["missing", {}],
        ["not bearer", { authorization: `Basic ${Buffer.from("a:b").toString("base64")}` }],
        ["garbage", bearer("not.a.jwt")],
        ["expired", bearer(yield* sign({ exp: Math.floor(Date.now() / 1000) - 60 }))],
        ["wrong key", bearer(yield* sign({ key: new TextEncoder().encode("another-secret-of-at-least-32-bytes!!") }))]
      ]
      for (const [name, headers] of cases) {
        for (const [method, request] of [["SendMessage", sms], ["GetMessage", { id: "x" }], ["ListMessages", {}]] as const) {
          expect(failed(yield* unary(messages, method, request, headers)).code, `${name} ${method}`).toBe(grpc.status.UNAUTHENTICATED)
        }
        const watch = yield* serverStream(messages, "WatchMessage", { id: "x" }, headers)
        expect(watch.error?.code, `${name} WatchMessage`).toBe(grpc.status.UNAUTHENTICATED)
      }
      // The same claims, correctly signed, pass: the cases above fail for the reason they name.
      const sent = succeeded(yield* unary<Accepted>(messages, "SendMessage", sms, bearer(yield* sign({}))))

      // Another organisation: its app cannot be named, A's message is NOT_FOUND to B (get and watch), never listed.
      expect(failed(yield* unary(messages, "SendMessage", sms, { ...b.userAuth, "x-app-id": a.appId })).code).toBe(grpc.status.PERMISSION_DENIED)
      expect(failed(yield* unary(messages, "GetMessage", { id: sent.id }, b.auth)).code).toBe(grpc.status.NOT_FOUND)
      expect(failed(yield* unary(messages, "GetMessage", { id: sent.id }, b.userAuth)).code).toBe(grpc.status.NOT_FOUND)
      expect((yield* serverStream(messages, "WatchMessage", { id: sent.id }, b.auth)).error?.code).toBe(grpc.status.NOT_FOUND)
      const theirs = succeeded(yield* unary<{ messages: Array<unknown> }>(messages, "ListMessages", { id: sent.id }, b.userAuth))
      expect(theirs.messages).toEqual([])
      // An app token lists its own app only.
      expect(failed(yield* unary(messages, "ListMessages", { app_id: b.appId }, a.auth)).code).toBe(grpc.status.PERMISSION_DENIED)

      // The IP allow-list holds against the HTTP/2 peer; a forged x-forwarded-for from an untrusted peer changes nothing.
      yield* send("PATCH", `${gw.baseUrl}/v1/apps/${a.appId}`, { allowList: ["10.0.0.0/8"] }, a.userAuth)
      expect(failed(yield* unary(messages, "SendMessage", sms, a.auth)).code).toBe(grpc.status.PERMISSION_DENIED)
      expect(failed(yield* unary(messages, "SendMessage", sms, { ...a.auth, "x-forwarded-for": "10.1.2.3" })).code).toBe(grpc.status.PERMISSION_DENIED)
      yield* send("PATCH", `${gw.baseUrl}/v1/apps/${a.appId}`, { allowList: ["10.0.0.0/8", "127.0.0.1"] }, a.userAuth)
      succeeded(yield* unary(messages, "SendMessage", sms, a.auth))
    }).pipe(Effect.scoped), 60_000)

  it.live("behind a trusted proxy the client address is read from x-forwarded-for, right to left", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({ config: { auth, http: { trustedProxies: ["127.0.0.1/32", "::1"] } } })
      const t = yield* signUp(gw.baseUrl, { allowList: ["10.0.0.0/8"] })
      const messages = yield* client(MessageServiceClient, gw.grpcAddress)
      succeeded(yield* unary(messages, "SendMessage", sms, { ...t.auth, "x-forwarded-for": "10.1.2.3" }))
      expect(failed(yield* unary(messages, "SendMessage", sms, { ...t.auth, "x-forwarded-for": "10.1.2.3, 192.168.7.7" })).code)
        .toBe(grpc.status.PERMISSION_DENIED)
      expect(failed(yield* unary(messages, "SendMessage", sms, t.auth)).code).toBe(grpc.status.PERMISSION_DENIED)
      // And REST agrees with it.
      expect((yield* post(`${gw.baseUrl}/v1/messages`, sms, { ...t.auth, "x-forwarded-for": "10.1.2.3" })).status).toBe(202)
    }).pipe(Effect.scoped), 30_000)
})
