/**
 * `node --expose-gc bench/blacklist-load.ts`: end-to-end load of one large list through Blacklists.layer (ObjectStore
 * HEAD + streamed GET into one buffer + parse on a worker thread + swap), on the local-folder layer and on s3rver.
 * BENCH_NUMBERS (default 10,000,000). Prints the status loadMs, wall time from configure to loaded, peak RSS growth
 * during the load, RSS growth after it (with a GC), and the longest event-loop stall during the load; appends them to
 * bench/RESULTS.md unless BENCH_NO_RECORD=1.
 */
import { Context, Effect, Layer } from "effect"
import { Migrator } from "effect/sql"
import { appendFileSync } from "node:fs"
import { monitorEventLoopDelay } from "node:perf_hooks"
import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import * as Path from "node:path"
import { blacklistMigrations } from "../src/policy/BlacklistMigrations.ts"
import { Blacklists } from "../src/policy/Blacklists.ts"
import { ObjectStore } from "../src/storage/ObjectStore.ts"
import { NodeSqliteClient } from "../src/storage/NodeSqliteClient.ts"
import { s3Server } from "../test/fixtures/S3Server.ts"

const count = Number(process.env.BENCH_NUMBERS ?? 10_000_000)
const rows: Array<string> = []
const gc = (globalThis as { gc?: () => void }).gc
const mb = (bytes: number) => Math.round(bytes / 1048576)

const generate = () => {
  const file = Buffer.allocUnsafe(count * 16 + 64)
  let at = file.write("# bench\n", 0, "latin1")
  let seed = 12345
  for (let i = 0; i < count; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
    at += file.write(`+4915${String(seed % 1_000_000_000).padStart(9, "0")}\n`, at, "latin1")
  }
  return file.subarray(0, at)
}

const migrate = Migrator.make({})({ loader: Migrator.fromRecord(blacklistMigrations), table: "bench_migrations" })

const run = (label: string, storeLayer: Layer.Layer<ObjectStore>, file: Uint8Array) =>
  Effect.gen(function*() {
    const dir = yield* Effect.promise(() => Fs.mkdtemp(Path.join(Os.tmpdir(), "bl-bench-")))
    const Sql = NodeSqliteClient.layer({ filename: Path.join(dir, "db.sqlite") }).pipe(Layer.orDie)
    yield* Effect.gen(function*() {
      yield* migrate
      const store = yield* ObjectStore
      yield* store.put("lists/big.txt", file)
      const context = yield* Layer.build(Blacklists.layer({ pollIntervalMs: 600_000, overlayPollIntervalMs: 600_000 }))
      const blacklists = Context.get(context, Blacklists)
      gc?.()
      const rss0 = process.memoryUsage().rss
      const histogram = monitorEventLoopDelay({ resolution: 10 })
      histogram.enable()
      let peak = rss0
      const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss) }, 20)
      const t0 = performance.now()
      yield* blacklists.configure([{ name: "big", object: "lists/big.txt" }])
      for (;;) {
        const s = blacklists.status()[0]
        if (s?.loadedAt !== null || s.lastError !== null) break
        yield* Effect.sleep(5)
      }
      const wall = performance.now() - t0
      clearInterval(sampler)
      histogram.disable()
      const status = blacklists.status()[0]
      gc?.()
      rows.push(`| ${label} | ${count} | ${mb(file.byteLength)} MB | ${Math.round(status?.loadMs ?? 0)} ms | ${Math.round(wall)} ms | ${mb(peak - rss0)} MB | ${mb(process.memoryUsage().rss - rss0)} MB | ${Math.round(histogram.max / 1e6)} ms |`)
      console.log(JSON.stringify({
        store: label,
        numbers: count,
        fileMB: mb(file.byteLength),
        entries: status?.baseEntries,
        loadMs: status?.loadMs,
        configureToLoadedMs: Math.round(wall),
        lastError: status?.lastError,
        rssPeakGrowthMB: mb(peak - rss0),
        rssAfterGcGrowthMB: mb(process.memoryUsage().rss - rss0),
        maxEventLoopStallMs: Math.round(histogram.max / 1e6)
      }))
    }).pipe(Effect.scoped, Effect.provide(Layer.merge(Sql, storeLayer)))
    yield* Effect.promise(() => Fs.rm(dir, { recursive: true, force: true }))
  })

const file = generate()
const LocalStore = Layer.unwrap(Effect.map(
  Effect.acquireRelease(
    Effect.promise(() => Fs.mkdtemp(Path.join(Os.tmpdir(), "bl-objects-"))),
    (dir) => Effect.promise(() => Fs.rm(dir, { recursive: true, force: true }))
  ),
  (root) => ObjectStore.layerLocal({ root })
)).pipe(Layer.orDie)
const S3Store = Layer.unwrap(Effect.map(s3Server(), (s) => ObjectStore.layerS3({
  endpoint: s.endpoint, region: s.region, bucket: s.bucket, accessKeyId: s.accessKeyId,
  secretAccessKey: s.secretAccessKey, forcePathStyle: true, timeoutMs: 60_000
})))

await Effect.runPromise(Effect.gen(function*() {
  yield* run("local", LocalStore, file)
  yield* run("s3rver", S3Store, file)
}).pipe(Effect.scoped))
if (process.env.BENCH_NO_RECORD !== "1") {
  appendFileSync("bench/RESULTS.md", `\n### ${new Date().toISOString()} — \`node --expose-gc bench/blacklist-load.ts\` (one list through Blacklists: object store, worker-thread parse, swap)\n\n` +
    "| store | numbers | file | load (status) | configure → loaded | peak RSS growth | RSS growth after GC | longest event-loop stall |\n|---|---|---|---|---|---|---|---|\n" +
    rows.join("\n") + "\n")
}
process.exit(0)
