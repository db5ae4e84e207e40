/**
 * A blacklist file: one E.164 number per line, an optional leading `+`, spaces and dashes inside ignored, `#` comments
 * (whole-line or trailing), blank lines, LF or CRLF. Anything else on a line, or a number that is not 7 to 15 digits
 * (or starts with 0), makes the line invalid: counted, the first 100 kept with their line numbers.
 *
 * The scanner walks the bytes once, accumulating each number as an integer and inserting it straight into the set's
 * table (sized up front from a count of the lines): no split, no string per line, no list of numbers on the side.
 */
import { NumberSetBuilder } from "./NumberSet.ts"
import type { NumberSet } from "./NumberSet.ts"

export interface InvalidLine {
  /** 1-based. */
  readonly line: number
  /** The line as written, without its line break (cut at 200 characters). */
  readonly text: string
}

export interface ParsedBlacklist {
  readonly set: NumberSet
  /** The first `MAX_REPORTED_INVALID` invalid lines. */
  readonly invalid: ReadonlyArray<InvalidLine>
  readonly invalidCount: number
  /** Valid lines whose number an earlier line already had. */
  readonly duplicateCount: number
}

export const MAX_REPORTED_INVALID = 100
const MAX_TEXT = 200

const LF = 10
const CR = 13
const SPACE = 32
const TAB = 9
const HASH = 35
const PLUS = 43
const DASH = 45
const ZERO = 48
const NINE = 57

const decoder = new TextDecoder("utf-8")

const countLines = (bytes: Uint8Array): number => {
  let lines = bytes.length > 0 && bytes[bytes.length - 1] !== LF ? 1 : 0
  for (let i = 0; i < bytes.length; i++) if (bytes[i] === LF) lines++
  return lines
}

export const parseBlacklist = (text: string | Uint8Array): ParsedBlacklist => {
  const bytes = typeof text === "string" ? Buffer.from(text, "utf8") : text
  const end = bytes.length
  const builder = new NumberSetBuilder(countLines(bytes))
  const invalid: Array<InvalidLine> = []
  let invalidCount = 0
  let duplicateCount = 0
  let line = 0
  // A UTF-8 byte order mark is not part of the first line.
  let i = end >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0

  while (i < end) {
    line++
    const start = i
    let value = 0
    let digits = 0
    let firstDigit = -1
    let signed = false
    let bad = false
    let c = 0
    // One line: up to its LF (or the end), stopping early at a comment.
    for (; i < end; i++) {
      c = bytes[i] ?? LF
      if (c === LF || c === HASH) break
      if (c >= ZERO && c <= NINE) {
        if (digits === 0) firstDigit = c
        if (digits < 15) value = value * 10 + (c - ZERO)
        digits++
      } else if (c === SPACE || c === TAB || c === CR) {
        // Spacing, and the CR of CRLF.
      } else if (c === DASH && digits > 0) {
        // A separator inside the number.
      } else if (c === PLUS && digits === 0 && !signed) {
        signed = true
      } else {
        bad = true
      }
    }
    if (c === HASH) {
      while (i < end && bytes[i] !== LF) i++
    }
    i++ // past the LF

    if (!bad && digits === 0 && !signed) continue // blank, or only a comment
    if (bad || digits < 7 || digits > 15 || firstDigit === ZERO) {
      invalidCount++
      if (invalid.length < MAX_REPORTED_INVALID) {
        // The whole line, its comment included, without the line break.
        let stop = Math.min(i - 1, end)
        while (stop > start && bytes[stop - 1] === CR) stop--
        invalid.push({ line, text: decoder.decode(bytes.subarray(start, Math.min(stop, start + MAX_TEXT))) })
      }
      continue
    }
    if (!builder.addValue(value)) duplicateCount++
  }

  return { set: builder.build(), invalid, invalidCount, duplicateCount }
}
