/**
 * The live figures are the cluster's, not a node's: messages sent half through each of two gateway processes appear
 * in full on either node's dashboard (accepted, delivered, time to receipt), and an operator on either node sees the
 * link wherever its actor runs.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { DashboardView } from "../../src/domain/Dashboard.ts"
import * as Simulator from "../../src/smpp/Simulator.ts"
import { clusterNode, simLink, startClusterNodes } from "../fixtures/Cluster.ts"
import { freshPgDatabase } from "../fixtures/Databases.ts"
import { eventually } from "../fixtures/Eventually.ts"
import { get, post, signUp, superadmin } from "../fixtures/Gateway.ts"

const asDashboard = Schema.decodeUnknownSync(DashboardView)

describe("the dashboard across two gateway processes", () => {
  it.live("each node's dashboard counts what both nodes accepted and delivered", () =>
    Effect.gen(function*() {
      const database = yield* freshPgDatabase
      const sim = yield* Simulator.start({ port: 0, receiptDelayMs: 50 })
      const prefix = `smsgw:dash-test:${crypto.randomUUID().slice(0, 8)}:`
      const nodes = yield* startClusterNodes(2, (slot) => ({
        ...clusterNode(slot, database),
        links: [simLink("sim", sim)],
        rateLimits: { store: "redis", nodes: 2, redis: { host: "127.0.0.1", port: 6379, keyPrefix: prefix } }
      }))
      const urls = nodes.map((n) => `http://127.0.0.1:${n.port}`)
      const t = yield* signUp(urls[0]!)
      for (let i = 0; i < 10; i++) {
        const sent = yield* post(`${urls[i % 2]!}/v1/messages`, { to: `+4915112${String(600_000 + i)}`, from: "ACME", text: `cluster ${i}` }, t.auth)
        expect(sent.status, JSON.stringify(sent.json)).toBe(202)
      }
      for (const url of urls) {
        const view = yield* eventually(`all 10 delivered on ${url}`, Effect.map(get(`${url}/v1/dashboard`, t.userAuth), (r) => asDashboard(r.json)), {
          timeout: 20_000,
          // Each node adds its counts to the shared figures every second: the accepting node's may land after the
          // delivering node's, so both are waited for.
          until: (v) => v.window.totals.delivered === 10 && v.window.totals.accepted === 10
        })
        expect(view.window.totals).toMatchObject({ accepted: 10, submitted: 10, delivered: 10, refused: 0 })
        expect(view.window.receipt.count).toBe(10)
        expect(view.window.receipt.p50Ms).toBeGreaterThan(20)
      }
      for (const url of urls) {
        const ops = yield* superadmin(url)
        const operator = yield* eventually(`the link on ${url}`, Effect.map(get(`${url}/v1/dashboard`, ops), (r) => asDashboard(r.json).operator), {
          until: (o) => o.links[0]?.state === "bound"
        })
        expect(operator.links[0]).toMatchObject({ linkId: "sim", bound: true, figures: { totals: { submitted: 10, delivered: 10 } } })
      }
    }).pipe(Effect.scoped), 120_000)
})
