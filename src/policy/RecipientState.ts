/**
 * The state of one recipient bucket, in memory: per recipient its frequency-cap counters and the content it was
 * recently sent (dedup), and the decisions over them. Pure and synchronous: the bucket's actor is the single writer,
 * so a decision needs no lock and no round trip; `now` always comes from the caller (no clock in here).
 *
 * The state is written behind to a store (CounterStore): the caller loads the recipients `missing` from memory before
 * deciding, and writes what `takeDirty` hands back from time to time.
 */

export type Window = { readonly type: "fixed"; readonly ms: number } | { readonly type: "rolling"; readonly ms: number }

export type PolicyCheck =
  | {
    readonly kind: "cap"
    readonly ruleId: string
    /** counter key within the recipient, e.g. rule id + scope id */
    readonly key: string
    readonly max: number
    readonly window: Window
  }
  | {
    readonly kind: "dedup"
    readonly ruleId: string
    /** content key (caller hashes org+sender+text) */
    readonly key: string
    readonly windowMs: number
    readonly mode: "reject" | "return_first"
  }

export interface DecisionRequest {
  readonly recipient: string
  readonly now: number
  readonly messageId: string
  readonly checks: ReadonlyArray<PolicyCheck>
  /**
   * Undo an earlier admission of this same request (same recipient, now, messageId, checks): the message was not
   * accepted after all (its store write failed), so it must not spend caps nor stand as the first of a dedup.
   */
  readonly release?: boolean
  /**
   * A dry run: the decision this request would get now, with nothing counted nor remembered (the operators' "test
   * this message"); the recipient's state is read as for any request. Its messageId is never seen again.
   */
  readonly probe?: boolean
}

export type Decision =
  | { readonly _tag: "Admit" }
  | {
    readonly _tag: "Reject"
    readonly ruleId: string
    readonly reason: "frequency_cap" | "duplicate"
    /** when the cap/dedup frees up, epoch ms */
    readonly retryAt: number
  }
  | { readonly _tag: "Duplicate"; readonly ruleId: string; readonly firstId: string }

export interface DirtyState {
  readonly recipient: string
  /** The serialized state, or null: nothing live is left, delete it. */
  readonly value: string | null
  /** Until every entry in `value` has expired (0 with a null value). */
  readonly ttlMs: number
}

/** A fixed-window counter: the window it counts in (by its end) and how many it admitted there. */
interface Fixed {
  readonly rolling: false
  readonly end: number
  count: number
}

/**
 * A rolling-window counter: the times of the last admitted messages, ascending, never more than the cap's `max` (the
 * oldest beyond it can no longer decide anything), and the window length they were admitted under.
 */
interface Rolling {
  readonly rolling: true
  ms: number
  readonly times: Array<number>
}

type Counter = Fixed | Rolling

/** Content sent to the recipient: when, under which message id, remembered for how long. */
interface Seen {
  readonly at: number
  readonly id: string
  readonly windowMs: number
}

class Recipient {
  readonly id: string
  counters: Map<string, Counter> | undefined = undefined
  seen: Map<string, Seen> | undefined = undefined
  /** No entry expires before this (a lower bound: entries only live longer when updated), so pruning is skipped. */
  expiresAt = Infinity
  constructor(id: string) {
    this.id = id
  }
}

const ADMIT: Decision = { _tag: "Admit" }

/** Dedup entries kept per recipient; beyond, the oldest go (an on-call number sent a different alert every minute). */
export const MAX_SEEN_PER_RECIPIENT = 1000
/** Decisions remembered by message id, so a request delivered twice (a retried actor call) is not counted twice. */
const RECENT_DECISIONS = 2_000

/**
 * The end of the fixed window a request at `now` counts in. Requests reach a bucket slightly out of time order
 * (several nodes' clocks, batching): one stamped just before a boundary that arrives after the counter moved on
 * counts in the counter's (later) window, so a counter never goes back and forth across a boundary.
 */
