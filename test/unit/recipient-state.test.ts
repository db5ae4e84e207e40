import { describe, expect, it } from "vitest"
import { BucketState } from "../../src/policy/RecipientState.ts"
import type { Decision, DecisionRequest, PolicyCheck } from "../../src/policy/RecipientState.ts"

const SECOND = 1000
const MINUTE = 60_000
const HOUR = 60 * MINUTE
const DAY = 24 * HOUR
/** A UTC minute boundary well after the epoch, as Date.now() gives them. */
const T0 = Date.UTC(2027, 4, 17, 12, 0, 0)

const fixed = (key: string, max: number, ms: number): PolicyCheck => ({ kind: "cap", ruleId: key, key, max, window: { type: "fixed", ms } })
const rolling = (key: string, max: number, ms: number): PolicyCheck => ({ kind: "cap", ruleId: key, key, max, window: { type: "rolling", ms } })
const dedup = (key: string, windowMs: number, mode: "reject" | "return_first" = "reject"): PolicyCheck => ({
  kind: "dedup",
  ruleId: `rule-${key}`,
  key,
  windowMs,
  mode
})

let ids = 0
const request = (recipient: string, now: number, checks: ReadonlyArray<PolicyCheck>, messageId = `m${++ids}`): DecisionRequest => ({
  recipient,
  now,
  messageId,
  checks
})

const one = (state: BucketState, recipient: string, now: number, checks: ReadonlyArray<PolicyCheck>, messageId?: string): Decision =>
  state.decide([request(recipient, now, checks, messageId)])[0]!

const admitted = (state: BucketState, recipient: string, now: number, checks: ReadonlyArray<PolicyCheck>, times: number) => {
  let n = 0
  for (let i = 0; i < times; i++) if (one(state, recipient, now, checks)._tag === "Admit") n++
  return n
}

const capped = (ruleId: string, retryAt: number): Decision => ({ _tag: "Reject", ruleId, reason: "frequency_cap", retryAt })

const fresh = (maxRecipients = 1000) => new BucketState({ maxRecipients })

describe("BucketState: fixed windows", () => {
  it("count in windows aligned to multiples of their length since the epoch, freeing up at the window's end", () => {
    const state = fresh()
    const cap = [fixed("min", 3, MINUTE)]
    expect(admitted(state, "a", T0 + 10 * SECOND, cap, 5)).toBe(3)
    expect(one(state, "a", T0 + 10 * SECOND, cap)).toEqual(capped("min", T0 + MINUTE))
    // The last millisecond of the minute is still in it; the next minute starts from zero, whenever the first came.
    expect(one(state, "a", T0 + MINUTE - 1, cap)).toEqual(capped("min", T0 + MINUTE))
    expect(admitted(state, "a", T0 + MINUTE, cap, 5)).toBe(3)
    expect(one(state, "a", T0 + 2 * MINUTE - 1, cap)).toEqual(capped("min", T0 + 2 * MINUTE))
  })

  it("a day is a UTC day and an hour a UTC hour", () => {
    const state = fresh()
    const day = [fixed("day", 2, DAY)]
    const lateEvening = Date.UTC(2027, 4, 17, 23, 59, 59, 999)
    expect(admitted(state, "a", Date.UTC(2027, 4, 17, 0, 0, 0), day, 1)).toBe(1)
    expect(admitted(state, "a", lateEvening, day, 2)).toBe(1)
    expect(one(state, "a", lateEvening, day)).toEqual(capped("day", Date.UTC(2027, 4, 18)))
    expect(admitted(state, "a", Date.UTC(2027, 4, 18), day, 3)).toBe(2)

    const hour = [fixed("hour", 1, HOUR)]
    expect(admitted(state, "b", Date.UTC(2027, 4, 17, 12, 59, 30), hour, 2)).toBe(1)
    expect(one(state, "b", Date.UTC(2027, 4, 17, 12, 59, 59, 999), hour)).toEqual(capped("hour", Date.UTC(2027, 4, 17, 13)))
    expect(admitted(state, "b", Date.UTC(2027, 4, 17, 13, 0, 0), hour, 2)).toBe(1)
  })

  it("a cap of 0 refuses everything", () => {
    const state = fresh()
    expect(one(state, "a", T0 + 5, [fixed("none", 0, MINUTE)])).toEqual(capped("none", T0 + MINUTE))
    expect(one(state, "a", T0 + 5, [rolling("none", 0, MINUTE)])).toEqual(capped("none", T0 + 5 + MINUTE))
  })
})

