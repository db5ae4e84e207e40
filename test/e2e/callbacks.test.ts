/**
 * Status callbacks from the integrator's side: an app's callback URL and signing secret through the API (shown once,
 * rotated with an overlap), a message's own statusCallback, and the durable path — a receiver that is down while the
 * gateway is SIGKILLed and started again still gets every callback of every message, signed, in order per message.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { join } from "node:path"
import { verifySignature } from "../../src/domain/Callback.ts"
import type { GatewayConfig } from "../../src/layers/Config.ts"
import * as Simulator from "../../src/smpp/Simulator.ts"
import { startReceiver } from "../fixtures/Callbacks.ts"
import type { Received } from "../fixtures/Callbacks.ts"
import { writeNodeConfig } from "../fixtures/Cluster.ts"
import { tempDir } from "../fixtures/Databases.ts"
import { eventually } from "../fixtures/Eventually.ts"
import { get, post, send, signUp, startGateway, waitForStatus } from "../fixtures/Gateway.ts"
import { freePort, killHard, spawnSmsgw, waitHealthy } from "../fixtures/Processes.ts"

const sms = { to: "+4915112345678", from: "ACME", text: "hello" }

/** Tests call 127.0.0.1 and wait for retries in tenths of seconds, not seconds. */
const testCallbacks = {
  allowPrivateNetworks: true,
  pollIntervalMs: 50,
  backoff: { initialMs: 100, maxMs: 400 }
} satisfies GatewayConfig["callbacks"]

interface Posted {
  readonly messageId: string
  readonly status: string
  readonly eventId: string
}

const parsed = (r: Received): Posted => JSON.parse(r.body) as Posted

/** The statuses each message's callbacks reached the receiver with, first occurrences only (delivery is at least once). */
const firstSeen = (requests: ReadonlyArray<Received>, ok: (r: Received) => boolean) => {
  const byMessage = new Map<string, Array<string>>()
  const seen = new Set<string>()
  for (const r of requests.filter(ok)) {
    const body = parsed(r)
    if (seen.has(body.eventId)) continue
    seen.add(body.eventId)
    byMessage.set(body.messageId, [...(byMessage.get(body.messageId) ?? []), body.status])
  }
  return byMessage
}

