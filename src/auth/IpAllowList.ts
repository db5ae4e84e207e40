/**
 * IPv4/IPv6 CIDR allow-lists of apps: parsed once, then an address is matched by number on the submit path.
 */
import ipaddr from "ipaddr.js"
import { Result } from "effect"

/** An IPv4 address as an unsigned 32-bit number, or an IPv6 address as four of them (most significant first). */
export type Address =
  | { readonly family: 4; readonly value: number }
  | { readonly family: 6; readonly words: readonly [number, number, number, number] }

interface V4Range {
  readonly net: number
  readonly mask: number
}

interface V6Range {
  readonly net: readonly [number, number, number, number]
  readonly mask: readonly [number, number, number, number]
}

/** Parsed once; `allows` and `contains` only parse the address they are asked about. */
export interface AllowList {
  /** The entries in canonical form (`10.0.0.0/8`, `2001:db8::/32`, a bare address for a single host). */
  readonly entries: ReadonlyArray<string>
  readonly v4: ReadonlyArray<V4Range>
  readonly v6: ReadonlyArray<V6Range>
}

export interface AllowListError {
  readonly entry: string
  readonly message: string
}

export const emptyAllowList: AllowList = { entries: [], v4: [], v6: [] }

/** Strict dotted decimal: four octets 0–255, no leading zeros (`010` would be octal to some parsers). */
const parseV4 = (s: string): number | undefined => {
  let value = 0
  let octet = 0
  let digits = 0
  let dots = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c >= 48 && c <= 57) {
      if (digits > 0 && octet === 0) return undefined
      octet = octet * 10 + (c - 48)
      digits++
      if (octet > 255) return undefined
    } else if (c === 46) {
      if (digits === 0 || dots === 3) return undefined
      value = value * 256 + octet
      octet = 0
      digits = 0
      dots++
    } else {
      return undefined
    }
  }
  return digits === 0 || dots !== 3 ? undefined : value * 256 + octet
}

const hex4 = (n: number): string => n.toString(16)

/**
 * IPv6 through ipaddr.js, except a trailing dotted IPv4 part, which is read strictly here: ipaddr.js accepts hex and
 * octal octets there and turns `::a.b.c.d` into `::ffff:a.b.c.d`.
 */
const parseV6 = (s: string): readonly [number, number, number, number] | undefined => {
  let text = s
  const lastColon = s.lastIndexOf(":")
  if (lastColon < 0) return undefined
  if (s.indexOf(".", lastColon) >= 0) {
    const v4 = parseV4(s.slice(lastColon + 1))
    if (v4 === undefined) return undefined
    text = `${s.slice(0, lastColon + 1)}${hex4(Math.floor(v4 / 65536))}:${hex4(v4 % 65536)}`
  }
  let parts: Array<number>
  try {
    parts = ipaddr.IPv6.parse(text).parts
  } catch {
    return undefined
  }
  const [p0 = 0, p1 = 0, p2 = 0, p3 = 0, p4 = 0, p5 = 0, p6 = 0, p7 = 0] = parts
  return [p0 * 65536 + p1, p2 * 65536 + p3, p4 * 65536 + p5, p6 * 65536 + p7]
}

const isMapped = (w: readonly [number, number, number, number]): boolean => w[0] === 0 && w[1] === 0 && w[2] === 0xffff

/**
 * Reads an address as a socket or a header reports it: IPv4, IPv6 with an optional `%zone` (dropped), and
 * IPv4-mapped IPv6 (`::ffff:1.2.3.4`, what dual-stack sockets report), which becomes the IPv4 address.
 */
export const parseAddress = (ip: string): Address | undefined => {
  const v4 = parseV4(ip)
  if (v4 !== undefined) return { family: 4, value: v4 }
  // What a dual-stack socket reports for every IPv4 client: skip the general parser.
  if (ip.length > 7 && ip.slice(0, 7).toLowerCase() === "::ffff:") {
    const mapped = parseV4(ip.slice(7))
    if (mapped !== undefined) return { family: 4, value: mapped }
  }
  const zone = ip.indexOf("%")
  const words = parseV6(zone >= 0 ? ip.slice(0, zone) : ip)
  if (words === undefined) return undefined
  return isMapped(words) ? { family: 4, value: words[3] } : { family: 6, words }
}

const v4String = (n: number): string =>
  `${Math.floor(n / 16_777_216)}.${Math.floor(n / 65_536) % 256}.${Math.floor(n / 256) % 256}.${n % 256}`

const v6String = (w: readonly [number, number, number, number]): string =>
  new ipaddr.IPv6(w.flatMap((x) => [Math.floor(x / 65536), x % 65536])).toRFC5952String()

export const formatAddress = (a: Address): string => a.family === 4 ? v4String(a.value) : v6String(a.words)