describe("BucketState: rolling windows", () => {
  it("admit while fewer than max admitted are within (now - ms, now]; free when the oldest counted leaves", () => {
    const state = fresh()
    const cap = [rolling("r", 3, 10 * SECOND)]
    expect(one(state, "a", T0, cap)._tag).toBe("Admit")
    expect(one(state, "a", T0 + 1000, cap)._tag).toBe("Admit")
    expect(one(state, "a", T0 + 2000, cap)._tag).toBe("Admit")
    expect(one(state, "a", T0 + 2000, cap)).toEqual(capped("r", T0 + 10_000))
    expect(one(state, "a", T0 + 9999, cap)).toEqual(capped("r", T0 + 10_000))
    // T0 is out of (now - 10 s, now] at T0 + 10 s exactly.
    expect(one(state, "a", T0 + 10_000, cap)._tag).toBe("Admit")
    expect(one(state, "a", T0 + 10_000, cap)).toEqual(capped("r", T0 + 11_000))
    expect(one(state, "a", T0 + 10_999, cap)).toEqual(capped("r", T0 + 11_000))
    expect(one(state, "a", T0 + 11_000, cap)._tag).toBe("Admit")
    // Now T0 + 2 s, + 10 s, + 11 s are counted.
    expect(one(state, "a", T0 + 11_500, cap)).toEqual(capped("r", T0 + 12_000))
    // Long idle: all free again.
    expect(admitted(state, "a", T0 + 60_000, cap, 5)).toBe(3)
  })

  it("is not aligned: a burst straddling a fixed boundary still counts together", () => {
    const state = fresh()
    const cap = [rolling("r", 2, MINUTE)]
    expect(admitted(state, "a", T0 + MINUTE - 1, cap, 1)).toBe(1)
    expect(admitted(state, "a", T0 + MINUTE, cap, 1)).toBe(1)
    expect(one(state, "a", T0 + MINUTE + 30 * SECOND, cap)).toEqual(capped("r", T0 + 2 * MINUTE - 1))
    expect(admitted(state, "a", T0 + 2 * MINUTE - 1, cap, 2)).toBe(1)
  })

  it("keeps no more than max timestamps per counter", () => {
    const state = fresh()
    const cap = [rolling("r", 4, DAY)]
    for (let i = 0; i < 100; i++) one(state, "a", T0 + i * HOUR, cap)
    const [dirty] = state.takeDirty(T0 + 100 * HOUR)
    const counters = (JSON.parse(dirty!.value!) as { c: Array<Array<unknown>> }).c
    expect(counters).toHaveLength(1)
    // key, kind, ms, then the timestamps.
    expect(counters[0]!.length - 3).toBeLessThanOrEqual(4)
  })
})

describe("BucketState: dedup", () => {
  it("reject mode refuses the same content within the window until first.at + windowMs", () => {
    const state = fresh()
    const check = [dedup("hello", 30 * SECOND)]
    expect(one(state, "a", T0, check, "first")._tag).toBe("Admit")
    const refused: Decision = { _tag: "Reject", ruleId: "rule-hello", reason: "duplicate", retryAt: T0 + 30 * SECOND }
    expect(one(state, "a", T0 + 1, check)).toEqual(refused)
    expect(one(state, "a", T0 + 30 * SECOND - 1, check)).toEqual(refused)
    // Another recipient, other content: not duplicates.
    expect(one(state, "b", T0 + 1, check)._tag).toBe("Admit")
    expect(one(state, "a", T0 + 1, [dedup("other", 30 * SECOND)])._tag).toBe("Admit")
    // Expired: admitted, and remembered from then on.
    expect(one(state, "a", T0 + 30 * SECOND, check, "second")._tag).toBe("Admit")
    expect(one(state, "a", T0 + 31 * SECOND, check)).toEqual({ ...refused, retryAt: T0 + 60 * SECOND })
  })

  it("return_first mode answers with the first message's id, which a duplicate does not replace", () => {
    const state = fresh()
    const check = [dedup("otp", MINUTE, "return_first")]
    expect(one(state, "a", T0, check, "first")._tag).toBe("Admit")
    expect(one(state, "a", T0 + 10, check, "dup1")).toEqual({ _tag: "Duplicate", ruleId: "rule-otp", firstId: "first" })
    expect(one(state, "a", T0 + MINUTE - 1, check, "dup2")).toEqual({ _tag: "Duplicate", ruleId: "rule-otp", firstId: "first" })
    expect(one(state, "a", T0 + MINUTE, check, "later")._tag).toBe("Admit")
    expect(one(state, "a", T0 + MINUTE + 1, check)).toEqual({ _tag: "Duplicate", ruleId: "rule-otp", firstId: "later" })
  })
})

