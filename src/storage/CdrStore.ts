/**
 * The CDR export's rows (SQLite embedded, PostgreSQL in the cluster): which final messages are due, numbered batches
 * of them, and the records of a batch or of a time range read back one object's group at a time, in pages.
 */
import { Context, Effect, Layer, Option } from "effect"
import { SqlClient } from "effect/sql"
import type { SqlError } from "effect/sql"
import { countryOf, hourMs, noOrganisation } from "../domain/Cdr.ts"
import type { CdrFormat, CdrRecord } from "../domain/Cdr.ts"
import { messageWithCauses, StoreUnavailable } from "../domain/Errors.ts"

/** What an export writes: one batch's messages, or every final message accepted in [from, to) (a re-export). */
export type CdrSelection =
  | { readonly _tag: "Batch"; readonly batch: number }
  | { readonly _tag: "Range"; readonly from: number; readonly to: number }

/** One object's worth: an organisation's messages accepted in one hour (hours since the epoch, UTC). */
export interface CdrGroup {
  readonly organisation: string
  readonly hour: number
  readonly messages: number
}

/** A numbered batch and what its files are named by, fixed when it was numbered. */
export interface CdrBatch {
  readonly batch: number
  readonly token: string
  readonly prefix: string
  readonly format: CdrFormat
  readonly messages: number
}

/** Where a page ended: the next page starts after it. */
export interface CdrCursor {
  readonly createdAt: number
  readonly id: string
}

export class CdrStore extends Context.Service<CdrStore, {
  /** The batches numbered but not marked done (a run stopped before the end), oldest first. */
  readonly pendingBatches: Effect.Effect<ReadonlyArray<CdrBatch>, StoreUnavailable>
  /**
   * Numbers the next batch: up to `limit` due messages (final, in no batch yet), longest final first, its files to be
   * named by `naming`. None when nothing is due. A message is in exactly one batch, even with two exporters at once (a
   * singleton moving nodes).
   */
  readonly assign: (
    limit: number,
    now: number,
    naming: { readonly token: string; readonly prefix: string; readonly format: CdrFormat }
  ) => Effect.Effect<Option.Option<CdrBatch>, StoreUnavailable>
  readonly finish: (batch: number, objects: number, now: number) => Effect.Effect<void, StoreUnavailable>
  /** When the longest-waiting due message became final (epoch ms); None when none is due. */
  readonly oldestDue: Effect.Effect<Option.Option<number>, StoreUnavailable>
  readonly groups: (selection: CdrSelection) => Effect.Effect<ReadonlyArray<CdrGroup>, StoreUnavailable>
  /** Up to `limit` records of one group after `after`, in (accepted time, id) order. */
  readonly page: (
    selection: CdrSelection,
    group: CdrGroup,
    after: CdrCursor | undefined,
    limit: number
  ) => Effect.Effect<ReadonlyArray<CdrRecord>, StoreUnavailable>
}>()("smsgw/storage/CdrStore") {
  static readonly layer = Layer.effect(CdrStore, Effect.suspend(() => make))
}

const storeError = (error: SqlError.SqlError) => new StoreUnavailable({ message: messageWithCauses(error), cause: error })

/** Messages numbered per statement (see `assign`). */
const numberingChunk = 5_000

interface MessageRow {
  readonly id: string
  readonly org_id: string | null
  readonly app_id: string | null
  readonly campaign_id: string | null
  readonly client_ref: string | null
  readonly message_class: string | null
  readonly to_addr: string
  readonly from_addr: string
  readonly segments: number | string
  readonly encoding: string
  readonly status: string
  readonly reason: string | null
  readonly rule_id: string | null
  readonly attempts: number | string
  readonly created_at: number | string
  readonly updated_at: number | string
}

interface PartRow {
  readonly message_id: string
  readonly link_id: string | null
  readonly smsc_message_id: string | null
  readonly error: string | null
  readonly submitted_at: number | string | null
  readonly done_at: number | string | null
}

const numberOrNull = (v: number | string | null): number | null => v === null ? null : Number(v)