const fixedEnd = (counter: Counter | undefined, now: number, ms: number): number => {
  const end = now - (now % ms) + ms
  return counter !== undefined && !counter.rolling && counter.end > end && counter.end - ms <= now + ms ? counter.end : end
}

const expiryOf = (counter: Counter): number =>
  counter.rolling ? (counter.times.length === 0 ? -Infinity : (counter.times[counter.times.length - 1] as number) + counter.ms) : counter.end

/** The first index of `times` (ascending) counted in a window of `ms` at `now`, i.e. with a time after now - ms. */
const firstCounted = (times: ReadonlyArray<number>, now: number, ms: number): number => {
  const from = now - ms
  let i = 0
  while (i < times.length && (times[i] as number) <= from) i++
  return i
}

/** Drops every entry expired at `now`; returns when the first of the rest expires (Infinity: none left). */
const prune = (r: Recipient, now: number): number => {
  let next = Infinity
  if (r.counters !== undefined) {
    for (const [key, counter] of r.counters) {
      if (counter.rolling) {
        const first = firstCounted(counter.times, now, counter.ms)
        if (first > 0) counter.times.splice(0, first)
      }
      const expiry = expiryOf(counter)
      if (expiry <= now) r.counters.delete(key)
      else if (expiry < next) next = expiry
    }
    if (r.counters.size === 0) r.counters = undefined
  }
  if (r.seen !== undefined) {
    for (const [key, seen] of r.seen) {
      const expiry = seen.at + seen.windowMs
      if (expiry <= now) r.seen.delete(key)
      else if (expiry < next) next = expiry
    }
    if (r.seen.size === 0) r.seen = undefined
  }
  r.expiresAt = next
  return next
}

/** Serialized: `{"c":[[key,0,end,count] | [key,1,ms,...times]],"d":[[key,at,windowMs,id]]}`, empty parts left out. */
const serialize = (r: Recipient): string => {
  const out: { c?: Array<Array<string | number>>; d?: Array<Array<string | number>> } = {}
  if (r.counters !== undefined) {
    const c: Array<Array<string | number>> = []
    for (const [key, counter] of r.counters) {
      c.push(counter.rolling ? [key, 1, counter.ms, ...counter.times] : [key, 0, counter.end, counter.count])
    }
    out.c = c
  }
  if (r.seen !== undefined) {
    const d: Array<Array<string | number>> = []
    for (const [key, seen] of r.seen) d.push([key, seen.at, seen.windowMs, seen.id])
    out.d = d
  }
  return JSON.stringify(out)
}

const isNumber = (x: unknown): x is number => typeof x === "number" && Number.isFinite(x)

/** The inverse of `serialize`; anything not exactly of its shape gives undefined. */
const deserialize = (id: string, text: string): Recipient | undefined => {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    return undefined
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return undefined
  const { c, d } = parsed as { c?: unknown; d?: unknown }
  const r = new Recipient(id)
  let next = Infinity
  if (c !== undefined) {
    if (!Array.isArray(c)) return undefined
    const counters = new Map<string, Counter>()
    for (const item of c as Array<unknown>) {
      if (!Array.isArray(item) || typeof item[0] !== "string") return undefined
      const values = item.slice(1) as Array<unknown>
      if (!values.every(isNumber)) return undefined
      const [kind, first, ...rest] = values as Array<number>
      let counter: Counter
      if (kind === 0 && first !== undefined && rest.length === 1) {
        counter = { rolling: false, end: first, count: rest[0] as number }
      } else if (kind === 1 && first !== undefined && first > 0) {
        counter = { rolling: true, ms: first, times: rest.sort((a, b) => a - b) }
      } else {
        return undefined
      }
      counters.set(item[0], counter)
      next = Math.min(next, expiryOf(counter))
    }
    if (counters.size > 0) r.counters = counters
  }
  if (d !== undefined) {
    if (!Array.isArray(d)) return undefined
    const seen = new Map<string, Seen>()
    for (const item of d as Array<unknown>) {
      if (
        !Array.isArray(item) || item.length !== 4 || typeof item[0] !== "string" || !isNumber(item[1]) ||
        !isNumber(item[2]) || typeof item[3] !== "string"
      ) return undefined
      seen.set(item[0], { at: item[1], windowMs: item[2], id: item[3] })
      next = Math.min(next, item[1] + item[2])
    }
    if (seen.size > 0) r.seen = seen
  }
  r.expiresAt = next
  return r
}

