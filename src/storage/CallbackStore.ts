/**
 * The callback outbox as the deliverer and the callbacks API see it (SQLite embedded, PostgreSQL in the cluster). The
 * message store writes a row in the transaction of each move (storage/MessageStore.ts); this module claims, settles,
 * lists and replays them.
 *
 * Invariants:
 * - In order per message: only the oldest pending row (by id) of a message is ever claimed; a later move waits until
 *   the earlier one is delivered (deleted) or dead.
 * - A claim is a lease written into `next_at` (now + lease): the row stays pending, no other claim takes it until the
 *   lease runs out, and a deliverer that dies mid-way leaves it to be claimed again then (at least once). Claims
 *   re-check `state` and `next_at` in the UPDATE itself, so two claimers at once (a singleton moving nodes) never take
 *   the same row.
 * - Tenant-scoped reads and writes of the API always name both the organisation and the app.
 * - Two deliverers share the outbox by URL: rows of `smpp:` (messages submitted over SMPP that asked for receipts)
 *   are claimed only by the SMPP front of a node where their app has a receiver bound (`smppApps`); every other row
 *   only by the HTTP deliverer.
 */
import { Context, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import type { SqlError } from "effect/sql"
import { SMPP_CALLBACK_PATTERN } from "../domain/Callback.ts"
import { messageWithCauses, StoreUnavailable } from "../domain/Errors.ts"

/** A claimed callback with what its delivery needs from its app. */
export interface DueCallback {
  readonly id: number
  /** The message whose move it tells; null for an inbound message's callback (`inboundId`). */
  readonly messageId: string | null
  readonly inboundId: string | null
  readonly orgId: string | null
  readonly appId: string
  readonly url: string
  readonly body: string
  /** Attempts before this one. */
  readonly attempts: number
  /** When it was queued (or last replayed): the retry window is counted from here. */
  readonly createdAt: number
  /** The app's secrets in force, the current one first (the previous one during a rotation); empty when it has none. */
  readonly secrets: ReadonlyArray<string>
  /** The app was deleted (or never existed): nobody is owed this callback any more. */
  readonly appGone: boolean
}

export interface ClaimOptions {
  /** Most rows in all. */
  readonly limit: number
  /** Most rows of one app. */
  readonly perApp: number
  /** Claimed rows are not due again before this time (epoch ms). */
  readonly leaseUntil: number
  /** Apps already at their concurrency: none of their rows are claimed. */
  readonly skipApps?: ReadonlyArray<string>
  /**
   * Absent: the HTTP deliverer's claim, every row but `smpp:` ones. Set: the SMPP front's, `smpp:` rows of these apps
   * only (those with a receiver bound on this node); empty claims nothing.
   */
  readonly smppApps?: ReadonlyArray<string>
}

/** `failing`: pending and tried at least once; `dead`: given up on, waiting for a replay. */
export type ListedState = "failing" | "dead"

export interface CallbackRecord {
  readonly id: number
  readonly messageId: string | null
  readonly inboundId: string | null
  readonly url: string
  readonly body: string
  readonly state: "pending" | "dead"
  readonly attempts: number
  /** When it is tried next (pending); when it was given up on (dead). */
  readonly nextAt: number
  readonly lastError: string | null
  readonly lastStatus: number | null
  readonly createdAt: number
}

export interface ListQuery {
  /** Absent: failing and dead. */
  readonly state?: ListedState | undefined
  /** The last id of the previous page: rows older than it (newest first). */
  readonly cursor?: number | undefined
  readonly limit: number
}

/** What a replay puts back: these ids (dead or failing ones of the app), or every dead one of the app. */
export type ReplayTarget =
  | { readonly _tag: "Ids"; readonly ids: ReadonlyArray<number> }
  | { readonly _tag: "AllDead" }

export class CallbackStore extends Context.Service<CallbackStore, {
  /**
   * Claims up to `limit` pending rows due at `now`, only the oldest pending row of each message, oldest due first, at
   * most `perApp` of one app; each is leased until `leaseUntil`. With each, its app's secrets in force at `now`.
   */
  readonly due: (now: number, options: ClaimOptions) => Effect.Effect<ReadonlyArray<DueCallback>, StoreUnavailable>
  /** Delivered: the rows go. */
  readonly delivered: (ids: ReadonlyArray<number>) => Effect.Effect<void, StoreUnavailable>
  /** A failed attempt: tried again at `nextAt`. */
  readonly failed: (id: number, outcome: {
    readonly attempts: number
    readonly nextAt: number
    readonly error: string
    readonly status: number | null
  }) => Effect.Effect<void, StoreUnavailable>
  /** Given up on (its retry window is over, or its app is gone): kept for the API until replayed or purged with its message. */
  readonly dead: (id: number, outcome: {
    readonly attempts: number
    readonly at: number
    readonly error: string
    readonly status: number | null
  }) => Effect.Effect<void, StoreUnavailable>
  /**
   * `smpp:` rows still pending that were queued before `queuedBefore` (no receiver bound took them in their retry
   * window) made dead at `now`; answers how many.
   */
  readonly expireSmpp: (queuedBefore: number, now: number) => Effect.Effect<number, StoreUnavailable>
  /** Leases given back unused (the deliverer stopping): due again at `now`. */
  readonly release: (ids: ReadonlyArray<number>, now: number) => Effect.Effect<void, StoreUnavailable>
  /** An app's failing and dead callbacks, newest first. */
  readonly list: (orgId: string, appId: string, query: ListQuery) => Effect.Effect<ReadonlyArray<CallbackRecord>, StoreUnavailable>
  /**
   * Puts dead or failing callbacks of the app back: pending, no attempts, due at `now`, a fresh retry window from
   * `now`. Answers how many were requeued (ids of other apps, delivered or unknown ones count nothing).
   */
  readonly replay: (orgId: string, appId: string, target: ReplayTarget, now: number) => Effect.Effect<number, StoreUnavailable>
  /** Pending rows due at `now` and when the oldest of them became due (undefined: none). */
  readonly backlog: (now: number) => Effect.Effect<{ readonly due: number; readonly oldestDueAt: number | undefined }, StoreUnavailable>
}>()("smsgw/storage/CallbackStore") {
  static readonly layer = Layer.effect(CallbackStore, Effect.suspend(() => make))
}

const storeError = (error: SqlError.SqlError) => new StoreUnavailable({ message: messageWithCauses(error), cause: error })

type Int = number | string | bigint

interface ClaimedRow {
  readonly id: Int
  readonly message_id: string | null
  readonly inbound_id: string | null
  readonly org_id: string | null
  readonly app_id: string
  readonly url: string
  readonly body: string
  readonly attempts: Int
  readonly created_at: Int
}

interface AppSecretsRow {
  readonly id: string
  readonly deleted_at: Int | null
  readonly callback_secret: string | null
  readonly callback_secret_previous: string | null
  readonly callback_secret_previous_until: Int | null
}

interface RecordRow {
  readonly id: Int
  readonly message_id: string | null
  readonly inbound_id: string | null
  readonly url: string
  readonly body: string
  readonly state: string
  readonly attempts: Int
  readonly next_at: Int
  readonly last_error: string | null
  readonly last_status: Int | null
  readonly created_at: Int
}

/** How many of the oldest due rows a claim ranks per app: bounded, so a claim never walks a large backlog whole. */
const claimWindow = (limit: number) => Math.max(limit * 8, 200)

/** Ids per statement of the API's replay and of settling: well under both databases' parameter limits. */
const idChunk = 500

const chunks = <A>(items: ReadonlyArray<A>, size: number): Array<ReadonlyArray<A>> => {
  const out: Array<ReadonlyArray<A>> = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

const toRecord = (row: RecordRow): CallbackRecord => ({
  id: Number(row.id),
  messageId: row.message_id,
  inboundId: row.inbound_id,
  url: row.url,
  body: row.body,
  state: row.state === "dead" ? "dead" : "pending",
  attempts: Number(row.attempts),
  nextAt: Number(row.next_at),
  lastError: row.last_error,
  lastStatus: row.last_status === null ? null : Number(row.last_status),
  createdAt: Number(row.created_at)
})

/** The secrets that sign at `now`: the current one, then the previous one while its grace lasts. */
const secretsOf = (app: AppSecretsRow | undefined, now: number): ReadonlyArray<string> => {
  if (app === undefined || app.callback_secret === null) return []
  const until = app.callback_secret_previous_until
  return app.callback_secret_previous !== null && until !== null && Number(until) > now
    ? [app.callback_secret, app.callback_secret_previous]
    : [app.callback_secret]
}

export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  const due = (now: number, options: ClaimOptions) =>
    Effect.gen(function*() {
      if (options.limit <= 0) return []
      if (options.smppApps !== undefined && options.smppApps.length === 0) return []
      const skipped = options.skipApps !== undefined && options.skipApps.length > 0
        ? sql`AND o.app_id NOT IN ${sql.in(options.skipApps)}`
        : sql``
      const skip = options.smppApps === undefined
        ? sql`AND o.url NOT LIKE ${SMPP_CALLBACK_PATTERN} ${skipped}`
        : sql`AND o.url LIKE ${SMPP_CALLBACK_PATTERN} AND o.app_id IN ${sql.in(options.smppApps)} ${skipped}`
      // Ranked within the oldest due rows only; the UPDATE re-checks the row, so a row another claimer took in the
      // meantime (its next_at moved on) is skipped rather than taken twice.
      const rows = yield* sql<ClaimedRow>`UPDATE callback_outbox SET next_at = ${options.leaseUntil}
        WHERE id IN (
          SELECT r.id FROM (
            SELECT c.id, c.next_at, ROW_NUMBER() OVER (PARTITION BY c.app_id ORDER BY c.next_at, c.id) AS nth
            FROM (
              SELECT o.id, o.app_id, o.next_at FROM callback_outbox o
              WHERE o.state = 'pending' AND o.next_at <= ${now} ${skip}
                AND NOT EXISTS (
                  SELECT 1 FROM callback_outbox e
                  WHERE e.message_id = o.message_id AND e.state = 'pending' AND e.id < o.id
                )
              ORDER BY o.next_at, o.id
              LIMIT ${claimWindow(options.limit)}
            ) c
          ) r
          WHERE r.nth <= ${options.perApp}
          ORDER BY r.next_at, r.id
          LIMIT ${options.limit}
        ) AND state = 'pending' AND next_at <= ${now}
        RETURNING id, message_id, inbound_id, org_id, app_id, url, body, attempts, created_at`
      if (rows.length === 0) return []
      const appIds = [...new Set(rows.map((r) => r.app_id))]
      const apps = yield* sql<AppSecretsRow>`SELECT id, deleted_at, callback_secret, callback_secret_previous,
          callback_secret_previous_until
        FROM apps WHERE ${sql.in("id", appIds)}`
      const byId = new Map(apps.map((a) => [a.id, a]))
      return rows
        .map((row): DueCallback => {
          const app = byId.get(row.app_id)
          return {
            id: Number(row.id),
            messageId: row.message_id,
  inboundId: row.inbound_id,
            orgId: row.org_id,
            appId: row.app_id,
            url: row.url,
            body: row.body,
            attempts: Number(row.attempts),
            createdAt: Number(row.created_at),
            secrets: secretsOf(app, now),
            appGone: app === undefined || app.deleted_at !== null
          }
        })
        .sort((a, b) => a.id - b.id)
    }).pipe(Effect.mapError(storeError))

  const delivered = (ids: ReadonlyArray<number>) =>
    Effect.forEach(chunks(ids, idChunk), (slice) => sql`DELETE FROM callback_outbox WHERE ${sql.in("id", slice)}`, {
      discard: true
    }).pipe(Effect.mapError(storeError))

  const failed = (id: number, o: { readonly attempts: number; readonly nextAt: number; readonly error: string; readonly status: number | null }) =>
    sql`UPDATE callback_outbox SET attempts = ${o.attempts}, next_at = ${o.nextAt}, last_error = ${o.error},
        last_status = ${o.status}
      WHERE id = ${id} AND state = 'pending'`.pipe(Effect.asVoid, Effect.mapError(storeError))

  const dead = (id: number, o: { readonly attempts: number; readonly at: number; readonly error: string; readonly status: number | null }) =>
    sql`UPDATE callback_outbox SET state = 'dead', attempts = ${o.attempts}, next_at = ${o.at}, last_error = ${o.error},
        last_status = ${o.status}
      WHERE id = ${id} AND state = 'pending'`.pipe(Effect.asVoid, Effect.mapError(storeError))

  const expireSmpp = (queuedBefore: number, now: number) =>
    sql<{ id: Int }>`UPDATE callback_outbox SET state = 'dead', next_at = ${now},
        last_error = ${"no receiver of its app was bound in its retry window"}
      WHERE url LIKE ${SMPP_CALLBACK_PATTERN} AND state = 'pending' AND created_at < ${queuedBefore} AND next_at <= ${now}
      RETURNING id`.pipe(Effect.map((rows) => rows.length), Effect.mapError(storeError))

  const release = (ids: ReadonlyArray<number>, now: number) =>
    Effect.forEach(
      chunks(ids, idChunk),
      (slice) => sql`UPDATE callback_outbox SET next_at = ${now} WHERE ${sql.in("id", slice)} AND state = 'pending'`,
      { discard: true }
    ).pipe(Effect.mapError(storeError))

  const stateCondition = (state: ListedState | undefined) =>
    state === "dead"
      ? sql`state = 'dead'`
      : state === "failing"
      ? sql`state = 'pending' AND attempts > 0`
      : sql`(state = 'dead' OR (state = 'pending' AND attempts > 0))`

  const list = (orgId: string, appId: string, query: ListQuery) =>
    sql<RecordRow>`SELECT id, message_id, inbound_id, url, body, state, attempts, next_at, last_error, last_status, created_at
      FROM callback_outbox
      WHERE app_id = ${appId} AND org_id = ${orgId} AND ${stateCondition(query.state)}
        ${query.cursor !== undefined ? sql`AND id < ${query.cursor}` : sql``}
      ORDER BY id DESC
      LIMIT ${query.limit}`.pipe(Effect.map((rows) => rows.map(toRecord)), Effect.mapError(storeError))

  const requeue = sql`state = 'pending', attempts = 0`

  const replay = (orgId: string, appId: string, target: ReplayTarget, now: number) =>
    Effect.gen(function*() {
      if (target._tag === "AllDead") {
        const rows = yield* sql<{ id: Int }>`UPDATE callback_outbox SET ${requeue}, next_at = ${now}, created_at = ${now}
          WHERE app_id = ${appId} AND org_id = ${orgId} AND state = 'dead'
          RETURNING id`
        return rows.length
      }
      let total = 0
      for (const slice of chunks([...new Set(target.ids)], idChunk)) {
        const rows = yield* sql<{ id: Int }>`UPDATE callback_outbox SET ${requeue}, next_at = ${now}, created_at = ${now}
          WHERE ${sql.in("id", slice)} AND app_id = ${appId} AND org_id = ${orgId}
            AND (state = 'dead' OR attempts > 0)
          RETURNING id`
        total += rows.length
      }
      return total
    }).pipe(Effect.mapError(storeError))

  const backlog = (now: number) =>
    sql<{ n: Int; oldest: Int | null }>`SELECT COUNT(*) AS n, MIN(next_at) AS oldest FROM callback_outbox
      WHERE state = 'pending' AND next_at <= ${now}`.pipe(
      Effect.map(([row]) => ({
        due: Number(row?.n ?? 0),
        oldestDueAt: row?.oldest === null || row?.oldest === undefined ? undefined : Number(row.oldest)
      })),
      Effect.mapError(storeError)
    )

  return CallbackStore.of({ due, delivered, failed, dead, expireSmpp, release, list, replay, backlog })
})