describe("BucketState: atomic decisions", () => {
  it("a refused request applies none of its checks; the first failing check is the one reported", () => {
    const state = fresh()
    const wide = fixed("wide", 5, HOUR)
    const narrow = fixed("narrow", 1, HOUR)
    expect(one(state, "a", T0, [wide, narrow])._tag).toBe("Admit")
    expect(one(state, "a", T0, [wide, narrow])).toEqual(capped("narrow", T0 + HOUR))
    expect(one(state, "a", T0, [wide, narrow])).toEqual(capped("narrow", T0 + HOUR))
    // The two refusals did not spend `wide`: 4 of 5 left.
    expect(admitted(state, "a", T0, [wide], 10)).toBe(4)
    // Both full: the first in the list is reported.
    expect(one(state, "a", T0, [narrow, wide])).toEqual(capped("narrow", T0 + HOUR))
    expect(one(state, "a", T0, [wide, narrow])).toEqual(capped("wide", T0 + HOUR))
  })

  it("a cap refusal does not remember the content; a duplicate does not count against the cap", () => {
    const state = fresh()
    const cap = rolling("cap", 1, MINUTE)
    expect(one(state, "a", T0, [cap])._tag).toBe("Admit")
    // Refused by the cap: the content is not remembered, so after the cap frees it is not a duplicate.
    expect(one(state, "a", T0 + 1, [dedup("x", HOUR), cap])).toEqual(capped("cap", T0 + MINUTE))
    expect(one(state, "a", T0 + MINUTE, [dedup("x", HOUR), cap], "x1")._tag).toBe("Admit")
    // A duplicate is not counted: at T0 + 2 min the cap is free again for other content.
    expect(one(state, "a", T0 + MINUTE + 1, [dedup("x", HOUR, "return_first"), cap])).toEqual({
      _tag: "Duplicate",
      ruleId: "rule-x",
      firstId: "x1"
    })
    expect(one(state, "a", T0 + 2 * MINUTE, [dedup("y", HOUR), cap])._tag).toBe("Admit")
  })

  it("the requests of one call are decided in order and see each other", () => {
    const state = fresh()
    const cap = fixed("c", 2, MINUTE)
    const decisions = state.decide([
      request("a", T0, [cap]),
      request("b", T0, [cap]),
      request("a", T0, [cap, dedup("k", MINUTE, "return_first")], "ak"),
      request("a", T0, []),
      request("a", T0, [cap]),
      request("b", T0, [dedup("k", MINUTE, "return_first")], "bk"),
      request("b", T0, [dedup("k", MINUTE, "return_first")])
    ])
    expect(decisions).toEqual([
      { _tag: "Admit" },
      { _tag: "Admit" },
      { _tag: "Admit" },
      { _tag: "Admit" },
      capped("c", T0 + MINUTE),
      { _tag: "Admit" },
      { _tag: "Duplicate", ruleId: "rule-k", firstId: "bk" }
    ])
    expect(state.decide([])).toEqual([])
  })

  it("a request without checks is admitted without touching the bucket", () => {
    const state = fresh()
    expect(one(state, "a", T0, [])).toEqual({ _tag: "Admit" })
    expect(state.size).toBe(0)
    expect(state.takeDirty(T0)).toEqual([])
  })
})

