/**
 * Contact files as checked rows: a CSV byte stream parsed (csv-parse: quotes, a BOM, CRLF or LF), read through its
 * header and each row's number checked on a worker thread (ContactCsv.worker.ts), as the bytes arrive.
 *
 * Why a thread: checking a number with libphonenumber leaves ~10 KB of garbage (it builds RegExps per match), and at
 * 50,000 rows a second that garbage, on this thread, grew the process's RSS by ~280 MB during a 1,000,000-row upload
 * (V8 grows the young generation to its maximum and promotes part of every scavenge). In the worker it stays in a
 * heap capped by `resourceLimits`; this thread receives the rows to stage packed, one string per batch.
 *
 * Invariants:
 * - Memory is bounded whatever the file's size: at most `maxInFlightBytes` (and one chunk) of the file are with the
 *   worker and not yet acknowledged, a chunk is acknowledged once its rows were posted, and rows are staged (`onRows`) in the order
 *   they arrive before the next message is read; a record is at most `maxRecordBytes`.
 * - One worker per file, terminated however the import ends (done, malformed file, body failed, interrupted). A
 *   worker that fails, exits, runs out of its heap or answers nothing for `stallTimeout` while it has work fails the
 *   import with `ContactParseFailed`; it never hangs.
 */
import { Duration, Effect, Option, Queue, Schema, Semaphore, Stream } from "effect"
import type { Cause } from "effect"
import { Worker } from "node:worker_threads"
import { InvalidField } from "../domain/Errors.ts"
import type { PackedBatch } from "./ContactRows.ts"

export { maxColumns, maxRecordBytes, phoneColumnNames } from "./ContactRows.ts"

export const CsvDelimiter = Schema.Literals([",", ";", "\t", "|"])
export type CsvDelimiter = typeof CsvDelimiter.Type

/** The file is not CSV we can read (an unclosed quote, a record over the size limit...): nothing is imported. */
export class CsvMalformed extends Schema.TaggedError<CsvMalformed>()("CsvMalformed", {
  message: Schema.String,
  line: Schema.optionalKey(Schema.Int)
}) {}

/** The parser thread failed (died, ran out of its heap, stopped answering): nothing is imported. */
export class ContactParseFailed extends Schema.TaggedError<ContactParseFailed>()("ContactParseFailed", {
  message: Schema.String
}) {}

/** Bytes of the file sent to the worker and not yet acknowledged: the file's part in flight between the threads. */
export const maxInFlightBytes = 256 * 1024

/** A worker with work that answers nothing this long is stuck (a 64 KB chunk takes ~30 ms). */
export const STALL_TIMEOUT: Duration.Duration = Duration.seconds(30)

/** A batch is posted once its rows' fields reach this many characters, if it has not reached `batchSize` rows before. */
export const maxBatchChars = 1024 * 1024

/**
 * The worker's heap. Its live data is libphonenumber's metadata, the parser and one batch (~12 MB after a full GC,
 * a batch at most ~`maxBatchChars` twice over as rows and as JSON); a young generation this small is scavenged
 * often and cheaply, and the old cap makes V8 collect what it promotes early instead of growing the heap.
 */
export const workerLimits = { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 48 } as const

const WORKER = new URL("./ContactCsv.worker.ts", import.meta.url)

/** What the worker is started with. */
export interface WorkerSettings {
  readonly delimiter: CsvDelimiter
  readonly phoneColumn: string | undefined
  readonly defaultCountry: string | undefined
  readonly batchSize: number
  readonly batchChars: number
  /** Invalid rows the batches list, over the whole file (the rest are counted). */
  readonly listInvalid: number
}

/** This thread to the worker: a chunk of the file (its buffer transferred) and the credits it took, or the end. */
export type ToWorker =
  | { readonly _tag: "Chunk"; readonly bytes: Uint8Array; readonly credits: number }
  | { readonly _tag: "End" }

/** The worker to this thread, in order: rows, a chunk's acknowledgement, and last the header or why the file failed. */
export type FromWorker =
  | { readonly _tag: "Rows"; readonly batch: PackedBatch }
  | { readonly _tag: "Ack"; readonly credits: number }
  | { readonly _tag: "Done"; readonly columns: ReadonlyArray<string>; readonly phoneColumn: string }
  | { readonly _tag: "Malformed"; readonly message: string; readonly line?: number }
  | { readonly _tag: "Invalid"; readonly field: string; readonly message: string }

type Event = FromWorker | { readonly _tag: "Crashed"; readonly message: string }

export interface CsvContactsOptions {
  readonly delimiter?: CsvDelimiter | undefined
  readonly phoneColumn?: string | undefined
  /** National numbers are completed with it; without it they are invalid rows. */
  readonly defaultCountry?: string | undefined
  readonly batchSize: number
  readonly listInvalid: number
}

export interface CsvWorkerOptions {
  /** The worker's script; tests start misbehaving ones. Default ContactCsv.worker.ts. */
  readonly worker?: URL
  /** Default `STALL_TIMEOUT`. */
  readonly stallTimeout?: Duration.Input
}

const tags: ReadonlySet<unknown> = new Set<FromWorker["_tag"]>(["Rows", "Ack", "Done", "Malformed", "Invalid"])

