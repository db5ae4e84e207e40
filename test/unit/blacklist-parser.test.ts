import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Exit, Fiber, Layer } from "effect"
import { Migrator } from "effect/sql"
import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import * as Path from "node:path"
import { pathToFileURL } from "node:url"
import { MAX_REPORTED_INVALID, parseBlacklist } from "../../src/policy/BlacklistFile.ts"
import type { ParsedBlacklist } from "../../src/policy/BlacklistFile.ts"
import { blacklistMigrations } from "../../src/policy/BlacklistMigrations.ts"
import { INLINE_BELOW_BYTES, parseBlacklistOffThread } from "../../src/policy/BlacklistParser.ts"
import { Blacklists } from "../../src/policy/Blacklists.ts"
import { ObjectStore } from "../../src/storage/ObjectStore.ts"
import { sqliteLayer } from "../fixtures/Databases.ts"
import { eventually } from "../fixtures/Eventually.ts"
import { runningWorkers, workerScripts } from "../fixtures/Workers.ts"

/** A deterministic generator (mulberry32), so a failure can be replayed. */
const random = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

const digitsOf = (next: () => number, length: number) => {
  let digits = String(1 + Math.floor(next() * 9))
  while (digits.length < length) digits += String(Math.floor(next() * 10))
  return digits
}

/**
 * A list as people write them: numbers with and without `+`, spaced and dashed, CRLF and LF, comments, blank lines,
 * repeats of earlier numbers, and invalid lines (more than the report keeps) of every kind the parser refuses.
 */
const generate = (lines: number, seed = 42): Uint8Array => {
  const next = random(seed)
  const written: Array<string> = []
  const out: Array<string> = ["\uFEFF# generated list\n"]
  for (let i = 0; i < lines; i++) {
    const roll = next()
    const eol = next() < 0.2 ? "\r\n" : "\n"
    if (roll < 0.002) {
      const bad = ["not-a-number", "123456", "0491511234567", "1234567890123456", "+49 151 x 1234", "++4915112345678", "-4915112345"]
      out.push(`${bad[Math.floor(next() * bad.length)]}${eol}`)
    } else if (roll < 0.004) {
      out.push(next() < 0.5 ? eol : `# a comment ${i}${eol}`)
    } else if (roll < 0.05 && written.length > 0) {
      out.push(`${written[Math.floor(next() * written.length)]}${eol}`)
    } else {
      const digits = digitsOf(next, 7 + Math.floor(next() * 9))
      const shape = next()
      const text = shape < 0.5
        ? `+${digits}`
        : shape < 0.8
        ? digits
        : shape < 0.9
        ? `+${digits.slice(0, 2)} ${digits.slice(2, 5)}-${digits.slice(5)}`
        : `${digits}   # trailing`
      written.push(text)
      out.push(`${text}${eol}`)
    }
  }
  return new TextEncoder().encode(out.join(""))
}

/** Same numbers, same counts, same invalid-line report, and the very same table. */
const expectSameParse = (actual: ParsedBlacklist, expected: ParsedBlacklist) => {
  expect(actual.set.size).toBe(expected.set.size)
  expect(actual.invalidCount).toBe(expected.invalidCount)
  expect(actual.duplicateCount).toBe(expected.duplicateCount)
  expect(actual.invalid).toEqual(expected.invalid)
  for (const msisdn of expected.set.values()) {
    if (!actual.set.has(msisdn)) expect.fail(`${msisdn} missing`)
  }
  expect(Buffer.from(actual.set.table.buffer).equals(Buffer.from(expected.set.table.buffer))).toBe(true)
}

/** Worker scripts that misbehave. */
const misbehaving = workerScripts("smsgw-parser-", {
  throws: `throw new Error("boom in the parser")`,
  exits: `process.exit(3)`,
  answersNothing: `// ends without posting`,
  answersGarbage: `import { parentPort } from "node:worker_threads"
    // A full table: a lookup of a missing number would never stop.
    parentPort.postMessage({ table: new Float64Array([1e6, 2e6]), size: 2, invalid: [], invalidCount: 0, duplicateCount: 0 })`,
  spins: `for (;;) {}`
})

const small = () => new TextEncoder().encode("+4915112345678\n4915112345679\n")

