import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import * as Simulator from "../../src/smpp/Simulator.ts"
import type { SmscSimulator } from "../../src/smpp/Simulator.ts"
import { freshPgDatabase, pgUrl, tempDir } from "../fixtures/Databases.ts"
import { get, signUp } from "../fixtures/Gateway.ts"
import type { Tenant } from "../fixtures/Gateway.ts"
import type { GatewayProcess } from "../fixtures/Processes.ts"
import { eventually, freePort, killHard, spawnSmsgw, waitHealthy } from "../fixtures/Processes.ts"

interface Node {
  readonly port: number
  readonly runner: string
  readonly config: string
  process: GatewayProcess | undefined
}

/** Three gateway processes on 127.0.0.1 forming one cluster on a fresh PostgreSQL database, two SMSC links. */
const startCluster = Effect.gen(function*() {
  const dir = yield* tempDir
  const database = yield* freshPgDatabase
  const sims: Record<string, SmscSimulator> = {
    de: yield* Simulator.start({ port: 0, receiptDelayMs: 100 }),
    uk: yield* Simulator.start({ port: 0, receiptDelayMs: 100 })
  }
  const prefix = `smsgw:cluster:${crypto.randomUUID().slice(0, 8)}:`
  const nodes: Array<Node> = []
  for (let i = 0; i < 3; i++) {
    const port = yield* freePort
    const runnerPort = yield* freePort
    const config = join(dir, `node-${i}.yaml`)
    writeFileSync(config, [
      `http: { port: ${port}, host: 127.0.0.1 }`,
      `storage: { kind: postgres, url: "${pgUrl(database)}" }`,
      `cluster: { runnerHost: 127.0.0.1, runnerPort: ${runnerPort}, shardLockExpirationMs: 4000 }`,
      "links:",
      `  - { id: de, host: 127.0.0.1, port: ${sims.de!.port}, systemId: t, password: t, tps: 2000, reconnectMaxMs: 1000, enquireLinkIntervalMs: 1000 }`,
      `  - { id: uk, host: 127.0.0.1, port: ${sims.uk!.port}, systemId: t, password: t, tps: 2000, reconnectMaxMs: 1000, enquireLinkIntervalMs: 1000 }`,
      "routes:",
      `  - { id: uk, match: { prefixes: ["44"] }, target: { link: uk } }`,
      `  - { id: de, match: {}, target: { link: de } }`,
      `rateLimits: { store: redis, nodes: 3, redis: { host: 127.0.0.1, port: 6379, keyPrefix: "${prefix}" } }`,
      "recovery: { idleSeconds: 8, intervalSeconds: 1 }",
      `auth: { jwtKeys: [{ kid: k1, secret: "cluster-test-secret-of-32-bytes-or-more" }], superadmin: { email: ops@example.com, password: "operator password 1" } }`
    ].join("\n"))
    nodes.push({ port, runner: `127.0.0.1:${runnerPort}`, config, process: undefined })
  }
  const start = (node: Node) =>
    Effect.gen(function*() {
      node.process = yield* spawnSmsgw(["serve", "--config", node.config])
      yield* waitHealthy(node.process, node.port, 45_000)
    })
  // The first node migrates and seeds the database; the others join it.
  yield* start(nodes[0]!)
  yield* Effect.forEach(nodes.slice(1), start, { concurrency: "unbounded", discard: true })
  return { nodes, sims }
})

/** `smsgw admin actors --json` against a node, as an operator runs it. */
const adminActors = (port: number) =>
  Effect.promise(() =>
    new Promise<Array<{ type: string; id: string; runner: string; stale: boolean }>>((resolve, reject) => {
      execFile(process.execPath, [
        "--no-warnings", "src/cli/main.ts", "admin", "actors", "--json",
        "--url", `http://127.0.0.1:${port}`, "--email", "ops@example.com", "--password", "operator password 1"
      ], { timeout: 20_000 }, (error, stdout) => error ? reject(error) : resolve(JSON.parse(stdout)))
    })
  )

/** Which live node runs a link, as the admin CLI reports it. */
const ownerOf = (nodes: ReadonlyArray<Node>, linkId: string) =>
  Effect.gen(function*() {
    const live = nodes.filter((n) => n.process !== undefined && n.process.child.exitCode === null && n.process.child.signalCode === null)
    const actors = yield* adminActors(live[0]!.port)
    const entry = actors.find((a) => a.type === "SmppLink" && a.id === linkId && !a.stale)
    return live.find((n) => n.runner === entry?.runner)
  })