/** The worker's messages are its own protocol; only their tag is checked (a wrong script is found out, not trusted). */
const isFromWorker = (message: unknown): message is FromWorker =>
  typeof message === "object" && message !== null && tags.has((message as { readonly _tag?: unknown })._tag)

const start = <E>(settings: WorkerSettings, script: URL, events: Queue.Queue<Event, E>) =>
  Effect.try({
    try: () => {
      const worker = new Worker(script, { name: "contact-csv", workerData: settings, resourceLimits: workerLimits })
      const crashed = (message: string) => Queue.offerUnsafe(events, { _tag: "Crashed", message })
      // Listened to at once, in the same tick: an 'error' event without a listener would be thrown on this thread.
      worker.on("message", (message: unknown) =>
        isFromWorker(message)
          ? Queue.offerUnsafe(events, message)
          : crashed("the CSV parser thread answered nothing usable"))
      worker.on("error", (error) => crashed(`the CSV parser thread failed: ${error.message}`))
      worker.on("messageerror", (error) => crashed(`the CSV parser thread's answer could not be read: ${error.message}`))
      worker.on("exit", (code) => crashed(`the CSV parser thread exited (code ${code}) before the file's end`))
      return worker
    },
    catch: (error) =>
      new ContactParseFailed({ message: `the CSV parser thread did not start: ${error instanceof Error ? error.message : String(error)}` })
  })

/**
 * The file's rows, checked, handed to `onRows` batch by batch (at most `batchSize` rows) as the bytes arrive; the
 * header's variables and phone column once the file has ended.
 */
export const csvContacts = <E, R, E2, R2>(
  body: Stream.Stream<Uint8Array, E, R>,
  options: CsvContactsOptions,
  onRows: (batch: PackedBatch) => Effect.Effect<void, E2, R2>,
  workerOptions: CsvWorkerOptions = {}
): Effect.Effect<
  { readonly columns: ReadonlyArray<string>; readonly phoneColumn: string },
  E | E2 | CsvMalformed | InvalidField | ContactParseFailed,
  R | R2
> =>
  Effect.scoped(Effect.gen(function*() {
    const events = yield* Queue.unbounded<Event, E>()
    const settings: WorkerSettings = {
      delimiter: options.delimiter ?? ",",
      phoneColumn: options.phoneColumn,
      defaultCountry: options.defaultCountry,
      batchSize: options.batchSize,
      batchChars: maxBatchChars,
      listInvalid: options.listInvalid
    }
    // Stops the thread whatever it is doing; at once when it has already ended.
    const worker = yield* Effect.acquireRelease(
      start(settings, workerOptions.worker ?? WORKER, events),
      (w) => Effect.promise(() => w.terminate())
    )
    const credits = yield* Semaphore.make(maxInFlightBytes)
    /** Bytes with the worker, plus one once the end is sent, until it answers them: while positive it owes an answer. */
    let owed = 0
    // Sent at once, then the credits are waited for: the body's chunk is never held while the worker catches up (held,
    // it would outlive a few scavenges and wait in the old generation, its bytes with it, for a full GC).
    const send = (chunk: Uint8Array) => {
      const n = Math.min(chunk.byteLength, maxInFlightBytes)
      // A copy of its own to transfer: the body's chunk may be a view into a buffer others use (Node's pool).
      const bytes = new Uint8Array(chunk)
      owed += n
      worker.postMessage({ _tag: "Chunk", bytes, credits: n } satisfies ToWorker, [bytes.buffer])
      return credits.take(n)
    }
    yield* body.pipe(
      Stream.runForEach(send),
      Effect.andThen(Effect.sync(() => {
        owed += 1
        worker.postMessage({ _tag: "End" } satisfies ToWorker)
      })),
      Effect.catchCause((cause: Cause.Cause<E>) => Queue.failCause(events, cause)),
      Effect.forkScoped
    )

    const stallTimeout = workerOptions.stallTimeout ?? STALL_TIMEOUT
    const nextEvent = Effect.gen(function*() {
      while (true) {
        const owedBefore = owed
        const event = yield* Effect.timeoutOption(Queue.take(events), stallTimeout)
        if (Option.isSome(event)) return event.value
        // Waiting on the client is fine; waiting on a worker that owed an answer all along is not.
        if (owedBefore > 0 && owed > 0) {
          return { _tag: "Crashed", message: `the CSV parser thread answered nothing for ${Duration.format(Duration.fromInputUnsafe(stallTimeout))}` } satisfies Event
        }
      }
    })

    while (true) {
      const event: Event = yield* nextEvent
      switch (event._tag) {
        case "Rows":
          yield* onRows(event.batch)
          break
        case "Ack":
          owed -= event.credits
          yield* credits.release(event.credits)
          break
        case "Done":
          return { columns: event.columns, phoneColumn: event.phoneColumn }
        case "Invalid":
          return yield* new InvalidField({ field: event.field, message: event.message })
        case "Malformed":
          return yield* new CsvMalformed({ message: event.message, ...(event.line !== undefined ? { line: event.line } : {}) })
        case "Crashed":
          return yield* new ContactParseFailed({ message: event.message })
      }
    }
  }))
