/**
 * The message store: accepts, submit results, handed marks, receipts, status views, expiry, recovery queries.
 */
import { Context, Effect, Layer, Option, Schema } from "effect"
import { SqlClient } from "effect/sql"
import type { SqlError, Statement } from "effect/sql"
import { callbackBody, postsMove } from "../domain/Callback.ts"
import type { CallbackEvents, CallbackTarget } from "../domain/Callback.ts"
import { messageWithCauses, StoreUnavailable } from "../domain/Errors.ts"
import { isFinal, statusRank } from "../domain/Message.ts"
import { newMessageId } from "../domain/MessageId.ts"
import type { EventKind, MessageStatus, MessageView } from "../domain/Message.ts"
import { commandStatusName } from "../smpp/CommandStatus.ts"
import type { MessageClass } from "../domain/Policy.ts"
import * as GroupCommit from "./GroupCommit.ts"
import { traced } from "../observability/Tracing.ts"

export interface NewMessage {
  readonly id: string
  readonly orgId: string
  readonly appId: string | null
  readonly clientRef: string | undefined
  readonly to: string
  readonly from: string
  readonly text: string
  readonly encoding: "gsm7" | "ucs2"
  readonly segments: number
  readonly validitySeconds: number | undefined
  readonly routeLinkId: string | null
  readonly createdAt: number
  /** Recorded but refused (e.g. `rate_limited`): stored as `rejected` with this reason, never sent. */
  readonly rejection?: string
  /** The policy rule that refused it. */
  readonly ruleId?: string
  /** Chooses what recovery does with a part whose outcome a crash left unknown (recovery.unknownOutcome). */
  readonly messageClass?: MessageClass
  /** The campaign that sent it (campaign statistics and exports read messages by it). */
  readonly campaignId?: string
  /** The W3C traceparent of the span that accepted it, when traced: its link and its receipt join that trace. */
  readonly trace?: string
  /** Where its moves are posted (its own statusCallback, else its app's callback): an outbox row per move, see moveMessages. */
  readonly callback?: CallbackTarget
}

/** What happened to one part on a link: the SMSC took it, refused it for good, or it waits for another try. */
export type PartOutcome =
  | {
    readonly _tag: "Submitted"
    readonly messageId: string
    readonly seq: number
    /** Parts of the message: a single-part message moves with its part, no rollup query needed. */
    readonly segments: number
    readonly linkId: string
    readonly smscMessageId: string
    readonly at: number
  }
  | {
    readonly _tag: "Failed" | "Requeued"
    readonly messageId: string
    readonly seq: number
    readonly segments: number
    readonly linkId: string | null
    readonly error: string
    readonly at: number
    /** Requeued after a timeout or a lost connection: the SMSC may have it, so the part stays marked as handed. */
    readonly mayHaveReached?: boolean
    /** The SMSC's command_status when it answered with one (a refusal, a throttle), for the message's timeline. */
    readonly commandStatus?: number | undefined
  }

/** A part about to be written to a link's socket: marked (durably) before it is, see `recordHanded`. */
export interface HandedPart {
  readonly messageId: string
  readonly seq: number
  readonly linkId: string
  readonly at: number
}

/** What recovery does with a part handed to the SMSC whose result was never stored. */
export const UnknownOutcomeAction = Schema.Literals(["resend", "report"])
export type UnknownOutcomeAction = typeof UnknownOutcomeAction.Type

export interface UnknownOutcome {
  readonly messageId: string
  readonly seq: number
  /** The link it was handed to. */
  readonly linkId: string | null
  readonly action: UnknownOutcomeAction
  readonly at: number
}

export type ReceiptStatus = "delivered" | "undelivered" | "expired"

export interface ReceiptRecord {
  readonly linkId: string
  /** The receipt's id in every form it may have been given at submit time (see smpp/MessageId.ts). */
  readonly candidates: ReadonlyArray<string>
  readonly status: ReceiptStatus
  readonly error: string | undefined
  readonly at: number
}

/** How receipts are matched and how long the store waits for them (from the `receipts` configuration). */
export interface ReceiptSettings {
  /**
   * A part awaits its receipt until its submit + validity + this grace: later, a receipt no longer matches it and the
   * expiry sweep ends it `expired` (no receipt).
   */
  readonly graceMs: number
  /** The validity counted for a message sent without one (the SMSC applies its own default, commonly 48–72 h). */
  readonly assumedValidityMs: number
  /** Receipts kept per link for a submit result not yet stored; more are dropped (and counted). */
  readonly orphanMaxPerLink: number
  /** Told how many receipts of a link were dropped at that cap (a metric). */
  readonly onOrphansDropped?: (linkId: string, receipts: number) => void
}

/**
 * Receipts can come hours after the validity ends (an SMSC holds them while our receiver bind is down and retries for
 * hours): 6 h of grace, because an `expired` that a DELIVRD then contradicts is worse than a late final status.
 */
export const receiptDefaults: ReceiptSettings = {
  graceMs: 6 * 3_600_000,
  assumedValidityMs: 72 * 3_600_000,
  orphanMaxPerLink: 10_000
}

export const ReceiptSettings = Context.Reference<ReceiptSettings>("smsgw/storage/ReceiptSettings", {
  defaultValue: () => receiptDefaults
})

/** A message moved on (or a part of it was retried), as committed: what the live figures count (DashboardStats). */
export interface MessageChange {
  readonly orgId: string
  readonly campaignId: string | undefined
  /** The link of the part that moved it; undefined when no link had it (failed before a link took it). */
  readonly linkId: string | undefined
  /** The status reached, or `retried`: a part had a transient answer (or none) and waits for another try. */
  readonly status: MessageStatus | "retried"
  readonly at: number
  /** When the message was accepted (time to receipt: `at - createdAt` of a delivered one). */
  readonly createdAt: number
  /** The part's error (command status, receipt error, `no receipt`) of a failed, undelivered, expired or retried one. */
  readonly error: string | undefined
}

/**
 * Told of every message change once it is committed, on the node that wrote it; it must return at once (it runs on
 * the writer's fiber). Nothing listens by default.
 */
export const MessageChanges = Context.Reference<(changes: ReadonlyArray<MessageChange>) => void>("smsgw/storage/MessageChanges", {
  defaultValue: () => () => {}
})

/** The error and reason of a part the expiry sweep ended. */
const noReceipt = "no receipt"

/**
 * An early receipt (kept before its submit result was stored) goes to a part only if it came after that part's submit,
 * give or take this: one received earlier was for an older message that had the same SMSC id.
 */
const earlyReceiptSlackMs = 60_000

/** Messages one expiry call ended, per link (the link of the message's first part it expired). */
export interface ExpiredByLink {
  readonly linkId: string
  readonly messages: number
}

/** What a receipt found: its part (or nothing: kept as an orphan), and the trace of that part's message. */
export interface ReceiptMatch {
  readonly matched: boolean
  readonly trace?: string | undefined
  /** When the matched part's submit was answered (epoch ms): the receipt's latency. */
  readonly submittedAt?: number | undefined
}

const unmatched: ReceiptMatch = { matched: false }
/** A batch's answer for an operation that is not a receipt (accepts and outcomes answer nothing). */
const notAReceipt: ReceiptMatch = { matched: true }

/** A message accepted but not yet submitted, as the recovery job re-drives it. */
export interface PendingMessage extends
  Pick<NewMessage, "id" | "to" | "from" | "text" | "encoding" | "segments" | "validitySeconds" | "routeLinkId" | "trace">
{
  readonly attempts: number
  readonly pendingSeqs: ReadonlyArray<number>
  readonly messageClass: MessageClass | undefined
  /** Pending parts marked as handed to a link: the SMSC may have them (sent, result lost with a crash). */
  readonly handed: ReadonlyArray<{ readonly seq: number; readonly linkId: string | null }>
}

