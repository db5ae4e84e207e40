import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import type { SqlClient } from "effect/sql"
import type { NewMessage } from "../../src/storage/MessageStore.ts"
import { MessageStore } from "../../src/storage/MessageStore.ts"
import { migrate } from "../../src/layers/Migrations.ts"
import { PoolMetrics } from "../../src/observability/Metrics.ts"
import { settlePending } from "../../src/pipeline/Recovery.ts"
import { pgLayer, sqliteLayer } from "../fixtures/Databases.ts"
import { newMessage } from "../fixtures/Messages.ts"

// Created a minute ago: old enough for recovery's "untouched since" queries.
const message = (overrides: Partial<NewMessage> = {}): NewMessage =>
  newMessage({ clientRef: undefined, createdAt: Date.now() - 60_000, ...overrides })

const handed = (m: NewMessage, seq = 1) => ({ messageId: m.id, seq, linkId: "demo", at: Date.now() })

const getView = (id: string) =>
  Effect.flatMap(MessageStore, (store) => store.get(id, "org_test")).pipe(Effect.map(Option.getOrThrow))

const pendingOf = (id: string) =>
  Effect.flatMap(MessageStore, (store) => store.pending({ updatedBefore: Date.now(), limit: 1000 })).pipe(
    Effect.map((all) => all.find((p) => p.id === id))
  )

