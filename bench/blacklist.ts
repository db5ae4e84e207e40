/**
 * `node --expose-gc bench/blacklist.ts`: loads a blacklist file of BENCH_NUMBERS lines (10,000,000) into a NumberSet
 * and checks against it. The file is generated in memory as bytes, as the object store hands it over: realistic
 * German mobile (+4915x/+4916x/+4917x), UK mobile (+447) and North American (+1) numbers, a few with spaces or
 * comments. Reports the load time and rate, the set's bytes, the process RSS growth over the load (and after a full
 * GC when run with --expose-gc), and `has` throughput over BENCH_LOOKUPS lookups (10,000,000), half of them hits
 * (and `hasValue`'s, the table without the string parse). Prints JSON.
 */
import { parseBlacklist } from "../src/policy/BlacklistFile.ts"

const count = Number(process.env.BENCH_NUMBERS ?? 10_000_000)
const lookups = Number(process.env.BENCH_LOOKUPS ?? 10_000_000)
const gc = (globalThis as { gc?: () => void }).gc

/** A deterministic generator (mulberry32). */
const random = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

const digitsOf = (next: () => number, n: number): string => {
  let s = ""
  for (let i = 0; i < n; i++) s += String(Math.floor(next() * 10))
  return s
}

/** One realistic E.164 number: 50% German mobile, 30% UK mobile, 20% North American. */
const realistic = (next: () => number): string => {
  const r = next()
  if (r < 0.5) return `+491${["51", "52", "57", "59", "60", "62", "70", "71", "72", "73", "75", "76", "77", "78", "79"][Math.floor(next() * 15)]}${digitsOf(next, 7 + Math.floor(next() * 2))}`
  if (r < 0.8) return `+447${digitsOf(next, 9)}`
  return `+1${2 + Math.floor(next() * 8)}${digitsOf(next, 9)}`
}

const mb = (bytes: number) => Math.round((bytes / 1048576) * 10) / 10

const generate = (): { file: Buffer; sample: Array<string> } => {
  const next = random(2027)
  const file = Buffer.allocUnsafe(count * 18 + 64)
  const sample: Array<string> = []
  let at = file.write("# bench blacklist\n", 0, "latin1")
  for (let i = 0; i < count; i++) {
    const number = realistic(next)
    if (i < lookups / 2) sample.push(number)
    // One line in a thousand carries a trailing comment, one in a hundred spaces inside.
    const line = i % 1000 === 0 ? `${number} # opted out\n` : i % 100 === 0 ? `${number.slice(0, 6)} ${number.slice(6)}\n` : `${number}\n`
    if (at + line.length > file.length) break
    at += file.write(line, at, "latin1")
  }
  return { file: file.subarray(0, at), sample }
}

const { file, sample } = generate()
gc?.()
const rssBefore = process.memoryUsage().rss

const t0 = performance.now()
const { set, invalidCount, duplicateCount } = parseBlacklist(file)
const loadSeconds = (performance.now() - t0) / 1000
const rssAfter = process.memoryUsage().rss
gc?.()
const rssAfterGc = process.memoryUsage().rss

// Lookups: the sampled (present) numbers alternating with the same numbers one digit off at the end (mostly absent).
const probes: Array<string> = []
for (let i = 0; i < sample.length; i++) {
  const number = sample[i] ?? "+4915112345678"
  probes.push(number, number.slice(0, -1) + String((Number(number.at(-1)) + 5) % 10))
}
let hits = 0
const t1 = performance.now()
for (let round = 0; round < Math.ceil(lookups / Math.max(1, probes.length)); round++) {
  for (let i = 0; i < probes.length && round * probes.length + i < lookups; i++) if (set.has(probes[i] ?? "")) hits++
}
const lookupNs = ((performance.now() - t1) * 1e6) / lookups

// The table alone: the same probes as integers, so no string is read.
const values = Float64Array.from(probes, (p) => Number(p.slice(1)))
let valueHits = 0
const t2 = performance.now()
for (let done = 0; done < lookups; ) {
  for (let i = 0; i < values.length && done < lookups; i++, done++) if (set.hasValue(values[i] ?? 0)) valueHits++
}
const valueNs = ((performance.now() - t2) * 1e6) / lookups

console.log(
  JSON.stringify(
    {
      lines: count,
      fileMB: mb(file.length),
      numbers: set.size,
      duplicates: duplicateCount,
      invalid: invalidCount,
      loadSeconds: Math.round(loadSeconds * 1000) / 1000,
      rowsPerSecond: Math.round(count / loadSeconds),
      setMB: mb(set.bytes),
      bytesPerNumber: Math.round((set.bytes / set.size) * 100) / 100,
      rssGrowthMB: mb(rssAfter - rssBefore),
      rssGrowthAfterGcMB: gc === undefined ? "run with --expose-gc" : mb(rssAfterGc - rssBefore),
      lookups,
      hitRate: Math.round((hits / lookups) * 1000) / 1000,
      nsPerLookup: Math.round(lookupNs * 10) / 10,
      nsPerValueLookup: Math.round(valueNs * 10) / 10,
      valueHitRate: Math.round((valueHits / lookups) * 1000) / 1000
    },
    null,
    2
  )
)
