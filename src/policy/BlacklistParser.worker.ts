/**
 * The worker thread of `parseBlacklistOffThread` (BlacklistParser.ts): parses the file it is started with
 * (`workerData`, whose buffer was transferred, not copied), posts the result back with the table's buffer transferred
 * too, and ends. It imports the parser alone, not Effect, so the thread is up in tens of milliseconds.
 *
 * Anything thrown here reaches the main thread as the Worker's 'error' event, which fails the parse.
 */
import { parentPort, workerData } from "node:worker_threads"
import { parseBlacklist } from "./BlacklistFile.ts"
import type { ParserReply } from "./BlacklistParser.ts"

const port = parentPort
const bytes: unknown = workerData
if (port === null || !(bytes instanceof Uint8Array)) {
  throw new Error("BlacklistParser.worker.ts runs as the worker of parseBlacklistOffThread, given the file's bytes")
}

const { set, invalid, invalidCount, duplicateCount } = parseBlacklist(bytes)
const table = set.table
const buffer = table.buffer
// A builder's table is always its own ArrayBuffer; anything else could not be handed over without a copy.
if (!(buffer instanceof ArrayBuffer)) throw new Error("the number set's table is not a transferable ArrayBuffer")
const reply: ParserReply = { table, size: set.size, invalid, invalidCount, duplicateCount }
port.postMessage(reply, [buffer])
