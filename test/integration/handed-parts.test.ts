import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import type { SqlClient } from "effect/sql"
import type { NewMessage } from "../../src/storage/MessageStore.ts"
import { MessageStore } from "../../src/storage/MessageStore.ts"
import { migrate } from "../../src/layers/Migrations.ts"
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
    const TestStore = MessageStore.layer.pipe(Layer.provideMerge(Layer.effectDiscard(Effect.orDie(migrate))), Layer.provideMerge(database))

    it.layer(TestStore, { timeout: 60_000 })((it) => {
      it.effect("a part marked and then answered is no unknown outcome; one marked without an answer is", () =>
        Effect.gen(function*() {
          const store = yield* MessageStore
          const answered = message({ messageClass: "transactional" })
          const inFlight = message({ messageClass: "promotional" })
          const refused = message()
          const never = message()
          yield* store.accept([answered, inFlight, refused, never])
          yield* store.recordHanded([], [handed(answered), handed(inFlight), handed(refused)])
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
