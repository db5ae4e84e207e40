/**
 * The status callbacks' deliverer: drains the outbox (storage/CallbackStore.ts) by POSTing each row's exact body,
 * signed with its app's secrets, to its URL (pipeline/CallbackPost.ts guards where that may be).
 *
 * - One deliverer per cluster (a singleton; embedded, a fiber of the process). Every `pollIntervalMs` it claims what
 *   is due, as many rows as it has room for: at most `maxConcurrency` in hand, at most `concurrencyPerApp` posting to
 *   one app at once (an app at its limit gets no new rows, so a slow receiver holds only its own share).
 * - In order per message: the store hands out only a message's oldest pending row, so a later move is posted once the
 *   earlier one is delivered (or dead).
 * - 2xx: delivered (the row goes). Anything else — another status (a 3xx too: redirects are never followed), a timeout,
 *   a refused address, a network error — is retried after an exponential backoff with full jitter, until
 *   `maxAgeMs` after the row was queued; then it is dead, kept for the API to list and replay.
 * - At least once: a row is leased while in hand; a deliverer that stops gives its leases back, one that dies leaves
 *   them to run out. Receivers drop repeats by the `Smsgw-Event-Id` header.
 */
import { Cause, Effect, FiberSet, Layer, Schedule, Schema, Semaphore } from "effect"
import { Singleton } from "effect/cluster"
import { signatureHeader } from "../domain/Callback.ts"
import { messageWithCauses } from "../domain/Errors.ts"
import type { StoreUnavailable } from "../domain/Errors.ts"
import { CallbackMetrics } from "../observability/Metrics.ts"
import { untracedStack } from "../observability/Tracing.ts"
import type { CallbackFailureReason } from "../observability/Metrics.ts"
import { CallbackStore } from "../storage/CallbackStore.ts"
import type { DueCallback } from "../storage/CallbackStore.ts"
import { makePoster, statusReason } from "./CallbackPost.ts"

export interface Backoff {
  /** The first retry's ceiling; each failure doubles it. */
  readonly initialMs: number
  /** The most a retry waits. */
  readonly maxMs: number
}

export interface CallbacksOptions {
  /** The product's version, for the user-agent (`smsgw-callbacks/<version>`). */
  readonly version: string
  /** Resolving, connecting and the whole answer of one POST. */
  readonly timeoutMs: number
  readonly concurrencyPerApp: number
  readonly maxConcurrency: number
  /** How long after it was queued a callback is retried before it is dead. */
  readonly maxAgeMs: number
  readonly backoff: Backoff
  readonly pollIntervalMs: number
  /** Most rows one claim takes. */
  readonly batchSize: number
  readonly allowPrivateNetworks: boolean
  /** How often the backlog gauges are read from the store (default: 20 polls, at most 5 s). */
  readonly backlogIntervalMs?: number
}

/** What follows a failed attempt: another at `nextAt`, or none (dead). */
export type AfterFailure =
  | { readonly _tag: "Retry"; readonly attempts: number; readonly nextAt: number }
  | { readonly _tag: "Dead"; readonly attempts: number }

/**
 * Full jitter: the wait before retry n (n = attempts so far, from 1) is uniform in [0, min(maxMs, initialMs·2^(n-1))).
 * Never past the retry window's end, so the last attempt is made at it; a failure at or after the end is the last.
 */
export const afterFailure = (
  row: { readonly attempts: number; readonly createdAt: number },
  now: number,
  options: { readonly backoff: Backoff; readonly maxAgeMs: number },
  random: number
): AfterFailure => {
  const attempts = row.attempts + 1
  const deadline = row.createdAt + options.maxAgeMs
  if (now >= deadline) return { _tag: "Dead", attempts }
  const ceiling = Math.min(options.backoff.maxMs, options.backoff.initialMs * 2 ** Math.min(attempts - 1, 40))
  return { _tag: "Retry", attempts, nextAt: Math.min(deadline, now + Math.floor(random * ceiling)) }
}

/**
 * How long a claim holds a row: long enough for it to wait its turn behind its app's posts (an app gets no new rows at
 * its limit, so at most one round of them) and make its own; a deliverer killed mid-way delays its rows this long.
 */
export const leaseMs = (timeoutMs: number) => 3 * timeoutMs + 5_000

const EventId = Schema.fromJsonString(Schema.Struct({ eventId: Schema.String }))
const decodeEventId = Schema.decodeUnknownOption(EventId)

