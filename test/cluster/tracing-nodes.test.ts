import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { randomBytes } from "node:crypto"
import * as Simulator from "../../src/smpp/Simulator.ts"
import { clusterNode, ownerOf, simLink, startClusterNodes } from "../fixtures/Cluster.ts"
import { freshPgDatabase } from "../fixtures/Databases.ts"
import { eventually } from "../fixtures/Eventually.ts"
import { post, signUp, waitForStatus } from "../fixtures/Gateway.ts"
import { otlpReceiver, traceOf } from "../fixtures/OtlpReceiver.ts"

const hex = (bytes: number) => randomBytes(bytes).toString("hex")

describe("one trace across two cluster processes", () => {
  it.live("the message accepted on one node, its link on the other: one trace, the link's spans from the link's node", () =>
    Effect.gen(function*() {
      const database = yield* freshPgDatabase
      const sim = yield* Simulator.start({ port: 0, receiptDelayMs: 100 })
      const receiver = yield* otlpReceiver
      const prefix = `smsgw:tracing:${crypto.randomUUID().slice(0, 8)}:`
      const nodes = yield* startClusterNodes(2, (slot) => ({
        ...clusterNode(slot, database),
        links: [simLink("de", sim, { enquireLinkIntervalMs: 1000 })],
        routes: [{ id: "de", match: {}, target: { link: "de" } }],
        rateLimits: { store: "redis", nodes: 2, redis: { host: "127.0.0.1", port: 6379, keyPrefix: prefix } },
        telemetry: { serviceName: "smsgw", otlp: { endpoint: receiver.endpoint, exportIntervalMs: 200 } },
        log: { format: "json", level: "warning", modules: { link: "info" } }
      }))
      yield* eventually("de bound once", Effect.map(sim.stats, (s) => s.boundSessions === 1 ? true : undefined), { timeout: 30_000 })
      const owner = yield* eventually("the node running link de", ownerOf(nodes, "de"), { timeout: 20_000 })
      const other = nodes.find((n) => n !== owner)!
      const base = `http://127.0.0.1:${other.port}`
      const t = yield* signUp(base)

      const traceId = hex(16)
      const sent = yield* post(`${base}/v1/messages`, { to: "+4915112345678", from: "ACME", text: "across nodes" }, {
        ...t.auth,
        traceparent: `00-${traceId}-${hex(8)}-01`
      })
      expect(sent.status).toBe(202)
      yield* waitForStatus(base, String(sent.json.id), "delivered", 20_000, t.auth)

      const spans = yield* traceOf(receiver, traceId, "smsgw.receipt", 20_000)
      const one = (name: string) => {
        const found = spans.filter((s) => s.name === name)
        expect(found, name).toHaveLength(1)
        return found[0]!
      }
      const message = one("smsgw.message")
      const send = one("smsgw.link.send")
      const receipt = one("smsgw.receipt")
      // Accepted where the request came in; sent and receipted where the link runs; one tree.
      expect(message.service["smsgw.runner"]).toBe(other.runner)
      expect(send.service["smsgw.runner"]).toBe(owner!.runner)
      expect(receipt.service["smsgw.runner"]).toBe(owner!.runner)
      expect(send.parentSpanId).toBe(message.spanId)
      expect(receipt.parentSpanId).toBe(message.spanId)
      expect(one("smsgw.smpp.submit_sm").parentSpanId).toBe(send.spanId)

      // log.format json: every line the nodes wrote is one JSON object; at level warning with the link module at info,
      // the link's info lines are written (marked module=link) and no other part's.
      for (const node of nodes) {
        const lines = node.process!.output().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>)
        for (const line of lines) expect(line).toMatchObject({ level: expect.any(String), message: expect.any(String), timestamp: expect.any(String) })
        const infos = lines.filter((l) => l.level === "INFO")
        expect(infos.every((l) => l.module === "link"), JSON.stringify(infos.filter((l) => l.module !== "link"))).toBe(true)
        if (node === owner) expect(infos.map((l) => l.message)).toContain("link bound")
      }
    }).pipe(Effect.scoped), 120_000)
})
