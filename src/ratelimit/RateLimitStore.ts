/**
 * The L2 rate-limit store: GCRA decisions and quota leases in memory (one process) or in Redis (Lua, shared).
 */
import { Context, Effect, Layer, Schema } from "effect"
import { messageOf, ownConnection, RedisConnection, within } from "../storage/RedisConnection.ts"
import { createHash } from "node:crypto"
import * as Gcra from "./Gcra.ts"
import type { Decision, Verdict } from "./Gcra.ts"

export class RateLimitStoreUnavailable extends Schema.TaggedError<RateLimitStoreUnavailable>()(
  "RateLimitStoreUnavailable",
  { message: Schema.String }
) {}

export interface RateLimitStoreStats {
  /** Calls to the store: EVALSHA round trips for Redis (NOSCRIPT reloads not counted), `decide` calls in memory. */
  readonly roundTrips: number
  readonly decisions: number
  /** Round trips that failed or timed out. */
  readonly failures: number
  /** Duration of the last successful round trip. */
  readonly lastLatencyMs: number
}

/** The store's own settings on a shared connection. */
export interface RedisStoreUse {
  /** Put before every limit key: `${keyPrefix}${limit.key}`. */
  readonly keyPrefix: string
  /**
   * Per round trip: one not answered in time fails every call it carried with RateLimitStoreUnavailable (Redis may
   * still have applied it; a failure is never retried, so a decision is counted at most once).
   */
  readonly timeoutMs: number
  /** Decisions per EVALSHA (default 256); a single call carrying more goes alone. */
  readonly maxBatch?: number
  /**
   * Start round trips at most this often (default 0: as soon as the previous one is answered). Under load each
   * round trip then carries more decisions, for less CPU per decision, at up to this much extra latency; a call
   * arriving after a quiet spell, or a full batch, still goes at once.
   */
  readonly minIntervalMs?: number
}

/** On a connection of its own. */
export interface RedisStoreOptions extends RedisStoreUse {
  readonly host: string
  readonly port: number
  readonly password?: string
  readonly db?: number
}

/**
 * The exact (L2) side of rate limiting: GCRA decisions over limits shared by every process that uses the same store.
 * Each decision is all or nothing across its limits; the decisions of one call are applied in order.
 */
export class RateLimitStore extends Context.Service<RateLimitStore, {
  readonly decide: (decisions: ReadonlyArray<Decision>) => Effect.Effect<ReadonlyArray<Verdict>, RateLimitStoreUnavailable>
  /** True when the store answers a PING within the timeout (always true in memory). */
  readonly health: Effect.Effect<boolean>
  readonly stats: Effect.Effect<RateLimitStoreStats>
}>()("smsgw/ratelimit/RateLimitStore") {
  /** Exact for one process; time from the Clock, so tests may drive it with TestClock. */
  static readonly layerMemory: Layer.Layer<RateLimitStore> = Layer.effect(RateLimitStore, Effect.sync(() => makeMemory()))

  /** Exact across processes: one Lua script per batch of concurrent decisions, on Redis's own clock. */
  static readonly layerOn = (options: RedisStoreUse): Layer.Layer<RateLimitStore, never, RedisConnection> =>
    Layer.effect(RateLimitStore, makeRedis(options))

  /** layerOn over a connection of its own (tests, benchmarks). */
  static readonly layerRedis = (options: RedisStoreOptions): Layer.Layer<RateLimitStore> =>
    RateLimitStore.layerOn(options).pipe(Layer.provide(ownConnection(options)))
}

const makeMemory = () => {
  const state = new Map<string, number>()
  let sweepAt = 10_000
  let calls = 0
  let decisions = 0
  const decide = (batch: ReadonlyArray<Decision>) =>
    Effect.clockWith((clock) =>
      Effect.sync(() => {
        const now = clock.currentTimeMillisUnsafe()
        if (state.size >= sweepAt) {
          // A key whose TAT is past decides as if it were absent.
          const t = Gcra.ticksOf(now)
          for (const [key, tat] of state) if (tat <= t) state.delete(key)
          sweepAt = Math.max(10_000, state.size * 2)
        }
        calls++
        decisions += batch.length
        return batch.map((decision) => Gcra.decide(state, decision, now))
      })
    )
  return RateLimitStore.of({
    decide,
    health: Effect.succeed(true),
    stats: Effect.sync(() => ({ roundTrips: calls, decisions, failures: 0, lastLatencyMs: 0 }))
  })
}

