/**
 * Text → SMPP `short_message` parts: encoding choice (GSM 03.38 or UCS-2), concatenation UDH, and the reverse for
 * incoming `deliver_sm`. Fallible functions return a `Result` (use `Effect.fromResult` inside an effect).
 */
import { Result, Schema } from "effect"
import type { RequestedEncoding, TextEncoding as TextEncodingSchema } from "../domain/Message.ts"
import { decodeGsm7, encodeGsm7, ESCAPE, firstNonGsm7Index, septetsOf } from "./Gsm7.ts"

export type TextEncoding = typeof TextEncodingSchema.Type
export type { RequestedEncoding }

export const DATA_CODING_GSM7 = 0x00
export const DATA_CODING_UCS2 = 0x08
export type DataCoding = typeof DATA_CODING_GSM7 | typeof DATA_CODING_UCS2

/** Concatenated SMS carry at most 255 parts (the UDH counts them in one octet). */
export const MAX_PARTS = 255

/** Capacity in encoding units (septets for gsm7, UTF-16 code units for ucs2) of one SMS and of one part. */
export const limits = {
  gsm7: { single: 160, multipart8: 153, multipart16: 152 },
  ucs2: { single: 70, multipart8: 67, multipart16: 66 }
} as const

export class EncodingNotRepresentable extends Schema.TaggedError<EncodingNotRepresentable>()(
  "EncodingNotRepresentable",
  {
    encoding: Schema.Literal("gsm7"),
    /** The first offending character (a whole code point, so an emoji is not cut in half). */
    character: Schema.String,
    /** Its UTF-16 index in the text. */
    index: Schema.Int
  }
) {}

export class MessageTooLong extends Schema.TaggedError<MessageTooLong>()("MessageTooLong", {
  encoding: Schema.Literals(["gsm7", "ucs2"]),
  segments: Schema.Int,
  maxSegments: Schema.Int
}) {}

/** An SMS with no text is never sent: the REST layer rejects it and segment() refuses it. */
export class EmptyMessage extends Schema.TaggedError<EmptyMessage>()("EmptyMessage", {}) {}

export interface SegmentOptions {
  readonly encoding: RequestedEncoding
  /** Concatenation reference, unique per destination while parts are in flight; masked to 8 or 16 bits. */
  readonly reference: number
  readonly referenceBits?: 8 | 16
}

export interface SegmentPart {
  /** 1-based. */
  readonly seq: number
  readonly total: number
  /** UDH (when udhi) followed by the payload: pass it as `short_message`. A Buffer, as npm `smpp` requires. */
  readonly shortMessage: Buffer
  /** Set `esm_class |= 0x40` when true. */
  readonly udhi: boolean
}

export interface Segmented {
  readonly encoding: TextEncoding
  readonly dataCoding: DataCoding
  readonly segments: number
  readonly parts: ReadonlyArray<SegmentPart>
}

const notRepresentable = (text: string, index: number): EncodingNotRepresentable =>
  new EncodingNotRepresentable({
    encoding: "gsm7",
    character: String.fromCodePoint(text.codePointAt(index) ?? 0xfffd),
    index
  })

export const chooseEncoding = (
  text: string,
  requested: RequestedEncoding
): Result.Result<TextEncoding, EncodingNotRepresentable> => {
  if (requested === "ucs2") return Result.succeed("ucs2")
  const bad = firstNonGsm7Index(text)
  if (bad === -1) return Result.succeed("gsm7")
  return requested === "gsm7" ? Result.fail(notRepresentable(text, bad)) : Result.succeed("ucs2")
}

export const dataCodingOf = (encoding: TextEncoding): DataCoding =>
  encoding === "gsm7" ? DATA_CODING_GSM7 : DATA_CODING_UCS2

/** UTF-16BE, surrogate pairs as they are. */
export const encodeUcs2 = (text: string): Buffer => Buffer.from(text, "utf16le").swap16()

/** UTF-16BE → string; an odd trailing octet is dropped. */
export const decodeUcs2 = (bytes: Uint8Array): string => {
  const even = Buffer.from(bytes.subarray(0, bytes.length & ~1))
  return even.swap16().toString("utf16le")
}

const isHighSurrogate = (unit: number): boolean => unit >= 0xd800 && unit <= 0xdbff
const isLowSurrogate = (unit: number): boolean => unit >= 0xdc00 && unit <= 0xdfff

/** True when UTF-16BE `payload` holds a surrogate pair starting at code unit `i`. */
const pairAt = (payload: Buffer, i: number): boolean => {
  const at = i * 2
  return at + 3 < payload.length && isHighSurrogate(payload.readUInt16BE(at)) && isLowSurrogate(payload.readUInt16BE(at + 2))
}

const writeUdh = (out: Buffer, bits: 8 | 16, reference: number, total: number, seq: number): number => {
  if (bits === 16) {
    out[0] = 0x06
    out[1] = 0x08
    out[2] = 0x04
    out[3] = (reference >>> 8) & 0xff
    out[4] = reference & 0xff
    out[5] = total
    out[6] = seq
    return 7
  }
  out[0] = 0x05
  out[1] = 0x00
  out[2] = 0x03
  out[3] = reference & 0xff
  out[4] = total
  out[5] = seq
  return 6
}

/**
 * Splits a text into `short_message` parts. A GSM escape pair or a UTF-16 surrogate pair is never cut: the part
 * before it then holds one unit less.
 */