const empty: ReadonlyArray<number> = []

/** Why the check refuses the message, or undefined when it passes. Changes nothing. */
const refusal = (r: Recipient, check: PolicyCheck, now: number, messageId: string): Decision | undefined => {
  if (check.kind === "dedup") {
    const seen = r.seen?.get(check.key)
    if (seen === undefined || seen.at <= now - check.windowMs) return undefined
    // The same message asked again (a retried call whose first answer was lost) is not a duplicate of itself.
    if (seen.id === messageId) return undefined
    return check.mode === "return_first"
      ? { _tag: "Duplicate", ruleId: check.ruleId, firstId: seen.id }
      : { _tag: "Reject", ruleId: check.ruleId, reason: "duplicate", retryAt: seen.at + check.windowMs }
  }
  const { window, max } = check
  const counter = r.counters?.get(check.key)
  if (window.type === "fixed") {
    const end = fixedEnd(counter, now, window.ms)
    const count = counter !== undefined && !counter.rolling && counter.end === end ? counter.count : 0
    return count < max ? undefined : { _tag: "Reject", ruleId: check.ruleId, reason: "frequency_cap", retryAt: end }
  }
  const times = counter !== undefined && counter.rolling ? counter.times : empty
  if (times.length < max) return undefined
  const first = firstCounted(times, now, window.ms)
  const counted = times.length - first
  if (counted < max) return undefined
  // Free again once all but max - 1 of the counted ones have left the window.
  const freeing = times[first + counted - Math.max(1, max)]
  return {
    _tag: "Reject",
    ruleId: check.ruleId,
    reason: "frequency_cap",
    retryAt: freeing === undefined ? now + window.ms : freeing + window.ms
  }
}

/** Counts the message in a check that passed; returns when the entry it wrote expires. */
const apply = (r: Recipient, check: PolicyCheck, now: number, messageId: string): number => {
  if (check.kind === "dedup") {
    const seen = (r.seen ??= new Map<string, Seen>())
    // Insertion order is age order: a key seen again moves to the end.
    seen.delete(check.key)
    seen.set(check.key, { at: now, id: messageId, windowMs: check.windowMs })
    if (seen.size > MAX_SEEN_PER_RECIPIENT) {
      for (const key of seen.keys()) {
        seen.delete(key)
        if (seen.size <= MAX_SEEN_PER_RECIPIENT) break
      }
    }
    return now + check.windowMs
  }
  const counters = (r.counters ??= new Map<string, Counter>())
  const { window } = check
  const counter = counters.get(check.key)
  if (window.type === "fixed") {
    const end = fixedEnd(counter, now, window.ms)
    if (counter !== undefined && !counter.rolling && counter.end === end) counter.count++
    // A new window (or a rule that changed from rolling or to another window length) counts from zero.
    else counters.set(check.key, { rolling: false, end, count: 1 })
    return end
  }
  let times: Array<number>
  if (counter !== undefined && counter.rolling) {
    counter.ms = window.ms
    times = counter.times
    // Left the window for good, or beyond the last max - 1 (with this one, max are kept).
    const drop = Math.max(firstCounted(times, now, window.ms), times.length - Math.max(0, check.max - 1))
    if (drop > 0) times.splice(0, drop)
  } else {
    times = []
    counters.set(check.key, { rolling: true, ms: window.ms, times })
  }
  // Ascending; requests come in time order, so this is almost always a push.
  let i = times.length
  while (i > 0 && (times[i - 1] as number) > now) i--
  if (i === times.length) times.push(now)
  else times.splice(i, 0, now)
  return (times[times.length - 1] as number) + window.ms
}