describe("status callbacks", () => {
  it.live("an app's callback URL and secret: the secret shown once, refused URLs named, a message's own statusCallback, signed posts", () =>
    Effect.gen(function*() {
      const appReceiver = yield* startReceiver()
      const ownReceiver = yield* startReceiver()
      const gw = yield* startGateway({ config: { callbacks: testCallbacks } })
      const t = yield* signUp(gw.baseUrl)
      const app = `${gw.baseUrl}/v1/apps/${t.appId}`

      // No secret yet, nothing to sign with: a message's own statusCallback is refused, saying how to make one.
      const unsigned = yield* post(`${gw.baseUrl}/v1/messages`, { ...sms, statusCallback: `${ownReceiver.url}/own` }, t.auth)
      expect(unsigned.status).toBe(400)
      expect(JSON.stringify(unsigned.json)).toContain("callback-secret")

      for (const [url, words] of [["ftp://example.com/cb", "http or https"], ["https://user:pw@example.com/cb", "credentials"], ["/relative", "absolute"]] as const) {
        const refused = yield* send("PATCH", app, { callbackUrl: url }, t.userAuth)
        expect(refused.status, url).toBe(400)
        expect(JSON.stringify(refused.json), url).toContain("callbackUrl")
        expect(JSON.stringify(refused.json), url).toContain(words)
      }
      const set = yield* send("PATCH", app, { callbackUrl: `${appReceiver.url}/sms/status`, callbackEvents: "all" }, t.userAuth)
      expect(set.status).toBe(200)
      const secret = String(set.json.callbackSecret)
      expect(secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/)
      expect(set.json).toMatchObject({ callbackUrl: `${appReceiver.url}/sms/status`, callbackEvents: "all", callbackSecretPrefix: secret.slice(0, 12) })
      // Shown once: neither a read nor a later change shows it again.
      const read = yield* get(app, t.userAuth)
      expect(read.json.callbackSecret).toBeUndefined()
      expect(read.json.callbackSecretPrefix).toBe(secret.slice(0, 12))
      expect((yield* send("PATCH", app, { callbackEvents: "all" }, t.userAuth)).json.callbackSecret).toBeUndefined()

      const viaApp = yield* post(`${gw.baseUrl}/v1/messages`, { ...sms, clientRef: "order-1" }, t.auth)
      expect(viaApp.status).toBe(202)
      const badOwn = yield* post(`${gw.baseUrl}/v1/messages`, { ...sms, statusCallback: "gopher://x" }, t.auth)
      expect(badOwn.status).toBe(400)
      expect(JSON.stringify(badOwn.json)).toContain("statusCallback")
      const viaOwn = yield* post(`${gw.baseUrl}/v1/messages`, { ...sms, statusCallback: `${ownReceiver.url}/own` }, t.auth)
      expect(viaOwn.status).toBe(202)
      yield* waitForStatus(gw.baseUrl, String(viaApp.json.id), "delivered", 15_000, t.auth)
      yield* waitForStatus(gw.baseUrl, String(viaOwn.json.id), "delivered", 15_000, t.auth)

      // Every move after acceptance, in order, to the app's URL; the other message's to its own URL only.
      yield* eventually("both messages' callbacks received", Effect.sync(() =>
        appReceiver.requests.some((r) => parsed(r).status === "delivered") && ownReceiver.requests.some((r) => parsed(r).status === "delivered")
          ? true
          : undefined), { timeout: 15_000 })
      expect([...firstSeen(appReceiver.requests, () => true)]).toEqual([[String(viaApp.json.id), ["submitted", "delivered"]]])
      expect([...firstSeen(ownReceiver.requests, () => true)]).toEqual([[String(viaOwn.json.id), ["submitted", "delivered"]]])
      const delivered = appReceiver.requests.find((r) => parsed(r).status === "delivered")!
      expect(delivered.path).toBe("/sms/status")
      expect(delivered.headers["content-type"]).toBe("application/json")
      expect(JSON.parse(delivered.body)).toMatchObject({ type: "message.status", messageId: viaApp.json.id, clientRef: "order-1", appId: t.appId })
      const now = Math.floor(Date.now() / 1000)
      expect(verifySignature(secret, String(delivered.headers["smsgw-signature"]), delivered.body, now)).toBe(true)
      expect(verifySignature(secret, String(delivered.headers["smsgw-signature"]), `${delivered.body} `, now)).toBe(false)
      expect(verifySignature("whsec_wrong", String(delivered.headers["smsgw-signature"]), delivered.body, now)).toBe(false)

      // Rotation: a new secret, shown once; for a day both sign, so receivers can switch without losing a callback.
      const rotated = yield* post(`${app}/callback-secret`, {}, t.userAuth)
      expect(rotated.status).toBe(200)
      const next = String(rotated.json.secret)
      expect(next).not.toBe(secret)
      const until = Date.parse(String(rotated.json.previousValidUntil))
      expect(until - Date.now()).toBeGreaterThan(23 * 3_600_000)
      const before = appReceiver.requests.length
      const after = yield* post(`${gw.baseUrl}/v1/messages`, sms, t.auth)
      yield* eventually("the callback after the rotation", Effect.sync(() =>
        appReceiver.requests.slice(before).find((r) => parsed(r).messageId === after.json.id)), { timeout: 15_000 })
      const signed = appReceiver.requests.slice(before).find((r) => parsed(r).messageId === after.json.id)!
      const header = String(signed.headers["smsgw-signature"])
      expect(verifySignature(next, header, signed.body, Math.floor(Date.now() / 1000))).toBe(true)
      expect(verifySignature(secret, header, signed.body, Math.floor(Date.now() / 1000))).toBe(true)
      // Only owners and admins change an app's callback: an app token cannot.
      expect((yield* send("PATCH", app, { callbackUrl: null }, t.auth)).status).toBe(403)
      const removed = yield* send("PATCH", app, { callbackUrl: null }, t.userAuth)
      expect(removed.json.callbackUrl).toBeUndefined()
    }).pipe(Effect.scoped), 60_000)

  it.live("a receiver down while the gateway is SIGKILLed and restarted gets every callback later, signed, in order per message", () =>
    Effect.gen(function*() {
      let up = false
      /** Each callback as answered: which move of which message, and the receiver's status. */
      const answers: Array<{ readonly messageId: string; readonly status: string; readonly code: number }> = []
      const receiver = yield* startReceiver((request, response) => {
        response.statusCode = up ? 200 : 503
        answers.push({ ...parsed(request), code: response.statusCode })
        response.end()
      })
      const dir = yield* tempDir
      const sim = yield* Simulator.start({ port: 0, receiptDelayMs: 50 })
      const port = yield* freePort
      const config: GatewayConfig = {
        http: { port, host: "127.0.0.1" },
        storage: { kind: "sqlite", path: join(dir, "gateway.db") },
        links: [{ id: "sim", host: "127.0.0.1", port: sim.port, systemId: "t", password: "t" }],
        callbacks: testCallbacks
      }
      const file = join(dir, "gateway.yaml")
      writeNodeConfig(file, config)
      const base = `http://127.0.0.1:${port}`
      const first = yield* spawnSmsgw(["serve", "--config", file])
      yield* waitHealthy(first, port)
      const t = yield* signUp(base)
      const set = yield* send("PATCH", `${base}/v1/apps/${t.appId}`, { callbackUrl: `${receiver.url}/cb`, callbackEvents: "all" }, t.userAuth)
      const secret = String(set.json.callbackSecret)
      const ids = yield* Effect.forEach(Array.from({ length: 10 }, (_, i) => i), (i) =>
        Effect.map(post(`${base}/v1/messages`, { ...sms, text: `durable ${i}` }, t.auth), (r) => String(r.json.id)), { concurrency: 5 })
      for (const id of ids) yield* waitForStatus(base, id, "delivered", 15_000, t.auth)
      // The receiver has been refusing them: each first callback tried, none taken.
      yield* eventually("callbacks tried against the refusing receiver", Effect.sync(() =>
        new Set(receiver.requests.map((r) => parsed(r).messageId)).size === ids.length ? true : undefined), { timeout: 15_000 })
      yield* killHard(first)

      const second = yield* spawnSmsgw(["serve", "--config", file])
      yield* waitHealthy(second, port)
      up = true
      yield* eventually("every message's callbacks taken", Effect.sync(() =>
        ids.every((id) => answers.some((a) => a.messageId === id && a.status === "delivered" && a.code === 200)) ? true : undefined), { timeout: 30_000 })
      for (const id of ids) {
        const mine = answers.filter((a) => a.messageId === id)
        // Both moves taken; in order: the delivered callback was first posted only after the submitted one was taken.
        const submittedTaken = mine.findIndex((a) => a.status === "submitted" && a.code === 200)
        const deliveredTried = mine.findIndex((a) => a.status === "delivered")
        expect(submittedTaken, id).toBeGreaterThanOrEqual(0)
        expect(deliveredTried, id).toBeGreaterThan(submittedTaken)
        // Refused before the kill, tried again after it.
        expect(mine.filter((a) => a.status === "submitted" && a.code === 503).length, id).toBeGreaterThan(0)
      }
      for (const r of receiver.requests) {
        expect(verifySignature(secret, String(r.headers["smsgw-signature"]), r.body, Math.floor(Date.now() / 1000))).toBe(true)
      }
      // Nothing left owed: the failing list is empty.
      const failing = yield* get(`${base}/v1/apps/${t.appId}/callbacks?state=failing`, t.userAuth)
      expect(failing.status).toBe(200)
    }).pipe(Effect.scoped), 90_000)
})
