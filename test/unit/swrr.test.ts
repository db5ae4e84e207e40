import { describe, expect, it } from "vitest"
import { makeSwrr, nextPick } from "../../src/routing/Swrr.ts"

const picks = (n: number, pick: () => string | undefined) => Array.from({ length: n }, pick)

const countOf = (seq: ReadonlyArray<string | undefined>) => {
  const counts: Record<string, number> = {}
  for (const id of seq) if (id !== undefined) counts[id] = (counts[id] ?? 0) + 1
  return counts
}

const longestRun = (seq: ReadonlyArray<string | undefined>, id: string) => {
  let best = 0
  let run = 0
  for (const x of seq) {
    run = x === id ? run + 1 : 0
    best = Math.max(best, run)
  }
  return best
}

describe("Swrr", () => {
  it("3:1 is the interleaved cycle a a b a, exact over 4,000 picks, never more than 3 a's in a row", () => {
    const swrr = makeSwrr([{ id: "a", weight: 3 }, { id: "b", weight: 1 }])
    const seq = picks(4000, () => swrr.pick())
    expect(seq.slice(0, 8)).toEqual(["a", "a", "b", "a", "a", "a", "b", "a"])
    expect(countOf(seq)).toEqual({ a: 3000, b: 1000 })
    expect(longestRun(seq, "a")).toBe(3)
    expect(longestRun(seq, "b")).toBe(1)
    // Every window of 4 consecutive picks holds exactly one b: the split is smooth, not bursty.
    for (let i = 0; i + 4 <= seq.length; i++) expect(seq.slice(i, i + 4).filter((x) => x === "b")).toHaveLength(1)
  })

  it("5:1:1 gives nginx's classic sequence a a b a c a a", () => {
    const swrr = makeSwrr([{ id: "a", weight: 5 }, { id: "b", weight: 1 }, { id: "c", weight: 1 }])
    const cycle = ["a", "a", "b", "a", "c", "a", "a"]
    expect(picks(14, () => swrr.pick())).toEqual([...cycle, ...cycle])
    // After whole cycles every current value is back at zero.
    expect(swrr.snapshot()).toEqual([
      { id: "a", weight: 5, current: 0 },
      { id: "b", weight: 1, current: 0 },
      { id: "c", weight: 1, current: 0 }
    ])
  })

  it("non-integer weights split by their ratio", () => {
    const swrr = makeSwrr([{ id: "a", weight: 37.5 }, { id: "b", weight: 12.5 }, { id: "c", weight: 0.25 }])
    const counts = countOf(picks(20100, () => swrr.pick()))
    expect(counts.a).toBeGreaterThanOrEqual(14999)
    expect(counts.a).toBeLessThanOrEqual(15001)
    expect(counts.b).toBeGreaterThanOrEqual(4999)
    expect(counts.b).toBeLessThanOrEqual(5001)
    expect(counts.c).toBeGreaterThanOrEqual(99)
    expect(counts.c).toBeLessThanOrEqual(101)
  })

  it("an unhealthy member is skipped and its traffic goes to the others by their weights", () => {
    const swrr = makeSwrr([{ id: "a", weight: 3 }, { id: "b", weight: 2 }, { id: "c", weight: 1 }])
    const healthy = (id: string) => id !== "b"
    const seq = picks(4000, () => swrr.pick(healthy))
    expect(countOf(seq)).toEqual({ a: 3000, c: 1000 })
    expect(longestRun(seq, "a")).toBeLessThanOrEqual(3)
    // The skipped member did not accumulate current weight while it was out.
    expect(swrr.snapshot().find((e) => e.id === "b")?.current).toBe(0)
    // Back in rotation, it gets its share again at once.
    expect(countOf(picks(6000, () => swrr.pick()))).toEqual({ a: 3000, b: 2000, c: 1000 })
  })

  it("members with weight 0 or less (or not finite) are skipped", () => {
    const swrr = makeSwrr([{ id: "a", weight: 0 }, { id: "b", weight: -2 }, { id: "c", weight: Number.NaN }, { id: "d", weight: 1 }])
    expect(countOf(picks(10, () => swrr.pick()))).toEqual({ d: 10 })
    expect(swrr.snapshot().map((e) => e.current)).toEqual([0, 0, 0, 0])
  })

  it("nothing to pick: no members, none eligible, all weights zero", () => {
    expect(makeSwrr([]).pick()).toBeUndefined()
    expect(makeSwrr([]).pickBatch(5)).toEqual([])
    expect(makeSwrr([{ id: "a", weight: 1 }]).pick(() => false)).toBeUndefined()
    expect(makeSwrr([{ id: "a", weight: 0 }]).pick()).toBeUndefined()
  })

  it("pickBatch continues the same sequence as pick and asks eligibility once per member", () => {
    const one = makeSwrr([{ id: "a", weight: 5 }, { id: "b", weight: 1 }, { id: "c", weight: 1 }])
    const batch = makeSwrr([{ id: "a", weight: 5 }, { id: "b", weight: 1 }, { id: "c", weight: 1 }])
    const expected = picks(50, () => one.pick())
    expect([...batch.pickBatch(7), ...batch.pickBatch(0), ...batch.pickBatch(43)]).toEqual(expected)

    let asked = 0
    const notC = (id: string) => {
      asked++
      return id !== "c"
    }
    expect(countOf(batch.pickBatch(600, notC))).toEqual({ a: 500, b: 100 })
    expect(asked).toBe(3)
  })

  it("a live weight change takes effect and keeps the current values of members that stay", () => {
    const swrr = makeSwrr([{ id: "a", weight: 3 }, { id: "b", weight: 1 }])
    swrr.pick()
    const before = swrr.snapshot()
    swrr.setWeights([{ id: "b", weight: 1 }, { id: "a", weight: 1 }, { id: "c", weight: 2 }])
    expect(swrr.snapshot()).toEqual([
      { id: "b", weight: 1, current: before[1]!.current },
      { id: "a", weight: 1, current: before[0]!.current },
      { id: "c", weight: 2, current: 0 }
    ])
    const seq = picks(4000, () => swrr.pick())
    const counts = countOf(seq)
    // 1:1:2 from now on (± the one pick carried over in the current values).
    expect(Math.abs(counts.a! - 1000)).toBeLessThanOrEqual(1)
    expect(Math.abs(counts.b! - 1000)).toBeLessThanOrEqual(1)
    expect(Math.abs(counts.c! - 2000)).toBeLessThanOrEqual(1)

    swrr.setWeights([{ id: "a", weight: 1 }])
    expect(countOf(picks(10, () => swrr.pick()))).toEqual({ a: 10 })
    expect(swrr.snapshot().map((e) => e.id)).toEqual(["a"])
  })

  it("an id listed twice keeps the later weight", () => {
    const swrr = makeSwrr([{ id: "a", weight: 1 }, { id: "b", weight: 1 }, { id: "a", weight: 3 }])
    expect(swrr.snapshot().map((e) => [e.id, e.weight])).toEqual([["a", 3], ["b", 1]])
  })
})

describe("nextPick", () => {
  it("names the member pick would choose, from an inspection, without changing anything", () => {
    const swrr = makeSwrr([{ id: "a", weight: 5 }, { id: "b", weight: 1 }, { id: "c", weight: 1 }])
    for (let i = 0; i < 20; i++) {
      const predicted = nextPick(swrr.snapshot())
      expect(swrr.pick()).toBe(predicted)
    }
    expect(nextPick([{ id: "a", weight: 0, current: 5 }, { id: "b", weight: -1, current: 9 }])).toBeUndefined()
  })
})