export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const countries = new Map<string, string | null>()
  // A literal, not a parameter: PostgreSQL takes two parameters as two expressions, and the GROUP BY must repeat it.
  const hourLiteral = sql.literal(String(hourMs))

  const pendingBatches = sql<{ id: number | string; token: string; prefix: string; format: CdrFormat; messages: number | string }>`
    SELECT id, token, prefix, format, messages FROM cdr_batches WHERE state = 'pending' ORDER BY id`.pipe(
    Effect.map((rows) =>
      rows.map((r): CdrBatch => ({ batch: Number(r.id), token: r.token, prefix: r.prefix, format: r.format, messages: Number(r.messages) }))
    ),
    Effect.mapError(storeError)
  )

  /**
   * The batch row first, then its messages in statements of `numberingChunk` rows: on SQLite (which runs on the event
   * loop) no statement holds submissions up for long. A run stopped half-way leaves a pending batch holding what it
   * numbered; that batch is written as it is, the rest goes into later ones — every message still in one batch.
   */
  const assign = (limit: number, now: number, naming: { readonly token: string; readonly prefix: string; readonly format: CdrFormat }) =>
    Effect.gen(function*() {
      const batch = yield* sql.withTransaction(Effect.gen(function*() {
        const [last] = yield* sql<{ id: number | string | null }>`SELECT MAX(id) AS id FROM cdr_batches`
        const next = Number(last?.id ?? 0) + 1
        // Two exporters at once: the second insert of the same number fails on the key and its run retries later.
        yield* sql`INSERT INTO cdr_batches (id, token, prefix, format, state, messages, objects, created_at)
          VALUES (${next}, ${naming.token}, ${naming.prefix}, ${naming.format}, 'pending', 0, 0, ${now})`
        return next
      }))
      let messages = 0
      while (messages < limit) {
        const chunk = Math.min(numberingChunk, limit - messages)
        // `cdr_batch IS NULL` again in the outer WHERE: PostgreSQL re-checks it on a row another run took meanwhile.
        const added = yield* sql<{ id: string }>`UPDATE messages SET cdr_batch = ${batch} WHERE id IN (
            SELECT id FROM messages WHERE status_rank = 3 AND cdr_batch IS NULL ORDER BY updated_at LIMIT ${chunk}
          ) AND cdr_batch IS NULL RETURNING id`
        messages += added.length
        if (added.length < chunk) break
      }
      if (messages === 0) {
        yield* sql`DELETE FROM cdr_batches WHERE id = ${batch}`
        return Option.none<CdrBatch>()
      }
      yield* sql`UPDATE cdr_batches SET messages = ${messages} WHERE id = ${batch}`
      return Option.some<CdrBatch>({ batch, ...naming, messages })
    }).pipe(Effect.mapError(storeError))

  const finish = (batch: number, objects: number, now: number) =>
    sql`UPDATE cdr_batches SET state = 'done', objects = ${objects}, done_at = ${now} WHERE id = ${batch}`.pipe(
      Effect.asVoid,
      Effect.mapError(storeError)
    )

  const oldestDue = sql<{ at: number | string | null }>`
    SELECT MIN(updated_at) AS at FROM messages WHERE status_rank = 3 AND cdr_batch IS NULL`.pipe(
    Effect.map(([row]) => row?.at === null || row?.at === undefined ? Option.none<number>() : Option.some(Number(row.at))),
    Effect.mapError(storeError)
  )

  const selected = (selection: CdrSelection) =>
    selection._tag === "Batch"
      ? sql`cdr_batch = ${selection.batch}`
      : sql`created_at >= ${selection.from} AND created_at < ${selection.to} AND status_rank = 3`

  const groups = (selection: CdrSelection) =>
    sql<{ org_id: string | null; hour: number | string; n: number | string }>`
      SELECT org_id, created_at / ${hourLiteral} AS hour, COUNT(*) AS n FROM messages WHERE ${selected(selection)}
      GROUP BY org_id, created_at / ${hourLiteral} ORDER BY org_id, hour`.pipe(
      Effect.map((rows) =>
        rows.map((r): CdrGroup => ({ organisation: r.org_id ?? noOrganisation, hour: Number(r.hour), messages: Number(r.n) }))
      ),
      Effect.mapError(storeError)
    )

  const organisationIs = (organisation: string) =>
    organisation === noOrganisation ? sql`org_id IS NULL` : sql`org_id = ${organisation}`

  const page = (selection: CdrSelection, group: CdrGroup, after: CdrCursor | undefined, limit: number) =>
    Effect.gen(function*() {
      const from = selection._tag === "Range" ? Math.max(group.hour * hourMs, selection.from) : group.hour * hourMs
      const to = selection._tag === "Range" ? Math.min((group.hour + 1) * hourMs, selection.to) : (group.hour + 1) * hourMs
      const keyset = after === undefined
        ? sql`created_at >= ${from}`
        : sql`(created_at > ${after.createdAt} OR (created_at = ${after.createdAt} AND id > ${after.id}))`
      const rows = yield* sql<MessageRow>`
        SELECT id, org_id, app_id, campaign_id, client_ref, message_class, to_addr, from_addr, segments, encoding, status,
          reason, rule_id, attempts, created_at, updated_at
        FROM messages
        WHERE ${selected(selection)} AND ${organisationIs(group.organisation)} AND ${keyset} AND created_at < ${to}
        ORDER BY created_at, id LIMIT ${limit}`
      if (rows.length === 0) return []
      const parts = yield* sql<PartRow>`
        SELECT message_id, link_id, smsc_message_id, error, submitted_at, done_at FROM message_parts
        WHERE ${sql.in("message_id", rows.map((r) => r.id))} ORDER BY message_id, seq`
      const byMessage = new Map<string, Array<PartRow>>()
      for (const p of parts) {
        const list = byMessage.get(p.message_id)
        if (list === undefined) byMessage.set(p.message_id, [p])
        else list.push(p)
      }
      return rows.map((m) => record(m, byMessage.get(m.id) ?? [], countries))
    }).pipe(Effect.mapError(storeError))

  return CdrStore.of({ pendingBatches, assign, finish, oldestDue, groups, page })
})