/** Takes back what `apply` counted for this request (the same now and message id); false if nothing matched. */
const unapply = (r: Recipient, check: PolicyCheck, now: number, messageId: string): boolean => {
  if (check.kind === "dedup") {
    const seen = r.seen?.get(check.key)
    if (seen === undefined || seen.id !== messageId) return false
    r.seen?.delete(check.key)
    return true
  }
  const counter = r.counters?.get(check.key)
  if (counter === undefined) return false
  if (!counter.rolling) {
    if (check.window.type !== "fixed" || counter.end !== fixedEnd(counter, now, check.window.ms) || counter.count === 0) return false
    counter.count--
    return true
  }
  const at = counter.times.lastIndexOf(now)
  if (at < 0) return false
  counter.times.splice(at, 1)
  return true
}

/**
 * The recipients of one bucket, at most `maxRecipients` of them in memory (least recently used dropped first; one
 * with changes not yet taken by `takeDirty` is kept aside until they are, and comes back from there if decided on
 * again, so the store is never asked for state older than what this bucket holds).
 */
export class BucketState {
  readonly maxRecipients: number
  /** In least-recently-used order (touching re-inserts). */
  private readonly lru = new Map<string, Recipient>()
  /** Dirty recipients evicted from `lru`, until the next takeDirty. */
  private readonly evicted = new Map<string, Recipient>()
  private readonly dirty = new Set<Recipient>()
  /** Recent decisions by message id (insertion order = age), for requests delivered twice. */
  private readonly recent = new Map<string, Decision>()

  constructor(options: { readonly maxRecipients: number }) {
    this.maxRecipients = Math.max(1, options.maxRecipients)
  }

  /** Recipients held in memory. */
  get size(): number {
    return this.lru.size
  }

  /** Recipients of these requests not held in memory (so the caller can load them from the store first), once each. */
  missing(recipients: Iterable<string>): Array<string> {
    const out: Array<string> = []
    let listed: Set<string> | undefined
    for (const recipient of recipients) {
      if (this.lru.has(recipient) || this.evicted.has(recipient)) continue
      if (out.length > 0) {
        listed ??= new Set(out)
        if (listed.has(recipient)) continue
        listed.add(recipient)
      }
      out.push(recipient)
    }
    return out
  }

  /**
   * Puts a recipient's persisted state in memory unless it is already there (insert-if-absent: what was decided here
   * meanwhile is newer; null = no state). Corrupt input = fresh state. Evicts nothing: what the caller loads for a
   * batch stays until the batch is decided, which trims the bucket back to `maxRecipients`.
   */
  load(recipient: string, serialized: string | null): void {
    if (this.lru.has(recipient) || this.evicted.has(recipient)) return
    const r = serialized === null ? undefined : deserialize(recipient, serialized)
    this.lru.set(recipient, r ?? new Recipient(recipient))
  }

  /**
   * Decides the requests in order, atomically each: every check passes → all of them are applied (each cap +1, each
   * dedup key remembers messageId at now) → Admit; the first failing check → Reject/Duplicate and nothing is applied.
   * A recipient not in memory is treated as having no state. Checks of one request are expected to have distinct keys
   * (each is decided on the state before the request).
   */
  decide(requests: ReadonlyArray<DecisionRequest>): Array<Decision> {
    const decisions = new Array<Decision>(requests.length)
    for (let i = 0; i < requests.length; i++) {
      const request = requests[i] as DecisionRequest
      const { checks, now } = request
      if (checks.length === 0) {
        decisions[i] = ADMIT
        continue
      }
      if (request.release === true) {
        decisions[i] = this.release(request)
        continue
      }
      if (request.probe === true) {
        decisions[i] = this.probe(request)
        continue
      }
      const earlier = this.recent.get(request.messageId)
      if (earlier !== undefined) {
        decisions[i] = earlier
        continue
      }
      const r = this.touch(request.recipient)
      if (now >= r.expiresAt) prune(r, now)
      let refused: Decision | undefined
      for (let c = 0; c < checks.length && refused === undefined; c++) {
        refused = refusal(r, checks[c] as PolicyCheck, now, request.messageId)
      }
      const decision = refused ?? ADMIT
      if (refused === undefined) {
        for (let c = 0; c < checks.length; c++) {
          const expiry = apply(r, checks[c] as PolicyCheck, now, request.messageId)
          if (expiry < r.expiresAt) r.expiresAt = expiry
        }
        this.dirty.add(r)
      }
      this.remember(request.messageId, decision)
      decisions[i] = decision
    }
    this.trim()
    return decisions
  }

