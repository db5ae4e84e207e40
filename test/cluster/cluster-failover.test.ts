import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { adminActors, runningLink, sendAnywhere, startCluster as startNodes, statusOn } from "../fixtures/Cluster.ts"
import { signUp } from "../fixtures/Gateway.ts"
import { eventually } from "../fixtures/Eventually.ts"
import { killHard } from "../fixtures/Processes.ts"

/** Three gateway processes on PostgreSQL, two SMSC links: 44… on uk, everything else on de. */
const startCluster = startNodes({
  links: ["de", "uk"],
  routes: [
    { id: "uk", match: { prefixes: ["44"] }, target: { link: "uk" } },
    { id: "de", match: {}, target: { link: "de" } }
  ]
})

describe("cluster of three gateway processes on PostgreSQL", () => {
  it.live("each link is bound once; any node reaches it; SIGKILL of its node re-binds it on a survivor with no message lost", () =>
    Effect.gen(function*() {
      const { nodes, sims } = yield* startCluster
      const t = yield* signUp(`http://127.0.0.1:${nodes[0]!.port}`)
      yield* eventually("both links bound once", Effect.gen(function*() {
        const de = yield* sims.de!.stats
        const uk = yield* sims.uk!.stats
        return de.boundSessions === 1 && uk.boundSessions === 1 ? true : undefined
      }), { timeout: 30_000 })

      // A submission to any node reaches the right link wherever it runs.
      for (const [i, node] of nodes.entries()) {
        const sent = yield* sendAnywhere([node], t, i, i % 2 === 0 ? "+447911123456" : "+4915112345678")
        expect(sent).toBeDefined()
        const view = yield* eventually("delivered", statusOn(nodes, t, sent!.id).pipe(
          Effect.map((v) => v?.status === "delivered" ? v : undefined)
        ), { timeout: 20_000 })
        expect((view.parts as Array<{ linkId: string }>)[0]?.linkId).toBe(i % 2 === 0 ? "uk" : "de")
      }

      const owner = yield* eventually("owner of de", runningLink(nodes, "de", sims.de!.port), { timeout: 20_000 })
      // The admin CLI shows where every actor runs: both links, each on one of the three runners.
      const actors = yield* adminActors(nodes[1]!.port)
      const links = actors.filter((a) => a.type === "SmppLink").map((a) => a.id).sort()
      expect(links).toEqual(["de", "uk"])
      for (const a of actors) expect(nodes.map((n) => n.runner)).toContain(a.runner)
      // A steady load on de from every node; its node dies in the middle.
      const accepted: Array<{ id: string; text: string }> = []
      let killedAt = 0
      for (let second = 0; second < 8; second++) {
        if (second === 3) {
          yield* killHard(owner.process!)
          killedAt = Date.now()
        }
        const batch = yield* Effect.forEach(Array.from({ length: 40 }, (_, k) => second * 40 + k), (i) =>
          sendAnywhere(nodes, t, i, "+4915112345678"), { concurrency: 10 })
        for (const b of batch) if (b !== undefined) accepted.push(b)
        yield* Effect.sleep(250)
      }
      yield* eventually("de re-bound on a survivor", Effect.map(sims.de!.stats, (s) => s.boundSessions >= 1 ? true : undefined), { timeout: 20_000 })
      const rebound = Date.now() - killedAt
      // Every message answered 202 ends submitted or better, and the SMSC received each of them.
      yield* eventually("every accepted message settled", Effect.gen(function*() {
        const views = yield* Effect.forEach(accepted, (a) => statusOn(nodes, t, a.id), { concurrency: 10 })
        return views.every((v) => v !== undefined && (v.status === "submitted" || v.status === "delivered")) ? true : undefined
      }), { timeout: 60_000 })
      const received = new Set((yield* sims.de!.received).map((r) => Buffer.from(r.shortMessage).toString("latin1")))
      expect(accepted.filter((a) => !received.has(a.text)).map((a) => a.text)).toEqual([])
      expect(accepted.length).toBeGreaterThan(250)
      // The bind moved to a survivor within the failover window (shard lock 4 s + refresh + reconnect).
      expect(rebound).toBeLessThan(15_000)
      const stats = yield* sims.de!.stats
      // Resends happen only where the outcome was unknown; the simulator counts distinct messages.
      expect(stats.uniqueMessages).toBeGreaterThanOrEqual(accepted.length)
    }).pipe(Effect.scoped), 180_000)

  it.live("SIGTERM of a node under load: clients that retry on another node see no error, nothing is lost, nothing sent twice", () =>
    Effect.gen(function*() {
      const { nodes, sims } = yield* startCluster
      const t = yield* signUp(`http://127.0.0.1:${nodes[0]!.port}`)
      yield* eventually("links bound", Effect.map(sims.de!.stats, (s) => s.boundSessions === 1 ? true : undefined), { timeout: 30_000 })
      const owner = yield* eventually("owner of de", runningLink(nodes, "de", sims.de!.port), { timeout: 20_000 })
      // An SMSC answering in 100 ms: the link's window holds parts awaiting their answer whenever the node stops.
      yield* sims.de!.setFaults({ responseDelayMs: 100 })
      const accepted: Array<{ id: string; text: string }> = []
      let failures = 0
      for (let second = 0; second < 8; second++) {
        if (second === 3) {
          yield* eventually("submits awaiting their answer", Effect.map(sims.de!.stats, (s) => s.inFlight > 0 ? true : undefined))
          owner.process!.child.kill("SIGTERM")
        }
        const batch = yield* Effect.forEach(Array.from({ length: 40 }, (_, k) => 10_000 + second * 40 + k), (i) =>
          sendAnywhere(nodes, t, i, "+4915112345678", { idempotencyKey: `sigterm-${i}` }), { concurrency: 10 })
        for (const b of batch) {
          if (b === undefined) failures++
          else accepted.push(b)
        }
        yield* Effect.sleep(250)
      }
      expect(failures).toBe(0)
      expect(accepted).toHaveLength(320)
      yield* eventually("every accepted message settled", Effect.gen(function*() {
        const views = yield* Effect.forEach(accepted, (a) => statusOn(nodes, t, a.id), { concurrency: 10 })
        return views.every((v) => v !== undefined && (v.status === "submitted" || v.status === "delivered")) ? true : undefined
      }), { timeout: 60_000 })
      // Each submitted once: the stopping link waited for the answers in its window before it let go, so recovery
      // resent nothing (a part handed without its answer stored would be an unknown outcome, resent: twice at the SMSC).
      const received = new Map<string, number>()
      for (const r of yield* sims.de!.received) {
        const text = Buffer.from(r.shortMessage).toString("latin1")
        received.set(text, (received.get(text) ?? 0) + 1)
      }
      expect(accepted.filter((a) => received.get(a.text) !== 1).map((a) => `${a.text}: ${received.get(a.text) ?? 0}`)).toEqual([])
      // The stopping node unbound cleanly and the link is (or comes back, after a reconnect) bound once on a survivor.
      yield* eventually("de bound once on a survivor", Effect.map(sims.de!.stats, (s) => s.boundSessions === 1 ? true : undefined), { timeout: 15_000 })
    }).pipe(Effect.scoped), 180_000)
})