describe("BucketState: memory and persistence", () => {
  it("missing lists recipients not held, once each; load is insert-if-absent", () => {
    const state = fresh()
    one(state, "a", T0, [fixed("c", 2, MINUTE)])
    expect(state.missing(["a", "b", "c", "b", "a", "c"])).toEqual(["b", "c"])
    // What was decided here is newer than anything stored: a late load changes nothing.
    const other = fresh()
    one(other, "a", T0, [fixed("c", 2, MINUTE)])
    one(other, "a", T0, [fixed("c", 2, MINUTE)])
    state.load("a", other.takeDirty(T0)[0]!.value)
    expect(admitted(state, "a", T0, [fixed("c", 2, MINUTE)], 3)).toBe(1)
    // Loaded with null: held (no second load), empty.
    state.load("b", null)
    expect(state.missing(["b"])).toEqual([])
    expect(admitted(state, "b", T0, [fixed("c", 2, MINUTE)], 3)).toBe(2)
  })

  it("serialize then load gives the same decisions", () => {
    const checks = (i: number) => [
      dedup(`text${i % 7}`, 45 * SECOND, i % 2 === 0 ? "reject" : "return_first"),
      fixed("min", 5, MINUTE),
      rolling("roll", 3, 20 * SECOND),
      fixed("day", 40, DAY)
    ]
    const original = fresh()
    let now = T0 - 30 * SECOND
    for (let i = 0; i < 60; i++, now += 1700) one(original, "a", now, checks(i), `m${i}`)
    const dirty = original.takeDirty(now)
    expect(dirty).toHaveLength(1)
    const copy = fresh()
    expect(copy.missing(["a"])).toEqual(["a"])
    copy.load("a", dirty[0]!.value)
    expect(copy.missing(["a"])).toEqual([])
    for (let i = 60; i < 200; i++, now += 900) {
      expect(one(copy, "a", now, checks(i), `m${i}`)).toEqual(one(original, "a", now, checks(i), `m${i}`))
    }
    // And the copy's state serializes the same as the original's.
    expect(copy.takeDirty(now)).toEqual(original.takeDirty(now))
  })

  it("corrupt persisted state loads as fresh state", () => {
    for (const corrupt of ["not json", "[1,2]", "null", "{\"c\":[[\"c\",7]]}", "{\"d\":[[\"k\",\"x\",1,\"id\"]]}", "{\"c\":5}"]) {
      const state = fresh()
      state.load("a", corrupt)
      expect(state.missing(["a"])).toEqual([])
      expect(admitted(state, "a", T0, [fixed("c", 2, MINUTE)], 3)).toBe(2)
    }
  })

  it("takeDirty hands each changed recipient once, with a TTL until all of it expires; refusals change nothing", () => {
    const state = fresh()
    one(state, "a", T0 + 10 * SECOND, [fixed("min", 1, MINUTE), dedup("k", 5 * MINUTE)])
    one(state, "b", T0 + 10 * SECOND, [rolling("r", 2, 2 * MINUTE)])
    one(state, "b", T0 + 20 * SECOND, [rolling("r", 2, 2 * MINUTE)])
    const dirty = state.takeDirty(T0 + 30 * SECOND)
    expect(dirty.map((d) => [d.recipient, d.ttlMs])).toEqual([
      // The dedup entry lives longest: until T0 + 10 s + 5 min.
      ["a", 5 * MINUTE - 20 * SECOND],
      // The newest timestamp plus the window.
      ["b", 2 * MINUTE - 10 * SECOND]
    ])
    expect(state.takeDirty(T0 + 30 * SECOND)).toEqual([])
    // Refused: nothing to write.
    expect(one(state, "a", T0 + 40 * SECOND, [fixed("min", 1, MINUTE)])._tag).toBe("Reject")
    expect(state.takeDirty(T0 + 40 * SECOND)).toEqual([])
  })

  it("expired entries are left out when serializing, and state with nothing live left is a deletion", () => {
    const state = fresh()
    one(state, "a", T0, [fixed("minute-cap", 1, MINUTE), dedup("hour-dedup", HOUR)])
    one(state, "a", T0, [rolling("rolling-cap", 5, 10 * SECOND)])
    one(state, "a", T0 + 5 * SECOND, [rolling("rolling-cap", 5, 10 * SECOND)])
    const [partly] = state.takeDirty(T0 + MINUTE)
    expect(partly!.value).toContain("hour-dedup")
    expect(partly!.value).not.toContain("minute-cap")
    expect(partly!.value).not.toContain("rolling-cap")
    expect(partly!.ttlMs).toBe(HOUR - MINUTE)

    one(state, "b", T0, [fixed("minute-cap", 1, MINUTE)])
    expect(state.takeDirty(T0 + MINUTE)).toEqual([{ recipient: "b", value: null, ttlMs: 0 }])
    // Only old timestamps of a rolling counter are dropped.
    one(state, "c", T0, [rolling("r", 5, 10 * SECOND)])
    one(state, "c", T0 + 8 * SECOND, [rolling("r", 5, 10 * SECOND)])
    const [c] = state.takeDirty(T0 + 10 * SECOND)
    expect(JSON.parse(c!.value!)).toEqual({ c: [["r", 1, 10 * SECOND, T0 + 8 * SECOND]] })
    expect(c!.ttlMs).toBe(8 * SECOND)
  })

  it("entries expire on touch too: a recipient keeps no stale entries in memory", () => {
    const state = fresh()
    const checks = (i: number) => [dedup(`k${i}`, MINUTE), fixed(`c${i}`, 1, MINUTE)]
    for (let i = 0; i < 50; i++) one(state, "a", T0 + i * MINUTE, checks(i))
    const [a] = state.takeDirty(T0 + 50 * MINUTE - 1)
    expect(JSON.parse(a!.value!)).toEqual({
      c: [["c49", 0, T0 + 50 * MINUTE, 1]],
      d: [["k49", T0 + 49 * MINUTE, MINUTE, expect.any(String)]]
    })
  })

  it("the LRU holds maxRecipients; an evicted dirty recipient is kept for takeDirty and comes back if touched", () => {
    const state = fresh(2)
    const cap = [fixed("c", 3, HOUR)]
    one(state, "a", T0, cap)
    one(state, "b", T0, cap)
    one(state, "a", T0, cap)
    // a was used last: b goes.
    one(state, "c", T0, cap)
    expect(state.size).toBe(2)
    // Not asked for from the store: its newest state is still here, unwritten (and a load would not replace it).
    expect(state.missing(["a", "b", "c"])).toEqual([])
    state.load("b", null)
    // Touched again: carries on with its count (1 of 3 spent).
    expect(admitted(state, "b", T0, cap, 5)).toBe(2)
    expect(state.size).toBe(2)
    const dirty = state.takeDirty(T0 + 1)
    expect(dirty.map((d) => d.recipient).sort()).toEqual(["a", "b", "c"])
    expect(dirty.every((d) => d.value !== null && d.ttlMs === HOUR - 1)).toBe(true)
    // Written out: the one not held is left to the store now.
    expect(state.missing(["a", "b", "c"])).toEqual(["a"])
    // A clean recipient evicted is simply dropped.
    one(state, "d", T0, [])
    state.load("d", null)
    state.decide([])
    expect(state.size).toBe(2)
    expect(state.takeDirty(T0 + 2)).toEqual([])
  })

  it("what a batch loads stays until that batch is decided, even beyond maxRecipients", () => {
    const store = fresh()
    for (const r of ["a", "b", "c", "d"]) one(store, r, T0, [fixed("c", 1, HOUR)])
    const stored = new Map(store.takeDirty(T0).map((d) => [d.recipient, d.value]))
    const state = fresh(2)
    const requests = ["a", "b", "c", "d"].map((r) => request(r, T0, [fixed("c", 1, HOUR)]))
    for (const r of state.missing(requests.map((q) => q.recipient))) state.load(r, stored.get(r) ?? null)
    expect(state.decide(requests).map((d) => d._tag)).toEqual(["Reject", "Reject", "Reject", "Reject"])
    expect(state.size).toBe(2)
  })
})

