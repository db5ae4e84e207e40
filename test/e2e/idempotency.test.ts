import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Schema } from "effect"
import { join } from "node:path"
import { SubmitMessage } from "../../src/domain/Message.ts"
import type { GatewayConfig } from "../../src/layers/Config.ts"
import { fingerprint } from "../../src/pipeline/Idempotency.ts"
import * as Simulator from "../../src/smpp/Simulator.ts"
import { IdempotencyStore, idempotencyDefaults } from "../../src/storage/IdempotencyStore.ts"
import { MessageStore } from "../../src/storage/MessageStore.ts"
import { writeNodeConfig } from "../fixtures/Cluster.ts"
import { tempDir } from "../fixtures/Databases.ts"
import { eventually } from "../fixtures/Eventually.ts"
import { get, post, signUp, startGateway, waitForStatus } from "../fixtures/Gateway.ts"
import { newMessage } from "../fixtures/Messages.ts"
import { expectProblem, fieldsOf } from "../fixtures/Problems.ts"
import { freePort, killHard, spawnSmsgw } from "../fixtures/Processes.ts"

const body = { to: "+4915112345678", from: "ACME", text: "Your code is 123456" }
const keyed = (auth: Record<string, string>, key: string) => ({ ...auth, "idempotency-key": key })

describe("idempotency keys on POST /v1/messages", () => {
  it.live("the same key and request answer the first id (Idempotent-Replayed) and send once; another request with it is 422; another app's key is its own", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway()
      const t = yield* signUp(gw.baseUrl)
      const key = crypto.randomUUID()
      const first = yield* post(`${gw.baseUrl}/v1/messages`, body, keyed(t.auth, key))
      expect(first.status).toBe(202)
      expect(first.headers.get("idempotent-replayed")).toBeNull()
      yield* waitForStatus(gw.baseUrl, String(first.json.id), "delivered", 10_000, t.auth)
      // Reordered keys are the same request.
      const again = yield* post(`${gw.baseUrl}/v1/messages`, { text: body.text, from: body.from, to: body.to }, keyed(t.auth, key))
      expect(again.status).toBe(202)
      expect(again.json).toEqual(first.json)
      expect(again.headers.get("idempotent-replayed")).toBe("true")
      const other = yield* post(`${gw.baseUrl}/v1/messages`, { ...body, text: "Your code is 654321" }, keyed(t.auth, key))
      expectProblem(other, 422, "idempotency-key-reused")
      expect(other.json.key).toBe(key)
      // Another organisation's app with the same key sends its own message.
      const stranger = yield* signUp(gw.baseUrl)
      const theirs = yield* post(`${gw.baseUrl}/v1/messages`, body, keyed(stranger.auth, key))
      expect(theirs.status).toBe(202)
      expect(theirs.json.id).not.toBe(first.json.id)
      yield* waitForStatus(gw.baseUrl, String(theirs.json.id), "delivered", 10_000, stranger.auth)
      expect((yield* gw.sim.stats).submits).toBe(2)
      // A key clients cannot have meant is named as the field it came in.
      const bad = yield* post(`${gw.baseUrl}/v1/messages`, body, keyed(t.auth, "two words"))
      expectProblem(bad, 400, "validation")
      expect(fieldsOf(bad)).toEqual(["idempotency-key"])
    }).pipe(Effect.scoped), 30_000)

  it.live("ten simultaneous requests with one key: one message is stored and sent; every 202 carries its id, the others are 409", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway()
      const t = yield* signUp(gw.baseUrl)
      const key = crypto.randomUUID()
      const answers = yield* Effect.forEach(Array.from({ length: 10 }), () => post(`${gw.baseUrl}/v1/messages`, body, keyed(t.auth, key)), { concurrency: "unbounded" })
      const accepted = answers.filter((a) => a.status === 202)
      expect(answers.every((a) => a.status === 202 || a.status === 409), JSON.stringify(answers.map((a) => a.status))).toBe(true)
      expect(accepted.length).toBeGreaterThanOrEqual(1)
      expect(new Set(accepted.map((a) => a.json.id)).size).toBe(1)
      const id = String(accepted[0]!.json.id)
      yield* waitForStatus(gw.baseUrl, id, "delivered", 10_000, t.auth)
      // And after the dust settles, the key still answers that one message.
      const later = yield* post(`${gw.baseUrl}/v1/messages`, body, keyed(t.auth, key))
      expect(later.json.id).toBe(id)
      expect((yield* gw.sim.stats).submits).toBe(1)
    }).pipe(Effect.scoped), 30_000)

  it.live("a policy refusal that says when to retry is not replayed: the retry with the same key is decided again", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({ config: { policy: { rules: [{ id: "one-per-hour", type: "frequency_cap", max: 1, window: "hour" }] } } })
      const t = yield* signUp(gw.baseUrl)
      expect((yield* post(`${gw.baseUrl}/v1/messages`, body, keyed(t.auth, crypto.randomUUID()))).status).toBe(202)
      const key = crypto.randomUUID()
      const capped = yield* post(`${gw.baseUrl}/v1/messages`, { ...body, text: "a second one" }, keyed(t.auth, key))
      expectProblem(capped, 422, "policy-rejected")
      expect(capped.json).toMatchObject({ reason: "frequency_cap", ruleId: "one-per-hour" })
      expect(capped.json.retryAfterSeconds).toBeGreaterThan(0)
      const again = yield* post(`${gw.baseUrl}/v1/messages`, { ...body, text: "a second one" }, keyed(t.auth, key))
      expectProblem(again, 422, "policy-rejected")
      // Decided again: a new refused message was recorded, not the first one's id replayed.
      expect(again.json.messageId).not.toBe(capped.json.messageId)
      expect(again.headers.get("idempotent-replayed")).toBeNull()
    }).pipe(Effect.scoped), 30_000)

  it.live("a key whose first request is in flight is 409 with Retry-After; once its lease ran out (its node died) the retry takes it over under the same id", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway()
      const t = yield* signUp(gw.baseUrl)
      const idempotency = Context.get(gw.context as Context.Context<IdempotencyStore>, IdempotencyStore)
      const print = fingerprint(Schema.decodeUnknownSync(SubmitMessage)(body))
      const scope = { orgId: t.orgId, appId: t.appId }
      // Another request (on another node, say) holds the key right now.
      const held = "held-" + crypto.randomUUID()
      yield* idempotency.claim([{ ...scope, key: held, fingerprint: print, messageId: crypto.randomUUID() }], Date.now())
      const busy = yield* post(`${gw.baseUrl}/v1/messages`, body, keyed(t.auth, held))
      expectProblem(busy, 409, "idempotency-in-flight")
      expect(busy.headers.get("retry-after")).toBe("1")
      // A request whose node died: its claim is past its lease and nothing was stored under its message id.
      const abandoned = "abandoned-" + crypto.randomUUID()
      const firstId = crypto.randomUUID()
      yield* idempotency.claim([{ ...scope, key: abandoned, fingerprint: print, messageId: firstId }], Date.now() - idempotencyDefaults.leaseMs - 1_000)
      const retried = yield* post(`${gw.baseUrl}/v1/messages`, body, keyed(t.auth, abandoned))
      expect(retried.status).toBe(202)
      expect(retried.json.id).toBe(firstId)
      yield* waitForStatus(gw.baseUrl, firstId, "delivered", 10_000, t.auth)
      // A request whose node died after its message was committed: the retry answers that message, sends nothing.
      const committed = "committed-" + crypto.randomUUID()
      const storedId = crypto.randomUUID()
      yield* idempotency.claim([{ ...scope, key: committed, fingerprint: print, messageId: storedId }], Date.now() - idempotencyDefaults.leaseMs - 1_000)
      const store = Context.get(gw.context as Context.Context<MessageStore>, MessageStore)
      yield* store.accept([newMessage({ id: storedId, orgId: t.orgId, appId: t.appId, routeLinkId: "sim" })])
      const answered = yield* post(`${gw.baseUrl}/v1/messages`, body, keyed(t.auth, committed))
      expect(answered.status).toBe(202)
      expect(answered.json).toMatchObject({ id: storedId, status: "accepted" })
      expect(answered.headers.get("idempotent-replayed")).toBe("true")
      // Only the taken-over message went to the SMSC (the committed one is recovery's to send).
      expect((yield* gw.sim.stats).uniqueMessages).toBe(1)
    }).pipe(Effect.scoped), 30_000)

  it.live("an acceptance is remembered even once the limit is spent; a rate-limited attempt is not (its retry is decided again)", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway()
      const t = yield* signUp(gw.baseUrl)
      const patched = yield* Effect.promise(() =>
        fetch(`${gw.baseUrl}/v1/apps/${t.appId}`, {
          method: "PATCH",
          headers: { "content-type": "application/json", ...t.userAuth },
          body: JSON.stringify({ limits: { perMinute: 1 } })
        }).then((r) => r.status)
      )
      expect(patched).toBe(200)
      const firstKey = crypto.randomUUID()
      const limitedKey = crypto.randomUUID()
      const sent = yield* post(`${gw.baseUrl}/v1/messages`, body, keyed(t.auth, firstKey))
      expect(sent.status).toBe(202)
      const limited = yield* eventually("the app's limit applies", Effect.gen(function*() {
        const r = yield* post(`${gw.baseUrl}/v1/messages`, { ...body, text: "second" }, keyed(t.auth, limitedKey))
        return r.status === 429 ? r : undefined
      }), { timeout: 5_000 })
      expectProblem(limited, 429, "too-many-requests")
      // Not remembered: the same key and request are decided again (and refused again by the limit, not replayed).
      const again = yield* post(`${gw.baseUrl}/v1/messages`, { ...body, text: "second" }, keyed(t.auth, limitedKey))
      expectProblem(again, 429, "too-many-requests")
      expect(again.headers.get("idempotent-replayed")).toBeNull()
      // The accepted one is replayed even now that the limit is spent.
      const replay = yield* post(`${gw.baseUrl}/v1/messages`, body, keyed(t.auth, firstKey))
      expect(replay.status).toBe(202)
      expect(replay.json.id).toBe(sent.json.id)
    }).pipe(Effect.scoped), 30_000)

  it.live("a batch's per-message keys: the repeated batch is answered from the first, a reused key refuses only its message", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway()
      const t = yield* signUp(gw.baseUrl)
      const keys = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()]
      const messages = keys.map((idempotencyKey, i) => ({ ...body, to: `+491511234567${i}`, idempotencyKey }))
      const first = yield* post(`${gw.baseUrl}/v1/messages/batch`, { messages }, t.auth)
      expect(first.status).toBe(202)
      expect(first.json.accepted).toBe(3)
      const firstIds = (first.json.results as Array<{ id: string }>).map((r) => r.id)
      const second = yield* post(`${gw.baseUrl}/v1/messages/batch`, {
        messages: [...messages.slice(0, 2), { ...messages[2]!, text: "changed" }, { ...body, to: "+4915112345679" }]
      }, t.auth)
      const results = second.json.results as Array<{ id?: string; status: string; replayed?: boolean; problem?: { type: string; key?: string } }>
      expect(results.slice(0, 2).map((r) => [r.id, r.replayed])).toEqual([[firstIds[0], true], [firstIds[1], true]])
      expect(results[2]!.problem).toMatchObject({ type: "urn:smsgw:problem:idempotency-key-reused", key: keys[2] })
      expect(results[3]!.status).toBe("accepted")
      yield* eventually("four sent", Effect.map(gw.sim.stats, (s) => s.uniqueMessages >= 4 ? true : undefined))
      expect((yield* gw.sim.stats).uniqueMessages).toBe(4)
    }).pipe(Effect.scoped), 30_000)

  it.live("a key survives a SIGKILL and restart of the gateway: the retry answers the first id and nothing is sent twice", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const sim = yield* Simulator.start({ port: 0, receiptDelayMs: 20 })
      const httpPort = yield* freePort
      const config = join(dir, "gateway.yaml")
      const gatewayConfig: GatewayConfig = {
        http: { port: httpPort, host: "127.0.0.1" },
        storage: { kind: "sqlite", path: join(dir, "gateway.db") },
        links: [{ id: "sim", host: "127.0.0.1", port: sim.port, systemId: "t", password: "t", reconnectMaxMs: 500 }]
      } as GatewayConfig
      writeNodeConfig(config, gatewayConfig)
      const base = `http://127.0.0.1:${httpPort}`
      const up = (name: string) => eventually(name, get(`${base}/healthz`).pipe(Effect.map((r) => r.status === 200 ? true : undefined)))
      const first = yield* spawnSmsgw(["serve", "--config", config])
      yield* up("first gateway up")
      const t = yield* signUp(base)
      const key = crypto.randomUUID()
      const sent = yield* post(`${base}/v1/messages`, body, keyed(t.auth, key))
      expect(sent.status).toBe(202)
      yield* eventually("submitted", Effect.map(sim.stats, (s) => s.uniqueMessages === 1 ? true : undefined))
      yield* killHard(first)
      const second = yield* spawnSmsgw(["serve", "--config", config])
      yield* up("second gateway up")
      const again = yield* post(`${base}/v1/messages`, body, keyed(t.auth, key))
      expect(again.status).toBe(202)
      expect(again.json.id).toBe(sent.json.id)
      expect(again.headers.get("idempotent-replayed")).toBe("true")
      expect((yield* sim.stats).uniqueMessages).toBe(1)
      yield* killHard(second)
    }).pipe(Effect.scoped), 60_000)
})
