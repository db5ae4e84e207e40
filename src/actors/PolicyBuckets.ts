/**
 * The recipient buckets this node owns: their in-memory state (a bounded LRU per bucket) and the write-behind of
 * that state to the counter store (Redis), so a bucket that moves to another node carries on with the same counts.
 *
 * A bucket is opened by its `RecipientPolicy` entity when the entity starts on this node and closed when it stops
 * (shard moved, node shutting down): closing stops local decisions first, then writes the bucket's dirty state, and
 * the cluster hands the shard over only after that. Requests from this node for a bucket it owns are decided here
 * directly (`local`), without an actor round trip; everyone else's arrive through the entity.
 */
import { Context, Effect, Layer, Schedule, Schema } from "effect"
import type { Scope } from "effect"
import { CounterStore } from "../policy/CounterStore.ts"
import { BucketState } from "../policy/RecipientState.ts"
import type { Decision, DecisionRequest } from "../policy/RecipientState.ts"
import { PolicyMetrics } from "../observability/PolicyMetrics.ts"
import { PolicyClock } from "../policy/PolicyClock.ts"

/** The bucket stopped being this node's while a decision waited for its recipients' state: ask the owner instead. */
export class BucketMoved extends Schema.TaggedError<BucketMoved>()("BucketMoved", { bucket: Schema.Number }) {}

export interface BucketStats {
  readonly recipients: number
  readonly maxRecipients: number
  readonly decisions: number
  readonly admitted: number
  readonly rejected: number
  readonly duplicatesReturned: number
  readonly lookups: number
  readonly loadedFromStore: number
}

export interface BucketHandle {
  readonly bucket: number
  readonly decide: (requests: ReadonlyArray<DecisionRequest>) => Effect.Effect<Array<Decision>, BucketMoved>
  readonly stats: () => BucketStats
}

interface OpenBucket {
  readonly state: BucketState
  active: boolean
  decisions: number
  admitted: number
  rejected: number
  duplicatesReturned: number
  lookups: number
  loadedFromStore: number
}

export interface PolicyBucketsOptions {
  /** Recipients held in memory per bucket; the least recently used beyond it are written out and dropped. */
  readonly maxRecipientsPerBucket: number
  /** How often dirty state is written to the store (what a crash, not a clean stop, can lose). */
  readonly flushIntervalMs: number
}

interface Entry {
  readonly bucket: number
  readonly recipient: string
  readonly value: string | null
  readonly ttlMs: number
}

/** Writes kept for a retry after a failed flush, at most this many (newest state wins per recipient). */
const MAX_RETRY = 200_000
const SAVE_CHUNK = 5_000

export class PolicyBuckets extends Context.Service<PolicyBuckets, {
  /** This node's handle of a bucket it owns now, if it does. */
  readonly local: (bucket: number) => BucketHandle | undefined
  /** Opens a bucket for the calling entity; closed (and written out) when the entity's scope closes. */
  readonly open: (bucket: number) => Effect.Effect<BucketHandle, never, Scope.Scope>
  readonly owned: () => ReadonlyArray<number>
  readonly persistent: boolean
}>()("smsgw/actors/PolicyBuckets") {
  static readonly layer = (options: PolicyBucketsOptions) => Layer.effect(PolicyBuckets, make(options))
}

