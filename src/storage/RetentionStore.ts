/**
 * What retention deletes (SQLite embedded, PostgreSQL in the cluster): old messages with their parts and events (by
 * cascade), old audit entries, and the bookkeeping of CDR batches whose messages are gone. Bounded batches, each its
 * own short statement, so a purge never holds the writers up for long.
 */
import { Context, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import type { SqlError } from "effect/sql"
import { messageWithCauses, StoreUnavailable } from "../domain/Errors.ts"

export class RetentionStore extends Context.Service<RetentionStore, {
  /**
   * Deletes up to `limit` messages accepted before `before` (epoch ms), oldest first. With `exportedBefore`, only those
   * whose CDR batch was marked done before that time (never one still due or being written, nor one a slow second
   * exporter might still be rewriting). Answers how many went.
   */
  readonly purgeMessages: (before: number, limit: number, exportedBefore: number | undefined) => Effect.Effect<number, StoreUnavailable>
  readonly purgeAudit: (before: number, limit: number) => Effect.Effect<number, StoreUnavailable>
  /** Done batches whose messages are all gone; the newest batch stays, so numbering never starts again. */
  readonly purgeBatches: Effect.Effect<void, StoreUnavailable>
}>()("smsgw/storage/RetentionStore") {
  static readonly layer = Layer.effect(RetentionStore, Effect.suspend(() => make))
}

const storeError = (error: SqlError.SqlError) => new StoreUnavailable({ message: messageWithCauses(error), cause: error })

export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  /**
   * Exported = in a batch below the oldest one not done long enough: batches are numbered in order, so that is one
   * range on the message (its batch number) next to the walk by age, a plan no stale statistic turns into a scan of
   * every batch.
   */
  const purgeMessages = (before: number, limit: number, exportedBefore: number | undefined) =>
    Effect.gen(function*() {
      let exported = sql``
      if (exportedBefore !== undefined) {
        const [row] = yield* sql<{ below: number | string | null }>`SELECT COALESCE(
            (SELECT MIN(id) FROM cdr_batches WHERE state <> 'done' OR done_at >= ${exportedBefore}),
            (SELECT MAX(id) FROM cdr_batches) + 1, 0) AS below`
        exported = sql`AND m.cdr_batch < ${Number(row?.below ?? 0)}`
      }
      const rows = yield* sql<{ id: string }>`DELETE FROM messages WHERE id IN (
          SELECT m.id FROM messages m WHERE m.created_at < ${before} ${exported} ORDER BY m.created_at LIMIT ${limit}
        ) RETURNING id`
      return rows.length
    }).pipe(Effect.mapError(storeError))

  const purgeAudit = (before: number, limit: number) =>
    sql<{ id: string }>`DELETE FROM audit_log WHERE id IN (
        SELECT id FROM audit_log WHERE at < ${before} ORDER BY at LIMIT ${limit}
      ) RETURNING id`.pipe(Effect.map((rows) => rows.length), Effect.mapError(storeError))

  const purgeBatches = sql`DELETE FROM cdr_batches WHERE state = 'done'
      AND id < (SELECT MAX(id) FROM cdr_batches)
      AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.cdr_batch = cdr_batches.id)`.pipe(
    Effect.asVoid,
    Effect.mapError(storeError)
  )

  return RetentionStore.of({ purgeMessages, purgeAudit, purgeBatches })
})
