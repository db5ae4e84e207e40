/**
 * Inbound (mobile-originated) messages in SQL (SQLite embedded, PostgreSQL in the cluster): the raw deliver_sm a link
 * stored before answering its SMSC, the messages the processor made of them, their callbacks, and the routing
 * document.
 *
 * - `receive` is the link's: one INSERT, committed before the deliver_sm_resp, so nothing acknowledged is lost.
 * - `complete` is the processor's: in one transaction it deletes the raw rows it used and writes the messages and
 *   their callbacks (into the status callbacks' outbox). Deleting fewer rows than it read means another processor
 *   (a singleton moving nodes) took them: the transaction is rolled back and nothing is written twice.
 * - Reads of the API always name the organisation (an app token also its app).
 */
import { Context, Effect, Layer, Option, Schema } from "effect"
import { SqlClient } from "effect/sql"
import type { SqlError } from "effect/sql"
import { messageWithCauses, StoreUnavailable } from "../domain/Errors.ts"
import { emptyInboundDocument, InboundDocument } from "../domain/Inbound.ts"
import type { InboundAction, InboundView } from "../domain/Inbound.ts"

export interface RawInbound {
  readonly linkId: string
  readonly source: string
  readonly destination: string
  readonly esmClass: number
  readonly dataCoding: number
  readonly payload: Uint8Array
  readonly concat?: { readonly ref: number; readonly total: number; readonly seq: number } | undefined
  readonly receivedAt: number
}

export interface StoredRaw extends RawInbound {
  readonly id: number
}

export interface NewInbound {
  readonly id: string
  readonly orgId: string | null
  readonly appId: string | null
  readonly routeId: string | null
  readonly linkId: string
  readonly from: string
  readonly to: string
  readonly text: string
  readonly encoding: string
  readonly parts: number
  readonly missingParts: number
  readonly keyword: string | null
  readonly action: InboundAction | null
  readonly receivedAt: number
}

export interface InboundCallback {
  readonly inboundId: string
  readonly orgId: string
  readonly appId: string
  readonly url: string
  readonly body: string
}

export interface InboundQuery {
  readonly orgId: string
  readonly appId?: string | undefined
  readonly from?: string | undefined
  /** Epoch ms, inclusive. */
  readonly since?: number | undefined
  /** Ids below this one (the previous page's last). */
  readonly before?: string | undefined
  readonly limit: number
}

export interface StoredDocument {
  readonly version: number
  readonly document: InboundDocument
  readonly updatedAt: number | null
}

/** The rows a transaction read were taken by another processor meanwhile: roll back. */
class TakenElsewhere extends Schema.TaggedError<TakenElsewhere>()("TakenElsewhere", {}) {}

export class InboundStore extends Context.Service<InboundStore, {
  readonly receive: (raw: RawInbound) => Effect.Effect<void, StoreUnavailable>
  /** The oldest raw rows, at most `limit`. */
  readonly pending: (limit: number) => Effect.Effect<ReadonlyArray<StoredRaw>, StoreUnavailable>
  /** Raw rows of one concatenated message (same link, sender and reference). */
  readonly siblings: (raw: StoredRaw) => Effect.Effect<ReadonlyArray<StoredRaw>, StoreUnavailable>
  /** False when another processor had taken the rows (nothing written). */
  readonly complete: (input: {
    readonly rawIds: ReadonlyArray<number>
    readonly messages: ReadonlyArray<NewInbound>
    readonly callbacks: ReadonlyArray<InboundCallback>
    readonly now: number
  }) => Effect.Effect<boolean, StoreUnavailable>
  readonly document: Effect.Effect<StoredDocument, StoreUnavailable>
  readonly saveDocument: (document: InboundDocument, by: string, now: number) => Effect.Effect<StoredDocument, StoreUnavailable>
  readonly list: (query: InboundQuery) => Effect.Effect<ReadonlyArray<InboundView>, StoreUnavailable>
  readonly get: (orgId: string, id: string, appId?: string) => Effect.Effect<Option.Option<InboundView>, StoreUnavailable>
  /** Raw rows waiting (the processor's backlog) and the oldest's age. */
  readonly backlog: Effect.Effect<{ readonly waiting: number; readonly oldestAt: number | undefined }, StoreUnavailable>
}>()("smsgw/storage/InboundStore") {
  static readonly layer = Layer.effect(InboundStore, Effect.suspend(() => make))
}

