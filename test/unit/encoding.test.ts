import { describe, expect, it } from "@effect/vitest"
import { Result } from "effect"
import {
  chooseEncoding,
  countSegments,
  dataCodingOf,
  decodeShortMessage,
  EmptyMessage,
  EncodingNotRepresentable,
  MessageTooLong,
  segment,
  type SegmentOptions,
  type Segmented
} from "../../src/smpp/Encoding.ts"
import { decodeGsm7, encodeGsm7, isGsm7, septetLength } from "../../src/smpp/Gsm7.ts"

const ok = (text: string, options: SegmentOptions): Segmented => {
  const result = segment(text, options)
  if (Result.isFailure(result)) throw new Error(`segment failed: ${result.failure._tag}`)
  return result.success
}

const failure = (text: string, options: SegmentOptions): unknown => {
  const result = segment(text, options)
  if (Result.isSuccess(result)) throw new Error("segment succeeded")
  return result.failure
}

const bytes = (buffer: Uint8Array): Array<number> => Array.from(buffer)

const reassemble = (segmented: Segmented): string =>
  segmented.parts.map((p) => decodeShortMessage(p.shortMessage, segmented.dataCoding, p.udhi)).join("")

/** Payload length of a part in encoding units (septets or UTF-16 code units). */
const payloadUnits = (segmented: Segmented, index: number): number => {
  const part = segmented.parts[index]
  if (part === undefined) throw new Error(`no part ${index}`)
  const udh = part.udhi ? (part.shortMessage[0] ?? 0) + 1 : 0
  return (part.shortMessage.length - udh) / (segmented.encoding === "gsm7" ? 1 : 2)
}

const auto8: SegmentOptions = { encoding: "auto", reference: 0x42 }

describe("GSM 03.38", () => {
  const expected: ReadonlyArray<readonly [string, number]> = [
    ["@", 0x00], ["£", 0x01], ["$", 0x02], ["¥", 0x03], ["è", 0x04], ["é", 0x05], ["ù", 0x06], ["ì", 0x07],
    ["ò", 0x08], ["Ç", 0x09], ["\n", 0x0a], ["Ø", 0x0b], ["ø", 0x0c], ["\r", 0x0d], ["Å", 0x0e], ["å", 0x0f],
    ["Δ", 0x10], ["_", 0x11], ["Φ", 0x12], ["Γ", 0x13], ["Λ", 0x14], ["Ω", 0x15], ["Π", 0x16], ["Ψ", 0x17],
    ["Σ", 0x18], ["Θ", 0x19], ["Ξ", 0x1a], ["Æ", 0x1c], ["æ", 0x1d], ["ß", 0x1e], ["É", 0x1f],
    [" ", 0x20], ["!", 0x21], ["\"", 0x22], ["#", 0x23], ["¤", 0x24], ["%", 0x25], ["&", 0x26], ["'", 0x27],
    ["(", 0x28], [")", 0x29], ["*", 0x2a], ["+", 0x2b], [",", 0x2c], ["-", 0x2d], [".", 0x2e], ["/", 0x2f],
    ["0", 0x30], ["9", 0x39], [":", 0x3a], [";", 0x3b], ["<", 0x3c], ["=", 0x3d], [">", 0x3e], ["?", 0x3f],
    ["¡", 0x40], ["A", 0x41], ["Z", 0x5a], ["Ä", 0x5b], ["Ö", 0x5c], ["Ñ", 0x5d], ["Ü", 0x5e], ["§", 0x5f],
    ["¿", 0x60], ["a", 0x61], ["z", 0x7a], ["ä", 0x7b], ["ö", 0x7c], ["ñ", 0x7d], ["ü", 0x7e], ["à", 0x7f]
  ]

  it("maps the basic table to the right septets", () => {
    for (const [char, septet] of expected) {
      expect({ char, septets: bytes(encodeGsm7(char)) }).toEqual({ char, septets: [septet] })
      expect(decodeGsm7(Uint8Array.of(septet))).toBe(char)
    }
  })

  it("round-trips all 127 basic characters", () => {
    const all = Array.from({ length: 128 }, (_, i) => i).filter((i) => i !== 0x1b)
    const text = decodeGsm7(Uint8Array.from(all))
    expect(text.length).toBe(127)
    expect(isGsm7(text)).toBe(true)
    expect(bytes(encodeGsm7(text))).toEqual(all)
  })

  it("escapes the extension table with 0x1B", () => {
    const ext: ReadonlyArray<readonly [string, number]> = [
      ["\f", 0x0a], ["^", 0x14], ["{", 0x28], ["}", 0x29], ["\\", 0x2f],
      ["[", 0x3c], ["~", 0x3d], ["]", 0x3e], ["|", 0x40], ["€", 0x65]
    ]
    for (const [char, code] of ext) {
      expect(bytes(encodeGsm7(char))).toEqual([0x1b, code])
      expect(decodeGsm7(Uint8Array.of(0x1b, code))).toBe(char)
      expect(septetLength(char)).toBe(2)
    }
    expect(septetLength("a€b")).toBe(4)
    expect(bytes(encodeGsm7("a€b"))).toEqual([0x61, 0x1b, 0x65, 0x62])
  })

  it("decodes an escape before an unused code as the basic character, and drops a trailing escape", () => {
    expect(decodeGsm7(Uint8Array.of(0x1b, 0x41, 0x62, 0x1b))).toBe("Ab")
  })

  it("writes ? for characters outside the alphabet", () => {
    expect(isGsm7("zł")).toBe(false)
    expect(bytes(encodeGsm7("zł"))).toEqual([0x7a, 0x3f])
  })
})

