import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer, Option } from "effect"
import { SqlClient } from "effect/sql"
import { TestClock } from "effect/testing"
import type { NewMessage } from "../../src/storage/MessageStore.ts"
import { MessageStore, receiptDefaults, ReceiptSettings, rollup } from "../../src/storage/MessageStore.ts"
import { migrate } from "../../src/layers/Migrations.ts"
import { pgLayer, sqliteLayer } from "../fixtures/Databases.ts"
import { newMessage } from "../fixtures/Messages.ts"

const message = newMessage

const submitted = (m: NewMessage, seq: number, smscMessageId: string, at = Date.now(), linkId = "demo") => ({
  _tag: "Submitted" as const,
  messageId: m.id,
  seq,
  segments: m.segments,
  linkId,
  smscMessageId,
  at
})

const receipt = (linkId: string, id: string, status: "delivered" | "undelivered" | "expired", at = Date.now()) => ({
  linkId,
  candidates: [id],
  status,
  error: undefined,
  at
})

/** Receipts dropped at the orphan cap, by link (what the metric is told). */
const droppedAtCap = new Map<string, number>()

/** A short grace and a small orphan cap, so expiry and the cap are reached in a test. */
const settings: ReceiptSettings = {
  ...receiptDefaults,
  graceMs: 60_000,
  assumedValidityMs: 24 * 3_600_000,
  orphanMaxPerLink: 500,
  onOrphansDropped: (linkId, n) => void droppedAtCap.set(linkId, (droppedAtCap.get(linkId) ?? 0) + n)
}

const getView = (id: string) =>
  Effect.flatMap(MessageStore, (store) => store.get(id, "org_test")).pipe(Effect.map(Option.getOrThrow))

