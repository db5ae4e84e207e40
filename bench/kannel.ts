/**
 * `BENCH_PEER=kannel npm run bench`: the same load against Kannel 1.4.5 (Debian's `kannel`: bearerbox + smsbox), side
 * by side with the gateway. Kannel's link points at the same SMSC simulator process (transceiver, receipts on), the
 * load is one sendsms GET per message at the same concurrency (or the same rate, `BENCH_RATE`) with the same
 * messages, and every accepted message's final delivery report must come back to an HTTP receiver in this process
 * through `dlr-url` (Kannel's only way to hand a receipt to an application), the way the gateway's receipts must end
 * `delivered` in its store.
 *
 * This module generates kannel.conf in a temp dir (ports from the free-port helper, logs and the message store there
 * too, nothing written elsewhere), starts and stops the two boxes, counts the delivery reports, runs the load, and
 * records the comparison (both rows and the gateway / Kannel ratios) on the console and in bench/RESULTS.md.
 *
 * Options (environment): BENCH_KANNEL_STORE=file|none (default file: Kannel's message store, its durability
 * equivalent of our committed 202), BENCH_KANNEL_DLR_MASK (default 31: every report type, as in the issue's run;
 * 1 asks for the final "delivered" report only).
 */
import type { ChildProcess } from "node:child_process"
import { randomBytes } from "node:crypto"
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import http from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { spawnKeepingTail } from "./Spawn.ts"
import { driveLoad } from "./Load.ts"

const bearerbox = "/usr/sbin/bearerbox"
const smsbox = "/usr/sbin/smsbox"

/** The harness's own pieces, passed in by bench/run.ts so the two runs share them (one load generator, one meter). */
export interface BenchTools {
  readonly request: (agent: http.Agent, port: number, method: string, path: string) => Promise<{ status: number; body: string }>
  readonly benchMessage: (i: number) => { readonly to: string; readonly from: string; readonly text: string }
  readonly cpuMicros: (pid: number) => number
  readonly peakRssMb: (pid: number) => number
  readonly percentile: (sorted: ReadonlyArray<number>, p: number) => number
  readonly waitFor: (what: string, check: () => Promise<boolean>, timeoutMs: number) => Promise<unknown>
  readonly freePort: () => Promise<number>
}

/** What the gateway's run used, which Kannel's run repeats: load, SMPP window, receipt delay, the simulator. */
export interface PeerRun {
  readonly messages: number
  readonly concurrency: number
  /** Messages per second offered (open loop); 0: `concurrency` requests in flight. */
  readonly rate: number
  readonly window: number
  readonly receiptDelayMs: number
  readonly smppPort: number
  readonly controlPort: number
}

/** The gateway's figures the comparison needs (a subset of bench/run.ts's result). */
export interface GatewayFigures {
  readonly date: string
  readonly mode: string
  readonly api: string
  readonly acceptedPerSecond: number
  readonly submittedPerSecond: number
  readonly accepted: number
  readonly deliveredInStore: number
  readonly latencyMs: { readonly p50: number; readonly p99: number }
  readonly gatewayCpuMicrosPerMessage: number
  readonly gatewayPeakRssMb: number
}

interface SimStats {
  readonly binds: number
  readonly submits: number
  readonly receiptsAcked: number
}

const storeType = process.env.BENCH_KANNEL_STORE ?? "file"
if (storeType !== "file" && storeType !== "none") throw new Error(`BENCH_KANNEL_STORE: file or none, not ${storeType}`)
const dlrMask = Number(process.env.BENCH_KANNEL_DLR_MASK ?? 31)
if (!Number.isInteger(dlrMask) || (dlrMask & 1) === 0 || dlrMask > 31) {
  throw new Error(`BENCH_KANNEL_DLR_MASK: an integer 1-31 with bit 1 (delivered) set, not ${process.env.BENCH_KANNEL_DLR_MASK}`)
}

/** Whether Kannel is installed where Debian's package puts it. */
export const kannelInstalled = () => existsSync(bearerbox) && existsSync(smsbox)

/** Sends `signal` to a child and resolves once it has exited. */
export const stopped = (child: ChildProcess, signal: NodeJS.Signals = "SIGKILL") =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    child.once("exit", () => resolve())
    child.kill(signal)
  })

interface Ports {
  readonly admin: number
  readonly smsbox: number
  readonly sendsms: number
}

/**
 * kannel.conf. Each setting matches what the gateway's run has, or is Kannel's default; bench/RESULTS.md explains them.
 * Passwords are random per run and live only in the temp dir and on 127.0.0.1.
 */
