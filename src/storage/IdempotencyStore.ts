/**
 * Idempotency keys in the shared store (SQLite embedded, PostgreSQL in the cluster), so a key holds across restarts
 * and nodes: claimed with the message id chosen for the request under a lease its request extends while it runs,
 * completed with the first answer, released when a retry should run it again, or lapsed (left for a retry to take
 * over) when the request cannot tell whether its message was stored. Only the claim's holder (its token) can change
 * it. What an answer means is the pipeline's business (an opaque text).
 */
import { Context, Effect, Layer, Schedule } from "effect"
import { SqlClient } from "effect/sql"
import type { SqlError, Statement } from "effect/sql"
import { messageWithCauses, StoreUnavailable } from "../domain/Errors.ts"

/** One app's key: the organisation and app scope it, so two apps may use the same key. */
export interface KeyRef {
  readonly orgId: string
  readonly appId: string
  readonly key: string
}

export interface ClaimRequest extends KeyRef {
  /** A digest of the request: the same key with another request is refused. */
  readonly fingerprint: string
  /** The id the message gets if this request is the key's first. */
  readonly messageId: string
}

/** A key this request holds: its token proves it to complete, release, lapse or extend the claim. */
export interface HeldKey extends KeyRef {
  readonly token: string
}

/** What a claim found. */
export type Claim =
  /** The key is this request's: go on under `messageId`. */
  | { readonly _tag: "Claimed"; readonly messageId: string; readonly token: string }
  /**
   * The key's first request stopped extending its lease (its node died, or it could not tell whether its message
   * was stored): this request takes it over under the first one's message id, which the store may already hold.
   */
  | { readonly _tag: "TakenOver"; readonly messageId: string; readonly token: string }
  /** The key's first request has answered: this is its answer. */
  | { readonly _tag: "Answered"; readonly answer: string }
  /** The key's first request is still running. */
  | { readonly _tag: "InFlight" }
  /** The key was used for a different request. */
  | { readonly _tag: "Mismatch" }

export interface IdempotencySettings {
  /** How long a key is remembered from its first use. */
  readonly ttlMs: number
  /** How long a claim holds a key unless extended: a request extends it every third of this while it runs. */
  readonly leaseMs: number
}

export const idempotencyDefaults: IdempotencySettings = { ttlMs: 24 * 3_600_000, leaseMs: 30_000 }

export class IdempotencyStore extends Context.Service<IdempotencyStore, {
  /** Claims each key in one statement when all are new (the usual case); answers one claim per request, in order. */
  readonly claim: (requests: ReadonlyArray<ClaimRequest>, now: number) => Effect.Effect<ReadonlyArray<Claim>, StoreUnavailable>
  /** Records the first answer of each key: later requests with it get this answer. */
  readonly complete: (answers: ReadonlyArray<HeldKey & { readonly answer: string }>) => Effect.Effect<void, StoreUnavailable>
  /** Forgets keys whose request refused its message without storing it (a retry runs anew); answered keys stay. */
  readonly release: (keys: ReadonlyArray<HeldKey>) => Effect.Effect<void, StoreUnavailable>
  /** Ends the lease of keys whose request failed not knowing whether its message was stored: the next retry takes over. */
  readonly lapse: (keys: ReadonlyArray<HeldKey>) => Effect.Effect<void, StoreUnavailable>
  /** How long a claim holds unless extended: a running request extends its keys every third of it. */
  readonly leaseMs: number
  /** Extends the lease of keys whose request still runs, from `now`. */
  readonly extend: (keys: ReadonlyArray<HeldKey>, now: number) => Effect.Effect<void, StoreUnavailable>
  /** Deletes up to `limit` keys first used before `before`; answers how many went. */
  readonly purge: (before: number, limit: number) => Effect.Effect<number, StoreUnavailable>
}>()("smsgw/storage/IdempotencyStore") {
  static readonly layer = (settings: IdempotencySettings = idempotencyDefaults) =>
    Layer.effect(IdempotencyStore, Effect.suspend(() => make(settings)))
}

interface KeyRow {
  readonly idem_key: string
  readonly app_id: string
  readonly fingerprint: string
  readonly message_id: string
  readonly answer: string | null
  readonly locked_until: number | string
  readonly created_at: number | string
}

