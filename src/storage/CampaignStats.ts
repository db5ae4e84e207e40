/**
 * A campaign's figures and outcomes, read from its recipients (`campaign_recipients`: what the campaign decided for
 * each number, with the rule that decided it) and its messages (`messages.campaign_id`: what the network did).
 * Every list pages by the recipient's position (the table's primary key), so listing or exporting a campaign of a
 * million recipients holds one page in memory at a time. Callers check the campaign belongs to the organisation.
 */
import { Context, Effect, Layer, Option, Stream } from "effect"
import { SqlClient } from "effect/sql"
import type { SqlError } from "effect/sql"
import type { RecipientState } from "../domain/Campaign.ts"
import { messageWithCauses, StoreUnavailable } from "../domain/Errors.ts"
import type { MessageStatus } from "../domain/Message.ts"

/** Recipients by what the campaign did with them. */
export interface RecipientCounts {
  readonly pending: number
  readonly deferred: number
  readonly excluded: number
  readonly refused: number
  readonly failed: number
  readonly submitted: number
}

/** The campaign's messages by status (`inFlight`: accepted, queued or submitted, no receipt yet). */
export interface MessageCounts {
  readonly inFlight: number
  readonly delivered: number
  readonly undelivered: number
  readonly expired: number
  readonly failed: number
  readonly rejected: number
}

/** How many recipients or messages one rule decided, and how. */
export interface ReasonCount {
  readonly state: string
  readonly reason: string
  readonly ruleId: string | undefined
  readonly count: number
}

export interface CampaignFigures {
  readonly audience: number
  readonly recipients: RecipientCounts
  readonly messages: MessageCounts
  /** Messages the network took (every status but `rejected`). */
  readonly submitted: number
  /** Delivered over submitted; undefined before anything was submitted. */
  readonly deliveryRate: number | undefined
  /** From acceptance to the last part's receipt, over delivered messages. */
  readonly receipt: { readonly count: number; readonly medianMs: number | undefined; readonly p95Ms: number | undefined }
  /** Parts (segments) of the submitted messages: what the campaign costs. */
  readonly parts: number
  /** Excluded, refused, failed and deferred recipients, and rejected messages, by reason and rule. */
  readonly reasons: ReadonlyArray<ReasonCount>
}

/** One recipient with its outcome: the campaign's decision and, once submitted, its message. */
export interface RecipientOutcome {
  readonly position: number
  readonly msisdn: string
  readonly state: RecipientState
  readonly reason: string | undefined
  readonly ruleId: string | undefined
  readonly nextAt: number | undefined
  readonly attempts: number
  readonly messageId: string | undefined
  readonly status: MessageStatus | undefined
  readonly segments: number | undefined
  readonly messageReason: string | undefined
  readonly acceptedAt: number | undefined
  readonly updatedAt: number
}

export interface OutcomeQuery {
  readonly state?: RecipientState | undefined
  readonly status?: MessageStatus | undefined
  /** Only recipients with a message. */
  readonly withMessage?: boolean | undefined
  /** Position of the last row of the previous page (exclusive). */
  readonly after?: number | undefined
  readonly limit: number
}

type Int = number | string | bigint

interface OutcomeRow {
  readonly pos: Int
  readonly msisdn: string
  readonly state: string
  readonly reason: string | null
  readonly rule_id: string | null
  readonly next_at: Int | null
  readonly attempts: Int
  readonly message_id: string | null
  readonly updated_at: Int
  readonly status: string | null
  readonly segments: Int | null
  readonly message_reason: string | null
  readonly created_at: Int | null
}

const opt = (v: Int | null): number | undefined => v === null ? undefined : Number(v)

const outcomeOf = (r: OutcomeRow): RecipientOutcome => ({
  position: Number(r.pos),
  msisdn: r.msisdn,
  state: r.state as RecipientState,
  reason: r.reason ?? undefined,
  ruleId: r.rule_id ?? undefined,
  nextAt: opt(r.next_at),
  attempts: Number(r.attempts),
  messageId: r.message_id ?? undefined,
  status: (r.status ?? undefined) as MessageStatus | undefined,
  segments: opt(r.segments),
  messageReason: r.message_reason ?? undefined,
  acceptedAt: opt(r.created_at),
  updatedAt: Number(r.updated_at)
})

const failed = (error: SqlError.SqlError) => new StoreUnavailable({ message: messageWithCauses(error), cause: error })

const exportPage = 1_000

