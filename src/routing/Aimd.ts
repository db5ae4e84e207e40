/**
 * The send rate of one link under carrier pushback: additive increase, multiplicative decrease (as TCP does).
 * ESME_RTHROTTLED cuts the rate by a factor, ESME_RMSGQFUL by that factor squared; afterwards the rate climbs back
 * linearly toward the configured TPS. Pure: the caller passes the time (ms), and the rate is computed lazily from the
 * time since the last cut, so there is no timer to run.
 */

export interface AimdOptions {
  /** The contracted rate: the ceiling the link recovers to. */
  readonly configuredTps: number
  /** The floor of a cut; default max(1, 5% of configured), never above configured. */
  readonly minTps?: number
  /** Multiplier per throttling answer, in (0, 1); default 0.5. A full queue applies it twice. */
  readonly decreaseFactor?: number
  /** Recovery speed in TPS per second; default 5% of configured (from a halving back to full in 10 s). */
  readonly increasePerSecond?: number
  /** Throttling answers within this long of the last cut count as the same event; default 1000 ms. */
  readonly cooldownMs?: number
}

export interface AimdSnapshot {
  readonly configuredTps: number
  readonly currentTps: number
  readonly minTps: number
  /** Cuts applied so far (signals absorbed by the cooldown are not counted). */
  readonly cuts: number
  readonly lastCutAt: number | undefined
  /** True while a further throttling answer would be absorbed. */
  readonly inCooldown: boolean
}

export interface Aimd {
  /** An ESME_RTHROTTLED (0x58) answer; true when it cut the rate, false when the cooldown absorbed it. */
  readonly onThrottled: (now: number) => boolean
  /** An ESME_RMSGQFUL (0x14) answer: a harder cut (factor²); within the cooldown it deepens a lighter cut. */
  readonly onQueueFull: (now: number) => boolean
  /** The rate to send at now, in messages per second: between minTps and configuredTps. */
  readonly current: (now: number) => number
  readonly snapshot: (now: number) => AimdSnapshot
}

export const makeAimd = (options: AimdOptions): Aimd => {
  const configured = options.configuredTps
  if (!(Number.isFinite(configured) && configured > 0)) throw new RangeError(`configuredTps must be > 0, got ${configured}`)
  const factor = options.decreaseFactor ?? 0.5
  if (!(factor > 0 && factor < 1)) throw new RangeError(`decreaseFactor must be in (0, 1), got ${factor}`)
  const minTps = Math.min(configured, Math.max(Number.MIN_VALUE, options.minTps ?? Math.max(1, configured * 0.05)))
  const perMs = Math.max(0, options.increasePerSecond ?? configured * 0.05) / 1000
  const cooldownMs = Math.max(0, options.cooldownMs ?? 1000)

  // The rate is `base` at `cutAt` and grows linearly from there; -Infinity: never cut, so at the ceiling.
  let base = configured
  let cutAt = Number.NEGATIVE_INFINITY
  // The rate just before the last cut, so a harder signal inside the cooldown cuts from the same starting point.
  let before = configured
  let cuts = 0

  const current = (now: number): number => {
    if (cutAt === Number.NEGATIVE_INFINITY) return configured
    // A clock stepping back must not raise or lower the rate.
    const elapsed = Math.max(0, now - cutAt)
    return Math.min(configured, base + perMs * elapsed)
  }

  const cut = (now: number, by: number): boolean => {
    if (now - cutAt < cooldownMs) {
      const deeper = Math.max(minTps, before * by)
      if (deeper >= current(now)) return false
      base = deeper
      cutAt = now
      cuts++
      return true
    }
    before = current(now)
    base = Math.max(minTps, before * by)
    cutAt = now
    cuts++
    return true
  }

  return {
    onThrottled: (now) => cut(now, factor),
    onQueueFull: (now) => cut(now, factor * factor),
    current,
    snapshot: (now) => ({
      configuredTps: configured,
      currentTps: current(now),
      minTps,
      cuts,
      lastCutAt: cutAt === Number.NEGATIVE_INFINITY ? undefined : cutAt,
      inCooldown: now - cutAt < cooldownMs
    })
  }
}
