/**
 * Newest-first listings paged by a cursor over (created_at, id): rows created in the same millisecond are ordered by
 * id, so a page boundary between two of them neither skips nor repeats one. Tables listed this way have both columns.
 */
import type { SqlClient } from "effect/sql"

/** Where the previous page ended: its last row's creation time (epoch ms) and, for a stable cursor, its id. */
export interface Before {
  readonly at: number
  /** Absent: every row created strictly before `at` (the older, time-only cursor). */
  readonly id?: string | undefined
}

/** The condition (with a leading AND) selecting rows after `before` in `ORDER BY created_at DESC, id DESC`. */
export const olderThan = (sql: SqlClient.SqlClient, before: Before | undefined) =>
  before === undefined
    ? sql``
    : before.id === undefined
    ? sql`AND created_at < ${before.at}`
    : sql`AND (created_at < ${before.at} OR (created_at = ${before.at} AND id < ${before.id}))`
