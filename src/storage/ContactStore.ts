/**
 * Contact lists of an organisation and their contacts (the audiences of campaigns), on SQLite or PostgreSQL.
 *
 * Invariants:
 * - Every operation is scoped by organisation: another organisation's list id is `ListNotFound`, as is a missing one.
 * - A list's numbers are unique (E.164 without "+"); a number seen again, in the same upload or already in the list,
 *   collapses into the first (its position and variables are kept). `pos` increases in upload order.
 * - An import is all or nothing: rows are validated as they stream in and staged in `contact_import_rows` in
 *   batches (each its own short statement, so a large upload never holds the database for its whole duration),
 *   then moved into `contacts` in one transaction. A failure at any point (malformed file, body over the limit,
 *   storage error, client gone) discards the stage and leaves the list exactly as it was.
 * - Memory stays bounded whatever the upload's size: one batch of rows, the first `maxListedInvalid` invalid rows;
 *   duplicates are found by the tables' keys and counted from rows inserted, never kept in a set. A file is parsed and
 *   its numbers checked on a worker thread (ContactCsv.ts), whose garbage stays in its own capped heap.
 * - A list named by a campaign not finished yet (domain/Campaign.ts listHoldingStates) is not deleted: the campaign
 *   would lose the audience it was approved with.
 * - On SQLite, whose statements run on the event loop, a stage is moved and dropped in slices (`inSlices`).
 */
import { Array as Arr, Context, Effect, Layer, Schema } from "effect"
import type { Stream } from "effect"
import { SqlClient } from "effect/sql"
import type { SqlError, Statement } from "effect/sql"
import { randomBytes } from "node:crypto"
import { listHoldingStates } from "../domain/Campaign.ts"
import { InvalidField, messageWithCauses, StoreUnavailable } from "../domain/Errors.ts"
import { isCountry } from "../domain/Msisdn.ts"
import { normaliseVariable } from "../domain/Template.ts"
import { csvContacts } from "./ContactCsv.ts"
import type { ContactParseFailed, CsvDelimiter, CsvMalformed, CsvWorkerOptions } from "./ContactCsv.ts"
import { checkContact, packBatch } from "./ContactRows.ts"
import type { InvalidRow, PackedBatch, RawContact } from "./ContactRows.ts"
import { olderThan } from "./Paging.ts"
import type { Before } from "./Paging.ts"

export type { InvalidRow } from "./ContactRows.ts"

export interface ContactList {
  readonly id: string
  readonly orgId: string
  readonly name: string
  /** ISO 3166 alpha-2: national numbers in uploads are completed with it. */
  readonly defaultCountry: string | null
  readonly contacts: number
  /** Every column uploads brought, in the order first seen: the template variables its contacts may have. */
  readonly columns: ReadonlyArray<string>
  readonly createdAt: number
  readonly updatedAt: number
}

export interface Contact {
  readonly pos: number
  readonly msisdn: string
  readonly country: string | null
  readonly vars: Readonly<Record<string, string>>
  readonly createdAt: number
}

/** What an import did, row by row in counts; `invalidRows` lists the first `maxListedInvalid` invalid ones. */
export interface ImportReport {
  readonly rowsRead: number
  readonly added: number
  /** Valid rows whose number was already in the list or earlier in the upload: collapsed into the first. */
  readonly duplicates: number
  /** National numbers completed with the list's default country. */
  readonly completed: number
  readonly invalid: number
  readonly invalidRows: ReadonlyArray<InvalidRow>
  readonly columns: ReadonlyArray<string>
  readonly phoneColumn?: string
}

export class ListNotFound extends Schema.TaggedError<ListNotFound>()("ListNotFound", { id: Schema.String }) {}

/** The list is named by campaigns not finished yet (domain/Campaign.ts listHoldingStates): it is not deleted. */
export class ListInUse extends Schema.TaggedError<ListInUse>()("ListInUse", {
  id: Schema.String,
  /** The newest few of them (at most `maxNamedCampaigns`). */
  campaigns: Schema.Array(Schema.String),
  /** How many there are in all. */
  count: Schema.Int
}) {}

/** Campaigns a refused deletion names at most. */
export const maxNamedCampaigns = 5