const suite = (name: string, database: Layer.Layer<SqlClient.SqlClient>) =>
  describe(`MessageStore on ${name}`, () => {
    const TestStore = MessageStore.layer.pipe(
      Layer.provide(Layer.succeed(ReceiptSettings, settings)),
      Layer.provideMerge(Layer.effectDiscard(Effect.orDie(migrate))),
      Layer.provideMerge(database)
    )

    it.layer(TestStore, { timeout: 60_000 })((it) => {
      it.effect("accept commits the record with its parts and first event", () =>
        Effect.gen(function*() {
          const store = yield* MessageStore
          const m = message({ segments: 2, text: "x".repeat(200) })
          yield* store.accept([m])
          const view = yield* getView(m.id)
          expect(view.status).toBe("accepted")
          expect(view.to).toBe("+4915112345678")
          expect(view.clientRef).toBe("ref-1")
          expect(view.parts.map((p) => [p.seq, p.status])).toEqual([[1, "accepted"], [2, "accepted"]])
          expect(view.events.map((e) => e.status)).toEqual(["accepted"])
          expect(Option.isNone(yield* store.get(crypto.randomUUID(), "org_test"))).toBe(true)
          expect(Option.isNone(yield* store.get(m.id, "org_other"))).toBe(true)
        }))

      it.effect("submit result then receipt (hex form of a decimal id) ends delivered; a late submit never regresses", () =>
        Effect.gen(function*() {
          const store = yield* MessageStore
          const m = message()
          yield* store.accept([m])
          yield* store.recordOutcomes([submitted(m, 1, "1234567890")])
          expect((yield* getView(m.id)).status).toBe("submitted")
          const matched = yield* store.recordReceipt({
            linkId: "demo",
            candidates: ["499602d2", "1234567890"].slice(0, 1).concat(["1234567890"]),
            status: "delivered",
            error: undefined,
            at: Date.now()
          })
          expect(matched.matched).toBe(true)
          yield* store.recordOutcomes([submitted(m, 1, "1234567890")])
          const view = yield* getView(m.id)
          expect(view.status).toBe("delivered")
          expect(view.parts[0]?.smscMessageId).toBe("1234567890")
          expect(view.events.map((e) => e.status)).toEqual(["accepted", "submitted", "delivered"])
        }))

      it.effect("a receipt on another link does not match", () =>
        Effect.gen(function*() {
          const store = yield* MessageStore
          const m = message()
          yield* store.accept([m])
          yield* store.recordOutcomes([submitted(m, 1, "abc1")])
          const matched = yield* store.recordReceipt({
            linkId: "other",
            candidates: ["abc1"],
            status: "delivered",
            error: undefined,
            at: Date.now()
          })
          expect(matched.matched).toBe(false)
          expect((yield* getView(m.id)).status).toBe("submitted")
        }))

      it.effect("a multipart message is delivered only when every part is", () =>
        Effect.gen(function*() {
          const store = yield* MessageStore
          const m = message({ segments: 2 })
          const ids = [`p1-${m.id.slice(0, 8)}`, `p2-${m.id.slice(0, 8)}`]
          yield* store.accept([m])
          yield* store.recordOutcomes([submitted(m, 1, ids[0]!), submitted(m, 2, ids[1]!)])
          yield* store.recordReceipt({ linkId: "demo", candidates: [ids[0]!], status: "delivered", error: undefined, at: Date.now() })
          expect((yield* getView(m.id)).status).toBe("submitted")
          yield* store.recordReceipt({ linkId: "demo", candidates: [ids[1]!], status: "delivered", error: undefined, at: Date.now() })
          const view = yield* getView(m.id)
          expect(view.status).toBe("delivered")
          expect(view.parts.every((p) => p.status === "delivered")).toBe(true)
        }))

      it.effect("a receipt that arrives before its submit result is applied when the result lands", () =>
        Effect.gen(function*() {
          const store = yield* MessageStore
          const m = message()
          const smscId = `early-${m.id.slice(0, 8)}`
          yield* store.accept([m])
          const matched = yield* store.recordReceipt({
            linkId: "demo",
            candidates: [smscId],
            status: "undelivered",
            error: "011",
            at: Date.now()
          })
          expect(matched.matched).toBe(false)
          yield* store.recordOutcomes([submitted(m, 1, smscId)])
          const view = yield* getView(m.id)
          expect(view.status).toBe("undelivered")
          expect(view.parts[0]?.error).toBe("011")
        }))

      it.effect("early receipts kept in every candidate form are all applied by one batch of results, leaving none behind", () =>
        Effect.gen(function*() {
          const store = yield* MessageStore
          const sql = yield* SqlClient.SqlClient
          const batch = Array.from({ length: 40 }, () => message())
          const ids = batch.map((m) => `early2-${m.id.slice(0, 13)}`)
          yield* store.accept(batch)
          // Each receipt is kept under two forms of its id (as smpp/MessageId.ts gives hex and decimal readings).
          for (const id of ids) {
            const matched = yield* store.recordReceipt({
              linkId: "demo",
              candidates: [id, `${id}-dec`],
              status: "delivered",
              error: undefined,
              at: Date.now()
            })
            expect(matched.matched).toBe(false)
          }
          const kept = (all: ReadonlyArray<string>) =>
            sql<{ n: number | string }>`SELECT COUNT(*) AS n FROM orphan_receipts WHERE ${sql.in("smsc_message_id", all)}`.pipe(
              Effect.map((rows) => Number(rows[0]?.n ?? 0))
            )
          const forms = ids.flatMap((id) => [id, `${id}-dec`])
          expect(yield* kept(forms)).toBe(80)
          yield* store.recordOutcomes(batch.map((m, i) => submitted(m, 1, ids[i] ?? "")))
          for (const m of batch) expect((yield* getView(m.id)).status).toBe("delivered")
          // The other form of each matched receipt went with it.
          expect(yield* kept(forms)).toBe(0)
        }))

      if (name === "PostgreSQL") {
        it.effect("an accept is not held behind a link's results transaction that waits", () =>
          Effect.gen(function*() {
            const store = yield* MessageStore
            const sql = yield* SqlClient.SqlClient
            const first = message()
            yield* store.accept([first])
            // Another session holds the part's row: the submit result below has to wait for it.
            const locked = yield* Deferred.make<void>()
            const release = yield* Deferred.make<void>()
            const holder = yield* sql.withTransaction(Effect.gen(function*() {
              yield* sql`SELECT seq FROM message_parts WHERE message_id = ${first.id} FOR UPDATE`
              yield* Deferred.succeed(locked, undefined)
              yield* Deferred.await(release)
            })).pipe(Effect.forkChild)
            yield* Deferred.await(locked)
            const outcome = yield* store.recordOutcomes([submitted(first, 1, `held-${first.id.slice(0, 8)}`)]).pipe(Effect.forkChild)
            yield* TestClock.withLive(Effect.sleep("200 millis"))
            // The results writer is stuck on the lock; a new message is still accepted.
            const second = message()
            yield* TestClock.withLive(store.accept([second]).pipe(Effect.timeout("3 seconds")))
            expect((yield* getView(second.id)).status).toBe("accepted")
            yield* Deferred.succeed(release, undefined)
            yield* Fiber.join(holder)
            yield* Fiber.join(outcome)
            expect((yield* getView(first.id)).status).toBe("submitted")
          }))
      }

      it.effect("receipts that never find their message are dropped after their time, fresh ones kept", () =>
        Effect.gen(function*() {
          const store = yield* MessageStore
          const sql = yield* SqlClient.SqlClient
          const now = Date.now()
          const old = `foreign-old-${crypto.randomUUID().slice(0, 8)}`
          const fresh = `foreign-new-${crypto.randomUUID().slice(0, 8)}`
          yield* store.recordReceipt({ linkId: "demo", candidates: [old], status: "delivered", error: undefined, at: now - 3 * 86_400_000 })
          yield* store.recordReceipt({ linkId: "demo", candidates: [fresh], status: "delivered", error: undefined, at: now })
          const dropped = yield* store.dropOrphansBefore(now - 86_400_000)
          expect(dropped.find((d) => d.linkId === "demo")?.receipts).toBeGreaterThanOrEqual(1)
          const left = yield* sql<{ smsc_message_id: string }>`
            SELECT smsc_message_id FROM orphan_receipts WHERE ${sql.in("smsc_message_id", [old, fresh])}`
          expect(left.map((r) => r.smsc_message_id)).toEqual([fresh])
          expect(yield* store.dropOrphansBefore(now - 86_400_000)).toEqual([])
        }))

      it.effect("an SMSC id used again: the receipt settles only the newest part awaiting one, never a final or an older one", () =>
        Effect.gen(function*() {
          const store = yield* MessageStore
          const now = Date.now()
          const reused = `reused-${crypto.randomUUID().slice(0, 8)}`
          const done = message({ createdAt: now - 30_000 })
          const older = message({ createdAt: now - 20_000 })
          const newer = message({ createdAt: now - 10_000 })
          yield* store.accept([done, older, newer])
          yield* store.recordOutcomes([submitted(done, 1, reused, now - 30_000)])
          expect((yield* store.recordReceipt(receipt("demo", reused, "delivered", now - 25_000))).matched).toBe(true)
          yield* store.recordOutcomes([submitted(older, 1, reused, now - 20_000), submitted(newer, 1, reused, now - 10_000)])
          const doneEvents = (yield* getView(done.id)).events.length

          expect((yield* store.recordReceipt(receipt("demo", reused, "undelivered", now))).matched).toBe(true)
          expect((yield* getView(newer.id)).status).toBe("undelivered")
          expect((yield* getView(older.id)).status).toBe("submitted")
          const first = yield* getView(done.id)
          expect(first.status).toBe("delivered")
          expect(first.events.length).toBe(doneEvents)

          // The next receipt with that id can only be the older message's.
          expect((yield* store.recordReceipt(receipt("demo", reused, "delivered", now + 1))).matched).toBe(true)
          expect((yield* getView(older.id)).status).toBe("delivered")
          expect((yield* getView(newer.id)).status).toBe("undelivered")
          // Nothing awaits it any more: a further one is kept as an orphan, and changes nothing.
          expect((yield* store.recordReceipt(receipt("demo", reused, "expired", now + 2))).matched).toBe(false)
          expect([(yield* getView(done.id)).status, (yield* getView(older.id)).status, (yield* getView(newer.id)).status])
            .toEqual(["delivered", "delivered", "undelivered"])
        }))

      it.effect("a receipt later than submit + validity + grace matches nothing; the part waiting for it is not chosen", () =>
        Effect.gen(function*() {
          const store = yield* MessageStore
          const now = Date.now()
          const id = `late-${crypto.randomUUID().slice(0, 8)}`
          // Validity 60 s + grace 60 s, submitted 10 minutes ago: overdue, not yet swept.
          const m = message({ createdAt: now - 600_000, validitySeconds: 60 })
          yield* store.accept([m])
          yield* store.recordOutcomes([submitted(m, 1, id, now - 600_000)])
          expect((yield* store.recordReceipt(receipt("demo", id, "delivered", now))).matched).toBe(false)
          expect((yield* getView(m.id)).status).toBe("submitted")
          // Within its time, the same receipt would have matched.
          const inTime = message({ createdAt: now - 600_000, validitySeconds: 60 })
          const id2 = `intime-${crypto.randomUUID().slice(0, 8)}`
          yield* store.accept([inTime])
          yield* store.recordOutcomes([submitted(inTime, 1, id2, now - 600_000)])
          expect((yield* store.recordReceipt(receipt("demo", id2, "delivered", now - 600_000 + 119_000))).matched).toBe(true)
          expect((yield* getView(inTime.id)).status).toBe("delivered")
        }))

      it.effect("parts with no receipt past submit + validity + grace end expired (no receipt), once; a late DELIVRD leaves them so", () =>
        Effect.gen(function*() {
          const store = yield* MessageStore
          const sql = yield* SqlClient.SqlClient
          const now = Date.now()
          const tag = crypto.randomUUID().slice(0, 8)
          const single = message({ createdAt: now - 600_000, validitySeconds: 60 })
          const multi = message({ createdAt: now - 600_000, validitySeconds: 60, segments: 2, text: "z".repeat(200) })
          const fresh = message({ createdAt: now - 600_000, validitySeconds: 3600 })
          const noValidity = message({ createdAt: now - 600_000 })
          yield* store.accept([single, multi, fresh, noValidity])
          yield* store.recordOutcomes([
            submitted(single, 1, `s-${tag}`, now - 600_000, "link-a"),
            submitted(multi, 1, `m1-${tag}`, now - 600_000, "link-b"),
            submitted(multi, 2, `m2-${tag}`, now - 600_000, "link-b"),
            submitted(fresh, 1, `f-${tag}`, now - 600_000, "link-a"),
            submitted(noValidity, 1, `n-${tag}`, now - 600_000, "link-a")
          ])
          expect((yield* store.recordReceipt(receipt("link-b", `m1-${tag}`, "delivered", now - 590_000))).matched).toBe(true)

          // One part per statement: the sweep is bounded, and pages through.
          const first = yield* store.expireOverdue({ now, limit: 1 })
          expect(first.reduce((n, e) => n + e.messages, 0)).toBe(1)
          const rest = yield* store.expireOverdue({ now, limit: 100 })
          const moved = [...first, ...rest]
          expect(moved.filter((e) => e.linkId === "link-a").reduce((n, e) => n + e.messages, 0)).toBe(1)
          expect(moved.filter((e) => e.linkId === "link-b").reduce((n, e) => n + e.messages, 0)).toBe(1)
          expect(yield* store.expireOverdue({ now, limit: 100 })).toEqual([])

          const s = yield* getView(single.id)
          expect([s.status, s.reason, s.parts[0]?.status, s.parts[0]?.error]).toEqual(["expired", "no receipt", "expired", "no receipt"])
          expect(s.events.map((e) => e.status)).toEqual(["accepted", "submitted", "expired"])
          const mv = yield* getView(multi.id)
          expect([mv.status, mv.reason]).toEqual(["expired", "no receipt"])
          expect(mv.parts.map((p) => p.status)).toEqual(["delivered", "expired"])
          expect((yield* getView(fresh.id)).status).toBe("submitted")
          expect((yield* getView(noValidity.id)).status).toBe("submitted")

          // Final stays final: a DELIVRD after the expiry finds no part awaiting it and changes nothing.
          expect((yield* store.recordReceipt(receipt("link-a", `s-${tag}`, "delivered", now + 1_000))).matched).toBe(false)
          const after = yield* getView(single.id)
          expect([after.status, after.parts[0]?.status, after.events.length]).toEqual(["expired", "expired", 3])
          const kept = yield* sql<{ n: number | string }>`
            SELECT COUNT(*) AS n FROM message_parts WHERE status = 'expired' AND error = 'no receipt'
              AND ${sql.in("message_id", [single.id, multi.id, fresh.id, noValidity.id])}`
          expect(Number(kept[0]?.n)).toBe(2)
        }))

      it.effect("2,000 receipts for unknown ids leave at most the per-link cap; the rest are dropped and counted", () =>
        Effect.gen(function*() {
          const store = yield* MessageStore
          const sql = yield* SqlClient.SqlClient
          const link = `flood-${crypto.randomUUID().slice(0, 8)}`
          droppedAtCap.delete(link)
          yield* Effect.forEach(Array.from({ length: 2_000 }, (_, i) => i), (i) =>
            store.recordReceipt({
              linkId: link,
              candidates: [`${i}`, `${i}-hex`],
              status: "delivered",
              error: undefined,
              at: Date.now()
            }), { concurrency: 200, discard: true })
          const rows = yield* sql<{ receipts: number | string; n: number | string }>`
            SELECT COUNT(DISTINCT receipt_ref) AS receipts, COUNT(*) AS n FROM orphan_receipts WHERE link_id = ${link}`
          expect(Number(rows[0]?.receipts)).toBe(500)
          expect(Number(rows[0]?.n)).toBe(1_000)
          expect(droppedAtCap.get(link)).toBe(1_500)
          // Another link still keeps its early receipts.
          expect((yield* store.recordReceipt(receipt("demo", `other-${link}`, "delivered"))).matched).toBe(false)
          const other = yield* sql<{ n: number | string }>`
            SELECT COUNT(*) AS n FROM orphan_receipts WHERE smsc_message_id = ${`other-${link}`}`
          expect(Number(other[0]?.n)).toBe(1)
        }))

      it.effect("a receipt kept from well before a submit with the same id is not applied to it (an earlier message's)", () =>
        Effect.gen(function*() {
          const store = yield* MessageStore
          const now = Date.now()
          const id = `stale-${crypto.randomUUID().slice(0, 8)}`
          expect((yield* store.recordReceipt(receipt("demo", id, "delivered", now - 300_000))).matched).toBe(false)
          const m = message()
          yield* store.accept([m])
          yield* store.recordOutcomes([submitted(m, 1, id, now)])
          expect((yield* getView(m.id)).status).toBe("submitted")
        }))

      it.effect("a permanent failure fails the message with its reason; a requeue marks it queued", () =>
        Effect.gen(function*() {
          const store = yield* MessageStore
          const failed = message()
          const requeued = message()
          yield* store.accept([failed, requeued])
          yield* store.recordOutcomes([
            { _tag: "Failed", messageId: failed.id, seq: 1, segments: 1, linkId: "demo", error: "ESME_RINVDSTADR (0x0b)", at: Date.now() },
            { _tag: "Requeued", messageId: requeued.id, seq: 1, segments: 1, linkId: "demo", error: "ESME_RTHROTTLED", at: Date.now() }
          ])
          const f = yield* getView(failed.id)
          expect(f.status).toBe("failed")
          expect(f.reason).toBe("ESME_RINVDSTADR (0x0b)")
          expect((yield* getView(requeued.id)).status).toBe("queued")
        }))

      it.effect("pending lists what is not yet submitted, with the parts still to send", () =>
        Effect.gen(function*() {
          const store = yield* MessageStore
          const old = Date.now() - 3_600_000
          const waiting = message({ createdAt: old, segments: 3, text: "y".repeat(400) })
          const done = message({ createdAt: old })
          yield* store.accept([waiting, done])
          yield* store.recordOutcomes([submitted(waiting, 2, `w2-${waiting.id.slice(0, 6)}`, old), submitted(done, 1, `d-${done.id.slice(0, 6)}`, old)])
          const pending = yield* store.pending({ updatedBefore: old + 1, limit: 1000 })
          const mine = pending.filter((p) => p.id === waiting.id || p.id === done.id)
          expect(mine.map((p) => [p.id, p.pendingSeqs])).toEqual([[waiting.id, [1, 3]]])
          expect(mine[0]?.text).toBe(waiting.text)
        }))

      it.effect("concurrent accepts are group-committed and all land", () =>
        Effect.gen(function*() {
          const store = yield* MessageStore
          const batch = Array.from({ length: 300 }, () => message())
          yield* Effect.forEach(batch, (m) => store.accept([m]), { concurrency: "unbounded", discard: true })
          const views = yield* Effect.forEach(batch, (m) => store.get(m.id, "org_test"))
          expect(views.filter(Option.isSome).length).toBe(300)
        }))
    })
  })

suite("SQLite (node:sqlite)", sqliteLayer)
suite("PostgreSQL", pgLayer)

describe("rollup", () => {
  it("derives the message status from its parts", () => {
    expect(rollup(["delivered", "delivered"])).toBe("delivered")
    expect(rollup(["delivered", "submitted"])).toBe("submitted")
    expect(rollup(["delivered", "undelivered"])).toBe("undelivered")
    expect(rollup(["failed", "delivered"])).toBe("failed")
    expect(rollup(["submitted", "queued"])).toBe("queued")
    expect(rollup(["accepted", "submitted"])).toBe("accepted")
    expect(rollup(["expired"])).toBe("expired")
  })
})