/** The CSV columns of an export, in order. */
export const exportColumns = [
  "position",
  "msisdn",
  "state",
  "reason",
  "rule_id",
  "next_at",
  "attempts",
  "message_id",
  "status",
  "segments",
  "message_reason",
  "accepted_at",
  "updated_at"
] as const

/** RFC 4180 field: quoted when it holds a separator, quote or line break; a leading formula sign is defused. */
export const csvField = (value: string | number | undefined): string => {
  if (value === undefined) return ""
  let s = String(value)
  if (/^[=+\-@\t\r]/.test(s) && typeof value === "string" && !/^\+\d+$/.test(s)) s = `'${s}`
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, "\"\"")}"` : s
}

const iso = (ms: number | undefined) => ms === undefined ? undefined : new Date(ms).toISOString()

export const csvLine = (o: RecipientOutcome): string =>
  [
    o.position,
    `+${o.msisdn.replace(/^\+/, "")}`,
    o.state,
    o.reason,
    o.ruleId,
    iso(o.nextAt),
    o.attempts,
    o.messageId,
    o.status,
    o.segments,
    o.messageReason,
    iso(o.acceptedAt),
    iso(o.updatedAt)
  ].map(csvField).join(",") + "\r\n"

export class CampaignStats extends Context.Service<CampaignStats, {
  readonly figures: (campaignId: string) => Effect.Effect<CampaignFigures, StoreUnavailable>
  /** The figures with `receipt` as given: the counts are cheap, the percentiles sort every delivered message. */
  readonly counts: (campaignId: string, receipt: CampaignFigures["receipt"]) => Effect.Effect<CampaignFigures, StoreUnavailable>
  readonly receiptTimes: (campaignId: string) => Effect.Effect<CampaignFigures["receipt"], StoreUnavailable>
  /** Recipients with their outcome, by position. */
  readonly outcomes: (campaignId: string, query: OutcomeQuery) => Effect.Effect<ReadonlyArray<RecipientOutcome>, StoreUnavailable>
  /** Every recipient as a CSV line (header first), read a page at a time as the consumer pulls. */
  readonly exportCsv: (campaignId: string) => Stream.Stream<string, StoreUnavailable>
}>()("smsgw/storage/CampaignStats") {
  static readonly layer = Layer.effect(CampaignStats, Effect.suspend(() => make))
}

