/** The per-rule counters of the contact policy: each node adds its counts, the sums are the deployment's. */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import type { Scope } from "effect"
import type { SqlClient } from "effect/sql"
import { migrate } from "../../src/layers/Migrations.ts"
import { RuleCounts } from "../../src/policy/RuleCounts.ts"
import { pgLayer, sqliteLayer } from "../fixtures/Databases.ts"

/** A node's counter service; flushed by hand (the interval is long), and on close. */
const node = Effect.map(
  Layer.build(RuleCounts.layer({ flushIntervalMs: 60_000, retentionMinutes: 60 })),
  (context) => Context.get(context, RuleCounts)
)

const MINUTE = 60_000
/** A recent minute: older rows than the retention (an hour here) are deleted by the node's pruning. */
const T = Math.floor(Date.now() / MINUTE) * MINUTE - 10 * MINUTE

const byKey = (rows: ReadonlyArray<{ ruleId: string; result: string; count: number }>) =>
  Object.fromEntries(rows.map((r) => [`${r.ruleId}|${r.result}`, r.count]))

const suite = (name: string, database: Layer.Layer<SqlClient.SqlClient>) =>
  describe(`RuleCounts on ${name}`, () => {
    const Db = Layer.effectDiscard(Effect.orDie(migrate)).pipe(Layer.provideMerge(database))
    const onFreshDb = <A, E>(effect: Effect.Effect<A, E, SqlClient.SqlClient | Scope.Scope>) =>
      effect.pipe(Effect.scoped, Effect.provide(Db))

    it.effect("two nodes' counts add up per rule and result; totals count each message once; the window starts at its minute", () =>
      onFreshDb(Effect.gen(function*() {
        const a = yield* node
        const b = yield* node
        a.admitted(["dnd", "cap"], T)
        a.admitted(["dnd", "cap"], T + 10_000)
        b.admitted(["dnd", "cap"], T + 20_000)
        b.refused("cap", "frequency_cap", T + 30_000)
        a.refused("dnd", "blacklisted", T - 5 * MINUTE)
        a.admitted([], T)
        yield* a.flush
        yield* b.flush
        // Flushing again adds nothing twice.
        yield* a.flush
        b.admitted(["dnd", "cap"], T + 40_000)
        yield* b.flush
        expect(byKey(yield* a.totals(T + 59_000))).toEqual({
          "|admitted": 5,
          "|frequency_cap": 1,
          "dnd|admitted": 4,
          "cap|admitted": 4,
          "cap|frequency_cap": 1
        })
        expect(byKey(yield* b.totals(T - 5 * MINUTE))).toMatchObject({ "|blacklisted": 1, "dnd|blacklisted": 1, "|admitted": 5 })
      })))
  })

suite("SQLite", sqliteLayer)
suite("PostgreSQL", pgLayer)
