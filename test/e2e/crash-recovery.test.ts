import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import * as Simulator from "../../src/smpp/Simulator.ts"
import { tempDir } from "../fixtures/Databases.ts"
import { get, post, signUp } from "../fixtures/Gateway.ts"
import { eventually, freePort, killHard, spawnSmsgw } from "../fixtures/Processes.ts"

describe("crash recovery", () => {
  it.live("messages accepted before a SIGKILL are submitted and delivered after restart, each exactly once", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      // The SMSC refuses binds at first, so nothing accepted can be submitted before the crash.
      const sim = yield* Simulator.start({ port: 0, receiptDelayMs: 20 })
      yield* sim.setFaults({ rejectBinds: 0x0d })
      const httpPort = yield* freePort
      const config = join(dir, "gateway.yaml")
      writeFileSync(config, [
        "http: { port: " + httpPort + ", host: 127.0.0.1 }",
        `storage: { kind: sqlite, path: ${join(dir, "gateway.db")} }`,
        "links:",
        `  - { id: sim, host: 127.0.0.1, port: ${sim.port}, systemId: t, password: t, reconnectMaxMs: 500 }`,
        "recovery: { idleSeconds: 60, intervalSeconds: 60 }"
      ].join("\n"))
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
      }), 30_000)
      expect(statuses).toHaveLength(25)
      const stats = yield* sim.stats
      expect(stats.submits).toBe(25)
      expect(stats.uniqueMessages).toBe(25)
      yield* killHard(second)
    }).pipe(Effect.scoped), 60_000)
})
