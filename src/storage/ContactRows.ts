/**
 * Contact rows as a file brings them, without Effect (ContactCsv.worker.ts loads this on its thread in milliseconds):
 * the header read into the phone column and the template variables the other columns become, each record read
 * through it, its number checked (and completed with the list's default country), and the lines a record spans.
 * Everything here is a pure function of its arguments; ContactStore checks JSON contacts with the same `checkContact`.
 */
import { parseRecipientIn } from "../domain/RecipientParse.ts"
import type { RecipientRefusal } from "../domain/RecipientParse.ts"
import { normaliseVariable } from "../domain/Template.ts"

/** Header names taken as the phone column when the upload names none, in this order of preference. */
export const phoneColumnNames: ReadonlyArray<string> = ["phone", "msisdn", "mobile", "number", "to"]

/** A record longer than this is refused (an unclosed quote would otherwise swallow the whole file into one field). */
export const maxRecordBytes = 64 * 1024

/** Columns a contact file may have: each becomes a template variable of every contact. */
export const maxColumns = 100

/** One record of the file and the line it starts on (1 is the header). */
export interface CsvRecord {
  readonly line: number
  readonly fields: ReadonlyArray<string>
}

/** How the rows of a file are read: which field is the number, and the variable each other field becomes. */
export interface ContactHeader {
  readonly width: number
  readonly phoneIndex: number
  readonly phoneColumn: string
  /** Variable names by field index (undefined: the phone column, or a column without a name). */
  readonly variables: ReadonlyArray<string | undefined>
  /** The variables, in file order. */
  readonly columns: ReadonlyArray<string>
}

/** What is wrong with a header, as an `InvalidField` would name it. */
export interface HeaderProblem {
  readonly field: string
  readonly message: string
}

/**
 * The header row: names are trimmed and lower-cased (template variables match them that way); the phone column is
 * the one named by `phoneColumn`, else the first of `phoneColumnNames` present. Two columns with one name are refused.
 */
export const readHeader = (
  fields: ReadonlyArray<string>,
  phoneColumn: string | undefined
): { readonly header: ContactHeader } | { readonly problem: HeaderProblem } => {
  const names = fields.map(normaliseVariable)
  const shown = JSON.stringify(fields.map((f) => f.trim()))
  if (names.length > maxColumns) {
    return { problem: { field: "header", message: `has ${names.length} columns; at most ${maxColumns}` } }
  }
  const seen = new Set<string>()
  for (const name of names) {
    if (name === "") continue
    if (seen.has(name)) return { problem: { field: "header", message: `the column "${name}" appears twice in ${shown}` } }
    seen.add(name)
  }
  const wanted = phoneColumn === undefined ? undefined : normaliseVariable(phoneColumn)
  const phoneIndex = wanted !== undefined
    ? names.indexOf(wanted)
    : phoneColumnNames.map((n) => names.indexOf(n)).find((i) => i !== -1) ?? -1
  if (phoneIndex === -1) {
    return {
      problem: {
        field: "phoneColumn",
        message: wanted !== undefined
          ? `the header ${shown} has no column "${wanted}"`
          : `the header ${shown} has no phone column: name one ${phoneColumnNames.join(", ")}, or pass ?phoneColumn=`
      }
    }
  }
  const variables = names.map((name, i) => i === phoneIndex || name === "" ? undefined : name)
  return {
    header: {
      width: names.length,
      phoneIndex,
      phoneColumn: names[phoneIndex] ?? "",
      variables,
      columns: variables.filter((v): v is string => v !== undefined)
    }
  }
}

/** A row of a contact list before its number is checked: where it came from, the number as written, its variables. */
export interface RawContact {
  readonly line: number
  readonly phone: string
  readonly vars: Readonly<Record<string, string>>
}

export interface InvalidRow {
  /** The file's line (1 is the header), or the contact's 1-based position in a JSON request. */
  readonly line: number
  readonly value: string
  readonly reason: string
}

/** A row whose number is valid, as it is staged: the variables already as the JSON the `vars` column holds. */
export interface CheckedContact {
  readonly line: number
  readonly msisdn: string
  readonly country: string | null
  readonly vars: string
  /** A national number completed with the list's default country. */
  readonly completed: boolean
}

export type CheckedRow = CheckedContact | InvalidRow

/** A record read through the header; a record whose field count differs from the header's is refused with a reason. */
export const contactOf = (header: ContactHeader, record: CsvRecord): RawContact | InvalidRow => {
  const phone = record.fields[header.phoneIndex] ?? ""
  if (record.fields.length !== header.width) {
    return { line: record.line, value: phone, reason: `has ${record.fields.length} fields; the header has ${header.width}` }
  }
  const vars: Record<string, string> = {}
  header.variables.forEach((name, i) => {
    if (name !== undefined) vars[name] = record.fields[i] ?? ""
  })
  return { line: record.line, phone, vars }
}

const refusalReasons: Record<RecipientRefusal, string> = {
  empty: "no number",
  invalid: "not a valid phone number",
  "national-without-country": "a national number, and the list has no default country to complete it",
  "invalid-country": "the list's default country is not one libphonenumber knows"
}

/** The row's number checked (national ones completed with `defaultCountry`): the contact to stage, or why not. */
export const checkContact = (row: RawContact | InvalidRow, defaultCountry: string | undefined): CheckedRow => {
  if ("reason" in row) return row
  const parsed = parseRecipientIn(row.phone, defaultCountry)
  if ("refusal" in parsed) return { line: row.line, value: row.phone, reason: refusalReasons[parsed.refusal] }
  return {
    line: row.line,
    msisdn: parsed.recipient.msisdn,
    country: parsed.recipient.country ?? null,
    vars: JSON.stringify(row.vars),
    completed: parsed.completed
  }
}

/**
 * A batch of checked rows as it is staged: the valid ones packed into one JSON text, `[[line, msisdn, country, vars],
 * ...]`, that the database unpacks in the INSERT (one parameter, not five per row: the thread staging it allocates a
 * string per batch, not objects per row), with the batch's counts and its invalid rows (at most `listInvalid`).
 */
export interface PackedBatch {
  readonly rows: number
  readonly valid: number
  readonly completed: number
  readonly invalid: number
  readonly invalidRows: ReadonlyArray<InvalidRow>
  /** The valid rows' JSON, in their order; "[]" when none. */
  readonly packed: string
}

export const packBatch = (rows: ReadonlyArray<CheckedRow>, listInvalid: number): PackedBatch => {
  const valid: Array<readonly [number, string, string | null, string]> = []
  const invalidRows: Array<InvalidRow> = []
  let completed = 0
  let invalid = 0
  for (const row of rows) {
    if ("reason" in row) {
      invalid++
      if (invalidRows.length < listInvalid) invalidRows.push(row)
      continue
    }
    if (row.completed) completed++
    valid.push([row.line, row.msisdn, row.country, row.vars])
  }
  return { rows: rows.length, valid: valid.length, completed, invalid, invalidRows, packed: JSON.stringify(valid) }
}

const lineBreaks = /\r\n|\r|\n/g

/**
 * Line breaks inside a record's quoted fields: each one is a line of the file the record spans. Lines are counted
 * this way, not taken from csv-parse's `info.lines`, which counts a CRLF inside a quoted field twice.
 */
export const breaksIn = (fields: ReadonlyArray<string>): number => {
  let n = 0
  for (const field of fields) {
    if (field.includes("\n") || field.includes("\r")) n += field.match(lineBreaks)?.length ?? 0
  }
  return n
}
