/**
 * The worker thread of the embedded database's WAL checkpoints (NodeSqliteClient.ts): its own connection to the file
 * copies committed pages from the write-ahead log into the database every `intervalMs` (PASSIVE: it never waits for
 * or blocks a writer), so the fsyncs and page copies of a checkpoint no longer run on the main thread inside a commit.
 * Plain node:sqlite, no Effect, so the thread is up in milliseconds.
 */
import { DatabaseSync } from "node:sqlite"
import { parentPort, workerData } from "node:worker_threads"

interface Settings {
  readonly filename: string
  readonly intervalMs: number
}

const settings = workerData as Settings | undefined
if (parentPort === null || typeof settings?.filename !== "string" || typeof settings.intervalMs !== "number") {
  throw new Error("WalCheckpoint.worker.ts runs as the checkpoint thread of NodeSqliteClient, given { filename, intervalMs }")
}

const db = new DatabaseSync(settings.filename)
db.exec("PRAGMA busy_timeout = 1000")
const checkpoint = db.prepare("PRAGMA wal_checkpoint(PASSIVE)")

const timer = setInterval(() => {
  try {
    checkpoint.get()
  } catch {
    // Busy or a transient I/O error: the next round tries again; the log only grows meanwhile.
  }
}, settings.intervalMs)

parentPort.on("message", (message: unknown) => {
  if (message !== "stop") return
  clearInterval(timer)
  db.close()
  parentPort?.close()
})
