/**
 * The message search's store query on SQLite and PostgreSQL: each filter alone and combined, the organisation scope,
 * paging with no duplicate and no gap (rows sharing a millisecond included); on SQLite, the plans of the typical
 * searches read one index in order (no full scan, no sort). The structured timeline events of the message view.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import type { SqlClient } from "effect/sql"
import { SqlClient as Sql } from "effect/sql"
import { migrate } from "../../src/layers/Migrations.ts"
import type { MessageStatus } from "../../src/domain/Message.ts"
import type { MessageFilter } from "../../src/storage/MessageSearch.ts"
import { MessageSearch } from "../../src/storage/MessageSearch.ts"
import type { NewMessage } from "../../src/storage/MessageStore.ts"
import { MessageStore } from "../../src/storage/MessageStore.ts"
import type { Before } from "../../src/storage/Paging.ts"
import { pgLayer, sqliteLayer } from "../fixtures/Databases.ts"
import { newMessage } from "../fixtures/Messages.ts"

const t0 = Date.UTC(2026, 11, 1, 9)

interface Seeded {
  readonly message: NewMessage
  readonly status: MessageStatus
}

/**
 * 30 messages of one organisation (three per millisecond, so pages split ties), two apps, six recipients, five client
 * references, every fourth from a campaign, every sixth refused by a rule, every fifth submitted; and one message of
 * another organisation matching every filter.
 */
const seed = (orgId: string) =>
  Effect.gen(function*() {
    const store = yield* MessageStore
    const seeded: Array<Seeded> = Array.from({ length: 30 }, (_, i) => {
      const refused = i % 6 === 0
      return {
        message: newMessage({
          orgId,
          appId: i % 2 === 0 ? `${orgId}_app1` : `${orgId}_app2`,
          to: `49151000000${i % 6}`,
          clientRef: `ref-${i % 5}`,
          createdAt: t0 + Math.floor(i / 3) * 1000,
          ...(i % 4 === 0 ? { campaignId: `${orgId}_cmp` } : {}),
          ...(refused ? { rejection: "blacklisted", ruleId: "dnc" } : {})
        }),
        status: refused ? "rejected" : i % 5 === 1 ? "submitted" : "accepted"
      }
    })
    const other = newMessage({
      orgId: `${orgId}_other`,
      appId: `${orgId}_app1`,
      to: "491510000000",
      clientRef: "ref-0",
      createdAt: t0,
      campaignId: `${orgId}_cmp`
    })
    yield* store.accept([...seeded.map((s) => s.message), other])
    yield* store.recordOutcomes(seeded.filter((s) => s.status === "submitted").map((s, n) => ({
      _tag: "Submitted" as const,
      messageId: s.message.id,
      seq: 1,
      segments: 1,
      linkId: "demo",
      smscMessageId: `smsc-${orgId}-${n}`,
      at: t0 + 60_000
    })))
    return { seeded, other }
  })

/** Every page of a search, following `next`, with the page size used. */
const allPages = (filter: MessageFilter, limit: number) =>
  Effect.gen(function*() {
    const search = yield* MessageSearch
    const pages: Array<ReadonlyArray<string>> = []
    let after: Before | undefined
    for (let n = 0; n < 100; n++) {
      const page = yield* search.search(filter, { limit, after })
      pages.push(page.items.map((m) => m.id))
      if (page.next === undefined) break
      after = page.next
    }
    return pages
  })

/** What a search must find: the seeded messages the predicate keeps, newest first (ties in either order). */
const expected = (seeded: ReadonlyArray<Seeded>, keep: (s: Seeded) => boolean) =>
  seeded.filter(keep).map((s) => s.message)

const ids = (ms: ReadonlyArray<NewMessage>) => ms.map((m) => m.id).sort()