describe("parseBlacklistOffThread", () => {
  it.live("parses in a worker exactly as parseBlacklist does: numbers, counts, invalid lines, the table itself", () =>
    Effect.gen(function*() {
      const bytes = generate(200_000)
      const expected = parseBlacklist(bytes)
      // The generated list exercises every branch.
      expect(expected.invalidCount).toBeGreaterThan(MAX_REPORTED_INVALID)
      expect(expected.invalid).toHaveLength(MAX_REPORTED_INVALID)
      expect(expected.duplicateCount).toBeGreaterThan(1000)
      expect(expected.set.size).toBeGreaterThan(180_000)

      const before = runningWorkers()
      const input = new Uint8Array(bytes)
      const actual = yield* parseBlacklistOffThread(input, { inlineBelowBytes: 0 })
      expectSameParse(actual, expected)
      expect(actual.set.has("+4915112345678")).toBe(expected.set.has("+4915112345678"))
      // Handed over, not copied: the caller's buffer went to the worker.
      expect(input.buffer.detached).toBe(true)
      expect(input.byteLength).toBe(0)
      // And the worker is gone once the parse is done.
      expect(runningWorkers()).toBe(before)
    }))

  it.live("an empty file and a file of only comments parse to an empty set in a worker too", () =>
    Effect.gen(function*() {
      for (const text of ["", "# nothing\n\n", "\uFEFF"]) {
        const bytes = new TextEncoder().encode(text)
        const actual = yield* parseBlacklistOffThread(new Uint8Array(bytes), { inlineBelowBytes: 0 })
        expectSameParse(actual, parseBlacklist(bytes))
        expect(actual.set.size).toBe(0)
        expect(actual.set.has("+4915112345678")).toBe(false)
      }
    }))

  it.live("a file from the threshold up goes to a worker by default; a smaller one is parsed inline, its bytes left alone", () =>
    Effect.gen(function*() {
      const large = generate(80_000, 7)
      expect(large.byteLength).toBeGreaterThanOrEqual(INLINE_BELOW_BYTES)
      const expectedLarge = parseBlacklist(large)
      const largeInput = new Uint8Array(large)
      expectSameParse(yield* parseBlacklistOffThread(largeInput), expectedLarge)
      expect(largeInput.buffer.detached).toBe(true)

      const modest = generate(2_000, 8)
      expect(modest.byteLength).toBeLessThan(INLINE_BELOW_BYTES)
      const modestInput = new Uint8Array(modest)
      expectSameParse(yield* parseBlacklistOffThread(modestInput), parseBlacklist(modest))
      expect(modestInput.buffer.detached).toBe(false)
      expect(modestInput).toEqual(modest)
    }))

  it.live("bytes that share their buffer are copied once, the shared buffer left intact", () =>
    Effect.gen(function*() {
      const list = generate(5_000, 9)
      const expected = parseBlacklist(list)

      // A view on the middle of a larger buffer: transferring it would take the rest away from its owner.
      const larger = new Uint8Array(list.byteLength + 64)
      larger.fill(0x41)
      larger.set(list, 32)
      const view = larger.subarray(32, 32 + list.byteLength)
      expectSameParse(yield* parseBlacklistOffThread(view, { inlineBelowBytes: 0 }), expected)
      expect(larger.buffer.detached).toBe(false)
      expect(larger[0]).toBe(0x41)
      expect(view).toEqual(list)

      // Shared memory cannot be transferred at all.
      const shared = new Uint8Array(new SharedArrayBuffer(list.byteLength))
      shared.set(list)
      expectSameParse(yield* parseBlacklistOffThread(shared, { inlineBelowBytes: 0 }), expected)
      expect(shared).toEqual(list)

      // A small Buffer lives in Node's pool, which Node marks untransferable.
      const pooled = Buffer.from("+4915112345678\n")
      expect(pooled.byteLength).toBeLessThan(pooled.buffer.byteLength)
      const parsed = yield* parseBlacklistOffThread(pooled, { inlineBelowBytes: 0 })
      expect(parsed.set.has("4915112345678")).toBe(true)
      expect(pooled.toString()).toBe("+4915112345678\n")
    }))

  it.live("bytes already handed over fail instead of parsing as an empty list", () =>
    Effect.gen(function*() {
      const bytes = small()
      yield* parseBlacklistOffThread(bytes, { inlineBelowBytes: 0 })
      const error = yield* Effect.flip(parseBlacklistOffThread(bytes))
      expect(error._tag).toBe("BlacklistParseError")
      expect(error.message).toContain("detached")
    }))

  it.live("a worker that throws, exits, ends without an answer or answers garbage fails the parse; none is left running", () =>
    Effect.scoped(Effect.gen(function*() {
      const scripts = yield* misbehaving
      const before = runningWorkers()
      const cases = [
        [scripts.throws, "boom in the parser"],
        [scripts.exits, "exited (code 3) without an answer"],
        [scripts.answersNothing, "exited (code 0) without an answer"],
        [scripts.answersGarbage, "answered nothing usable"]
      ] as const
      for (const [worker, message] of cases) {
        const error = yield* Effect.flip(parseBlacklistOffThread(small(), { inlineBelowBytes: 0, worker }))
        expect(error._tag).toBe("BlacklistParseError")
        expect(error.message).toContain(message)
        expect(runningWorkers()).toBe(before)
      }
      // A script that is not there fails too.
      const missing = new URL("missing.mjs", pathToFileURL(`${scripts.dir}/`))
      const error = yield* Effect.flip(parseBlacklistOffThread(small(), { inlineBelowBytes: 0, worker: missing }))
      expect(error._tag).toBe("BlacklistParseError")
      expect(runningWorkers()).toBe(before)
    })))

  it.live("a worker that never answers fails the parse at the timeout and is terminated, busy as it is", () =>
    Effect.scoped(Effect.gen(function*() {
      const scripts = yield* misbehaving
      const before = runningWorkers()
      const started = performance.now()
      const error = yield* Effect.flip(
        parseBlacklistOffThread(small(), { inlineBelowBytes: 0, worker: scripts.spins, timeout: "300 millis" })
      )
      const elapsed = performance.now() - started
      expect(error.message).toContain("did not answer within")
      expect(elapsed).toBeGreaterThanOrEqual(290)
      expect(elapsed).toBeLessThan(5_000)
      expect(runningWorkers()).toBe(before)
    })))

  it.live("interrupting a parse (a dropped list, a closing scope) terminates its worker", () =>
    Effect.scoped(Effect.gen(function*() {
      const scripts = yield* misbehaving
      const before = runningWorkers()
      const fiber = yield* Effect.forkChild(
        parseBlacklistOffThread(small(), { inlineBelowBytes: 0, worker: scripts.spins })
      )
      // Running: started, and spinning.
      yield* eventually("the worker started", Effect.sync(() => runningWorkers() !== before), { timeout: 5_000 })
      expect(runningWorkers()).toBe(before + 1)
      yield* Fiber.interrupt(fiber)
      const exit = yield* Fiber.await(fiber)
      expect(Exit.hasInterrupts(exit)).toBe(true)
      expect(runningWorkers()).toBe(before)
    })))
})

