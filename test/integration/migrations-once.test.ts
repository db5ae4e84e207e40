/** Migrations run once, from the one ordered list where the process is composed; the message store runs none. */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { migrate } from "../../src/layers/Migrations.ts"
import { MessageStore } from "../../src/storage/MessageStore.ts"
import { sqliteLayer } from "../fixtures/Databases.ts"

describe("migrations", () => {
  it.layer(MessageStore.layer.pipe(Layer.provideMerge(sqliteLayer)), { timeout: 30_000 })((it) => {
    it.effect("starting the message store applies none: the composed list then applies all of them, in order", () =>
      Effect.gen(function*() {
        yield* MessageStore
        const applied = yield* migrate
        expect(applied.map(([id]) => id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26])
        expect(yield* migrate).toEqual([])
      }))
  })
})