describe("chooseEncoding", () => {
  it("auto keeps GSM text (extension and accented basic characters included) in gsm7", () => {
    expect(chooseEncoding("Price: 5€ [ok] {x} ~|^\\", "auto")).toEqual(Result.succeed("gsm7"))
    expect(chooseEncoding("café é è ù ì ò Ç ÄÖÑÜ äöñüà", "auto")).toEqual(Result.succeed("gsm7"))
  })

  it("auto switches to ucs2 for characters outside GSM 03.38", () => {
    expect(chooseEncoding("Łódź ł", "auto")).toEqual(Result.succeed("ucs2"))
    expect(chooseEncoding("hi 😀", "auto")).toEqual(Result.succeed("ucs2"))
    expect(chooseEncoding("ç", "auto")).toEqual(Result.succeed("ucs2"))
  })

  it("forced gsm7 names the first offending character", () => {
    const result = chooseEncoding("abc ł ź", "gsm7")
    expect(Result.isFailure(result)).toBe(true)
    if (Result.isFailure(result)) {
      expect(result.failure).toBeInstanceOf(EncodingNotRepresentable)
      expect(result.failure.character).toBe("ł")
      expect(result.failure.index).toBe(4)
    }
    const emoji = failure("ok 😀", { encoding: "gsm7", reference: 1 })
    expect(emoji).toMatchObject({ _tag: "EncodingNotRepresentable", character: "😀", index: 3 })
  })

  it("forced ucs2 is honoured for GSM text", () => {
    const s = ok("hello", { encoding: "ucs2", reference: 1 })
    expect(s.dataCoding).toBe(0x08)
    expect(bytes(s.parts[0]?.shortMessage ?? new Uint8Array())).toEqual([0, 0x68, 0, 0x65, 0, 0x6c, 0, 0x6c, 0, 0x6f])
  })

  it("data_coding: gsm7 0x00, ucs2 0x08", () => {
    expect(dataCodingOf("gsm7")).toBe(0x00)
    expect(dataCodingOf("ucs2")).toBe(0x08)
  })
})