/** The canonical text of an address (mapped IPv6 as IPv4, IPv6 per RFC 5952, no zone), or undefined if it is not one. */
export const normalizeIp = (ip: string): string | undefined => {
  const a = parseAddress(ip)
  return a === undefined ? undefined : formatAddress(a)
}

const mask32 = (bits: number): number => bits <= 0 ? 0 : bits >= 32 ? 0xffffffff : (0xffffffff << (32 - bits)) >>> 0

const mask128 = (prefix: number): readonly [number, number, number, number] => [
  mask32(prefix),
  mask32(prefix - 32),
  mask32(prefix - 64),
  mask32(prefix - 96)
]

const and = (a: number, b: number): number => (a & b) >>> 0

const prefixRe = /^(0|[1-9][0-9]{0,2})$/

type Parsed = { readonly ok: true; readonly v4?: V4Range; readonly v6?: V6Range; readonly canonical: string } | {
  readonly ok: false
  readonly message: string
}

const parseEntry = (raw: string): Parsed => {
  const entry = raw.trim()
  const slash = entry.indexOf("/")
  const addressText = slash < 0 ? entry : entry.slice(0, slash)
  const prefixText = slash < 0 ? undefined : entry.slice(slash + 1)
  if (addressText.includes("%")) return { ok: false, message: "zone ids are not allowed" }
  const address = parseAddress(addressText)
  if (address === undefined) return { ok: false, message: "not an IPv4 or IPv6 address or CIDR" }
  if (prefixText !== undefined && !prefixRe.test(prefixText)) return { ok: false, message: "bad prefix length" }
  // A mapped address with a prefix counts its prefix over 128 bits; as IPv4 it keeps the last 32 of them.
  const mappedV6 = address.family === 4 && parseV4(addressText) === undefined
  const max = address.family === 4 && !mappedV6 ? 32 : 128
  const given = prefixText === undefined ? max : Number(prefixText)
  if (given > max) return { ok: false, message: `prefix length must be 0–${max}` }
  if (address.family === 4) {
    const prefix = mappedV6 ? given - 96 : given
    if (prefix < 0) return { ok: false, message: "an IPv4-mapped range needs a prefix of at least 96" }
    const mask = mask32(prefix)
    const net = and(address.value, mask)
    const canonical = prefix === 32 ? v4String(net) : `${v4String(net)}/${prefix}`
    if (net !== address.value) return { ok: false, message: `host bits are set: did you mean ${canonical}?` }
    return { ok: true, v4: { net, mask }, canonical }
  }
  const mask = mask128(given)
  const w = address.words
  const net = [and(w[0], mask[0]), and(w[1], mask[1]), and(w[2], mask[2]), and(w[3], mask[3])] as const
  const canonical = given === 128 ? v6String(net) : `${v6String(net)}/${given}`
  if (net.some((x, i) => x !== w[i])) return { ok: false, message: `host bits are set: did you mean ${canonical}?` }
  return { ok: true, v6: { net, mask }, canonical }
}

/**
 * Parses IPv4 and IPv6 addresses and CIDRs (a bare address is a /32 or /128). IPv4-mapped IPv6 entries become IPv4
 * ones. An entry with host bits set (`10.0.0.1/8`) is refused rather than widened.
 */
export const parseAllowList = (entries: ReadonlyArray<string>): Result.Result<AllowList, AllowListError> => {
  const v4: Array<V4Range> = []
  const v6: Array<V6Range> = []
  const canonical: Array<string> = []
  for (const entry of entries) {
    const parsed = parseEntry(entry)
    if (!parsed.ok) return Result.fail({ entry, message: parsed.message })
    if (canonical.includes(parsed.canonical)) continue
    canonical.push(parsed.canonical)
    if (parsed.v4 !== undefined) v4.push(parsed.v4)
    if (parsed.v6 !== undefined) v6.push(parsed.v6)
  }
  return Result.succeed({ entries: canonical, v4, v6 })
}

const matches = (list: AllowList, a: Address): boolean => {
  if (a.family === 4) {
    for (const r of list.v4) if (and(a.value, r.mask) === r.net) return true
    return false
  }
  const w = a.words
  for (const r of list.v6) {
    if (
      and(w[0], r.mask[0]) === r.net[0] && and(w[1], r.mask[1]) === r.net[1] &&
      and(w[2], r.mask[2]) === r.net[2] && and(w[3], r.mask[3]) === r.net[3]
    ) return true
  }
  return false
}

/** True when `ip` is inside one of the ranges; an empty list contains nothing. Use this for trusted proxies. */
export const contains = (list: AllowList, ip: string): boolean => {
  if (list.entries.length === 0) return false
  const a = parseAddress(ip)
  return a !== undefined && matches(list, a)
}

/** An app's allow list: empty allows any address; otherwise `ip` must be inside one of the ranges. */
export const allows = (list: AllowList, ip: string): boolean => list.entries.length === 0 || contains(list, ip)
