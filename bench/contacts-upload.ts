/**
 * `npm run bench:upload`: a 1,000,000-row CSV generated as a stream (never on disk, never whole in memory) uploaded
 * through the real HTTP endpoint (POST /v1/lists/{id}/contacts/upload) of an embedded gateway in this process, on
 * SQLite (default) or PostgreSQL (`BENCH_STORAGE=postgres`, a fresh database on 127.0.0.1:5432 dropped afterwards).
 * Samples the process's RSS every 20 ms during the upload and prints the peak growth over the RSS before it, the time,
 * rows per second, the event loop's delay (p99 and max: whether HTTP and SMPP would have waited) and the import report. `BENCH_ROWS` changes the row count. The client (generator and HTTP upload)
 * runs in a child process, so only the gateway's memory is measured. `BENCH_GC_PROBE=1` with `node --expose-gc`
 * forces a full GC every second and prints the heap then: what the import retains, apart from V8's lazily collected
 * garbage.
 *
 * Rows: every 10th number national (completed with the list's default country DE), every 100th a repeat of an
 * earlier number (a duplicate), every 1,000th invalid; two variable columns, one of them quoted with a comma.
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted } from "effect"
import { HttpServer } from "effect/http"
import { Reactivity } from "effect/reactivity"
import { mkdtempSync, rmSync } from "node:fs"
import { cpus, tmpdir } from "node:os"
import { join } from "node:path"
import { fork } from "node:child_process"
import { Readable } from "node:stream"
import { monitorEventLoopDelay } from "node:perf_hooks"
import type { GatewayConfig } from "../src/layers/Config.ts"
import { embeddedLayer } from "../src/layers/Gateway.ts"

const rows = Number(process.env.BENCH_ROWS ?? 1_000_000)
const storage = process.env.BENCH_STORAGE === "postgres" ? "postgres" : "sqlite"
const pgBase = `postgres://${process.env.PGUSER ?? "postgres"}@${process.env.PGHOST ?? "127.0.0.1"}:${process.env.PGPORT ?? "5432"}`

/** The i-th row: a German mobile number, international or national, a duplicate or an invalid one now and then. */
const row = (i: number): string => {
  if (i % 1000 === 999) return `Invalid ${i},12${i},"Nowhere, Land"\n`
  const n = i % 100 === 99 ? i - 50 : i
  const subscriber = String(10_000_000 + n).padStart(8, "0")
  const phone = n % 10 === 3 ? `0151 ${subscriber}` : `+49151${subscriber}`
  return `Person ${i},${phone},"Berlin, Mitte"\n`
}

/** The file as a stream of ~64 KB chunks, made as the upload pulls them. */
const csvStream = (): Readable => {
  let i = 0
  return new Readable({
    read() {
      if (i === 0) this.push("\uFEFFname,phone,district\n")
      let chunk = ""
      while (i < rows && chunk.length < 64 * 1024) chunk += row(i++)
      this.push(chunk === "" ? null : chunk)
    }
  })
}

const adminSql = (statement: string) =>
  Effect.gen(function*() {
    const admin = yield* PgClient.make({ url: Redacted.make(`${pgBase}/test`), maxConnections: 1 })
    yield* admin.unsafe(statement)
  }).pipe(Effect.scoped, Effect.provide(Reactivity.layer))

const json = async (response: Response) => (await response.json()) as Record<string, unknown>

/** This file run as the client: uploads the generated file to the URL it is given and sends back the answer. */
const runClient = async (url: string, token: string) => {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "text/csv", authorization: `Bearer ${token}` },
    body: Readable.toWeb(csvStream()) as ReadableStream<Uint8Array>,
    duplex: "half"
  } as RequestInit)
  process.send?.({ status: response.status, report: await json(response) })
}

const uploadFromChild = (url: string, token: string) =>
  new Promise<{ readonly status: number; readonly report: Record<string, unknown> }>((resolve, reject) => {
    const child = fork(import.meta.filename, [], {
      env: { ...process.env, BENCH_CLIENT_URL: url, BENCH_CLIENT_TOKEN: token },
      execArgv: ["--disable-warning=ExperimentalWarning"]
    })
    child.once("message", (answer) => resolve(answer as { status: number; report: Record<string, unknown> }))
    child.once("exit", (code) => code !== 0 && reject(new Error(`client exited with ${code}`)))
  })