  /**
   * Forgets what nobody will write anywhere (a bucket without a persistent store): changes are not kept for a
   * `takeDirty` that never comes, and recipients the LRU evicted are let go. Bounds memory to `maxRecipients`.
   */
  discardDirty(): void {
    this.dirty.clear()
    this.evicted.clear()
  }

  /**
   * Dirty recipients since the last call (including dirty ones evicted from the LRU), with their serialized state and
   * a TTL (ms until every entry in it has expired; state with nothing live left serializes as a deletion: value null).
   * Marks them clean.
   */
  takeDirty(now: number): Array<DirtyState> {
    const out: Array<DirtyState> = []
    for (const r of this.dirty) {
      const next = prune(r, now)
      if (next === Infinity) {
        out.push({ recipient: r.id, value: null, ttlMs: 0 })
        continue
      }
      let last = -Infinity
      if (r.counters !== undefined) for (const counter of r.counters.values()) last = Math.max(last, expiryOf(counter))
      if (r.seen !== undefined) for (const seen of r.seen.values()) last = Math.max(last, seen.at + seen.windowMs)
      out.push({ recipient: r.id, value: serialize(r), ttlMs: Math.ceil(last - now) })
    }
    this.dirty.clear()
    this.evicted.clear()
    this.trim()
    return out
  }

  /** The recipient's state, made the most recently used (fresh if not held; back from `evicted` if it was there). */
  private touch(recipient: string): Recipient {
    const held = this.lru.get(recipient)
    if (held !== undefined) {
      this.lru.delete(recipient)
      this.lru.set(recipient, held)
      return held
    }
    const back = this.evicted.get(recipient)
    if (back !== undefined) this.evicted.delete(recipient)
    const r = back ?? new Recipient(recipient)
    this.lru.set(recipient, r)
    return r
  }

  /** The first check that would refuse the request, read from the recipient's state as it is; changes nothing. */
  private probe(request: DecisionRequest): Decision {
    const r = this.lru.get(request.recipient) ?? this.evicted.get(request.recipient)
    if (r === undefined) return ADMIT
    for (const check of request.checks) {
      const refused = refusal(r, check, request.now, request.messageId)
      if (refused !== undefined) return refused
    }
    return ADMIT
  }

  private release(request: DecisionRequest): Decision {
    const earlier = this.recent.get(request.messageId)
    this.recent.delete(request.messageId)
    // Only an admission counted anything; a refusal or an unknown request has nothing to give back.
    if (earlier !== undefined && earlier._tag !== "Admit") return ADMIT
    const r = this.lru.get(request.recipient) ?? this.evicted.get(request.recipient)
    if (r === undefined) return ADMIT
    let changed = false
    for (const check of request.checks) changed = unapply(r, check, request.now, request.messageId) || changed
    if (changed) this.dirty.add(r)
    return ADMIT
  }

  private remember(messageId: string, decision: Decision): void {
    this.recent.set(messageId, decision)
    if (this.recent.size > RECENT_DECISIONS) {
      const oldest = this.recent.keys().next()
      if (oldest.done !== true) this.recent.delete(oldest.value)
    }
  }

  private trim(): void {
    let excess = this.lru.size - this.maxRecipients
    if (excess <= 0) return
    for (const [recipient, r] of this.lru) {
      if (excess-- <= 0) break
      this.lru.delete(recipient)
      if (this.dirty.has(r)) this.evicted.set(recipient, r)
    }
  }
}
