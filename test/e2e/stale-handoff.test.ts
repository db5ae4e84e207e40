/**
 * A stale hand-off: a message handed to its link again after the link sent it (a re-drive racing the first hand-off,
 * a redelivered actor call). The link marks each part as handed before writing it; the store refuses the mark for a
 * part it has submitted or final, and the link then does not send it.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect } from "effect"
import { LinkDispatcher } from "../../src/actors/LinkDispatcher.ts"
import { eventually } from "../fixtures/Eventually.ts"
import { get, post, signUp, startGateway, waitForStatus } from "../fixtures/Gateway.ts"

describe("a stale hand-off to a link", () => {
  it.live("a part the store has as sent is not sent again; the message's status and events stay as they were", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway()
      const t = yield* signUp(gw.baseUrl)
      const texts = async () => (await Effect.runPromise(gw.sim.received)).map((r) => Buffer.from(r.shortMessage).toString("latin1"))
      const sent = yield* post(`${gw.baseUrl}/v1/messages`, { to: "+4915112345678", from: "ACME", text: "only once" }, t.auth)
      const id = String(sent.json.id)
      yield* waitForStatus(gw.baseUrl, id, "delivered", 10_000, t.auth)
      const before = yield* get(`${gw.baseUrl}/v1/messages/${id}`, t.auth)

      // The same message handed to its link again, then a fresh one behind it on the same link.
      const dispatcher = Context.get(gw.context as Context.Context<LinkDispatcher>, LinkDispatcher)
      yield* dispatcher.dispatch({ _tag: "Link", id: "sim" }, {
        messageId: id,
        to: "+4915112345678",
        from: "ACME",
        text: "only once",
        encoding: "gsm7",
        seqs: [1],
        acceptedAt: Date.now()
      })
      const behind = yield* post(`${gw.baseUrl}/v1/messages`, { to: "+4915112345678", from: "ACME", text: "behind it" }, t.auth)
      yield* waitForStatus(gw.baseUrl, String(behind.json.id), "delivered", 10_000, t.auth)
      yield* eventually("the message behind reached the SMSC", Effect.promise(texts), { until: (all) => all.includes("behind it") })

      expect((yield* Effect.promise(texts)).filter((text) => text === "only once")).toHaveLength(1)
      const after = yield* get(`${gw.baseUrl}/v1/messages/${id}`, t.auth)
      expect(after.json.status).toBe("delivered")
      expect(after.json.events).toEqual(before.json.events)
    }).pipe(Effect.scoped), 30_000)
})
