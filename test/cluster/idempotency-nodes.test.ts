/**
 * Idempotency keys across two gateway processes on one PostgreSQL: a retry that lands on the other node (what a load
 * balancer does) gets the first node's answer, and nothing is sent twice.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Simulator from "../../src/smpp/Simulator.ts"
import { clusterNode, simLink, startClusterNodes } from "../fixtures/Cluster.ts"
import type { Node } from "../fixtures/Cluster.ts"
import { freshPgDatabase } from "../fixtures/Databases.ts"
import { eventually } from "../fixtures/Eventually.ts"
import { get, post, signUp } from "../fixtures/Gateway.ts"

describe("idempotency keys on a cluster", () => {
  it.live("the same key on the other node answers the first id; another request with it is 422 there; a batch repeated on the other node is replayed", () =>
    Effect.gen(function*() {
      const database = yield* freshPgDatabase
      const sim = yield* Simulator.start({ port: 0, receiptDelayMs: 50 })
      const prefix = `smsgw:idempotency-test:${crypto.randomUUID().slice(0, 8)}:`
      const nodes = yield* startClusterNodes(2, (slot) => ({
        ...clusterNode(slot, database),
        links: [simLink("sim", sim)],
        rateLimits: { store: "redis", nodes: 2, redis: { host: "127.0.0.1", port: 6379, keyPrefix: prefix } }
      }))
      const base = (node: Node) => `http://127.0.0.1:${node.port}`
      const [a, b] = [nodes[0]!, nodes[1]!]
      const t = yield* signUp(base(a))
      const key = crypto.randomUUID()
      const body = { to: "+4915112345601", from: "ACME", text: "sent once, wherever it is retried" }
      const first = yield* post(`${base(a)}/v1/messages`, body, { ...t.auth, "idempotency-key": key })
      expect(first.status).toBe(202)
      const retried = yield* post(`${base(b)}/v1/messages`, body, { ...t.auth, "idempotency-key": key })
      expect(retried.status).toBe(202)
      expect(retried.json.id).toBe(first.json.id)
      expect(retried.headers.get("idempotent-replayed")).toBe("true")
      const other = yield* post(`${base(b)}/v1/messages`, { ...body, text: "another text" }, { ...t.auth, "idempotency-key": key })
      expect(other.status).toBe(422)

      const messages = Array.from({ length: 20 }, (_, i) => ({ ...body, to: `+49151123456${10 + i}`, idempotencyKey: `${key}-${i}` }))
      const batch = yield* post(`${base(a)}/v1/messages/batch`, { messages }, t.auth)
      expect(batch.json.accepted).toBe(20)
      const again = yield* post(`${base(b)}/v1/messages/batch`, { messages }, t.auth)
      const ids = (r: typeof batch) => (r.json.results as Array<{ id: string }>).map((x) => x.id)
      expect(ids(again)).toEqual(ids(batch))
      expect((again.json.results as Array<{ replayed?: boolean }>).every((x) => x.replayed === true)).toBe(true)

      yield* eventually("all delivered", Effect.gen(function*() {
        const views = yield* Effect.forEach([String(first.json.id), ...ids(batch)], (id) => get(`${base(b)}/v1/messages/${id}`, t.auth))
        return views.every((v) => v.json.status === "delivered") ? true : undefined
      }), { timeout: 30_000 })
      expect((yield* sim.stats).submits).toBe(21)
    }).pipe(Effect.scoped), 120_000)
})