const storeError = (error: SqlError.SqlError) => new StoreUnavailable({ message: messageWithCauses(error), cause: error })

/** At most this many keys per INSERT (7 parameters each; PostgreSQL takes 65,535 per statement). */
const claimChunk = 500

/** Expired keys deleted per statement. */
const purgeBatch = 1000

const make = (settings: IdempotencySettings) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient

    /** A key someone else holds: answered, in flight, expired (taken afresh) or abandoned (taken over). */
    const resolveTaken = (request: ClaimRequest, now: number) =>
      Effect.gen(function*() {
        const rows = yield* sql<KeyRow>`SELECT idem_key, app_id, fingerprint, message_id, answer, locked_until, created_at
          FROM idempotency_keys WHERE org_id = ${request.orgId} AND app_id = ${request.appId} AND idem_key = ${request.key}`
        const row = rows[0]
        const token = crypto.randomUUID()
        if (row === undefined) {
          // Purged or released between the insert and this read: try once more from the start.
          const again = yield* sql<{ readonly message_id: string }>`INSERT INTO idempotency_keys
            (org_id, app_id, idem_key, fingerprint, message_id, answer, claim_token, locked_until, created_at)
            VALUES (${request.orgId}, ${request.appId}, ${request.key}, ${request.fingerprint}, ${request.messageId}, NULL,
              ${token}, ${now + settings.leaseMs}, ${now})
            ON CONFLICT (org_id, app_id, idem_key) DO NOTHING RETURNING message_id`
          return again.length > 0 ? { _tag: "Claimed", messageId: request.messageId, token } satisfies Claim : { _tag: "InFlight" } satisfies Claim
        }
        const createdAt = Number(row.created_at)
        if (createdAt <= now - settings.ttlMs) {
          // Expired: the key starts a new life with this request (only one of two racing requests wins the update).
          const renewed = yield* sql<{ readonly message_id: string }>`UPDATE idempotency_keys
            SET fingerprint = ${request.fingerprint}, message_id = ${request.messageId}, answer = NULL,
              claim_token = ${token}, locked_until = ${now + settings.leaseMs}, created_at = ${now}
            WHERE org_id = ${request.orgId} AND app_id = ${request.appId} AND idem_key = ${request.key}
              AND created_at = ${createdAt} RETURNING message_id`
          return renewed.length > 0 ? { _tag: "Claimed", messageId: request.messageId, token } satisfies Claim : { _tag: "InFlight" } satisfies Claim
        }
        if (row.fingerprint !== request.fingerprint) return { _tag: "Mismatch" } satisfies Claim
        if (row.answer !== null) return { _tag: "Answered", answer: row.answer } satisfies Claim
        const lockedUntil = Number(row.locked_until)
        if (lockedUntil > now) return { _tag: "InFlight" } satisfies Claim
        const taken = yield* sql<{ readonly message_id: string }>`UPDATE idempotency_keys
          SET locked_until = ${now + settings.leaseMs}, claim_token = ${token}
          WHERE org_id = ${request.orgId} AND app_id = ${request.appId} AND idem_key = ${request.key}
            AND locked_until = ${lockedUntil} AND answer IS NULL RETURNING message_id`
        return taken.length > 0 ? { _tag: "TakenOver", messageId: row.message_id, token } satisfies Claim : { _tag: "InFlight" } satisfies Claim
      })

    const claimChunkOf = (requests: ReadonlyArray<ClaimRequest>, now: number) =>
      Effect.gen(function*() {
        // A type, not an interface: sql.insert takes records; `requests` is never empty here.
        const tokens = requests.map(() => crypto.randomUUID())
        const rows = requests.map((r, i): Record<string, unknown> => ({
          org_id: r.orgId,
          app_id: r.appId,
          idem_key: r.key,
          fingerprint: r.fingerprint,
          message_id: r.messageId,
          answer: null,
          claim_token: tokens[i],
          locked_until: now + settings.leaseMs,
          created_at: now
        }))
        const inserted = yield* sql<{ readonly app_id: string; readonly idem_key: string; readonly message_id: string }>`
          INSERT INTO idempotency_keys ${sql.insert(rows as [Record<string, unknown>, ...Array<Record<string, unknown>>])}
          ON CONFLICT (org_id, app_id, idem_key) DO NOTHING RETURNING app_id, idem_key, message_id`
        const mine = new Map(inserted.map((row) => [`${row.app_id}\u0000${row.idem_key}`, row.message_id]))
        const claims: Array<Claim> = []
        for (const [i, request] of requests.entries()) {
          const id = `${request.appId}\u0000${request.key}`
          const messageId = mine.get(id)
          const token = tokens[i]
          if (messageId !== undefined && messageId === request.messageId && token !== undefined) {
            // A key twice in one call: the first occurrence holds it, the second finds it in flight.
            mine.delete(id)
            claims.push({ _tag: "Claimed", messageId, token })
          } else {
            claims.push(yield* resolveTaken(request, now))
          }
        }
        return claims
      })

    const claim = (requests: ReadonlyArray<ClaimRequest>, now: number) =>
      Effect.gen(function*() {
        const claims: Array<Claim> = []
        for (let i = 0; i < requests.length; i += claimChunk) {
          claims.push(...yield* claimChunkOf(requests.slice(i, i + claimChunk), now))
        }
        return claims
      }).pipe(Effect.mapError(storeError))

    /** One statement per held key, all in one transaction, each only while the claim is still that request's. */
    const onHeld = <K extends HeldKey>(keys: ReadonlyArray<K>, statement: (key: K) => Statement.Statement<unknown>) =>
      keys.length === 0 ? Effect.void : sql.withTransaction(Effect.forEach(keys, statement, { discard: true })).pipe(
        Effect.mapError(storeError)
      )

    const complete = (answers: ReadonlyArray<HeldKey & { readonly answer: string }>) =>
      onHeld(answers, (a) =>
        sql`UPDATE idempotency_keys SET answer = ${a.answer}, locked_until = 0
          WHERE org_id = ${a.orgId} AND app_id = ${a.appId} AND idem_key = ${a.key} AND claim_token = ${a.token}
            AND answer IS NULL`)

    const release = (keys: ReadonlyArray<HeldKey>) =>
      onHeld(keys, (k) =>
        sql`DELETE FROM idempotency_keys
          WHERE org_id = ${k.orgId} AND app_id = ${k.appId} AND idem_key = ${k.key} AND claim_token = ${k.token}
            AND answer IS NULL`)

    const lapse = (keys: ReadonlyArray<HeldKey>) =>
      onHeld(keys, (k) =>
        sql`UPDATE idempotency_keys SET locked_until = 0
          WHERE org_id = ${k.orgId} AND app_id = ${k.appId} AND idem_key = ${k.key} AND claim_token = ${k.token}
            AND answer IS NULL`)

    const extend = (keys: ReadonlyArray<HeldKey>, now: number) =>
      onHeld(keys, (k) =>
        sql`UPDATE idempotency_keys SET locked_until = ${now + settings.leaseMs}
          WHERE org_id = ${k.orgId} AND app_id = ${k.appId} AND idem_key = ${k.key} AND claim_token = ${k.token}
            AND answer IS NULL`)

    const purge = (before: number, limit: number) =>
      sql<{ readonly idem_key: string }>`DELETE FROM idempotency_keys WHERE (org_id, app_id, idem_key) IN (
          SELECT org_id, app_id, idem_key FROM idempotency_keys WHERE created_at < ${before} LIMIT ${limit}
        ) RETURNING idem_key`.pipe(
        Effect.map((rows) => rows.length),
        Effect.mapError(storeError)
      )

    // Keys past their time go in bounded batches every few minutes, on every node (the deletes are idempotent).
    yield* Effect.suspend(() => purge(Date.now() - settings.ttlMs, purgeBatch)).pipe(
      Effect.repeat({ until: (deleted) => deleted < purgeBatch }),
      Effect.catch((e) => Effect.logWarning("idempotency keys not purged").pipe(Effect.annotateLogs({ error: e.message }))),
      Effect.repeat(Schedule.spaced("5 minutes")),
      Effect.forkScoped
    )

    return IdempotencyStore.of({ claim, complete, release, lapse, leaseMs: settings.leaseMs, extend, purge })
  })
