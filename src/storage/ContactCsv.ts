/**
 * Contact files as rows: a CSV byte stream parsed as it arrives (csv-parse: quotes, a BOM, CRLF or LF) into records
 * with their line numbers, and the header read into the phone column and the template variables the other columns
 * become. Memory is bounded by one record (`maxRecordBytes`) and the parser's buffer, whatever the file's size.
 */
import { NodeStream } from "@effect/platform-node"
import { Effect, Schema, Stream } from "effect"
import { CsvError, parse } from "csv-parse"
import { InvalidField } from "../domain/Errors.ts"
import { normaliseVariable } from "../domain/Template.ts"

/** Header names taken as the phone column when the upload names none, in this order of preference. */
export const phoneColumnNames: ReadonlyArray<string> = ["phone", "msisdn", "mobile", "number", "to"]

/** A record longer than this is refused (an unclosed quote would otherwise swallow the whole file into one field). */
export const maxRecordBytes = 64 * 1024

/** Columns a contact file may have: each becomes a template variable of every contact. */
export const maxColumns = 100

export const CsvDelimiter = Schema.Literals([",", ";", "\t", "|"])
export type CsvDelimiter = typeof CsvDelimiter.Type

/** One record of the file and the line it starts on (1 is the header). */
export interface CsvRecord {
  readonly line: number
  readonly fields: ReadonlyArray<string>
}

/** The file is not CSV we can read (an unclosed quote, a record over the size limit...): nothing is imported. */
export class CsvMalformed extends Schema.TaggedError<CsvMalformed>()("CsvMalformed", {
  message: Schema.String,
  line: Schema.optionalKey(Schema.Int)
}) {}

const malformed = (error: unknown): CsvMalformed => {
  if (error instanceof CsvError) {
    const line = typeof error.lines === "number" ? error.lines : undefined
    const message = error.code === "CSV_MAX_RECORD_SIZE"
      ? `a record is longer than ${maxRecordBytes} bytes (an unclosed quote?)`
      : error.message
    return new CsvMalformed({ message, ...(line !== undefined ? { line } : {}) })
  }
  return new CsvMalformed({ message: error instanceof Error ? error.message : String(error) })
}

const lineBreaks = /\r\n|\r|\n/g

/** Line breaks inside a record's quoted fields: each one is a line of the file the record spans. */
const breaksIn = (fields: ReadonlyArray<string>): number => {
  let n = 0
  for (const field of fields) {
    if (field.includes("\n") || field.includes("\r")) n += field.match(lineBreaks)?.length ?? 0
  }
  return n
}

/**
 * The file's non-blank records as they are read, each with the line it starts on; rows may have any number of
 * fields (checked against the header later). Lines are counted here, not taken from csv-parse's `info.lines`, which
 * counts a CRLF inside a quoted field twice.
 */
export const csvRecords = <E, R>(
  bytes: Stream.Stream<Uint8Array, E, R>,
  options: { readonly delimiter?: CsvDelimiter | undefined } = {}
): Stream.Stream<CsvRecord, E | CsvMalformed, R> =>
  Stream.suspend(() => {
    let next = 1
    return bytes.pipe(
      NodeStream.pipeThroughDuplex<Array<string>, CsvMalformed>({
        evaluate: () =>
          parse({
            bom: true,
            delimiter: options.delimiter ?? ",",
            relax_column_count: true,
            max_record_size: maxRecordBytes
          }),
        onError: malformed
      }),
      Stream.map((fields): CsvRecord => {
        const line = next
        next += 1 + breaksIn(fields)
        return { line, fields }
      }),
      // A blank line is a record of one empty field: counted above, skipped here.
      Stream.filter((record) => !(record.fields.length === 1 && record.fields[0] === ""))
    )
  })

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

/**
 * The header row: names are trimmed and lower-cased (template variables match them that way); the phone column is
 * the one named by `phoneColumn`, else the first of `phoneColumnNames` present. Two columns with one name are refused.
 */
export const contactHeader = (
  fields: ReadonlyArray<string>,
  phoneColumn: string | undefined
): Effect.Effect<ContactHeader, InvalidField> => {
  const names = fields.map(normaliseVariable)
  const shown = JSON.stringify(fields.map((f) => f.trim()))
  if (names.length > maxColumns) {
    return Effect.fail(new InvalidField({ field: "header", message: `has ${names.length} columns; at most ${maxColumns}` }))
  }
  const seen = new Set<string>()
  for (const name of names) {
    if (name === "") continue
    if (seen.has(name)) {
      return Effect.fail(new InvalidField({ field: "header", message: `the column "${name}" appears twice in ${shown}` }))
    }
    seen.add(name)
  }
  const wanted = phoneColumn === undefined ? undefined : normaliseVariable(phoneColumn)
  const phoneIndex = wanted !== undefined
    ? names.indexOf(wanted)
    : phoneColumnNames.map((n) => names.indexOf(n)).find((i) => i !== -1) ?? -1
  if (phoneIndex === -1) {
    return Effect.fail(new InvalidField({
      field: "phoneColumn",
      message: wanted !== undefined
        ? `the header ${shown} has no column "${wanted}"`
        : `the header ${shown} has no phone column: name one ${phoneColumnNames.join(", ")}, or pass ?phoneColumn=`
    }))
  }
  const variables = names.map((name, i) => i === phoneIndex || name === "" ? undefined : name)
  return Effect.succeed({
    width: names.length,
    phoneIndex,
    phoneColumn: names[phoneIndex] ?? "",
    variables,
    columns: variables.filter((v): v is string => v !== undefined)
  })
}

/** A row of a contact list before its number is checked: where it came from, the number as written, its variables. */
export interface RawContact {
  readonly line: number
  readonly phone: string
  readonly vars: Readonly<Record<string, string>>
}

/** A record read through the header; a record whose field count differs from the header's is refused with a reason. */
export const contactOf = (header: ContactHeader, record: CsvRecord): RawContact | { readonly line: number; readonly value: string; readonly reason: string } => {
  const phone = record.fields[header.phoneIndex] ?? ""
  if (record.fields.length !== header.width) {
    return {
      line: record.line,
      value: phone,
      reason: `has ${record.fields.length} fields; the header has ${header.width}`
    }
  }
  const vars: Record<string, string> = {}
  header.variables.forEach((name, i) => {
    if (name !== undefined) vars[name] = record.fields[i] ?? ""
  })
  return { line: record.line, phone, vars }
}