/**
 * Gcra.decide in Lua, over a batch: KEYS are the limit keys of every decision in order; ARGV is the number of
 * decisions, then per decision its number of limits and its cost, then per limit emissionMs and capacityMs. Returns
 * five integers per decision: allowed (1/0), retryAfterMs, limitIndex, remaining (-1 without limits), resetMs.
 */
export const gcraScript = `
local G = ${Gcra.TICKS_PER_MS}
local time = redis.call('TIME')
local t = (tonumber(time[1]) - ${Gcra.EPOCH_MS / 1000}) * 1000 * G + math.floor(tonumber(time[2]) * G / 1000)
local out = {}
local o = 0
local k = 0
local a = 2
for d = 1, tonumber(ARGV[1]) do
  local n = tonumber(ARGV[a])
  local cost = tonumber(ARGV[a + 1])
  a = a + 2
  local tats, ems, caps = {}, {}, {}
  local worst, worstOver = 0, 0
  for i = 1, n do
    local emMs = tonumber(ARGV[a])
    local capMs = tonumber(ARGV[a + 1])
    a = a + 2
    local em = math.max(1, math.floor(emMs * G + 0.5))
    local cap = math.floor((capMs / emMs) * em + 0.5)
    local tat = tonumber(redis.call('GET', KEYS[k + i]))
    if tat == nil or tat < t then tat = t end
    tats[i], ems[i], caps[i] = tat, em, cap
    local over = tat + math.floor(cost * em + 0.5) - t - cap
    if over > worstOver then worst, worstOver = i, over end
  end
  if n == 0 then
    out[o + 1], out[o + 2], out[o + 3], out[o + 4], out[o + 5] = 1, 0, -1, -1, 0
  elseif worst > 0 then
    local tat = tats[worst]
    out[o + 1] = 0
    out[o + 2] = math.ceil(worstOver / G)
    out[o + 3] = worst - 1
    out[o + 4] = math.max(0, math.floor((caps[worst] - (tat - t)) / ems[worst]))
    out[o + 5] = math.ceil((tat - t) / G)
  else
    local binding, least, bindingTat = 1, math.huge, t
    for i = 1, n do
      local tat = tats[i] + math.floor(cost * ems[i] + 0.5)
      redis.call('SET', KEYS[k + i], string.format('%.0f', tat), 'PX', math.ceil((tat - t) / G) + 1000)
      local remaining = math.floor((caps[i] - (tat - t)) / ems[i])
      if remaining < least then binding, least, bindingTat = i, remaining, tat end
    end
    out[o + 1] = 1
    out[o + 2] = 0
    out[o + 3] = binding - 1
    out[o + 4] = math.max(0, least)
    out[o + 5] = math.max(0, math.ceil((bindingTat - t) / G))
  end
  o = o + 5
  k = k + n
end
return out
`

const scriptSha = createHash("sha1").update(gcraScript).digest("hex")

const unlimited: Verdict = { allowed: true, retryAfterMs: 0, limitIndex: -1, remaining: Infinity, resetMs: 0 }

interface Pending {
  readonly decisions: ReadonlyArray<Decision>
  readonly resume: (effect: Effect.Effect<ReadonlyArray<Verdict>, RateLimitStoreUnavailable>) => void
}