type Op =
  | { readonly _tag: "Accept"; readonly messages: ReadonlyArray<NewMessage> }
  | { readonly _tag: "Outcomes"; readonly outcomes: ReadonlyArray<PartOutcome> }
  | { readonly _tag: "Receipt"; readonly receipt: ReceiptRecord }

export class MessageStore extends Context.Service<MessageStore, {
  /** Resolves once the records are committed: only then may the API answer 202. */
  readonly accept: (messages: ReadonlyArray<NewMessage>) => Effect.Effect<void, StoreUnavailable>
  readonly recordOutcomes: (outcomes: ReadonlyArray<PartOutcome>) => Effect.Effect<void, StoreUnavailable>
  /**
   * The fast path a link awaits before writing parts to its socket: the parts answered since its last call (part rows
   * only: status and SMSC id; their messages follow through `recordOutcomes`), then the parts about to be sent,
   * marked as handed. After a crash only parts truly in flight, at most the window, are marked without a result.
   * Two statements, outside the writer's transactions, so a link never waits behind receipts. Answers the parts of
   * `handed` not marked: the store has them submitted or final already (sent by a link before, the hand-off that
   * brought them again was stale), so they must not be sent.
   */
  readonly recordHanded: (
    answered: ReadonlyArray<PartOutcome>,
    handed: ReadonlyArray<HandedPart>
  ) => Effect.Effect<ReadonlyArray<HandedPart>, StoreUnavailable>
  /** Moves messages whose parts all moved on (their own update lost with a crash) to the status of their parts. */
  readonly catchUp: (ids: ReadonlyArray<string>) => Effect.Effect<void, StoreUnavailable>
  /**
   * Settles parts whose outcome a crash left unknown: `resend` puts them back to `queued` for a re-drive, `report`
   * ends them `submitted` with reason `unknown_outcome` (a late result, then its receipt, still moves them on); each gets an
   * event on its message. Answers the parts settled: not those whose result was stored meanwhile.
   */
  readonly settleUnknown: (parts: ReadonlyArray<UnknownOutcome>) => Effect.Effect<ReadonlyArray<UnknownOutcome>, StoreUnavailable>
  /** True when the receipt found its part; otherwise it is kept and applied when the submit result lands. */
  /** Whether the receipt found its part; with the message's trace when it was traced. */
  readonly recordReceipt: (receipt: ReceiptRecord) => Effect.Effect<ReceiptMatch, StoreUnavailable>
  /** A message of the organisation; another organisation's id is as unknown as a missing one. */
  readonly get: (id: string, orgId: string) => Effect.Effect<Option.Option<MessageView>, StoreUnavailable>
  /** Not yet submitted and untouched since `updatedBefore` (epoch ms), oldest first. */
  readonly pending: (
    options: { readonly updatedBefore: number; readonly limit: number; readonly offset?: number }
  ) => Effect.Effect<ReadonlyArray<PendingMessage>, StoreUnavailable>
  /** Marks messages not yet submitted for an immediate re-drive (a link shutting down hands its queue back). */
  readonly release: (ids: ReadonlyArray<string>) => Effect.Effect<void, StoreUnavailable>
  /**
   * Marks messages a live link still holds (queued or in its window) as touched now, so recovery, which re-drives
   * what stays untouched for its idle time, leaves them to that link instead of sending them a second time.
   */
  readonly touch: (ids: ReadonlyArray<string>) => Effect.Effect<void, StoreUnavailable>
  /**
   * Recovery re-drives these now: they count as touched (released ones too), so the next pass leaves them to the link
   * they went to until it stops touching them, instead of handing them over again after the link sent them once.
   */
  readonly redriven: (ids: ReadonlyArray<string>) => Effect.Effect<void, StoreUnavailable>
  readonly ping: Effect.Effect<void, StoreUnavailable>
  /**
   * Forgets receipts kept for a submit result that never came (a foreign or mistyped id, a late receipt), received
   * before `at`; answers how many receipts per link.
   */
  readonly dropOrphansBefore: (
    at: number
  ) => Effect.Effect<ReadonlyArray<{ readonly linkId: string; readonly receipts: number }>, StoreUnavailable>
  /**
   * Ends up to `limit` parts still awaiting a receipt past submit + validity + grace (oldest first) as `expired` with
   * reason `no receipt`, their messages with them; answers the messages that moved, per link.
   */
  readonly expireOverdue: (
    options: { readonly now: number; readonly limit: number }
  ) => Effect.Effect<ReadonlyArray<ExpiredByLink>, StoreUnavailable>
  /** Messages accepted and not yet submitted, cluster-wide. */
  readonly pendingCount: Effect.Effect<number, StoreUnavailable>
  readonly backlog: Effect.Effect<number>
}>()("smsgw/storage/MessageStore") {
  /** Runs no migrations: every feature's run first, once, where the process is composed (layers/Migrations.ts). */
  static readonly layer = Layer.effect(MessageStore, Effect.suspend(() => make))
}

interface MessageRow {
  readonly id: string
  readonly client_ref: string | null
  readonly to_addr: string
  readonly from_addr: string
  readonly text: string
  readonly encoding: string
  readonly segments: number | string
  readonly validity_seconds: number | string | null
  readonly route_link_id: string | null
  readonly message_class?: string | null
  readonly app_id?: string | null
  readonly campaign_id?: string | null
  readonly trace?: string | null
  readonly status: string
  readonly reason: string | null
  readonly rule_id?: string | null
  readonly attempts: number | string
  readonly created_at: number | string | bigint
  readonly updated_at: number | string | bigint
}

interface PartRow {
  readonly message_id: string
  readonly seq: number | string
  readonly link_id: string | null
  readonly smsc_message_id: string | null
  readonly status: string
  readonly error: string | null
  readonly submitted_at: number | string | bigint | null
  readonly done_at: number | string | bigint | null
}

interface EventRow {
  readonly at: number | string | bigint
  readonly status: string
  readonly detail: string | null
  readonly kind: string | null
  readonly seq: number | string | null
  readonly link_id: string | null
  readonly command_status: number | string | null
  readonly reason: string | null
  readonly rule_id: string | null
}

/** The structured facts of a timeline event, stored beside its text. */
interface EventFacts {
  readonly kind: EventKind
  readonly seq?: number | undefined
  readonly linkId?: string | null | undefined
  readonly commandStatus?: number | undefined
  /** Why, for the timeline: the policy's reason, the SMSC's error, a receipt's err code. */
  readonly reason?: string | undefined
  readonly ruleId?: string | undefined
}

// A type, not an interface: sql.insert takes records.
type EventInsert = {
  readonly message_id: string
  readonly at: number
  readonly status: MessageStatus
  readonly detail: string | null
  readonly kind: EventKind
  readonly seq: number | null
  readonly link_id: string | null
  readonly command_status: number | null
  readonly reason: string | null
  readonly rule_id: string | null
}

/** Rows a write changed, from either driver's raw result (PostgreSQL: `rowCount`, node:sqlite: `changes`). */
const affectedRows = (raw: unknown): number => {
  const result = raw as { readonly rowCount?: unknown; readonly changes?: unknown }
  return Number(result.rowCount ?? result.changes ?? -1)
}

const eventInsert = (messageId: string, at: number, status: MessageStatus, detail: string | undefined, facts: EventFacts): EventInsert => ({
  message_id: messageId,
  at,
  status,
  detail: detail ?? null,
  kind: facts.kind,
  seq: facts.seq ?? null,
  link_id: facts.linkId ?? null,
  command_status: facts.commandStatus ?? null,
  reason: facts.reason ?? null,
  rule_id: facts.ruleId ?? null
})

