/**
 * Smooth weighted round-robin, as nginx does it (ngx_http_upstream_get_peer): on every pick each eligible member's
 * current value grows by its weight, the member with the largest current value wins, and the winner's current value
 * drops by the total weight of the eligible members. Over any whole cycle each member gets exactly its share, and the
 * picks are interleaved (weights 5:1:1 give a a b a c a a), never a burst of one member.
 */

export interface SwrrMember {
  readonly id: string
  /** Any finite number; non-integers are fine (weights come from live rates). <= 0 takes the member out of rotation. */
  readonly weight: number
}

export interface SwrrEntry {
  readonly id: string
  readonly weight: number
  readonly current: number
}

export interface Swrr {
  /** The next member, or undefined when no member is eligible with a positive weight. */
  readonly pick: (eligible?: (id: string) => boolean) => string | undefined
  /** Up to `n` picks in order (fewer only when nothing is eligible); `eligible` is asked once per member per batch. */
  readonly pickBatch: (n: number, eligible?: (id: string) => boolean) => Array<string>
  /** Replaces the members and weights live; members that stay keep their current value, new ones start at 0. */
  readonly setWeights: (members: ReadonlyArray<SwrrMember>) => void
  /** The members in order with their weight and current value, for inspection. */
  readonly snapshot: () => ReadonlyArray<SwrrEntry>
}

/** Members with an id listed twice keep the later weight, as a Map would. */
export const makeSwrr = (members: ReadonlyArray<SwrrMember>): Swrr => {
  // Parallel arrays: a pick touches only numbers, no per-member objects.
  let ids: Array<string> = []
  let weights = new Float64Array(0)
  let current = new Float64Array(0)
  // Reused by pickBatch so a batch allocates nothing but its answer.
  let mask = new Uint8Array(0)

  const setWeights = (next: ReadonlyArray<SwrrMember>): void => {
    const index = new Map<string, number>()
    for (const m of next) index.set(m.id, m.weight)
    const previous = new Map<string, number>()
    for (let i = 0; i < ids.length; i++) previous.set(ids[i] as string, current[i] as number)
    ids = [...index.keys()]
    weights = new Float64Array(ids.length)
    current = new Float64Array(ids.length)
    mask = new Uint8Array(ids.length)
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i] as string
      const w = index.get(id) as number
      // NaN or Infinity from a broken rate must not poison the sums: treat it as out of rotation.
      weights[i] = Number.isFinite(w) && w > 0 ? w : 0
      current[i] = previous.get(id) ?? 0
    }
  }

  // `ok[i] === 1` marks eligible members when a mask is given; otherwise `eligible` is asked directly.
  const step = (eligible: ((id: string) => boolean) | undefined, ok: Uint8Array | undefined): string | undefined => {
    let total = 0
    let best = -1
    let bestCurrent = 0
    for (let i = 0; i < ids.length; i++) {
      const w = weights[i] as number
      if (w <= 0) continue
      if (ok !== undefined ? ok[i] !== 1 : eligible !== undefined && !eligible(ids[i] as string)) continue
      const c = (current[i] as number) + w
      current[i] = c
      total += w
      // Strictly greater: ties go to the earlier member, as in nginx, so sequences are reproducible.
      if (best === -1 || c > bestCurrent) {
        best = i
        bestCurrent = c
      }
    }
    if (best === -1) return undefined
    current[best] = bestCurrent - total
    return ids[best]
  }

  const pickBatch = (n: number, eligible?: (id: string) => boolean): Array<string> => {
    const out: Array<string> = []
    if (n <= 0) return out
    for (let i = 0; i < ids.length; i++) mask[i] = eligible === undefined || eligible(ids[i] as string) ? 1 : 0
    for (let k = 0; k < n; k++) {
      const id = step(undefined, mask)
      if (id === undefined) break
      out.push(id)
    }
    return out
  }

  const snapshot = (): ReadonlyArray<SwrrEntry> =>
    ids.map((id, i) => ({ id, weight: weights[i] as number, current: current[i] as number }))

  setWeights(members)
  return { pick: (eligible) => step(eligible, undefined), pickBatch, setWeights, snapshot }
}

/**
 * The member `pick` would choose next from these entries (a pool's inspection: weights and current values), without
 * changing anything: the same step, on a copy. Undefined when no member has a positive weight.
 */
export const nextPick = (entries: ReadonlyArray<SwrrEntry>): string | undefined => {
  let best: string | undefined
  let bestCurrent = 0
  for (const e of entries) {
    if (!(Number.isFinite(e.weight) && e.weight > 0)) continue
    const c = e.current + e.weight
    if (best === undefined || c > bestCurrent) {
      best = e.id
      bestCurrent = c
    }
  }
  return best
}
