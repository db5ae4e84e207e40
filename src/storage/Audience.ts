/**
 * The audience of a campaign: the contacts of one or more lists of an organisation, read as a stream in list order
 * (the order the campaign names them) then upload order (`pos`), each number once (its first occurrence wins).
 *
 * Invariants:
 * - Tenant isolation: only lists of the organisation are read; another organisation's list id is as unknown as a
 *   missing one (`resolve` names both as missing).
 * - Bounded memory: the stream reads pages of `pageSize` contacts by a cursor (list, pos). Deduplication is the
 *   database's: a contact is skipped when its number is in an earlier list of the audience (NOT EXISTS on the
 *   contacts' primary key (list_id, msisdn), one index probe per earlier list), and numbers are unique within a list.
 *   Nothing is remembered between pages but the cursor, so a million contacts cost a page of memory.
 * - The stream reads the lists as they are while it runs (no snapshot): a campaign that needs a fixed audience copies
 *   it once (campaign_recipients) when it starts.
 */
import { Context, Effect, Layer, Option, Stream } from "effect"
import { SqlClient } from "effect/sql"
import type { SqlError } from "effect/sql"
import { messageWithCauses, StoreUnavailable } from "../domain/Errors.ts"
import type { Msisdn } from "../domain/Msisdn.ts"

/** One recipient of an audience, as its list holds it. */
export interface AudienceContact {
  /** E.164 without "+", as stored. */
  readonly msisdn: Msisdn
  /** ISO 3166 country of the number, when known. */
  readonly country: string | undefined
  /** The contact's other columns, keys in lower case (template variables). */
  readonly vars: Readonly<Record<string, string>>
  readonly listId: string
  readonly pos: number
}

/** The lists of a request that belong to the organisation (in the order given, repeats dropped) and the others. */
export interface ResolvedLists {
  readonly found: ReadonlyArray<string>
  readonly missing: ReadonlyArray<string>
}

export const defaultPageSize = 1_000

export class Audience extends Context.Service<Audience, {
  /** Which of `lists` are the organisation's. */
  readonly resolve: (orgId: string, lists: ReadonlyArray<string>) => Effect.Effect<ResolvedLists, StoreUnavailable>
  /** The contacts of the organisation's lists among `lists`, deduplicated by number, in list then `pos` order. */
  readonly contacts: (
    orgId: string,
    lists: ReadonlyArray<string>,
    options?: { readonly pageSize?: number | undefined }
  ) => Stream.Stream<AudienceContact, StoreUnavailable>
  /** How many distinct numbers the organisation's lists among `lists` hold: the length of `contacts`. */
  readonly count: (orgId: string, lists: ReadonlyArray<string>) => Effect.Effect<number, StoreUnavailable>
}>()("smsgw/storage/Audience") {
  static readonly layer = Layer.effect(Audience, Effect.suspend(() => make))
}

type Int = number | string | bigint

interface ContactRow {
  readonly msisdn: string
  readonly country: string | null
  readonly vars: string
  readonly pos: Int
}

const failed = (error: SqlError.SqlError) => new StoreUnavailable({ message: messageWithCauses(error), cause: error })

/** `vars` is written by the lists' store from parsed CSV columns: a JSON object of strings. */
const varsOf = (json: string): Readonly<Record<string, string>> => {
  const parsed: unknown = JSON.parse(json)
  if (typeof parsed !== "object" || parsed === null) return {}
  const out: Record<string, string> = {}
  for (const [key, value] of Object.entries(parsed)) {
    if (value !== undefined && value !== null) out[key] = String(value)
  }
  return out
}

interface Cursor {
  /** Index into the resolved lists. */
  readonly list: number
  /** Last `pos` read in that list. */
  readonly after: number
}

const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  const resolve = (orgId: string, lists: ReadonlyArray<string>) =>
    Effect.gen(function*() {
      const unique = Array.from(new Set(lists))
      if (unique.length === 0) return { found: [], missing: [] }
      const rows = yield* sql<{ readonly id: string }>`SELECT id FROM contact_lists
        WHERE org_id = ${orgId} AND id IN ${sql.in(unique)}`.pipe(Effect.mapError(failed))
      const owned = new Set(rows.map((r) => r.id))
      return {
        found: unique.filter((id) => owned.has(id)),
        missing: unique.filter((id) => !owned.has(id))
      } satisfies ResolvedLists
    })

  const page = (lists: ReadonlyArray<string>, cursor: Cursor, size: number) => {
    const listId = lists[cursor.list] ?? ""
    const earlier = lists.slice(0, cursor.list)
    return sql<ContactRow>`SELECT c.msisdn, c.country, c.vars, c.pos FROM contacts c
      WHERE c.list_id = ${listId} AND c.pos > ${cursor.after}
      ${
      earlier.length === 0 ? sql`` : sql`AND NOT EXISTS (SELECT 1 FROM contacts e
        WHERE e.list_id IN ${sql.in(earlier)} AND e.msisdn = c.msisdn)`
    }
      ORDER BY c.pos LIMIT ${size}`.pipe(
      Effect.mapError(failed),
      Effect.map((rows) => {
        const contacts = rows.map((r): AudienceContact => ({
          msisdn: r.msisdn as Msisdn,
          country: r.country ?? undefined,
          vars: varsOf(r.vars),
          listId,
          pos: Number(r.pos)
        }))
        const last = contacts.at(-1)
        const next: Option.Option<Cursor> = rows.length === size && last !== undefined
          ? Option.some({ list: cursor.list, after: last.pos })
          : cursor.list + 1 < lists.length
          ? Option.some({ list: cursor.list + 1, after: Number.MIN_SAFE_INTEGER })
          : Option.none()
        return [contacts, next] as const
      })
    )
  }

  const contacts = (orgId: string, lists: ReadonlyArray<string>, options?: { readonly pageSize?: number | undefined }) =>
    Stream.unwrap(Effect.map(resolve(orgId, lists), ({ found }) => {
      if (found.length === 0) return Stream.empty
      const size = Math.max(1, options?.pageSize ?? defaultPageSize)
      return Stream.paginate({ list: 0, after: Number.MIN_SAFE_INTEGER } as Cursor, (cursor) => page(found, cursor, size))
    }))

  const count = (orgId: string, lists: ReadonlyArray<string>) =>
    Effect.gen(function*() {
      const { found } = yield* resolve(orgId, lists)
      if (found.length === 0) return 0
      const rows = yield* sql<{ readonly n: Int }>`SELECT COUNT(DISTINCT msisdn) AS n FROM contacts
        WHERE list_id IN ${sql.in(found)}`.pipe(Effect.mapError(failed))
      return Number(rows[0]?.n ?? 0)
    })

  return Audience.of({ resolve, contacts, count })
})
