import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { DatabaseSync } from "node:sqlite"
import { join } from "node:path"
import { eventually } from "../fixtures/Eventually.ts"
import { get, post, signUp, startGateway } from "../fixtures/Gateway.ts"
import { expectProblem, fieldsOf } from "../fixtures/Problems.ts"

const countMessages = (dataDir: string) => {
  const db = new DatabaseSync(join(dataDir, "gateway.db"), { readOnly: true })
  try {
    return Number((db.prepare("SELECT COUNT(*) AS n FROM messages").get() as { n: number }).n)
  } finally {
    db.close()
  }
}

interface Result {
  readonly index: number
  readonly status: "accepted" | "refused"
  readonly id?: string
  readonly replayed?: boolean
  readonly problem?: { readonly type: string; readonly status: number; readonly errors?: ReadonlyArray<{ field: string }> }
}

const number = (i: number) => `+4915112${340_000 + i}`

describe("POST /v1/messages/batch", () => {
  it.live("1,000 messages with one bad number: 999 accepted in order and all sent, the bad one refused naming messages[500].to", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({ link: { tps: 5000, window: 50 } })
      const t = yield* signUp(gw.baseUrl)
      const messages = Array.from({ length: 1000 }, (_, i) => ({
        to: i === 500 ? "+49 not a number" : number(i),
        from: "ACME",
        text: `batch message ${i}`,
        clientRef: `ref-${i}`
      }))
      const r = yield* post(`${gw.baseUrl}/v1/messages/batch`, { messages }, t.auth)
      expect(r.status).toBe(202)
      expect(r.json).toMatchObject({ accepted: 999, refused: 1 })
      const results = r.json.results as ReadonlyArray<Result>
      expect(results.map((x) => x.index)).toEqual(messages.map((_, i) => i))
      const bad = results[500]!
      expect(bad.status).toBe("refused")
      expect(bad.problem?.type).toBe("urn:smsgw:problem:validation")
      expect(bad.problem?.status).toBe(400)
      expect(bad.problem?.errors?.map((e) => e.field)).toEqual(["messages[500].to"])
      const ids = results.filter((x) => x.status === "accepted").map((x) => x.id)
      expect(new Set(ids).size).toBe(999)
      // Each accepted message is the one sent at its place: its clientRef says which.
      const view = yield* get(`${gw.baseUrl}/v1/messages/${results[501]!.id}`, t.auth)
      expect(view.json).toMatchObject({ clientRef: "ref-501" })
      yield* eventually("all 999 submitted", Effect.map(gw.sim.stats, (s) => s.uniqueMessages >= 999 ? s : undefined), { timeout: 60_000 })
      expect((yield* gw.sim.stats).uniqueMessages).toBe(999)
      expect(countMessages(gw.dataDir)).toBe(999)
    }).pipe(Effect.scoped), 90_000)

  it.live("1,001 messages are refused whole (400 naming `messages`); so is a batch with an unknown key; nothing is stored", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway()
      const t = yield* signUp(gw.baseUrl)
      const one = { to: "+4915112345678", from: "ACME", text: "hi" }
      const tooMany = yield* post(`${gw.baseUrl}/v1/messages/batch`, { messages: Array.from({ length: 1001 }, () => one) }, t.auth)
      expectProblem(tooMany, 400, "validation")
      expect(fieldsOf(tooMany)).toEqual(["messages"])
      const unknown = yield* post(`${gw.baseUrl}/v1/messages/batch`, { messages: [one, { ...one, colour: "red" }] }, t.auth)
      expectProblem(unknown, 400, "validation")
      expect(fieldsOf(unknown)).toEqual(["messages[1].colour"])
      const empty = yield* post(`${gw.baseUrl}/v1/messages/batch`, { messages: [] }, t.auth)
      expectProblem(empty, 400, "validation")
      // A key for the whole batch would be silently ignored, and a retry would resend everything: refused, naming the fix.
      const header = yield* post(`${gw.baseUrl}/v1/messages/batch`, { messages: [one] }, { ...t.auth, "idempotency-key": "batch-1" })
      expectProblem(header, 400, "validation")
      expect(fieldsOf(header)).toEqual(["idempotency-key"])
      const anonymous = yield* post(`${gw.baseUrl}/v1/messages/batch`, { messages: [one] })
      expect(anonymous.status).toBe(401)
      expect(countMessages(gw.dataDir)).toBe(0)
      expect((yield* gw.sim.stats).submits).toBe(0)
    }).pipe(Effect.scoped), 30_000)

  it.live("each message meets the pipeline on its own: a text not in GSM 03.38 and a rate limit refuse only their messages", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway()
      const t = yield* signUp(gw.baseUrl)
      const limited = yield* Effect.promise(() =>
        fetch(`${gw.baseUrl}/v1/apps/${t.appId}`, {
          method: "PATCH",
          headers: { "content-type": "application/json", ...t.userAuth },
          body: JSON.stringify({ limits: { perMinute: 3 } })
        }).then((r) => r.status)
      )
      expect(limited).toBe(200)
      const r = yield* eventually("the app's new limit applies", Effect.gen(function*() {
        const r = yield* post(`${gw.baseUrl}/v1/messages/batch`, {
          messages: [
            { to: "+4915112345671", from: "ACME", text: "one" },
            { to: "+4915112345672", from: "ACME", text: "Ω but gsm7 was asked ☃", encoding: "gsm7" },
            { to: "+4915112345673", from: "ACME", text: "two" },
            { to: "+4915112345674", from: "ACME", text: "three" },
            { to: "+4915112345675", from: "ACME", text: "four" }
          ]
        }, t.auth)
        return (r.json.refused as number) >= 2 ? r : undefined
      }), { timeout: 5_000 })
      const results = r.json.results as ReadonlyArray<Result>
      expect(results.map((x) => x.status)).toEqual(["accepted", "refused", "accepted", "accepted", "refused"])
      expect(results[1]!.problem?.errors?.map((e) => e.field)).toEqual(["messages[1].text"])
      expect(results[4]!.problem).toMatchObject({ type: "urn:smsgw:problem:too-many-requests", status: 429 })
      expect(r.headers.get("ratelimit-policy")).toContain("q=3")
    }).pipe(Effect.scoped), 30_000)
})
