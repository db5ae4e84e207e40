import { describe, expect, it } from "vitest"
import { makeAimd } from "../../src/routing/Aimd.ts"

const T0 = Date.UTC(2027, 4, 17, 12, 0, 0)

describe("Aimd", () => {
  it("starts at the configured rate and stays there without pushback", () => {
    const aimd = makeAimd({ configuredTps: 100 })
    expect(aimd.current(T0)).toBe(100)
    expect(aimd.current(T0 + 3_600_000)).toBe(100)
    expect(aimd.snapshot(T0)).toEqual({
      configuredTps: 100,
      currentTps: 100,
      minTps: 5,
      cuts: 0,
      lastCutAt: undefined,
      inCooldown: false
    })
  })

  it("a throttling answer halves the rate; one cut per cooldown however many answers arrive", () => {
    const aimd = makeAimd({ configuredTps: 100, increasePerSecond: 0 })
    expect(aimd.onThrottled(T0)).toBe(true)
    expect(aimd.current(T0)).toBe(50)
    // A burst of 0x58 answers to the window already in flight counts once.
    for (let ms = 1; ms < 1000; ms += 37) expect(aimd.onThrottled(T0 + ms)).toBe(false)
    expect(aimd.current(T0 + 999)).toBe(50)
    expect(aimd.snapshot(T0 + 999)).toMatchObject({ cuts: 1, lastCutAt: T0, inCooldown: true })
    // After the cooldown the next answer cuts again.
    expect(aimd.onThrottled(T0 + 1000)).toBe(true)
    expect(aimd.current(T0 + 1000)).toBe(25)
    expect(aimd.snapshot(T0 + 2000)).toMatchObject({ cuts: 2, inCooldown: false })
  })

  it("never cuts below the floor", () => {
    const aimd = makeAimd({ configuredTps: 100, increasePerSecond: 0 })
    for (let i = 0; i < 20; i++) aimd.onThrottled(T0 + i * 1000)
    expect(aimd.current(T0 + 20_000)).toBe(5)
    const custom = makeAimd({ configuredTps: 100, minTps: 30, increasePerSecond: 0 })
    custom.onThrottled(T0)
    custom.onThrottled(T0 + 1000)
    expect(custom.current(T0 + 1000)).toBe(30)
    // The default floor is at least 1 TPS, and never above the configured rate.
    const slow = makeAimd({ configuredTps: 10, increasePerSecond: 0 })
    for (let i = 0; i < 10; i++) slow.onThrottled(T0 + i * 1000)
    expect(slow.current(T0 + 10_000)).toBe(1)
    expect(makeAimd({ configuredTps: 0.5 }).snapshot(T0).minTps).toBe(0.5)
  })

  it("a full queue cuts harder (factor squared), and deepens a throttling cut inside the cooldown", () => {
    const aimd = makeAimd({ configuredTps: 200, increasePerSecond: 0 })
    expect(aimd.onQueueFull(T0)).toBe(true)
    expect(aimd.current(T0)).toBe(50)
    expect(aimd.onQueueFull(T0 + 500)).toBe(false)

    const mixed = makeAimd({ configuredTps: 200, increasePerSecond: 0 })
    mixed.onThrottled(T0)
    expect(mixed.current(T0)).toBe(100)
    // Cut from the rate before the throttling cut, not from the cut rate: 200 × 0.25, not 100 × 0.25.
    expect(mixed.onQueueFull(T0 + 200)).toBe(true)
    expect(mixed.current(T0 + 200)).toBe(50)
    // A lighter signal does not undo a harder cut.
    expect(mixed.onThrottled(T0 + 300)).toBe(false)
    expect(mixed.current(T0 + 300)).toBe(50)
    expect(mixed.snapshot(T0 + 300).cuts).toBe(2)
  })

  it("recovers linearly toward the configured rate and never above it", () => {
    // Default recovery: 5% of the configured rate per second.
    const aimd = makeAimd({ configuredTps: 100 })
    aimd.onThrottled(T0)
    expect(aimd.current(T0)).toBe(50)
    expect(aimd.current(T0 + 1000)).toBeCloseTo(55, 9)
    expect(aimd.current(T0 + 4000)).toBeCloseTo(70, 9)
    expect(aimd.current(T0 + 5500)).toBeCloseTo(77.5, 9)
    expect(aimd.current(T0 + 10_000)).toBe(100)
    expect(aimd.current(T0 + 60_000)).toBe(100)
    // Recovery is continuous: equal steps of time, equal steps of rate.
    const steps = [0, 1, 2, 3].map((s) => aimd.current(T0 + 2000 + s * 250))
    for (let i = 1; i < steps.length; i++) expect(steps[i]! - steps[i - 1]!).toBeCloseTo(1.25, 9)
  })

  it("a cut during recovery starts from the recovered rate", () => {
    const aimd = makeAimd({ configuredTps: 100, increasePerSecond: 10 })
    aimd.onThrottled(T0)
    expect(aimd.current(T0 + 3000)).toBeCloseTo(80, 9)
    aimd.onThrottled(T0 + 3000)
    expect(aimd.current(T0 + 3000)).toBeCloseTo(40, 9)
    expect(aimd.current(T0 + 4000)).toBeCloseTo(50, 9)
  })

  it("a clock stepping back neither raises nor lowers the rate", () => {
    const aimd = makeAimd({ configuredTps: 100 })
    aimd.onThrottled(T0)
    expect(aimd.current(T0 - 5000)).toBe(50)
  })

  it("rejects nonsense options", () => {
    expect(() => makeAimd({ configuredTps: 0 })).toThrow(RangeError)
    expect(() => makeAimd({ configuredTps: 10, decreaseFactor: 1 })).toThrow(RangeError)
    expect(() => makeAimd({ configuredTps: 10, decreaseFactor: 0 })).toThrow(RangeError)
  })
})