const newestFirst = (seeded: ReadonlyArray<Seeded>, found: ReadonlyArray<string>) => {
  const at = new Map(seeded.map((s) => [s.message.id, s.message.createdAt]))
  const times = found.map((id) => at.get(id) ?? -1)
  return times.every((t, i) => i === 0 || t <= (times[i - 1] ?? Infinity))
}

const suite = (name: string, database: Layer.Layer<SqlClient.SqlClient>) =>
  describe(`MessageSearch on ${name}`, () => {
    const TestLayer = Layer.mergeAll(MessageStore.layer, MessageSearch.layer).pipe(
      Layer.provideMerge(Layer.effectDiscard(Effect.orDie(migrate))),
      Layer.provideMerge(database)
    )

    it.layer(TestLayer, { timeout: 60_000 })((it) => {
      it.effect("each filter alone, then combined, finds exactly its messages of the organisation, newest first", () =>
        Effect.gen(function*() {
          const orgId = `org_${crypto.randomUUID().slice(0, 8)}`
          const { seeded, other } = yield* seed(orgId)
          const search = yield* MessageSearch
          const find = (filter: Omit<MessageFilter, "orgId">) =>
            search.search({ orgId, ...filter }, { limit: 200 }).pipe(Effect.map((p) => {
              expect(p.next).toBeUndefined()
              expect(newestFirst(seeded, p.items.map((m) => m.id))).toBe(true)
              return p.items.map((m) => m.id).sort()
            }))
          const m7 = seeded[7]?.message
          if (m7 === undefined) throw new Error("seed")
          const cases: Array<[Omit<MessageFilter, "orgId">, (s: Seeded) => boolean]> = [
            [{}, () => true],
            [{ id: m7.id }, (s) => s.message.id === m7.id],
            [{ to: "491510000003" }, (s) => s.message.to === "491510000003"],
            [{ clientRef: "ref-2" }, (s) => s.message.clientRef === "ref-2"],
            [{ status: "rejected" }, (s) => s.status === "rejected"],
            [{ status: "submitted" }, (s) => s.status === "submitted"],
            [{ appId: `${orgId}_app2` }, (s) => s.message.appId === `${orgId}_app2`],
            [{ campaignId: `${orgId}_cmp` }, (s) => s.message.campaignId === `${orgId}_cmp`],
            [{ since: t0 + 3000 }, (s) => s.message.createdAt >= t0 + 3000],
            [{ until: t0 + 3000 }, (s) => s.message.createdAt < t0 + 3000],
            [{ since: t0 + 2000, until: t0 + 5000 }, (s) => s.message.createdAt >= t0 + 2000 && s.message.createdAt < t0 + 5000],
            [
              { appId: `${orgId}_app1`, status: "accepted", since: t0 + 1000 },
              (s) => s.message.appId === `${orgId}_app1` && s.status === "accepted" && s.message.createdAt >= t0 + 1000
            ],
            [{ to: "491510000000", campaignId: `${orgId}_cmp` }, (s) => s.message.to === "491510000000" && s.message.campaignId !== undefined]
          ]
          for (const [filter, keep] of cases) {
            const want = ids(expected(seeded, keep))
            expect(want.length, JSON.stringify(filter)).toBeGreaterThan(0)
            expect(yield* find(filter), JSON.stringify(filter)).toEqual(want)
          }
          // Another organisation's message matches every filter but its organisation: never listed, even by its id.
          expect(yield* find({ id: other.id })).toEqual([])
          expect((yield* find({ to: "491510000000" })).includes(other.id)).toBe(false)
          expect(yield* find({ clientRef: "no such ref" })).toEqual([])
        }))

      it.effect("a summary carries what the list shows: recipient with +, status, the refusal's reason and rule, origin", () =>
        Effect.gen(function*() {
          const orgId = `org_${crypto.randomUUID().slice(0, 8)}`
          const { seeded } = yield* seed(orgId)
          const search = yield* MessageSearch
          const m0 = seeded[0]?.message
          if (m0 === undefined) throw new Error("seed")
          const [item] = (yield* search.search({ orgId, id: m0.id }, { limit: 1 })).items
          expect(item).toEqual({
            id: m0.id,
            to: "+491510000000",
            from: "ACME",
            status: "rejected",
            reason: "blacklisted",
            ruleId: "dnc",
            segments: 1,
            encoding: "gsm7",
            clientRef: "ref-0",
            appId: `${orgId}_app1`,
            campaignId: `${orgId}_cmp`,
            createdAt: new Date(t0).toISOString(),
            updatedAt: new Date(t0).toISOString()
          })
        }))

      it.effect("paging: every page size walks every message once, in order, pages splitting ties of one millisecond", () =>
        Effect.gen(function*() {
          const orgId = `org_${crypto.randomUUID().slice(0, 8)}`
          const { seeded } = yield* seed(orgId)
          for (const limit of [1, 2, 4, 7, 30, 31]) {
            const pages = yield* allPages({ orgId }, limit)
            const flat = pages.flat()
            expect(flat.length, `limit ${limit}`).toBe(30)
            expect(new Set(flat).size, `limit ${limit}`).toBe(30)
            expect(flat.slice().sort()).toEqual(ids(seeded.map((s) => s.message)))
            expect(newestFirst(seeded, flat)).toBe(true)
            expect(pages.every((p, i) => i === pages.length - 1 ? p.length > 0 && p.length <= limit : p.length === limit)).toBe(true)
          }
          // With a filter too: the cursor continues within it.
          const rejected = (yield* allPages({ orgId, status: "rejected" }, 2)).flat()
          expect(rejected.slice().sort()).toEqual(ids(expected(seeded, (s) => s.status === "rejected")))
          // A page ending exactly on the last message says so: no `next` pointing at an empty page.
          const search = yield* MessageSearch
          expect((yield* search.search({ orgId }, { limit: 30 })).next).toBeUndefined()
          expect((yield* search.search({ orgId }, { limit: 29 })).next).toBeDefined()
        }))

      it.effect("the message view's timeline: the refusal names its reason and rule; a submit its part and link; a failure the SMSC's command_status", () =>
        Effect.gen(function*() {
          const store = yield* MessageStore
          const orgId = `org_${crypto.randomUUID().slice(0, 8)}`
          const refused = newMessage({ orgId, rejection: "blacklisted", ruleId: "dnc", createdAt: t0 })
          const sent = newMessage({ orgId, appId: "app_a", campaignId: "cmp_a", messageClass: "promotional", createdAt: t0 })
          const failed = newMessage({ orgId, segments: 2, text: "x".repeat(200), createdAt: t0 })
          yield* store.accept([refused, sent, failed])
          yield* store.recordOutcomes([
            { _tag: "Submitted", messageId: sent.id, seq: 1, segments: 1, linkId: "demo", smscMessageId: "abc", at: t0 + 1 },
            { _tag: "Requeued", messageId: failed.id, seq: 1, segments: 2, linkId: "demo", error: "ESME_RTHROTTLED", commandStatus: 0x58, at: t0 + 2 },
            { _tag: "Failed", messageId: failed.id, seq: 2, segments: 2, linkId: "demo", error: "ESME_RINVDSTADR (0x0b)", commandStatus: 0x0b, at: t0 + 3 }
          ])
          yield* store.recordReceipt({ linkId: "demo", candidates: ["abc"], status: "undelivered", error: "012", at: t0 + 4 })
          const view = (id: string) => store.get(id, orgId).pipe(Effect.map(Option.getOrThrow))

          const r = yield* view(refused.id)
          expect(r.events).toEqual([{
            at: new Date(refused.createdAt).toISOString(),
            status: "rejected",
            detail: "blacklisted (rule dnc)",
            kind: "refused",
            reason: "blacklisted",
            ruleId: "dnc"
          }])

          const s = yield* view(sent.id)
          expect([s.appId, s.campaignId, s.messageClass, s.text]).toEqual(["app_a", "cmp_a", "promotional", "Hello"])
          expect(s.parts).toEqual([{
            seq: 1,
            linkId: "demo",
            smscMessageId: "abc",
            status: "undelivered",
            error: "012",
            submittedAt: new Date(t0 + 1).toISOString(),
            doneAt: new Date(t0 + 4).toISOString()
          }])
          expect(s.events.map((e) => [e.kind, e.status, e.part, e.linkId, e.reason])).toEqual([
            ["accepted", "accepted", undefined, undefined, undefined],
            ["submitted", "submitted", 1, "demo", undefined],
            ["receipt", "undelivered", 1, "demo", "err 012"]
          ])

          const f = yield* view(failed.id)
          expect(f.status).toBe("queued")
          const last = f.events.at(-1)
          // Part 2 failed for good while part 1 waits for a retry: the message is queued, the event names the refusal.
          expect(last).toMatchObject({
            kind: "failed",
            status: "queued",
            part: 2,
            linkId: "demo",
            commandStatus: 0x0b,
            commandStatusName: "ESME_RINVDSTADR",
            reason: "ESME_RINVDSTADR (0x0b)"
          })
          expect(f.parts[0]).toMatchObject({ seq: 1, status: "queued", error: "ESME_RTHROTTLED" })
          expect(f.parts[1]).toMatchObject({ seq: 2, status: "failed", error: "ESME_RINVDSTADR (0x0b)" })
        }))
    })
  })