export class ContactNotFound extends Schema.TaggedError<ContactNotFound>()("ContactNotFound", {
  listId: Schema.String,
  msisdn: Schema.String
}) {}

export const maxListedInvalid = 1_000
/** Contacts per JSON call (`addContacts`); files have no row limit. */
export const maxContactsPerCall = 10_000
/** Rows per staging statement (packed into one JSON parameter, see ContactRows.packBatch). */
const batchSize = 500
/** Staged rows per statement when SQLite moves or drops a stage (~40 ms each; see `inSlices`). */
const sqliteSlice = 20_000
/** An import's stage left behind by a process that died mid-upload is removed by the next import after this. */
const staleImportMs = 24 * 3_600_000

type Int = number | string | bigint

interface ListRow {
  readonly id: string
  readonly org_id: string
  readonly name: string
  readonly default_country: string | null
  readonly contacts: Int
  readonly columns: string
  readonly created_at: Int
  readonly updated_at: Int
}

interface ContactRow {
  readonly pos: Int
  readonly msisdn: string
  readonly country: string | null
  readonly vars: string
  readonly created_at: Int
}

const ColumnsJson = Schema.fromJsonString(Schema.Array(Schema.String))
const VarsJson = Schema.fromJsonString(Schema.Record(Schema.String, Schema.String))
const decodeColumns = Schema.decodeUnknownSync(ColumnsJson)
const decodeVars = Schema.decodeUnknownSync(VarsJson)

const toList = (row: ListRow): ContactList => ({
  id: row.id,
  orgId: row.org_id,
  name: row.name,
  defaultCountry: row.default_country,
  contacts: Number(row.contacts),
  columns: decodeColumns(row.columns),
  createdAt: Number(row.created_at),
  updatedAt: Number(row.updated_at)
})

const toContact = (row: ContactRow): Contact => ({
  pos: Number(row.pos),
  msisdn: row.msisdn,
  country: row.country,
  vars: decodeVars(row.vars),
  createdAt: Number(row.created_at)
})

const newId = (prefix: string) => `${prefix}_${randomBytes(8).toString("hex")}`

const storeFailure = (error: SqlError.SqlError) =>
  new StoreUnavailable({ message: messageWithCauses(error), cause: error })

const checkCountry = (country: string | null | undefined): Effect.Effect<string | null, InvalidField> => {
  if (country === undefined || country === null) return Effect.succeed(null)
  const code = country.trim().toUpperCase()
  return isCountry(code)
    ? Effect.succeed(code)
    : Effect.fail(new InvalidField({ field: "defaultCountry", message: `"${country}" is not an ISO 3166 alpha-2 country code with a numbering plan` }))
}

/** What an import counts while rows stream through; one per import, never shared. */
interface Tally {
  rowsRead: number
  valid: number
  completed: number
  invalid: number
  readonly invalidRows: Array<InvalidRow>
}

