import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import { bucketOf } from "../../src/policy/PolicyEngine.ts"
import * as Simulator from "../../src/smpp/Simulator.ts"
import { clusterNode, simLink, startClusterNodes } from "../fixtures/Cluster.ts"
import type { Node } from "../fixtures/Cluster.ts"
import { freshPgDatabase } from "../fixtures/Databases.ts"
import { post, signUp } from "../fixtures/Gateway.ts"
import { eventually } from "../fixtures/Eventually.ts"

const BUCKETS = 8

/** Two gateway processes forming one cluster on a fresh PostgreSQL database, counters in the real Redis. */
const startCluster = Effect.gen(function*() {
  const database = yield* freshPgDatabase
  const sim = yield* Simulator.start({ port: 0, receiptDelayMs: 50 })
  const prefix = `smsgw:policy-test:${crypto.randomUUID().slice(0, 8)}:`
  const nodes = yield* startClusterNodes(2, (slot) => ({
    ...clusterNode(slot, database),
    links: [simLink("sim", sim)],
    rateLimits: { store: "redis", nodes: 2, redis: { host: "127.0.0.1", port: 6379, keyPrefix: `${prefix}rl:` } },
    policy: {
      buckets: BUCKETS,
      redis: { host: "127.0.0.1", port: 6379, keyPrefix: `${prefix}pol:` },
      rules: [{ id: "cap-3-per-hour", type: "frequency_cap", max: 3, window: "hour" }]
    }
  }))
  return { nodes, sim }
})

/** The runner a recipient bucket's actor runs on, as `smsgw admin actors --json` reports it. */
const ownerOfBucket = (port: number, bucket: number) =>
  Effect.promise(() =>
    new Promise<string | undefined>((resolve, reject) => {
      execFile(process.execPath, [
        "--no-warnings", "src/cli/main.ts", "admin", "actors", "--json",
        "--url", `http://127.0.0.1:${port}`, "--email", "ops@example.com", "--password", "operator password 1"
      ], { timeout: 20_000 }, (error, stdout) => {
        if (error) return reject(error)
        const actors = JSON.parse(stdout) as Array<{ type: string; id: string; runner: string; stale: boolean }>
        resolve(actors.find((a) => a.type === "RecipientPolicy" && a.id === String(bucket) && !a.stale)?.runner)
      })
    })
  )

describe("recipient policy across two gateway processes on Redis", () => {
  it.live("a cap of 3 per hour holds exactly under concurrent hits on both nodes, and survives its bucket moving", () =>
    Effect.gen(function*() {
      const { nodes } = yield* startCluster
      const t = yield* signUp(`http://127.0.0.1:${nodes[0]!.port}`)
      const url = (node: Node) => `http://127.0.0.1:${node.port}/v1/messages`
      let n = 0
      const hit = (node: Node, to: string) =>
        post(url(node), { to, from: "Shop", text: `offer ${++n}` }, t.auth).pipe(Effect.map((r) => r.status))

      // Four recipients, 12 concurrent submissions each, half through each node: exactly 3 pass per recipient.
      const recipients = ["+4915112345601", "+4915112345602", "+4915112345603", "+4915112345604"]
      const statuses = yield* Effect.forEach(
        recipients.flatMap((to) => Array.from({ length: 12 }, (_, i) => ({ to, node: nodes[i % 2]! }))),
        ({ node, to }) => Effect.map(hit(node, to), (status) => ({ to, status })),
        { concurrency: "unbounded" }
      )
      for (const to of recipients) {
        const mine = statuses.filter((s) => s.to === to)
        expect(mine.filter((s) => s.status === 202), to).toHaveLength(3)
        expect(mine.filter((s) => s.status === 422), to).toHaveLength(9)
      }

      // A recipient with 2 of its 3 spent; then the node owning its bucket stops.
      const moved = "+4915112345605"
      expect(yield* hit(nodes[0]!, moved)).toBe(202)
      expect(yield* hit(nodes[1]!, moved)).toBe(202)
      const bucket = bucketOf(moved.slice(1), BUCKETS)
      const runner = yield* eventually("bucket owner", ownerOfBucket(nodes[0]!.port, bucket), { timeout: 20_000 })
      const owner = nodes.find((node) => node.runner === runner)!
      const survivor = nodes.find((node) => node !== owner)!
      owner.process!.child.kill("SIGTERM")
      yield* eventually("owner stopped", Effect.sync(() => owner.process!.child.exitCode !== null || owner.process!.child.signalCode !== null ? true : undefined), { timeout: 30_000 })

      // The survivor now owns the bucket and carries on from the same counts: one more, then refused.
      expect(yield* hit(survivor, moved)).toBe(202)
      expect(yield* hit(survivor, moved)).toBe(422)
      for (const to of recipients) expect(yield* hit(survivor, to)).toBe(422)
      expect(yield* ownerOfBucket(survivor.port, bucket)).toBe(survivor.runner)
    }).pipe(Effect.scoped), 180_000)
})