const make = (options: PolicyBucketsOptions) =>
  Effect.gen(function*() {
    const store = yield* CounterStore
    // The decisions' clock: state is pruned and given TTLs on the same time line its windows were counted on.
    const clock = yield* PolicyClock
    const metrics = yield* PolicyMetrics
    const open = new Map<number, OpenBucket>()
    const handles = new Map<number, BucketHandle>()
    // Without a persistent store, a bucket's state outlives its entity on this node (the only node there is), so a
    // restarted entity carries on with it instead of starting from zero.
    const parked = new Map<number, BucketState>()
    const retry = new Map<string, Entry>()

    /** One pipeline per chunk, so a large backlog (after an outage) is not one call racing its timeout. */
    const save = (entries: ReadonlyArray<Entry>): Effect.Effect<void> =>
      entries.length > SAVE_CHUNK
        ? Effect.forEach(
          Array.from({ length: Math.ceil(entries.length / SAVE_CHUNK) }, (_, i) => entries.slice(i * SAVE_CHUNK, (i + 1) * SAVE_CHUNK)),
          saveChunk,
          { discard: true }
        )
        : saveChunk(entries)

    const saveChunk = (entries: ReadonlyArray<Entry>) =>
      entries.length === 0
        ? Effect.void
        : store.save(entries).pipe(
          Effect.tap(() => Effect.sync(() => metrics.counterWrites(entries.length))),
          Effect.catchCause((cause) =>
            Effect.gen(function*() {
              metrics.counterStoreFailure("save")
              if (retry.size < MAX_RETRY) {
                for (const e of entries) if (!retry.has(`${e.bucket}:${e.recipient}`)) retry.set(`${e.bucket}:${e.recipient}`, e)
              }
              yield* Effect.logWarning("policy counters not written; retrying at the next flush").pipe(
                Effect.annotateLogs({ entries: entries.length, cause: String(cause) })
              )
            })
          )
        )

    const dirtyOf = (bucket: number, state: BucketState, now: number): Array<Entry> =>
      state.takeDirty(now).map((d) => ({ bucket, recipient: d.recipient, value: d.value, ttlMs: d.ttlMs }))

    const flushAll = Effect.suspend(() => {
      if (!store.persistent) return Effect.void
      const now = clock.now()
      const entries: Array<Entry> = []
      // Retried writes go first so that a fresher state of the same recipient, written after them, wins.
      for (const e of retry.values()) entries.push(e)
      retry.clear()
      for (const [bucket, b] of open) for (const e of dirtyOf(bucket, b.state, now)) entries.push(e)
      return save(entries)
    })

    yield* flushAll.pipe(Effect.repeat(Schedule.spaced(options.flushIntervalMs)), Effect.forkScoped)
    // The last writes on the way down (the node's buckets close before this too, each writing its own).
    yield* Effect.addFinalizer(() => flushAll)

    const handleOf = (bucket: number, entry: OpenBucket): BucketHandle => {
      const { state } = entry
      const decideNow = (requests: ReadonlyArray<DecisionRequest>) => {
        const decisions = state.decide(requests)
        entry.decisions += decisions.length
        for (const d of decisions) {
          if (d._tag === "Admit") entry.admitted++
          else if (d._tag === "Reject") entry.rejected++
          else entry.duplicatesReturned++
        }
        return decisions
      }
      return {
        bucket,
        stats: () => ({
          recipients: state.size,
          maxRecipients: state.maxRecipients,
          decisions: entry.decisions,
          admitted: entry.admitted,
          rejected: entry.rejected,
          duplicatesReturned: entry.duplicatesReturned,
          lookups: entry.lookups,
          loadedFromStore: entry.loadedFromStore
        }),
        decide: (requests) =>
          Effect.suspend(() => {
            if (!entry.active) return Effect.fail(new BucketMoved({ bucket }))
            entry.lookups += requests.length
            if (!store.persistent) return Effect.succeed(decideNow(requests))
            let missing = state.missing(requests.map((r) => r.recipient))
            if (missing.length === 0) return Effect.succeed(decideNow(requests))
            // A write that failed is newer than what the store holds: take it from the retry list.
            if (retry.size > 0) {
              missing = missing.filter((recipient) => {
                const pending = retry.get(`${bucket}:${recipient}`)
                if (pending !== undefined) state.load(recipient, pending.value)
                return pending === undefined
              })
              if (missing.length === 0) return Effect.succeed(decideNow(requests))
            }
            const toLoad = missing
            entry.loadedFromStore += toLoad.length
            return store.load(bucket, toLoad).pipe(
              Effect.map((values) => {
                toLoad.forEach((recipient, i) => state.load(recipient, values[i] ?? null))
              }),
              Effect.catchCause((cause) =>
                // Counting goes on in memory from zero for these recipients: a Redis outage must not stop messages.
                Effect.logWarning("policy counters not loaded; deciding on this node's memory alone").pipe(
                  Effect.annotateLogs({ bucket, recipients: toLoad.length, cause: String(cause) }),
                  Effect.tap(() => Effect.sync(() => metrics.counterStoreFailure("load")))
                )
              ),
              Effect.flatMap(() =>
                // The bucket may have closed while the state loaded: its new owner decides instead.
                entry.active ? Effect.succeed(decideNow(requests)) : Effect.fail(new BucketMoved({ bucket }))
              )
            )
          })
      }
    }

    const openBucket = (bucket: number) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          const state = parked.get(bucket) ?? new BucketState({ maxRecipients: options.maxRecipientsPerBucket })
          parked.delete(bucket)
          const entry: OpenBucket = {
            state,
            active: true,
            decisions: 0,
            admitted: 0,
            rejected: 0,
            duplicatesReturned: 0,
            lookups: 0,
            loadedFromStore: 0
          }
          const handle = handleOf(bucket, entry)
          open.set(bucket, entry)
          handles.set(bucket, handle)
          metrics.bucketsOwned(open.size)
          return { entry, handle }
        }),
        ({ entry }) =>
          Effect.suspend(() => {
            // No decision after this point: everything decided is in `state`, written out below.
            entry.active = false
            open.delete(bucket)
            handles.delete(bucket)
            metrics.bucketsOwned(open.size)
            if (!store.persistent) {
              parked.set(bucket, entry.state)
              return Effect.void
            }
            return save(dirtyOf(bucket, entry.state, clock.now())).pipe(Effect.timeout("5 seconds"), Effect.ignore)
          })
      ).pipe(Effect.map(({ handle }) => handle))

    return PolicyBuckets.of({
      local: (bucket) => handles.get(bucket),
      open: openBucket,
      owned: () => [...open.keys()].sort((a, b) => a - b),
      persistent: store.persistent
    })
  })
