/**
 * The contact policy's decisions counted per rule, for the operators' screens: how many messages each rule let
 * through and how many it refused, summed over every node of the deployment.
 *
 * Invariants:
 * - The hot path only adds to a map in memory (`admitted`, `refused`: synchronous, no effect, no I/O).
 * - Every `flushIntervalMs` a node adds what it counted to `policy_rule_counts`, one row per (minute, rule, result),
 *   in one upsert (`count = count + excluded.count`): nodes never overwrite each other, so the sums are cluster-wide.
 *   A write that fails is kept and added to the next one; a node that dies loses at most its last interval.
 * - Minutes are wall-clock minutes (epoch ms / 60,000) of the decision: counters are observations, not policy, so
 *   they do not follow the policy's test clock.
 * - Rows older than `retentionMinutes` are deleted (by any node, about once an hour): what a window can ask for.
 *
 * `admitted` counts a message for every rule that looked at it (applied to its organisation, app and class) and
 * let it pass; `refused` counts it for the one rule that refused it, under the reason (`blacklisted`, `quiet_hours`,
 * `duplicate`, `frequency_cap`) or `duplicate_returned` (a dedup rule in `return_first` mode answered the first
 * message). Every message is also counted once under the empty rule id: the policy's totals.
 */
import { Context, Duration, Effect, Layer, Schema, Semaphore } from "effect"
import { SqlClient } from "effect/sql"
import type { SqlError } from "effect/sql"
import { messageWithCauses } from "../domain/Errors.ts"

export interface RuleCount {
  readonly ruleId: string
  /** `admitted`, a refusal reason, or `duplicate_returned`. */
  readonly result: string
  readonly count: number
}

export class RuleCountsUnavailable extends Schema.TaggedError<RuleCountsUnavailable>()("RuleCountsUnavailable", {
  message: Schema.String
}) {}

/** Counts kept for a node whose writes fail, at most (one per minute, rule and result): then the oldest go. */
const MAX_PENDING = 50_000
/** Rows per upsert statement: 4 parameters each. */
const WRITE_BATCH = 250
const MINUTE = 60_000

export class RuleCounts extends Context.Service<RuleCounts, {
  /** A message the policy admitted: every rule in `ruleIds` looked at it (none: an empty array). */
  readonly admitted: (ruleIds: ReadonlyArray<string>, at: number) => void
  /** A message refused by `ruleId`, with the reason. */
  readonly refused: (ruleId: string, result: string, at: number) => void
  /** The sums over every node from `sinceMs` (rounded down to its minute) until now, per rule and result. */
  readonly totals: (sinceMs: number) => Effect.Effect<ReadonlyArray<RuleCount>, RuleCountsUnavailable>
  /** Writes what this node counted now (tests; a closing layer does it too). */
  readonly flush: Effect.Effect<void>
}>()("smsgw/policy/RuleCounts") {
  static readonly layer = (options: { readonly flushIntervalMs: number; readonly retentionMinutes: number }) =>
    Layer.effect(RuleCounts, make(options))
}

interface Pending {
  readonly minute: number
  readonly ruleId: string
  readonly result: string
  count: number
}

type Int = number | string | bigint

type Tally = Map<number, Map<string, Map<string, number>>>

const unavailable = (error: SqlError.SqlError) => new RuleCountsUnavailable({ message: messageWithCauses(error) })