/**
 * The semantics written the slow, obvious way: every admitted message of every recipient kept, decisions counted from
 * them. BucketState, with its LRU, eviction, serialization and write-behind in between, must decide exactly the same.
 */
class Model {
  private readonly admitted = new Map<string, Array<{ readonly at: number; readonly id: string; readonly checks: ReadonlyArray<PolicyCheck> }>>()

  decide(request: DecisionRequest): Decision {
    const history = this.admitted.get(request.recipient) ?? []
    const { now } = request
    for (const check of request.checks) {
      const withKey = history.filter((h) => h.checks.some((c) => c.kind === check.kind && c.key === check.key))
      if (check.kind === "dedup") {
        const first = withKey.at(-1)
        if (first !== undefined && first.at > now - check.windowMs) {
          return check.mode === "reject"
            ? { _tag: "Reject", ruleId: check.ruleId, reason: "duplicate", retryAt: first.at + check.windowMs }
            : { _tag: "Duplicate", ruleId: check.ruleId, firstId: first.id }
        }
      } else if (check.window.type === "fixed") {
        const start = Math.floor(now / check.window.ms) * check.window.ms
        const count = withKey.filter((h) => h.at >= start && h.at < start + check.window.ms).length
        if (count >= check.max) return capped(check.ruleId, start + check.window.ms)
      } else {
        const counted = withKey.filter((h) => h.at > now - check.window.ms && h.at <= now).map((h) => h.at).sort((a, b) => a - b)
        if (counted.length >= check.max) return capped(check.ruleId, counted[counted.length - check.max]! + check.window.ms)
      }
    }
    history.push({ at: now, id: request.messageId, checks: request.checks })
    this.admitted.set(request.recipient, history)
    return { _tag: "Admit" }
  }
}

