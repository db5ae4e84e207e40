/** Audience on both dialects: list then upload order, each number once (first list wins), tenant isolation, paging. */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Stream } from "effect"
import type { SqlClient } from "effect/sql"
import { migrate } from "../../src/layers/Migrations.ts"
import { Audience } from "../../src/storage/Audience.ts"
import { insertList, numbers } from "../fixtures/Audiences.ts"
import { pgLayer, sqliteLayer } from "../fixtures/Databases.ts"

const suite = (name: string, database: Layer.Layer<SqlClient.SqlClient>) =>
  describe(`Audience on ${name}`, () => {
    const TestAudience = Audience.layer.pipe(
      Layer.provideMerge(Layer.effectDiscard(Effect.orDie(migrate))),
      Layer.provideMerge(database)
    )
    it.layer(TestAudience, { timeout: 60_000 })((it) => {
      it.effect("contacts come in the campaign's list order then pos, each number once, the first list winning", () =>
        Effect.gen(function*() {
          yield* insertList("org_a", "lst_a1", [
            { msisdn: "491510000001", vars: { name: "Anna" } },
            { msisdn: "491510000002", vars: { name: "Ben" } },
            { msisdn: "491510000003", vars: { name: "Cleo" } }
          ])
          yield* insertList("org_a", "lst_a2", [
            { msisdn: "491510000003", vars: { name: "Cleo in a2" } },
            { msisdn: "491510000004", vars: { name: "Dora" } },
            { msisdn: "491510000001", vars: { name: "Anna in a2" } },
            { msisdn: "491510000005", vars: { name: "Emil" }, country: "PL" }
          ])
          const audience = yield* Audience
          for (const pageSize of [1, 2, 1000]) {
            const forward = yield* Stream.runCollect(audience.contacts("org_a", ["lst_a1", "lst_a2"], { pageSize }))
            expect(forward.map((c) => [c.listId, c.pos, c.msisdn, c.vars.name])).toEqual([
              ["lst_a1", 1, "491510000001", "Anna"],
              ["lst_a1", 2, "491510000002", "Ben"],
              ["lst_a1", 3, "491510000003", "Cleo"],
              ["lst_a2", 2, "491510000004", "Dora"],
              ["lst_a2", 4, "491510000005", "Emil"]
            ])
            expect(forward.at(-1)?.country).toBe("PL")
            // The campaign's order decides which occurrence wins, not the lists' age.
            const backward = yield* Stream.runCollect(audience.contacts("org_a", ["lst_a2", "lst_a1"], { pageSize }))
            expect(backward.map((c) => [c.listId, c.pos, c.vars.name])).toEqual([
              ["lst_a2", 1, "Cleo in a2"],
              ["lst_a2", 2, "Dora"],
              ["lst_a2", 3, "Anna in a2"],
              ["lst_a2", 4, "Emil"],
              ["lst_a1", 2, "Ben"]
            ])
          }
          expect(yield* audience.count("org_a", ["lst_a1", "lst_a2"])).toBe(5)
          expect(yield* audience.count("org_a", ["lst_a2"])).toBe(4)
        }))

      it.effect("another organisation's list is missing: not read, not counted", () =>
        Effect.gen(function*() {
          yield* insertList("org_b", "lst_b1", [{ msisdn: "491510000001" }, { msisdn: "491520000009" }])
          yield* insertList("org_c", "lst_c1", [{ msisdn: "491530000001" }])
          const audience = yield* Audience
          expect(yield* audience.resolve("org_b", ["lst_c1", "lst_b1", "lst_none", "lst_b1"])).toEqual({
            found: ["lst_b1"],
            missing: ["lst_c1", "lst_none"]
          })
          const read = yield* Stream.runCollect(audience.contacts("org_b", ["lst_c1", "lst_b1"]))
          expect(read.map((c) => c.msisdn)).toEqual(["491510000001", "491520000009"])
          expect(yield* audience.count("org_b", ["lst_c1", "lst_b1"])).toBe(2)
          expect(yield* Stream.runCollect(audience.contacts("org_b", ["lst_c1"]))).toEqual([])
          expect(yield* audience.count("org_b", [])).toBe(0)
        }))

      it.effect("a large audience pages through every list and overlap exactly once", () =>
        Effect.gen(function*() {
          yield* insertList("org_l", "lst_l1", numbers("4915100", 2_500))
          // Half of the second list repeats the first.
          yield* insertList("org_l", "lst_l2", [...numbers("4915100", 1_250), ...numbers("4915200", 1_250)])
          const audience = yield* Audience
          const seen = yield* audience.contacts("org_l", ["lst_l1", "lst_l2"], { pageSize: 300 }).pipe(
            Stream.runFold(() => ({ n: 0, unique: new Set<string>(), ordered: true, last: "" }), (acc, c) => {
              const key = `${c.listId}:${String(c.pos).padStart(8, "0")}`
              acc.ordered &&= key > acc.last
              acc.last = key
              acc.n++
              acc.unique.add(c.msisdn)
              return acc
            })
          )
          expect([seen.n, seen.unique.size, seen.ordered]).toEqual([3_750, 3_750, true])
          expect(yield* audience.count("org_l", ["lst_l1", "lst_l2"])).toBe(3_750)
        }))
    })
  })

suite("SQLite", sqliteLayer)
suite("PostgreSQL", pgLayer)
