/**
 * The live blacklists of the contact-policy stage. A blacklist is a named list of E.164 numbers: a base file in the
 * object store (one number per line, `#` comments, see BlacklistFile.ts) plus an overlay of numbers added or removed
 * through the API, kept in SQL so every gateway node applies the same edits.
 *
 *   listed(n) = overlay added n  ||  (base file has n  &&  overlay did not remove n)
 *
 * Reads are synchronous and allocation-free (the hot path asks per message): a list's base is one immutable
 * `NumberSet` behind one field, replaced by a single assignment once a new version is fully built, so a reader sees
 * the old set or the new one, never a half-built one.
 *
 * The file is polled (a HEAD per list per interval; a GET only when the ETag moved). A load reads the body into one
 * buffer sized from the object's length and parses it once, straight into the set's table, on a worker thread (the
 * buffer is transferred there and the table back, no copies; a 10-million parse takes ~3 s and would otherwise stall
 * HTTP and SMPP for all of it). For 10 million numbers (~140 MB) that is the buffer, the new table and the old table
 * (until the swap), about 460 MB at the peak. One
 * load runs at a time on a node, so several large lists never peak together. A missing, unreadable or corrupt file
 * keeps the version in use, marks the list stale (the `smsgw_blacklist_stale` alert) and is retried every poll.
 *
 * The overlay is polled through `blacklist_versions` (one small row per edited list): only a list whose version
 * moved has its entries read again. The node that made an edit applies it at once.
 *
 * A list may have no file at all (`object: null`, an organisation's opt-out list edited through the API only): its
 * base is empty, nothing is polled, and it is never stale.
 */
import { Clock, Context, Duration, Effect, FiberMap, Layer, Option, Result, Schema, Semaphore, Stream } from "effect"
import { SqlClient } from "effect/sql"
import type { SqlError } from "effect/sql"
import { InvalidField, StoreUnavailable } from "../domain/Errors.ts"
import { blacklistMetrics } from "../observability/PolicyMetrics.ts"
import { ObjectStore } from "../storage/ObjectStore.ts"
import type { ObjectStoreError, StreamedObject } from "../storage/ObjectStore.ts"
import { parseBlacklistOffThread } from "./BlacklistParser.ts"
import type { NumberSet } from "./NumberSet.ts"
import { inRanges, msisdnValue, prefixRanges } from "./NumberSet.ts"

export interface BlacklistSource {
  readonly name: string
  /** The key of the list's file in the ObjectStore; null: no file, the list is its API entries only (never polled). */
  readonly object: string | null
}

export interface BlacklistStatus {
  readonly name: string
  /**
   * The configured key (a load of a new key keeps the previous file's numbers until it succeeds); null for a list
   * without a file: its base is empty, it is never checked and never stale.
   */
  readonly object: string | null
  /** The ETag of the file in use; null before the first successful load. */
  readonly etag: string | null
  /** Numbers in the file in use. */
  readonly baseEntries: number
  /** Overlay numbers added through the API (listed whether or not the file has them). */
  readonly added: number
  /** Overlay numbers removed through the API (masked in the file). */
  readonly removed: number
  /** Epoch ms of the last successful load. */
  readonly loadedAt: number | null
  /** Duration of the last successful load: download, parse and build. */
  readonly loadMs: number | null
  /** Lines of the file in use that are not a number (skipped). */
  readonly invalidLines: number
  /** Why the last check or load failed; null once one succeeds. */
  readonly lastError: string | null
  /** The last check or load failed: the file in use may be older than the object. */
  readonly stale: boolean
  /** Lines of the file in use repeating a number of an earlier line. */
  readonly duplicateLines: number
  /** Size of the file in use, in bytes. */
  readonly sizeBytes: number | null
  /** Epoch ms of the last check of the file (successful or not). */
  readonly checkedAt: number | null
  /** This node's version of the list's overlay (`blacklist_versions`); 0 before any edit. */
  readonly overlayVersion: number
}

/** One number a search found: listed through the file or the API, or in the file but unlisted through the API. */
export interface BlacklistEntry {
  /** E.164 with its `+`. */
  readonly number: string
  readonly source: "file" | "added" | "removed"
}

/** Matches a search looks at per source before it sorts them and keeps the first page. */
const SEARCH_SCAN = 10_000

