/**
 * The Message Center's message search: one organisation's messages, filtered by id, recipient, client reference,
 * status, app, campaign and creation time, newest first, paged by a keyset cursor over (created_at, id).
 *
 * Invariants: every query is scoped by `org_id` (another organisation's message is never listed); a page is at most
 * `maxPageSize` rows; each filter has an index leading with it and ending in (created_at, id) (migration
 * 0014_message_search), so a page is a range read of one index in order — its cost does not grow with the
 * organisation's messages, nor with how deep the page is.
 */
import { Context, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import type { SqlError } from "effect/sql"
import { messageWithCauses, StoreUnavailable } from "../domain/Errors.ts"
import type { MessageStatus, MessageSummary } from "../domain/Message.ts"
import type { Before } from "./Paging.ts"

/** The most rows one page may ask for. */
export const maxPageSize = 200

/** The next page's cursor as text every front hands out (REST `next`, gRPC inside its page token): `<at>.<id>`. */
export const cursorText = (next: Before): string => `${next.at}.${next.id ?? ""}`

/** The shape of `cursorText`'s output, for the fronts' schemas. */
export const cursorPattern = /^[0-9]{1,15}\.[^\s]{1,128}$/

/** A cursor read back from `cursorText`'s form; undefined when the text is not one. */
export const parseCursor = (text: string): { readonly at: number; readonly id: string } | undefined => {
  if (!cursorPattern.test(text)) return undefined
  const dot = text.indexOf(".")
  return { at: Number(text.slice(0, dot)), id: text.slice(dot + 1) }
}

/** What to look for; every field but `orgId` is optional and they combine with AND. */
export interface MessageFilter {
  readonly orgId: string
  readonly id?: string | undefined
  /** The recipient as stored: E.164 digits without "+". */
  readonly to?: string | undefined
  readonly clientRef?: string | undefined
  readonly status?: MessageStatus | undefined
  readonly appId?: string | undefined
  readonly campaignId?: string | undefined
  /** Created at or after (epoch ms). */
  readonly since?: number | undefined
  /** Created before (epoch ms). */
  readonly until?: number | undefined
}

export interface MessagePage {
  readonly items: ReadonlyArray<MessageSummary>
  /** Where the next page starts (the last item's creation time and id); absent on the last page. */
  readonly next: Before | undefined
}

export class MessageSearch extends Context.Service<MessageSearch, {
  readonly search: (
    filter: MessageFilter,
    page: { readonly limit: number; readonly after?: Before | undefined }
  ) => Effect.Effect<MessagePage, StoreUnavailable>
}>()("smsgw/storage/MessageSearch") {
  static readonly layer = Layer.effect(MessageSearch, Effect.suspend(() => make))
}

type Int = number | string | bigint

interface Row {
  readonly id: string
  readonly to_addr: string
  readonly from_addr: string
  readonly status: string
  readonly reason: string | null
  readonly rule_id: string | null
  readonly segments: Int
  readonly encoding: string
  readonly client_ref: string | null
  readonly app_id: string | null
  readonly campaign_id: string | null
  readonly created_at: Int
  readonly updated_at: Int
}

const iso = (ms: Int) => new Date(Number(ms)).toISOString()

const summary = (r: Row): MessageSummary => ({
  id: r.id,
  to: `+${r.to_addr}`,
  from: r.from_addr,
  status: r.status as MessageStatus,
  ...(r.reason !== null ? { reason: r.reason } : {}),
  ...(r.rule_id !== null ? { ruleId: r.rule_id } : {}),
  segments: Number(r.segments),
  encoding: r.encoding === "ucs2" ? "ucs2" : "gsm7",
  ...(r.client_ref !== null ? { clientRef: r.client_ref } : {}),
  ...(r.app_id !== null ? { appId: r.app_id } : {}),
  ...(r.campaign_id !== null ? { campaignId: r.campaign_id } : {}),
  createdAt: iso(r.created_at),
  updatedAt: iso(r.updated_at)
})

const storeError = (error: SqlError.SqlError) => new StoreUnavailable({ message: messageWithCauses(error), cause: error })

/** The page's statement (one row more than the page: it tells whether another follows, without a count). */
export const searchStatement = (
  sql: SqlClient.SqlClient,
  filter: MessageFilter,
  page: { readonly limit: number; readonly after?: Before | undefined }
) => {
  const where = [
    sql`org_id = ${filter.orgId}`,
    filter.id !== undefined ? sql`id = ${filter.id}` : undefined,
    filter.to !== undefined ? sql`to_addr = ${filter.to}` : undefined,
    filter.clientRef !== undefined ? sql`client_ref = ${filter.clientRef}` : undefined,
    filter.status !== undefined ? sql`status = ${filter.status}` : undefined,
    filter.appId !== undefined ? sql`app_id = ${filter.appId}` : undefined,
    filter.campaignId !== undefined ? sql`campaign_id = ${filter.campaignId}` : undefined,
    filter.since !== undefined ? sql`created_at >= ${filter.since}` : undefined,
    filter.until !== undefined ? sql`created_at < ${filter.until}` : undefined,
    // A row value: an index bound on both databases (PostgreSQL reads the OR form as a filter over every newer row).
    page.after === undefined
      ? undefined
      : page.after.id === undefined
      ? sql`created_at < ${page.after.at}`
      : sql`(created_at, id) < (${page.after.at}, ${page.after.id})`
  ].filter((c) => c !== undefined)
  return sql<Row>`
    SELECT id, to_addr, from_addr, status, reason, rule_id, segments, encoding, client_ref, app_id, campaign_id,
      created_at, updated_at
    FROM messages WHERE ${sql.and(where)}
    ORDER BY created_at DESC, id DESC LIMIT ${pageSize(page.limit) + 1}`
}

const pageSize = (limit: number) => Math.max(1, Math.min(maxPageSize, Math.floor(limit)))

export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  const search = Effect.fn("MessageSearch.search")(function*(
    filter: MessageFilter,
    page: { readonly limit: number; readonly after?: Before | undefined }
  ) {
    const limit = pageSize(page.limit)
    const rows = yield* searchStatement(sql, filter, page)
    const items = rows.slice(0, limit).map(summary)
    const last = rows.length > limit ? rows[limit - 1] : undefined
    return { items, next: last === undefined ? undefined : { at: Number(last.created_at), id: last.id } }
  }, Effect.mapError(storeError))

  return MessageSearch.of({ search })
})
