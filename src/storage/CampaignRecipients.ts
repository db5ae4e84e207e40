/**
 * The recipients of a started campaign and its cursor, as its actor reads and writes them.
 *
 * Invariants:
 * - The audience is copied from the lists once (`materialise`): in the campaign's list order, then each list's
 *   upload order, a number in several lists kept at its first place, positions renumbered 0…n-1. A second call (a
 *   new actor after a crash) copies nothing and answers the count already there.
 * - Every recipient below `campaigns.cursor_pos` has left `pending`; outcomes and the cursor are written in one
 *   transaction (`record`), so a crash never leaves the cursor past a recipient whose outcome was not written.
 * - Only this module and the campaign's actor write `campaign_recipients`.
 */
import { Context, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import type { SqlError } from "effect/sql"
import type { RecipientState } from "../domain/Campaign.ts"
import { messageWithCauses, StoreUnavailable } from "../domain/Errors.ts"

/** A recipient as the actor reads it. */
export interface Recipient {
  readonly pos: number
  readonly msisdn: string
  readonly country: string | undefined
  /** Template variables, keys in lower case. */
  readonly vars: Readonly<Record<string, string>>
  readonly state: RecipientState
  /** Submissions tried so far: the message id of the next one is derived from it. */
  readonly attempts: number
}

/** What happened to a recipient: its new state, and what explains it. */
export interface RecipientOutcome {
  readonly pos: number
  readonly state: RecipientState
  readonly attempts: number
  readonly messageId?: string | undefined
  readonly reason?: string | undefined
  readonly ruleId?: string | undefined
  /** Deferred: when to try again (policy clock, epoch ms). */
  readonly nextAt?: number | undefined
}

/** Recipients counted by state and reason (reason empty where there is none). */
export interface RecipientCount {
  readonly state: RecipientState
  readonly reason: string
  readonly count: number
}

export class CampaignRecipients extends Context.Service<CampaignRecipients, {
  /** Copies the audience of the campaign's lists once (see the invariants); answers the number of recipients. */
  readonly materialise: (campaign: {
    readonly id: string
    readonly orgId: string
    readonly lists: ReadonlyArray<string>
  }) => Effect.Effect<number, StoreUnavailable>
  /** The campaign's start time (epoch ms; undefined: as soon as started). */
  readonly startTime: (campaignId: string) => Effect.Effect<number | undefined, StoreUnavailable>
  /** The persisted cursor: the position of the next recipient not yet taken. */
  readonly cursor: (campaignId: string) => Effect.Effect<number, StoreUnavailable>
  /** Up to `limit` pending recipients from position `from` on, in order. */
  readonly page: (campaignId: string, from: number, limit: number) => Effect.Effect<ReadonlyArray<Recipient>, StoreUnavailable>
  /** Deferred recipients whose time has come (`next_at` ≤ `now`), earliest first. */
  readonly due: (campaignId: string, now: number, limit: number) => Effect.Effect<ReadonlyArray<Recipient>, StoreUnavailable>
  /** Deferred recipients left and the earliest `next_at` among them. */
  readonly deferred: (campaignId: string) => Effect.Effect<{ readonly count: number; readonly nextAt: number | undefined }, StoreUnavailable>
  /** Outcomes, and the cursor moved forward to `cursor` (never back), in one transaction. */
  readonly record: (
    campaignId: string,
    outcomes: ReadonlyArray<RecipientOutcome>,
    cursor: number | undefined
  ) => Effect.Effect<void, StoreUnavailable>
  /** Which of `ids` are stored messages: after a crash, those of a page were accepted and must not be sent again. */
  readonly existing: (ids: ReadonlyArray<string>) => Effect.Effect<ReadonlySet<string>, StoreUnavailable>
  readonly counts: (campaignId: string) => Effect.Effect<ReadonlyArray<RecipientCount>, StoreUnavailable>
}>()("smsgw/storage/CampaignRecipients") {
  static readonly layer = Layer.effect(CampaignRecipients, Effect.suspend(() => make))
}

type Int = number | string | bigint

interface Row {
  readonly pos: Int
  readonly msisdn: string
  readonly country: string | null
  readonly vars: string
  readonly state: string
  readonly attempts: Int
}

const recipientOf = (r: Row): Recipient => ({
  pos: Number(r.pos),
  msisdn: r.msisdn,
  country: r.country ?? undefined,
  vars: JSON.parse(r.vars) as Record<string, string>,
  state: r.state as RecipientState,
  attempts: Number(r.attempts)
})

const failed = (error: SqlError.SqlError) => new StoreUnavailable({ message: messageWithCauses(error), cause: error })

const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  const count = (campaignId: string) =>
    sql<{ readonly n: Int }>`SELECT COUNT(*) AS n FROM campaign_recipients WHERE campaign_id = ${campaignId}`.pipe(
      Effect.map((rows) => Number(rows[0]?.n ?? 0))
    )

  const materialise = (campaign: { readonly id: string; readonly orgId: string; readonly lists: ReadonlyArray<string> }) =>
    Effect.gen(function*() {
      const already = yield* count(campaign.id)
      if (already > 0 || campaign.lists.length === 0) return already
      const now = Date.now()
      // The list's place in the campaign orders the lists; a number's first place wins.
      const listOrder = sql`CASE c.list_id ${sql.join(" ", false)(campaign.lists.map((list, i) => sql`WHEN ${list} THEN ${i}`))} END`
      yield* sql`INSERT INTO campaign_recipients (campaign_id, pos, msisdn, country, vars, state, attempts, updated_at)
        SELECT ${campaign.id}, ROW_NUMBER() OVER (ORDER BY t.li, t.pos) - 1, t.msisdn, t.country, t.vars, 'pending', 0, ${now}
        FROM (
          SELECT c.msisdn, c.country, c.vars, c.pos, ${listOrder} AS li,
            ROW_NUMBER() OVER (PARTITION BY c.msisdn ORDER BY ${listOrder}, c.pos) AS rn
          FROM contacts c JOIN contact_lists l ON l.id = c.list_id
          WHERE c.list_id IN ${sql.in(campaign.lists)} AND l.org_id = ${campaign.orgId}
        ) t WHERE t.rn = 1`
      const audience = yield* count(campaign.id)
      yield* sql`UPDATE campaigns SET audience = ${audience}, cursor_pos = 0 WHERE id = ${campaign.id}`
      return audience
    }).pipe(sql.withTransaction, Effect.mapError(failed))

  const startTime = (campaignId: string) =>
    sql<{ readonly start_time: Int | null }>`SELECT start_time FROM campaigns WHERE id = ${campaignId}`.pipe(
      Effect.map((rows) => {
        const t = rows[0]?.start_time
        return t === null || t === undefined ? undefined : Number(t)
      }),
      Effect.mapError(failed)
    )

  const cursor = (campaignId: string) =>
    sql<{ readonly cursor_pos: Int }>`SELECT cursor_pos FROM campaigns WHERE id = ${campaignId}`.pipe(
      Effect.map((rows) => Number(rows[0]?.cursor_pos ?? 0)),
      Effect.mapError(failed)
    )

  const page = (campaignId: string, from: number, limit: number) =>
    sql<Row>`SELECT pos, msisdn, country, vars, state, attempts FROM campaign_recipients
      WHERE campaign_id = ${campaignId} AND pos >= ${from} AND state = 'pending' ORDER BY pos LIMIT ${limit}`.pipe(
      Effect.map((rows) => rows.map(recipientOf)),
      Effect.mapError(failed)
    )

  const due = (campaignId: string, now: number, limit: number) =>
    sql<Row>`SELECT pos, msisdn, country, vars, state, attempts FROM campaign_recipients
      WHERE campaign_id = ${campaignId} AND state = 'deferred' AND next_at <= ${now} ORDER BY next_at, pos LIMIT ${limit}`.pipe(
      Effect.map((rows) => rows.map(recipientOf)),
      Effect.mapError(failed)
    )

  const deferred = (campaignId: string) =>
    sql<{ readonly n: Int; readonly next_at: Int | null }>`SELECT COUNT(*) AS n, MIN(next_at) AS next_at
      FROM campaign_recipients WHERE campaign_id = ${campaignId} AND state = 'deferred'`.pipe(
      Effect.map((rows) => {
        const r = rows[0]
        return { count: Number(r?.n ?? 0), nextAt: r?.next_at === null || r?.next_at === undefined ? undefined : Number(r.next_at) }
      }),
      Effect.mapError(failed)
    )

  const record = (campaignId: string, outcomes: ReadonlyArray<RecipientOutcome>, to: number | undefined) =>
    Effect.gen(function*() {
      const now = Date.now()
      for (const o of outcomes) {
        yield* sql`UPDATE campaign_recipients SET state = ${o.state}, attempts = ${o.attempts},
          message_id = ${o.messageId ?? null}, reason = ${o.reason ?? null}, rule_id = ${o.ruleId ?? null},
          next_at = ${o.nextAt ?? null}, updated_at = ${now}
          WHERE campaign_id = ${campaignId} AND pos = ${o.pos}`
      }
      if (to !== undefined) yield* sql`UPDATE campaigns SET cursor_pos = ${to} WHERE id = ${campaignId} AND cursor_pos < ${to}`
    }).pipe(sql.withTransaction, Effect.mapError(failed))

  const existing = (ids: ReadonlyArray<string>) =>
    ids.length === 0
      ? Effect.succeed(new Set<string>())
      : sql<{ readonly id: string }>`SELECT id FROM messages WHERE id IN ${sql.in(ids)}`.pipe(
        Effect.map((rows) => new Set(rows.map((r) => r.id))),
        Effect.mapError(failed)
      )

  const counts = (campaignId: string) =>
    sql<{ readonly state: string; readonly reason: string | null; readonly n: Int }>`
      SELECT state, reason, COUNT(*) AS n FROM campaign_recipients WHERE campaign_id = ${campaignId} GROUP BY state, reason`.pipe(
      Effect.map((rows) => rows.map((r): RecipientCount => ({ state: r.state as RecipientState, reason: r.reason ?? "", count: Number(r.n) }))),
      Effect.mapError(failed)
    )

  return CampaignRecipients.of({ materialise, startTime, cursor, page, due, deferred, record, existing, counts })
})
