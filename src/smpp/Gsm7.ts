/**
 * GSM 03.38 default alphabet with its extension table, unpacked: one septet per octet, as SMPP `short_message`
 * carries it with `data_coding` 0x00.
 */

/** The default alphabet in code order; 0x1B is the escape to the extension table and never a character of its own. */
const basic =
  "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\u001bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
  "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"

/** Extension table: [septet after the escape, character]. */
const extension: ReadonlyArray<readonly [number, string]> = [
  [0x0a, "\f"],
  [0x14, "^"],
  [0x28, "{"],
  [0x29, "}"],
  [0x2f, "\\"],
  [0x3c, "["],
  [0x3d, "~"],
  [0x3e, "]"],
  [0x40, "|"],
  [0x65, "€"]
]

export const ESCAPE = 0x1b

const EXTENDED = 0x100
const ABSENT = -1

/** UTF-16 code unit → septet (basic), EXTENDED | septet (extension) or ABSENT; indexed up to "€" (U+20AC). */
const encodeTable = new Int16Array(0x20ad).fill(ABSENT)
/** Septet → UTF-16 code unit, for both tables; an unused extension code falls back to the basic character. */
const decodeBasic = new Uint16Array(128)
const decodeExtension = new Uint16Array(128)

for (let septet = 0; septet < 128; septet++) {
  const unit = basic.charCodeAt(septet)
  decodeBasic[septet] = unit
  decodeExtension[septet] = unit
  if (septet !== ESCAPE) encodeTable[unit] = septet
}
for (const [septet, char] of extension) {
  const unit = char.charCodeAt(0)
  encodeTable[unit] = EXTENDED | septet
  decodeExtension[septet] = unit
}

/** The table entry of one UTF-16 code unit: ABSENT (-1), a septet, or EXTENDED | septet. */
const lookup = (unit: number): number => (unit < encodeTable.length ? (encodeTable[unit] ?? ABSENT) : ABSENT)

/** Septets one UTF-16 code unit takes: 1, 2 (escaped), or 0 when it is not in GSM 03.38. */
export const septetsOf = (unit: number): 0 | 1 | 2 => {
  const entry = lookup(unit)
  return entry === ABSENT ? 0 : entry & EXTENDED ? 2 : 1
}

/** Index of the first UTF-16 code unit outside GSM 03.38 (basic + extension), or -1 when all of it fits. */
export const firstNonGsm7Index = (text: string): number => {
  for (let i = 0; i < text.length; i++) {
    if (lookup(text.charCodeAt(i)) === ABSENT) return i
  }
  return -1
}

export const isGsm7 = (text: string): boolean => firstNonGsm7Index(text) === -1

/** Septets the text takes; extension characters count 2, characters outside the alphabet count 1 (they become "?"). */
export const septetLength = (text: string): number => {
  let n = text.length
  for (let i = 0; i < text.length; i++) {
    if (lookup(text.charCodeAt(i)) >= EXTENDED) n++
  }
  return n
}

const QUESTION_MARK = 0x3f

/** Unpacked septets; a character outside GSM 03.38 is written as "?" (check with isGsm7 first when that matters). */
export const encodeGsm7 = (text: string): Buffer => {
  const out = Buffer.allocUnsafe(septetLength(text))
  let o = 0
  for (let i = 0; i < text.length; i++) {
    const entry = lookup(text.charCodeAt(i))
    if (entry === ABSENT) {
      out[o++] = QUESTION_MARK
    } else if (entry & EXTENDED) {
      out[o++] = ESCAPE
      out[o++] = entry & 0x7f
    } else {
      out[o++] = entry
    }
  }
  return out
}

/** Decodes unpacked septets; an escape before an unused code yields the basic character, a trailing escape nothing. */
export const decodeGsm7 = (bytes: Uint8Array): string => {
  // UTF-16LE written byte by byte: one buffer, no per-character strings, independent of the platform's endianness.
  const out = Buffer.allocUnsafe(bytes.length * 2)
  let o = 0
  for (let i = 0; i < bytes.length; i++) {
    let unit: number
    const septet = (bytes[i] ?? 0) & 0x7f
    if (septet === ESCAPE) {
      i++
      if (i >= bytes.length) break
      unit = decodeExtension[(bytes[i] ?? 0) & 0x7f] ?? QUESTION_MARK
    } else {
      unit = decodeBasic[septet] ?? QUESTION_MARK
    }
    out[o++] = unit & 0xff
    out[o++] = unit >>> 8
  }
  return out.toString("utf16le", 0, o)
}
