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
 * - `missingVariables` answers what filtering the stream with `missingVariable` (domain/Template.ts) would, in SQL: the
 *   database reads each contact's `vars` (json_extract on SQLite, `::jsonb ->>` on PostgreSQL) and only the few rows
 *   lacking a variable leave it, so checking a million contacts moves no contact into the process. On SQLite, whose
 *   statements run on the event loop, a list is checked in slices of positions, yielding between them.
 */
import { Context, Effect, Layer, Option, Stream } from "effect"
import { SqlClient } from "effect/sql"
import type { SqlError } from "effect/sql"
import { messageWithCauses, StoreUnavailable } from "../domain/Errors.ts"
import type { Msisdn } from "../domain/Msisdn.ts"
import { variableName } from "../domain/Template.ts"

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

/** A recipient of an audience lacking a template variable (absent or empty): where it is, and the first it lacks. */
export interface MissingVariable {
  readonly listId: string
  readonly pos: number
  readonly msisdn: Msisdn
  /** The first of the variables asked about, in their order, that the contact lacks. */
  readonly variable: string
}

/** The lists of a request that belong to the organisation (in the order given, repeats dropped) and the others. */
export interface ResolvedLists {
  readonly found: ReadonlyArray<string>
  readonly missing: ReadonlyArray<string>
}

export const defaultPageSize = 1_000

/**
 * Positions of a list `missingVariables` checks per statement on SQLite (at most that many contacts, ~10 ms on a
 * shared core): node:sqlite runs statements on the event loop, and a million contacts at once would hold it ~0.5 s.
 */
const sqliteSlice = 20_000

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
  /**
   * The first `limit` contacts of `contacts` (same order, each number once) whose `vars` lack one of `variables`
   * (absent or empty): what `missingVariable` finds, for a template whose required variables are `variables`.
   * Names are a template's (`variableName`, lower case); another name is a defect.
   */
  readonly missingVariables: (
    orgId: string,
    lists: ReadonlyArray<string>,
    variables: ReadonlyArray<string>,
    limit: number
  ) => Effect.Effect<ReadonlyArray<MissingVariable>, StoreUnavailable>
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

interface MissingRow {
  readonly msisdn: string
  readonly pos: Int
  readonly variable: string
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

  /**
   * SQL true when the contact `c` lacks `name`: the key is absent, null or an empty string. A template's variable
   * name (domain/Template.ts `variableName`) has no `"` or `\`, so on SQLite the name quoted as a path label
   * (`$."first.name"`) is the key itself, `.` and `-` included; PostgreSQL's `->>` takes the key as it is.
   */
  const lacks = (name: string) =>
    sql.onDialectOrElse({
      pg: () => sql`COALESCE(c.vars::jsonb ->> ${name}::text, '') = ''`,
      orElse: () => sql`COALESCE(json_extract(c.vars, ${`$."${name}"`}), '') = ''`
    })

  const missingVariables = (orgId: string, lists: ReadonlyArray<string>, variables: ReadonlyArray<string>, limit: number) =>
    Effect.gen(function*() {
      const bad = variables.find((name) => !variableName.test(name))
      if (bad !== undefined) return yield* Effect.die(new Error(`not a template variable name: ${JSON.stringify(bad)}`))
      if (variables.length === 0 || limit <= 0) return []
      const { found } = yield* resolve(orgId, lists)
      const anyLacking = sql.or(variables.map(lacks))
      const firstLacking = sql`CASE ${sql.join(" ", false)(variables.map((name) => sql`WHEN ${lacks(name)} THEN ${name}`))} END`
      /** The contacts of list `i` (positions in `range` if given) lacking a variable, at most `n`, in `pos` order. */
      const lacking = (i: number, n: number, range?: { readonly from: number; readonly to: number }) => {
        const earlier = found.slice(0, i)
        return sql<MissingRow>`SELECT c.msisdn, c.pos, ${firstLacking} AS variable FROM contacts c
          WHERE c.list_id = ${found[i] ?? ""} ${range === undefined ? sql`` : sql`AND c.pos >= ${range.from} AND c.pos < ${range.to}`}
          AND (${anyLacking})
          ${
          earlier.length === 0 ? sql`` : sql`AND NOT EXISTS (SELECT 1 FROM contacts e
            WHERE e.list_id IN ${sql.in(earlier)} AND e.msisdn = c.msisdn)`
        }
          ORDER BY c.pos LIMIT ${n}`.pipe(Effect.mapError(failed))
      }
      /** The whole list at once on PostgreSQL; on SQLite `sqliteSlice` positions at a time, yielding between. */
      const inList = (i: number, n: number) =>
        sql.onDialectOrElse({
          pg: () => lacking(i, n),
          orElse: () =>
            Effect.gen(function*() {
              const listId = found[i] ?? ""
              // Two subqueries: SQLite finds a lone MIN or MAX at one end of the index, both at once by scanning it.
              const [bounds] = yield* sql<{ readonly lo: Int | null; readonly hi: Int | null }>`SELECT
                (SELECT MIN(pos) FROM contacts WHERE list_id = ${listId}) AS lo,
                (SELECT MAX(pos) FROM contacts WHERE list_id = ${listId}) AS hi`.pipe(Effect.mapError(failed))
              const rows: Array<MissingRow> = []
              if (bounds?.lo === null || bounds?.lo === undefined || bounds.hi === null) return rows
              for (let from = Number(bounds.lo); from <= Number(bounds.hi) && rows.length < n; from += sqliteSlice) {
                rows.push(...yield* lacking(i, n - rows.length, { from, to: from + sqliteSlice }))
                yield* Effect.yieldNow
              }
              return rows
            })
        })
      const out: Array<MissingVariable> = []
      // One list at a time, in the campaign's order, as `contacts` pages: a number already in an earlier list was
      // checked there (with that list's variables) and is skipped here. Stops as soon as `limit` rows are found.
      for (let i = 0; i < found.length && out.length < limit; i++) {
        const listId = found[i] ?? ""
        const rows = yield* inList(i, limit - out.length)
        for (const r of rows) out.push({ listId, pos: Number(r.pos), msisdn: r.msisdn as Msisdn, variable: r.variable })
      }
      return out
    })

  return Audience.of({ resolve, contacts, count, missingVariables })
})