const storeError = (error: SqlError.SqlError) => new StoreUnavailable({ message: messageWithCauses(error), cause: error })

type Int = number | bigint | string

interface RawRow {
  readonly id: Int
  readonly link_id: string
  readonly source: string
  readonly destination: string
  readonly esm_class: Int
  readonly data_coding: Int
  readonly payload: Uint8Array
  readonly concat_ref: Int | null
  readonly concat_total: Int | null
  readonly concat_seq: Int | null
  readonly received_at: Int
}

interface MessageRow {
  readonly id: string
  readonly app_id: string | null
  readonly route_id: string | null
  readonly link_id: string
  readonly sender: string
  readonly recipient: string
  readonly body: string
  readonly encoding: string
  readonly parts: Int
  readonly missing_parts: Int
  readonly keyword: string | null
  readonly action: string | null
  readonly received_at: Int
}

const toRaw = (row: RawRow): StoredRaw => ({
  id: Number(row.id),
  linkId: row.link_id,
  source: row.source,
  destination: row.destination,
  esmClass: Number(row.esm_class),
  dataCoding: Number(row.data_coding),
  payload: row.payload,
  concat: row.concat_ref === null || row.concat_total === null || row.concat_seq === null
    ? undefined
    : { ref: Number(row.concat_ref), total: Number(row.concat_total), seq: Number(row.concat_seq) },
  receivedAt: Number(row.received_at)
})

const toView = (row: MessageRow): InboundView => ({
  id: row.id,
  appId: row.app_id,
  routeId: row.route_id,
  linkId: row.link_id,
  from: row.sender,
  to: row.recipient,
  text: row.body,
  encoding: row.encoding,
  parts: Number(row.parts),
  missingParts: Number(row.missing_parts),
  keyword: row.keyword,
  action: row.action === "opt_out" || row.action === "opt_in" ? row.action : null,
  receivedAt: new Date(Number(row.received_at)).toISOString()
})

const decodeDocument = Schema.decodeUnknownOption(Schema.fromJsonString(InboundDocument))

const messageColumns = `id, app_id, route_id, link_id, sender, recipient, body, encoding, parts, missing_parts, keyword,
  action, received_at`

