/**
 * The operators' policy API across two gateway processes: a dry run decided by a recipient bucket on the other node
 * counts nothing there either, and the per-rule counters are the cluster's sums whichever node answers.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Simulator from "../../src/smpp/Simulator.ts"
import { clusterNode, simLink, startClusterNodes } from "../fixtures/Cluster.ts"
import type { Node } from "../fixtures/Cluster.ts"
import { freshPgDatabase } from "../fixtures/Databases.ts"
import { get, post, signUp, superadmin } from "../fixtures/Gateway.ts"
import { eventually } from "../fixtures/Eventually.ts"

describe("operators' policy API on a cluster", () => {
  it.live("tests from both nodes spend nothing (the third real message still passes the cap of 3); counters sum both nodes", () =>
    Effect.gen(function*() {
      const database = yield* freshPgDatabase
      const sim = yield* Simulator.start({ port: 0, receiptDelayMs: 50 })
      const prefix = `smsgw:policy-admin-test:${crypto.randomUUID().slice(0, 8)}:`
      const nodes = yield* startClusterNodes(2, (slot) => ({
        ...clusterNode(slot, database),
        links: [simLink("sim", sim)],
        rateLimits: { store: "redis", nodes: 2, redis: { host: "127.0.0.1", port: 6379, keyPrefix: `${prefix}rl:` } },
        policy: {
          buckets: 8,
          redis: { host: "127.0.0.1", port: 6379, keyPrefix: `${prefix}pol:` },
          rules: [{ id: "cap-3-per-hour", type: "frequency_cap", max: 3, window: "hour" }]
        }
      }))
      const base = (node: Node) => `http://127.0.0.1:${node.port}`
      const [a, b] = [nodes[0]!, nodes[1]!]
      const t = yield* signUp(base(a))
      const ops = yield* superadmin(base(a))
      const to = "+4915112345609"
      let n = 0
      const send = (node: Node) => post(`${base(node)}/v1/messages`, { to, from: "Shop", text: `offer ${++n}` }, t.auth).pipe(Effect.map((r) => r.status))
      const test = (node: Node) => post(`${base(node)}/v1/policies/test`, { to, text: "offer", appId: t.appId }, ops).pipe(Effect.map((r) => r.json))

      expect(yield* send(a)).toBe(202)
      expect(yield* send(b)).toBe(202)
      // One of the two nodes owns the recipient's bucket: the other's test is decided there, remotely.
      for (let i = 0; i < 4; i++) {
        for (const node of [a, b]) expect(yield* test(node)).toMatchObject({ decision: "admit" })
      }
      expect(yield* send(b)).toBe(202)
      for (const node of [a, b]) {
        expect(yield* test(node)).toMatchObject({ decision: "refuse", ruleId: "cap-3-per-hour", reason: "frequency_cap" })
      }
      expect(yield* send(a)).toBe(422)

      // Either node answers the same sums: 3 admitted, 1 refused, from both nodes' messages.
      for (const node of [b, a]) {
        const stats = yield* eventually(`counters on ${node.port}`, Effect.map(get(`${base(node)}/v1/policies/stats?minutes=10`, ops), (r) => r.json), {
          timeout: 15_000,
          until: (json) => json.admitted === 3 && json.refused === 1
        })
        expect(stats.rules).toEqual([expect.objectContaining({ ruleId: "cap-3-per-hour", admitted: 3, refused: 1, byReason: { frequency_cap: 1 } })])
      }
      // The live link state is answered by either node, wherever the link's actor runs.
      const live = yield* eventually("link bound", Effect.map(get(`${base(b)}/v1/admin/state`, ops), (r) => r.json), {
        timeout: 15_000,
        until: (json) => (json.links as Array<{ state?: { bound: boolean } }>)[0]?.state?.bound === true
      })
      expect(live.links).toEqual([expect.objectContaining({ linkId: "sim", enabled: true })])
    }).pipe(Effect.scoped), 180_000)
})
