/**
 * The health of one link, derived from what its session reports: binds, submit outcomes and throttling answers.
 * Pure: the caller passes the time (ms). The actor feeds events in and calls `observe` after each, reporting a health
 * event to its pools only when the state changed.
 *
 * States, strongest first: `unbound` (no session), `throttled` (an ESME_RTHROTTLED within the hold time),
 * `degraded` (too many errors or timeouts among recent results), `bound` (healthy).
 */

export type LinkHealthState = "bound" | "unbound" | "degraded" | "throttled"

/** A submit's outcome: true answered OK, false an error that speaks of the link, "timeout" no answer in time. */
export type LinkResult = boolean | "timeout"

export interface LinkHealthOptions {
  /** Results considered: at most this many of the latest; default 100. */
  readonly windowSize?: number
  /** …and none older than this; default 30 000 ms. */
  readonly windowMs?: number
  /** Degraded when (errors + timeouts) / results is above this; default 0.2. */
  readonly errorThreshold?: number
  /** Fewer results than this never make a link degraded; default 20. */
  readonly minSamples?: number
  /** Throttled for this long after the last throttling answer; default 5000 ms. */
  readonly throttleHoldMs?: number
}

export interface LinkHealthSnapshot {
  readonly state: LinkHealthState
  readonly bound: boolean
  /** Results in the window, and how many of them were errors and timeouts. */
  readonly samples: number
  readonly errors: number
  readonly timeouts: number
  readonly throttledUntil: number | undefined
}

export interface LinkHealthObservation {
  readonly state: LinkHealthState
  /** Present only when the state differs from the one the previous `observe` returned. */
  readonly changedFrom?: LinkHealthState
}

export interface LinkHealth {
  /** A session is bound. The results window starts afresh: failures of the previous session say nothing of this one. */
  readonly onBound: (now: number) => void
  readonly onUnbound: (now: number) => void
  /**
   * A submit's outcome. Report per-message rejections (bad destination, bad length) as true or not at all, and
   * ESME_RTHROTTLED through onThrottled: neither means the link is failing.
   */
  readonly onResult: (now: number, ok: LinkResult) => void
  /** An ESME_RTHROTTLED answer: throttled until throttleHoldMs after the last one. */
  readonly onThrottled: (now: number) => void
  readonly state: (now: number) => LinkHealthState
  /** The state now, with the previous one when it changed since the last call (the first call compares to unbound). */
  readonly observe: (now: number) => LinkHealthObservation
  readonly snapshot: (now: number) => LinkHealthSnapshot
}

const OK = 0
const ERROR = 1
const TIMEOUT = 2

// Unchanged observations are shared: the common answer allocates nothing.
const unchanged: Record<LinkHealthState, LinkHealthObservation> = {
  bound: { state: "bound" },
  unbound: { state: "unbound" },
  degraded: { state: "degraded" },
  throttled: { state: "throttled" }
}

export const makeLinkHealth = (options: LinkHealthOptions = {}): LinkHealth => {
  const size = Math.max(1, Math.floor(options.windowSize ?? 100))
  const windowMs = options.windowMs ?? 30_000
  const threshold = options.errorThreshold ?? 0.2
  const minSamples = options.minSamples ?? 20
  const holdMs = options.throttleHoldMs ?? 5000

  // A ring buffer of the latest results: their times and outcomes, oldest at `head`.
  const times = new Float64Array(size)
  const outcomes = new Uint8Array(size)
  let head = 0
  let count = 0
  let errors = 0
  let timeouts = 0

  let bound = false
  let throttledUntil = Number.NEGATIVE_INFINITY
  let reported: LinkHealthState = "unbound"

  const dropOldest = (): void => {
    const outcome = outcomes[head]
    if (outcome === ERROR) errors--
    else if (outcome === TIMEOUT) timeouts--
    head = (head + 1) % size
    count--
  }

  const expire = (now: number): void => {
    const oldest = now - windowMs
    while (count > 0 && (times[head] as number) <= oldest) dropOldest()
  }

  const clear = (): void => {
    head = 0
    count = 0
    errors = 0
    timeouts = 0
  }

  const state = (now: number): LinkHealthState => {
    if (!bound) return "unbound"
    if (now < throttledUntil) return "throttled"
    expire(now)
    if (count >= minSamples && (errors + timeouts) / count > threshold) return "degraded"
    return "bound"
  }

  return {
    onBound: () => {
      bound = true
      clear()
    },
    onUnbound: () => {
      bound = false
    },
    onResult: (now, ok) => {
      expire(now)
      if (count === size) dropOldest()
      const at = (head + count) % size
      times[at] = now
      const outcome = ok === true ? OK : ok === "timeout" ? TIMEOUT : ERROR
      outcomes[at] = outcome
      if (outcome === ERROR) errors++
      else if (outcome === TIMEOUT) timeouts++
      count++
    },
    onThrottled: (now) => {
      throttledUntil = Math.max(throttledUntil, now + holdMs)
    },
    state,
    observe: (now) => {
      const current = state(now)
      if (current === reported) return unchanged[current]
      const previous = reported
      reported = current
      return { state: current, changedFrom: previous }
    },
    snapshot: (now) => ({
      state: state(now),
      bound,
      samples: count,
      errors,
      timeouts,
      throttledUntil: throttledUntil === Number.NEGATIVE_INFINITY ? undefined : throttledUntil
    })
  }
}
