/**
 * The CDR export: a cluster singleton that, every interval, numbers the messages that reached a final status into a
 * batch and writes the batch as gzip CSV or JSON Lines objects, one per organisation and hour of acceptance; and the
 * re-export of a time range into a prefix of its own (`smsgw cdr export`).
 *
 * Exactly once: a batch's number is stored with its messages before anything is written, and its objects are named by
 * it (`…/hh/b000000000042.csv.gz`). A run that stops half-way (a crash, the object store down) leaves the batch
 * pending; the next run writes the same batch to the same keys, replacing what the stopped one wrote, then marks it
 * done. No message is in two batches, and none is left out.
 */
import { Context, Effect, Layer, Option, Schedule, Stream } from "effect"
import { randomBytes } from "node:crypto"
import { Singleton } from "effect/cluster"
import { promisify } from "node:util"
import { gzip } from "node:zlib"
import { batchRunName, cdrObjectKey, contentTypes, csvHeader, csvLine, jsonLine } from "../domain/Cdr.ts"
import type { CdrFormat } from "../domain/Cdr.ts"
import { StoreUnavailable } from "../domain/Errors.ts"
import { CdrStore } from "../storage/CdrStore.ts"
import type { CdrBatch, CdrCursor, CdrGroup, CdrSelection } from "../storage/CdrStore.ts"
import { ObjectStore } from "../storage/ObjectStore.ts"
import type { ObjectStoreError } from "../storage/ObjectStore.ts"
import { CdrMetrics } from "../observability/Metrics.ts"

export interface CdrExportOptions {
  /** Key prefix of the regular export (default `cdr`). */
  readonly prefix: string
  readonly format: CdrFormat
  /** Most messages in one batch. */
  readonly batchSize: number
  /** Records read and compressed at a time (one gzip member each). */
  readonly pageSize?: number
}

export interface ExportSummary {
  readonly batches: number
  readonly records: number
  readonly objects: number
  readonly keys: ReadonlyArray<string>
}

export class CdrExporter extends Context.Service<CdrExporter, {
  /** Exports every due message now: a pending batch first, then new batches until nothing is due. */
  readonly runOnce: Effect.Effect<ExportSummary, StoreUnavailable | ObjectStoreError>
  /**
   * Writes every final message accepted in [from, to) (epoch ms) under `<prefix>/<name>/<org>/yyyy/mm/dd/hh/`, for
   * reconciliation; batches and the regular export are untouched.
   */
  readonly reexport: (options: {
    readonly from: number
    readonly to: number
    readonly prefix: string
    readonly name: string
  }) => Effect.Effect<ExportSummary, StoreUnavailable | ObjectStoreError>
  /** Sets the lag gauge from the store: how long the longest-waiting final message has waited. */
  readonly measureLag: Effect.Effect<void, StoreUnavailable>
}>()("smsgw/pipeline/CdrExporter") {}

const gzipAsync = promisify(gzip)

/**
 * The exporter over the store and the object store. Compression runs on libuv's thread pool (one gzip member per
 * page: a valid gzip file that every reader takes whole), so it does not hold the gateway's main thread.
 */
