/**
 * GCRA (generic cell rate algorithm): one number per limit, its theoretical arrival time (TAT). A decision of cost c
 * moves every TAT to max(TAT, now) + c · emission and is allowed when, for every limit, that lands at most
 * `capacityMs` ahead of now; otherwise nothing moves. The Redis script in RateLimitStore.ts is this same code in Lua:
 * change both together.
 *
 * Arithmetic runs on whole ticks of 1/4096 ms held in doubles, so sums and comparisons are exact: a burst of 78 at
 * 78/s is 78, not 77 after float drift. The price is rounding an emission to the nearest tick (1/8192 ms at most).
 */

/** One limit: a unit every `emissionMs`, and at most `capacityMs / emissionMs` units at once. */
export interface LimitSpec {
  readonly key: string
  /** The period divided by the limit. */
  readonly emissionMs: number
  /** emissionMs times the burst. */
  readonly capacityMs: number
}

/** `cost` units against every limit, all or nothing. */
export interface Decision {
  readonly limits: ReadonlyArray<LimitSpec>
  readonly cost: number
}

export interface Verdict {
  readonly allowed: boolean
  /** 0 when allowed; else the wait, in whole ms, until the decision would fit every limit that refused it. */
  readonly retryAfterMs: number
  /**
   * The binding limit: for a rejection the one needing the longest wait, for an allowance the one with the fewest
   * units left (the first on a tie); -1 for a decision without limits.
   */
  readonly limitIndex: number
  /** Units left on the binding limit after this decision (before it, for a rejection); Infinity without limits. */
  readonly remaining: number
  /** Whole ms until the binding limit is full again. */
  readonly resetMs: number
}

/** TATs by key, in ticks since `EPOCH_MS`. A `Map<string, number>` is one. */
export interface GcraState {
  get(key: string): number | undefined
  set(key: string, tat: number): unknown
}

/** Ticks count from 2025-01-01: whole ticks stay below 2^53 until 2094. */
export const EPOCH_MS = 1_735_689_600_000
export const TICKS_PER_MS = 4096

/** `limit` units per `periodMs`, `burst` of them at once (at least one). */
export const limitSpec = (
  key: string,
  options: { readonly limit: number; readonly periodMs: number; readonly burst: number }
): LimitSpec => {
  const emissionMs = options.periodMs / options.limit
  return { key, emissionMs, capacityMs: emissionMs * Math.max(1, options.burst) }
}

/** `now` (epoch ms) in ticks. */
export const ticksOf = (now: number): number => Math.floor((now - EPOCH_MS) * TICKS_PER_MS)

/** A limit in ticks: its emission (at least one tick) and its capacity, kept a whole multiple of it when the burst is whole. */
const emissionTicks = (limit: LimitSpec): number => Math.max(1, Math.floor(limit.emissionMs * TICKS_PER_MS + 0.5))
const capacityTicks = (limit: LimitSpec, emission: number): number =>
  Math.floor((limit.capacityMs / limit.emissionMs) * emission + 0.5)

const unlimited: Verdict = { allowed: true, retryAfterMs: 0, limitIndex: -1, remaining: Infinity, resetMs: 0 }

/** Decides at `now` (epoch ms) and, if allowed, writes the new TATs into `state`. */
export const decide = (state: GcraState, decision: Decision, now: number): Verdict => {
  const limits = decision.limits
  const n = limits.length
  if (n === 0) return unlimited
  const t = ticksOf(now)
  const tats = new Array<number>(n)
  const emissions = new Array<number>(n)
  const capacities = new Array<number>(n)
  let worst = -1
  let worstOver = 0
  for (let i = 0; i < n; i++) {
    const limit = limits[i] as LimitSpec
    const emission = emissionTicks(limit)
    const capacity = capacityTicks(limit, emission)
    const stored = state.get(limit.key)
    const tat = stored === undefined || stored < t ? t : stored
    tats[i] = tat
    emissions[i] = emission
    capacities[i] = capacity
    const over = tat + Math.floor(decision.cost * emission + 0.5) - t - capacity
    if (over > worstOver) {
      worst = i
      worstOver = over
    }
  }
  if (worst >= 0) {
    const tat = tats[worst] as number
    return {
      allowed: false,
      retryAfterMs: Math.ceil(worstOver / TICKS_PER_MS),
      limitIndex: worst,
      remaining: Math.max(0, Math.floor(((capacities[worst] as number) - (tat - t)) / (emissions[worst] as number))),
      resetMs: Math.ceil((tat - t) / TICKS_PER_MS)
    }
  }
  let binding = 0
  let least = Infinity
  let bindingTat = t
  for (let i = 0; i < n; i++) {
    const limit = limits[i] as LimitSpec
    const emission = emissions[i] as number
    const tat = (tats[i] as number) + Math.floor(decision.cost * emission + 0.5)
    state.set(limit.key, tat)
    const remaining = Math.floor(((capacities[i] as number) - (tat - t)) / emission)
    if (remaining < least) {
      least = remaining
      binding = i
      bindingTat = tat
    }
  }
  return {
    allowed: true,
    retryAfterMs: 0,
    limitIndex: binding,
    remaining: Math.max(0, least),
    resetMs: Math.max(0, Math.ceil((bindingTat - t) / TICKS_PER_MS))
  }
}

/** Gives back what an allowed decision took (a later layer refused the message): each TAT moves back by its cost. */
export const refund = (state: GcraState, decision: Decision): void => {
  for (const limit of decision.limits) {
    const tat = state.get(limit.key)
    if (tat !== undefined) state.set(limit.key, tat - decision.cost * emissionTicks(limit))
  }
}
