/**
 * Parses a blacklist file (BlacklistFile.ts) on a worker thread, so that a large file does not stall the event loop:
 * 10 million numbers (~143 MB) take ~2.7 s of CPU, during which HTTP and SMPP would otherwise wait.
 *
 * Nothing large is copied between the threads. The file's buffer is transferred to the worker (the caller's bytes are
 * detached afterwards: it must not read them again), the worker builds the set's table and transfers the table's
 * buffer back, and this thread adopts it as the NumberSet's table. Only the invalid-line report (at most 100 lines of
 * at most 200 characters) is cloned. A view on part of a larger buffer, a SharedArrayBuffer or a buffer Node marked
 * untransferable (its Buffer pool) is copied once first: transferring it would take its other users' memory away.
 *
 * One worker per parse, started, used and terminated: parses are rare (a list's file changed) and Blacklists runs one
 * at a time, so a standing worker would only keep a thread and its heap alive between polls. Starting one costs ~50
 * ms before the parse begins, and about 1 ms of this thread. The worker is terminated however the parse ends (result,
 * error, timeout, interruption by a dropped list or a closing scope), so no worker outlives its parse. A worker that
 * fails, exits without a result or answers nothing within the timeout fails the effect; it never hangs.
 *
 * Files smaller than `INLINE_BELOW_BYTES` (1 MiB, ~70,000 numbers) are parsed on this thread: that takes under 10 ms,
 * not much more than a worker's start costs this thread, and a small list then loads without the worker's latency.
 *
 * The worker is `BlacklistParser.worker.ts`, run by Node as TypeScript (type stripping), with the process's
 * execArgv, as Node does by default: it loads its .ts imports the way this thread does, under plain node and in
 * vitest's forked test processes alike.
 */
import { Duration, Effect, Schema } from "effect"
import { isMarkedAsUntransferable, Worker } from "node:worker_threads"
import { parseBlacklist } from "./BlacklistFile.ts"
import type { InvalidLine, ParsedBlacklist } from "./BlacklistFile.ts"
import { NumberSet } from "./NumberSet.ts"

/** Files below this size (bytes) are parsed on the calling thread. */
export const INLINE_BELOW_BYTES = 1024 * 1024

/** How long a worker may take to answer: ~45 times what 10 million numbers take here, so only a stuck worker hits it. */
export const PARSE_TIMEOUT: Duration.Duration = Duration.minutes(2)

const WORKER = new URL("./BlacklistParser.worker.ts", import.meta.url)

export class BlacklistParseError extends Schema.TaggedError<BlacklistParseError>()("BlacklistParseError", {
  message: Schema.String
}) {}

/** What the worker posts back: the parse, with the set as its table (transferred) and size. */
export interface ParserReply {
  readonly table: Float64Array
  readonly size: number
  readonly invalid: ReadonlyArray<InvalidLine>
  readonly invalidCount: number
  readonly duplicateCount: number
}

export interface ParseOptions {
  /** Default `INLINE_BELOW_BYTES`; 0 sends every file to a worker. */
  readonly inlineBelowBytes?: number
  /** Default `PARSE_TIMEOUT`. */
  readonly timeout?: Duration.Input
  /** The worker's script; tests start misbehaving ones. Default BlacklistParser.worker.ts. */
  readonly worker?: URL
}

const failure = (message: string) => new BlacklistParseError({ message })

/** The bytes in a buffer of their own that can be transferred: the caller's, or a copy when they share theirs. */
const ownBuffer = (bytes: Uint8Array): { readonly view: Uint8Array; readonly buffer: ArrayBuffer } => {
  const buffer = bytes.buffer
  if (
    buffer instanceof ArrayBuffer && !isMarkedAsUntransferable(buffer) &&
    bytes.byteOffset === 0 && bytes.byteLength === buffer.byteLength
  ) {
    return { view: bytes, buffer }
  }
  const copy = new Uint8Array(bytes)
  return { view: copy, buffer: copy.buffer }
}