const makeRedis = Effect.fnUntraced(function*(options: RedisStoreUse) {
  const maxBatch = Math.max(1, options.maxBatch ?? 256)
  const minIntervalMs = options.minIntervalMs ?? 0
  const { client, monitor } = yield* RedisConnection
  const { markDown, markUp } = monitor("rate-limit store")
  const timedOut = `no answer within ${options.timeoutMs} ms`
  // The script is loaded on every (re)connection, so the first decision after one is a plain EVALSHA.
  client.on("ready", () => void client.script("LOAD", gcraScript).catch(() => undefined))

  let roundTrips = 0
  let decisions = 0
  let failures = 0
  let lastLatencyMs = 0

  const evalBatch = (batch: ReadonlyArray<Pending>): Promise<unknown> => {
    const keys: Array<string> = []
    const argv: Array<string | number> = [0]
    let count = 0
    for (const pending of batch) {
      for (const decision of pending.decisions) {
        count++
        argv.push(decision.limits.length, decision.cost)
        for (const limit of decision.limits) {
          keys.push(options.keyPrefix + limit.key)
          argv.push(limit.emissionMs, limit.capacityMs)
        }
      }
    }
    argv[0] = count
    const args = ([scriptSha, keys.length] as Array<string | number>).concat(keys, argv)
    const run = () => client.call("EVALSHA", args)
    return run().catch((error: unknown) => {
      if (!messageOf(error).startsWith("NOSCRIPT")) throw error
      return client.script("LOAD", gcraScript).then(run)
    })
  }

  const fail = (batch: ReadonlyArray<Pending>, message: string) => {
    failures++
    markDown(message)
    const error = Effect.fail(new RateLimitStoreUnavailable({ message }))
    for (const pending of batch) pending.resume(error)
  }

  const settle = (batch: ReadonlyArray<Pending>, count: number, reply: unknown) => {
    if (!Array.isArray(reply) || reply.length !== count * 5 || !reply.every((x) => typeof x === "number")) {
      return fail(batch, "unexpected reply from the rate-limit script")
    }
    const values = reply as ReadonlyArray<number>
    markUp()
    let o = 0
    for (const pending of batch) {
      const verdicts = new Array<Verdict>(pending.decisions.length)
      for (let i = 0; i < verdicts.length; i++, o += 5) {
        const limitIndex = values[o + 2] as number
        verdicts[i] = limitIndex < 0 ? unlimited : {
          allowed: values[o] === 1,
          retryAfterMs: values[o + 1] as number,
          limitIndex,
          remaining: values[o + 3] as number,
          resetMs: values[o + 4] as number
        }
      }
      pending.resume(Effect.succeed(verdicts))
    }
  }

  let queue: Array<Pending> = []
  let queued = 0
  let inFlight = false
  let scheduled = false
  let lastSentAt = -Infinity
  let pacing: ReturnType<typeof setTimeout> | undefined
  yield* Effect.addFinalizer(() => Effect.sync(() => clearTimeout(pacing)))
  const paced = () => {
    pacing = undefined
    flush()
  }

  // One round trip at a time: whatever arrives meanwhile (or in the same tick) rides the next one.
  const flush = () => {
    scheduled = false
    if (inFlight || queue.length === 0) return
    if (minIntervalMs > 0 && queued < maxBatch) {
      const wait = lastSentAt + minIntervalMs - performance.now()
      if (wait > 0) {
        scheduled = true
        pacing ??= setTimeout(paced, wait)
        return
      }
    }
    let taken = 0
    let count = 0
    for (const pending of queue) {
      if (taken > 0 && count + pending.decisions.length > maxBatch) break
      count += pending.decisions.length
      taken++
    }
    const batch = taken === queue.length ? queue : queue.slice(0, taken)
    queue = taken === queue.length ? [] : queue.slice(taken)
    inFlight = true
    queued -= count
    roundTrips++
    decisions += count
    const started = performance.now()
    lastSentAt = started
    // The deadline is this store's own (the shared connection's is longer): a late answer is dropped.
    let done = false
    const deadline = setTimeout(() => {
      done = true
      inFlight = false
      fail(batch, timedOut)
      flush()
    }, options.timeoutMs)
    evalBatch(batch).then(
      (reply) => {
        if (done) return
        done = true
        clearTimeout(deadline)
        inFlight = false
        lastLatencyMs = performance.now() - started
        settle(batch, count, reply)
        flush()
      },
      (error: unknown) => {
        if (done) return
        done = true
        clearTimeout(deadline)
        inFlight = false
        fail(batch, messageOf(error))
        flush()
      }
    )
  }

  // Not Effect.fn: a span per decision would cost more than the decision.
  const decide = (batch: ReadonlyArray<Decision>): Effect.Effect<ReadonlyArray<Verdict>, RateLimitStoreUnavailable> =>
    batch.length === 0 ? Effect.succeed([]) : Effect.callback((resume) => {
      queue.push({ decisions: batch, resume })
      queued += batch.length
      if (!inFlight && !scheduled) {
        scheduled = true
        queueMicrotask(flush)
      }
    })

  return RateLimitStore.of({
    decide,
    health: within(() => client.ping(), options.timeoutMs).pipe(
      Effect.match({ onFailure: () => false, onSuccess: (reply) => reply === "PONG" })
    ),
    stats: Effect.sync(() => ({ roundTrips, decisions, failures, lastLatencyMs }))
  })
})