const kannelConf = (dir: string, ports: Ports, run: PeerRun, adminPassword: string, userPassword: string) => `
group = core
admin-port = ${ports.admin}
admin-interface = 127.0.0.1
admin-password = ${adminPassword}
admin-allow-ip = "127.0.0.1"
smsbox-port = ${ports.smsbox}
smsbox-interface = 127.0.0.1
box-deny-ip = "*.*.*.*"
box-allow-ip = "127.0.0.1"
log-file = "${join(dir, "bearerbox.log")}"
log-level = 2
${storeType === "file" ? `store-type = file\nstore-location = "${join(dir, "kannel.store")}"\n` : ""}dlr-storage = internal

group = smsc
smsc = smpp
smsc-id = sim
host = 127.0.0.1
port = ${run.smppPort}
transceiver-mode = true
smsc-username = bench
smsc-password = bench
system-type = "VMA"
max-pending-submits = ${run.window}

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = ${ports.smsbox}
sendsms-port = ${ports.sendsms}
sendsms-interface = 127.0.0.1
log-file = "${join(dir, "smsbox.log")}"
log-level = 2

group = sendsms-user
username = bench
password = ${userPassword}
user-allow-ip = "127.0.0.1"
`

/** Starts one box on the config; its output's tail is kept for the error when it exits early. */
const startBox = (binary: string, config: string, dir: string) => spawnKeepingTail(binary, ["-v", "2", config], binary, { cwd: dir })

/**
 * The `dlr-url` receiver: Kannel GETs /dlr?r=<run>&i=<message>&t=<report type> (%d is Kannel's placeholder for the type:
 * 1 delivered, 2 failed, 4 buffered, 8 SMSC accepted, 16 SMSC rejected). Answers 200 at once and counts.
 */
const dlrReceiver = async () => {
  const delivered = new Map<string, Set<number>>()
  const byType = new Map<number, number>()
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1")
    const type = Number(url.searchParams.get("t"))
    const run = url.searchParams.get("r") ?? ""
    const i = Number(url.searchParams.get("i"))
    byType.set(type, (byType.get(type) ?? 0) + 1)
    if (type === 1 && Number.isInteger(i)) {
      const set = delivered.get(run) ?? new Set<number>()
      set.add(i)
      delivered.set(run, set)
    }
    res.writeHead(200, { "content-type": "text/plain", "content-length": 2 })
    res.end("ok")
  })
  server.keepAliveTimeout = 30_000
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const address = server.address()
  const port = typeof address === "object" && address !== null ? address.port : 0
  return {
    port,
    delivered: (run: string) => delivered.get(run) ?? new Set<number>(),
    byType: () => Object.fromEntries([...byType].sort((a, b) => a[0] - b[0]).map(([t, n]) => [String(t), n])),
    close: () => new Promise<void>((resolve) => server.close(() => resolve()))
  }
}

/** Kannel's figures, shaped like the gateway's. */
export interface KannelFigures {
  readonly version: string
  readonly store: string
  readonly dlrMask: number
  readonly acceptedPerSecond: number
  readonly submittedPerSecond: number
  readonly accepted: number
  readonly httpFailures: number
  readonly answers: Record<string, number>
  readonly submitted: number
  readonly receiptsAcked: number
  /** Accepted messages whose final "delivered" report (type 1) reached the dlr-url receiver. */
  readonly receiptsMatched: number
  readonly dlrCallbacksByType: Record<string, number>
  readonly latencyMs: { readonly p50: number; readonly p99: number }
  /** bearerbox + smsbox, from the start of the load to the last delivery report. */
  readonly cpuMicrosPerMessage: number
  readonly cpuMicrosPerMessageByBox: { readonly bearerbox: number; readonly smsbox: number }
  /** bearerbox + smsbox peak RSS (VmHWM), added up: both run at once. */
  readonly peakRssMb: number
}

const kannelVersion = () => {
  try {
    const status = readFileSync("/var/lib/dpkg/status", "utf8")
    return /Package: kannel\n(?:[^\n]+\n)*?Version: ([^\n]+)/.exec(status)?.[1] ?? "?"
  } catch {
    return "?"
  }
}

