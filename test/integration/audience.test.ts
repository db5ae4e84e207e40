/**
 * Audience on both dialects: list then upload order, each number once (first list wins), tenant isolation, paging;
 * the contacts lacking a template's variables found in SQL as the stream would find them.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Stream } from "effect"
import { SqlClient } from "effect/sql"
import { migrate } from "../../src/layers/Migrations.ts"
import { missingVariable, parseTemplate } from "../../src/domain/Template.ts"
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

      it.effect("missing variables: an absent key, an empty or null value, keys with . and -, the first variable the template lacks", () =>
        Effect.gen(function*() {
          yield* insertList("org_v", "lst_v1", [
            { msisdn: "491510000101", vars: { name: "Anna", "first.name": "A", "shop-id": "7" } },
            { msisdn: "491510000102", vars: { "first.name": "B", "shop-id": "7" } },
            { msisdn: "491510000103", vars: { name: "", "first.name": "C", "shop-id": "7" } },
            { msisdn: "491510000104", vars: { name: "Dora", "shop-id": "7" } },
            // `first.name` as a path would be the `name` inside `first`: a key `first` holding one must not count.
            { msisdn: "491510000105", vars: { name: "Emil", first: "x", "shop-id": "8" } },
            { msisdn: "491510000106", vars: { name: "Fay", "first.name": "F", "shop-id": "" } },
            { msisdn: "491510000107", vars: { name: "Gus", "first.name": "G", shop: "7", id: "7" } },
            { msisdn: "491510000108", vars: { name: "0", "first.name": " ", "shop-id": "false" } }
          ])
          const audience = yield* Audience
          const found = (variables: ReadonlyArray<string>, limit = 10) =>
            Effect.map(
              audience.missingVariables("org_v", ["lst_v1"], variables, limit),
              (rows) => rows.map((r) => [r.listId, r.pos, r.msisdn, r.variable])
            )
          expect(yield* found(["name"])).toEqual([
            ["lst_v1", 2, "491510000102", "name"],
            ["lst_v1", 3, "491510000103", "name"]
          ])
          expect(yield* found(["first.name"])).toEqual([
            ["lst_v1", 4, "491510000104", "first.name"],
            ["lst_v1", 5, "491510000105", "first.name"]
          ])
          expect(yield* found(["shop-id"])).toEqual([
            ["lst_v1", 6, "491510000106", "shop-id"],
            ["lst_v1", 7, "491510000107", "shop-id"]
          ])
          // Each row names the first variable (in the template's order) it lacks; the limit counts rows.
          expect(yield* found(["shop-id", "name", "first.name"])).toEqual([
            ["lst_v1", 2, "491510000102", "name"],
            ["lst_v1", 3, "491510000103", "name"],
            ["lst_v1", 4, "491510000104", "first.name"],
            ["lst_v1", 5, "491510000105", "first.name"],
            ["lst_v1", 6, "491510000106", "shop-id"],
            ["lst_v1", 7, "491510000107", "shop-id"]
          ])
          expect(yield* found(["first.name", "name"], 3)).toEqual([
            ["lst_v1", 2, "491510000102", "name"],
            ["lst_v1", 3, "491510000103", "name"],
            ["lst_v1", 4, "491510000104", "first.name"]
          ])
          expect(yield* found([])).toEqual([])
          const notAName = yield* Effect.exit(audience.missingVariables("org_v", ["lst_v1"], ["x\" or 1"], 5))
          expect(notAName._tag).toBe("Failure")
        }))

      it.effect("missing variables: the audience's order across lists, each number checked once with its first list's variables", () =>
        Effect.gen(function*() {
          yield* insertList("org_d", "lst_d1", [
            { msisdn: "491510000201", vars: { code: "A1" } },
            { msisdn: "491510000202", vars: {} },
            { msisdn: "491510000203", vars: { code: "C3" } }
          ])
          yield* insertList("org_d", "lst_d2", [
            // In lst_d1 with a code: not missing, though this occurrence has none.
            { msisdn: "491510000201", vars: {} },
            { msisdn: "491510000204", vars: { code: "" } },
            // In lst_d1 without a code: named there, once, not here.
            { msisdn: "491510000202", vars: { code: "B2" } },
            { msisdn: "491510000205", vars: {} }
          ])
          yield* insertList("org_d", "lst_d3", [
            { msisdn: "491510000206", vars: {} },
            { msisdn: "491510000205", vars: { code: "E5" } }
          ])
          const audience = yield* Audience
          const found = (lists: ReadonlyArray<string>, limit = 10) =>
            Effect.map(audience.missingVariables("org_d", lists, ["code"], limit), (rows) => rows.map((r) => [r.listId, r.pos, r.msisdn]))
          expect(yield* found(["lst_d1", "lst_d2", "lst_d3"])).toEqual([
            ["lst_d1", 2, "491510000202"],
            ["lst_d2", 2, "491510000204"],
            ["lst_d2", 4, "491510000205"],
            ["lst_d3", 1, "491510000206"]
          ])
          expect(yield* found(["lst_d1", "lst_d2", "lst_d3"], 2)).toEqual([
            ["lst_d1", 2, "491510000202"],
            ["lst_d2", 2, "491510000204"]
          ])
          // The campaign's order of the lists decides which occurrence is checked, not the lists' age.
          expect(yield* found(["lst_d3", "lst_d2", "lst_d1"])).toEqual([
            ["lst_d3", 1, "491510000206"],
            ["lst_d2", 1, "491510000201"],
            ["lst_d2", 2, "491510000204"]
          ])
          expect(yield* found(["lst_d2", "lst_d2"])).toEqual([
            ["lst_d2", 1, "491510000201"],
            ["lst_d2", 2, "491510000204"],
            ["lst_d2", 4, "491510000205"]
          ])
        }))

      it.effect("missing variables: positions far apart (SQLite checks a list in slices of positions) come in order", () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          yield* insertList("org_s", "lst_s1", [{ msisdn: "491510000400", vars: {} }])
          yield* insertList("org_s", "lst_s2", [])
          // [pos, number's last digits, vars]: 400 repeats lst_s1's contact, 402 has the code.
          const placed: ReadonlyArray<readonly [number, string, Record<string, string>]> = [
            [1, "401", {}],
            [49_999, "402", { code: "x" }],
            [50_001, "403", {}],
            [50_002, "404", {}],
            [180_000, "400", {}],
            [180_001, "405", { code: "" }],
            [1_000_000, "406", {}]
          ]
          for (const [pos, n, vars] of placed) {
            const row = { list_id: "lst_s2", pos, msisdn: `491510000${n}`, country: "DE", vars: JSON.stringify(vars), created_at: 0 }
            yield* sql`INSERT INTO contacts ${sql.insert(row)}`
          }
          const audience = yield* Audience
          const found = (limit: number) =>
            Effect.map(
              audience.missingVariables("org_s", ["lst_s1", "lst_s2"], ["code"], limit),
              (rows) => rows.map((r) => `${r.listId}:${r.pos}:${r.msisdn}`)
            )
          const all = [
            "lst_s1:1:491510000400",
            "lst_s2:1:491510000401",
            "lst_s2:50001:491510000403",
            "lst_s2:50002:491510000404",
            "lst_s2:180001:491510000405",
            "lst_s2:1000000:491510000406"
          ]
          expect(yield* found(10)).toEqual(all)
          for (const limit of [2, 3, 4, 5]) expect(yield* found(limit)).toEqual(all.slice(0, limit))
        }))

      it.effect("missing variables: another organisation's list is not read", () =>
        Effect.gen(function*() {
          yield* insertList("org_t1", "lst_t1", [{ msisdn: "491510000301", vars: { code: "A" } }])
          yield* insertList("org_t2", "lst_t2", [{ msisdn: "491510000302", vars: {} }, { msisdn: "491510000301", vars: {} }])
          const audience = yield* Audience
          expect(yield* audience.missingVariables("org_t1", ["lst_t2"], ["code"], 5)).toEqual([])
          expect(yield* audience.missingVariables("org_t1", ["lst_t2", "lst_t1"], ["code"], 5)).toEqual([])
          expect((yield* audience.missingVariables("org_t2", ["lst_t1", "lst_t2"], ["code"], 5)).map((r) => r.msisdn)).toEqual([
            "491510000302",
            "491510000301"
          ])
        }))

      it.effect("missing variables answer what filtering the audience's stream with missingVariable answers", () =>
        Effect.gen(function*() {
          // Three overlapping lists, values present, empty or absent in a fixed pseudo-random pattern.
          const row = (list: number, i: number) => {
            const n = (i * 7 + list * 3) % 11
            const vars: Record<string, string> = {}
            if (n % 3 !== 0) vars.name = n % 5 === 0 ? "" : `N${i}`
            if (n % 4 !== 1) vars["loyalty.tier"] = n === 6 ? "" : "gold"
            return { msisdn: `49151${String(i).padStart(7, "0")}`, vars }
          }
          yield* insertList("org_p", "lst_p1", Array.from({ length: 60 }, (_, i) => row(1, i * 2)))
          yield* insertList("org_p", "lst_p2", Array.from({ length: 60 }, (_, i) => row(2, i * 3)))
          yield* insertList("org_p", "lst_p3", Array.from({ length: 60 }, (_, i) => row(3, 200 - i)))
          const audience = yield* Audience
          const result = parseTemplate("Hi {{Name}}, you are {{loyalty.tier}} {{other|!}}")
          if (!("template" in result)) throw new Error("template")
          const template = result.template
          for (const lists of [["lst_p1", "lst_p2", "lst_p3"], ["lst_p3", "lst_p1", "lst_p2"]]) {
            const expected = (yield* Stream.runCollect(audience.contacts("org_p", lists)))
              .map((c) => [c.listId, c.pos, c.msisdn, missingVariable(template, c.vars)])
              .filter((r) => r[3] !== undefined)
            expect(expected.length).toBeGreaterThan(20)
            for (const limit of [1, 5, 1000]) {
              const rows = yield* audience.missingVariables("org_p", lists, template.required, limit)
              expect(rows.map((r) => [r.listId, r.pos, r.msisdn, r.variable])).toEqual(expected.slice(0, limit))
            }
          }
        }))
    })
  })

suite("SQLite", sqliteLayer)
suite("PostgreSQL", pgLayer)
