/**
 * An immutable set of E.164 numbers for blacklists of millions of entries.
 *
 * A number is its digits (7 to 15, no leading zero) read as one integer: below 10^15 < 2^53, so a float64 holds it
 * exactly. The set is an open-addressing table of those integers in one `Float64Array`, probed linearly, with 0 as
 * the empty slot (no number is 0). The table has twice as many slots as numbers (load factor ≤ 0.5), and its length
 * need not be a power of two (a hash picks a slot by multiply-shift), so a set holds 16 bytes per number (8 bytes a
 * slot, 2 slots a number; up to 18 when a builder's size hint overshot by less than 12.5%): 160 MB for 10 million. `has` parses the string in place and probes about 1.5 slots on a hit, 2.5 on a miss.
 */

const TWO_POW_32 = 4294967296
const MIN_DIGITS = 7
const MAX_DIGITS = 15
/** The smallest table, so that a tiny or empty set still has an empty slot to stop a probe. */
const MIN_CAPACITY = 8
const MIN_VALUE = 10 ** (MIN_DIGITS - 1)
const MAX_VALUE = 10 ** MAX_DIGITS - 1
/** A built table at most this much larger than exact is kept as is (at most 18 bytes a number), not rebuilt. */
const SLACK = 1.125

/**
 * The integer value of an E.164 number (an optional leading `+`, then 7 to 15 digits, the first not 0), or -1.
 * Reads the string in place: no substring, no allocation.
 */
export const msisdnValue = (msisdn: string): number => {
  const length = msisdn.length
  let i = length > 0 && msisdn.charCodeAt(0) === 43 /* + */ ? 1 : 0
  const digits = length - i
  if (digits < MIN_DIGITS || digits > MAX_DIGITS || msisdn.charCodeAt(i) === 48 /* 0 */) return -1
  let value = 0
  for (; i < length; i++) {
    const d = msisdn.charCodeAt(i) - 48
    if (d < 0 || d > 9) return -1
    value = value * 10 + d
  }
  return value
}

/**
 * The integer ranges `[from, to)` of the numbers whose digits start with `prefix` (1 to 15 digits, not starting with
 * 0): one range per length from 7 to 15 digits. Empty for a prefix that no number can start with.
 */
export const prefixRanges = (prefix: string): ReadonlyArray<readonly [number, number]> => {
  if (!/^[1-9][0-9]{0,14}$/.test(prefix)) return []
  const p = Number(prefix)
  const ranges: Array<readonly [number, number]> = []
  for (let digits = Math.max(MIN_DIGITS, prefix.length); digits <= MAX_DIGITS; digits++) {
    const scale = 10 ** (digits - prefix.length)
    ranges.push([p * scale, (p + 1) * scale])
  }
  return ranges
}

/** Whether a value lies in one of the ranges (few: at most 9). */
export const inRanges = (value: number, ranges: ReadonlyArray<readonly [number, number]>): boolean => {
  for (const [from, to] of ranges) if (value >= from && value < to) return true
  return false
}

/** The slot a value starts its probe at: murmur3's 32-bit finaliser over both halves, then multiply-shift. */
const slotOf = (value: number, capacity: number): number => {
  let h = (value >>> 0) ^ Math.imul(Math.floor(value / TWO_POW_32), 0x9e3779b1)
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return Math.floor(((h >>> 0) * capacity) / TWO_POW_32)
}

/** Slots for `count` numbers at load factor 0.5. */
const capacityFor = (count: number): number => Math.max(MIN_CAPACITY, Math.ceil(count) * 2)

/** Puts a value (known valid, not 0) into a table; true when it was not there yet. */
const insert = (table: Float64Array, value: number): boolean => {
  const capacity = table.length
  let slot = slotOf(value, capacity)
  for (;;) {
    const held = table[slot]
    if (held === 0) {
      table[slot] = value
      return true
    }
    if (held === value) return false
    slot = slot + 1 === capacity ? 0 : slot + 1
  }
}

const rehash = (from: Float64Array, capacity: number): Float64Array => {
  const table = new Float64Array(capacity)
  for (let i = 0; i < from.length; i++) {
    const value = from[i]
    if (value !== undefined && value !== 0) insert(table, value)
  }
  return table
}

export class NumberSet {
  static readonly empty: NumberSet = new NumberSet(new Float64Array(MIN_CAPACITY), 0)