const make = (options: { readonly flushIntervalMs: number; readonly retentionMinutes: number }) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    // minute → rule → result → count: three lookups and no allocation per count on the hot path.
    let pending: Tally = new Map()
    let size = 0

    const add = (minute: number, ruleId: string, result: string, n: number) => {
      let rules = pending.get(minute)
      if (rules === undefined) {
        rules = new Map()
        pending.set(minute, rules)
      }
      let results = rules.get(ruleId)
      if (results === undefined) {
        results = new Map()
        rules.set(ruleId, results)
      }
      const count = results.get(result)
      if (count === undefined) size++
      results.set(result, (count ?? 0) + n)
    }

    const rowsOf = (tally: Tally): Array<Pending> => {
      const rows: Array<Pending> = []
      for (const [minute, rules] of tally) {
        for (const [ruleId, results] of rules) {
          for (const [result, count] of results) rows.push({ minute, ruleId, result, count })
        }
      }
      return rows
    }

    const admitted = (ruleIds: ReadonlyArray<string>, at: number) => {
      const minute = Math.floor(at / MINUTE)
      add(minute, "", "admitted", 1)
      for (const id of ruleIds) add(minute, id, "admitted", 1)
    }

    const refused = (ruleId: string, result: string, at: number) => {
      const minute = Math.floor(at / MINUTE)
      add(minute, "", result, 1)
      add(minute, ruleId, result, 1)
    }

    const row = (r: Pending) => ({ minute: r.minute, rule_id: r.ruleId, result: r.result, count: r.count })
    const write = (rows: ReadonlyArray<Pending>) =>
      sql.withTransaction(Effect.gen(function*() {
        for (let i = 0; i < rows.length; i += WRITE_BATCH) {
          const [first, ...rest] = rows.slice(i, i + WRITE_BATCH)
          if (first === undefined) break
          yield* sql`INSERT INTO policy_rule_counts ${sql.insert([row(first), ...rest.map(row)])}
            ON CONFLICT (minute, rule_id, result) DO UPDATE SET count = policy_rule_counts.count + excluded.count`
        }
      }))

    let failing = false
    // One write at a time: when `flush` returns, everything counted before it was called is written (or kept).
    const writing = Semaphore.makeUnsafe(1)
    const flush = writing.withPermit(Effect.suspend(() => {
      if (size === 0) return Effect.void
      const taken = rowsOf(pending)
      pending = new Map()
      size = 0
      return write(taken).pipe(
        Effect.tap(() => {
          if (!failing) return Effect.void
          failing = false
          return Effect.logInfo("policy rule counts written again")
        }),
        Effect.catch((error) =>
          Effect.suspend(() => {
            // Kept for the next write, added to what came meanwhile; beyond the bound the oldest minutes go.
            for (const p of taken) add(p.minute, p.ruleId, p.result, p.count)
            for (const minute of [...pending.keys()].sort((a, b) => a - b)) {
              if (size <= MAX_PENDING) break
              for (const results of pending.get(minute)?.values() ?? []) size -= results.size
              pending.delete(minute)
            }
            const first = !failing
            failing = true
            return first
              ? Effect.logWarning("policy rule counts not written; kept for the next attempt").pipe(
                Effect.annotateLogs({ error: messageWithCauses(error), pending: size })
              )
              : Effect.void
          })
        )
      )
    }))

    let lastPrune = 0
    const prune = Effect.suspend(() => {
      const now = Date.now()
      if (now - lastPrune < 60 * MINUTE) return Effect.void
      lastPrune = now
      const oldest = Math.floor(now / MINUTE) - options.retentionMinutes
      return sql`DELETE FROM policy_rule_counts WHERE minute < ${oldest}`.pipe(
        Effect.catch((error) =>
          Effect.logWarning("old policy rule counts not deleted").pipe(Effect.annotateLogs({ error: messageWithCauses(error) }))
        ),
        Effect.asVoid
      )
    })

    yield* Effect.andThen(flush, prune).pipe(
      Effect.delay(Duration.millis(options.flushIntervalMs)),
      Effect.forever,
      Effect.forkScoped
    )
    // What was counted since the last write is not lost with a clean stop.
    yield* Effect.addFinalizer(() => flush)

    const totals = (sinceMs: number) =>
      sql<{ readonly rule_id: string; readonly result: string; readonly n: Int }>`
        SELECT rule_id, result, SUM(count) AS n FROM policy_rule_counts
        WHERE minute >= ${Math.floor(sinceMs / MINUTE)} GROUP BY rule_id, result`.pipe(
        Effect.map((rows) => rows.map((r): RuleCount => ({ ruleId: r.rule_id, result: r.result, count: Number(r.n) }))),
        Effect.mapError(unavailable)
      )

    return RuleCounts.of({ admitted, refused, totals, flush })
  })
