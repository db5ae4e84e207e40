import { describe, expect, it } from "@effect/vitest"
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted } from "effect"
import { Reactivity } from "effect/reactivity"
import { CampaignStore } from "../../src/storage/CampaignStore.ts"
import * as Simulator from "../../src/smpp/Simulator.ts"
import { approvedCampaign, campaignMessages, campaignOf, germanContacts, receivedTexts, recipientCounts, seedList } from "../fixtures/Campaigns.ts"
import { adminActors, clusterNode, isLive, simLink, startClusterNodes } from "../fixtures/Cluster.ts"
import { freshPgDatabase, pgUrl } from "../fixtures/Databases.ts"
import { eventually } from "../fixtures/Eventually.ts"
import { get, signUp } from "../fixtures/Gateway.ts"
import { killHard } from "../fixtures/Processes.ts"

const audience = 5_000

describe("a campaign on a cluster of two processes", () => {
  it.live("SIGKILL of the node running it: it completes on the other from its cursor, every recipient reached the SMSC once", () =>
    Effect.gen(function*() {
      const database = yield* freshPgDatabase
      const sim = yield* Simulator.start({ port: 0, receiptDelayMs: 100 })
      const prefix = `smsgw:campaign:${crypto.randomUUID().slice(0, 8)}:`
      const nodes = yield* startClusterNodes(2, (slot) => ({
        ...clusterNode(slot, database),
        links: [simLink("de", sim, { enquireLinkIntervalMs: 1000, window: 10 })],
        routes: [{ id: "de", match: {}, target: { link: "de" } }],
        rateLimits: { store: "redis", nodes: 2, redis: { host: "127.0.0.1", port: 6379, keyPrefix: prefix } },
        recovery: { idleSeconds: 8, intervalSeconds: 1 }
      }))
      const Sql = PgClient.layer({ url: Redacted.make(pgUrl(database)), maxConnections: 2 }).pipe(
        Layer.provide(Reactivity.layer),
        Layer.orDie
      )
      const Db = Layer.mergeAll(CampaignStore.layer.pipe(Layer.provideMerge(Sql)))
      const db = <A, E, R>(effect: Effect.Effect<A, E, R>) => effect.pipe(Effect.provide(Db)) as Effect.Effect<A, E, never>

      const t = yield* signUp(`http://127.0.0.1:${nodes[0]!.port}`)
      yield* eventually("de bound once", Effect.map(sim.stats, (s) => s.boundSessions === 1 ? true : undefined), { timeout: 30_000 })
      const list = yield* db(seedList(t.orgId, germanContacts(audience)))
      const id = yield* db(approvedCampaign(t.orgId, t.appId, { lists: [list], throttle: 250 }))
      // Started as the API will: the stored state only; the supervisor wakes its actor on one of the nodes.
      yield* db(Effect.flatMap(Effect.service(CampaignStore), (s) => s.transition(id, "start", "running", { patch: { startedAt: Date.now() } })))

      yield* eventually("30 % submitted", db(campaignMessages(id)), { timeout: 60_000, until: (n) => n >= audience * 0.3 })
      const actors = yield* adminActors(nodes[0]!.port)
      const entry = actors.find((a) => a.type === "Campaign" && a.id === id && !a.stale)
      const owner = nodes.find((n) => n.runner === entry?.runner)
      expect(owner).toBeDefined()
      yield* killHard(owner!.process!)
      const atKill = yield* db(campaignMessages(id))
      expect(atKill).toBeLessThan(audience * 0.8)

      const done = yield* eventually(`campaign ${id} completed on the survivor`, db(campaignOf(id)), {
        timeout: 120_000,
        interval: 500,
        until: (c) => c.state === "completed"
      })
      expect(done.audience).toBe(audience)
      expect(yield* db(recipientCounts(id))).toEqual({ submitted: audience })
      // One message per recipient: the derived ids make a second accept of the same recipient impossible.
      expect(yield* db(campaignMessages(id))).toBe(audience)

      const survivor = nodes.find(isLive)!
      // Parts whose outcome the kill left unknown: promotional, so reported (not resent), and counted by recovery.
      const reported = yield* eventually("nothing pending", db(Effect.gen(function*() {
        const sql = yield* PgClient.PgClient
        const pending = yield* sql<{ n: string }>`SELECT COUNT(*) AS n FROM messages WHERE campaign_id = ${id} AND status_rank < 2`
        if (Number(pending[0]?.n) !== 0) return undefined
        const rows = yield* sql<{ text: string }>`SELECT text FROM messages WHERE campaign_id = ${id} AND reason = 'unknown_outcome'`
        return { texts: new Set(rows.map((r) => r.text)) }
      })).pipe(Effect.orDie), { timeout: 60_000 })
      const texts = yield* receivedTexts(sim, id)
      const expected = Array.from({ length: audience }, (_, n) => `${id} hello ${n}`)
      const missing = expected.filter((text) => !texts.has(text) && !reported.texts.has(text))
      const twice = [...texts].filter(([, n]) => n > 1).map(([text]) => text)
      let counted = 0
      const metrics = yield* get(`http://127.0.0.1:${survivor.port}/metrics`)
      for (const m of metrics.text.matchAll(/smsgw_recovery_unknown_outcomes_total\{[^}]*\} (\d+)/g)) counted += Number(m[1])
      console.log(`campaign failover: ${atKill} accepted at the kill, ${texts.size} texts at the SMSC, ` +
        `${reported.texts.size} unknown outcomes reported (counted ${counted}), ${twice.length} twice`)
      expect(missing.slice(0, 5)).toEqual([])
      expect(twice.slice(0, 5)).toEqual([])
      // Every unknown outcome is counted (on the survivor: the dead node's counters died with it).
      expect(counted).toBe(reported.texts.size)
    }).pipe(Effect.scoped), 240_000)
})