export const segment = (
  text: string,
  options: SegmentOptions
): Result.Result<Segmented, EncodingNotRepresentable | MessageTooLong | EmptyMessage> => {
  if (text.length === 0) return Result.fail(new EmptyMessage())
  const chosen = chooseEncoding(text, options.encoding)
  if (Result.isFailure(chosen)) return Result.fail(chosen.failure)
  const encoding = chosen.success
  const dataCoding = dataCodingOf(encoding)
  const gsm = encoding === "gsm7"
  const payload = gsm ? encodeGsm7(text) : encodeUcs2(text)
  const unitSize = gsm ? 1 : 2
  const units = payload.length / unitSize
  const limit = limits[encoding]

  if (units <= limit.single) {
    return Result.succeed({
      encoding,
      dataCoding,
      segments: 1,
      parts: [{ seq: 1, total: 1, shortMessage: payload, udhi: false }]
    })
  }

  const bits = options.referenceBits ?? 8
  const perPart = bits === 16 ? limit.multipart16 : limit.multipart8
  const ends: Array<number> = []
  for (let start = 0; start < units;) {
    let end = start + perPart
    if (end >= units) end = units
    else if (gsm ? payload[end - 1] === ESCAPE : pairAt(payload, end - 1)) end--
    ends.push(end)
    start = end
    if (ends.length > MAX_PARTS) {
      return Result.fail(new MessageTooLong({ encoding, segments: countSegments(text, encoding, bits), maxSegments: MAX_PARTS }))
    }
  }

  const total = ends.length
  const parts: Array<SegmentPart> = new Array(total)
  let start = 0
  for (let i = 0; i < total; i++) {
    const end = ends[i] ?? units
    const out = Buffer.allocUnsafe((bits === 16 ? 7 : 6) + (end - start) * unitSize)
    const udhLength = writeUdh(out, bits, options.reference, total, i + 1)
    payload.copy(out, udhLength, start * unitSize, end * unitSize)
    parts[i] = { seq: i + 1, total, shortMessage: out, udhi: true }
    start = end
  }
  return Result.succeed({ encoding, dataCoding, segments: total, parts })
}

/**
 * The number of parts segment() makes, without building them. 0 when segment() would refuse the text as empty or
 * not representable in a forced gsm7; above MAX_PARTS when it would refuse it as too long.
 */
export const countSegments = (text: string, encoding: RequestedEncoding = "auto", referenceBits: 8 | 16 = 8): number => {
  if (text.length === 0) return 0
  const chosen = chooseEncoding(text, encoding)
  if (Result.isFailure(chosen)) return 0
  const limit = limits[chosen.success]
  const perPart = referenceBits === 16 ? limit.multipart16 : limit.multipart8
  const gsm = chosen.success === "gsm7"
  if (!gsm && text.length <= limit.single) return 1
  let total = 0
  let parts = 1
  let fill = 0
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i)
    let cost: number
    if (gsm) {
      cost = septetsOf(unit)
    } else {
      cost = isHighSurrogate(unit) && i + 1 < text.length && isLowSurrogate(text.charCodeAt(i + 1)) ? 2 : 1
      i += cost - 1
    }
    total += cost
    if (fill + cost > perPart) {
      parts++
      fill = cost
    } else {
      fill += cost
    }
  }
  return total <= limit.single ? 1 : parts
}

/**
 * The text of an incoming `short_message` (receipts, MO): strips the UDH when `udhi`, then decodes by `data_coding`:
 * 0x00 GSM 03.38 (unpacked), 0x08 UCS-2, anything else Latin-1 (0x01 IA5 and 0x03 Latin-1 included).
 */
export const decodeShortMessage = (bytes: Uint8Array, dataCoding: number, udhi: boolean): string => {
  let body = bytes
  if (udhi && bytes.length > 0) body = bytes.subarray(Math.min(bytes.length, 1 + (bytes[0] ?? 0)))
  switch (dataCoding) {
    case DATA_CODING_GSM7:
      return decodeGsm7(body)
    case DATA_CODING_UCS2:
      return decodeUcs2(body)
    default:
      return Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("latin1")
  }
}

/** A part of a concatenated message: its reference, how many parts, and which this is (1-based). */
export interface ConcatInfo {
  readonly ref: number
  readonly total: number
  readonly seq: number
}

/**
 * The concatenation header of a `short_message` with a UDH (3GPP TS 23.040 §9.2.3.24.1, IEI 0x00 with an 8-bit
 * reference, 0x08 with a 16-bit one), or undefined: not a part, or a header that does not hold together.
 */
export const concatOf = (bytes: Uint8Array, udhi: boolean): ConcatInfo | undefined => {
  if (!udhi || bytes.length === 0) return undefined
  const at = (i: number) => bytes[i] ?? 0
  const end = 1 + at(0)
  if (end > bytes.length) return undefined
  const valid = (info: ConcatInfo) => (info.total >= 1 && info.seq >= 1 && info.seq <= info.total ? info : undefined)
  let i = 1
  while (i + 1 < end) {
    const iei = at(i)
    const length = at(i + 1)
    const data = i + 2
    if (data + length > end) return undefined
    if (iei === 0x00 && length === 3) return valid({ ref: at(data), total: at(data + 1), seq: at(data + 2) })
    if (iei === 0x08 && length === 4) return valid({ ref: (at(data) << 8) | at(data + 1), total: at(data + 2), seq: at(data + 3) })
    i = data + length
  }
  return undefined
}

/** The name of a `data_coding` as stored with an inbound message. */
export const dataCodingName = (dataCoding: number): string =>
  dataCoding === DATA_CODING_GSM7 ? "gsm7" : dataCoding === DATA_CODING_UCS2 ? "ucs2" : dataCoding === 0x03 ? "latin1" : `dcs_${dataCoding}`
