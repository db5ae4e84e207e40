/**
 * `node bench/metrics-cardinality.ts`: what requests to paths nothing serves cost a running gateway (issue 11,
 * finding 1). Starts an embedded gateway in a child process on spare ports, sends rounds of requests to distinct
 * unknown paths, and prints the process's RSS (from /proc) and the size of /metrics after each round: both must stay
 * flat after the first round's warm-up, whatever the number of distinct paths.
 */
import { spawn } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"

const rounds = Number(process.env.BENCH_ROUNDS ?? 3)
const perRound = Number(process.env.BENCH_REQUESTS ?? 9_000)

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer()
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

const dir = mkdtempSync(join(tmpdir(), "smsgw-metrics-bench-"))
const [httpPort, smppPort] = [await freePort(), await freePort()]
const config = join(dir, "gateway.yaml")
writeFileSync(config, [
  `http: { port: ${httpPort}, host: 127.0.0.1 }`,
  `storage: { kind: sqlite, path: ${join(dir, "gw.db")} }`,
  `simulator: { enabled: true, port: ${smppPort}, systemId: demo, password: demo }`,
  `links: [{ id: demo, host: 127.0.0.1, port: ${smppPort}, systemId: demo, password: demo }]`
].join("\n"))
const child = spawn(process.execPath, ["--no-warnings", "src/cli/main.ts", "serve", "--config", config], { stdio: "ignore" })
const base = `http://127.0.0.1:${httpPort}`

try {
  for (let waited = 0; ; waited += 200) {
    const up = await fetch(`${base}/healthz`).then((r) => r.ok, () => false)
    if (up) break
    if (waited > 30_000) throw new Error("the gateway did not start")
    await new Promise((r) => setTimeout(r, 200))
  }
  const rssMb = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"))?.[1] ?? 0) / 1024
  const metricsKb = async () => (await (await fetch(`${base}/metrics`)).text()).length / 1024
  const rows = [{ round: 0, requests: 0, rssMb: rssMb(), metricsKb: await metricsKb() }]
  let sent = 0
  for (let round = 1; round <= rounds; round++) {
    for (let i = 0; i < perRound; i += 50) {
      await Promise.all(Array.from({ length: 50 }, () =>
        fetch(`${base}/probe-${sent++}/${crypto.randomUUID()}`).then((r) => r.text())))
    }
    rows.push({ round, requests: sent, rssMb: rssMb(), metricsKb: await metricsKb() })
  }
  console.log("| round | requests to distinct unknown paths | RSS (MB) | /metrics (KB) |\n|---|---|---|---|")
  for (const r of rows) console.log(`| ${r.round} | ${r.requests} | ${r.rssMb.toFixed(0)} | ${r.metricsKb.toFixed(1)} |`)
} finally {
  child.kill("SIGTERM")
  rmSync(dir, { recursive: true, force: true })
}