export class UnknownBlacklist extends Schema.TaggedError<UnknownBlacklist>()("UnknownBlacklist", {
  name: Schema.String
}) {}

export class Blacklists extends Context.Service<Blacklists, {
  /** Hot path, synchronous, no allocation beyond the lookup: unknown list or not-yet-loaded list → false (overlay still applies). */
  readonly has: (list: string, msisdn: string) => boolean
  /** The lists the policy document names; called at start and whenever the document changes. New lists load in the background, removed lists are dropped, a changed object key reloads. Returns at once. */
  readonly configure: (lists: ReadonlyArray<BlacklistSource>) => Effect.Effect<void>
  /** Checks the named list (or all) now: HEAD, and a GET + parse + atomic swap when the ETag changed; answers their status afterwards. */
  readonly reload: (name?: string) => Effect.Effect<ReadonlyArray<BlacklistStatus>, UnknownBlacklist>
  /** Numbers must be E.164 (optional +, 7-15 digits): invalid ones fail with InvalidField from src/domain/Errors.ts naming field `numbers[i]`. Persisted in SQL (upsert), visible on this node at once and on other nodes within the overlay poll interval. */
  readonly addEntries: (
    list: string,
    numbers: ReadonlyArray<string>
  ) => Effect.Effect<{ readonly changed: number }, UnknownBlacklist | InvalidField | StoreUnavailable>
  readonly removeEntries: (
    list: string,
    numbers: ReadonlyArray<string>
  ) => Effect.Effect<{ readonly changed: number }, UnknownBlacklist | InvalidField | StoreUnavailable>
  readonly status: () => ReadonlyArray<BlacklistStatus>
  /**
   * The list's numbers starting with `digits` (1 to 15 digits; empty: any), ascending, at most `limit`, as this node
   * holds them; `more` when there are others (narrow the query). Numbers the API unlisted from the file are found
   * too (source `removed`: not listed). One pass over the file's set: ~40 ms for 10 million numbers.
   */
  readonly search: (
    list: string,
    digits: string,
    limit: number
  ) => Effect.Effect<{ readonly entries: ReadonlyArray<BlacklistEntry>; readonly more: boolean }, UnknownBlacklist>
}>()("smsgw/policy/Blacklists") {
  /**
   * `pollIntervalMs`: how often each list's file is checked (a HEAD). `overlayPollIntervalMs`: how often the overlay
   * versions are read, i.e. how soon another node's edit applies here.
   */
  static readonly layer = (options: { readonly pollIntervalMs: number; readonly overlayPollIntervalMs: number }) =>
    Layer.effect(Blacklists, make(options))
}

/** One version of a list's file, whole: replaced by one assignment. */
interface BaseVersion {
  readonly set: NumberSet
  readonly object: string
  readonly etag: string
  readonly bytes: number
  readonly loadedAt: number
  readonly loadMs: number
  readonly invalidLines: number
  readonly duplicateLines: number
}

/**
 * A list's overlay as of `version` (its row in `blacklist_versions`). Replaced whole by a poll; edited in place by
 * this node's own changes (under the list's overlay lock, so the two never interleave).
 */
interface Overlay {
  readonly added: Set<number>
  readonly removed: Set<number>
  version: number
}

interface Entry {
  readonly name: string
  object: string | null
  base: BaseVersion | undefined
  overlay: Overlay
  lastError: string | null
  stale: boolean
  checkedAt: number | null
  /** The ETag of an object whose content was refused: checked again only once the object changes. */
  refused: string | undefined
  /** One check or load of the file at a time. */
  readonly fileLock: Semaphore.Semaphore
  /** One overlay read-and-swap or edit at a time. */
  readonly overlayLock: Semaphore.Semaphore
  readonly metrics: ReturnType<typeof blacklistMetrics>
}

class LoadFailure extends Schema.TaggedError<LoadFailure>()("LoadFailure", {
  message: Schema.String,
  /** Set when the object's content was refused (not a list): that version is not downloaded again. */
  refused: Schema.optionalKey(Schema.String)
}) {}

type Int = number | string | bigint

