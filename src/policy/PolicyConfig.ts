/**
 * The live policy document of the whole deployment, versioned in SQL and shared by every process on the database.
 * Reads are synchronous (the hot path holds the current version in memory); `put` adds a version in one insert, and
 * the other processes poll the highest version number to reload, like the routing configuration.
 *
 * The configuration file's `policy:` seeds version 1 on an empty database; from then on the database is the truth.
 *
 * A stored version that does not decode (a corrupt row, or a stricter schema after an upgrade) never stops a process:
 * it applies the newest version that does, logs each unreadable one once, and reports them (`unreadable`) until a
 * newer good version is written. Nothing readable at all: the configuration file's policy applies (as version 0).
 */
import type { Stream } from "effect"
import { Context, Effect, Layer, Result, Schedule, Schema, Semaphore, SubscriptionRef } from "effect"
import { messageWithCauses } from "../domain/Errors.ts"
import { SqlClient } from "effect/sql"
import type { SqlError } from "effect/sql"
import { checkPolicy, emptyPolicy, PolicyDocument } from "../domain/Policy.ts"
import { fieldIssues } from "../domain/FieldIssues.ts"

export interface PolicyVersion {
  readonly version: number
  readonly document: PolicyDocument
  readonly createdAt: number
  readonly createdBy: string | null
  /** What the writer said the change is for (`note` of the PUT); null when none was given. */
  readonly note: string | null
}

/** A stored version as the history lists it: its document, or why it does not decode. */
export interface StoredPolicyVersion {
  readonly version: number
  readonly createdAt: number
  readonly createdBy: string | null
  readonly note: string | null
  readonly document: PolicyDocument | undefined
  /** Set when the stored document does not decode (see `unreadable`). */
  readonly error: string | undefined
}

/** Versions of one page of the history: at most this many. */
export const MAX_HISTORY_PAGE = 100

export class PolicyInvalid extends Schema.TaggedError<PolicyInvalid>()("PolicyInvalid", {
  /** Every bad field, as dotted paths of the document (`rules[2].max`). */
  errors: Schema.Array(Schema.Struct({ field: Schema.String, message: Schema.String }))
}) {}

/** The document changed since the version the writer read (`expectedVersion`). */
export class PolicyConflict extends Schema.TaggedError<PolicyConflict>()("PolicyConflict", {
  currentVersion: Schema.Number
}) {}

export class PolicyStoreFailure extends Schema.TaggedError<PolicyStoreFailure>()("PolicyStoreFailure", {
  message: Schema.String,
  /** The SqlError behind it, when there is one: what the database said, for the logs. */
  cause: Schema.optionalKey(Schema.Defect())
}) {}

/** A stored version newer than the one in use that could not be decoded. */
export interface UnreadablePolicyVersion {
  readonly version: number
  readonly error: string
}

export interface PutOptions {
  readonly expectedVersion?: number | undefined
  readonly actor: string | null
  /** Kept with the version: what the change is for. */
  readonly note?: string | undefined
}

export class PolicyConfig extends Context.Service<PolicyConfig, {
  /** The version this process applies now, without waiting. */
  readonly current: () => PolicyVersion
  /** Stored versions newer than `current()` that do not decode (skipped), newest first; empty when all is well. */
  readonly unreadable: () => ReadonlyArray<UnreadablePolicyVersion>
  /** The current version, then every newer one. */
  readonly changes: Stream.Stream<PolicyVersion>
  /**
   * Validates and stores a new version; live here at once and on other nodes within a poll interval. With
   * `expectedVersion` (the version in use, or the newest stored number when newer ones are unreadable) a concurrent
   * change is a PolicyConflict; without it a writer that loses the race for the next number retries on top of the
   * winner's version. Overlay entries of blacklists the change removes (or gives to another organisation, or adds
   * anew) are deleted with it, so a later list of that name starts empty.
   */
  readonly put: (
    document: unknown,
    options: PutOptions
  ) => Effect.Effect<PolicyVersion, PolicyInvalid | PolicyConflict | PolicyStoreFailure>
  /** Catches up with the database now (admin reads: read-your-writes on any node). */
  readonly refresh: Effect.Effect<PolicyVersion, PolicyStoreFailure>
  /** Stored versions newest first, below `before` (all when absent), at most `limit` (≤ MAX_HISTORY_PAGE). */
  readonly history: (
    page: { readonly before?: number | undefined; readonly limit: number }
  ) => Effect.Effect<ReadonlyArray<StoredPolicyVersion>, PolicyStoreFailure>
  /** One stored version; undefined when there is no such version. */
  readonly stored: (version: number) => Effect.Effect<StoredPolicyVersion | undefined, PolicyStoreFailure>
}>()("smsgw/policy/PolicyConfig") {
  static readonly layer = (options: { readonly seed: unknown; readonly pollIntervalMs: number }) =>
    Layer.effect(PolicyConfig, make(options))
}