const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  /**
   * Median and p95 (nearest rank) of the time from acceptance to the last part's receipt, over delivered messages, in
   * one pass on both dialects: row numbers over the sorted times, the two ranks picked by integer arithmetic.
   */
  const receiptTimes = (campaignId: string) =>
    sql<{ readonly rn: Int; readonly n: Int; readonly t: Int }>`SELECT rn, n, t FROM (
        SELECT t, ROW_NUMBER() OVER (ORDER BY t) AS rn, COUNT(*) OVER () AS n FROM (
          SELECT MAX(p.done_at) - m.created_at AS t FROM messages m JOIN message_parts p ON p.message_id = m.id
          WHERE m.campaign_id = ${campaignId} AND m.status = 'delivered' AND p.done_at IS NOT NULL
          GROUP BY m.id, m.created_at
        ) d
      ) r WHERE rn = (n + 1) / 2 OR rn = (95 * n + 99) / 100 ORDER BY rn`.pipe(
      Effect.mapError(failed),
      Effect.map((rows): CampaignFigures["receipt"] => {
        const n = Number(rows[0]?.n ?? 0)
        const at = (k: number) => {
          const row = rows.find((r) => Number(r.rn) === k)
          return row === undefined ? undefined : Number(row.t)
        }
        return { count: n, medianMs: at(Math.floor((n + 1) / 2)), p95Ms: at(Math.floor((95 * n + 99) / 100)) }
      })
    )

  const counts = (campaignId: string, receipt: CampaignFigures["receipt"]) =>
    Effect.gen(function*() {
      const byState = yield* sql<{ readonly state: string; readonly n: Int }>`
        SELECT state, COUNT(*) AS n FROM campaign_recipients WHERE campaign_id = ${campaignId} GROUP BY state`
      const byStatus = yield* sql<{ readonly status: string; readonly n: Int; readonly parts: Int | null }>`
        SELECT status, COUNT(*) AS n, SUM(segments) AS parts FROM messages WHERE campaign_id = ${campaignId} GROUP BY status`
      const recipientReasons = yield* sql<{ readonly state: string; readonly reason: string | null; readonly rule_id: string | null; readonly n: Int }>`
        SELECT state, reason, rule_id, COUNT(*) AS n FROM campaign_recipients
        WHERE campaign_id = ${campaignId} AND state IN ('excluded', 'refused', 'failed', 'deferred')
        GROUP BY state, reason, rule_id`
      const messageReasons = yield* sql<{ readonly reason: string | null; readonly rule_id: string | null; readonly n: Int }>`
        SELECT reason, rule_id, COUNT(*) AS n FROM messages
        WHERE campaign_id = ${campaignId} AND status IN ('rejected', 'failed', 'undelivered', 'expired')
        AND reason IS NOT NULL GROUP BY reason, rule_id`
      const state = (s: RecipientState) => Number(byState.find((r) => r.state === s)?.n ?? 0)
      const status = (s: MessageStatus) => Number(byStatus.find((r) => r.status === s)?.n ?? 0)
      const recipients: RecipientCounts = {
        pending: state("pending"),
        deferred: state("deferred"),
        excluded: state("excluded"),
        refused: state("refused"),
        failed: state("failed"),
        submitted: state("submitted")
      }
      const messages: MessageCounts = {
        inFlight: status("accepted") + status("queued") + status("submitted"),
        delivered: status("delivered"),
        undelivered: status("undelivered"),
        expired: status("expired"),
        failed: status("failed"),
        rejected: status("rejected")
      }
      const audience = byState.reduce((sum, r) => sum + Number(r.n), 0)
      // Messages the network took (refusals are not sent); the recipients' `submitted` counts the same ones.
      const submitted = byStatus.reduce((sum, r) => sum + Number(r.n), 0) - messages.rejected
      const reasons: Array<ReasonCount> = [
        ...recipientReasons.map((r) => ({ state: r.state, reason: r.reason ?? "unknown", ruleId: r.rule_id ?? undefined, count: Number(r.n) })),
        ...messageReasons.map((r) => ({ state: "message", reason: r.reason ?? "unknown", ruleId: r.rule_id ?? undefined, count: Number(r.n) }))
      ].sort((a, b) => b.count - a.count || a.state.localeCompare(b.state) || a.reason.localeCompare(b.reason))
      const result: CampaignFigures = {
        audience,
        recipients,
        messages,
        submitted,
        deliveryRate: submitted === 0 ? undefined : messages.delivered / submitted,
        receipt,
        parts: byStatus.filter((r) => r.status !== "rejected").reduce((sum, r) => sum + Number(r.parts ?? 0), 0),
        reasons
      }
      return result
    }).pipe(Effect.mapError(failed))

  const outcomes = (campaignId: string, query: OutcomeQuery) =>
    sql<OutcomeRow>`SELECT r.pos, r.msisdn, r.state, r.reason, r.rule_id, r.next_at, r.attempts, r.message_id, r.updated_at,
        m.status, m.segments, m.reason AS message_reason, m.created_at
      FROM campaign_recipients r LEFT JOIN messages m ON m.id = r.message_id
      WHERE r.campaign_id = ${campaignId}
      ${query.after !== undefined ? sql`AND r.pos > ${query.after}` : sql``}
      ${query.state !== undefined ? sql`AND r.state = ${query.state}` : sql``}
      ${query.status !== undefined ? sql`AND m.status = ${query.status}` : sql``}
      ${query.withMessage === true ? sql`AND r.message_id IS NOT NULL` : sql``}
      ORDER BY r.pos LIMIT ${query.limit}`.pipe(
      Effect.map((rows) => rows.map(outcomeOf)),
      Effect.mapError(failed)
    )

  const exportCsv = (campaignId: string): Stream.Stream<string, StoreUnavailable> =>
    Stream.concat(
      Stream.make(exportColumns.join(",") + "\r\n"),
      Stream.paginate(-1, (after) =>
        outcomes(campaignId, { after, limit: exportPage }).pipe(
          Effect.map((rows) => {
            const last = rows[rows.length - 1]
            const next = rows.length === exportPage && last !== undefined ? Option.some(last.position) : Option.none()
            return [rows.length === 0 ? [] : [rows.map(csvLine).join("")], next] as const
          })
        ))
    )

  const figures = (campaignId: string) => Effect.flatMap(receiptTimes(campaignId), (receipt) => counts(campaignId, receipt))

  return CampaignStats.of({ figures, counts, receiptTimes, outcomes, exportCsv })
})
