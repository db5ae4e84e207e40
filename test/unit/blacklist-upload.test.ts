import { describe, expect, it } from "vitest"
import { uploadParser, UploadTooManyNumbers } from "../../src/policy/BlacklistUpload.ts"
import type { UploadReport } from "../../src/policy/BlacklistUpload.ts"

const encoder = new TextEncoder()

/** Feeds `text` in chunks of `size` bytes (cutting lines and multi-byte characters anywhere). */
const parse = (text: string, size: number, maxNumbers = 1000): UploadReport | UploadTooManyNumbers => {
  const parser = uploadParser({ maxNumbers })
  const bytes = encoder.encode(text)
  for (let i = 0; i < bytes.length; i += size) {
    const failed = parser.push(bytes.subarray(i, i + size))
    if (failed !== undefined) return failed
  }
  return parser.end()
}

describe("blacklist entries upload", () => {
  it("reads plain lists and CSV first columns the same way, in any chunking", () => {
    const plain = "\uFEFF# opt-outs\n+49 151 1234-5678\r\n4915112345679 # late\n\n+4915112345678\nnot a number\n+49151123"
    const csv = "phone,name\n\"+4915112345678\",Anna\n4915112345679;Bob\n+4915112345678,again\nx,é\n+49151123"
    for (const size of [1, 3, 7, 1024]) {
      const a = parse(plain, size) as UploadReport
      expect(a.values).toEqual([4915112345678, 4915112345679, 49151123])
      expect(a).toMatchObject({ lines: 7, duplicates: 1, invalid: 1, invalidLines: [{ line: 6, text: "not a number" }], header: false })
      const b = parse(csv, size) as UploadReport
      expect(b.values).toEqual([4915112345678, 4915112345679, 49151123])
      expect(b).toMatchObject({ lines: 6, duplicates: 1, invalid: 1, invalidLines: [{ line: 5, text: "x,é" }], header: true })
    }
  })

  it("stops past the number bound, whatever the file's size", () => {
    const text = Array.from({ length: 20 }, (_, i) => `+49151${1_000_000 + i}`).join("\n")
    expect(parse(text, 64, 10)).toBeInstanceOf(UploadTooManyNumbers)
    expect((parse(text, 64, 20) as UploadReport).values).toHaveLength(20)
  })
})