const decodeDocument = Schema.decodeUnknownEffect(PolicyDocument)

/** Decodes and checks a document, naming every bad field. */
export const validatePolicy = (input: unknown): Effect.Effect<PolicyDocument, PolicyInvalid> =>
  decodeDocument(input, { errors: "all", onExcessProperty: "error" }).pipe(
    Effect.mapError((error) => new PolicyInvalid({ errors: fieldIssues(error.issue) })),
    Effect.flatMap((document) => {
      const problems = checkPolicy(document)
      return problems.length === 0 ? Effect.succeed(document) : Effect.fail(new PolicyInvalid({ errors: problems }))
    })
  )

const storedDocument = Schema.decodeUnknownEffect(Schema.fromJsonString(PolicyDocument))

type Int = number | string | bigint

interface VersionRow {
  readonly version: Int
  readonly document: string
  readonly created_at: Int
  readonly created_by: string | null
  readonly note: string | null
}

const storeFailure = (error: SqlError.SqlError) => new PolicyStoreFailure({ message: messageWithCauses(error), cause: error })

/** Rows read per step when looking for the newest version that decodes. */
const SCAN_PAGE = 16
/** Attempts of a put without expectedVersion that loses the race for the next version number to another writer. */
const PUT_ATTEMPTS = 5
/** Decode errors are reported, not stored whole: a huge document's error could be as large. */
const MAX_ERROR_LENGTH = 1_000

const errorText = (error: { readonly message: string }) =>
  error.message.length > MAX_ERROR_LENGTH ? `${error.message.slice(0, MAX_ERROR_LENGTH)}…` : error.message

/**
 * The blacklists whose overlay rows (`blacklist_entries`, `blacklist_versions`) must go with a change from
 * `previous` to `next`: the overlay is keyed by name, so a list that is removed, handed to another organisation, or
 * (re)created must not carry entries made for an earlier list of that name into the next one.
 */
export const droppedOverlays = (previous: PolicyDocument, next: PolicyDocument): ReadonlyArray<string> => {
  const owners = (document: PolicyDocument) => new Map((document.blacklists ?? []).map((l) => [l.name, l.org ?? null]))
  const before = owners(previous)
  const after = owners(next)
  return [...new Set([...before.keys(), ...after.keys()])].filter((name) =>
    !(before.has(name) && after.has(name) && before.get(name) === after.get(name))
  ).sort()
}