export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const columns = sql.literal(messageColumns)

  const receive = (raw: RawInbound) =>
    sql`INSERT INTO inbound_raw ${
      sql.insert({
        link_id: raw.linkId,
        source: raw.source,
        destination: raw.destination,
        esm_class: raw.esmClass,
        data_coding: raw.dataCoding,
        payload: raw.payload,
        concat_ref: raw.concat?.ref ?? null,
        concat_total: raw.concat?.total ?? null,
        concat_seq: raw.concat?.seq ?? null,
        received_at: raw.receivedAt
      })
    }`.pipe(Effect.asVoid, Effect.mapError(storeError))

  const pending = (limit: number) =>
    sql<RawRow>`SELECT * FROM inbound_raw ORDER BY id LIMIT ${limit}`.pipe(
      Effect.map((rows) => rows.map(toRaw)),
      Effect.mapError(storeError)
    )

  const siblings = (raw: StoredRaw) =>
    raw.concat === undefined
      ? Effect.succeed([raw])
      : sql<RawRow>`SELECT * FROM inbound_raw
          WHERE link_id = ${raw.linkId} AND source = ${raw.source} AND concat_ref = ${raw.concat.ref}
            AND concat_total = ${raw.concat.total}
          ORDER BY id`.pipe(Effect.map((rows) => rows.map(toRaw)), Effect.mapError(storeError))

  const complete = (input: {
    readonly rawIds: ReadonlyArray<number>
    readonly messages: ReadonlyArray<NewInbound>
    readonly callbacks: ReadonlyArray<InboundCallback>
    readonly now: number
  }) =>
    sql.withTransaction(Effect.gen(function*() {
      if (input.rawIds.length > 0) {
        const deleted = yield* sql<{ id: Int }>`DELETE FROM inbound_raw WHERE ${sql.in("id", input.rawIds)} RETURNING id`
        if (deleted.length !== new Set(input.rawIds).size) return yield* new TakenElsewhere()
      }
      const [m0, ...ms] = input.messages.map((m) => ({
        id: m.id,
        org_id: m.orgId,
        app_id: m.appId,
        route_id: m.routeId,
        link_id: m.linkId,
        sender: m.from,
        recipient: m.to,
        body: m.text,
        encoding: m.encoding,
        parts: m.parts,
        missing_parts: m.missingParts,
        keyword: m.keyword,
        action: m.action,
        received_at: m.receivedAt
      }))
      if (m0 !== undefined) yield* sql`INSERT INTO inbound_messages ${sql.insert([m0, ...ms])}`
      const [c0, ...cs] = input.callbacks.map((c) => ({
        message_id: null,
        inbound_id: c.inboundId,
        org_id: c.orgId,
        app_id: c.appId,
        url: c.url,
        body: c.body,
        state: "pending",
        attempts: 0,
        next_at: input.now,
        created_at: input.now
      }))
      if (c0 !== undefined) yield* sql`INSERT INTO callback_outbox ${sql.insert([c0, ...cs])}`
      return true
    })).pipe(
      Effect.catchTag("TakenElsewhere", () => Effect.succeed(false)),
      Effect.mapError(storeError)
    )

  const document = sql<{ version: Int; document: string; updated_at: Int }>`
    SELECT version, document, updated_at FROM inbound_routes WHERE id = 1`.pipe(
    Effect.map(([row]): StoredDocument => {
      if (row === undefined) return { version: 0, document: emptyInboundDocument, updatedAt: null }
      const decoded = decodeDocument(row.document)
      return {
        version: Number(row.version),
        document: Option.getOrElse(decoded, () => emptyInboundDocument),
        updatedAt: Number(row.updated_at)
      }
    }),
    Effect.mapError(storeError)
  )

  const saveDocument = (doc: InboundDocument, by: string, now: number) =>
    sql.withTransaction(Effect.gen(function*() {
      const text = JSON.stringify(doc)
      const updated = yield* sql<{ version: Int }>`UPDATE inbound_routes
        SET version = version + 1, document = ${text}, updated_at = ${now}, updated_by = ${by}
        WHERE id = 1 RETURNING version`
      if (updated[0] !== undefined) return { version: Number(updated[0].version), document: doc, updatedAt: now }
      yield* sql`INSERT INTO inbound_routes ${sql.insert({ id: 1, version: 1, document: text, updated_at: now, updated_by: by })}`
      return { version: 1, document: doc, updatedAt: now }
    })).pipe(Effect.mapError(storeError))

  const list = (q: InboundQuery) =>
    sql<MessageRow>`SELECT ${columns} FROM inbound_messages
      WHERE org_id = ${q.orgId}
        ${q.appId !== undefined ? sql`AND app_id = ${q.appId}` : sql``}
        ${q.from !== undefined ? sql`AND sender = ${q.from}` : sql``}
        ${q.since !== undefined ? sql`AND received_at >= ${q.since}` : sql``}
        ${q.before !== undefined ? sql`AND id < ${q.before}` : sql``}
      ORDER BY id DESC
      LIMIT ${q.limit}`.pipe(Effect.map((rows) => rows.map(toView)), Effect.mapError(storeError))

  const get = (orgId: string, id: string, appId?: string) =>
    sql<MessageRow>`SELECT ${columns} FROM inbound_messages
      WHERE id = ${id} AND org_id = ${orgId} ${appId !== undefined ? sql`AND app_id = ${appId}` : sql``}`.pipe(
      Effect.map(([row]) => (row === undefined ? Option.none() : Option.some(toView(row)))),
      Effect.mapError(storeError)
    )

  const backlog = sql<{ n: Int; oldest: Int | null }>`SELECT COUNT(*) AS n, MIN(received_at) AS oldest FROM inbound_raw`.pipe(
    Effect.map(([row]) => ({
      waiting: Number(row?.n ?? 0),
      oldestAt: row?.oldest === null || row?.oldest === undefined ? undefined : Number(row.oldest)
    })),
    Effect.mapError(storeError)
  )

  return InboundStore.of({ receive, pending, siblings, complete, document, saveDocument, list, get, backlog })
})