  /** A set of the valid numbers among `numbers` (each as `msisdnValue` reads it); invalid strings are skipped. */
  static fromIterable(numbers: Iterable<string>): NumberSet {
    const builder = new NumberSetBuilder()
    for (const msisdn of numbers) builder.add(msisdn)
    return builder.build()
  }

  readonly #table: Float64Array
  /** How many numbers the set holds. */
  readonly size: number

  /**
   * Internal: sets are made by `NumberSetBuilder.build` or `NumberSet.fromIterable`, which hand over their table, or
   * from a table another thread built and transferred (BlacklistParser.ts). The table is adopted as is, not copied.
   */
  constructor(table: Float64Array, size: number) {
    this.#table = table
    this.size = size
  }

  /**
   * Internal: the table itself, not a copy, to hand the set to another thread: the receiver rebuilds the set with
   * `new NumberSet(table, size)` after the table's buffer was transferred (this set is then unusable). Read only.
   */
  get table(): Float64Array {
    return this.#table
  }

  /** The memory the set holds: its table, 8 bytes a slot. */
  get bytes(): number {
    return this.#table.byteLength
  }

  /** Whether the set holds this E.164 number (`+4915112345678` or `4915112345678`); false for anything invalid. */
  has(msisdn: string): boolean {
    const value = msisdnValue(msisdn)
    return value > 0 && this.hasValue(value)
  }

  /** Whether the set holds this number, given as the integer of its digits. */
  hasValue(value: number): boolean {
    const table = this.#table
    const capacity = table.length
    let slot = slotOf(value, capacity)
    for (;;) {
      const held = table[slot]
      if (held === value) return true
      if (held === 0 || held === undefined) return false
      slot = slot + 1 === capacity ? 0 : slot + 1
    }
  }

  /**
   * Up to `max` numbers (as integers) of the set in one of `ranges` (see `prefixRanges`), in table order (no
   * particular order): one pass over the table, ~2 ns a slot, stopping at `max`.
   */
  valuesIn(ranges: ReadonlyArray<readonly [number, number]>, max: number): Array<number> {
    const table = this.#table
    const out: Array<number> = []
    for (let i = 0; i < table.length && out.length < max; i++) {
      const value = table[i] as number
      if (value !== 0 && inRanges(value, ranges)) out.push(value)
    }
    return out
  }

  /** The numbers, in no particular order, as E.164 strings with their `+`. */
  *values(): IterableIterator<string> {
    const table = this.#table
    for (let i = 0; i < table.length; i++) {
      const value = table[i]
      if (value !== undefined && value !== 0) yield `+${value}`
    }
  }
}

/**
 * Builds a `NumberSet` by inserting into the table it will hand over: no list of numbers kept on the side, duplicates
 * dropped as they come. `expected` (a count of numbers, an upper bound is fine) sizes the table up front; without
 * it the table doubles as it fills. `build` shrinks a table left much larger than its numbers need.
 */
export class NumberSetBuilder {
  #table: Float64Array
  #size = 0
  #built = false

  constructor(expected = 0) {
    this.#table = new Float64Array(capacityFor(expected))
  }

  /** How many distinct numbers were added so far. */
  get size(): number {
    return this.#size
  }

  /** Adds an E.164 number; false (and nothing added) when the string is not one (see `msisdnValue`). */
  add(msisdn: string): boolean {
    const value = msisdnValue(msisdn)
    if (value < 0) return false
    this.addValue(value)
    return true
  }

  /** Adds a number given as the integer of its 7 to 15 digits; true when it was not in the set yet. */
  addValue(value: number): boolean {
    if (this.#built) throw new Error("NumberSetBuilder: already built")
    if (!Number.isInteger(value) || value < MIN_VALUE || value > MAX_VALUE) {
      throw new RangeError(`NumberSetBuilder: not a 7 to 15 digit number: ${value}`)
    }
    if ((this.#size + 1) * 2 > this.#table.length) this.#table = rehash(this.#table, this.#table.length * 2)
    const added = insert(this.#table, value)
    if (added) this.#size++
    return added
  }

  /** The set; the builder cannot be used after. */
  build(): NumberSet {
    if (this.#built) throw new Error("NumberSetBuilder: already built")
    this.#built = true
    const exact = capacityFor(this.#size)
    // A table sized for more than it got (comments, duplicates, invalid lines in a file) is rebuilt to fit.
    const table = this.#table.length > exact * SLACK ? rehash(this.#table, exact) : this.#table
    this.#table = new Float64Array(0)
    return new NumberSet(table, this.#size)
  }
}