/** The body's own event id (what receivers dedup on); the row's id if a body ever lacks one. */
const eventIdOf = (row: DueCallback) => {
  const decoded = decodeEventId(row.body)
  return decoded._tag === "Some" ? decoded.value.eventId : `cb_${row.id}`
}

interface Outcome {
  readonly reason: CallbackFailureReason
  readonly error: string
  readonly status: number | null
}

/**
 * The deliverer's loop, until interrupted. A store that fails is logged and tried again next interval: rows in hand
 * stay leased and come back when their lease runs out.
 */
export const deliver = (options: CallbacksOptions) =>
  Effect.gen(function*() {
    const store = yield* CallbackStore
    const metrics = yield* CallbackMetrics
    const post = yield* makePoster({ timeoutMs: options.timeoutMs, allowPrivateNetworks: options.allowPrivateNetworks })
    const userAgent = `smsgw-callbacks/${options.version}`
    const lease = leaseMs(options.timeoutMs)

    /** Rows claimed and not settled yet. */
    const held = new Set<number>()
    /** Each app with rows in hand: how many, and its posting limit. */
    const apps = new Map<string, { count: number; readonly permits: Semaphore.Semaphore }>()
    /** Delivered rows not yet deleted: deleted together at the next claim, before it (so the next move is due). */
    let delivered: Array<number> = []

    const hold = (row: DueCallback) => {
      held.add(row.id)
      const app = apps.get(row.appId)
      if (app !== undefined) app.count++
      else apps.set(row.appId, { count: 1, permits: Semaphore.makeUnsafe(options.concurrencyPerApp) })
    }
    const letGo = (row: DueCallback) => {
      held.delete(row.id)
      const app = apps.get(row.appId)
      if (app !== undefined && --app.count === 0) apps.delete(row.appId)
    }

    const flushDelivered = Effect.suspend(() => {
      if (delivered.length === 0) return Effect.void
      const ids = delivered
      delivered = []
      return store.delivered(ids).pipe(Effect.tapError(() => Effect.sync(() => delivered.push(...ids))))
    })

    const logged = (row: DueCallback) =>
      Effect.annotateLogs({ callbackId: row.id, messageId: row.messageId ?? row.inboundId, appId: row.appId })

    const settleFailure = (row: DueCallback, outcome: Outcome) =>
      Effect.gen(function*() {
        const now = Date.now()
        metrics.failed(outcome.reason)
        const next = afterFailure(row, now, options, Math.random())
        if (next._tag === "Dead") {
          yield* store.dead(row.id, { attempts: next.attempts, at: now, error: outcome.error, status: outcome.status })
          metrics.dead()
          yield* Effect.logWarning("status callback dead: its retry window is over").pipe(
            Effect.annotateLogs({ attempts: next.attempts, reason: outcome.reason, error: outcome.error }),
            logged(row)
          )
          return
        }
        yield* store.failed(row.id, { attempts: next.attempts, nextAt: next.nextAt, error: outcome.error, status: outcome.status })
        yield* Effect.logDebug("status callback failed; retried later").pipe(
          Effect.annotateLogs({
            attempts: next.attempts,
            reason: outcome.reason,
            error: outcome.error,
            retryInMs: next.nextAt - now,
            ...(outcome.status !== null ? { status: outcome.status } : {})
          }),
          logged(row)
        )
      })

    /** One row: posted (unless its app is gone or cannot sign), then settled in the store. */
    const attempt = (row: DueCallback): Effect.Effect<void, StoreUnavailable> =>
      Effect.gen(function*() {
        if (row.appGone) {
          const error = `app ${row.appId} was deleted`
          yield* store.dead(row.id, { attempts: row.attempts, at: Date.now(), error, status: null })
          metrics.dead()
          yield* Effect.logWarning("status callback dead: its app was deleted").pipe(logged(row))
          return
        }
        if (row.secrets.length === 0) {
          return yield* settleFailure(row, { reason: "no_secret", error: "the app has no callback secret to sign with", status: null })
        }
        const started = performance.now()
        const answer = yield* post({
          url: row.url,
          body: row.body,
          headers: {
            "content-type": "application/json",
            "user-agent": userAgent,
            "smsgw-signature": signatureHeader(row.secrets, Math.floor(Date.now() / 1000), row.body),
            "smsgw-event-id": eventIdOf(row)
          }
        }).pipe(
          Effect.withSpan(
            "smsgw.callback.post",
            { kind: "client", attributes: { "smsgw.message_id": row.messageId ?? row.inboundId ?? "", "smsgw.callback_id": row.id, "smsgw.attempt": row.attempts + 1 } },
            untracedStack
          ),
          Effect.map((status): Outcome | undefined =>
            status >= 200 && status < 300
              ? undefined
              : {
                reason: statusReason(status),
                error: status >= 300 && status < 400 ? `HTTP ${status} (redirects are not followed)` : `HTTP ${status}`,
                status
              }
          ),
          Effect.catchTag("PostFailed", (e) => Effect.succeed<Outcome>({ reason: e.reason, error: e.message, status: null }))
        )
        metrics.posted((performance.now() - started) / 1000)
        if (answer === undefined) {
          metrics.delivered()
          delivered.push(row.id)
          return
        }
        yield* settleFailure(row, answer)
      })

    /** Posted in its app's turn, then let go; interrupted (the deliverer stopping), it stays held to be given back. */
    const run = (row: DueCallback) => {
      const settled = attempt(row).pipe(
        Effect.catchCause((cause) =>
          Cause.hasInterruptsOnly(cause)
            ? Effect.failCause(cause as Cause.Cause<never>)
            : Effect.logWarning("status callback not settled; tried again when its lease ends").pipe(
              Effect.annotateLogs({ error: messageWithCauses(Cause.squash(cause)) }),
              logged(row)
            )
        ),
        Effect.andThen(Effect.sync(() => letGo(row)))
      )
      const app = apps.get(row.appId)
      return app === undefined ? settled : app.permits.withPermit(settled)
    }

    const claim = (fibers: FiberSet.FiberSet<void, never>) =>
      Effect.gen(function*() {
        yield* flushDelivered
        const room = Math.min(options.batchSize, options.maxConcurrency - held.size)
        if (room <= 0) return { claimed: 0, room }
        const now = Date.now()
        const skipApps = [...apps].filter(([, a]) => a.count >= options.concurrencyPerApp).map(([id]) => id)
        const rows = yield* store.due(now, { limit: room, perApp: options.concurrencyPerApp, leaseUntil: now + lease, skipApps })
        for (const row of rows) {
          hold(row)
          yield* FiberSet.run(fibers, run(row))
        }
        return { claimed: rows.length, room }
      })

    // Registered first, so it runs after the posts in flight are interrupted: delivered rows go, the rest are due again.
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        yield* flushDelivered
        const ids = [...held]
        if (ids.length > 0) yield* store.release(ids, Date.now())
      }).pipe(Effect.timeout("5 seconds"), Effect.ignore)
    )
    const fibers = yield* FiberSet.make<void, never>()

    const backlog = Effect.suspend(() => store.backlog(Date.now())).pipe(
      Effect.map((b) => metrics.backlog(b.due, b.oldestDueAt === undefined ? 0 : Math.max(0, (Date.now() - b.oldestDueAt) / 1000))),
      Effect.timeout("10 seconds"),
      Effect.ignore,
      Effect.repeat(Schedule.spaced(options.backlogIntervalMs ?? Math.min(5_000, 20 * options.pollIntervalMs)))
    )
    yield* Effect.forkScoped(backlog)
    yield* Effect.addFinalizer(() => Effect.sync(() => metrics.backlog(0, 0)))

    let storeDown = false
    for (;;) {
      const result = yield* Effect.result(claim(fibers))
      let claimed = 0
      let room = 0
      if (result._tag === "Failure") {
        if (!storeDown) {
          yield* Effect.logWarning("status callbacks: the store failed; tried again every interval").pipe(
            Effect.annotateLogs({ error: result.failure.message })
          )
        }
        storeDown = true
      } else {
        if (storeDown) yield* Effect.logInfo("status callbacks: the store answers again")
        storeDown = false
        claimed = result.success.claimed
        room = result.success.room
      }
      // A full claim means more may be due: claim again at once; otherwise wait for the interval.
      if (claimed === 0 || claimed < room) yield* Effect.sleep(options.pollIntervalMs)
    }
  })

/** The deliverer as a fiber of this process (embedded: the only process). */
export const layer = (options: CallbacksOptions) => Layer.effectDiscard(Effect.forkScoped(Effect.scoped(deliver(options))))

/** The deliverer on one node of the cluster; it moves to a survivor with its runner's shards. */
export const singletonLayer = (options: CallbacksOptions) =>
  Singleton.make("smsgw/callbacks", Effect.scoped(deliver(options)))
