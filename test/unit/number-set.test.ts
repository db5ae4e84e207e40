import { describe, expect, it } from "vitest"
import { msisdnValue, NumberSet, NumberSetBuilder, prefixRanges } from "../../src/policy/NumberSet.ts"
import { MAX_REPORTED_INVALID, parseBlacklist } from "../../src/policy/BlacklistFile.ts"

/** A deterministic generator (mulberry32), so a failure can be replayed. */
const random = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

/** A random E.164 number of 7 to 15 digits (no leading zero), as digits. */
const randomNumber = (next: () => number): string => {
  const length = 7 + Math.floor(next() * 9)
  let digits = String(1 + Math.floor(next() * 9))
  while (digits.length < length) digits += String(Math.floor(next() * 10))
  return digits
}

describe("msisdnValue", () => {
  it("reads 7 to 15 digits with an optional +, nothing else", () => {
    expect(msisdnValue("+4915112345678")).toBe(4915112345678)
    expect(msisdnValue("4915112345678")).toBe(4915112345678)
    expect(msisdnValue("999999999999999")).toBe(999999999999999)
    expect(msisdnValue("1234567")).toBe(1234567)
    for (const bad of ["", "+", "123456", "+123456", "1234567890123456", "0123456789", "+0491511234", "49151 12345", "++4915112345", "49151a12345"]) {
      expect(msisdnValue(bad), bad).toBe(-1)
    }
  })
})

describe("NumberSet", () => {
  it("holds what was added, not what was not", () => {
    const set = NumberSet.fromIterable(["+4915112345678", "447700900123", "+12025550143"])
    expect(set.size).toBe(3)
    expect(set.has("+4915112345678")).toBe(true)
    expect(set.has("4915112345678")).toBe(true)
    expect(set.has("+447700900123")).toBe(true)
    expect(set.has("12025550143")).toBe(true)
    expect(set.has("+4915112345679")).toBe(false)
    expect(set.has("+491511234567")).toBe(false)
    expect(set.has("not a number")).toBe(false)
    expect(set.has("")).toBe(false)
    expect([...set.values()].sort()).toEqual(["+12025550143", "+447700900123", "+4915112345678"])
  })

  it("an empty set holds nothing", () => {
    expect(NumberSet.empty.size).toBe(0)
    expect(NumberSet.empty.has("+4915112345678")).toBe(false)
    expect(NumberSet.fromIterable([]).has("+4915112345678")).toBe(false)
  })

  it("counts duplicates once, with or without the +", () => {
    const builder = new NumberSetBuilder()
    expect(builder.add("+4915112345678")).toBe(true)
    expect(builder.addValue(4915112345678)).toBe(false)
    expect(builder.add("4915112345678")).toBe(true)
    expect(builder.size).toBe(1)
    const set = builder.build()
    expect(set.size).toBe(1)
    expect(() => builder.add("+4915112345679")).toThrow()
  })

  it("rejects short numbers, leading zeros and non-digits", () => {
    const builder = new NumberSetBuilder()
    expect(builder.add("123456")).toBe(false)
    expect(builder.add("04915112345678")).toBe(false)
    expect(builder.add("1234567890123456")).toBe(false)
    expect(builder.add("+49-151")).toBe(false)
    expect(() => builder.addValue(0)).toThrow(RangeError)
    expect(() => builder.addValue(1.5e15)).toThrow(RangeError)
    expect(builder.build().size).toBe(0)
  })

  it("agrees with a JS Set on 100k random numbers, hits and misses", () => {
    const next = random(42)
    const oracle = new Set<number>()
    const builder = new NumberSetBuilder()
    for (let i = 0; i < 100_000; i++) {
      const digits = randomNumber(next)
      builder.add(i % 2 === 0 ? `+${digits}` : digits)
      oracle.add(Number(digits))
    }
    // Sequential numbers too: the hash must spread a dense range.
    for (let n = 4915100000000; n < 4915100020000; n++) {
      builder.addValue(n)
      oracle.add(n)
    }
    const set = builder.build()
    expect(set.size).toBe(oracle.size)
    for (const n of oracle) expect(set.has(`+${n}`)).toBe(true)
    let misses = 0
    for (let i = 0; i < 100_000; i++) {
      const digits = randomNumber(next)
      expect(set.has(digits)).toBe(oracle.has(Number(digits)))
      if (!oracle.has(Number(digits))) misses++
    }
    expect(misses).toBeGreaterThan(99_000)
    expect(new Set([...set.values()].map(Number))).toEqual(oracle)
  })

  it("holds 16 bytes a number when sized for it, and no more than 18 once built", () => {
    const exact = new NumberSetBuilder(50_000)
    for (let i = 0; i < 50_000; i++) exact.addValue(4915100000000 + i * 7)
    expect(exact.build().bytes).toBe(50_000 * 16)
    const grown = new NumberSetBuilder()
    for (let i = 0; i < 50_000; i++) grown.addValue(4915100000000 + i * 7)
    const set = grown.build()
    expect(set.bytes / set.size).toBeLessThanOrEqual(18)
    expect(set.has("+4915100000007")).toBe(true)
  })
})

