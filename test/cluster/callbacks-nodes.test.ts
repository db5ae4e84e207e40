/**
 * Status callbacks across two gateway processes on one PostgreSQL database: one deliverer for the cluster (the node
 * whose sockets reach the receiver), and after a SIGKILL of that node the survivor takes the outbox over — every
 * callback delivered, each message's in order, none posted by two nodes at once.
 */
import { describe, expect, it } from "@effect/vitest"
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted } from "effect"
import { Reactivity } from "effect/reactivity"
import { SqlClient } from "effect/sql"
import { verifySignature } from "../../src/domain/Callback.ts"
import { outbox, queueCallback, seedMessage, startReceiver } from "../fixtures/Callbacks.ts"
import type { Received } from "../fixtures/Callbacks.ts"
import { clusterNode, isLive, startClusterNodes } from "../fixtures/Cluster.ts"
import { freshPgDatabase, pgUrl } from "../fixtures/Databases.ts"
import { eventually } from "../fixtures/Eventually.ts"
import { signUp } from "../fixtures/Gateway.ts"
import { connectedTo, killHard } from "../fixtures/Processes.ts"

const moves = ["queued", "submitted", "delivered"] as const
const bodyOf = (r: Received) => JSON.parse(r.body) as { eventId: string; messageId: string; status: typeof moves[number] }

describe("status callbacks in a cluster", () => {
  it.live("one deliverer for the cluster; after a SIGKILL of its node the survivor delivers every callback, in order per message", () =>
    Effect.gen(function*() {
      const database = yield* freshPgDatabase
      let down = true
      const delivered: Array<Received> = []
      const receiver = yield* startReceiver((req, res) => {
        if (!down) delivered.push(req)
        res.statusCode = down ? 503 : 200
        res.end()
      })
      const prefix = `smsgw:callbacks-test:${crypto.randomUUID().slice(0, 8)}:`
      const nodes = yield* startClusterNodes(2, (slot) => ({
        ...clusterNode(slot, database),
        links: [],
        rateLimits: { store: "redis", nodes: 2, redis: { host: "127.0.0.1", port: 6379, keyPrefix: prefix } },
        callbacks: { allowPrivateNetworks: true, pollIntervalMs: 100, timeoutMs: 1_000, backoff: { initialMs: 100, maxMs: 400 } }
      }))
      const t = yield* signUp(`http://127.0.0.1:${nodes[0]!.port}`)
      const Pg = PgClient.layer({ url: Redacted.make(pgUrl(database)), maxConnections: 2 }).pipe(Layer.provide(Reactivity.layer), Layer.orDie)
      const inDb = <A, E>(effect: Effect.Effect<A, E, SqlClient.SqlClient>) => effect.pipe(Effect.provide(Pg))
      const queued = yield* inDb(Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`UPDATE apps SET callback_secret = 'whsec_cluster' WHERE id = ${t.appId}`.pipe(Effect.orDie)
        const rows: Array<{ readonly eventId: string; readonly messageId: string }> = []
        for (let i = 0; i < 10; i++) {
          const messageId = `msg_${crypto.randomUUID()}`
          yield* seedMessage({ id: messageId, orgId: t.orgId, appId: t.appId })
          for (const status of moves) {
            const row = yield* queueCallback({ messageId, orgId: t.orgId, appId: t.appId, url: `${receiver.url}/hook`, status })
            rows.push({ eventId: row.eventId, messageId })
          }
        }
        return rows
      }))

      // While the receiver is down: one node posts (its sockets reach the receiver), never both.
      const port = Number(new URL(receiver.url).port)
      const deliverer = yield* eventually("the delivering node, retrying", Effect.gen(function*() {
        if (receiver.requests.length < 20) return undefined
        const holders = yield* connectedTo(port, nodes.filter(isLive).map((n) => n.process!.child.pid!))
        return holders.length === 1 ? nodes.find((n) => n.process!.child.pid === holders[0]) : undefined
      }), { timeout: 30_000 })
      expect(receiver.requests.every((r) => bodyOf(r).status === "queued")).toBe(true)
      yield* killHard(deliverer.process!)
      down = false

      // The survivor's singleton takes over (the shard lock expires), and the rows the dead node held come back when
      // their lease ends.
      yield* eventually("every callback delivered", inDb(outbox), { timeout: 60_000, interval: 250, until: (rows) => rows.length === 0 })
      const survivor = nodes.find((n) => n !== deliverer)!
      const holders = yield* connectedTo(port, [survivor.process!.child.pid!])
      expect(holders).toEqual([survivor.process!.child.pid])
      const seen = delivered.map(bodyOf)
      expect(new Set(seen.map((b) => b.eventId))).toEqual(new Set(queued.map((q) => q.eventId)))
      for (const messageId of new Set(queued.map((q) => q.messageId))) {
        const statuses = seen.filter((b) => b.messageId === messageId).map((b) => moves.indexOf(b.status))
        expect(statuses).toEqual([...statuses].sort((a, b) => a - b))
      }
      const now = Math.floor(Date.now() / 1000)
      for (const r of delivered) expect(verifySignature("whsec_cluster", String(r.headers["smsgw-signature"]), r.body, now)).toBe(true)
    }), 120_000)
})