describe("segment gsm7", () => {
  it("160 septets fit one SMS without a UDH", () => {
    const s = ok("a".repeat(160), auto8)
    expect(s).toMatchObject({ encoding: "gsm7", dataCoding: 0, segments: 1 })
    expect(s.parts).toHaveLength(1)
    expect(s.parts[0]).toMatchObject({ seq: 1, total: 1, udhi: false })
    expect(s.parts[0]?.shortMessage.length).toBe(160)
  })

  it("161 septets make two parts of 153 + 8 with an exact 8-bit reference UDH", () => {
    const s = ok("a".repeat(161), auto8)
    expect(s.segments).toBe(2)
    expect(s.parts.map((p) => [p.seq, p.total, p.udhi])).toEqual([[1, 2, true], [2, 2, true]])
    expect(bytes(s.parts[0]?.shortMessage.subarray(0, 6) ?? new Uint8Array())).toEqual([0x05, 0x00, 0x03, 0x42, 2, 1])
    expect(bytes(s.parts[1]?.shortMessage.subarray(0, 6) ?? new Uint8Array())).toEqual([0x05, 0x00, 0x03, 0x42, 2, 2])
    expect(payloadUnits(s, 0)).toBe(153)
    expect(payloadUnits(s, 1)).toBe(8)
    expect(s.parts[0]?.shortMessage.length).toBe(159)
  })

  it("counts extension characters as two septets for the single-SMS limit", () => {
    expect(ok("€".repeat(80), auto8).segments).toBe(1)
    expect(ok("€".repeat(80) + "a", auto8).segments).toBe(2)
  })

  it("fills parts with 153 septets each", () => {
    expect(ok("a".repeat(306), auto8).segments).toBe(2)
    const s = ok("a".repeat(307), auto8)
    expect(s.segments).toBe(3)
    expect([0, 1, 2].map((i) => payloadUnits(s, i))).toEqual([153, 153, 1])
  })

  it("moves an escape pair that would straddle a boundary whole to the next part", () => {
    const text = "a".repeat(152) + "€" + "b".repeat(10)
    const s = ok(text, auto8)
    expect(s.segments).toBe(2)
    expect(payloadUnits(s, 0)).toBe(152)
    expect(bytes(s.parts[1]?.shortMessage.subarray(6, 8) ?? new Uint8Array())).toEqual([0x1b, 0x65])
    expect(reassemble(s)).toBe(text)
    expect(countSegments(text)).toBe(2)
  })

  it("keeps an escape pair that ends exactly on the boundary", () => {
    const text = "a".repeat(151) + "€" + "b".repeat(10)
    const s = ok(text, auto8)
    expect(payloadUnits(s, 0)).toBe(153)
    expect(bytes(s.parts[0]?.shortMessage.subarray(157) ?? new Uint8Array())).toEqual([0x1b, 0x65])
    expect(reassemble(s)).toBe(text)
  })

  it("a boundary shift can add a part", () => {
    // 153 + 153 septets of which the second part starts one septet late: 306 + 1 escape moved → 3 parts.
    const text = "a".repeat(152) + "€" + "a".repeat(152)
    expect(septetLength(text)).toBe(306)
    expect(ok(text, auto8).segments).toBe(3)
    expect(countSegments(text)).toBe(3)
  })

  it("uses 152 septets per part and a 16-bit reference UDH", () => {
    const s = ok("a".repeat(305), { encoding: "auto", reference: 0x1234, referenceBits: 16 })
    expect(s.segments).toBe(3)
    expect([0, 1, 2].map((i) => payloadUnits(s, i))).toEqual([152, 152, 1])
    expect(bytes(s.parts[0]?.shortMessage.subarray(0, 7) ?? new Uint8Array())).toEqual([
      0x06, 0x08, 0x04, 0x12, 0x34, 3, 1
    ])
    expect(bytes(s.parts[2]?.shortMessage.subarray(0, 7) ?? new Uint8Array())).toEqual([
      0x06, 0x08, 0x04, 0x12, 0x34, 3, 3
    ])
    expect(countSegments("a".repeat(305), "auto", 16)).toBe(3)
    expect(countSegments("a".repeat(304), "auto", 16)).toBe(2)
  })

  it("masks the reference to its width", () => {
    const s = ok("a".repeat(200), { encoding: "gsm7", reference: 0x1ff })
    expect(s.parts[0]?.shortMessage[3]).toBe(0xff)
  })
})

describe("segment ucs2", () => {
  it("70 units fit one SMS, 71 make 67 + 4", () => {
    const one = ok("ł".repeat(70), auto8)
    expect(one).toMatchObject({ encoding: "ucs2", dataCoding: 0x08, segments: 1 })
    expect(one.parts[0]?.udhi).toBe(false)
    expect(one.parts[0]?.shortMessage.length).toBe(140)

    const two = ok("ł".repeat(71), auto8)
    expect(two.segments).toBe(2)
    expect(payloadUnits(two, 0)).toBe(67)
    expect(payloadUnits(two, 1)).toBe(4)
    expect(bytes(two.parts[0]?.shortMessage.subarray(0, 8) ?? new Uint8Array())).toEqual([
      0x05, 0x00, 0x03, 0x42, 2, 1, 0x01, 0x42
    ])
    expect(two.parts[0]?.shortMessage.length).toBe(140)
  })

  it("fills parts with 67 units each, 66 with a 16-bit reference", () => {
    const s = ok("ł".repeat(67 * 3), auto8)
    expect(s.segments).toBe(3)
    expect([0, 1, 2].map((i) => payloadUnits(s, i))).toEqual([67, 67, 67])
    const s16 = ok("ł".repeat(67 * 3), { encoding: "auto", reference: 0xabcd, referenceBits: 16 })
    expect(s16.segments).toBe(4)
    expect([0, 1, 2, 3].map((i) => payloadUnits(s16, i))).toEqual([66, 66, 66, 3])
    expect(bytes(s16.parts[3]?.shortMessage.subarray(0, 7) ?? new Uint8Array())).toEqual([
      0x06, 0x08, 0x04, 0xab, 0xcd, 4, 4
    ])
  })

  it("never splits a surrogate pair: the emoji moves whole to the next part", () => {
    const text = "ł".repeat(66) + "😀" + "ł".repeat(10)
    const s = ok(text, auto8)
    expect(s.segments).toBe(2)
    expect(payloadUnits(s, 0)).toBe(66)
    expect(bytes(s.parts[1]?.shortMessage.subarray(6, 10) ?? new Uint8Array())).toEqual([0xd8, 0x3d, 0xde, 0x00])
    expect(reassemble(s)).toBe(text)
    expect(countSegments(text)).toBe(2)
  })

  it("keeps a pair that ends exactly on the boundary", () => {
    const text = "ł".repeat(65) + "😀" + "ł".repeat(10)
    const s = ok(text, auto8)
    expect(payloadUnits(s, 0)).toBe(67)
    expect(reassemble(s)).toBe(text)
  })

  it("an emoji-only text of 35 emoji is one SMS, 36 are two", () => {
    expect(ok("😀".repeat(35), auto8).segments).toBe(1)
    const s = ok("😀".repeat(36), auto8)
    expect(s.segments).toBe(2)
    expect(payloadUnits(s, 0)).toBe(66)
    expect(reassemble(s)).toBe("😀".repeat(36))
  })
})