describe("parseBlacklist", () => {
  it("reads numbers, comments, blank lines, + and separators", () => {
    const text = [
      "# DND list, 2027-05-17",
      "+4915112345678",
      "",
      "   ",
      "447700900123   # asked by phone",
      "+1 202-555-0143",
      "  # indented comment",
      "#4915199999999",
      "+49 151 1234 5679#no space before the comment"
    ].join("\n")
    const { set, invalid, invalidCount, duplicateCount } = parseBlacklist(text)
    expect(invalidCount).toBe(0)
    expect(invalid).toEqual([])
    expect(duplicateCount).toBe(0)
    expect(set.size).toBe(4)
    for (const n of ["+4915112345678", "+447700900123", "+12025550143", "+4915112345679"]) expect(set.has(n), n).toBe(true)
    expect(set.has("+4915199999999")).toBe(false)
  })

  it("reads CRLF files, bytes as well as a string, and a last line without a newline", () => {
    const text = "# list\r\n+4915112345678\r\n\r\n447700900123 # x\r\n12025550143"
    for (const input of [text, new TextEncoder().encode(text)]) {
      const { set, invalidCount } = parseBlacklist(input)
      expect(invalidCount).toBe(0)
      expect(set.size).toBe(3)
      expect(set.has("+12025550143")).toBe(true)
      expect(set.has("+447700900123")).toBe(true)
    }
    expect(parseBlacklist("4915112345678").set.has("4915112345678")).toBe(true)
    expect(parseBlacklist("").set.size).toBe(0)
    expect(parseBlacklist("\n\n").set.size).toBe(0)
  })

  it("skips a UTF-8 byte order mark", () => {
    const { set, invalidCount } = parseBlacklist("\ufeff+4915112345678\n")
    expect(invalidCount).toBe(0)
    expect(set.has("+4915112345678")).toBe(true)
  })

  it("reports invalid lines with their line numbers and text, and counts duplicates", () => {
    const text = [
      "+4915112345678", // 1
      "123456", // 2: too short
      "04915112345678", // 3: leading zero
      "+4915112345678", // 4: duplicate
      "1234567890123456", // 5: too long
      "49151abc45678", // 6: a letter
      "4915112345679 # ok", // 7
      "49+15112345678", // 8: + inside
      "-4915112345678", // 9: a dash before the number
      "+ # nothing after the +", // 10
      "12345 # short, with a comment\r", // 11
      "+49 151 1234567" // 12
    ].join("\n")
    const { set, invalid, invalidCount, duplicateCount } = parseBlacklist(text)
    expect(set.size).toBe(3)
    expect(duplicateCount).toBe(1)
    expect(invalidCount).toBe(8)
    expect(invalid).toEqual([
      { line: 2, text: "123456" },
      { line: 3, text: "04915112345678" },
      { line: 5, text: "1234567890123456" },
      { line: 6, text: "49151abc45678" },
      { line: 8, text: "49+15112345678" },
      { line: 9, text: "-4915112345678" },
      { line: 10, text: "+ # nothing after the +" },
      { line: 11, text: "12345 # short, with a comment" }
    ])
  })

  it("keeps the first 100 invalid lines and counts them all", () => {
    const lines: Array<string> = []
    for (let i = 0; i < 250; i++) lines.push(i % 2 === 0 ? `x${i}` : `+44770090${String(i).padStart(4, "0")}`)
    const { set, invalid, invalidCount } = parseBlacklist(lines.join("\r\n") + "\r\n")
    expect(set.size).toBe(125)
    expect(invalidCount).toBe(125)
    expect(invalid.length).toBe(MAX_REPORTED_INVALID)
    expect(invalid[0]).toEqual({ line: 1, text: "x0" })
    expect(invalid[99]).toEqual({ line: 199, text: "x198" })
  })

  it("agrees with the numbers it was given on 100k lines", () => {
    const next = random(7)
    const numbers: Array<string> = []
    for (let i = 0; i < 100_000; i++) numbers.push(randomNumber(next))
    const { set, invalidCount, duplicateCount } = parseBlacklist(numbers.map((n) => `+${n}`).join("\n") + "\n")
    const oracle = new Set(numbers)
    expect(invalidCount).toBe(0)
    expect(set.size).toBe(oracle.size)
    expect(duplicateCount).toBe(numbers.length - oracle.size)
    for (const n of numbers) expect(set.has(n)).toBe(true)
    // Sized from the line count: a few duplicates leave a little slack, kept rather than rebuilt.
    expect(set.bytes).toBe(numbers.length * 16)
    expect(set.bytes / set.size).toBeLessThan(16.1)
  })

  it("a file of unique numbers only gives exactly 16 bytes a number", () => {
    const text = Array.from({ length: 10_000 }, (_, i) => `+4477009${String(i).padStart(5, "0")}`).join("\n") + "\n"
    const { set } = parseBlacklist(text)
    expect(set.size).toBe(10_000)
    expect(set.bytes).toBe(160_000)
  })
})

describe("prefix search", () => {
  it("finds the numbers starting with some digits, whatever their length, and nothing else", () => {
    const set = NumberSet.fromIterable(["+4915112345678", "+491511234", "+4915200000000", "+1491511234567", "+49151999999999"])
    const found = (prefix: string) => set.valuesIn(prefixRanges(prefix), 100).sort((a, b) => a - b)
    expect(found("49151")).toEqual([491511234, 4915112345678, 49151999999999])
    expect(found("4915112345678")).toEqual([4915112345678])
    expect(found("1")).toEqual([1491511234567])
    expect(found("49153")).toEqual([])
    expect(found("49151").length).toBe(3)
    expect(set.valuesIn(prefixRanges("49"), 2)).toHaveLength(2)
    expect(prefixRanges("0")).toEqual([])
    expect(prefixRanges("1234567890123456")).toEqual([])
  })
})
