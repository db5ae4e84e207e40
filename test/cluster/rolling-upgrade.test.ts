/**
 * A rolling upgrade across a schema change, as an operator runs one behind a load balancer: two nodes of the version
 * before migrations 0021 on (the commit named below, taken from this repository's history with `git archive`), then
 * each stopped (SIGTERM) and started again on this version in turn while clients keep sending. The first new node
 * migrates the shared database while an old node serves on it; the two versions run side by side, handing messages to
 * the link wherever it runs; the second new node migrates nothing. Nothing accepted is lost, nothing is stored twice,
 * and this version sends nothing twice without recording why.
 *
 * The previous version may, while it serves: its link stops without waiting for the answers in its window, its
 * recovery re-drives a part whose answer was stored after it read the part as unknown, and its link sends a part
 * handed to it again after it was sent (all three fixed since). So a copy sent before the last old node has stopped
 * may be an unrecorded second one; after it, with only this version serving (and the link's shard moving back to the
 * restarted node), none may.
 */
import { PgClient } from "@effect/sql-pg"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Redacted } from "effect"
import { Reactivity } from "effect/reactivity"
import { execFileSync } from "node:child_process"
import { symlinkSync } from "node:fs"
import { join } from "node:path"
import type { GatewayConfig } from "../../src/layers/Config.ts"
import { migrations } from "../../src/layers/Migrations.ts"
import * as Simulator from "../../src/smpp/Simulator.ts"
import { clusterNode, isLive, sendAnywhere, simLink, writeNodeConfig } from "../fixtures/Cluster.ts"
import type { Node } from "../fixtures/Cluster.ts"
import { freshPgDatabase, pgUrl, tempDir } from "../fixtures/Databases.ts"
import { eventually } from "../fixtures/Eventually.ts"
import { post, signUp, waitForStatus } from "../fixtures/Gateway.ts"
import { freePort, spawnSmsgw, waitHealthy } from "../fixtures/Processes.ts"

const root = join(import.meta.dirname, "..", "..")

/**
 * The version before the last schema change: the parent of the commit that added 0021_cdr_batches (its schema ends at
 * 0020). When a later change adds migrations, this may move to the commit before it; an older one still tests a jump.
 */
const previousVersion = "b45bb88"
const previousSchema = 20

/** The previous version as an installation of its own: its sources from git, this checkout's dependencies. */
const previousInstallation = Effect.gen(function*() {
  const dir = yield* tempDir
  const archive = join(dir, "previous.tar")
  try {
    execFileSync("git", ["archive", "--format=tar", "-o", archive, previousVersion, "src", "proto", "config", "package.json"], {
      cwd: root,
      stdio: ["ignore", "ignore", "pipe"]
    })
  } catch (error) {
    throw new Error(
      `this test runs commit ${previousVersion} of the repository's history, which this clone lacks (a shallow clone?): ${String(error)}`
    )
  }
  execFileSync("tar", ["-xf", archive, "-C", dir])
  // Its dependencies are a subset of this version's (package.json only gained dev tools since).
  symlinkSync(join(root, "node_modules"), join(dir, "node_modules"))
  return dir
})

/** Stops a node as an orchestrator does (SIGTERM, the node drains) and waits for it to exit. */
const stop = (node: Node) =>
  Effect.callback<void>((resume) => {
    const child = node.process!.child
    if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
    child.once("exit", () => resume(Effect.void))
    child.kill("SIGTERM")
  })