export class ContactStore extends Context.Service<ContactStore, {
  readonly createList: (orgId: string, input: { readonly name: string; readonly defaultCountry?: string | null | undefined }) =>
    Effect.Effect<ContactList, InvalidField | StoreUnavailable>
  /** Renames and / or sets (null: clears) the default country; contacts already stored stay as they are. */
  readonly updateList: (
    orgId: string,
    id: string,
    change: { readonly name?: string | undefined; readonly defaultCountry?: string | null | undefined }
  ) => Effect.Effect<ContactList, ListNotFound | InvalidField | StoreUnavailable>
  /**
   * Deletes the list and its contacts, unless a campaign of the organisation that is not finished yet names it
   * (`ListInUse`); drafts, rejected, completed and cancelled campaigns do not hold it.
   */
  readonly deleteList: (orgId: string, id: string) => Effect.Effect<void, ListNotFound | ListInUse | StoreUnavailable>
  /** Newest first (by creation, then id), at most `limit`, after the previous page's last (`before`). */
  readonly listLists: (
    orgId: string,
    page: { readonly limit: number; readonly before?: Before | undefined }
  ) => Effect.Effect<ReadonlyArray<ContactList>, StoreUnavailable>
  readonly getList: (orgId: string, id: string) => Effect.Effect<ContactList, ListNotFound | StoreUnavailable>
  /** Up to `maxContactsPerCall` contacts; `vars` keys are trimmed and lower-cased like CSV headers. */
  readonly addContacts: (
    orgId: string,
    id: string,
    contacts: ReadonlyArray<{ readonly phone: string; readonly vars?: Readonly<Record<string, string>> | undefined }>
  ) => Effect.Effect<ImportReport, ListNotFound | InvalidField | StoreUnavailable>
  /** A CSV file as it arrives: the header names the phone column (or `phoneColumn` does); other columns are variables. */
  readonly importCsv: <E, R>(
    orgId: string,
    id: string,
    body: Stream.Stream<Uint8Array, E, R>,
    options?: { readonly phoneColumn?: string | undefined; readonly delimiter?: CsvDelimiter | undefined }
  ) => Effect.Effect<ImportReport, E | ListNotFound | InvalidField | CsvMalformed | ContactParseFailed | StoreUnavailable, R>
  /** Contacts in upload order after position `after` (exclusive), at most `limit`. */
  readonly listContacts: (
    orgId: string,
    id: string,
    page: { readonly after?: number | undefined; readonly limit: number }
  ) => Effect.Effect<ReadonlyArray<Contact>, ListNotFound | StoreUnavailable>
  /** `msisdn` with or without its "+". */
  readonly removeContact: (orgId: string, id: string, msisdn: string) =>
    Effect.Effect<void, ListNotFound | ContactNotFound | StoreUnavailable>
}>()("smsgw/storage/ContactStore") {
  static readonly layerWith = (options: ContactStoreOptions) => Layer.effect(ContactStore, Effect.suspend(() => make(options)))
  static readonly layer = ContactStore.layerWith({})
}

export interface ContactStoreOptions {
  /** How CSV files' worker thread is run (tests start misbehaving ones). */
  readonly csvWorker?: CsvWorkerOptions
}

