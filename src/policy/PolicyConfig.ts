/**
 * The live policy document of the whole deployment, versioned in SQL and shared by every process on the database.
 * Reads are synchronous (the hot path holds the current version in memory); `put` adds a version in one insert, and
 * the other processes poll the highest version number to reload, like the routing configuration.
 *
 * The configuration file's `policy:` seeds version 1 on an empty database; from then on the database is the truth.
 */
import type { Stream} from "effect";
import { Context, Effect, Layer, Schedule, Schema, SchemaIssue, SubscriptionRef } from "effect"
import { SqlClient, SqlError } from "effect/sql"
import { checkPolicy, emptyPolicy, PolicyDocument } from "../domain/Policy.ts"

export interface PolicyVersion {
  readonly version: number
  readonly document: PolicyDocument
  readonly createdAt: number
  readonly createdBy: string | null
}

export class PolicyInvalid extends Schema.TaggedError<PolicyInvalid>()("PolicyInvalid", {
  /** Every bad field, as dotted paths of the document (`rules[2].max`). */
  errors: Schema.Array(Schema.Struct({ field: Schema.String, message: Schema.String }))
}) {}

/** The document changed since the version the writer read (`expectedVersion`). */
export class PolicyConflict extends Schema.TaggedError<PolicyConflict>()("PolicyConflict", {
  currentVersion: Schema.Number
}) {}

export class PolicyStoreFailure extends Schema.TaggedError<PolicyStoreFailure>()("PolicyStoreFailure", {
  message: Schema.String
}) {}

export class PolicyConfig extends Context.Service<PolicyConfig, {
  /** The version this process applies now, without waiting. */
  readonly current: () => PolicyVersion
  /** The current version, then every newer one. */
  readonly changes: Stream.Stream<PolicyVersion>
  /** Validates and stores a new version; live here at once and on other nodes within a poll interval. */
  readonly put: (
    document: unknown,
    options: { readonly expectedVersion?: number | undefined; readonly actor: string | null }
  ) => Effect.Effect<PolicyVersion, PolicyInvalid | PolicyConflict | PolicyStoreFailure>
  /** Catches up with the database now (admin reads: read-your-writes on any node). */
  readonly refresh: Effect.Effect<PolicyVersion, PolicyStoreFailure>
}>()("smsgw/policy/PolicyConfig") {
  static readonly layer = (options: { readonly seed: unknown; readonly pollIntervalMs: number }) =>
    Layer.effect(PolicyConfig, make(options))
}

const formatter = SchemaIssue.makeFormatterStandardSchemaV1()

const pathOf = (path: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined) =>
  (path ?? []).reduce<string>((acc, seg) => {
    const key = typeof seg === "object" && seg !== null ? seg.key : seg
    return typeof key === "number" ? `${acc}[${key}]` : acc === "" ? String(key) : `${acc}.${String(key)}`
  }, "")

const decodeDocument = Schema.decodeUnknownEffect(PolicyDocument)

/** Decodes and checks a document, naming every bad field. */
export const validatePolicy = (input: unknown): Effect.Effect<PolicyDocument, PolicyInvalid> =>
  decodeDocument(input, { errors: "all", onExcessProperty: "error" }).pipe(
    Effect.mapError((error) =>
      new PolicyInvalid({
        errors: formatter(error.issue).issues.map((i) => ({ field: pathOf(i.path) || "(root)", message: i.message }))
      })
    ),
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
}

const storeFailure = (error: SqlError.SqlError) => new PolicyStoreFailure({ message: error.message })

const make = (options: { readonly seed: unknown; readonly pollIntervalMs: number }) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient

    const latestVersion = Effect.map(
      sql<{ readonly version: Int | null }>`SELECT MAX(version) AS version FROM policy_versions`,
      (rows) => Number(rows[0]?.version ?? 0)
    )

    const load = Effect.gen(function*() {
      const rows = yield* sql<VersionRow>`SELECT version, document, created_at, created_by FROM policy_versions
        ORDER BY version DESC LIMIT 1`
      const row = rows[0]
      if (row === undefined) return { version: 0, document: emptyPolicy, createdAt: 0, createdBy: null } satisfies PolicyVersion
      const document = yield* storedDocument(row.document).pipe(
        Effect.mapError((e) => new PolicyStoreFailure({ message: `stored policy version ${row.version} is invalid: ${e.message}` }))
      )
      const loaded: PolicyVersion = {
        version: Number(row.version),
        document,
        createdAt: Number(row.created_at),
        createdBy: row.created_by
      }
      return loaded
    }).pipe(Effect.mapError((e) => SqlError.isSqlError(e) ? storeFailure(e) : e))

    const insert = (version: number, document: PolicyDocument, actor: string | null, now: number) =>
      sql`INSERT INTO policy_versions ${
        sql.insert({ version, document: JSON.stringify(document), created_at: now, created_by: actor })
      } ON CONFLICT (version) DO NOTHING RETURNING version`

    // The first process on an empty database seeds version 1 from the file; a bad file is a start-up error.
    const seedDocument = yield* validatePolicy(options.seed ?? emptyPolicy).pipe(
      Effect.mapError((e) => new PolicyInvalid({ errors: e.errors.map((x) => ({ field: `policy.${x.field}`, message: x.message })) })),
      Effect.orDie
    )
    if ((yield* latestVersion.pipe(Effect.orDie)) === 0) {
      yield* insert(1, seedDocument, "config", Date.now()).pipe(Effect.orDie)
    }

    const ref = yield* SubscriptionRef.make(yield* load.pipe(Effect.orDie))
    let latest = yield* SubscriptionRef.get(ref)

    const publish = (version: PolicyVersion) =>
      Effect.suspend(() => {
        if (version.version <= latest.version) return Effect.void
        latest = version
        return SubscriptionRef.set(ref, version)
      })

    const refresh = Effect.gen(function*() {
      const version = yield* latestVersion.pipe(Effect.mapError(storeFailure))
      if (version > latest.version) yield* publish(yield* load)
      return latest
    })

    yield* refresh.pipe(
      Effect.catchCause((cause) => Effect.logWarning("policy reload failed").pipe(Effect.annotateLogs({ cause: String(cause) }))),
      Effect.repeat(Schedule.spaced(options.pollIntervalMs)),
      Effect.forkScoped
    )

    const put = Effect.fnUntraced(function*(
      input: unknown,
      opts: { readonly expectedVersion?: number | undefined; readonly actor: string | null }
    ) {
      const document = yield* validatePolicy(input)
      const current = yield* latestVersion.pipe(Effect.mapError(storeFailure))
      if (opts.expectedVersion !== undefined && opts.expectedVersion !== current) {
        return yield* new PolicyConflict({ currentVersion: current })
      }
      const now = Date.now()
      // Two writers racing for the same number: the primary key lets one win; the other is told to re-read.
      const inserted = yield* insert(current + 1, document, opts.actor, now).pipe(Effect.mapError(storeFailure))
      if (inserted.length === 0) return yield* new PolicyConflict({ currentVersion: current + 1 })
      const version: PolicyVersion = { version: current + 1, document, createdAt: now, createdBy: opts.actor }
      yield* publish(version)
      yield* Effect.logInfo("policy changed").pipe(Effect.annotateLogs({ version: version.version, rules: document.rules.length }))
      return version
    })

    return PolicyConfig.of({
      current: () => latest,
      changes: SubscriptionRef.changes(ref),
      put,
      refresh
    })
  })
