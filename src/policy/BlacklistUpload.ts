/**
 * Blacklist entries uploaded as a file (`POST /v1/blacklists/{name}/entries/upload`): plain text, one number per line
 * (the list file's format: `#` comments, blank lines, spaces and dashes inside a number), or CSV whose first column is
 * the number (a header row and any other columns are ignored; quotes around a field are fine).
 *
 * Read as the body arrives, chunk by chunk: only the distinct numbers are kept (as integers), never the file, and
 * reading stops with `UploadTooManyNumbers` past `maxNumbers`, so memory is bounded by the count, not the bytes.
 * Lines that hold no number are counted and the first `MAX_REPORTED` named with their line number (1-based).
 */
import { Schema } from "effect"
import { msisdnValue } from "./NumberSet.ts"

/** Invalid lines named in a report, at most. */
export const MAX_REPORTED = 20
const MAX_TEXT = 120

export class UploadTooManyNumbers extends Schema.TaggedError<UploadTooManyNumbers>()("UploadTooManyNumbers", {
  maxNumbers: Schema.Number
}) {}

export interface UploadReport {
  /** Lines read (blank lines and comments included). */
  readonly lines: number
  /** Distinct valid numbers, as integers (see `msisdnValue`). */
  readonly values: ReadonlyArray<number>
  /** Valid lines repeating a number of an earlier line. */
  readonly duplicates: number
  readonly invalid: number
  readonly invalidLines: ReadonlyArray<{ readonly line: number; readonly text: string }>
  /** The first line was a CSV header (not a number, with a letter in it): skipped, not counted as invalid. */
  readonly header: boolean
}

/** The number of a line, or undefined: its first field (up to `,` `;` or a tab), unquoted, spaces and dashes out. */
const numberOf = (line: string): number | undefined => {
  const comment = line.indexOf("#")
  const text = comment === -1 ? line : line.slice(0, comment)
  const field = /^[^,;\t]*/.exec(text)?.[0] ?? ""
  const cleaned = field.trim().replace(/^"(.*)"$/, "$1").replace(/[\s-]/g, "")
  if (cleaned === "") return undefined
  const value = msisdnValue(cleaned)
  return value < 0 ? undefined : value
}

const isBlank = (line: string) => {
  const comment = line.indexOf("#")
  return (comment === -1 ? line : line.slice(0, comment)).replace(/[,;\t"\s]/g, "") === ""
}

/** A parser fed the body's chunks in order; `push` fails past `maxNumbers` distinct numbers. */
export const uploadParser = (options: { readonly maxNumbers: number }) => {
  const decoder = new TextDecoder("utf-8")
  const values = new Set<number>()
  const invalidLines: Array<{ line: number; text: string }> = []
  let rest = ""
  let lines = 0
  let duplicates = 0
  let invalid = 0
  let header = false

  const line = (raw: string): UploadTooManyNumbers | undefined => {
    lines++
    const text = raw.endsWith("\r") ? raw.slice(0, -1) : raw
    const value = numberOf(text)
    if (value === undefined) {
      if (isBlank(text)) return undefined
      if (lines === 1 && /[A-Za-z]/.test(text)) {
        header = true
        return undefined
      }
      invalid++
      if (invalidLines.length < MAX_REPORTED) invalidLines.push({ line: lines, text: text.slice(0, MAX_TEXT) })
      return undefined
    }
    if (values.has(value)) {
      duplicates++
      return undefined
    }
    if (values.size >= options.maxNumbers) return new UploadTooManyNumbers({ maxNumbers: options.maxNumbers })
    values.add(value)
    return undefined
  }

  const feed = (text: string): UploadTooManyNumbers | undefined => {
    let start = 0
    for (;;) {
      const end = text.indexOf("\n", start)
      if (end === -1) break
      const failed = line(text.slice(start, end))
      if (failed !== undefined) return failed
      start = end + 1
    }
    rest = text.slice(start)
    return undefined
  }

  return {
    /** The next chunk of the body. */
    push: (chunk: Uint8Array): UploadTooManyNumbers | undefined => {
      // A BOM at the start of the body is not part of the first line (the decoder drops it).
      return feed(rest + decoder.decode(chunk, { stream: true }))
    },
    /** The body ended: the last line (without a line break) is read too. */
    end: (): UploadTooManyNumbers | UploadReport => {
      const last = rest + decoder.decode()
      rest = ""
      if (last !== "") {
        const failed = line(last)
        if (failed !== undefined) return failed
      }
      return { lines, values: [...values], duplicates, invalid, invalidLines, header }
    }
  }
}