suite("SQLite", sqliteLayer)
suite("PostgreSQL", pgLayer)

const plan = (query: string) =>
  Effect.gen(function*() {
    const sql = yield* Sql.SqlClient
    const rows = yield* sql.unsafe<{ detail: string }>(`EXPLAIN QUERY PLAN ${query}`)
    return rows.map((r) => r.detail).join(" | ")
  })

describe("message search indexes (SQLite plans)", () => {
  it.layer(Layer.effectDiscard(Effect.orDie(migrate)).pipe(Layer.provideMerge(sqliteLayer)))((it) => {
    const select = "SELECT id FROM messages WHERE org_id = 'o'"
    const order = "ORDER BY created_at DESC, id DESC LIMIT 101"
    const cases: Array<[string, string, RegExp]> = [
      ["the newest page", `${select} ${order}`, /messages_org_created \(org_id=\?\)/],
      ["a later page", `${select} AND (created_at, id) < (5, 'x') ${order}`, /messages_org_created \(org_id=\? AND \(created_at,id\)<\(\?,\?\)\)/],
      ["a date range", `${select} AND created_at >= 1 AND created_at < 9 ${order}`, /messages_org_created \(org_id=\? AND created_at>\? AND created_at<\?\)/],
      ["by number", `${select} AND to_addr = '49151' ${order}`, /messages_org_to \(org_id=\? AND to_addr=\?\)/],
      ["by client reference", `${select} AND client_ref = 'r' ${order}`, /messages_org_ref \(org_id=\? AND client_ref=\?\)/],
      ["by status", `${select} AND status = 'failed' ${order}`, /messages_org_status \(org_id=\? AND status=\?\)/],
      ["by app", `${select} AND app_id = 'a' ${order}`, /messages_org_app \(org_id=\? AND app_id=\?\)/],
      ["by campaign", `${select} AND campaign_id = 'c' ${order}`, /messages_campaign_created \(campaign_id=\?\)/]
    ]
    for (const [name, query, index] of cases) {
      it.effect(`${name}: one index, read in order`, () =>
        Effect.gen(function*() {
          const found = yield* plan(query)
          expect(found).toMatch(index)
          expect(found).not.toContain("TEMP B-TREE")
          expect(found).not.toMatch(/SCAN messages(?! USING)/)
        }))
    }
  })
})
