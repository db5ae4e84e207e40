import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { join } from "node:path"
import type { GatewayConfig, LinkConfig } from "../../src/layers/Config.ts"
import * as Simulator from "../../src/smpp/Simulator.ts"
import { writeNodeConfig } from "../fixtures/Cluster.ts"
import { tempDir } from "../fixtures/Databases.ts"
import { get, post, signUp } from "../fixtures/Gateway.ts"
import { eventually } from "../fixtures/Eventually.ts"
import { freePort, killHard, spawnSmsgw } from "../fixtures/Processes.ts"

/** One embedded gateway on SQLite in `dir` with one link; recovery slow enough that only a start re-drives. */
const embedded = (dir: string, httpPort: number, link: LinkConfig): GatewayConfig => ({
  http: { port: httpPort, host: "127.0.0.1" },
  storage: { kind: "sqlite", path: join(dir, "gateway.db") },
  links: [link],
  recovery: { idleSeconds: 60, intervalSeconds: 60 }
})

describe("crash recovery", () => {
  it.live("messages accepted before a SIGKILL are submitted and delivered after restart, each exactly once", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      // The SMSC refuses binds at first, so nothing accepted can be submitted before the crash.
      const sim = yield* Simulator.start({ port: 0, receiptDelayMs: 20 })
      yield* sim.setFaults({ rejectBinds: 0x0d })
      const httpPort = yield* freePort
      const config = join(dir, "gateway.yaml")
      writeNodeConfig(config, embedded(dir, httpPort, { id: "sim", host: "127.0.0.1", port: sim.port, systemId: "t", password: "t", reconnectMaxMs: 500 }))
      const base = `http://127.0.0.1:${httpPort}`

      const first = yield* spawnSmsgw(["serve", "--config", config])
      yield* eventually("first gateway up", get(`${base}/healthz`).pipe(Effect.map((r) => r.status === 200 ? true : undefined)))
      const t = yield* signUp(base)
      const ids = yield* Effect.forEach(Array.from({ length: 25 }, (_, i) => i), (i) =>
        post(`${base}/v1/messages`, { to: "+4915112345678", from: "ACME", text: `before the crash ${i}` }, t.auth).pipe(
          Effect.map((r) => {
            expect(r.status).toBe(202)
            return String(r.json.id)
          })
        ), { concurrency: 5 })
      yield* killHard(first)
      expect((yield* sim.stats).submits).toBe(0)

      yield* sim.clearFaults
      const second = yield* spawnSmsgw(["serve", "--config", config])
      yield* eventually("second gateway up", get(`${base}/healthz`).pipe(Effect.map((r) => r.status === 200 ? true : undefined)))
      const statuses = yield* eventually("all delivered after restart", Effect.gen(function*() {
        const views = yield* Effect.forEach(ids, (id) => get(`${base}/v1/messages/${id}`, t.auth))
        return views.every((v) => v.json.status === "delivered") ? views : undefined
      }), { timeout: 30_000 })
      expect(statuses).toHaveLength(25)
      const stats = yield* sim.stats
      expect(stats.submits).toBe(25)
      expect(stats.uniqueMessages).toBe(25)
      yield* killHard(second)
    }).pipe(Effect.scoped), 60_000)

  it.live("parts in the window at a SIGKILL are the only unknown outcomes: transactional resent, promotional reported", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const window = 5
      const sim = yield* Simulator.start({ port: 0, receiptDelayMs: 20 })
      const httpPort = yield* freePort
      const config = join(dir, "gateway.yaml")
      // No timeout or keep-alive fires before the kill: the parts in the window stay unanswered, not retried.
      writeNodeConfig(config, embedded(dir, httpPort, {
        id: "sim", host: "127.0.0.1", port: sim.port, systemId: "t", password: "t", reconnectMaxMs: 500, window,
        responseTimeoutMs: 60_000, enquireLinkIntervalMs: 60_000
      }))
      const base = `http://127.0.0.1:${httpPort}`

      const first = yield* spawnSmsgw(["serve", "--config", config])
      yield* eventually("first gateway up", get(`${base}/healthz`).pipe(Effect.map((r) => r.status === 200 ? true : undefined)))
      yield* eventually("bound", Effect.map(sim.stats, (s) => s.boundSessions === 1 ? true : undefined))
      const t = yield* signUp(base)
      // The SMSC reads every submit and answers none: the window fills, the rest waits in the link's queue.
      yield* sim.setFaults({ stopAnswering: true })
      const sent = yield* Effect.forEach(Array.from({ length: 20 }, (_, i) => i), (i) => {
        const messageClass = i % 2 === 0 ? "transactional" : "promotional"
        return post(`${base}/v1/messages`, { to: "+4915112345678", from: "ACME", text: `in the window ${i}`, messageClass }, t.auth).pipe(
          Effect.map((r) => {
            expect(r.status).toBe(202)
            return { id: String(r.json.id), messageClass }
          })
        )
      }, { concurrency: 5 })
      yield* eventually("the window is full", Effect.map(sim.stats, (s) => s.ignoredPdus >= window ? true : undefined))
      yield* killHard(first)
      expect((yield* sim.stats).ignoredPdus).toBe(window)

      yield* sim.clearFaults
      const second = yield* spawnSmsgw(["serve", "--config", config])
      yield* eventually("second gateway up", get(`${base}/healthz`).pipe(Effect.map((r) => r.status === 200 ? true : undefined)))
      const views = yield* eventually("all settled after restart", Effect.gen(function*() {
        const all = yield* Effect.forEach(sent, (m) => get(`${base}/v1/messages/${m.id}`, t.auth))
        const settled = all.every((v) => v.json.status === "delivered" || v.json.reason === "unknown_outcome")
        return settled ? all.map((v) => v.json as { status: string; reason?: string; events: Array<{ detail?: string }> }) : undefined
      }), { timeout: 30_000 })
      const resent = sent.filter((_, i) => views[i]!.events.some((e) => e.detail?.includes("resent after unknown outcome")))
      const reported = sent.filter((_, i) => views[i]!.reason === "unknown_outcome")
      // Exactly the window had an unknown outcome; each class as the default says, recorded on the message.
      expect(resent.length + reported.length).toBe(window)
      expect(resent.every((m) => m.messageClass === "transactional")).toBe(true)
      expect(reported.every((m) => m.messageClass === "promotional")).toBe(true)
      expect(reported.map((m) => views[sent.indexOf(m)]!.status)).toEqual(reported.map(() => "submitted"))
      expect(resent.map((m) => views[sent.indexOf(m)]!.status)).toEqual(resent.map(() => "delivered"))
      // Everything else was sent once; a reported message was not sent again.
      const stats = yield* sim.stats
      expect(stats.submits).toBe(sent.length - reported.length)
      expect(stats.uniqueMessages).toBe(sent.length - reported.length)
      const metrics = yield* get(`${base}/metrics`)
      const counted = [...metrics.text.matchAll(/smsgw_recovery_unknown_outcomes_total\{[^}]*action="(\w+)"[^}]*\} (\d+)/g)]
        .map((m) => [m[1], Number(m[2])] as const)
      expect(Object.fromEntries(counted)).toEqual({
        ...(resent.length > 0 ? { resend: resent.length } : {}),
        ...(reported.length > 0 ? { report: reported.length } : {})
      })
      yield* killHard(second)
    }).pipe(Effect.scoped), 60_000)
})