/** The parse the worker posted, its table adopted as is; a reply of any other shape fails. */
const adopt = (reply: unknown): Effect.Effect<ParsedBlacklist, BlacklistParseError> => {
  if (typeof reply !== "object" || reply === null) return Effect.fail(failure("the parser thread answered nothing usable"))
  const { table, size, invalid, invalidCount, duplicateCount } = reply as Partial<Record<keyof ParserReply, unknown>>
  // At most half the slots in use: a table without an empty slot would make a lookup of a missing number loop forever.
  if (
    !(table instanceof Float64Array) || typeof size !== "number" || !Number.isInteger(size) || size < 0 ||
    size * 2 > table.length || !Array.isArray(invalid) || typeof invalidCount !== "number" ||
    typeof duplicateCount !== "number"
  ) {
    return Effect.fail(failure("the parser thread answered nothing usable"))
  }
  const lines: ReadonlyArray<InvalidLine> = invalid
  return Effect.succeed({ set: new NumberSet(table, size), invalid: lines, invalidCount, duplicateCount })
}

type Outcome =
  | { readonly _tag: "Reply"; readonly reply: unknown }
  | { readonly _tag: "Failed"; readonly message: string }

interface Started {
  readonly worker: Worker
  /** Settles once, with whichever comes first: the reply, an error, or the worker's exit. */
  readonly outcome: Promise<Outcome>
}

const start = (bytes: Uint8Array, script: URL) =>
  Effect.try({
    try: (): Started => {
      const { view, buffer } = ownBuffer(bytes)
      const worker = new Worker(script, { name: "blacklist-parser", workerData: view, transferList: [buffer] })
      // Listened to at once, in the same tick: an 'error' event without a listener would be thrown on this thread.
      const outcome = new Promise<Outcome>((resolve) => {
        worker.once("message", (reply: unknown) => resolve({ _tag: "Reply", reply }))
        worker.on("error", (error) => resolve({ _tag: "Failed", message: `the parser thread failed: ${error.message}` }))
        worker.once("messageerror", (error) =>
          resolve({ _tag: "Failed", message: `the parser thread's answer could not be read: ${error.message}` }))
        worker.once("exit", (code) =>
          resolve({ _tag: "Failed", message: `the parser thread exited (code ${code}) without an answer` }))
      })
      return { worker, outcome }
    },
    catch: (error) => failure(`the parser thread did not start: ${error instanceof Error ? error.message : String(error)}`)
  })

const inWorker = (bytes: Uint8Array, script: URL, timeout: Duration.Input) =>
  Effect.acquireUseRelease(
    start(bytes, script),
    ({ outcome }) =>
      Effect.promise(() => outcome).pipe(
        Effect.flatMap((o) => o._tag === "Reply" ? adopt(o.reply) : Effect.fail(failure(o.message))),
        Effect.timeoutOrElse({
          duration: timeout,
          orElse: () =>
            Effect.fail(failure(`the parser thread did not answer within ${Duration.format(Duration.fromInputUnsafe(timeout))}`))
        })
      ),
    // Stops the thread whatever it is doing (a tight loop included); at once when it has already ended.
    ({ worker }) => Effect.promise(() => worker.terminate())
  )

const inline = (bytes: Uint8Array) =>
  Effect.try({
    try: () => parseBlacklist(bytes),
    catch: (error) => failure(`the parse failed: ${error instanceof Error ? error.message : String(error)}`)
  })

/**
 * `parseBlacklist(bytes)`, on a worker thread unless the file is small; fails with BlacklistParseError, never hangs.
 * The bytes are handed over: once the worker starts their buffer is detached (unless it had to be copied, see
 * above), so the caller takes anything it needs from them (their length) before running this.
 */
export const parseBlacklistOffThread = (
  bytes: Uint8Array,
  options: ParseOptions = {}
): Effect.Effect<ParsedBlacklist, BlacklistParseError> =>
  Effect.suspend(() => {
    const buffer = bytes.buffer
    if (buffer instanceof ArrayBuffer && buffer.detached) {
      return Effect.fail(failure("the file's bytes were already handed over (their buffer is detached)"))
    }
    return bytes.byteLength < (options.inlineBelowBytes ?? INLINE_BELOW_BYTES)
      ? inline(bytes)
      : inWorker(bytes, options.worker ?? WORKER, options.timeout ?? PARSE_TIMEOUT)
  })
