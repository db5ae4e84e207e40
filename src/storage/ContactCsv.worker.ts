/**
 * The worker thread of `csvContacts` (ContactCsv.ts): parses the contact file's chunks as they arrive (csv-parse),
 * reads the header, checks each row's number and posts the rows back in batches (packed: one string each),
 * acknowledging each chunk once its rows are posted (the main thread sends more only then). It imports csv-parse and the Effect-free ContactRows.ts
 * alone, so the thread is up in tens of milliseconds and its heap holds the parser, libphonenumber's metadata and
 * one batch, within the `resourceLimits` it is started with.
 *
 * Anything thrown here reaches the main thread as the Worker's 'error' event, which fails the import.
 */
import { CsvError, parse } from "csv-parse"
import { parentPort, workerData } from "node:worker_threads"
import type { FromWorker, ToWorker, WorkerSettings } from "./ContactCsv.ts"
import { breaksIn, checkContact, contactOf, maxRecordBytes, packBatch, readHeader } from "./ContactRows.ts"
import type { CheckedRow, ContactHeader } from "./ContactRows.ts"

const port = parentPort
const settings = workerData as WorkerSettings | undefined
if (port === null || typeof settings !== "object" || settings === null) {
  throw new Error("ContactCsv.worker.ts runs as the worker of csvContacts, given its settings")
}
const post = (message: FromWorker) => port.postMessage(message)

let header: ContactHeader | undefined
let next = 1
let batch: Array<CheckedRow> = []
/** The batch's record lengths in characters: wide rows flush it early, so a batch stays small whatever the file. */
let batchChars = 0
let stopped = false
/** Invalid rows still to list: the report lists the first `settings.listInvalid` of the whole file. */
let listInvalid = settings.listInvalid

const stop = (message: FromWorker) => {
  stopped = true
  post(message)
}

const flush = () => {
  if (batch.length === 0) return
  const packed = packBatch(batch, listInvalid)
  listInvalid -= packed.invalidRows.length
  post({ _tag: "Rows", batch: packed })
  batch = []
  batchChars = 0
}

const parser = parse({
  bom: true,
  delimiter: settings.delimiter,
  relax_column_count: true,
  max_record_size: maxRecordBytes
})

parser.on("data", (fields: Array<string>) => {
  if (stopped) return
  const line = next
  next += 1 + breaksIn(fields)
  // A blank line is a record of one empty field: counted above, skipped here.
  if (fields.length === 1 && fields[0] === "") return
  if (header === undefined) {
    const read = readHeader(fields, settings.phoneColumn)
    if ("problem" in read) return stop({ _tag: "Invalid", ...read.problem })
    header = read.header
    return
  }
  batch.push(checkContact(contactOf(header, { line, fields }), settings.defaultCountry))
  for (const field of fields) batchChars += field.length
  if (batch.length >= settings.batchSize || batchChars >= settings.batchChars) flush()
})

parser.on("error", (error) => {
  if (stopped) return
  if (error instanceof CsvError) {
    const message = error.code === "CSV_MAX_RECORD_SIZE"
      ? `a record is longer than ${maxRecordBytes} bytes (an unclosed quote?)`
      : error.message
    return stop({ _tag: "Malformed", message, ...(typeof error.lines === "number" ? { line: error.lines } : {}) })
  }
  stop({ _tag: "Malformed", message: error.message })
})

parser.on("end", () => {
  if (stopped) return
  flush()
  stop(
    header === undefined
      ? { _tag: "Invalid", field: "body", message: "the file is empty: a header row naming the columns is required" }
      : { _tag: "Done", columns: header.columns, phoneColumn: header.phoneColumn }
  )
})

port.on("message", (message: ToWorker) => {
  if (stopped) return
  if (message._tag === "End") {
    parser.end()
    return
  }
  const { credits } = message
  // Called once the parser has taken the chunk and its records were handled (they are emitted as it parses).
  parser.write(message.bytes, () => {
    if (!stopped) post({ _tag: "Ack", credits })
  })
})
