/**
 * Inbound messages across three gateway processes on one PostgreSQL database: the link's node stores what the SMSC
 * delivers, the cluster's one processor (wherever it runs) routes it; after a SIGKILL of the link's node the link and
 * the processor carry on from the survivors — every message the SMSC had answered is routed once, none twice.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { moParts } from "../../src/smpp/Simulator.ts"
import { runningLink, startCluster, isLive } from "../fixtures/Cluster.ts"
import { eventually } from "../fixtures/Eventually.ts"
import { get, send, signUp, superadmin } from "../fixtures/Gateway.ts"
import { killHard } from "../fixtures/Processes.ts"

describe("inbound messages in a cluster", () => {
  it.live("stored by the link's node, routed once by the cluster's processor, through a SIGKILL of the link's node", () =>
    Effect.gen(function*() {
      const { nodes, sims } = yield* startCluster({ links: ["mo"], routes: [] })
      const sim = sims.mo!
      const base = (n = 0) => `http://127.0.0.1:${nodes.filter(isLive)[n]!.port}`
      const t = yield* signUp(base())
      const ops = yield* superadmin(base())
      const saved = yield* send("PUT", `${base()}/v1/admin/inbound/routes`, { routes: [{ id: "r", number: "12345", appId: t.appId }] }, ops)
      expect(saved.status).toBe(200)
      const mo = (i: number) =>
        Effect.forEach(moParts({ from: `49151000${String(i).padStart(4, "0")}`, to: "12345", text: `reply ${i}` }), (p) => sim.deliverMo(p), {
          discard: true
        })
      const texts = (n: number) => Array.from({ length: n }, (_, i) => `reply ${i}`)
      const listed = (index: number) =>
        get(`${base(index)}/v1/inbound?limit=500`, t.auth).pipe(
          Effect.map((r) => ((r.json.items ?? []) as ReadonlyArray<{ text: string }>).map((m) => m.text))
        )

      for (let i = 0; i < 20; i++) yield* mo(i)
      yield* eventually("the first 20 routed", listed(1), { timeout: 30_000, until: (l) => l.length === 20 })

      const linkNode = yield* eventually("the node running the link", runningLink(nodes, "mo", sim.port), { timeout: 30_000 })
      yield* killHard(linkNode.process!)
      for (let i = 20; i < 40; i++) yield* mo(i)
      const acked = yield* eventually("the SMSC's 40 messages answered", sim.stats, { timeout: 60_000, until: (s) => s.mosAcked >= 40 })
      expect(acked.mosAcked).toBe(40)
      const all = yield* eventually("all 40 routed", listed(0), { timeout: 60_000, interval: 250, until: (l) => l.length >= 40 })
      expect([...all].sort()).toEqual(texts(40).sort())
    }), 150_000)
})