describe("limits", () => {
  it("refuses an empty text", () => {
    expect(failure("", auto8)).toBeInstanceOf(EmptyMessage)
    expect(countSegments("")).toBe(0)
  })

  it("allows 255 parts and refuses 256", () => {
    expect(ok("a".repeat(153 * 255), auto8).segments).toBe(255)
    const tooLong = failure("a".repeat(153 * 255 + 1), auto8)
    expect(tooLong).toBeInstanceOf(MessageTooLong)
    expect(tooLong).toMatchObject({ encoding: "gsm7", segments: 256, maxSegments: 255 })
    expect(failure("ł".repeat(67 * 255 + 1), auto8)).toMatchObject({ _tag: "MessageTooLong", encoding: "ucs2" })
  })

  it("countSegments returns 0 for forced gsm7 on non-GSM text", () => {
    expect(countSegments("ł", "gsm7")).toBe(0)
    expect(countSegments("ł", "auto")).toBe(1)
  })
})

describe("round trip and consistency", () => {
  // A small deterministic generator: GSM basic, extension, non-GSM BMP and astral characters.
  const alphabet = ["a", "Z", "0", " ", "é", "Δ", "\n", "€", "[", "^", "ł", "ж", "中", "😀", "👍🏽"]
  const random = (seed: number) => {
    let state = seed
    return (n: number): number => {
      state = (Math.imul(state, 1103515245) + 12345) & 0x7fffffff
      return (state >>> 8) % n
    }
  }

  it("decoding the parts reassembles the text, and countSegments agrees with segment", () => {
    const next = random(7)
    for (let round = 0; round < 400; round++) {
      const gsmOnly = round % 2 === 0
      const pool = gsmOnly ? alphabet.slice(0, 10) : alphabet
      const length = 1 + next(700)
      let text = gsmOnly ? "" : "ł"
      for (let i = 0; i < length; i++) text += pool[next(pool.length)] ?? "a"
      for (const referenceBits of [8, 16] as const) {
        const s = ok(text, { encoding: "auto", reference: round, referenceBits })
        expect(s.encoding).toBe(gsmOnly ? "gsm7" : "ucs2")
        expect(reassemble(s)).toBe(text)
        expect(countSegments(text, "auto", referenceBits)).toBe(s.segments)
        for (const part of s.parts) {
          expect(part.shortMessage.length).toBeLessThanOrEqual(160)
          if (s.encoding === "ucs2") expect(part.shortMessage.length).toBeLessThanOrEqual(140)
        }
      }
    }
  })
})

describe("decodeShortMessage", () => {
  it("strips the UDH when udhi is set", () => {
    expect(decodeShortMessage(Uint8Array.of(0x05, 0x00, 0x03, 1, 2, 1, 0x68, 0x69), 0x00, true)).toBe("hi")
    expect(decodeShortMessage(Uint8Array.of(0x05, 0x00, 0x03), 0x00, true)).toBe("")
  })

  it("decodes latin1 for 0x01, 0x03 and unknown codings", () => {
    const latin1 = Buffer.from("id:1 café", "latin1")
    expect(decodeShortMessage(latin1, 0x03, false)).toBe("id:1 café")
    expect(decodeShortMessage(Buffer.from("abc@$_", "latin1"), 0x01, false)).toBe("abc@$_")
    expect(decodeShortMessage(latin1, 0x04, false)).toBe("id:1 café")
  })

  it("decodes GSM (0x00) and UCS-2 (0x08)", () => {
    expect(decodeShortMessage(Uint8Array.of(0x00, 0x02, 0x1b, 0x65), 0x00, false)).toBe("@$€")
    expect(decodeShortMessage(Uint8Array.of(0x01, 0x42, 0xd8, 0x3d, 0xde, 0x00), 0x08, false)).toBe("ł😀")
  })
})