/** Sends one SMS, trying the next node when one does not answer (what a client behind a load balancer does). */
const sendAnywhere = (nodes: ReadonlyArray<Node>, t: Tenant, i: number, to: string) =>
  Effect.promise(async () => {
    for (let attempt = 0; attempt < 6; attempt++) {
      const node = nodes[(i + attempt) % nodes.length]!
      try {
        const response = await fetch(`http://127.0.0.1:${node.port}/v1/messages`, {
          method: "POST",
          headers: { "content-type": "application/json", ...t.auth },
          body: JSON.stringify({ to, from: "ACME", text: `cluster message ${i}` }),
          signal: AbortSignal.timeout(5_000)
        })
        const json = await response.json() as { id?: string }
        if (response.status === 202 && json.id !== undefined) return { id: json.id, text: `cluster message ${i}` }
        if (response.status < 500) return undefined
      } catch {
        // Connection refused or reset: that node is gone; the next one takes it.
      }
    }
    return undefined
  })

const statusOn = (nodes: ReadonlyArray<Node>, t: Tenant, id: string) =>
  Effect.gen(function*() {
    for (const node of nodes) {
      if (node.process === undefined || node.process.child.exitCode !== null || node.process.child.signalCode !== null) continue
      const r = yield* get(`http://127.0.0.1:${node.port}/v1/messages/${id}`, t.auth).pipe(Effect.option)
      if (r._tag === "Some" && r.value.status === 200) return r.value.json
    }
    return undefined
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
      }), 30_000)

      // A submission to any node reaches the right link wherever it runs.
      for (const [i, node] of nodes.entries()) {
        const sent = yield* sendAnywhere([node], t, i, i % 2 === 0 ? "+447911123456" : "+4915112345678")
        expect(sent).toBeDefined()
        const view = yield* eventually("delivered", statusOn(nodes, t, sent!.id).pipe(
          Effect.map((v) => v?.status === "delivered" ? v : undefined)
        ), 20_000)
        expect((view.parts as Array<{ linkId: string }>)[0]?.linkId).toBe(i % 2 === 0 ? "uk" : "de")
      }

      const owner = yield* eventually("owner of de", ownerOf(nodes, "de"), 20_000)
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
      yield* eventually("de re-bound on a survivor", Effect.map(sims.de!.stats, (s) => s.boundSessions >= 1 ? true : undefined), 20_000)
      const rebound = Date.now() - killedAt
      // Every message answered 202 ends submitted or better, and the SMSC received each of them.
      yield* eventually("every accepted message settled", Effect.gen(function*() {
        const views = yield* Effect.forEach(accepted, (a) => statusOn(nodes, t, a.id), { concurrency: 10 })
        return views.every((v) => v !== undefined && (v.status === "submitted" || v.status === "delivered")) ? true : undefined
      }), 60_000)
      const received = new Set((yield* sims.de!.received).map((r) => Buffer.from(r.shortMessage).toString("latin1")))
      expect(accepted.filter((a) => !received.has(a.text)).map((a) => a.text)).toEqual([])
      expect(accepted.length).toBeGreaterThan(250)
      // The bind moved to a survivor within the failover window (shard lock 4 s + refresh + reconnect).
      expect(rebound).toBeLessThan(15_000)
      const stats = yield* sims.de!.stats
      // Resends happen only where the outcome was unknown; the simulator counts distinct messages.
      expect(stats.uniqueMessages).toBeGreaterThanOrEqual(accepted.length)
    }).pipe(Effect.scoped), 180_000)

  it.live("SIGTERM of a node under load: clients that retry on another node see no error, and nothing is lost", () =>
    Effect.gen(function*() {
      const { nodes, sims } = yield* startCluster
      const t = yield* signUp(`http://127.0.0.1:${nodes[0]!.port}`)
      yield* eventually("links bound", Effect.map(sims.de!.stats, (s) => s.boundSessions === 1 ? true : undefined), 30_000)
      const owner = yield* eventually("owner of de", ownerOf(nodes, "de"), 20_000)
      const accepted: Array<{ id: string; text: string }> = []
      let failures = 0
      for (let second = 0; second < 8; second++) {
        if (second === 3) owner.process!.child.kill("SIGTERM")
        const batch = yield* Effect.forEach(Array.from({ length: 40 }, (_, k) => 10_000 + second * 40 + k), (i) =>
          sendAnywhere(nodes, t, i, "+4915112345678"), { concurrency: 10 })
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
      }), 60_000)
      const received = new Set((yield* sims.de!.received).map((r) => Buffer.from(r.shortMessage).toString("latin1")))
      expect(accepted.filter((a) => !received.has(a.text)).map((a) => a.text)).toEqual([])
      // The stopping node unbound cleanly and the link is (or comes back, after a reconnect) bound once on a survivor.
      yield* eventually("de bound once on a survivor", Effect.map(sims.de!.stats, (s) => s.boundSessions === 1 ? true : undefined), 15_000)
    }).pipe(Effect.scoped), 180_000)
})