/** A message row and its parts as one record. */
const record = (m: MessageRow, parts: ReadonlyArray<PartRow>, countries: Map<string, string | null>): CdrRecord => {
  const links = new Set<string>()
  const errors = new Set<string>()
  const smscIds: Array<string> = []
  let submittedAt: number | null = null
  let doneAt: number | null = null
  let allDone = parts.length > 0
  for (const p of parts) {
    if (p.link_id !== null) links.add(p.link_id)
    if (p.smsc_message_id !== null) smscIds.push(p.smsc_message_id)
    if (p.error !== null && p.error !== "") errors.add(p.error)
    const submitted = numberOrNull(p.submitted_at)
    if (submitted !== null && (submittedAt === null || submitted < submittedAt)) submittedAt = submitted
    const done = numberOrNull(p.done_at)
    if (done === null) allDone = false
    else if (doneAt === null || done > doneAt) doneAt = done
  }
  const rejected = m.status === "rejected"
  const partError = errors.size > 0 ? [...errors].join(";") : null
  return {
    id: m.id,
    organisation: m.org_id ?? noOrganisation,
    app: m.app_id,
    campaign: m.campaign_id,
    clientReference: m.client_ref,
    messageClass: m.message_class,
    to: m.to_addr,
    from: m.from_addr,
    destinationCountry: countryOf(m.to_addr, countries),
    links: [...links],
    smscMessageIds: smscIds,
    parts: Number(m.segments),
    encoding: m.encoding,
    status: m.status,
    acceptedAt: Number(m.created_at),
    submittedAt,
    finalAt: allDone && doneAt !== null ? doneAt : Number(m.updated_at),
    error: rejected || m.status === "delivered" ? null : partError ?? m.reason,
    policyReason: rejected ? m.reason : null,
    policyRule: rejected ? m.rule_id : null,
    attempts: Number(m.attempts)
  }
}