const eventKinds: ReadonlySet<string> = new Set<EventKind>([
  "accepted", "refused", "submitted", "retry", "failed", "receipt", "expired", "unknown_outcome", "resent", "recovered"
])

const chunk = <A>(items: ReadonlyArray<A>, size: number): Array<Array<A>> => {
  const out: Array<Array<A>> = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

/**
 * Accepts in statements of at most 300 messages and 1,500 parts (PostgreSQL takes up to 65,535 parameters per
 * statement); a message is never split across statements.
 */
const acceptChunks = (messages: ReadonlyArray<NewMessage>): Array<Array<NewMessage>> => {
  const out: Array<Array<NewMessage>> = []
  let current: Array<NewMessage> = []
  let parts = 0
  for (const m of messages) {
    if (current.length > 0 && (current.length >= 300 || parts + m.segments > 1500)) {
      out.push(current)
      current = []
      parts = 0
    }
    current.push(m)
    parts += m.segments
  }
  if (current.length > 0) out.push(current)
  return out
}

const iso = (ms: number | string | bigint) => new Date(Number(ms)).toISOString()

const eventView = (e: EventRow): MessageView["events"][number] => ({
  at: iso(e.at),
  status: e.status as MessageStatus,
  ...(e.detail !== null ? { detail: e.detail } : {}),
  ...(e.kind !== null && eventKinds.has(e.kind) ? { kind: e.kind as EventKind } : {}),
  ...(e.seq !== null ? { part: Number(e.seq) } : {}),
  ...(e.link_id !== null ? { linkId: e.link_id } : {}),
  ...(e.command_status !== null
    ? { commandStatus: Number(e.command_status), commandStatusName: commandStatusName(Number(e.command_status)) }
    : {}),
  ...(e.reason !== null ? { reason: e.reason } : {}),
  ...(e.rule_id !== null ? { ruleId: e.rule_id } : {})
})

/** Message status from its parts: final when every part is, `submitted` when every part reached the SMSC. */
export const rollup = (parts: ReadonlyArray<MessageStatus>): MessageStatus => {
  if (parts.every(isFinal)) {
    if (parts.every((s) => s === "delivered")) return "delivered"
    if (parts.includes("failed")) return "failed"
    if (parts.includes("undelivered") || parts.includes("rejected")) return "undelivered"
    return "expired"
  }
  if (parts.every((s) => statusRank[s] >= 2)) return "submitted"
  if (parts.includes("queued")) return "queued"
  return "accepted"
}

// What the database said goes into the message (for the logs; clients get a fixed 503 detail) and the SqlError stays as the cause.
const storeError = (error: SqlError.SqlError) => new StoreUnavailable({ message: messageWithCauses(error), cause: error })

export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const receiptSettings = yield* ReceiptSettings
  const onChanges = yield* MessageChanges
  /** Tells the listener what a committed write changed. */
  const report = (changes: ReadonlyArray<MessageChange>) => Effect.sync(() => {
    if (changes.length > 0) onChanges(changes)
  })

  const messageRow = (m: NewMessage) => ({
    id: m.id,
    org_id: m.orgId,
    app_id: m.appId,
    client_ref: m.clientRef ?? null,
    to_addr: m.to,
    from_addr: m.from,
    text: m.text,
    encoding: m.encoding,
    segments: m.segments,
    validity_seconds: m.validitySeconds ?? null,
    route_link_id: m.routeLinkId,
    status: m.rejection === undefined ? "accepted" : "rejected",
    status_rank: m.rejection === undefined ? 0 : 3,
    reason: m.rejection ?? null,
    rule_id: m.ruleId ?? null,
    message_class: m.messageClass ?? null,
    campaign_id: m.campaignId ?? null,
    trace: m.trace ?? null,
    callback_url: m.callback?.url ?? null,
    callback_events: m.callback?.events ?? null,
    attempts: 0,
    created_at: m.createdAt,
    updated_at: m.createdAt
  })
  const partRows = (m: NewMessage) =>
    Array.from({ length: m.segments }, (_, i) => ({
      message_id: m.id,
      seq: i + 1,
      link_id: null,
      smsc_message_id: null,
      status: m.rejection === undefined ? "accepted" : "rejected",
      status_rank: m.rejection === undefined ? 0 : 3
    }))
  const eventRow = (m: NewMessage) =>
    m.rejection === undefined
      ? eventInsert(m.id, m.createdAt, "accepted", undefined, { kind: "accepted" })
      : eventInsert(m.id, m.createdAt, "rejected", m.ruleId === undefined ? m.rejection : `${m.rejection} (rule ${m.ruleId})`, {
        kind: "refused",
        reason: m.rejection,
        ruleId: m.ruleId
      })

  /**
   * Messages, their parts and first events. On PostgreSQL one statement per chunk (data-modifying CTEs): atomic on its
   * own, so a batch of accepts needs no BEGIN/COMMIT — one round trip instead of five, which is most of what a
   * cluster node's small batches cost PostgreSQL. SQLite runs in process: three inserts in the caller's transaction.
   */
  const insertAccepted = (messages: ReadonlyArray<NewMessage>) =>
    Effect.forEach(acceptChunks(messages), (rows) => {
      const [m0, ...ms] = rows.map(messageRow)
      const [p0, ...ps] = rows.flatMap(partRows)
      const [e0, ...es] = rows.map(eventRow)
      if (m0 === undefined || p0 === undefined || e0 === undefined) return Effect.void
      return sql.onDialectOrElse({
        pg: () =>
          sql`WITH m AS (INSERT INTO messages ${sql.insert([m0, ...ms])}),
            p AS (INSERT INTO message_parts ${sql.insert([p0, ...ps])})
            INSERT INTO message_events ${sql.insert([e0, ...es])}`.pipe(Effect.asVoid),
        orElse: () =>
          Effect.all([
            sql`INSERT INTO messages ${sql.insert([m0, ...ms])}`,
            sql`INSERT INTO message_parts ${sql.insert([p0, ...ps])}`,
            sql`INSERT INTO message_events ${sql.insert([e0, ...es])}`
          ], { discard: true })
      })
    }, { discard: true })

  interface MovedRow {
    readonly id: string
    readonly org_id: string | null
    readonly campaign_id: string | null
    readonly created_at: number | string | bigint
    readonly callback_url: string | null
    readonly callback_events: string | null
    readonly app_id: string | null
    readonly client_ref: string | null
    readonly to_addr: string
    readonly from_addr: string
    readonly reason: string | null
  }

  /** The outbox row a move owes, when the message has a callback that posts this move. */
  const callbackRow = (row: MovedRow, status: MessageStatus, at: number) => {
    if (row.callback_url === null || row.app_id === null) return undefined
    const events: CallbackEvents = row.callback_events === "all" ? "all" : "final"
    if (!postsMove(events, status)) return undefined
    const ended = status === "failed" || status === "undelivered" || status === "expired"
    return {
      message_id: row.id,
      org_id: row.org_id,
      app_id: row.app_id,
      url: row.callback_url,
      body: callbackBody({
        type: "message.status",
        eventId: `evt_${newMessageId()}`,
        messageId: row.id,
        status,
        at: new Date(at).toISOString(),
        ...(row.client_ref !== null ? { clientRef: row.client_ref } : {}),
        to: row.to_addr,
        from: row.from_addr,
        acceptedAt: new Date(Number(row.created_at)).toISOString(),
        ...(ended && row.reason !== null ? { reason: row.reason } : {}),
        appId: row.app_id
      }),
      state: "pending",
      attempts: 0,
      next_at: at,
      created_at: at
    }
  }

  interface Transition {
    readonly at: number
    readonly detail: string | undefined
    /** The message's reason when this move ends it failed, undelivered or expired. */
    readonly reason?: string | undefined
    readonly facts: EventFacts
    /** The link of the part behind the move (for the live figures). */
    readonly linkId?: string | null | undefined
  }

  interface Move {
    readonly id: string
    readonly status: MessageStatus
    readonly info: Transition
  }

  /**
   * Moves messages forward (never back), one statement per chunk whatever the dialect (a CTE of VALUES with typed
   * columns works on SQLite and PostgreSQL alike); records an event for each message that moved.
   */
  const moveMessages = (moves: ReadonlyArray<Move>, events: Array<EventInsert>, changes: Array<MessageChange>) =>
    Effect.forEach(chunk(moves, 200), (batch) =>
      Effect.gen(function*() {
        const rows = batch.map((m) => {
          const reason = m.status === "failed" || m.status === "undelivered"
            ? (m.info.reason ?? m.info.detail ?? null)
            : m.status === "expired" ? (m.info.reason ?? null) : null
          return sql`(${m.id}, ${m.status}, CAST(${statusRank[m.status]} AS INTEGER), CAST(${m.info.at} AS BIGINT), CAST(${reason} AS TEXT))`
        })
        const moved = yield* sql<MovedRow>`
          WITH v(id, status, status_rank, at, reason) AS (VALUES ${sql.csv(rows)})
          UPDATE messages SET status = v.status, status_rank = v.status_rank, updated_at = v.at,
            reason = COALESCE(v.reason, messages.reason)
          FROM v WHERE messages.id = v.id AND messages.status_rank < v.status_rank
          RETURNING messages.id AS id, messages.org_id AS org_id, messages.campaign_id AS campaign_id,
            messages.created_at AS created_at, messages.callback_url AS callback_url,
            messages.callback_events AS callback_events, messages.app_id AS app_id,
            messages.client_ref AS client_ref, messages.to_addr AS to_addr, messages.from_addr AS from_addr,
            messages.reason AS reason`
        const byId = new Map(batch.map((m) => [m.id, m]))
        // A move of a message with a callback owes one: its outbox row commits with the move (never a move without it).
        const callbacks: Array<Record<string, unknown>> = []
        for (const row of moved) {
          const m = byId.get(row.id)
          if (m === undefined) continue
          events.push(eventInsert(row.id, m.info.at, m.status, m.info.detail, m.info.facts))
          const owed = callbackRow(row, m.status, m.info.at)
          if (owed !== undefined) callbacks.push(owed)
          if (row.org_id !== null) {
            changes.push({
              orgId: row.org_id,
              campaignId: row.campaign_id ?? undefined,
              linkId: m.info.linkId ?? undefined,
              status: m.status,
              at: m.info.at,
              createdAt: Number(row.created_at),
              error: m.info.reason
            })
          }
        }
        const [c0, ...cs] = callbacks
        if (c0 !== undefined) yield* sql`INSERT INTO callback_outbox ${sql.insert([c0, ...cs])}`
      }), { discard: true })

  /** Recomputes multipart messages from their parts. */
  const rollupMessages = (details: Map<string, Transition>, events: Array<EventInsert>, changes: Array<MessageChange>) =>
    Effect.gen(function*() {
      for (const batch of chunk([...details.keys()], 500)) {
        const parts = yield* sql<{ message_id: string; status: MessageStatus }>`
          SELECT message_id, status FROM message_parts WHERE ${sql.in("message_id", batch)}`
        const byMessage = new Map<string, Array<MessageStatus>>()
        for (const p of parts) {
          const list = byMessage.get(p.message_id)
          if (list === undefined) byMessage.set(p.message_id, [p.status])
          else list.push(p.status)
        }
        const moves: Array<Move> = []
        for (const [id, statuses] of byMessage) {
          const info = details.get(id)
          if (info !== undefined) moves.push({ id, status: rollup(statuses), info })
        }
        yield* moveMessages(moves, events, changes)
      }
    })

  const insertEvents = (events: ReadonlyArray<EventInsert>) =>
    Effect.forEach(chunk(events, 500), (rows) => {
      const [first, ...rest] = rows
      return first === undefined ? Effect.void : sql`INSERT INTO message_events ${sql.insert([first, ...rest])}`.pipe(Effect.asVoid)
    }, { discard: true })

  const partStatusOf = (o: PartOutcome): MessageStatus =>
    o._tag === "Submitted" ? "submitted" : o._tag === "Failed" ? "failed" : "queued"

  const applyOutcomes = (outcomes: ReadonlyArray<PartOutcome>, events: Array<EventInsert>, changes: Array<MessageChange>) =>
    Effect.gen(function*() {
      const multipart = new Map<string, Transition>()
      const moves: Array<Move> = []
      const submittedParts = outcomes.filter((o): o is PartOutcome & { _tag: "Submitted" } => o._tag === "Submitted")
      yield* submitParts(submittedParts)
      for (const o of outcomes) {
        let info: Transition
        switch (o._tag) {
          case "Submitted": {
            info = {
              at: o.at,
              detail: `part ${o.seq} on link ${o.linkId} as ${o.smscMessageId}`,
              facts: { kind: "submitted", seq: o.seq, linkId: o.linkId },
              linkId: o.linkId
            }
            break
          }
          case "Failed": {
            yield* sql`UPDATE message_parts SET status = 'failed', status_rank = 3, link_id = ${o.linkId},
                error = ${o.error}, done_at = ${o.at}
              WHERE message_id = ${o.messageId} AND seq = ${o.seq} AND status_rank < 3`
            info = {
              at: o.at,
              detail: `part ${o.seq}: ${o.error}`,
              reason: o.error,
              facts: { kind: "failed", seq: o.seq, linkId: o.linkId, commandStatus: o.commandStatus, reason: o.error },
              linkId: o.linkId
            }
            break
          }
          case "Requeued": {
            yield* sql`UPDATE message_parts SET status = 'queued', status_rank = 1, error = ${o.error}
              WHERE message_id = ${o.messageId} AND seq = ${o.seq} AND status_rank < 2`
            const retried = yield* sql<{ org_id: string | null; campaign_id: string | null; created_at: number | string | bigint }>`
              UPDATE messages SET attempts = attempts + 1 WHERE id = ${o.messageId}
              RETURNING org_id, campaign_id, created_at`
            for (const row of retried) {
              if (row.org_id === null) continue
              changes.push({
                orgId: row.org_id,
                campaignId: row.campaign_id ?? undefined,
                linkId: o.linkId ?? undefined,
                status: "retried",
                at: o.at,
                createdAt: Number(row.created_at),
                error: o.error
              })
            }
            info = {
              at: o.at,
              detail: `part ${o.seq}: ${o.error}`,
              facts: { kind: "retry", seq: o.seq, linkId: o.linkId, commandStatus: o.commandStatus, reason: o.error },
              linkId: o.linkId
            }
            break
          }
        }
        if (o.segments === 1) moves.push({ id: o.messageId, status: partStatusOf(o), info })
        else multipart.set(o.messageId, info)
      }
      yield* moveMessages(moves, events, changes)
      if (multipart.size > 0) yield* rollupMessages(multipart, events, changes)
      if (submittedParts.length > 0) yield* applyOrphans(submittedParts, events, changes)
    })

  /** Part rows to `submitted` with their SMSC id; a part reported unknown (no id) takes a late result too. */
  const submitParts = (submitted: ReadonlyArray<PartOutcome & { _tag: "Submitted" }>) =>
    Effect.forEach(chunk(submitted, 200), (batch) => {
      const rows = batch.map((o) =>
        sql`(${o.messageId}, CAST(${o.seq} AS INTEGER), ${o.linkId}, ${o.smscMessageId}, CAST(${o.at} AS BIGINT))`
      )
      return sql`
        WITH v(message_id, seq, link_id, smsc_message_id, at) AS (VALUES ${sql.csv(rows)})
        UPDATE message_parts SET status = 'submitted', status_rank = 2, link_id = v.link_id,
          smsc_message_id = v.smsc_message_id, submitted_at = v.at, error = NULL
        FROM v WHERE message_parts.message_id = v.message_id AND message_parts.seq = v.seq
          AND (message_parts.status_rank < 2 OR (message_parts.status_rank = 2 AND message_parts.smsc_message_id IS NULL))`
    }, { discard: true })

  // On every message's path (a link's marks and answers): a span only when tracing is on, no stack captured per call.
  const recordHanded = Effect.fnUntraced(function*(
    answered: ReadonlyArray<PartOutcome>,
    handed: ReadonlyArray<HandedPart>
  ) {
    yield* submitParts(answered.filter((o): o is PartOutcome & { _tag: "Submitted" } => o._tag === "Submitted"))
    // Refused (for good, or for now): the SMSC does not have it, so it is no unknown outcome.
    const refused = answered.filter((o) => o._tag !== "Submitted" && o.mayHaveReached !== true)
    for (const batch of chunk(refused, 200)) {
      const rows = batch.map((o) => sql`(${o.messageId}, CAST(${o.seq} AS INTEGER))`)
      yield* sql`
        WITH v(message_id, seq) AS (VALUES ${sql.csv(rows)})
        UPDATE message_parts SET handed_at = NULL
        FROM v WHERE message_parts.message_id = v.message_id AND message_parts.seq = v.seq
          AND message_parts.status_rank < 2`
    }
    return yield* markHanded(handed)
  }, Effect.mapError(storeError), traced("MessageStore.recordHanded"))

  const catchUp = Effect.fn("MessageStore.catchUp")(function*(ids: ReadonlyArray<string>) {
    if (ids.length === 0) return
    const events: Array<EventInsert> = []
    const changes: Array<MessageChange> = []
    const at = Date.now()
    const info: Transition = { at, detail: "status taken from its parts after a restart", facts: { kind: "recovered" } }
    yield* rollupMessages(new Map(ids.map((id) => [id, info])), events, changes)
    yield* insertEvents(events)
    yield* report(changes)
  }, Effect.mapError(storeError))

  /**
   * Marks the parts still to send as handed, one statement per 200 parts; answers those it did not mark (submitted or
   * final already). The row count says whether all were marked, the usual case; only a batch short of some is read
   * again (RETURNING on every batch measured 534–689 µs per message embedded against 519–601 without: bench/RESULTS.md,
   * sixth round).
   */
  const markHanded = (handed: ReadonlyArray<HandedPart>) =>
    Effect.gen(function*() {
      const unmarked: Array<HandedPart> = []
      for (const batch of chunk(handed, 200)) {
        const rows = batch.map((p) => sql`(${p.messageId}, CAST(${p.seq} AS INTEGER), ${p.linkId}, CAST(${p.at} AS BIGINT))`)
        const result = yield* sql`
          WITH v(message_id, seq, link_id, at) AS (VALUES ${sql.csv(rows)})
          UPDATE message_parts SET handed_at = v.at, link_id = v.link_id
          FROM v WHERE message_parts.message_id = v.message_id AND message_parts.seq = v.seq
            AND message_parts.status_rank < 2`.raw
        if (affectedRows(result) === batch.length) continue
        const keys = batch.map((p) => sql`(${p.messageId}, CAST(${p.seq} AS INTEGER))`)
        const pending = yield* sql<{ message_id: string; seq: number | string }>`
          SELECT message_id, seq FROM message_parts
          WHERE (message_id, seq) IN (VALUES ${sql.csv(keys)}) AND status_rank < 2`
        const marked = new Set(pending.map((r) => `${r.message_id}:${Number(r.seq)}`))
        for (const p of batch) if (!marked.has(`${p.messageId}:${p.seq}`)) unmarked.push(p)
      }
      return unmarked
    })

  const settleUnknown = Effect.fn("MessageStore.settleUnknown")(function*(parts: ReadonlyArray<UnknownOutcome>) {
    if (parts.length === 0) return []
    const events: Array<EventInsert> = []
    const changes: Array<MessageChange> = []
    const settledParts = yield* sql.withTransaction(Effect.gen(function*() {
      const settled: Array<UnknownOutcome> = []
      for (const batch of chunk(parts, 200)) {
        const rows = batch.map((p) => sql`(${p.messageId}, CAST(${p.seq} AS INTEGER), ${p.action})`)
        // Only a part still pending and marked: a result stored since (a node that was slow, not dead) wins.
        const changed = yield* sql<{ message_id: string; seq: number | string }>`
          WITH v(message_id, seq, action) AS (VALUES ${sql.csv(rows)})
          UPDATE message_parts SET
            status = CASE WHEN v.action = 'report' THEN 'submitted' ELSE 'queued' END,
            status_rank = CASE WHEN v.action = 'report' THEN 2 ELSE 1 END,
            error = 'unknown_outcome',
            handed_at = CASE WHEN v.action = 'report' THEN message_parts.handed_at ELSE NULL END,
            -- A reported part waits for a receipt from its hand-off on, and ends expired (no receipt) like any other.
            submitted_at = CASE WHEN v.action = 'report' THEN COALESCE(message_parts.submitted_at, message_parts.handed_at)
              ELSE message_parts.submitted_at END
          FROM v WHERE message_parts.message_id = v.message_id AND message_parts.seq = v.seq
            AND message_parts.status_rank < 2 AND message_parts.handed_at IS NOT NULL
          RETURNING message_parts.message_id AS message_id, message_parts.seq AS seq`
        const done = new Set(changed.map((r) => `${r.message_id}:${Number(r.seq)}`))
        for (const p of batch) if (done.has(`${p.messageId}:${p.seq}`)) settled.push(p)
      }
      const resent = [...new Set(settled.filter((p) => p.action === "resend").map((p) => p.messageId))]
      for (const batch of chunk(resent, 500)) yield* sql`UPDATE messages SET attempts = attempts + 1 WHERE ${sql.in("id", batch)}`
      const reported = [...new Set(settled.filter((p) => p.action === "report").map((p) => p.messageId))]
      for (const batch of chunk(reported, 500)) {
        yield* sql`UPDATE messages SET reason = 'unknown_outcome' WHERE status_rank < 3 AND ${sql.in("id", batch)}`
      }
      const details = new Map<string, Transition>()
      for (const p of settled) details.set(p.messageId, { at: p.at, detail: undefined, facts: { kind: "recovered" }, linkId: p.linkId })
      // The message's status follows its parts; the events below say why, one per part.
      yield* rollupMessages(details, [], changes)
      for (const p of settled) {
        const on = p.linkId === null ? "" : ` on link ${p.linkId}`
        events.push(p.action === "report"
          ? eventInsert(
            p.messageId,
            p.at,
            "submitted",
            `part ${p.seq}: outcome unknown (handed to the SMSC${on}, its answer lost with a stopped node); not resent: unknown_outcome`,
            { kind: "unknown_outcome", seq: p.seq, linkId: p.linkId, reason: "unknown_outcome" }
          )
          : eventInsert(
            p.messageId,
            p.at,
            "queued",
            `part ${p.seq}: resent after unknown outcome (handed to the SMSC${on}, its answer lost with a stopped node)`,
            { kind: "resent", seq: p.seq, linkId: p.linkId, reason: "unknown_outcome" }
          ))
      }
      yield* insertEvents(events)
      return settled
    }))
    yield* report(changes)
    return settledParts
  }, Effect.mapError(storeError))

  /**
   * Receipts that came before their submit result was stored: apply them now that it is. One lookup per 300 submitted
   * parts (not one per part), and a match removes every candidate form the receipt was kept under.
   */
  const applyOrphans = (
    submitted: ReadonlyArray<PartOutcome & { _tag: "Submitted" }>,
    events: Array<EventInsert>,
    changes: Array<MessageChange>
  ) =>
    Effect.gen(function*() {
      for (const batch of chunk(submitted, 300)) {
        const pairs = batch.map((o) => sql`(${o.linkId}, ${o.smscMessageId})`)
        const found = yield* sql<{
          link_id: string
          smsc_message_id: string
          status: ReceiptStatus
          error: string | null
          received_at: number | string
          receipt_ref: string | null
        }>`
          SELECT link_id, smsc_message_id, status, error, received_at, receipt_ref FROM orphan_receipts
          WHERE (link_id, smsc_message_id) IN (VALUES ${sql.csv(pairs)})`
        const submittedAt = new Map<string, number>()
        for (const o of batch) {
          const key = `${o.linkId}\u0000${o.smscMessageId}`
          submittedAt.set(key, Math.max(o.at, submittedAt.get(key) ?? 0))
        }
        // One kept from before the submit was for an older message with the same id: it stays until its time is up.
        const orphans = found.filter((o) =>
          Number(o.received_at) >= (submittedAt.get(`${o.link_id}\u0000${o.smsc_message_id}`) ?? Infinity) - earlyReceiptSlackMs
        )
        if (orphans.length === 0) continue
        yield* applyReceipts(orphans.map((o) => ({
          linkId: o.link_id,
          candidates: [o.smsc_message_id],
          status: o.status,
          error: o.error ?? undefined,
          at: Number(o.received_at)
        })), events, changes)
        const applied = orphans.map((o) => sql`(${o.link_id}, ${o.smsc_message_id})`)
        const refs = orphans.flatMap((o) => o.receipt_ref === null ? [] : [o.receipt_ref])
        yield* sql`DELETE FROM orphan_receipts WHERE (link_id, smsc_message_id) IN (VALUES ${sql.csv(applied)})`
        if (refs.length > 0) yield* sql`DELETE FROM orphan_receipts WHERE ${sql.in("receipt_ref", refs)}`
      }
    })

  /** When a part submitted at `submittedAt` stops awaiting its receipt. */
  const receiptDeadline = (submittedAt: number, validitySeconds: number | null) =>
    submittedAt + (validitySeconds === null ? receiptSettings.assumedValidityMs : validitySeconds * 1000) +
    receiptSettings.graceMs

  const partColumns = sql.literal(`p.message_id, p.seq, m.segments, p.link_id, p.smsc_message_id, p.submitted_at,
    m.created_at, m.validity_seconds, m.trace, p.status_rank`)

  /**
   * The parts (with their message's facts) carrying these (link, SMSC id) pairs. On PostgreSQL a lateral probe per pair
   * (`OFFSET 0` keeps the planner from merging it back into a join): the (link, SMSC id) index is used for each pair
   * whatever the statistics say, where the plain join was estimated from none at all on a new database and read both
   * tables whole per batch until autovacuum first analysed them.
   */
  const partsBySmscId = (pairs: ReadonlyArray<Statement.Fragment>) =>
    sql.onDialectOrElse({
      pg: () =>
        sql`SELECT x.* FROM (VALUES ${sql.csv(pairs)}) AS v(link_id, smsc_message_id)
          CROSS JOIN LATERAL (
            SELECT ${partColumns} FROM message_parts p JOIN messages m ON m.id = p.message_id
            WHERE p.link_id = v.link_id AND p.smsc_message_id = v.smsc_message_id OFFSET 0
          ) x`,
      orElse: () =>
        sql`SELECT ${partColumns} FROM message_parts p JOIN messages m ON m.id = p.message_id
          WHERE (p.link_id, p.smsc_message_id) IN (VALUES ${sql.csv(pairs)})`
    })

  /**
   * Applies receipts in a few statements; answers, per receipt, whether it found its part: the newest part on its link
   * with its id that still awaits a receipt (submitted, not final) within submit + validity + grace. SMSCs reuse ids
   * (after a restart, a counter wrap): an older part with the same id stays as it is, and a final one is never touched.
   */
  const applyReceipts = (receipts: ReadonlyArray<ReceiptRecord>, events: Array<EventInsert>, changes: Array<MessageChange>) =>
    Effect.gen(function*() {
      const matched: Array<ReceiptMatch> = receipts.map(() => unmatched)
      // (link, SMSC id) → the receipt (first wins: a duplicate receipt in one batch is applied once).
      const wanted = new Map<string, number>()
      receipts.forEach((r, i) => {
        for (const c of r.candidates) {
          const key = `${r.linkId}\u0000${c}`
          if (!wanted.has(key)) wanted.set(key, i)
        }
      })
      // receipt → the newest part awaiting it, over every candidate form of its id.
      const newest = new Map<number, { message_id: string; seq: number; segments: number; submittedAt: number; trace: string | null }>()
      for (const keys of chunk([...wanted.keys()], 300)) {
        const pairs = keys.map((k) => {
          const [link, id] = k.split("\u0000")
          return sql`(${link ?? ""}, ${id ?? ""})`
        })
        const rows = yield* sql<{
          message_id: string
          seq: number | string
          segments: number | string
          link_id: string
          smsc_message_id: string
          submitted_at: number | string | null
          created_at: number | string
          validity_seconds: number | string | null
          trace: string | null
          status_rank: number | string
        }>`${partsBySmscId(pairs)}`
        for (const row of rows) {
          // Awaiting a receipt: checked here, not in the WHERE clause, where PostgreSQL's planner would walk the index
          // of awaiting parts end to end for every batch whenever its statistics were taken at a quiet time (few
          // awaiting) and a burst followed; the SMSC id finds a handful of rows whatever the statistics say.
          if (Number(row.status_rank) !== 2) continue
          const receipt = wanted.get(`${row.link_id}\u0000${row.smsc_message_id}`)
          const r = receipt === undefined ? undefined : receipts[receipt]
          if (receipt === undefined || r === undefined) continue
          const submittedAt = Number(row.submitted_at ?? row.created_at)
          const validity = row.validity_seconds === null ? null : Number(row.validity_seconds)
          if (r.at > receiptDeadline(submittedAt, validity)) continue
          const best = newest.get(receipt)
          if (best !== undefined && best.submittedAt >= submittedAt) continue
          newest.set(receipt, {
            message_id: row.message_id,
            seq: Number(row.seq),
            segments: Number(row.segments),
            submittedAt,
            trace: row.trace
          })
        }
      }
      const found = [...newest].sort(([a], [b]) => a - b).map(([receipt, part]) => {
        matched[receipt] = { matched: true, submittedAt: part.submittedAt, ...(part.trace !== null ? { trace: part.trace } : {}) }
        return { ...part, receipt }
      })
      const seen = new Set<string>()
      const parts = found.filter((p) => {
        const key = `${p.message_id}:${p.seq}`
        if (seen.has(key)) return false
        seen.add(key)
        return true
      })
      for (const batch of chunk(parts, 200)) {
        const rows = batch.map((p) => {
          const r = receipts[p.receipt]
          return sql`(${p.message_id}, CAST(${p.seq} AS INTEGER), ${r?.status ?? "undelivered"}, CAST(${r?.at ?? 0} AS BIGINT), CAST(${r?.error ?? null} AS TEXT))`
        })
        yield* sql`
          WITH v(message_id, seq, status, at, error) AS (VALUES ${sql.csv(rows)})
          UPDATE message_parts SET status = v.status, status_rank = 3, done_at = v.at, error = v.error
          FROM v WHERE message_parts.message_id = v.message_id AND message_parts.seq = v.seq
            AND message_parts.status_rank < 3`
      }
      const moves: Array<Move> = []
      const multipart = new Map<string, Transition>()
      for (const p of parts) {
        const r = receipts[p.receipt]
        if (r === undefined) continue
        const info: Transition = {
          at: r.at,
          detail: `receipt for part ${p.seq}: ${r.status}${r.error !== undefined ? ` (err ${r.error})` : ""}`,
          reason: r.error !== undefined ? `err ${r.error}` : undefined,
          facts: { kind: "receipt", seq: p.seq, linkId: r.linkId, reason: r.error !== undefined ? `err ${r.error}` : undefined },
          linkId: r.linkId
        }
        if (p.segments === 1) moves.push({ id: p.message_id, status: r.status, info })
        else multipart.set(p.message_id, info)
      }
      yield* moveMessages(moves, events, changes)
      if (multipart.size > 0) yield* rollupMessages(multipart, events, changes)
      return matched
    })

  /**
   * Keeps receipts that found no part, every candidate form under one `receipt_ref`, at most `orphanMaxPerLink` per
   * link (counted before the batch: nodes writing at once may pass it by a batch each); the rest are dropped.
   */
  const recordOrphans = (all: ReadonlyArray<ReceiptRecord>) =>
    Effect.gen(function*() {
      const receipts = all.filter((r) => r.candidates.length > 0)
      if (receipts.length === 0) return
      const links = [...new Set(receipts.map((r) => r.linkId))]
      const counts = yield* sql<{ link_id: string; n: number | string }>`
        SELECT link_id, COUNT(DISTINCT receipt_ref) AS n FROM orphan_receipts WHERE ${sql.in("link_id", links)}
        GROUP BY link_id`
      const room = new Map(links.map((l) => [l, receiptSettings.orphanMaxPerLink]))
      for (const c of counts) room.set(c.link_id, receiptSettings.orphanMaxPerLink - Number(c.n))
      const kept: Array<ReceiptRecord> = []
      const dropped = new Map<string, number>()
      for (const r of receipts) {
        const left = room.get(r.linkId) ?? 0
        if (left > 0) {
          kept.push(r)
          room.set(r.linkId, left - 1)
        } else {
          dropped.set(r.linkId, (dropped.get(r.linkId) ?? 0) + 1)
        }
      }
      yield* insertOrphans(kept)
      for (const [linkId, n] of dropped) receiptSettings.onOrphansDropped?.(linkId, n)
    })

  const insertOrphans = (receipts: ReadonlyArray<ReceiptRecord>) =>
    Effect.forEach(chunk(receipts.flatMap((r) => {
      const ref = crypto.randomUUID()
      return r.candidates.map((id) => ({
        link_id: r.linkId,
        smsc_message_id: id,
        status: r.status,
        error: r.error ?? null,
        received_at: r.at,
        receipt_ref: ref
      }))
    }), 500), (rows) => {
      const [first, ...rest] = rows
      return first === undefined
        ? Effect.void
        : sql`INSERT INTO orphan_receipts ${sql.insert([first, ...rest])} ON CONFLICT DO NOTHING`.pipe(Effect.asVoid)
    }, { discard: true })

  const isPg = sql.onDialectOrElse({ pg: () => true, orElse: () => false })

  /**
   * Only accepts in one statement, on PostgreSQL: that statement is atomic for the messages in it already, no
   * transaction needed. More than one statement (a batch of over 300 messages) is a transaction: a batch is all or none.
   */
  const acceptsOnly = (ops: ReadonlyArray<Op>) =>
    isPg && ops.every((op) => op._tag === "Accept") && acceptChunks(ops.flatMap((op) => op._tag === "Accept" ? op.messages : [])).length <= 1

  const runBatch = (ops: ReadonlyArray<Op>) => {
    // What moved is told once the batch committed: a rolled-back batch changed nothing.
    const changes: Array<MessageChange> = []
    return (acceptsOnly(ops) ? <A, E, R>(e: Effect.Effect<A, E, R>) => e : sql.withTransaction)(Effect.gen(function*() {
      const accepts = ops.flatMap((op) => op._tag === "Accept" ? op.messages : [])
      if (accepts.length > 0) yield* insertAccepted(accepts)
      const events: Array<EventInsert> = []
      const outcomes = ops.flatMap((op) => op._tag === "Outcomes" ? op.outcomes : [])
      if (outcomes.length > 0) yield* applyOutcomes(outcomes, events, changes)
      const receipts = ops.flatMap((op) => op._tag === "Receipt" ? [op.receipt] : [])
      const matched = receipts.length === 0 ? [] : yield* applyReceipts(receipts, events, changes)
      yield* recordOrphans(receipts.filter((_, i) => matched[i]?.matched !== true))
      let next = 0
      const results = ops.map((op) => op._tag === "Receipt" ? matched[next++] ?? unmatched : notAReceipt)
      yield* insertEvents(events)
      return results
    })).pipe(Effect.tap(() => report(changes)), Effect.mapError(storeError))
  }

  const writer = yield* GroupCommit.make({ maxBatch: 2000, run: runBatch })
  /**
   * On PostgreSQL, accepts have a writer of their own (one statement per batch, on its own pooled connection), so an
   * API answer never waits behind a transaction of a link's submit results and receipts. Safe to run beside the
   * other writer: a message is handed to its link only after its accept committed, so its results always come later.
   * SQLite has one connection: one writer keeps its transactions whole.
   */
  const acceptWriter = isPg ? yield* GroupCommit.make({ maxBatch: 2000, run: runBatch }) : writer

  const get = Effect.fn("MessageStore.get")(function*(id: string, orgId: string) {
    const rows = yield* sql<MessageRow>`SELECT * FROM messages WHERE id = ${id} AND org_id = ${orgId}`
    const m = rows[0]
    if (m === undefined) return Option.none()
    const parts = yield* sql<PartRow>`SELECT * FROM message_parts WHERE message_id = ${id} ORDER BY seq`
    const events = yield* sql<EventRow>`
      SELECT at, status, detail, kind, seq, link_id, command_status, reason, rule_id FROM message_events
      WHERE message_id = ${id} ORDER BY at, event_id`
    const view: MessageView = {
      id: m.id,
      to: `+${m.to_addr}`,
      from: m.from_addr,
      status: m.status as MessageStatus,
      ...(m.reason !== null ? { reason: m.reason } : {}),
      ...(m.rule_id !== undefined && m.rule_id !== null ? { ruleId: m.rule_id } : {}),
      segments: Number(m.segments),
      encoding: m.encoding === "ucs2" ? "ucs2" : "gsm7",
      ...(m.client_ref !== null ? { clientRef: m.client_ref } : {}),
      createdAt: iso(m.created_at),
      updatedAt: iso(m.updated_at),
      ...(m.app_id !== undefined && m.app_id !== null ? { appId: m.app_id } : {}),
      ...(m.campaign_id !== undefined && m.campaign_id !== null ? { campaignId: m.campaign_id } : {}),
      ...(m.message_class === "promotional" || m.message_class === "transactional" ? { messageClass: m.message_class } : {}),
      text: m.text,
      parts: parts.map((p) => ({
        seq: Number(p.seq),
        linkId: p.link_id,
        ...(p.smsc_message_id !== null ? { smscMessageId: p.smsc_message_id } : {}),
        status: p.status as MessageStatus,
        ...(p.error !== null ? { error: p.error } : {}),
        ...(p.submitted_at !== null ? { submittedAt: iso(p.submitted_at) } : {}),
        ...(p.done_at !== null ? { doneAt: iso(p.done_at) } : {})
      })),
      events: events.map(eventView)
    }
    return Option.some(view)
  }, Effect.mapError(storeError))

  const pending = Effect.fn("MessageStore.pending")(function*(
    options: { readonly updatedBefore: number; readonly limit: number; readonly offset?: number }
  ) {
    const rows = yield* sql<MessageRow>`
      SELECT * FROM messages WHERE status_rank < 2 AND updated_at <= ${options.updatedBefore}
      ORDER BY updated_at, id LIMIT ${options.limit} OFFSET ${options.offset ?? 0}`
    if (rows.length === 0) return []
    const parts = yield* sql<{ message_id: string; seq: number | string; link_id: string | null; handed_at: unknown }>`
      SELECT message_id, seq, link_id, handed_at FROM message_parts
      WHERE ${sql.in("message_id", rows.map((r) => r.id))} AND status_rank < 2 ORDER BY seq`
    const seqs = new Map<string, Array<number>>()
    const handed = new Map<string, Array<{ seq: number; linkId: string | null }>>()
    for (const p of parts) {
      const list = seqs.get(p.message_id) ?? []
      list.push(Number(p.seq))
      seqs.set(p.message_id, list)
      if (p.handed_at !== null) {
        const marked = handed.get(p.message_id) ?? []
        marked.push({ seq: Number(p.seq), linkId: p.link_id })
        handed.set(p.message_id, marked)
      }
    }
    return rows.map((m): PendingMessage => ({
      id: m.id,
      to: m.to_addr,
      from: m.from_addr,
      text: m.text,
      encoding: m.encoding === "ucs2" ? "ucs2" : "gsm7",
      segments: Number(m.segments),
      validitySeconds: m.validity_seconds === null ? undefined : Number(m.validity_seconds),
      routeLinkId: m.route_link_id,
      attempts: Number(m.attempts),
      pendingSeqs: seqs.get(m.id) ?? [],
      messageClass: m.message_class === "promotional" ? "promotional" : m.message_class === "transactional" ? "transactional" : undefined,
      handed: handed.get(m.id) ?? [],
      ...(m.trace !== undefined && m.trace !== null ? { trace: m.trace } : {})
    }))
  }, Effect.mapError(storeError))

  const expireOverdue = Effect.fn("MessageStore.expireOverdue")(function*(
    options: { readonly now: number; readonly limit: number }
  ) {
    const { now } = options
    const rows = yield* sql<{ message_id: string; seq: number | string; link_id: string | null; segments: number | string }>`
      SELECT p.message_id, p.seq, p.link_id, m.segments FROM message_parts p JOIN messages m ON m.id = p.message_id
      WHERE p.status_rank = 2 AND p.submitted_at < ${now - receiptSettings.graceMs}
        AND p.submitted_at + COALESCE(CAST(m.validity_seconds AS BIGINT) * 1000,
          CAST(${receiptSettings.assumedValidityMs} AS BIGINT)) + ${receiptSettings.graceMs} < ${now}
      ORDER BY p.submitted_at LIMIT ${options.limit}`
    if (rows.length === 0) return []
    const changes: Array<MessageChange> = []
    const perLink = yield* sql.withTransaction(Effect.gen(function*() {
      const expired: Array<{ message_id: string; seq: number | string }> = []
      for (const batch of chunk(rows, 200)) {
        const values = batch.map((p) => sql`(${p.message_id}, CAST(${Number(p.seq)} AS INTEGER))`)
        // Guarded on the status: a receipt that won the race keeps its part.
        expired.push(...yield* sql<{ message_id: string; seq: number | string }>`
          WITH v(message_id, seq) AS (VALUES ${sql.csv(values)})
          UPDATE message_parts SET status = 'expired', status_rank = 3, error = ${noReceipt}, done_at = ${now}
          FROM v WHERE message_parts.message_id = v.message_id AND message_parts.seq = v.seq
            AND message_parts.status_rank = 2
          RETURNING message_parts.message_id AS message_id, message_parts.seq AS seq`)
      }
      const byPart = new Map(rows.map((r) => [`${r.message_id}:${Number(r.seq)}`, r]))
      const linkOf = new Map<string, string>()
      const moves: Array<Move> = []
      const multipart = new Map<string, Transition>()
      for (const e of expired) {
        const row = byPart.get(`${e.message_id}:${Number(e.seq)}`)
        if (row === undefined || linkOf.has(e.message_id)) continue
        linkOf.set(e.message_id, row.link_id ?? "")
        const info: Transition = {
          at: now,
          detail: "no receipt within validity + grace",
          reason: noReceipt,
          facts: { kind: "expired", reason: noReceipt },
          linkId: row.link_id
        }
        if (Number(row.segments) === 1) moves.push({ id: e.message_id, status: "expired", info })
        else multipart.set(e.message_id, info)
      }
      const events: Array<EventInsert> = []
      yield* moveMessages(moves, events, changes)
      if (multipart.size > 0) yield* rollupMessages(multipart, events, changes)
      yield* insertEvents(events)
      const perLink = new Map<string, number>()
      for (const e of events) {
        const link = linkOf.get(e.message_id) ?? ""
        perLink.set(link, (perLink.get(link) ?? 0) + 1)
      }
      return [...perLink].map(([linkId, messages]): ExpiredByLink => ({ linkId, messages }))
    }))
    yield* report(changes)
    return perLink
  }, Effect.mapError(storeError))

  const dropOrphansBefore = Effect.fn("MessageStore.dropOrphansBefore")(function*(at: number) {
    const counts = yield* sql<{ link_id: string; n: number | string }>`
      SELECT link_id, COUNT(DISTINCT COALESCE(receipt_ref, smsc_message_id)) AS n FROM orphan_receipts
      WHERE received_at < ${at} GROUP BY link_id`
    if (counts.length === 0) return []
    yield* sql`DELETE FROM orphan_receipts WHERE received_at < ${at}`
    return counts.map((c) => ({ linkId: c.link_id, receipts: Number(c.n) }))
  }, Effect.mapError(storeError))

  return MessageStore.of({
    accept: (messages) => acceptWriter.submit({ _tag: "Accept", messages }).pipe(Effect.asVoid),
    recordOutcomes: (outcomes) => writer.submit({ _tag: "Outcomes", outcomes }).pipe(Effect.asVoid),
    recordHanded,
    catchUp,
    settleUnknown,
    recordReceipt: (receipt) => writer.submit({ _tag: "Receipt", receipt }),
    get,
    pending,
    touch: (ids) =>
      Effect.suspend(() => {
        const now = Date.now()
        return Effect.forEach(chunk(ids, 500), (batch) =>
          sql`UPDATE messages SET updated_at = ${now} WHERE status_rank < 2 AND updated_at > 0 AND ${sql.in("id", batch)}`, {
            discard: true
          })
      }).pipe(Effect.mapError(storeError)),
    redriven: (ids) =>
      Effect.suspend(() => {
        const now = Date.now()
        return Effect.forEach(chunk(ids, 500), (batch) =>
          sql`UPDATE messages SET updated_at = ${now} WHERE status_rank < 2 AND ${sql.in("id", batch)}`, { discard: true })
      }).pipe(Effect.mapError(storeError)),
    release: (ids) =>
      Effect.forEach(chunk(ids, 500), (batch) =>
        sql`UPDATE messages SET updated_at = 0 WHERE status_rank < 2 AND ${sql.in("id", batch)}`, { discard: true }).pipe(
        Effect.mapError(storeError)
      ),
    ping: sql`SELECT 1`.pipe(Effect.asVoid, Effect.mapError(storeError)),
    dropOrphansBefore,
    expireOverdue,
    pendingCount: sql<{ n: number | string }>`SELECT COUNT(*) AS n FROM messages WHERE status_rank < 2`.pipe(
      Effect.map((rows) => Number(rows[0]?.n ?? 0)),
      Effect.mapError(storeError)
    ),
    backlog: isPg ? Effect.zipWith(writer.backlog, acceptWriter.backlog, (a, b) => a + b) : writer.backlog
  })
})
