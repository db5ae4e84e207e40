/**
 * `npm run bench:ab -- <revision> [pairs]`: this working tree against another revision, measured in pairs that run at
 * the same time. On this project's shared machines one `npm run bench` varies by ±25 % from run to run (bimodal on some
 * days), so two variants run one after the other differ by the machine's mood more than by a 10 % change. Here each
 * pair runs both variants' `bench/run.ts` side by side, with the same options, so both meet the same noise; what is
 * compared is the ratio within each pair, and the median of those ratios.
 *
 * Each side gets about half the machine: absolute figures are not comparable with a solo run's, only the ratios are.
 * The BENCH_* options of bench/run.ts apply to both sides (BENCH_API, BENCH_RATE, BENCH_MESSAGES…); BENCH_PEER,
 * BENCH_CLUSTER and BENCH_PROFILE_DIR are refused (the peer's fixed set-up, a cluster's shared Redis and database
 * names), and results are never recorded. Each side runs its own revision's bench/run.ts. The other revision is
 * checked out in a temporary git worktree sharing this tree's node_modules and built Message Center, removed after.
 */
import { spawn, execFileSync } from "node:child_process"
import { existsSync, mkdtempSync, rmSync, symlinkSync, mkdirSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"

const revision = process.argv[2]
const pairs = Number(process.argv[3] ?? 3)
if (revision === undefined || revision.startsWith("-")) {
  throw new Error("usage: npm run bench:ab -- <revision> [pairs]   (e.g. HEAD~1, main, a commit)")
}
if (!(Number.isInteger(pairs) && pairs >= 1)) throw new Error(`pairs: a whole number ≥ 1, not ${process.argv[3]}`)
for (const refused of ["BENCH_PEER", "BENCH_CLUSTER", "BENCH_PROFILE_DIR"]) {
  if ((process.env[refused] ?? "0") !== "0") throw new Error(`${refused} is not available in an A/B run`)
}

const here = resolve(import.meta.dirname, "..")
const commit = execFileSync("git", ["rev-parse", "--verify", `${revision}^{commit}`], { cwd: here, encoding: "utf8" }).trim()

/** What a bench run reports, whichever API it measured. */
interface Figures {
  readonly cpuMicros: number
  readonly perSecond: number
  readonly p99Ms: number
  readonly peakRssMb: number | undefined
}

/** The last pretty-printed JSON object bench/run.ts wrote (gateway logs may follow it). */
const figuresOf = (output: string, side: string): Figures => {
  const start = output.lastIndexOf("\n{\n")
  const end = start < 0 ? -1 : output.indexOf("\n}\n", start)
  if (start < 0 || end < 0) throw new Error(`${side}: no result in its output:\n${output.slice(-2000)}`)
  const result = JSON.parse(output.slice(start + 1, end + 2)) as Record<string, unknown>
  const latency = result["latencyMs"] as { readonly p99: number }
  return {
    cpuMicros: Number(result["gatewayCpuMicrosPerMessage"] ?? result["gatewayCpuMicrosPerRequest"]),
    perSecond: Number(result["acceptedPerSecond"] ?? result["requestsPerSecond"]),
    p99Ms: latency.p99,
    peakRssMb: result["gatewayPeakRssMb"] === undefined ? undefined : Number(result["gatewayPeakRssMb"])
  }
}

const runBench = (cwd: string, side: string): Promise<Figures> =>
  new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ["bench/run.ts"], {
      cwd,
      env: { ...process.env, BENCH_NO_RECORD: "1" },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let output = ""
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()))
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()))
    child.on("error", reject)
    child.on("exit", (code) => {
      if (code !== 0) reject(new Error(`${side}: bench/run.ts exited with ${code}:\n${output.slice(-3000)}`))
      else {
        try {
          resolvePromise(figuresOf(output, side))
        } catch (error) {
          reject(error)
        }
      }
    })
  })

const median = (values: ReadonlyArray<number>) => {
  const sorted = [...values].sort((a, b) => a - b)
  const at = (i: number) => sorted[i] ?? Number.NaN
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? at(middle) : (at(middle - 1) + at(middle)) / 2
}

const worktree = mkdtempSync(join(tmpdir(), "smsgw-ab-"))
execFileSync("git", ["worktree", "add", "--detach", "--force", worktree, commit], { cwd: here, stdio: "ignore" })
try {
  symlinkSync(join(here, "node_modules"), join(worktree, "node_modules"))
  const webDist = join(here, "web", "dist")
  if (existsSync(webDist)) {
    mkdirSync(join(worktree, "web"), { recursive: true })
    rmSync(join(worktree, "web", "dist"), { recursive: true, force: true })
    symlinkSync(webDist, join(worktree, "web", "dist"))
  }
  const options = Object.entries(process.env).filter(([name]) => name.startsWith("BENCH_")).map(([name, value]) => `${name}=${value}`)
  console.log(`A/B: ${revision} (${commit.slice(0, 10)}) against this tree, ${pairs} pairs, ${options.join(" ") || "default options"}`)
  console.log("| pair | base CPU µs | this CPU µs | ratio | base / this per s | base / this p99 ms | base / this peak RSS MB |")
  console.log("|---|---|---|---|---|---|---|")
  const ratios: Array<number> = []
  for (let pair = 1; pair <= pairs; pair++) {
    const [base, mine] = await Promise.all([runBench(worktree, "base"), runBench(here, "this tree")])
    const ratio = mine.cpuMicros / base.cpuMicros
    ratios.push(ratio)
    const rss = base.peakRssMb === undefined ? "—" : `${base.peakRssMb} / ${mine.peakRssMb}`
    console.log(
      `| ${pair} | ${base.cpuMicros} | ${mine.cpuMicros} | ${ratio.toFixed(3)} | ${base.perSecond} / ${mine.perSecond} | ${base.p99Ms} / ${mine.p99Ms} | ${rss} |`
    )
  }
  const below = ratios.filter((ratio) => ratio < 1).length
  console.log(
    `\nCPU per message, this tree / ${revision}: median ${median(ratios).toFixed(3)}× (range ${Math.min(...ratios).toFixed(3)}–${
      Math.max(...ratios).toFixed(3)
    }; lower in ${below} of ${ratios.length} pairs)`
  )
} finally {
  execFileSync("git", ["worktree", "remove", "--force", worktree], { cwd: here, stdio: "ignore" })
  rmSync(worktree, { recursive: true, force: true })
}