describe("rolling upgrade across a schema change", () => {
  it.live("old nodes serve on the migrated schema beside new ones; each node restarted in turn; nothing lost, nothing doubled unseen", () =>
    Effect.gen(function*() {
      const previous = yield* previousInstallation
      // This version's schema: the highest id of the one ordered list of migrations.
      const currentSchema = Math.max(...(yield* migrations).map(([id]) => id))
      expect(currentSchema).toBeGreaterThan(previousSchema)
      const database = yield* freshPgDatabase
      const db = yield* PgClient.make({ url: Redacted.make(pgUrl(database)), maxConnections: 1 }).pipe(
        Effect.provide(Reactivity.layer),
        Effect.orDie
      )
      const applied = Effect.map(
        db<{ id: number }>`SELECT migration_id AS id FROM smsgw_migrations ORDER BY migration_id`.pipe(Effect.orDie),
        (rows) => rows.map((r) => Number(r.id))
      )
      const sim = yield* Simulator.start({ port: 0, receiptDelayMs: 100 })
      const dir = yield* tempDir
      const prefix = `smsgw:upgrade:${crypto.randomUUID().slice(0, 8)}:`

      // Two nodes; each has a configuration for each version (the previous one knows no `cdr` key: keys it does not
      // know are refused, as they should be; this version needs the export off without a shared object store).
      const nodes: Array<Node & { readonly next: string }> = []
      for (let index = 0; index < 2; index++) {
        const port = yield* freePort
        const runnerPort = yield* freePort
        const { cdr, ...shared } = clusterNode({ index, port, runnerPort, dir }, database)
        const config: GatewayConfig = {
          ...shared,
          links: [simLink("de", sim, { enquireLinkIntervalMs: 1000 })],
          routes: [{ id: "de", match: {}, target: { link: "de" } }],
          rateLimits: { store: "redis", nodes: 2, redis: { host: "127.0.0.1", port: 6379, keyPrefix: prefix } },
          recovery: { idleSeconds: 8, intervalSeconds: 1 }
        }
        const file = join(dir, `node-${index}-previous.yaml`)
        const next = join(dir, `node-${index}.yaml`)
        writeNodeConfig(file, config)
        writeNodeConfig(next, { ...config, cdr })
        nodes.push({ port, runner: `127.0.0.1:${runnerPort}`, config: file, next, process: undefined })
      }
      const startPrevious = (node: Node) =>
        Effect.gen(function*() {
          node.process = yield* spawnSmsgw(["serve", "--config", node.config], {}, { installation: previous })
          yield* waitHealthy(node.process, node.port, 45_000)
        })
      // When each step happened, for a failure's message; when the last old node had stopped.
      const timeline: Array<string> = []
      let lastOldStopped = 0
      const upgrade = (node: Node & { readonly next: string }) =>
        Effect.gen(function*() {
          timeline.push(`${Date.now()} stopping ${node.port}`)
          yield* stop(node)
          timeline.push(`${Date.now()} stopped ${node.port}`)
          lastOldStopped = Date.now()
          node.process = yield* spawnSmsgw(["serve", "--config", node.next])
          yield* waitHealthy(node.process, node.port, 45_000)
          timeline.push(`${Date.now()} upgraded ${node.port}`)
        })

      yield* startPrevious(nodes[0]!)
      yield* startPrevious(nodes[1]!)
      expect(yield* applied).toEqual(Array.from({ length: previousSchema }, (_, i) => i + 1))
      const t = yield* signUp(`http://127.0.0.1:${nodes[0]!.port}`)
      yield* eventually("de bound once", Effect.map(sim.stats, (s) => s.boundSessions === 1 ? true : undefined), { timeout: 30_000 })

      // Clients keep sending throughout, each message with an idempotency key, retrying on the other node when one
      // does not answer (a load balancer's retry).
      const accepted: Array<{ id: string; text: string; key: string }> = []
      let failures = 0
      let sending = true
      let next = 0
      const client = Effect.gen(function*() {
        while (sending) {
          const i = next++
          const key = `upgrade-${i}`
          const sent = yield* sendAnywhere(nodes, t, i, "+4915112345678", { text: `upgrade ${i}`, idempotencyKey: key })
          if (sent === undefined) failures++
          else accepted.push({ id: sent.id, text: sent.text, key })
        }
      })
      const clients = yield* Effect.forkScoped(Effect.all([client, client, client], { concurrency: "unbounded", discard: true }))
      const acceptedSoFar = (n: number) => eventually(`${n} messages accepted`, Effect.sync(() => accepted.length >= n ? true : undefined), { timeout: 30_000 })

      yield* acceptedSoFar(30)
      // Node 1 on this version: it migrates the database the old node 0 is serving on.
      yield* upgrade(nodes[1]!)
      expect(yield* applied).toEqual(Array.from({ length: currentSchema }, (_, i) => i + 1))

      // Both versions side by side: a message accepted by either node reaches the link wherever it runs.
      const mixedFrom = accepted.length
      yield* acceptedSoFar(mixedFrom + 30)
      for (const node of nodes) {
        const base = `http://127.0.0.1:${node.port}`
        const sent = yield* post(`${base}/v1/messages`, { to: "+4915112345678", from: "ACME", text: `mixed via ${node.port}` }, t.auth)
        expect(sent.status).toBe(202)
        yield* waitForStatus(base, String(sent.json.id), "delivered", 30_000, t.auth)
      }

      // Node 0 on this version: the schema is already there; it migrates nothing.
      yield* upgrade(nodes[0]!)
      const afterFrom = accepted.length
      yield* acceptedSoFar(afterFrom + 30)
      sending = false
      yield* Fiber.join(clients)
      expect(yield* applied).toEqual(Array.from({ length: currentSchema }, (_, i) => i + 1))
      expect(nodes.every(isLive)).toBe(true)

      // Nothing refused, nothing lost, nothing twice: one stored message per key (a retry of a lost answer got the
      // first), each accepted text submitted, and submitted once.
      expect(failures).toBe(0)
      expect(new Set(accepted.map((a) => a.key)).size).toBe(accepted.length)
      const stored = yield* db<{ n: string }>`SELECT count(*) AS n FROM messages`.pipe(Effect.orDie)
      expect(Number(stored[0]!.n)).toBe(accepted.length + nodes.length)
      yield* eventually("every accepted message delivered", Effect.gen(function*() {
        const rows = yield* db<{ n: string }>`SELECT count(*) AS n FROM messages WHERE status = 'delivered'`.pipe(Effect.orDie)
        return Number(rows[0]!.n) === accepted.length + nodes.length ? true : undefined
      }), { timeout: 60_000 })
      const receivedLog = yield* sim.received
      const received = receivedLog.map((r) => Buffer.from(r.shortMessage).toString("latin1"))
      const counts = new Map<string, number>()
      for (const text of received) counts.set(text, (counts.get(text) ?? 0) + 1)
      expect(accepted.filter((a) => (counts.get(a.text) ?? 0) === 0).map((a) => a.text)).toEqual([])
      // Sent twice only where the gateway knew it might be (a part handed to the SMSC by a node that stopped before its
      // answer came, resent and recorded as such), or while the previous version served (see the header; this
      // version's link waits for its window: test/cluster/cluster-failover.test.ts).
      const twice = accepted.filter((a) => (counts.get(a.text) ?? 0) > 1)
      const unrecordedBefore: Array<string> = []
      for (const a of twice) {
        const copies = receivedLog.filter((_, i) => received[i] === a.text)
        expect(counts.get(a.text), a.text).toBe(2)
        const events = yield* db<{ detail: string | null; at: string }>`
          SELECT detail, at FROM message_events WHERE message_id = ${a.id} ORDER BY event_id`.pipe(Effect.orDie)
        const recorded = events.some((e) => e.detail?.includes("resent after unknown outcome") === true)
        if (recorded) continue
        if (copies[0]!.at < lastOldStopped) {
          unrecordedBefore.push(a.text)
          continue
        }
        const story = [
          ...timeline,
          ...events.map((e) => `${e.at} event: ${e.detail ?? "accepted"}`),
          ...copies.map((r) => `${r.at} received as ${r.messageId}`)
        ].sort()
        expect.fail(`${a.text} was sent twice after the last old node stopped, with nothing recorded:\n${story.join("\n")}`)
      }
      console.log(
        `accepted ${accepted.length}, sent twice ${twice.length} (recorded ${twice.length - unrecordedBefore.length}, ` +
          `unrecorded while the previous version served ${unrecordedBefore.length})`
      )
      yield* eventually("de bound once", Effect.map(sim.stats, (s) => s.boundSessions === 1 ? true : undefined), { timeout: 15_000 })
    }).pipe(Effect.scoped), 240_000)
})