const make = (options: { readonly seed: unknown; readonly pollIntervalMs: number }) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient

    const latestVersion = Effect.map(
      sql<{ readonly version: Int | null }>`SELECT MAX(version) AS version FROM policy_versions`,
      (rows) => Number(rows[0]?.version ?? 0)
    )

    /**
     * From `top` down to (not including) `floor`, newest first: the first version that decodes, and the versions
     * above it that do not. Reads a page at a time: normally one row.
     */
    const scan = (top: number, floor: number) =>
      Effect.gen(function*() {
        const skipped: Array<UnreadablePolicyVersion> = []
        let below = top + 1
        for (;;) {
          const rows = yield* sql<VersionRow>`SELECT version, document, created_at, created_by, note FROM policy_versions
            WHERE version < ${below} AND version > ${floor} ORDER BY version DESC LIMIT ${SCAN_PAGE}`
          for (const row of rows) {
            const decoded = yield* Effect.result(storedDocument(row.document))
            if (Result.isSuccess(decoded)) {
              const found: PolicyVersion = {
                version: Number(row.version),
                document: decoded.success,
                createdAt: Number(row.created_at),
                createdBy: row.created_by,
                note: row.note
              }
              return { found, skipped }
            }
            skipped.push({ version: Number(row.version), error: errorText(decoded.failure) })
          }
          const last = rows.at(-1)
          if (rows.length < SCAN_PAGE || last === undefined) return { found: undefined, skipped }
          below = Number(last.version)
        }
      })

    const insert = (version: number, document: PolicyDocument, actor: string | null, now: number, note: string | null) =>
      sql`INSERT INTO policy_versions ${
        sql.insert({ version, document: JSON.stringify(document), created_at: now, created_by: actor, note })
      } ON CONFLICT (version) DO NOTHING RETURNING version`

    /** Each unreadable version is logged once, by the scan that first finds it (versions are scanned once). */
    const reportUnreadable = (skipped: ReadonlyArray<UnreadablePolicyVersion>, inUse: number) =>
      Effect.forEach(skipped, (u) =>
        Effect.logError("stored policy version does not decode: skipped, an older version stays in use").pipe(
          Effect.annotateLogs({ version: u.version, inUse, error: u.error })
        ), { discard: true })

    // The first process on an empty database seeds version 1 from the file; a bad file is a start-up error.
    const seedDocument = yield* validatePolicy(options.seed ?? emptyPolicy).pipe(
      Effect.mapError((e) => new PolicyInvalid({ errors: e.errors.map((x) => ({ field: `policy.${x.field}`, message: x.message })) })),
      Effect.orDie
    )
    if ((yield* latestVersion.pipe(Effect.orDie)) === 0) {
      yield* insert(1, seedDocument, "config", Date.now(), "the configuration file's policy").pipe(Effect.orDie)
    }

    /** The highest version number examined: versions up to it are in use, older, or in `unreadable`. */
    let seen = yield* latestVersion.pipe(Effect.orDie)
    const initial = yield* scan(seen, 0).pipe(Effect.orDie)
    const fallback: PolicyVersion = { version: 0, document: seedDocument, createdAt: 0, createdBy: "config", note: null }
    let latest = initial.found ?? fallback
    let unreadable: ReadonlyArray<UnreadablePolicyVersion> = initial.skipped
    yield* reportUnreadable(initial.skipped, latest.version)
    if (initial.found === undefined && seen > 0) {
      yield* Effect.logError("no stored policy version decodes: applying the configuration file's policy until one is written")
    }
    const ref = yield* SubscriptionRef.make(latest)

    /** Refreshes and writes take turns: a version is scanned (and an unreadable one logged) once. */
    const lock = Semaphore.makeUnsafe(1)

    const publish = (version: PolicyVersion) =>
      Effect.suspend(() => {
        if (version.version <= latest.version) return Effect.void
        latest = version
        // Unreadable versions older than a good one in use are no longer a problem: they are history.
        unreadable = unreadable.filter((u) => u.version > version.version)
        return SubscriptionRef.set(ref, version)
      })

    const refreshUnlocked = Effect.gen(function*() {
      const top = yield* latestVersion
      if (top <= seen) return
      const { found, skipped } = yield* scan(top, seen)
      if (found !== undefined) yield* publish(found)
      unreadable = [...skipped, ...unreadable].filter((u) => u.version > latest.version)
      seen = top
      yield* reportUnreadable(skipped, latest.version)
    }).pipe(Effect.mapError(storeFailure))

    const refresh = lock.withPermit(Effect.map(refreshUnlocked, () => latest))

    yield* refresh.pipe(
      Effect.catchCause((cause) => Effect.logWarning("policy reload failed").pipe(Effect.annotateLogs({ cause: String(cause) }))),
      Effect.repeat(Schedule.spaced(options.pollIntervalMs)),
      Effect.forkScoped
    )

    /** One attempt at the next version number; undefined when another writer took it first. */
    const attempt = (document: PolicyDocument, opts: PutOptions) =>
      lock.withPermit(Effect.gen(function*() {
        yield* refreshUnlocked
        const current = seen
        // The version in use, or the newest number when only unreadable versions lie above it: both are "now".
        if (opts.expectedVersion !== undefined && opts.expectedVersion !== current && opts.expectedVersion !== latest.version) {
          return yield* new PolicyConflict({ currentVersion: latest.version })
        }
        const previous = latest.document
        const dropped = droppedOverlays(previous, document)
        const next = current + 1
        const now = Date.now()
        const won = yield* sql.withTransaction(Effect.gen(function*() {
          // Two writers racing for the same number: the primary key lets one win (the other's transaction changes
          // nothing and it tries again, or is told to re-read).
          if ((yield* insert(next, document, opts.actor, now, opts.note ?? null)).length === 0) return false
          if (dropped.length > 0) {
            // The version row first, as an edit of the list takes it (same lock order), then the entries. The bump
            // makes nodes still holding the list read its (now empty) overlay again; a list created later under the
            // name starts from this version with no entries.
            yield* sql`UPDATE blacklist_versions SET version = version + 1, updated_at = ${now} WHERE ${sql.in("list", dropped)}`
            yield* sql`DELETE FROM blacklist_entries WHERE ${sql.in("list", dropped)}`
          }
          return true
        })).pipe(Effect.mapError(storeFailure))
        if (!won) return undefined
        seen = Math.max(seen, next)
        const version: PolicyVersion = { version: next, document, createdAt: now, createdBy: opts.actor, note: opts.note ?? null }
        yield* publish(version)
        if (dropped.length > 0) {
          yield* Effect.logInfo("blacklist overlay entries dropped with their list definition").pipe(
            Effect.annotateLogs({ version: next, lists: dropped.join(",") })
          )
        }
        return version
      }))

    const put = Effect.fnUntraced(function*(input: unknown, opts: PutOptions) {
      const document = yield* validatePolicy(input)
      for (let i = 1;; i++) {
        const version = yield* attempt(document, opts)
        if (version !== undefined) {
          yield* Effect.logInfo("policy changed").pipe(
            Effect.annotateLogs({ version: version.version, rules: document.rules.length, attempts: i })
          )
          return version
        }
        // With expectedVersion the writer asked for "on top of what I read": someone else's change is a conflict,
        // answered with the version that won (read now: this process has not seen it yet).
        if (opts.expectedVersion !== undefined || i >= PUT_ATTEMPTS) {
          yield* refresh
          return yield* new PolicyConflict({ currentVersion: latest.version })
        }
      }
    })

    const storedOf = (row: VersionRow) =>
      Effect.map(Effect.result(storedDocument(row.document)), (decoded): StoredPolicyVersion => ({
        version: Number(row.version),
        createdAt: Number(row.created_at),
        createdBy: row.created_by,
        note: row.note,
        document: Result.isSuccess(decoded) ? decoded.success : undefined,
        error: Result.isFailure(decoded) ? errorText(decoded.failure) : undefined
      }))

    const history = (page: { readonly before?: number | undefined; readonly limit: number }) => {
      const limit = Math.max(1, Math.min(MAX_HISTORY_PAGE, page.limit))
      const below = page.before ?? Number.MAX_SAFE_INTEGER
      return sql<VersionRow>`SELECT version, document, created_at, created_by, note FROM policy_versions
        WHERE version < ${below} ORDER BY version DESC LIMIT ${limit}`.pipe(
        Effect.mapError(storeFailure),
        Effect.flatMap((rows) => Effect.forEach(rows, storedOf))
      )
    }

    const stored = (version: number) =>
      sql<VersionRow>`SELECT version, document, created_at, created_by, note FROM policy_versions
        WHERE version = ${version}`.pipe(
        Effect.mapError(storeFailure),
        Effect.flatMap((rows) => rows[0] === undefined ? Effect.succeed(undefined) : storedOf(rows[0]))
      )

    return PolicyConfig.of({
      current: () => latest,
      unreadable: () => unreadable,
      changes: SubscriptionRef.changes(ref),
      put,
      refresh,
      history,
      stored
    })
  })
