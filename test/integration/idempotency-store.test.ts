/**
 * IdempotencyStore on both dialects: a key claimed once (a second claim in the same call or another finds it in
 * flight), answered, refused for another request, released, taken over after its lease, renewed after its time, purged;
 * two apps' keys apart.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import type { SqlClient } from "effect/sql"
import { migrate } from "../../src/layers/Migrations.ts"
import { IdempotencyStore } from "../../src/storage/IdempotencyStore.ts"
import { pgLayer, sqliteLayer } from "../fixtures/Databases.ts"

const settings = { ttlMs: 10_000, leaseMs: 1_000 }
const t0 = 1_800_000_000_000

const suite = (name: string, database: Layer.Layer<SqlClient.SqlClient>) =>
  describe(`IdempotencyStore on ${name}`, () => {
    const TestStore = IdempotencyStore.layer(settings).pipe(
      Layer.provideMerge(Layer.effectDiscard(Effect.orDie(migrate))),
      Layer.provideMerge(database)
    )
    it.layer(TestStore, { timeout: 60_000 })((it) => {
      it.effect("claimed once, answered, refused for another request, apart per app; only the claim's holder changes it", () =>
        Effect.gen(function*() {
          const store = yield* IdempotencyStore
          const ref = { orgId: "org_a", appId: "app_1", key: "k1" }
          const claims = yield* store.claim([
            { ...ref, fingerprint: "f1", messageId: "m1" },
            { ...ref, fingerprint: "f1", messageId: "m2" },
            { ...ref, appId: "app_2", fingerprint: "f1", messageId: "m3" }
          ], t0)
          expect(claims.map((c) => c._tag === "Claimed" ? c.messageId : c._tag)).toEqual(["m1", "InFlight", "m3"])
          const first = claims[0]
          if (first?._tag !== "Claimed") throw new Error("not claimed")
          expect(yield* store.claim([{ ...ref, fingerprint: "other", messageId: "m4" }], t0 + 10)).toEqual([{ _tag: "Mismatch" }])
          // Another token changes nothing: not complete, not release.
          yield* store.complete([{ ...ref, token: "not the holder", answer: "forged" }])
          yield* store.release([{ ...ref, token: "not the holder" }])
          expect(yield* store.claim([{ ...ref, fingerprint: "f1", messageId: "m5" }], t0 + 20)).toEqual([{ _tag: "InFlight" }])
          yield* store.complete([{ ...ref, token: first.token, answer: "the answer" }])
          expect(yield* store.claim([{ ...ref, fingerprint: "f1", messageId: "m5" }], t0 + 20)).toEqual([{ _tag: "Answered", answer: "the answer" }])
          // Released keys only go while unanswered.
          yield* store.release([{ ...ref, token: first.token }])
          expect(yield* store.claim([{ ...ref, fingerprint: "f1", messageId: "m6" }], t0 + 30)).toEqual([{ _tag: "Answered", answer: "the answer" }])
        }))

      it.effect("released keys start afresh; an extended lease holds; a lapsed or ended lease is taken over once under the first message id; an expired key is renewed", () =>
        Effect.gen(function*() {
          const store = yield* IdempotencyStore
          const ref = { orgId: "org_b", appId: "app_1", key: "k2" }
          const [first] = yield* store.claim([{ ...ref, fingerprint: "f", messageId: "first" }], t0)
          if (first?._tag !== "Claimed") throw new Error("not claimed")
          yield* store.release([{ ...ref, token: first.token }])
          const [second] = yield* store.claim([{ ...ref, fingerprint: "g", messageId: "second" }], t0)
          if (second?._tag !== "Claimed") throw new Error("not claimed")
          expect(second.messageId).toBe("second")
          // Extended at t0 + 900: still in flight past the first lease's end.
          yield* store.extend([{ ...ref, token: second.token }], t0 + 900)
          expect(yield* store.claim([{ ...ref, fingerprint: "g", messageId: "x" }], t0 + 1_500)).toEqual([{ _tag: "InFlight" }])
          // Past the extended lease: one taker, under the first id; the old holder can no longer complete it.
          const [taken] = yield* store.claim([{ ...ref, fingerprint: "g", messageId: "y" }], t0 + 1_901)
          expect(taken).toMatchObject({ _tag: "TakenOver", messageId: "second" })
          expect(yield* store.claim([{ ...ref, fingerprint: "g", messageId: "z" }], t0 + 1_902)).toEqual([{ _tag: "InFlight" }])
          yield* store.complete([{ ...ref, token: second.token, answer: "stale" }])
          if (taken?._tag !== "TakenOver") throw new Error("not taken over")
          // The taker lapses it (it could not tell whether the message was stored): the next request takes over at once.
          yield* store.lapse([{ ...ref, token: taken.token }])
          expect(yield* store.claim([{ ...ref, fingerprint: "g", messageId: "w" }], t0 + 1_903)).toMatchObject([{ _tag: "TakenOver", messageId: "second" }])
          // After its time, the key belongs to whatever request comes next.
          expect(yield* store.claim([{ ...ref, fingerprint: "h", messageId: "new" }], t0 + 10_000)).toMatchObject([{ _tag: "Claimed", messageId: "new" }])
        }))

      it.effect("purge removes keys first used before the cutoff, in bounded batches", () =>
        Effect.gen(function*() {
          const store = yield* IdempotencyStore
          const old = Array.from({ length: 5 }, (_, i) => ({ orgId: "org_c", appId: "app", key: `old-${i}`, fingerprint: "f", messageId: `o${i}` }))
          yield* store.claim(old, t0 - 100_000)
          yield* store.claim([{ orgId: "org_c", appId: "app", key: "young", fingerprint: "f", messageId: "y" }], t0)
          expect(yield* store.purge(t0 - 50_000, 3)).toBe(3)
          expect(yield* store.purge(t0 - 50_000, 3)).toBe(2)
          expect(yield* store.purge(t0 - 50_000, 3)).toBe(0)
          expect(yield* store.claim([{ orgId: "org_c", appId: "app", key: "young", fingerprint: "f", messageId: "again" }], t0 + 1)).toEqual([{ _tag: "InFlight" }])
          expect(yield* store.claim([{ orgId: "org_c", appId: "app", key: "old-0", fingerprint: "other", messageId: "fresh" }], t0 + 1)).toMatchObject([{ _tag: "Claimed", messageId: "fresh" }])
        }))
    })
  })

suite("SQLite", sqliteLayer)
suite("PostgreSQL", pgLayer)