export const layer = (options: CdrExportOptions) =>
  Layer.effect(
    CdrExporter,
    Effect.gen(function*() {
      const store = yield* CdrStore
      const objects = yield* ObjectStore
      const metrics = yield* CdrMetrics
      const pageSize = options.pageSize ?? 2000

      /**
       * One group's records as gzip members, page by page; the CSV header leads the first. `seen` counts the records
       * streamed, so a group that yields fewer than it counted fails its batch instead of marking it done.
       */
      const groupBody = (selection: CdrSelection, group: CdrGroup, format: CdrFormat, seen: { count: number }) =>
        Stream.paginate(
          { after: undefined as CdrCursor | undefined, first: true },
          (state) =>
            Effect.gen(function*() {
              const records = yield* store.page(selection, group, state.after, pageSize)
              seen.count += records.length
              const line = format === "csv" ? csvLine : jsonLine
              let text = state.first && format === "csv" ? csvHeader : ""
              for (const r of records) text += line(r)
              const last = records.at(-1)
              const next = records.length === pageSize && last !== undefined
                ? Option.some({ after: { createdAt: last.acceptedAt, id: last.id }, first: false })
                : Option.none()
              if (text === "") return [[], next] as const
              const member = yield* Effect.promise(() => gzipAsync(text))
              return [[new Uint8Array(member.buffer, member.byteOffset, member.byteLength)], next] as const
            })
        )

      const write = (selection: CdrSelection, format: CdrFormat, keyOf: (group: CdrGroup) => string) =>
        Effect.gen(function*() {
          const groups = yield* store.groups(selection)
          const keys: Array<string> = []
          let records = 0
          for (const group of groups) {
            const key = keyOf(group)
            const seen = { count: 0 }
            yield* objects.upload(key, groupBody(selection, group, format, seen), contentTypes[format])
            if (seen.count !== group.messages) {
              return yield* new StoreUnavailable({
                message: `CDR object ${key}: ${seen.count} records read back where ${group.messages} were counted`
              })
            }
            keys.push(key)
            records += group.messages
          }
          metrics.exported(records, keys.length)
          return { records, keys }
        })

      const writeBatch = (b: CdrBatch) =>
        Effect.gen(function*() {
          const run = batchRunName(b.batch, b.token)
          const written = yield* write(
            { _tag: "Batch", batch: b.batch },
            b.format,
            (g) => cdrObjectKey(b.prefix, g.organisation, g.hour, run, b.format)
          )
          yield* store.finish(b.batch, written.keys.length, Date.now())
          yield* Effect.logInfo("CDR batch exported").pipe(
            Effect.annotateLogs({ batch: b.batch, records: written.records, objects: written.keys.length })
          )
          return written
        }).pipe(Effect.withSpan("smsgw.cdr.batch", { attributes: { "smsgw.cdr.batch": b.batch } }))

      const runOnce = Effect.gen(function*() {
        let batches = 0
        let records = 0
        const keys: Array<string> = []
        const add = (written: { readonly records: number; readonly keys: ReadonlyArray<string> }) => {
          batches++
          records += written.records
          keys.push(...written.keys)
        }
        for (const batch of yield* store.pendingBatches) add(yield* writeBatch(batch))
        for (;;) {
          const naming = { token: randomBytes(4).toString("hex"), prefix: options.prefix, format: options.format }
          const next = yield* store.assign(options.batchSize, Date.now(), naming)
          if (Option.isNone(next)) break
          add(yield* writeBatch(next.value))
        }
        yield* measureLag
        return { batches, records, objects: keys.length, keys }
      })

      const measureLag = store.oldestDue.pipe(
        Effect.map((oldest) => metrics.lag(Option.isNone(oldest) ? 0 : Math.max(0, (Date.now() - oldest.value) / 1000)))
      )

      const reexport = (o: { readonly from: number; readonly to: number; readonly prefix: string; readonly name: string }) =>
        write(
          { _tag: "Range", from: o.from, to: o.to },
          options.format,
          (g) => cdrObjectKey(`${o.prefix}/${o.name}`, g.organisation, g.hour, "part", options.format)
        ).pipe(Effect.map((w) => ({ batches: 0, records: w.records, objects: w.keys.length, keys: w.keys })))

      return CdrExporter.of({ runOnce, reexport, measureLag })
    })
  )

/**
 * Runs the export every `intervalMs` on one node of the cluster (a singleton, which moves to a survivor with its
 * runner's shards). A failed run (the store or the object store down) is counted, logged, and retried next interval:
 * its batch stays pending, so the catch-up writes it first.
 */
export const scheduleLayer = (options: { readonly intervalMs: number }) =>
  Layer.unwrap(Effect.gen(function*() {
    const exporter = yield* CdrExporter
    const metrics = yield* CdrMetrics
    const tick = exporter.runOnce.pipe(
      Effect.catchCause((cause) =>
        Effect.sync(() => metrics.failed()).pipe(
          Effect.andThen(Effect.logWarning("CDR export failed; retried next interval").pipe(Effect.annotateLogs({ cause: String(cause) })))
        )
      )
    )
    // The lag read from the store on a timer of its own: it grows while runs fail, hang or catch up, as an alert needs.
    const lag = exporter.measureLag.pipe(
      Effect.timeout("10 seconds"),
      Effect.ignore,
      Effect.repeat(Schedule.spaced(Math.min(options.intervalMs, 15_000)))
    )
    // The lag is this node's to tell only while it runs the export: a node the singleton leaves shows 0 again.
    return Singleton.make(
      "smsgw/cdr-export",
      Effect.all([
        tick.pipe(Effect.delay(options.intervalMs), Effect.repeat(Schedule.spaced(options.intervalMs))),
        lag
      ], { concurrency: 2, discard: true }).pipe(Effect.ensuring(Effect.sync(() => metrics.lag(0))))
    )
  }))