/** Rows an upsert statement carries: 4 parameters each, far below SQLite's and PostgreSQL's limits. */
const WRITE_BATCH = 500
/** Invalid line numbers named in the log of a load. */
const LOGGED_INVALID_LINES = 5
/** Concurrent HEADs of a poll (downloads take turns anyway). */
const CHECK_CONCURRENCY = 4

const objectFailure = (error: ObjectStoreError) =>
  new LoadFailure({ message: `${error.operation} of the object failed: ${error.message}` })

const storeError = (error: SqlError.SqlError) => new StoreUnavailable({ message: error.message, cause: error })

/**
 * The body of a streamed object in one buffer allocated up front from its length: no list of chunks, no
 * concatenation. A body longer or shorter than announced fails (the object changed under the read, or the
 * connection was cut), so a partial file is never parsed.
 */
const readBody = (object: string, streamed: StreamedObject) =>
  Effect.suspend(() => {
    const buffer = new Uint8Array(streamed.size)
    let length = 0
    const mismatch = (read: string) =>
      new LoadFailure({ message: `read ${read} of the ${buffer.byteLength} bytes announced for ${object}` })
    return Stream.runForEachArray(streamed.stream, (chunks) => {
      for (const chunk of chunks) {
        if (length + chunk.byteLength > buffer.byteLength) return Effect.fail(mismatch("more than"))
        buffer.set(chunk, length)
        length += chunk.byteLength
      }
      return Effect.void
    }).pipe(
      Effect.catchTag("ObjectStoreError", (error) => Effect.fail(objectFailure(error))),
      Effect.flatMap(() => length === buffer.byteLength ? Effect.succeed(buffer) : Effect.fail(mismatch(String(length))))
    )
  })

