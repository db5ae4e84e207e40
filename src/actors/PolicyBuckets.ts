/**
 * The recipient buckets this node owns: their in-memory state (a bounded LRU per bucket) and the write-behind of
 * that state to the counter store (Redis), so a bucket that moves to another node carries on with the same counts.
 *
 * A bucket is opened by its `RecipientPolicy` entity when the entity starts on this node and closed when it stops
 * (shard moved, node shutting down): closing stops local decisions first, then writes the bucket's dirty state, and
 * the cluster hands the shard over only after that. Requests from this node for a bucket it owns are decided here
 * directly (`local`), without an actor round trip; everyone else's arrive through the entity.
 *
 * Reading a recipient's state from the store must never bring back something older than what this node decided:
 * - a state taken for writing stays readable here (`pending`) until the store has acknowledged it (and, when the
 *   write failed, until a later flush succeeds), so a recipient evicted and written is read from `pending`, not from
 *   the store that may not have it yet;
 * - one read per recipient at a time (`inflight`): a second request for a recipient being read waits for the same
 *   answer instead of racing it;
 * - a recipient whose read failed is decided from zero on a scratch state (the message is not held up by a Redis
 *   outage) but that guess is never kept nor written over the recipient's real state.
 */
import { Context, Deferred, Effect, Exit, Layer, Schedule, Schema } from "effect"
import type { Scope } from "effect"
import { CounterStore } from "../policy/CounterStore.ts"
import type { CounterStoreUnavailable } from "../policy/CounterStore.ts"
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

/** Writes not yet acknowledged by the store, at most this many (the oldest are given up first, and counted). */
const MAX_PENDING = 200_000
const SAVE_CHUNK = 5_000
/** Reads of first-seen recipients are gathered this long into one MGET (at most this many keys). */
const READ_WINDOW_MS = 1
const MAX_READ_BATCH = 1_000

const keyOf = (bucket: number, recipient: string) => `${bucket}:${recipient}`

