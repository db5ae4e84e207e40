import { describe, expect, it } from "@effect/vitest"
import { PgClient } from "@effect/sql-pg"
import { Effect, Fiber, Redacted } from "effect"
import { Reactivity } from "effect/reactivity"
import { pgUrl } from "../fixtures/Databases.ts"
import { isLive, ownerOf, runningLink, sendAnywhere, startCluster, statusOn } from "../fixtures/Cluster.ts"
import { get, signUp } from "../fixtures/Gateway.ts"
import { eventually } from "../fixtures/Eventually.ts"
import { killHard } from "../fixtures/Processes.ts"

const window = 10
const total = 3000

interface View {
  readonly status: string
  readonly reason?: string
  readonly events: ReadonlyArray<{ readonly status: string; readonly detail?: string }>
}

describe("SIGKILL of the node holding a link, hundreds of messages in flight", () => {
  it.live("resends at most the link's window, each counted and on its message; promotional unknowns are reported", () =>
    Effect.gen(function*() {
      const { nodes, sims, database } = yield* startCluster({
        links: ["de"],
        link: { window },
        routes: [{ id: "de", match: {}, target: { link: "de" } }],
        // The defaults, spelled out: transactional unknowns are resent, promotional ones reported.
        recovery: { idleSeconds: 8, intervalSeconds: 1, unknownOutcome: { transactional: "resend", promotional: "report" } }
      })
      const sim = sims.de!
      const db = yield* PgClient.make({ url: Redacted.make(pgUrl(database)), maxConnections: 1 }).pipe(
        Effect.provide(Reactivity.layer),
        Effect.orDie
      )
      const t = yield* signUp(`http://127.0.0.1:${nodes[0]!.port}`)
      yield* eventually("de bound once", Effect.map(sim.stats, (s) => s.boundSessions === 1 ? true : undefined), { timeout: 30_000 })
      // An SMSC answering in 50 ms: a window of 10 sends at most 200/s, less than the nodes accept, so a backlog builds.
      yield* sim.setFaults({ responseDelayMs: 50 })
      // The shards settle after the nodes joined: the link stays where it is for 3 s (three assignment refreshes). A move
      // under load would stop the link with parts in its window, unknown outcomes of their own, not the kill's.
      yield* eventually("the link settled on one node", Effect.gen(function*() {
        const first = yield* ownerOf(nodes, "de")
        yield* Effect.sleep("3 seconds")
        const second = yield* ownerOf(nodes, "de")
        return first !== undefined && first.runner === second?.runner ? true : undefined
      }), { timeout: 40_000, interval: 0 })

      // Round-robin over the three nodes, every text unique, the classes alternating; the owner dies at 40 %.
      const accepted: Array<{ id: string; text: string; retried: boolean; messageClass: "transactional" | "promotional" }> = []
      let submitsAtKill = -1
      let bindsAtKill = -1
      const killer = yield* Effect.gen(function*() {
        yield* eventually("40 % accepted", Effect.sync(() => accepted.length >= total * 0.4 ? true : undefined), { timeout: 60_000 })
        // The owner at the moment of the kill, its window in use (the SMSC holds submits it has not answered yet).
        const owner = yield* eventually("de's node, its window in use", Effect.gen(function*() {
          const node = yield* runningLink(nodes, "de", sim.port)
          const stats = yield* sim.stats
          return stats.boundSessions === 1 && stats.inFlight > 0 ? node : undefined
        }), { timeout: 30_000, interval: 0 })
        yield* killHard(owner.process!)
        const stats = yield* sim.stats
        submitsAtKill = stats.submits
        bindsAtKill = stats.binds
      }).pipe(Effect.forkScoped)
      yield* Effect.forEach(Array.from({ length: total }, (_, i) => i), (i) => {
        const messageClass = i % 2 === 0 ? "transactional" as const : "promotional" as const
        return sendAnywhere(nodes, t, i, `+4915112${String(100_000 + i)}`, { text: `kill ${i} ${messageClass}`, messageClass }).pipe(
          Effect.map((sent) => {
            if (sent !== undefined) accepted.push({ ...sent, messageClass })
          })
        )
      }, { concurrency: 30, discard: true })
      yield* Fiber.join(killer)
      // The starting condition: the link was working, and behind, when its node died.
      expect(submitsAtKill).toBeGreaterThan(0)
      expect(submitsAtKill).toBeLessThan(accepted.length)
      expect(accepted.length).toBeGreaterThan(total * 0.95)
      // The node killed was the link's: the link bound again, on a survivor.
      yield* eventually("de bound again", Effect.map(sim.stats, (s) => s.binds > bindsAtKill && s.boundSessions === 1 ? true : undefined), { timeout: 30_000 })

      yield* eventually("nothing left pending", Effect.gen(function*() {
        const rows = yield* db<{ n: string | number }>`SELECT COUNT(*) AS n FROM messages WHERE status_rank < 2`
        return Number(rows[0]?.n ?? -1) === 0 ? true : undefined
      }).pipe(Effect.orDie), { timeout: 90_000 })

      const views = new Map<string, View>()
      yield* Effect.forEach(accepted, (a) =>
        Effect.map(statusOn(nodes, t, a.id), (v) => {
          if (v !== undefined) views.set(a.id, v as unknown as View)
        }), { concurrency: 16, discard: true })
      const received = new Map<string, number>()
      for (const r of yield* sim.received) {
        const text = Buffer.from(r.shortMessage).toString("latin1")
        received.set(text, (received.get(text) ?? 0) + 1)
      }
      const resent = accepted.filter((a) => views.get(a.id)?.events.some((e) => e.detail?.includes("resent after unknown outcome")))
      const reported = accepted.filter((a) => views.get(a.id)?.reason === "unknown_outcome")
      // A client that got no answer and tried another node may have had the text accepted twice: two messages, each
      // its own to send. Only copies beyond the messages sent count as the gateway's duplicates.
      const copies = (a: (typeof accepted)[number]) => (received.get(a.text) ?? 0) - (a.retried ? 2 : 1)
      const duplicated = accepted.filter((a) => copies(a) > 0)
      const duplicates = duplicated.reduce((n, a) => n + copies(a), 0)
      console.log(`accepted ${accepted.length} (${accepted.filter((a) => a.retried).length} after a client retry), ` +
        `SMSC submits at kill ${submitsAtKill}, duplicates ${duplicates}, resent ${resent.length}, reported ${reported.length}`)

      // Nothing lost: every message reached the SMSC, except those reported as unknown (which it may have).
      expect(accepted.filter((a) => views.get(a.id) === undefined).map((a) => a.text)).toEqual([])
      expect(accepted.filter((a) => !["submitted", "delivered"].includes(views.get(a.id)!.status)).map((a) => a.text)).toEqual([])
      expect(accepted.filter((a) => !received.has(a.text) && !reported.includes(a)).map((a) => a.text)).toEqual([])
      // Only what was in the window when the node died had an unknown outcome; only those could reach the SMSC twice.
      expect(duplicates).toBeLessThanOrEqual(window)
      expect(resent.length + reported.length).toBeLessThanOrEqual(window)
      // And the window was in use when the node died: the kill had outcomes to lose.
      expect(resent.length + reported.length).toBeGreaterThan(0)
      expect(duplicated.filter((a) => !resent.includes(a)).map((a) => a.text)).toEqual([])
      // Each class as configured.
      expect(resent.every((a) => a.messageClass === "transactional")).toBe(true)
      expect(reported.every((a) => a.messageClass === "promotional")).toBe(true)
      expect(reported.every((a) => views.get(a.id)?.status === "submitted" || views.get(a.id)?.status === "delivered")).toBe(true)
      // And counted, on whichever survivor ran recovery.
      let counted = 0
      for (const node of nodes.filter(isLive)) {
        const metrics = yield* get(`http://127.0.0.1:${node.port}/metrics`)
        for (const m of metrics.text.matchAll(/smsgw_recovery_unknown_outcomes_total\{[^}]*\} (\d+)/g)) counted += Number(m[1])
      }
      expect(counted).toBe(resent.length + reported.length)
    }).pipe(Effect.scoped), 180_000)
})