const make = (options: { readonly pollIntervalMs: number; readonly overlayPollIntervalMs: number }) =>
  Effect.gen(function*() {
    const store = yield* ObjectStore
    const sql = yield* SqlClient.SqlClient
    const entries = new Map<string, Entry>()
    /** Background loads started by `configure`, by list: dropping a list (or its key changing) interrupts its load. */
    const loads = yield* FiberMap.make<string>()
    /** Downloads and parses take turns: several large lists never hold their buffers and tables at the same time. */
    const loadPermit = Semaphore.makeUnsafe(1)

    /** Whether an entry is still the configured one (a dropped list's late load must not touch its metrics). */
    const live = (entry: Entry) => entries.get(entry.name) === entry

    const publishEntries = (entry: Entry) =>
      live(entry) ? entry.metrics.entries((entry.base?.set.size ?? 0) + entry.overlay.added.size) : Effect.void

    // ---- the file ----

    /** GET, read, parse; undefined when the object turns out to be the version in use after all. */
    const fetchAndParse = Effect.fnUntraced(function*(object: string, known: string | undefined) {
      const started = performance.now()
      const opened = yield* store.getStream(object).pipe(Effect.mapError(objectFailure))
      if (Option.isNone(opened)) return yield* new LoadFailure({ message: `object ${object} not found` })
      const streamed = opened.value
      if (streamed.etag === known) return undefined
      // The etag names the version in use; an answer without one (an S3-compatible server caught mid-write, seen with
      // s3rver: no ETag and a partial body) is not a version to load: the next poll reads it again.
      if (streamed.etag === "") return yield* new LoadFailure({ message: `object ${object} came without an ETag (being written?): not loaded` })
      const bytes = yield* readBody(object, streamed)
      const downloadMs = performance.now() - started
      // A text list has no NUL byte; a gzip, a spreadsheet or a UTF-16 export does: refuse it rather than read it as
      // a list of almost nothing.
      const nul = bytes.indexOf(0)
      if (nul !== -1) {
        return yield* new LoadFailure({
          message: `not a text file (a NUL byte at offset ${nul}): not loaded`,
          refused: streamed.etag
        })
      }
      // Parsed on a worker thread (10 million numbers take seconds), which takes the bytes: their buffer is detached.
      const size = bytes.byteLength
      const parsed = yield* parseBlacklistOffThread(bytes).pipe(
        Effect.mapError((error) => new LoadFailure({ message: error.message }))
      )
      const validLines = parsed.set.size + parsed.duplicateCount
      // Invalid lines are skipped, but a file mostly made of them is the wrong file (a CSV export, a typo'd upload):
      // loading it would silently empty the list.
      if (parsed.invalidCount > validLines) {
        return yield* new LoadFailure({
          message: `${parsed.invalidCount} of ${parsed.invalidCount + validLines} lines are not numbers (first at line ${
            parsed.invalid[0]?.line ?? 0
          }): not loaded`,
          refused: streamed.etag
        })
      }
      const loadMs = performance.now() - started
      const loadedAt = yield* Clock.currentTimeMillis
      const base: BaseVersion = {
        set: parsed.set,
        object,
        etag: streamed.etag,
        bytes: size,
        loadedAt,
        loadMs,
        invalidLines: parsed.invalidCount,
        duplicateLines: parsed.duplicateCount
      }
      return { base, downloadMs, invalidAt: parsed.invalid.slice(0, LOGGED_INVALID_LINES).map((i) => i.line) }
    }, Effect.scoped)

    const failed = Effect.fnUntraced(function*(entry: Entry, message: string) {
      const first = entry.lastError !== message
      entry.lastError = message
      entry.stale = true
      if (!live(entry)) return
      yield* entry.metrics.failed
      // Every failed poll counts, but only a new reason is logged: a missing file would otherwise log every interval.
      if (first) {
        yield* Effect.logWarning("blacklist file not loaded: keeping the version in use").pipe(
          Effect.annotateLogs({
            list: entry.name,
            object: entry.object,
            error: message,
            inUse: entry.base === undefined ? "none" : entry.base.etag
          })
        )
      }
    })

    const swapped = Effect.fnUntraced(function*(
      entry: Entry,
      loaded: { readonly base: BaseVersion; readonly downloadMs: number; readonly invalidAt: ReadonlyArray<number> }
    ) {
      const { base } = loaded
      entry.base = base
      entry.lastError = null
      entry.stale = false
      if (!live(entry)) return
      yield* entry.metrics.loaded(base.loadMs / 1000)
      yield* publishEntries(entry)
      yield* Effect.logInfo("blacklist loaded").pipe(
        Effect.annotateLogs({
          list: entry.name,
          object: base.object,
          etag: base.etag,
          entries: base.set.size,
          bytes: base.bytes,
          loadMs: Math.round(base.loadMs),
          downloadMs: Math.round(loaded.downloadMs),
          duplicateLines: base.duplicateLines
        })
      )
      // Line numbers only: the lines themselves may hold (mistyped) numbers.
      if (base.invalidLines > 0) {
        yield* Effect.logWarning("blacklist file has invalid lines: skipped").pipe(
          Effect.annotateLogs({
            list: entry.name,
            object: base.object,
            invalidLines: base.invalidLines,
            firstInvalidLines: loaded.invalidAt.join(",")
          })
        )
      }
    })

    /**
     * A list without a file (entries through the API only): nothing to check. A list that had a file until now drops
     * its numbers, and whatever failed about that file is over (no stale alert for a file that is not wanted).
     */
    const withoutFile = Effect.fnUntraced(function*(entry: Entry) {
      const hadFile = entry.base !== undefined
      const wasStale = entry.stale
      entry.base = undefined
      entry.refused = undefined
      entry.lastError = null
      entry.stale = false
      if (!live(entry)) return
      if (wasStale) yield* entry.metrics.fresh
      if (hadFile) {
        yield* publishEntries(entry)
        yield* Effect.logInfo("blacklist has no file any more: only its API entries apply").pipe(
          Effect.annotateLogs({ list: entry.name })
        )
      }
    })

    /** HEAD, and a load when the ETag is not the one in use; the outcome goes to the entry's status and metrics. */
    const check = (entry: Entry) =>
      entry.fileLock.withPermit(Effect.gen(function*() {
        // A list dropped meanwhile is not worth a download.
        if (!live(entry)) return
        const object = entry.object
        if (object === null) return yield* withoutFile(entry)
        const known = entry.base !== undefined && entry.base.object === object ? entry.base.etag : undefined
        const outcome = yield* Effect.result(Effect.gen(function*() {
          const info = yield* store.head(object).pipe(Effect.mapError(objectFailure))
          if (Option.isNone(info)) return yield* new LoadFailure({ message: `object ${object} not found` })
          if (info.value.etag === known) return undefined
          // The same refused content again: still failing, but not worth downloading and parsing every poll.
          const refused = entry.refused
          if (info.value.etag === refused && entry.lastError !== null) {
            return yield* new LoadFailure({ message: entry.lastError, refused })
          }
          return yield* loadPermit.withPermit(fetchAndParse(object, known))
        }))
        entry.checkedAt = yield* Clock.currentTimeMillis
        if (Result.isFailure(outcome)) {
          entry.refused = outcome.failure.refused
          return yield* failed(entry, outcome.failure.message)
        }
        entry.refused = undefined
        if (outcome.success !== undefined) return yield* swapped(entry, outcome.success)
        // The version in use is the object's: whatever failed before is over.
        if (entry.stale) {
          entry.stale = false
          entry.lastError = null
          if (live(entry)) {
            yield* entry.metrics.fresh
            yield* Effect.logInfo("blacklist file reachable again; the version in use is current").pipe(
              Effect.annotateLogs({ list: entry.name, object })
            )
          }
        }
      }))

    /** Every list with a file (a list without one has nothing to poll). */
    const checkAll = Effect.suspend(() =>
      Effect.forEach([...entries.values()].filter((e) => e.object !== null), check, {
        concurrency: CHECK_CONCURRENCY,
        discard: true
      })
    )

    // ---- the overlay ----

    const readVersion = (list: string) =>
      Effect.map(
        sql<{ readonly version: Int }>`SELECT version FROM blacklist_versions WHERE list = ${list}`,
        (rows) => rows[0] === undefined ? 0 : Number(rows[0].version)
      )

    /**
     * The list's entries as of one version, or undefined when an edit landed while reading (the version read before
     * and after the rows differ): a version's rows are committed with it, so equal versions mean exactly its rows.
     */
    const readOverlay = (list: string) =>
      Effect.gen(function*() {
        const before = yield* readVersion(list)
        const rows = yield* sql<{ readonly number: string; readonly listed: Int }>`
          SELECT number, listed FROM blacklist_entries WHERE list = ${list}`
        const after = yield* readVersion(list)
        if (before !== after) return undefined
        const overlay: Overlay = { added: new Set(), removed: new Set(), version: before }
        for (const row of rows) (Number(row.listed) === 1 ? overlay.added : overlay.removed).add(Number(row.number))
        return overlay
      })

    /** Reads the list's overlay again if the database has a newer version than this node. */
    const refreshOverlay = (entry: Entry, known?: number) =>
      entry.overlayLock.withPermit(Effect.gen(function*() {
        const version = known ?? (yield* readVersion(entry.name))
        if (version <= entry.overlay.version) return
        const overlay = yield* readOverlay(entry.name)
        // Versions only grow: an older read never replaces a newer overlay.
        if (overlay === undefined || overlay.version <= entry.overlay.version) return
        entry.overlay = overlay
        yield* publishEntries(entry)
      }))

    let overlayError: string | null = null

    /** One small read of every list's version; the entries of a list are read only when its version moved. */
    const pollOverlays = Effect.gen(function*() {
      if (entries.size === 0) return
      const rows = yield* sql<{ readonly list: string; readonly version: Int }>`
        SELECT list, version FROM blacklist_versions`
      for (const row of rows) {
        const entry = entries.get(row.list)
        const version = Number(row.version)
        if (entry !== undefined && version > entry.overlay.version) yield* refreshOverlay(entry, version)
      }
    }).pipe(
      Effect.tap(() => {
        if (overlayError === null) return Effect.void
        overlayError = null
        return Effect.logInfo("blacklist overlay poll works again")
      }),
      Effect.catch((error) => {
        const first = overlayError !== error.message
        overlayError = error.message
        return first
          ? Effect.logWarning("blacklist overlay poll failed; edits of other nodes wait").pipe(
            Effect.annotateLogs({ error: error.message })
          )
          : Effect.void
      })
    )

    /** The E.164 numbers as integers, ascending and distinct; the first invalid one fails naming its index. */
    const validate = (numbers: ReadonlyArray<string>) => {
      const values: Array<number> = []
      for (const [i, number] of numbers.entries()) {
        const value = msisdnValue(number)
        if (value < 0) {
          return Effect.fail(
            new InvalidField({ field: `numbers[${i}]`, message: "must be an E.164 number: an optional +, then 7 to 15 digits" })
          )
        }
        values.push(value)
      }
      // Sorted to drop repeats ("+49…" and "49…" are one number): one upsert statement may not touch a row twice.
      values.sort((a, b) => a - b)
      return Effect.succeed(values.filter((v, i) => i === 0 || values[i - 1] !== v))
    }

    /**
     * Upserts the numbers with `listed`, in one transaction that bumps the list's version when anything changed;
     * then applies the change here at once.
     */
    const edit = (listed: 0 | 1) =>
      Effect.fnUntraced(function*(list: string, numbers: ReadonlyArray<string>) {
        const entry = entries.get(list)
        if (entry === undefined) return yield* new UnknownBlacklist({ name: list })
        const values = yield* validate(numbers)
        if (values.length === 0) return { changed: 0 }
        return yield* entry.overlayLock.withPermit(Effect.gen(function*() {
          const written = yield* sql.withTransaction(Effect.gen(function*() {
            const now = yield* Clock.currentTimeMillis
            // The list's version row first: writers of one list take turns on it, so versions follow commit order.
            yield* sql`INSERT INTO blacklist_versions ${sql.insert({ list, version: 0, updated_at: now })}
              ON CONFLICT (list) DO UPDATE SET updated_at = excluded.updated_at`
            const changed: Array<number> = []
            for (let i = 0; i < values.length; i += WRITE_BATCH) {
              const [first, ...rest] = values.slice(i, i + WRITE_BATCH).map((v) => ({ list, number: String(v), listed, at: now }))
              if (first === undefined) break
              // Only rows whose state changes are written (and returned): re-adding a listed number is a no-op.
              const returned = yield* sql<{ readonly number: string }>`
                INSERT INTO blacklist_entries ${sql.insert([first, ...rest])}
                ON CONFLICT (list, number) DO UPDATE SET listed = excluded.listed, at = excluded.at
                WHERE blacklist_entries.listed <> excluded.listed
                RETURNING number`
              for (const row of returned) changed.push(Number(row.number))
            }
            if (changed.length === 0) return { changed, version: 0 }
            const bumped = yield* sql<{ readonly version: Int }>`
              UPDATE blacklist_versions SET version = version + 1 WHERE list = ${list} RETURNING version`
            return { changed, version: bumped[0] === undefined ? 0 : Number(bumped[0].version) }
          })).pipe(Effect.mapError(storeError))
          if (written.changed.length === 0) return { changed: 0 }
          // Applied at once, whatever this node had: if it had missed another node's edit (its version is not the
          // one just before), it keeps its version so the next poll reads the list's whole overlay again.
          const overlay = entry.overlay
          const [into, from] = listed === 1 ? [overlay.added, overlay.removed] : [overlay.removed, overlay.added]
          for (const value of written.changed) {
            into.add(value)
            from.delete(value)
          }
          if (overlay.version === written.version - 1) overlay.version = written.version
          yield* publishEntries(entry)
          return { changed: written.changed.length }
        }))
      })

    // ---- configuration and status ----

    const statusOf = (entry: Entry): BlacklistStatus => {
      const base = entry.base
      return {
        name: entry.name,
        object: entry.object,
        etag: base?.etag ?? null,
        baseEntries: base?.set.size ?? 0,
        added: entry.overlay.added.size,
        removed: entry.overlay.removed.size,
        loadedAt: base?.loadedAt ?? null,
        loadMs: base === undefined ? null : Math.round(base.loadMs * 1000) / 1000,
        invalidLines: base?.invalidLines ?? 0,
        lastError: entry.lastError,
        stale: entry.stale,
        duplicateLines: base?.duplicateLines ?? 0,
        sizeBytes: base?.bytes ?? null,
        checkedAt: entry.checkedAt,
        overlayVersion: entry.overlay.version
      }
    }

    const status = () => [...entries.values()].sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0).map(statusOf)

    const configure = Effect.fnUntraced(function*(lists: ReadonlyArray<BlacklistSource>) {
      const wanted = new Map(lists.map((l) => [l.name, l.object]))
      for (const [name, entry] of entries) {
        if (wanted.has(name)) continue
        entries.delete(name)
        yield* FiberMap.remove(loads, name)
        yield* entry.metrics.remove
        yield* Effect.logInfo("blacklist dropped").pipe(Effect.annotateLogs({ list: name }))
      }
      for (const [name, object] of wanted) {
        const existing = entries.get(name)
        if (existing === undefined) {
          const entry: Entry = {
            name,
            object,
            base: undefined,
            overlay: { added: new Set(), removed: new Set(), version: 0 },
            lastError: null,
            stale: false,
            checkedAt: null,
            refused: undefined,
            fileLock: Semaphore.makeUnsafe(1),
            overlayLock: Semaphore.makeUnsafe(1),
            metrics: blacklistMetrics(name)
          }
          entries.set(name, entry)
          yield* publishEntries(entry)
          // The overlay first (one small read): the API's edits apply while a large file is still loading.
          const initial = refreshOverlay(entry).pipe(
            Effect.catch((error) =>
              Effect.logWarning("blacklist overlay not read; the next poll retries").pipe(
                Effect.annotateLogs({ list: name, error: error.message })
              )
            ),
            Effect.andThen(check(entry))
          )
          yield* FiberMap.run(loads, name, initial)
        } else if (existing.object !== object) {
          // The numbers of the previous file stay in use until the new one has loaded (a list that no longer has a
          // file drops them at once).
          existing.object = object
          yield* FiberMap.run(loads, name, check(existing))
        }
      }
    })

    const reload = Effect.fnUntraced(function*(name?: string) {
      if (name === undefined) {
        yield* checkAll
        return status()
      }
      const entry = entries.get(name)
      if (entry === undefined) return yield* new UnknownBlacklist({ name })
      yield* check(entry)
      return [statusOf(entry)]
    })

    const has = (list: string, msisdn: string): boolean => {
      const entry = entries.get(list)
      if (entry === undefined) return false
      const value = msisdnValue(msisdn)
      if (value < 0) return false
      const overlay = entry.overlay
      if (overlay.added.has(value)) return true
      const base = entry.base
      return base !== undefined && base.set.hasValue(value) && !overlay.removed.has(value)
    }

    // Both polls live in the layer's scope: they stop when it closes. Failures are handled inside (status, metrics,
    // logs); a defect is logged and the next round runs anyway, so one bad round never ends the polling.
    const every = (intervalMs: number, what: string, round: Effect.Effect<void>) =>
      round.pipe(
        Effect.catchCause((cause) => Effect.logError(`${what} failed`, cause)),
        Effect.delay(Duration.millis(intervalMs)),
        Effect.forever,
        Effect.forkScoped
      )
    yield* every(options.pollIntervalMs, "blacklist file poll", checkAll)
    yield* every(options.overlayPollIntervalMs, "blacklist overlay poll", pollOverlays)

    const everyNumber: ReadonlyArray<readonly [number, number]> = [[1_000_000, 1_000_000_000_000_000]]

    const search = (list: string, digits: string, limit: number) =>
      Effect.suspend(() => {
        const entry = entries.get(list)
        if (entry === undefined) return Effect.fail(new UnknownBlacklist({ name: list }))
        const ranges = digits === "" ? everyNumber : prefixRanges(digits)
        const { added, removed } = entry.overlay
        const base = entry.base?.set
        const found = new Map<number, BlacklistEntry["source"]>()
        let seen = 0
        for (const value of added) {
          if (seen >= SEARCH_SCAN) break
          if (inRanges(value, ranges)) {
            found.set(value, "added")
            seen++
          }
        }
        seen = 0
        for (const value of removed) {
          if (seen >= SEARCH_SCAN) break
          if (base !== undefined && base.hasValue(value) && inRanges(value, ranges)) {
            found.set(value, "removed")
            seen++
          }
        }
        for (const value of base?.valuesIn(ranges, SEARCH_SCAN) ?? []) {
          if (!found.has(value)) found.set(value, "file")
        }
        const sorted = [...found.keys()].sort((a, b) => a - b)
        return Effect.succeed({
          entries: sorted.slice(0, limit).map((value): BlacklistEntry => ({ number: `+${value}`, source: found.get(value) ?? "file" })),
          more: sorted.length > limit
        })
      })

    return Blacklists.of({
      search,
      has,
      configure,
      reload,
      addEntries: edit(1),
      removeEntries: edit(0),
      status
    })
  })