/** One read from the store, for one or more recipients. */
interface Load {
  readonly done: Deferred.Deferred<ReadonlyArray<string | null>, CounterStoreUnavailable>
}

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
    const metrics = yield* PolicyMetrics
    // The decisions' clock: state is pruned and given TTLs on the same time line its windows were counted on.
    const clock = yield* PolicyClock
    const scope = yield* Effect.scope
    const open = new Map<number, OpenBucket>()
    const handles = new Map<number, BucketHandle>()
    // Without a persistent store, a bucket's state outlives its entity on this node (the only node there is), so a
    // restarted entity carries on with it instead of starting from zero.
    const parked = new Map<number, BucketState>()
    /** Taken for writing and not acknowledged yet, by bucket:recipient (insertion order = age). Newest state wins. */
    const pending = new Map<string, Entry>()
    /** Reads under way, by bucket:recipient: the read and the recipient's place in its answer. */
    const inflight = new Map<string, { readonly load: Load; readonly index: number }>()
    let storeFailing = false

    const storeState = (ok: boolean, operation: "load" | "save", detail: unknown) =>
      Effect.suspend(() => {
        if (!ok) metrics.counterStoreFailure(operation)
        if (ok === !storeFailing) return Effect.void
        storeFailing = !ok
        // Once per outage, not once per message: the metric counts every failure.
        return ok
          ? Effect.logInfo("policy counter store reachable again")
          : Effect.logWarning("policy counter store failing: deciding from memory, writes kept for retry").pipe(
            Effect.annotateLogs({ operation, cause: String(detail) })
          )
      })

    const addPending = (entries: ReadonlyArray<Entry>) => {
      for (const e of entries) {
        const key = keyOf(e.bucket, e.recipient)
        pending.delete(key)
        pending.set(key, e)
      }
      if (pending.size > MAX_PENDING) {
        let dropped = 0
        for (const key of pending.keys()) {
          if (pending.size <= MAX_PENDING) break
          pending.delete(key)
          dropped++
        }
        metrics.counterStoreFailure("save")
        return Effect.logError("policy counter writes given up after a long store outage").pipe(
          Effect.annotateLogs({ dropped })
        )
      }
      return Effect.void
    }

    /** Writes entries already in `pending`; each leaves it once acknowledged (unless a newer state replaced it). */
    const save = (entries: ReadonlyArray<Entry>): Effect.Effect<void> =>
      Effect.forEach(
        Array.from({ length: Math.ceil(entries.length / SAVE_CHUNK) }, (_, i) => entries.slice(i * SAVE_CHUNK, (i + 1) * SAVE_CHUNK)),
        (chunk) =>
          store.save(chunk).pipe(
            Effect.flatMap(() =>
              Effect.suspend(() => {
                for (const e of chunk) {
                  const key = keyOf(e.bucket, e.recipient)
                  if (pending.get(key) === e) pending.delete(key)
                }
                metrics.counterWrites(chunk.length)
                return storeState(true, "save", undefined)
              })
            ),
            Effect.catchCause((cause) => storeState(false, "save", cause))
          ),
        { discard: true }
      )

    const takeDirty = (bucket: number, state: BucketState, now: number): Array<Entry> =>
      state.takeDirty(now).map((d) => ({ bucket, recipient: d.recipient, value: d.value, ttlMs: d.ttlMs }))

    const flushAll = Effect.suspend(() => {
      if (!store.persistent) {
        // Nothing to write: only let go of what the LRU evicted, so memory stays bounded.
        for (const b of open.values()) b.state.discardDirty()
        return Effect.void
      }
      const now = clock.now()
      const fresh: Array<Entry> = []
      for (const [bucket, b] of open) for (const e of takeDirty(bucket, b.state, now)) fresh.push(e)
      return addPending(fresh).pipe(Effect.andThen(Effect.suspend(() => save([...pending.values()]))))
    })

    yield* flushAll.pipe(Effect.repeat(Schedule.spaced(options.flushIntervalMs)), Effect.forkScoped)
    // The last writes on the way down (the node's buckets close before this too, each writing its own).
    yield* Effect.addFinalizer(() => flushAll)

    /**
     * The read being gathered: recipients asked for within `READ_WINDOW_MS`, whatever their bucket, go to the store in
     * one MGET (keys are per recipient) — a first sighting costs a share of a round trip, not a round trip.
     */
    let gathering: { readonly load: Load; readonly keys: Array<string>; readonly recipients: Array<string> } | undefined

    const startRead = () => {
      const batch = {
        load: { done: Deferred.makeUnsafe<ReadonlyArray<string | null>, CounterStoreUnavailable>() },
        keys: [] as Array<string>,
        recipients: [] as Array<string>
      }
      gathering = batch
      const run = Effect.sleep(READ_WINDOW_MS).pipe(
        Effect.andThen(Effect.suspend(() => {
          if (gathering === batch) gathering = undefined
          return store.load(0, batch.recipients)
        })),
        Effect.exit,
        Effect.flatMap((exit) =>
          Effect.sync(() => {
            for (const key of batch.keys) inflight.delete(key)
            Deferred.doneUnsafe(batch.load.done, exit)
          })
        ),
        // Its waiters depend on it: it always completes (the store bounds every call with a timeout).
        Effect.uninterruptible
      )
      return Effect.forkIn(run, scope)
    }

    /** The stored state of recipients, one read per recipient at a time however many requests ask. */
    const read = (bucket: number, recipients: ReadonlyArray<string>) =>
      Effect.suspend(() => {
        const positions: Array<{ readonly load: Load; readonly index: number }> = []
        const loads = new Set<Load>()
        let start: Effect.Effect<unknown> = Effect.void
        for (const recipient of recipients) {
          const key = keyOf(bucket, recipient)
          let position = inflight.get(key)
          if (position === undefined) {
            if (gathering === undefined || gathering.recipients.length >= MAX_READ_BATCH) start = Effect.andThen(start, startRead())
            const batch = gathering
            if (batch === undefined) continue
            position = { load: batch.load, index: batch.recipients.length }
            batch.recipients.push(recipient)
            batch.keys.push(key)
            inflight.set(key, position)
          }
          positions.push(position)
          loads.add(position.load)
        }
        const waited = [...loads]
        return start.pipe(
          Effect.andThen(Effect.forEach(waited, (load) => Deferred.await(load.done))),
          Effect.map((answers) => {
            const byLoad = new Map(waited.map((load, i) => [load, answers[i] ?? []]))
            return positions.map((p) => byLoad.get(p.load)?.[p.index] ?? null)
          })
        )
      })

    const handleOf = (bucket: number, entry: OpenBucket): BucketHandle => {
      const { state } = entry
      // Dry runs (probes) decide nothing: they are not counted as decisions.
      const count = (requests: ReadonlyArray<DecisionRequest>, decisions: Array<Decision>) => {
        for (const [i, d] of decisions.entries()) {
          if (requests[i]?.probe === true) continue
          entry.decisions++
          if (d._tag === "Admit") entry.admitted++
          else if (d._tag === "Reject") entry.rejected++
          else entry.duplicatesReturned++
        }
        return decisions
      }
      const decideNow = (requests: ReadonlyArray<DecisionRequest>) => count(requests, state.decide(requests))

      /** Decides with `unknown` recipients (their read failed) on a scratch state: from zero, never kept. */
      const decideWithout = (requests: ReadonlyArray<DecisionRequest>, unknown: ReadonlySet<string>) => {
        const scratch = new BucketState({ maxRecipients: Math.max(1, unknown.size) })
        const known: Array<DecisionRequest> = []
        const guessed: Array<DecisionRequest> = []
        for (const r of requests) (unknown.has(r.recipient) ? guessed : known).push(r)
        const fromState = state.decide(known)
        const fromScratch = scratch.decide(guessed)
        let k = 0
        let g = 0
        return count(requests, requests.map((r) => (unknown.has(r.recipient) ? fromScratch[g++] : fromState[k++]) as Decision))
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
            const missing = state.missing(requests.map((r) => r.recipient))
            if (missing.length === 0) return Effect.succeed(decideNow(requests))
            // A state taken for writing and not acknowledged is newer than what the store may answer.
            const toRead: Array<string> = []
            for (const recipient of missing) {
              const written = pending.get(keyOf(bucket, recipient))
              if (written !== undefined) state.load(recipient, written.value)
              else toRead.push(recipient)
            }
            if (toRead.length === 0) return Effect.succeed(decideNow(requests))
            entry.loadedFromStore += toRead.length
            return read(bucket, toRead).pipe(
              Effect.exit,
              // Loading and deciding in one step: nothing can evict what was just loaded before it is decided.
              Effect.flatMap((exit) => {
                if (!entry.active) return Effect.fail(new BucketMoved({ bucket }))
                if (Exit.isSuccess(exit)) {
                  toRead.forEach((recipient, i) => state.load(recipient, exit.value[i] ?? null))
                  return storeState(true, "load", undefined).pipe(Effect.as(decideNow(requests)))
                }
                // Recipients another request loaded meanwhile are known after all.
                const unknown = new Set(state.missing(toRead))
                return storeState(false, "load", exit.cause).pipe(Effect.as(decideWithout(requests, unknown)))
              })
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
            return addPending(takeDirty(bucket, entry.state, clock.now())).pipe(
              Effect.andThen(Effect.suspend(() => save([...pending.values()].filter((e) => e.bucket === bucket)))),
              Effect.timeout("5 seconds"),
              Effect.ignore,
              // The bucket's next owner writes from now on: a late retry from here would overwrite its newer state.
              Effect.ensuring(Effect.sync(() => {
                for (const [key, e] of pending) if (e.bucket === bucket) pending.delete(key)
              }))
            )
          })
      ).pipe(Effect.map(({ handle }) => handle))

    return PolicyBuckets.of({
      local: (bucket) => handles.get(bucket),
      open: openBucket,
      owned: () => [...open.keys()].sort((a, b) => a - b),
      persistent: store.persistent
    })
  })