describe("BucketState against a model", () => {
  it("decides exactly as the model through LRU evictions, write-behind and reloads", () => {
    let seed = 42
    const random = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648
      return seed % n
    }
    const pool: ReadonlyArray<PolicyCheck> = [
      fixed("min", 4, MINUTE),
      fixed("hour", 12, HOUR),
      rolling("r10s", 2, 10 * SECOND),
      rolling("r5m", 6, 5 * MINUTE),
      dedup("t1", 90 * SECOND),
      dedup("t2", 20 * SECOND, "return_first"),
      dedup("t3", 10 * MINUTE, "return_first")
    ]
    const model = new Model()
    const state = new BucketState({ maxRecipients: 5 })
    /** The store: serialized state with its expiry, as Redis would hold it. */
    const store = new Map<string, { readonly value: string; readonly expiresAt: number }>()
    let now = T0 - 7 * MINUTE
    const tags = new Map<string, number>()
    for (let step = 0; step < 3000; step++) {
      now += random(4000)
      const batch = Array.from({ length: 1 + random(4) }, () =>
        request(`r${random(12)}`, now, pool.filter(() => random(3) === 0)))
      for (const recipient of state.missing(batch.map((r) => r.recipient))) {
        const stored = store.get(recipient)
        state.load(recipient, stored !== undefined && stored.expiresAt > now ? stored.value : null)
      }
      const decisions = state.decide(batch)
      expect(decisions).toEqual(batch.map((r) => model.decide(r)))
      for (const d of decisions) tags.set(d._tag, (tags.get(d._tag) ?? 0) + 1)
      expect(state.size).toBeLessThanOrEqual(5)
      if (random(5) === 0) {
        for (const d of state.takeDirty(now)) {
          if (d.value === null) store.delete(d.recipient)
          else store.set(d.recipient, { value: d.value, expiresAt: now + d.ttlMs })
        }
      }
    }
    // Every outcome happened, plenty of times.
    expect(tags.get("Admit")).toBeGreaterThan(1000)
    expect(tags.get("Reject")).toBeGreaterThan(300)
    expect(tags.get("Duplicate")).toBeGreaterThan(100)
  })
})

