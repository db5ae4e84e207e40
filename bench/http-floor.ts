/**
 * `npm run bench:floor`: what one HTTP request costs on this machine before the gateway does anything, so the gateway's
 * own figures (`BENCH_API=floor-healthz|floor-auth|floor-invalid npm run bench`, and a whole message) can be read
 * against it. Two servers (bench/floor-server.ts), each in its own process: Node's HTTP server alone, and Effect's HTTP
 * server and router with no middleware — the stack the gateway's API is built on. Each answers `GET /healthz` and a
 * JSON `POST /v1/messages` (parsed, answered 202) under the gateway bench's load (bench/Load.ts: keep-alive, closed
 * loop, concurrency 64). Reports the server's CPU per request (user + system, its process only), requests per second
 * and latency. Rounds alternate the servers so both meet the machine's changing noise; the report gives every round.
 *
 * Options (environment): BENCH_MESSAGES (requests per measurement, default 20000), BENCH_ROUNDS (default 3).
 */
import { fork } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import http from "node:http"
import { benchMessage, driveLoad, request } from "./Load.ts"

const requests = Number(process.env.BENCH_MESSAGES ?? 20_000)
const rounds = Number(process.env.BENCH_ROUNDS ?? 3)
const concurrency = 64
const warmup = 3_000
const kinds = ["node", "effect"] as const
const calls = ["GET /healthz", "POST /v1/messages"] as const

const started = (kind: string) =>
  new Promise<{ readonly child: ChildProcess; readonly port: number }>((resolve, reject) => {
    const child = fork(new URL("./floor-server.ts", import.meta.url), [kind], { execArgv: ["--no-warnings"], stdio: "inherit" })
    const timer = setTimeout(() => reject(new Error(`${kind} server: no port within 20 s`)), 20_000)
    child.once("message", (message) => {
      clearTimeout(timer)
      resolve({ child, port: (message as { port: number }).port })
    })
    child.once("exit", (code) => reject(new Error(`${kind} server exited with ${code}`)))
  })

const cpuOf = (child: ChildProcess) =>
  new Promise<number>((resolve) => {
    child.once("message", (message) => {
      const { user, system } = (message as { cpu: NodeJS.CpuUsage }).cpu
      resolve(user + system)
    })
    child.send("cpu")
  })

const percentile = (sorted: ReadonlyArray<number>, p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0

const measure = async (kind: string, call: typeof calls[number]) => {
  const { child, port } = await started(kind)
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency })
  try {
    const send = async (i: number) => {
      const r = call === "GET /healthz"
        ? await request(agent, port, "GET", "/healthz")
        : await request(agent, port, "POST", "/v1/messages", JSON.stringify(benchMessage(i)))
      if (r.status !== (call === "GET /healthz" ? 200 : 202)) throw new Error(`${kind} ${call}: answered ${r.status}`)
    }
    await driveLoad({ messages: warmup, batchSize: 1, concurrency, rate: 0 }, (i) => send(i))
    const latencies: Array<number> = []
    const cpuBefore = await cpuOf(child)
    const t0 = performance.now()
    await driveLoad({ messages: requests, batchSize: 1, concurrency, rate: 0 }, async (i, _count, since) => {
      await send(i)
      latencies.push(performance.now() - since)
    })
    const seconds = (performance.now() - t0) / 1000
    const cpu = (await cpuOf(child)) - cpuBefore
    latencies.sort((a, b) => a - b)
    return {
      cpuMicros: Math.round(cpu / requests),
      perSecond: Math.round(requests / seconds),
      p50: +percentile(latencies, 0.5).toFixed(2),
      p99: +percentile(latencies, 0.99).toFixed(2)
    }
  } finally {
    agent.destroy()
    child.removeAllListeners("exit")
    child.kill("SIGKILL")
  }
}

console.log(`HTTP floor, ${requests} requests per measurement, concurrency ${concurrency}, ${rounds} rounds`)
console.log("| round | server | request | CPU per request | requests/s | p50 / p99 ms |")
console.log("|---|---|---|---|---|---|")
for (let round = 1; round <= rounds; round++) {
  for (const call of calls) {
    for (const kind of round % 2 === 1 ? kinds : [...kinds].reverse()) {
      const r = await measure(kind, call)
      console.log(`| ${round} | ${kind === "node" ? "Node http" : "Effect HttpRouter"} | ${call} | ${r.cpuMicros} µs | ${r.perSecond} | ${r.p50} / ${r.p99} |`)
    }
  }
}