/** Runs Kannel against the simulator with the same load; answers its figures. The simulator must be left running. */
export const runKannel = async (tools: BenchTools, run: PeerRun): Promise<KannelFigures> => {
  const dir = mkdtempSync(join(tmpdir(), "smsgw-bench-kannel-"))
  const ports = { admin: await tools.freePort(), smsbox: await tools.freePort(), sendsms: await tools.freePort() }
  const adminPassword = randomBytes(12).toString("hex")
  const userPassword = randomBytes(12).toString("hex")
  const config = join(dir, "kannel.conf")
  writeFileSync(config, kannelConf(dir, ports, run, adminPassword, userPassword), { mode: 0o600 })
  const agent = new http.Agent({ keepAlive: true, maxSockets: run.concurrency })
  const dlr = await dlrReceiver()
  const boxes: Array<ChildProcess> = []
  const simStats = async () => JSON.parse((await tools.request(agent, run.controlPort, "GET", "/stats")).body) as SimStats
  let finished = false
  try {
    const bindsBefore = (await simStats()).binds
    const bb = startBox(bearerbox, config, dir)
    boxes.push(bb)
    await tools.waitFor("Kannel's SMPP link bound to the simulator", async () => (await simStats()).binds > bindsBefore, 30_000)
    const sb = startBox(smsbox, config, dir)
    boxes.push(sb)
    await tools.waitFor("smsbox's sendsms port up", () => tools.request(agent, ports.sendsms, "GET", "/").then(() => true, () => false), 30_000)
    const sendsms = (i: number, runId: string) => {
      const m = tools.benchMessage(i)
      const dlrUrl = `http://127.0.0.1:${dlr.port}/dlr?r=${runId}&i=${i}&t=%d`
      const query = `username=bench&password=${userPassword}&to=${encodeURIComponent(m.to)}&from=${encodeURIComponent(m.from)}` +
        `&text=${encodeURIComponent(m.text)}&dlr-mask=${dlrMask}&dlr-url=${encodeURIComponent(dlrUrl)}`
      return tools.request(agent, ports.sendsms, "GET", `/cgi-bin/sendsms?${query}`)
    }
    // Warm-up, not counted, as for the gateway: 500 messages, and all their reports. At the load's concurrency, so the
    // keep-alive connections exist before the load: smsbox's small listen backlog drops SYNs when 64 connections open
    // at once, and the 1 s SYN retransmits would show in the p99 (the gateway's backlog is Node's 511).
    const warmup = 500
    const ackedBefore = (await simStats()).receiptsAcked
    let nextWarm = 0
    const warmWorker = async () => {
      while (nextWarm < warmup) await sendsms(1_000_000_000 + nextWarm++, "warmup")
    }
    await Promise.all(Array.from({ length: run.concurrency }, warmWorker))
    await tools.waitFor("Kannel's warm-up reports", async () => dlr.delivered("warmup").size >= warmup, 60_000)
    await tools.waitFor("Kannel's warm-up receipts acknowledged", async () => (await simStats()).receiptsAcked - ackedBefore >= warmup, 60_000)

    const pids = [bb.pid ?? 0, sb.pid ?? 0]
    const before = await simStats()
    const cpuBefore = pids.map(tools.cpuMicros)
    const latencies: Array<number> = []
    const accepted: Array<number> = []
    const answers: Record<string, number> = {}
    let failures = 0
    const started = performance.now()
    // The load of bench/run.ts: one message per request, the same pacing (bench/Load.ts).
    await driveLoad({ messages: run.messages, batchSize: 1, concurrency: run.concurrency, rate: run.rate }, async (i, _count, since) => {
      const r = await sendsms(i, "load").catch(() => ({ status: 0, body: "request failed" }))
      latencies.push(performance.now() - since)
      const answer = `${r.status} ${r.body.trim()}`
      answers[answer] = (answers[answer] ?? 0) + 1
      if (r.status === 202) accepted.push(i)
      else failures++
    })
    const acceptSeconds = (performance.now() - started) / 1000
    await tools.waitFor("Kannel: all submitted", async () => (await simStats()).submits - before.submits >= accepted.length, 120_000)
    const submitSeconds = (performance.now() - started) / 1000
    await tools.waitFor("Kannel: all receipts acknowledged", async () => (await simStats()).receiptsAcked - before.receiptsAcked >= accepted.length, 120_000)
      .catch(() => undefined)
    await tools.waitFor("Kannel: every final report at the dlr-url", async () => dlr.delivered("load").size >= accepted.length, 60_000)
      .catch(() => undefined)
    const cpuAfter = pids.map(tools.cpuMicros)
    const after = await simStats()
    const matched = accepted.filter((i) => dlr.delivered("load").has(i)).length
    latencies.sort((a, b) => a - b)
    finished = true
    const perMessage = (n: number) => Math.round(((cpuAfter[n] ?? 0) - (cpuBefore[n] ?? 0)) / Math.max(1, accepted.length))
    return {
      version: kannelVersion(),
      store: storeType,
      dlrMask,
      acceptedPerSecond: Math.round(accepted.length / acceptSeconds),
      submittedPerSecond: Math.round((after.submits - before.submits) / submitSeconds),
      accepted: accepted.length,
      httpFailures: failures,
      answers,
      submitted: after.submits - before.submits,
      receiptsAcked: after.receiptsAcked - before.receiptsAcked,
      receiptsMatched: matched,
      dlrCallbacksByType: dlr.byType(),
      latencyMs: { p50: +tools.percentile(latencies, 0.5).toFixed(2), p99: +tools.percentile(latencies, 0.99).toFixed(2) },
      cpuMicrosPerMessage: perMessage(0) + perMessage(1),
      cpuMicrosPerMessageByBox: { bearerbox: perMessage(0), smsbox: perMessage(1) },
      peakRssMb: Math.round(pids.reduce((sum, pid) => sum + tools.peakRssMb(pid), 0))
    }
  } finally {
    await Promise.all(boxes.map((b) => stopped(b)))
    if (!finished) {
      // The temp dir goes below: what the boxes logged is shown first, to see why the run failed.
      for (const log of ["bearerbox.log", "smsbox.log"]) {
        const path = join(dir, log)
        if (existsSync(path)) console.error(`Kannel's ${log} (end):\n${readFileSync(path, "utf8").slice(-4000)}`)
      }
    }
    agent.destroy()
    await dlr.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

const ratio = (a: number, b: number) => (b > 0 ? +(a / b).toFixed(2) : null)

/**
 * BENCH_PEER=kannel, at the end of bench/run.ts's main (the gateway already stopped, the simulator still up): runs
 * Kannel, prints both and the gateway / Kannel ratios, and appends them to bench/RESULTS.md unless told not to.
 * Skips with a message when Kannel is not installed. Answers false when Kannel's run lost a message.
 */
export const benchKannel = async (tools: BenchTools, run: PeerRun, gateway: GatewayFigures, record: boolean): Promise<boolean> => {
  if (!kannelInstalled()) {
    console.error(`BENCH_PEER=kannel skipped: ${bearerbox} or ${smsbox} is absent (Debian: apt-get install -y kannel)`)
    return true
  }
  const kannel = await runKannel(tools, run)
  const comparison = {
    peer: `Kannel ${kannel.version}`,
    gateway: {
      acceptedPerSecond: gateway.acceptedPerSecond,
      submittedPerSecond: gateway.submittedPerSecond,
      receiptsMatched: `${gateway.deliveredInStore} / ${gateway.accepted}`,
      latencyMs: gateway.latencyMs,
      cpuMicrosPerMessage: gateway.gatewayCpuMicrosPerMessage,
      peakRssMb: gateway.gatewayPeakRssMb
    },
    kannel,
    /** gateway / Kannel: above 1 the gateway is faster (throughput) or costlier (CPU per message). */
    ratio: {
      acceptedPerSecond: ratio(gateway.acceptedPerSecond, kannel.acceptedPerSecond),
      submittedPerSecond: ratio(gateway.submittedPerSecond, kannel.submittedPerSecond),
      cpuMicrosPerMessage: ratio(gateway.gatewayCpuMicrosPerMessage, kannel.cpuMicrosPerMessage)
    }
  }
  console.log(JSON.stringify(comparison, null, 2))
  if (record) {
    const g = comparison.gateway
    appendFileSync("bench/RESULTS.md", `\nSide by side (\`BENCH_PEER=kannel\`, same simulator, load${run.rate > 0 ? ` (${run.rate} msg/s offered)` : ""}, window ${run.window} and receipt delay, right after the run above): ` +
      `Kannel ${kannel.version}, bearerbox + smsbox, store ${kannel.store === "file" ? "`store-type = file`" : "none (memory only)"}, \`dlr-mask=${kannel.dlrMask}\`.\n\n` +
      `| | accepted msg/s | submitted msg/s | receipts matched | HTTP p50 / p99 | CPU per message | peak RSS |\n|---|---|---|---|---|---|---|\n` +
      `| gateway (${gateway.mode}, ${gateway.api}) | ${g.acceptedPerSecond} | ${g.submittedPerSecond} | ${g.receiptsMatched} | ${g.latencyMs.p50} / ${g.latencyMs.p99} ms | ${g.cpuMicrosPerMessage} µs | ${g.peakRssMb} MB |\n` +
      `| Kannel | ${kannel.acceptedPerSecond} | ${kannel.submittedPerSecond} | ${kannel.receiptsMatched} / ${kannel.accepted} | ${kannel.latencyMs.p50} / ${kannel.latencyMs.p99} ms | ${kannel.cpuMicrosPerMessage} µs (bearerbox ${kannel.cpuMicrosPerMessageByBox.bearerbox}, smsbox ${kannel.cpuMicrosPerMessageByBox.smsbox}) | ${kannel.peakRssMb} MB |\n` +
      `| gateway / Kannel | ${comparison.ratio.acceptedPerSecond}× | ${comparison.ratio.submittedPerSecond}× | | | ${comparison.ratio.cpuMicrosPerMessage}× | |\n\n` +
      `Kannel's HTTP answers: \`${JSON.stringify(kannel.answers)}\`; its dlr-url callbacks by report type: \`${JSON.stringify(kannel.dlrCallbacksByType)}\`; submits seen by the simulator: ${kannel.submitted}.\n`)
  }
  return kannel.receiptsMatched >= kannel.accepted && kannel.httpFailures === 0
}