const suite = (name: string, database: Layer.Layer<SqlClient.SqlClient>) =>
  describe(`parts handed to the SMSC, on ${name}`, () => {
    const TestStore = MessageStore.layer.pipe(
      Layer.provideMerge(Layer.effectDiscard(Effect.orDie(migrate))),
      Layer.provideMerge(database),
      Layer.merge(PoolMetrics.layer)
    )

    it.layer(TestStore, { timeout: 60_000 })((it) => {
      it.effect("a part marked and then answered is no unknown outcome; one marked without an answer is", () =>
        Effect.gen(function*() {
          const store = yield* MessageStore
          const answered = message({ messageClass: "transactional" })
          const inFlight = message({ messageClass: "promotional" })
          const refused = message()
          const never = message()
          yield* store.accept([answered, inFlight, refused, never])
          expect(yield* store.recordHanded([], [handed(answered), handed(inFlight), handed(refused)])).toEqual([])
          // The next call stores the answers first: a result, and a throttled part the SMSC did not take.
          yield* store.recordHanded([
            { _tag: "Submitted", messageId: answered.id, seq: 1, segments: 1, linkId: "demo", smscMessageId: "a1", at: Date.now() },
            { _tag: "Requeued", messageId: refused.id, seq: 1, segments: 1, linkId: "demo", error: "ESME_RTHROTTLED", at: Date.now() }
          ], [])

          // The part row moved at once; the message follows with the writer's batch (recordOutcomes).
          expect((yield* getView(answered.id)).parts[0]?.status).toBe("submitted")
          expect((yield* pendingOf(answered.id))?.pendingSeqs).toEqual([])
          const unknown = yield* pendingOf(inFlight.id)
          expect(unknown?.handed).toEqual([{ seq: 1, linkId: "demo" }])
          expect(unknown?.messageClass).toBe("promotional")
          expect((yield* pendingOf(refused.id))?.handed).toEqual([])
          expect((yield* pendingOf(never.id))?.handed).toEqual([])
        }))

      it.effect("resend puts the part back to queued with an event; report ends it submitted, and a late result still lands", () =>
        Effect.gen(function*() {
          const store = yield* MessageStore
          const resend = message()
          const report = message({ messageClass: "promotional" })
          yield* store.accept([resend, report])
          yield* store.recordHanded([], [handed(resend), handed(report)])
          const at = Date.now()
          const settled = yield* store.settleUnknown([
            { messageId: resend.id, seq: 1, linkId: "demo", action: "resend", at },
            { messageId: report.id, seq: 1, linkId: "demo", action: "report", at }
          ])
          expect(settled.map((s) => s.action).sort()).toEqual(["report", "resend"])

          const resent = yield* getView(resend.id)
          expect(resent.status).toBe("queued")
          expect(resent.parts[0]?.error).toBe("unknown_outcome")
          expect(resent.events.at(-1)?.detail).toContain("resent after unknown outcome")
          // The mark is cleared: until sent again, the part is one the SMSC never saw.
          expect((yield* pendingOf(resend.id))?.handed).toEqual([])

          const reported = yield* getView(report.id)
          expect(reported.status).toBe("submitted")
          expect(reported.reason).toBe("unknown_outcome")
          expect(reported.events.at(-1)?.detail).toContain("not resent")
          expect(yield* pendingOf(report.id)).toBeUndefined()

          // Settling twice does nothing more; a late result of the reported part fills in its SMSC id.
          expect(yield* store.settleUnknown([{ messageId: report.id, seq: 1, linkId: "demo", action: "report", at }])).toEqual([])
          yield* store.recordOutcomes([
            { _tag: "Submitted", messageId: report.id, seq: 1, segments: 1, linkId: "demo", smscMessageId: "late-1", at: Date.now() }
          ])
          expect((yield* getView(report.id)).parts[0]?.smscMessageId).toBe("late-1")
        }))

      it.effect("a part the store has submitted or final is not marked again: answered as one the link must not send", () =>
        Effect.gen(function*() {
          const store = yield* MessageStore
          const sent = message()
          const failed = message()
          const fresh = message()
          yield* store.accept([sent, failed, fresh])
          yield* store.recordHanded([], [handed(sent), handed(failed)])
          // A submit result on the fast path (part row only), a refusal through the writer (part and message final).
          yield* store.recordHanded([
            { _tag: "Submitted", messageId: sent.id, seq: 1, segments: 1, linkId: "demo", smscMessageId: "s1", at: Date.now() }
          ], [])
          yield* store.recordOutcomes([
            { _tag: "Failed", messageId: failed.id, seq: 1, segments: 1, linkId: "demo", error: "ESME_RINVDSTADR", at: Date.now() }
          ])
          // Handed again (a stale hand-off), beside a part never sent.
          const again = [handed(sent), handed(failed), handed(fresh)]
          expect(yield* store.recordHanded([], again)).toEqual([again[0], again[1]])
          expect((yield* pendingOf(fresh.id))?.handed).toEqual([{ seq: 1, linkId: "demo" }])
        }))

      it.effect("recovery re-drives an unknown outcome, but not a part whose answer was stored after recovery read it", () =>
        Effect.gen(function*() {
          const store = yield* MessageStore
          const lost = message()
          const late = message()
          const never = message()
          yield* store.accept([lost, late, never])
          yield* store.recordHanded([], [handed(lost), handed(late)])
          const found = (yield* store.pending({ updatedBefore: Date.now(), limit: 1000 })).filter((m) =>
            [lost.id, late.id, never.id].includes(m.id)
          )
          expect(found.map((m) => m.handed.length).sort()).toEqual([0, 1, 1])
          // The link that handed `late` was draining, not dead: its answer lands after recovery's read.
          yield* store.recordHanded([
            { _tag: "Submitted", messageId: late.id, seq: 1, segments: 1, linkId: "demo", smscMessageId: "l1", at: Date.now() }
          ], [])
          const redrive = yield* settlePending(store, yield* PoolMetrics, () => "resend")(found)
          expect(redrive.map((m) => [m.id, m.pendingSeqs]).sort()).toEqual([[lost.id, [1]], [never.id, [1]]].sort())
          expect((yield* getView(lost.id)).events.at(-1)?.detail).toContain("resent after unknown outcome")
          const answered = yield* getView(late.id)
          expect(answered.parts[0]?.status).toBe("submitted")
          expect(answered.events.map((e) => e.detail ?? "")).not.toContainEqual(expect.stringContaining("unknown outcome"))
        }))

      it.effect("a reported part that never gets a receipt ends expired, like any part awaiting one", () =>
        Effect.gen(function*() {
          const store = yield* MessageStore
          const report = message({ messageClass: "promotional" })
          yield* store.accept([report])
          yield* store.recordHanded([], [handed(report)])
          yield* store.settleUnknown([{ messageId: report.id, seq: 1, linkId: "demo", action: "report", at: Date.now() }])
          expect((yield* getView(report.id)).status).toBe("submitted")
          // Long past any validity and grace.
          yield* store.expireOverdue({ now: Date.now() + 30 * 86_400_000, limit: 100 })
          const view = yield* getView(report.id)
          expect(view.status).toBe("expired")
          expect(view.parts[0]?.status).toBe("expired")
        }))

      it.effect("a message whose parts moved on without it is caught up to their status", () =>
        Effect.gen(function*() {
          const store = yield* MessageStore
          const m = message()
          yield* store.accept([m])
          yield* store.recordHanded([
            { _tag: "Submitted", messageId: m.id, seq: 1, segments: 1, linkId: "demo", smscMessageId: "c1", at: Date.now() }
          ], [])
          expect((yield* pendingOf(m.id))?.pendingSeqs).toEqual([])
          yield* store.catchUp([m.id])
          expect((yield* getView(m.id)).status).toBe("submitted")
          expect(yield* pendingOf(m.id)).toBeUndefined()
        }))
    })
  })

suite("SQLite (node:sqlite)", sqliteLayer)
suite("PostgreSQL", pgLayer)