describe("Blacklists loads a large file through the worker", () => {
  const migrate = Migrator.make({})({ loader: Migrator.fromRecord(blacklistMigrations), table: "test_migrations" })
  const LocalStore = Layer.unwrap(Effect.map(
    Effect.acquireRelease(
      Effect.promise(() => Fs.mkdtemp(Path.join(Os.tmpdir(), "smsgw-blacklist-parser-"))),
      (dir) => Effect.promise(() => Fs.rm(dir, { recursive: true, force: true }))
    ),
    (root) => ObjectStore.layerLocal({ root })
  )).pipe(Layer.orDie)

  it.live("its status counts the file's bytes, numbers and lines, though the bytes went to the worker", () =>
    Effect.gen(function*() {
      yield* migrate
      const store = yield* ObjectStore
      const file = generate(80_000, 11)
      expect(file.byteLength).toBeGreaterThanOrEqual(INLINE_BELOW_BYTES)
      const expected = parseBlacklist(file)
      const name = `large-${crypto.randomUUID().slice(0, 8)}`
      const { etag } = yield* store.put(`${name}.txt`, file)
      const context = yield* Layer.build(Blacklists.layer({ pollIntervalMs: 60_000, overlayPollIntervalMs: 60_000 }))
      const blacklists = Context.get(context, Blacklists)
      yield* blacklists.configure([{ name, object: `${name}.txt` }])
      yield* eventually("the list loaded or failed", Effect.sync(() => blacklists.status()[0]), {
        timeout: 20_000,
        until: (status) => status.loadedAt !== null || status.lastError !== null
      })
      expect(blacklists.status()[0]).toMatchObject({
        name,
        etag,
        lastError: null,
        stale: false,
        sizeBytes: file.byteLength,
        baseEntries: expected.set.size,
        invalidLines: expected.invalidCount,
        duplicateLines: expected.duplicateCount
      })
      for (const msisdn of [...expected.set.values()].slice(0, 1000)) expect(blacklists.has(name, msisdn)).toBe(true)
      expect(blacklists.has(name, "+999999999999999")).toBe(expected.set.has("+999999999999999"))
    }).pipe(Effect.scoped, Effect.provide(Layer.mergeAll(sqliteLayer, LocalStore))), { timeout: 60_000 })
})