describe("BucketState: requests out of order, delivered twice, released", () => {
  it("a request stamped just before a boundary that arrives after the counter moved on counts in the later window", () => {
    const state = fresh()
    const cap = [fixed("min", 1, MINUTE)]
    // Two nodes' clocks 500 ms apart around the minute: the counter never flips back to the earlier window.
    expect(one(state, "a", T0 + MINUTE + 200, cap)._tag).toBe("Admit")
    expect(one(state, "a", T0 + MINUTE - 300, cap)).toEqual(capped("min", T0 + 2 * MINUTE))
    expect(one(state, "a", T0 + MINUTE + 250, cap)._tag).toBe("Reject")
    expect(one(state, "a", T0 + MINUTE - 100, cap)._tag).toBe("Reject")
  })

  it("the same message asked twice gets the first answer and is counted once; it is never a duplicate of itself", () => {
    const state = fresh()
    const checks = [dedup("otp", MINUTE, "return_first"), fixed("cap", 2, HOUR)]
    expect(one(state, "a", T0, checks, "m-1")._tag).toBe("Admit")
    expect(one(state, "a", T0 + 10, checks, "m-1")._tag).toBe("Admit")
    // One count spent, not two: a second, different message still fits (and is a duplicate of m-1 by content).
    expect(one(state, "a", T0 + 20, [fixed("cap", 2, HOUR)], "m-2")._tag).toBe("Admit")
    expect(one(state, "a", T0 + 30, checks, "m-3")).toEqual({ _tag: "Duplicate", ruleId: "rule-otp", firstId: "m-1" })
  })

  it("a released admission gives back its counts and its dedup entry", () => {
    const state = fresh()
    const checks = [dedup("otp", MINUTE), fixed("cap", 1, HOUR), rolling("roll", 1, HOUR)]
    const first = request("a", T0, checks, "m-1")
    expect(state.decide([first])[0]!._tag).toBe("Admit")
    expect(one(state, "a", T0 + 1, checks, "m-2")._tag).toBe("Reject")
    state.decide([{ ...first, release: true }])
    // As if m-1 never was: the same content and the caps are free again.
    expect(one(state, "a", T0 + 2, checks, "m-3")._tag).toBe("Admit")
    expect(one(state, "a", T0 + 3, checks, "m-4")._tag).toBe("Reject")
    // Releasing a refused request changes nothing.
    state.decide([{ ...request("a", T0 + 3, checks, "m-4"), release: true }])
    expect(one(state, "a", T0 + 4, [fixed("cap", 1, HOUR)], "m-5")._tag).toBe("Reject")
  })

  it("keeps at most 1,000 dedup entries per recipient, dropping the oldest", () => {
    const state = fresh()
    for (let i = 0; i < 1005; i++) expect(one(state, "a", T0 + i, [dedup(`text-${i}`, DAY)])._tag).toBe("Admit")
    expect(one(state, "a", T0 + 2000, [dedup("text-0", DAY)])._tag).toBe("Admit")
    expect(one(state, "a", T0 + 2001, [dedup("text-1004", DAY)])._tag).toBe("Reject")
    const [dirty] = state.takeDirty(T0 + 3000)
    expect((JSON.parse(dirty!.value!) as { d: Array<unknown> }).d).toHaveLength(1000)
  })

  it("discardDirty lets evicted recipients go, so memory stays bounded without a store", () => {
    const state = fresh(10)
    for (let i = 0; i < 100; i++) one(state, `r${i}`, T0, [fixed("cap", 1, HOUR)])
    expect(state.size).toBe(10)
    expect(state.missing(["r0"])).toEqual([])
    state.discardDirty()
    expect(state.missing(["r0"])).toEqual(["r0"])
    expect(state.takeDirty(T0)).toEqual([])
  })
})

describe("BucketState: probes (dry runs)", () => {
  it("answer what a request would get now and count nothing: the cap stays whole for the real messages", () => {
    const state = fresh()
    const checks = [dedup("otp", MINUTE), fixed("cap", 2, HOUR)]
    const probe = (now: number) => state.decide([{ ...request("a", now, checks), probe: true }])[0]!
    expect(probe(T0)).toEqual({ _tag: "Admit" })
    expect(probe(T0)).toEqual({ _tag: "Admit" })
    expect(state.size).toBe(0)
    expect(state.takeDirty(T0)).toEqual([])
    // The real message is admitted, not taken for a duplicate of a probe; a probe then sees the duplicate.
    expect(one(state, "a", T0, checks, "real-1")).toEqual({ _tag: "Admit" })
    expect(probe(T0 + SECOND)).toEqual({ _tag: "Reject", ruleId: "rule-otp", reason: "duplicate", retryAt: T0 + MINUTE })
    // Another text (its own dedup key): one of the two under the cap is left, and probing it does not spend it.
    const other = [dedup("other", MINUTE), fixed("cap", 2, HOUR)]
    expect(state.decide([{ ...request("a", T0 + 2 * SECOND, other), probe: true }])[0]).toEqual({ _tag: "Admit" })
    expect(state.decide([{ ...request("a", T0 + 2 * SECOND, other), probe: true }])[0]).toEqual({ _tag: "Admit" })
    expect(one(state, "a", T0 + 3 * SECOND, other)).toEqual({ _tag: "Admit" })
    expect(state.decide([{ ...request("a", T0 + 4 * SECOND, [fixed("cap", 2, HOUR)]), probe: true }])[0]).toEqual(capped("cap", T0 + HOUR))
  })
})