const program = Effect.gen(function*() {
  const dir = yield* Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), "smsgw-upload-bench-"))),
    (path) => Effect.sync(() => rmSync(path, { recursive: true, force: true }))
  )
  const database = `smsgw_upload_bench_${Date.now().toString(36)}`
  if (storage === "postgres") {
    yield* adminSql(`CREATE DATABASE ${database}`)
    yield* Effect.addFinalizer(() => adminSql(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).pipe(Effect.ignore))
  }
  const config: GatewayConfig = {
    storage: storage === "postgres"
      ? { kind: "postgres", url: `${pgBase}/${database}`, runnerPath: join(dir, "runner.db") }
      : { kind: "sqlite", path: join(dir, "gateway.db") },
    links: [],
    objectStore: { kind: "local", root: join(dir, "objects") },
    http: { port: 0, host: "127.0.0.1" }
  }
  const context = yield* Layer.build(embeddedLayer(config))
  const server = yield* HttpServer.HttpServer.pipe(Effect.provide(context))
  const port = "port" in server.address ? server.address.port : 0
  const base = `http://127.0.0.1:${port}`

  const result = yield* Effect.promise(async () => {
    const password = "correct horse battery staple"
    const email = "bench@example.com"
    const post = (path: string, body: unknown, token?: string) =>
      fetch(`${base}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json", ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify(body)
      })
    await post("/v1/auth/register", { email, password, name: "Bench", organisation: "Bench" })
    const token = String((await json(await post("/v1/auth/token", { email, password }))).accessToken)
    const list = await json(await post("/v1/lists", { name: "Bench", defaultCountry: "DE" }, token))
    const upload = (body: Readable) =>
      fetch(`${base}/v1/lists/${String(list.id)}/contacts/upload`, {
        method: "POST",
        headers: { "content-type": "text/csv", authorization: `Bearer ${token}` },
        body: Readable.toWeb(body) as ReadableStream<Uint8Array>,
        duplex: "half"
      } as RequestInit)

    // Warm up the path once (code loaded and compiled), then settle before the baseline.
    await (await upload(Readable.from(["phone\n+4915112345678\n"]))).text()
    globalThis.gc?.()
    await new Promise((resolve) => setTimeout(resolve, 500))
    const baseline = process.memoryUsage()
    let peakRss = baseline.rss
    let peakHeap = baseline.heapUsed
    const sampler = setInterval(() => {
      const now = process.memoryUsage()
      peakRss = Math.max(peakRss, now.rss)
      peakHeap = Math.max(peakHeap, now.heapUsed)
    }, 20)
    const probe = process.env.BENCH_GC_PROBE === "1" ? setInterval(() => {
      globalThis.gc?.()
      const m = process.memoryUsage()
      console.error(`after gc: heap ${(m.heapUsed / 2 ** 20).toFixed(0)} MB, rss ${(m.rss / 2 ** 20).toFixed(0)} MB, external ${(m.external / 2 ** 20).toFixed(0)} MB, arrayBuffers ${(m.arrayBuffers / 2 ** 20).toFixed(0)} MB`)
    }, 1000) : undefined
    const loopDelay = monitorEventLoopDelay({ resolution: 10 })
    loopDelay.enable()
    const started = performance.now()
    const cpu = process.cpuUsage()
    // The client (file generator and HTTP upload) runs in a process of its own: only the gateway's memory is measured.
    const { status, report } = await uploadFromChild(`${base}/v1/lists/${String(list.id)}/contacts/upload`, token)
    const ms = performance.now() - started
    const used = process.cpuUsage(cpu)
    clearInterval(sampler)
    loopDelay.disable()
    if (probe !== undefined) clearInterval(probe)
    const after = await json(await fetch(`${base}/v1/lists/${String(list.id)}`, { headers: { authorization: `Bearer ${token}` } }))
    return {
      storage,
      rows,
      status,
      seconds: +(ms / 1000).toFixed(1),
      rowsPerSecond: Math.round(rows / (ms / 1000)),
      cpuSeconds: +((used.user + used.system) / 1e6).toFixed(1),
      baselineRssMB: +(baseline.rss / 2 ** 20).toFixed(0),
      peakRssGrowthMB: +((peakRss - baseline.rss) / 2 ** 20).toFixed(1),
      peakHeapGrowthMB: +((peakHeap - baseline.heapUsed) / 2 ** 20).toFixed(1),
      eventLoopDelayMs: { p99: +(loopDelay.percentile(99) / 1e6).toFixed(1), max: +(loopDelay.max / 1e6).toFixed(1) },
      report: { ...report, invalidRows: `${(report.invalidRows as ReadonlyArray<unknown> | undefined)?.length ?? 0} listed` },
      listContacts: after.contacts,
      machine: `${cpus().length} cores, ${cpus()[0]?.model ?? "?"}, Node ${process.version}`
    }
  })
  console.log(JSON.stringify(result, null, 2))
})

const clientUrl = process.env.BENCH_CLIENT_URL
if (clientUrl !== undefined) {
  await runClient(clientUrl, process.env.BENCH_CLIENT_TOKEN ?? "")
} else {
  await Effect.runPromise(Effect.scoped(program))
}