const make = (options: ContactStoreOptions) => Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  const findList = (orgId: string, id: string) =>
    sql<ListRow>`SELECT * FROM contact_lists WHERE id = ${id} AND org_id = ${orgId}`.pipe(
      Effect.mapError(storeFailure),
      Effect.flatMap((rows) => rows[0] === undefined ? Effect.fail(new ListNotFound({ id })) : Effect.succeed(toList(rows[0])))
    )

  const createList = Effect.fn("ContactStore.createList")(function*(
    orgId: string,
    input: { readonly name: string; readonly defaultCountry?: string | null | undefined }
  ) {
    const defaultCountry = yield* checkCountry(input.defaultCountry)
    const now = Date.now()
    const list: ContactList = {
      id: newId("lst"),
      orgId,
      name: input.name,
      defaultCountry,
      contacts: 0,
      columns: [],
      createdAt: now,
      updatedAt: now
    }
    yield* sql`INSERT INTO contact_lists ${
      sql.insert({
        id: list.id,
        org_id: orgId,
        name: list.name,
        default_country: defaultCountry,
        contacts: 0,
        columns: "[]",
        created_at: now,
        updated_at: now
      })
    }`.pipe(Effect.mapError(storeFailure))
    return list
  })

  const updateList = Effect.fn("ContactStore.updateList")(function*(
    orgId: string,
    id: string,
    change: { readonly name?: string | undefined; readonly defaultCountry?: string | null | undefined }
  ) {
    const current = yield* findList(orgId, id)
    const defaultCountry = change.defaultCountry === undefined ? current.defaultCountry : yield* checkCountry(change.defaultCountry)
    const name = change.name ?? current.name
    const now = Date.now()
    yield* sql`UPDATE contact_lists SET name = ${name}, default_country = ${defaultCountry}, updated_at = ${now}
      WHERE id = ${id} AND org_id = ${orgId}`.pipe(Effect.mapError(storeFailure))
    return { ...current, name, defaultCountry, updatedAt: now }
  })

  /** The organisation's campaigns that still need the list (`listHoldingStates`), newest first, and how many in all. */
  const holders = (orgId: string, id: string) => {
    const names = sql.onDialectOrElse({
      pg: () => sql`lists::jsonb @> jsonb_build_array(${id}::text)`,
      orElse: () => sql`EXISTS (SELECT 1 FROM json_each(campaigns.lists) WHERE json_each.value = ${id})`
    })
    return sql<{ readonly id: string; readonly n: Int }>`SELECT id, COUNT(*) OVER () AS n FROM campaigns
      WHERE org_id = ${orgId} AND state IN ${sql.in(listHoldingStates)} AND ${names}
      ORDER BY created_at DESC, id DESC LIMIT ${maxNamedCampaigns}`
  }

  const deleteList = Effect.fn("ContactStore.deleteList")(function*(orgId: string, id: string) {
    // A campaign submitted at the same moment can still miss the check: its actor then pauses naming the list.
    const outcome = yield* sql.withTransaction(Effect.gen(function*() {
      const found = yield* sql`SELECT id FROM contact_lists WHERE id = ${id} AND org_id = ${orgId}`
      if (found.length === 0) return { _tag: "NotFound" as const }
      const holding = yield* holders(orgId, id)
      if (holding.length > 0) return { _tag: "InUse" as const, campaigns: holding.map((r) => r.id), count: Number(holding[0]?.n ?? holding.length) }
      const deleted = yield* sql<{ readonly id: string }>`DELETE FROM contact_lists WHERE id = ${id} AND org_id = ${orgId} RETURNING id`
      return { _tag: deleted.length === 0 ? "NotFound" as const : "Deleted" as const }
    })).pipe(Effect.mapError(storeFailure))
    if (outcome._tag === "InUse") return yield* new ListInUse({ id, campaigns: outcome.campaigns, count: outcome.count })
    if (outcome._tag === "NotFound") return yield* new ListNotFound({ id })
  })

  const listLists = Effect.fn("ContactStore.listLists")(function*(
    orgId: string,
    page: { readonly limit: number; readonly before?: Before | undefined }
  ) {
    const rows = yield* sql<ListRow>`SELECT * FROM contact_lists WHERE org_id = ${orgId} ${olderThan(sql, page.before)}
      ORDER BY created_at DESC, id DESC LIMIT ${page.limit}`.pipe(Effect.mapError(storeFailure))
    return rows.map(toList)
  })

  /** Counts a batch and stages its valid rows in one statement; the key drops numbers staged before (first wins). */
  const stage = (importId: string, tally: Tally, batch: PackedBatch) => {
    tally.rowsRead += batch.rows
    tally.valid += batch.valid
    tally.completed += batch.completed
    tally.invalid += batch.invalid
    for (const row of batch.invalidRows) if (tally.invalidRows.length < maxListedInvalid) tally.invalidRows.push(row)
    if (batch.valid === 0) return Effect.void
    // The rows unpacked in array order, so the first of a number in the batch is the one kept.
    return sql.onDialectOrElse({
      pg: () =>
        sql`INSERT INTO contact_import_rows (import_id, line, msisdn, country, vars)
          SELECT ${importId}, (r ->> 0)::bigint, r ->> 1, r ->> 2, r ->> 3 FROM json_array_elements(${batch.packed}::json) AS r
          ON CONFLICT DO NOTHING`,
      // "WHERE true": SQLite's grammar needs it before an upsert clause on INSERT ... SELECT.
      orElse: () =>
        sql`INSERT INTO contact_import_rows (import_id, line, msisdn, country, vars)
          SELECT ${importId}, value ->> 0, value ->> 1, value ->> 2, value ->> 3 FROM json_each(${batch.packed}) WHERE true
          ON CONFLICT DO NOTHING`
    }).pipe(Effect.mapError(storeFailure))
  }

  /**
   * `statement` over the import's staged rows on SQLite, a slice of `sqliteSlice` rowids at a time (its argument is
   * the condition selecting the slice's rows of the import), yielding to the event loop between slices: node:sqlite runs a statement on this thread,
   * so moving or dropping a million rows at once would stop HTTP and SMPP for seconds.
   */
  const inSlices = <A>(importId: string, statement: (rows: Statement.Fragment) => Effect.Effect<A, SqlError.SqlError>) =>
    Effect.gen(function*() {
      const [range] = yield* sql<{ readonly lo: Int | null; readonly hi: Int | null }>`
        SELECT MIN(rowid) AS lo, MAX(rowid) AS hi FROM contact_import_rows WHERE import_id = ${importId}`
      if (range?.lo === null || range?.lo === undefined || range.hi === null) return
      for (let from = Number(range.lo); from <= Number(range.hi); from += sqliteSlice) {
        // "+import_id": found by rowid, not by the (import_id, msisdn) key, which would scan the whole stage per slice.
        yield* statement(sql`+import_id = ${importId} AND rowid >= ${from} AND rowid < ${from + sqliteSlice}`)
        yield* Effect.yieldNow
      }
    })

  /**
   * The stage into the list, in one transaction: positions continue after the list's last, numbers already in the
   * list are kept as they are. Locking the list's row first serialises two imports into the same list.
   */
  const merge = (orgId: string, listId: string, importId: string, columns: ReadonlyArray<string>) =>
    sql.withTransaction(Effect.gen(function*() {
      const now = Date.now()
      const locked = yield* sql<{ readonly columns: string }>`UPDATE contact_lists SET updated_at = ${now}
        WHERE id = ${listId} AND org_id = ${orgId} RETURNING columns`
      if (locked[0] === undefined) return yield* new ListNotFound({ id: listId })
      const [before] = yield* sql<{ readonly base: Int; readonly n: Int }>`
        SELECT COALESCE(MAX(pos), 0) AS base, COUNT(*) AS n FROM contacts WHERE list_id = ${listId}`
      const base = Number(before?.base ?? 0)
      const move = (rows: Statement.Fragment) =>
        sql`INSERT INTO contacts (list_id, pos, msisdn, country, vars, created_at)
          SELECT ${listId}, line + ${base}, msisdn, country, vars, ${now} FROM contact_import_rows
          WHERE ${rows} ON CONFLICT (list_id, msisdn) DO NOTHING`
      yield* sql.onDialectOrElse({ pg: () => move(sql`import_id = ${importId}`), orElse: () => inSlices(importId, move) })
      const [after] = yield* sql<{ readonly n: Int }>`SELECT COUNT(*) AS n FROM contacts WHERE list_id = ${listId}`
      const count = Number(after?.n ?? 0)
      const known = decodeColumns(locked[0].columns)
      const merged = [...known, ...columns.filter((c) => !known.includes(c))]
      yield* sql`UPDATE contact_lists SET contacts = ${count}, columns = ${JSON.stringify(merged)} WHERE id = ${listId}`
      return count - Number(before?.n ?? 0)
    })).pipe(Effect.catchTag("SqlError", (e) => Effect.fail(storeFailure(e))))

  /**
   * Runs `feed`, which hands the checked rows to its argument batch by batch (at most `batchSize`) and answers the
   * columns once the input has ended, into a stage of the import's own, then merges; the stage is removed whatever
   * happens.
   */
  const importRows = <E, R>(
    orgId: string,
    listId: string,
    feed: (
      defaultCountry: string | undefined,
      stage: (batch: PackedBatch) => Effect.Effect<void, StoreUnavailable>
    ) => Effect.Effect<{ readonly columns: ReadonlyArray<string>; readonly phoneColumn?: string }, E, R>
  ) =>
    Effect.gen(function*() {
      const list = yield* findList(orgId, listId)
      const importId = newId("imp")
      const now = Date.now()
      yield* sql`DELETE FROM contact_imports WHERE started_at < ${now - staleImportMs}`.pipe(Effect.mapError(storeFailure))
      yield* sql`INSERT INTO contact_imports ${sql.insert({ id: importId, list_id: listId, started_at: now })}`.pipe(
        Effect.mapError(storeFailure)
      )
      const dropRows = (rows: Statement.Fragment) => sql`DELETE FROM contact_import_rows WHERE ${rows}`
      const discard = sql.onDialectOrElse({ pg: () => Effect.void, orElse: () => inSlices(importId, dropRows) }).pipe(
        Effect.andThen(sql`DELETE FROM contact_imports WHERE id = ${importId}`),
        Effect.catchCause((cause) =>
          Effect.logWarning("contact import stage not removed; the next import removes it once stale", cause).pipe(
            Effect.annotateLogs({ importId })
          )
        )
      )
      return yield* Effect.gen(function*() {
        const tally: Tally = { rowsRead: 0, valid: 0, completed: 0, invalid: 0, invalidRows: [] }
        const { columns, phoneColumn } = yield* feed(list.defaultCountry ?? undefined, (rows) => stage(importId, tally, rows))
        const merging = Date.now()
        const added = yield* merge(orgId, listId, importId, columns)
        // Counts and durations only, never numbers: the merge is the one transaction that holds the database.
        yield* Effect.logInfo("contacts imported").pipe(Effect.annotateLogs({
          listId,
          rows: tally.rowsRead,
          added,
          invalid: tally.invalid,
          stageMs: merging - now,
          mergeMs: Date.now() - merging
        }))
        const report: ImportReport = {
          rowsRead: tally.rowsRead,
          added,
          duplicates: tally.valid - added,
          completed: tally.completed,
          invalid: tally.invalid,
          invalidRows: tally.invalidRows,
          columns,
          ...(phoneColumn !== undefined ? { phoneColumn } : {})
        }
        return report
      }).pipe(Effect.ensuring(discard))
    })

  const addContacts = Effect.fn("ContactStore.addContacts")(function*(
    orgId: string,
    id: string,
    contacts: ReadonlyArray<{ readonly phone: string; readonly vars?: Readonly<Record<string, string>> | undefined }>
  ) {
    if (contacts.length > maxContactsPerCall) {
      return yield* new InvalidField({ field: "contacts", message: `at most ${maxContactsPerCall} contacts per call; upload a CSV file for more` })
    }
    const columns: Array<string> = []
    const rows = contacts.map((contact, i): RawContact => {
      const vars: Record<string, string> = {}
      for (const [key, value] of Object.entries(contact.vars ?? {})) {
        const name = normaliseVariable(key)
        if (name === "" || name in vars) continue
        vars[name] = value
        if (!columns.includes(name)) columns.push(name)
      }
      return { line: i + 1, phone: contact.phone, vars }
    })
    return yield* importRows(orgId, id, (defaultCountry, stage) =>
      Effect.as(
        Effect.forEach(Arr.chunksOf(rows, batchSize), (batch) => stage(packBatch(batch.map((row) => checkContact(row, defaultCountry)), maxListedInvalid)), { discard: true }),
        { columns }
      ))
  })

  const importCsv = <E, R>(
    orgId: string,
    id: string,
    body: Stream.Stream<Uint8Array, E, R>,
    file: { readonly phoneColumn?: string | undefined; readonly delimiter?: CsvDelimiter | undefined } = {}
  ) =>
    importRows(orgId, id, (defaultCountry, stage) =>
      csvContacts(body, { ...file, defaultCountry, batchSize, listInvalid: maxListedInvalid }, stage, options.csvWorker))
      .pipe(Effect.withSpan("ContactStore.importCsv"))

  const listContacts = Effect.fn("ContactStore.listContacts")(function*(
    orgId: string,
    id: string,
    page: { readonly after?: number | undefined; readonly limit: number }
  ) {
    yield* findList(orgId, id)
    const rows = yield* sql<ContactRow>`SELECT pos, msisdn, country, vars, created_at FROM contacts
      WHERE list_id = ${id} AND pos > ${page.after ?? 0} ORDER BY pos LIMIT ${page.limit}`.pipe(Effect.mapError(storeFailure))
    return rows.map(toContact)
  })

  const removeContact = Effect.fn("ContactStore.removeContact")(function*(orgId: string, id: string, msisdn: string) {
    yield* findList(orgId, id)
    const number = msisdn.startsWith("+") ? msisdn.slice(1) : msisdn
    const removed = yield* sql.withTransaction(Effect.gen(function*() {
      const deleted = yield* sql`DELETE FROM contacts WHERE list_id = ${id} AND msisdn = ${number} RETURNING pos`
      if (deleted.length > 0) {
        yield* sql`UPDATE contact_lists SET contacts = contacts - 1, updated_at = ${Date.now()} WHERE id = ${id}`
      }
      return deleted.length > 0
    })).pipe(Effect.mapError(storeFailure))
    if (!removed) return yield* new ContactNotFound({ listId: id, msisdn: number })
  })

  return ContactStore.of({
    createList,
    updateList,
    deleteList,
    listLists,
    getList: (orgId, id) => findList(orgId, id).pipe(Effect.withSpan("ContactStore.getList")),
    addContacts,
    importCsv,
    listContacts,
    removeContact
  })
})
