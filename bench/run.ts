/**
 * `npm run bench`: a bounded load on the REST API of a real gateway process whose link points at a real SMSC
 * simulator process (receipts on), all on 127.0.0.1 and the same cores. Reports accepted and submitted msg/s,
 * receipts matched, HTTP latency, the gateway's CPU per message and peak RSS, its event-loop delay and GC pauses while
 * accepting (from its /metrics) beside the load generator's own event-loop delay, and appends them to bench/RESULTS.md.
 *
 * Options (environment): BENCH_MESSAGES (default 30000), BENCH_CONCURRENCY (default 64), BENCH_WINDOW (default 50),
 * BENCH_RECEIPT_DELAY_MS (default 100), BENCH_CLUSTER (n cluster nodes on PostgreSQL + Redis instead of one embedded
 * gateway), BENCH_REDIS=1 (the embedded gateway's L2 rate limits in Redis instead of memory), BENCH_LINKS (default 1; more puts that many links in one pool), BENCH_WARMUP (uncounted messages per node before the run, default 500), BENCH_NO_RECORD=1 to skip writing RESULTS.md, BENCH_PROFILE_DIR=dir to write a
 * V8 CPU profile of the gateway there, BENCH_BALANCE=round-robin|least-requests (how requests spread over cluster
 * nodes), BENCH_IDLE_SECONDS (default 5: the nodes' CPU with no traffic is measured that long before the load),
 * BENCH_PG_LOG=1 (cluster: PostgreSQL logs every statement of the bench database, to count them), BENCH_ANALYZE=0
 * (cluster: skip the ANALYZE after the warm-up, and measure a new database's first seconds, whose plans rest on no
 * statistics at all; autovacuum analyses a new database's tables within its first minute),
 * BENCH_API=rest|rest-batch (default rest: one message per POST /v1/messages; rest-batch: BENCH_BATCH messages, default
 * 100, per POST /v1/messages/batch), or grpc|grpc-batch (the same over gRPC: SendMessage, or SendMessages of BENCH_BATCH),
 * BENCH_PEER=kannel (after the gateway's run, the same load against Kannel 1.4.5 on the same simulator, reported side
 * by side with the gateway / Kannel ratios; skipped with a message if Kannel is not installed; see bench/kannel.ts).
 * Where a message's CPU goes, the request path's floors (never recorded: printed as CPU per request):
 * BENCH_API=floor-healthz (GET /healthz: Node's HTTP server, the router and the edge middleware), floor-auth (GET of a
 * message that does not exist with the app token: authentication, the endpoint's decoding, one query, a 404 problem),
 * floor-invalid (POST /v1/messages with a number that cannot be valid: authentication, body decoding, a 400 problem).
 * BENCH_TRACING=<ratio> (0..1): tracing on, spans exported over OTLP/HTTP at that sample ratio to a collector in this
 * process that takes and discards them (its own CPU is the load generator's, not the gateway's).
 */
import type { ChildProcess } from "node:child_process"
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import http from "node:http"
import { monitorEventLoopDelay } from "node:perf_hooks"
import { cpus, tmpdir } from "node:os"
import { join } from "node:path"
import { DatabaseSync } from "node:sqlite"
import { PgClient } from "@effect/sql-pg"
import { Effect, Redacted } from "effect"
import { Reactivity } from "effect/reactivity"
import { createClient } from "@connectrpc/connect"
import type { Client } from "@connectrpc/connect"
import { createGrpcTransport } from "@connectrpc/connect-node"
import { MessageService } from "../src/grpc/gen/smsgw/v1/messages_pb.ts"
import type { GatewayConfig } from "../src/layers/Config.ts"
import { writeNodeConfig } from "../test/fixtures/Cluster.ts"
import { eventually } from "../test/fixtures/Eventually.ts"
import { startNodeFlags } from "../test/fixtures/Launch.ts"
import { freePort as freePortEffect } from "../test/fixtures/Processes.ts"
import { benchKannel, stopped } from "./kannel.ts"
import { benchMessage, driveLoad, request } from "./Load.ts"
import { spawnKeepingTail } from "./Spawn.ts"

const messages = Number(process.env.BENCH_MESSAGES ?? 30_000)
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 64)
const window = Number(process.env.BENCH_WINDOW ?? 50)
const receiptDelayMs = Number(process.env.BENCH_RECEIPT_DELAY_MS ?? 100)
const linkCount = Number(process.env.BENCH_LINKS ?? 1)
const warmupPerNode = Number(process.env.BENCH_WARMUP ?? 500)
if (!(Number.isInteger(warmupPerNode) && warmupPerNode >= 0)) throw new Error(`BENCH_WARMUP: a whole number ≥ 0, not ${process.env.BENCH_WARMUP}`)
if (!["0", "1", undefined].includes(process.env.BENCH_ANALYZE)) throw new Error(`BENCH_ANALYZE: 0 or 1, not ${process.env.BENCH_ANALYZE}`)
/**
 * With several nodes: `round-robin` sends request i to node i mod n; `least-requests` to the node with the fewest
 * requests in flight (HAProxy `leastconn`, nginx `least_conn`, Envoy `LEAST_REQUEST`), what docs/cluster.md advises.
 */
const balance = process.env.BENCH_BALANCE === "least-requests" ? "least-requests" : "round-robin"
if (process.env.BENCH_BALANCE !== undefined && process.env.BENCH_BALANCE !== balance) throw new Error(`BENCH_BALANCE: round-robin or least-requests, not ${process.env.BENCH_BALANCE}`)
/** Which API the load uses, and how many messages each request carries. */
const api = process.env.BENCH_API ?? "rest"
const tracingRatio = process.env.BENCH_TRACING === undefined ? undefined : Number(process.env.BENCH_TRACING)
if (tracingRatio !== undefined && !(tracingRatio >= 0 && tracingRatio <= 1)) throw new Error(`BENCH_TRACING: a ratio 0..1, not ${process.env.BENCH_TRACING}`)
/** BENCH_TRACING's collector: takes every export, answers 200, counts what it was sent. */
const traceSink = { url: "", exports: 0, bytes: 0 }
const startTraceSink = () =>
  new Promise<void>((resolve) => {
    const server = http.createServer((request, response) => {
      traceSink.exports++
      request.on("data", (chunk: Buffer) => void (traceSink.bytes += chunk.length))
      request.on("end", () => response.writeHead(200, { "content-type": "application/json" }).end("{}"))
    })
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      traceSink.url = `http://127.0.0.1:${typeof address === "object" && address !== null ? address.port : 0}`
      server.unref()
      resolve()
    })
  })
/** Messages per second offered at a fixed rate (open loop); 0: as fast as BENCH_CONCURRENCY allows (closed loop). */
const rate = Number(process.env.BENCH_RATE ?? 0)
const batchSize = api.endsWith("-batch") ? Number(process.env.BENCH_BATCH ?? 100) : 1
/** 0: one embedded gateway on SQLite. n ≥ 1: n cluster nodes on a fresh PostgreSQL database and Redis. */
const clusterNodes = Number(process.env.BENCH_CLUSTER ?? 0)
if (process.env.BENCH_PEER !== undefined && process.env.BENCH_PEER !== "kannel") throw new Error(`BENCH_PEER: kannel, not ${process.env.BENCH_PEER}`)
const pgBase = `postgres://${process.env.PGUSER ?? "postgres"}@${process.env.PGHOST ?? "127.0.0.1"}:${process.env.PGPORT ?? "5432"}`

/** Runs one SQL statement on a PostgreSQL database and answers its rows. */
const pgQuery = (database: string, statement: string) =>
  Effect.runPromise(Effect.gen(function*() {
    const client = yield* PgClient.make({ url: Redacted.make(`${pgBase}/${database}`), maxConnections: 1 })
    return (yield* client.unsafe(statement)) as ReadonlyArray<Record<string, unknown>>
  }).pipe(Effect.scoped, Effect.provide(Reactivity.layer)))

interface PgWrites {
  readonly walBytes: number
  readonly lsn: string
  readonly tables: Record<string, { readonly updates: number; readonly hot: number }>
}

/**
 * PostgreSQL's write counters for the bench database: the server's WAL position and the row updates (HOT among them)
 * of the message tables. Backends report table counters about once a second, so this reads until two readings a
 * second apart agree (at most 15 s).
 */
const pgWrites = async (database: string): Promise<PgWrites> => {
  const read = async (): Promise<PgWrites> => {
    const wal = await pgQuery(database, "SELECT pg_current_wal_lsn()::text AS lsn, pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint AS b")
    const rows = await pgQuery(database, `SELECT relname, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables
      WHERE relname IN ('messages', 'message_parts', 'message_events', 'callback_outbox')`)
    return {
      walBytes: Number(wal[0]?.b ?? 0),
      lsn: String(wal[0]?.lsn ?? ""),
      tables: Object.fromEntries(rows.map((r) => [String(r.relname), { updates: Number(r.n_tup_upd), hot: Number(r.n_tup_hot_upd) }]))
    }
  }
  let last = await read()
  for (let tries = 0; tries < 15; tries++) {
    await sleep(1000)
    const next = await read()
    const same = Object.entries(next.tables).every(([name, t]) => last.tables[name]?.updates === t.updates)
    last = next
    if (same) break
  }
  return last
}

const pgWritesPerMessage = (before: PgWrites, after: PgWrites, messages: number) => ({
  walBytesPerMessage: Math.round((after.walBytes - before.walBytes) / messages),
  /** The run's WAL, for pg_walinspect's pg_get_wal_stats(start, end, true). */
  walRange: [before.lsn, after.lsn],
  updatesPerMessage: Object.fromEntries(Object.entries(after.tables).map(([name, t]) => {
    const updates = t.updates - (before.tables[name]?.updates ?? 0)
    const hot = t.hot - (before.tables[name]?.hot ?? 0)
    return [name, { updates: +(updates / messages).toFixed(2), hotPercent: updates === 0 ? 0 : Math.round((hot / updates) * 100) }]
  }))
})

const freePort = () => Effect.runPromise(freePortEffect)

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const start = (args: ReadonlyArray<string>, name: string, nodeArgs: ReadonlyArray<string> = []): ChildProcess =>
  spawnKeepingTail(process.execPath, ["--no-warnings", ...nodeArgs, "src/cli/main.ts", ...args], name, { env: { ...process.env } })

/** Sends messages `first` … `first + count - 1` in one request to a node; answers the ids accepted and the failures. */
type Sender = (node: number, first: number, count: number) => Promise<{ readonly ids: ReadonlyArray<string>; readonly failures: number }>

/** One gRPC client per node, each on one HTTP/2 connection (the way gRPC clients multiplex their calls). */
const grpcClients = (grpcPorts: ReadonlyArray<number>): ReadonlyArray<Client<typeof MessageService>> =>
  grpcPorts.map((port) => createClient(MessageService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` })))

/** BENCH_API: how each API sends, given the nodes' HTTP (and gRPC) ports, the keep-alive agent and the app token. */
/** The gateway's runtime figures from its /metrics (RuntimeMetrics): the event loop's delay since the previous scrape, GC pause totals. */
const runtimeFigures = async (agent: http.Agent, port: number) => {
  const text = (await request(agent, port, "GET", "/metrics")).body
  const value = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, "m").exec(text)?.[1] ?? 0)
  const gc = (kind: string) => Number(new RegExp(`^nodejs_gc_duration_seconds_sum\\{kind="${kind}"\\} ([0-9.e+-]+)$`, "m").exec(text)?.[1] ?? 0)
  return {
    lagP50Ms: value("nodejs_eventloop_lag_p50_seconds") * 1000,
    lagP99Ms: value("nodejs_eventloop_lag_p99_seconds") * 1000,
    lagMaxMs: value("nodejs_eventloop_lag_max_seconds") * 1000,
    gcMinorMs: gc("minor") * 1000,
    gcMajorMs: gc("major") * 1000
  }
}

const senders: Record<string, (ports: ReadonlyArray<number>, agent: http.Agent, token: string, grpcPorts: ReadonlyArray<number>) => Sender> = {
  rest: (ports, agent, token) => async (node, first) => {
    const r = await request(agent, ports[node] ?? 0, "POST", "/v1/messages", JSON.stringify(benchMessage(first)), token)
    return r.status === 202 ? { ids: [(JSON.parse(r.body) as { id: string }).id], failures: 0 } : { ids: [], failures: 1 }
  },
  "floor-healthz": (ports, agent) => async (node) => {
    const r = await request(agent, ports[node] ?? 0, "GET", "/healthz")
    return { ids: [], failures: r.status === 200 ? 0 : 1 }
  },
  "floor-auth": (ports, agent, token) => async (node) => {
    const r = await request(agent, ports[node] ?? 0, "GET", "/v1/messages/0190a000-0000-7000-8000-000000000000", undefined, token)
    return { ids: [], failures: r.status === 404 ? 0 : 1 }
  },
  "floor-invalid": (ports, agent, token) => async (node, first) => {
    const r = await request(agent, ports[node] ?? 0, "POST", "/v1/messages", JSON.stringify({ ...benchMessage(first), to: "+1" }), token)
    return { ids: [], failures: r.status === 400 ? 0 : 1 }
  },
  "rest-batch": (ports, agent, token) => async (node, first, count) => {
    const body = JSON.stringify({ messages: Array.from({ length: count }, (_, k) => benchMessage(first + k)) })
    const r = await request(agent, ports[node] ?? 0, "POST", "/v1/messages/batch", body, token)
    if (r.status !== 202) return { ids: [], failures: count }
    const results = (JSON.parse(r.body) as { results: ReadonlyArray<{ id?: string; status: string }> }).results
    const ids = results.flatMap((x) => x.status === "accepted" && x.id !== undefined ? [x.id] : [])
    return { ids, failures: count - ids.length }
  },
  grpc: (_ports, _agent, token, grpcPorts) => {
    const clients = grpcClients(grpcPorts)
    const headers = { authorization: `Bearer ${token}` }
    return async (node, first) => {
      const client = clients[node] ?? clients[0]
      if (client === undefined) return { ids: [], failures: 1 }
      return client.sendMessage(benchMessage(first), { headers, timeoutMs: 30_000 }).then(
        (r) => ({ ids: [r.id], failures: 0 }),
        () => ({ ids: [], failures: 1 })
      )
    }
  },
  "grpc-batch": (_ports, _agent, token, grpcPorts) => {
    const clients = grpcClients(grpcPorts)
    const headers = { authorization: `Bearer ${token}` }
    return async (node, first, count) => {
      const client = clients[node] ?? clients[0]
      if (client === undefined) return { ids: [], failures: count }
      const messages = Array.from({ length: count }, (_, k) => benchMessage(first + k))
      return client.sendMessages({ messages }, { headers, timeoutMs: 30_000 }).then(
        (r) => {
          const ids = r.results.flatMap((x) => x.result.case === "accepted" ? [x.result.value.id] : [])
          return { ids, failures: count - ids.length }
        },
        () => ({ ids: [], failures: count })
      )
    }
  }
}

const waitFor = (what: string, check: () => Promise<boolean>, timeoutMs: number) =>
  Effect.runPromise(eventually(what, Effect.promise(check), { timeout: timeoutMs, interval: 100 }))

/** utime + stime of a process, in microseconds. */
const cpuMicros = (pid: number) => {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? []
  const ticks = Number(fields[11]) + Number(fields[12])
  return (ticks / 100) * 1e6
}

/** Busy and total CPU time of the whole machine (all cores), in microseconds, from /proc/stat. */
const machineCpu = () => {
  const fields = (readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "").split(/\s+/).slice(1).map(Number)
  const total = fields.reduce((a, b) => a + b, 0)
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0)
  return { busy: ((total - idle) / 100) * 1e6, total: (total / 100) * 1e6 }
}

const peakRssMb = (pid: number) => {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("VmHWM:"))
  return Number(line?.replace(/\D+/g, "") ?? 0) / 1024
}

const percentile = (sorted: ReadonlyArray<number>, p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0

/** One gateway's configuration: a cluster node on PostgreSQL and Redis, or the embedded gateway on SQLite. */
const nodeConfig = (httpPort: number, grpcPort: number, runnerPort: number, dir: string, database: string, smppPort: number): GatewayConfig => {
  const links = Array.from({ length: linkCount }, (_, i) => ({
    id: `bench${i + 1}`, host: "127.0.0.1", port: smppPort, systemId: "bench", password: "bench", window, tps: 20_000
  }))
  const keyPrefix = `smsgw:bench:${database}:`
  const handOff = process.env.BENCH_HANDOFF_MS
  return {
    http: { port: httpPort, host: "127.0.0.1" },
    grpc: { port: grpcPort, host: "127.0.0.1" },
    ...(clusterNodes > 0
      ? {
        storage: { kind: "postgres", url: `${pgBase}/${database}` },
        cluster: { runnerHost: "127.0.0.1", runnerPort, ...(handOff ? { handOffWindowMs: Number(handOff) } : {}) },
        rateLimits: { store: "redis", nodes: Math.max(1, clusterNodes), redis: { keyPrefix } },
        // The submit path is measured; the CDR export (its own bench: bench/cdr-export.ts) needs a shared store.
        cdr: { enabled: false },
        auth: { jwtKeys: [{ kid: "bench", secret: "bench-secret-bench-secret-bench-secret" }] }
      }
      : {
        storage: { kind: "sqlite", path: join(dir, "gateway.db") },
        ...(process.env.BENCH_REDIS === "1" ? { rateLimits: { store: "redis", redis: { keyPrefix } } } : {})
      }),
    links,
    ...(linkCount > 1
      ? {
        pools: [{ id: "bench", members: links.map((l) => ({ link: l.id })) }],
        routes: [{ id: "default", match: {}, target: { pool: "bench" } }]
      }
      : {}),
    recovery: { idleSeconds: 120, intervalSeconds: 10 },
    ...(tracingRatio !== undefined
      ? { telemetry: { sampleRatio: tracingRatio, otlp: { endpoint: traceSink.url, exportIntervalMs: 1000 } } }
      : {})
  }
}

const main = async () => {
  const dir = mkdtempSync(join(tmpdir(), "smsgw-bench-"))
  if (tracingRatio !== undefined) await startTraceSink()
  const smppPort = await freePort()
  const controlPort = await freePort()
  const database = `smsgw_bench_${Date.now().toString(36)}`
  if (clusterNodes > 0) await pgQuery("test", `CREATE DATABASE ${database}`)
  if (clusterNodes > 0 && process.env.BENCH_PG_LOG === "1") await pgQuery("test", `ALTER DATABASE ${database} SET log_statement = 'all'`)
  const nodeCount = Math.max(1, clusterNodes)
  const httpPorts: Array<number> = []
  const grpcPorts: Array<number> = []
  const configs: Array<string> = []
  for (let n = 0; n < nodeCount; n++) {
    const httpPort = await freePort()
    const runnerPort = await freePort()
    const grpcPort = await freePort()
    httpPorts.push(httpPort)
    grpcPorts.push(grpcPort)
    const config = join(dir, `bench-${n}.yaml`)
    configs.push(config)
    writeNodeConfig(config, nodeConfig(httpPort, grpcPort, runnerPort, dir, database, smppPort))
  }
  const httpPort = httpPorts[0] ?? 0
  const sim = start(["smsc-sim", "--port", String(smppPort), "--control-port", String(controlPort), "--receipt-delay-ms", String(receiptDelayMs)], "simulator")
  const profile = process.env.BENCH_PROFILE_DIR
  // The gateway with `npm start`'s Node flags (test/fixtures/Launch.ts); BENCH_GATEWAY_NODE_ARGS comes after, so a
  // flag given there wins.
  const nodeArgs = [...startNodeFlags(), ...(process.env.BENCH_GATEWAY_NODE_ARGS ?? "").split(" ").filter((a) => a !== ""), ...(profile ? ["--cpu-prof", `--cpu-prof-dir=${profile}`] : [])]
  const gateways: Array<ChildProcess> = []
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency })
  const cleanup = async () => {
    for (const g of gateways) g.kill(profile ? "SIGINT" : "SIGKILL")
    sim.kill("SIGKILL")
    rmSync(dir, { recursive: true, force: true })
    if (clusterNodes > 0) {
      await sleep(500)
      await pgQuery("test", `DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => undefined)
    }
  }
  try {
    // The first node migrates and seeds the database; the others join once it is up.
    for (const [n, config] of configs.entries()) {
      gateways.push(start(["serve", "--config", config], `gateway ${n}`, nodeArgs))
      await waitFor(`gateway ${n} up`, async () => (await request(agent, httpPorts[n] ?? 0, "GET", "/healthz")).status === 200, 60_000)
    }
    for (const port of httpPorts) {
      await waitFor("gateway ready", async () => (await request(agent, port, "GET", "/readyz")).status === 200, 30_000)
    }
    const simStats = async () => JSON.parse((await request(agent, controlPort, "GET", "/stats")).body) as {
      submits: number
      receiptsSent: number
      receiptsAcked: number
      uniqueMessages: number
    }
    // The README quick start: an account, an app, a key, an app token (every submit below carries it).
    const json = async (path: string, body: unknown, token?: string) => {
      const r = await request(agent, httpPort, "POST", path, JSON.stringify(body), token)
      if (r.status >= 300) throw new Error(`${path}: ${r.status} ${r.body}`)
      return JSON.parse(r.body) as Record<string, string>
    }
    await json("/v1/auth/register", { email: "bench@example.com", password: "bench password 123", name: "Bench" })
    const user = await json("/v1/auth/token", { email: "bench@example.com", password: "bench password 123" })
    const app = await json("/v1/apps", { name: "bench" }, user.accessToken)
    const key = await json(`/v1/apps/${app.id}/keys`, {}, user.accessToken)
    const token = (await json("/v1/auth/token", { appId: app.id, apiKey: key.key })).accessToken ?? ""
    // Warm-up of every node (JIT, caches, connections), not counted: as many messages per node as one node gets.
    const warmup = warmupPerNode * nodeCount
    let nextWarm = 0
    const warmWorker = async () => {
      while (nextWarm < warmup) {
        const i = nextWarm++
        const body = JSON.stringify({ to: `+49151${String(20_000_000 + i).padStart(8, "0")}`, from: "WARMUP", text: `warm up ${i}` })
        await request(agent, httpPorts[i % httpPorts.length] ?? httpPort, "POST", "/v1/messages", body, token)
      }
    }
    await Promise.all(Array.from({ length: 8 }, warmWorker))
    await waitFor("warm-up receipts", async () => (await simStats()).receiptsAcked >= warmup, 60_000)
    // Statistics as a running database has them (autovacuum takes them within a minute): taken here while every
    // warm-up message is final, the quiet moment they misled the planner in before (bench/RESULTS.md, fifth round).
    if (clusterNodes > 0 && process.env.BENCH_ANALYZE !== "0") await pgQuery(database, "ANALYZE")
    const pids = gateways.map((g) => g.pid ?? 0)
    // Background cost with no traffic (cluster housekeeping, polls), per node, in % of one core.
    const idleSeconds = Number(process.env.BENCH_IDLE_SECONDS ?? 5)
    const idleBefore = pids.map(cpuMicros)
    await sleep(idleSeconds * 1000)
    const idlePercent = pids.map((pid, n) => +(((cpuMicros(pid) - (idleBefore[n] ?? 0)) / (idleSeconds * 1e6)) * 100).toFixed(1))
    // Starts each node's window of event-loop delay at the load's start.
    const runtimeBefore = await Promise.all(httpPorts.map((port) => runtimeFigures(agent, port)))
    const before = await simStats()
    const pgBefore = clusterNodes > 0 ? await pgWrites(database) : undefined
    const cpuBefore = pids.map(cpuMicros)
    const machineBefore = machineCpu()
    const simBefore = cpuMicros(sim.pid ?? 0)
    const harnessBefore = process.cpuUsage()
    const latencies: Array<number> = []
    const ids: Array<string> = []
    let failures = 0
    const perSecond: Array<number> = []
    // This process's own stalls also land in the latencies it measures: reported beside the gateway's.
    const ownLoop = monitorEventLoopDelay({ resolution: 10 })
    ownLoop.enable()
    const started = performance.now()
    // How the clients spread over the nodes, as a load balancer in front of a cluster would.
    const inFlight = httpPorts.map(() => 0)
    const answeredBy = httpPorts.map(() => 0)
    const pickNode = (i: number) => {
      if (balance === "round-robin") return i % httpPorts.length
      let best = i % httpPorts.length
      for (let k = 0; k < httpPorts.length; k++) {
        const n = (i + k) % httpPorts.length
        if ((inFlight[n] ?? 0) < (inFlight[best] ?? 0)) best = n
      }
      return best
    }
    const makeSender = senders[api]
    if (makeSender === undefined) throw new Error(`BENCH_API: one of ${Object.keys(senders).join(", ")}, not ${api}`)
    const send = makeSender(httpPorts, agent, token, grpcPorts)
    /** One request of `count` messages from message `i`, its latency counted from `since` (when it was due). */
    const request1 = async (i: number, count: number, since: number) => {
      const node = pickNode(Math.floor(i / batchSize))
      inFlight[node] = (inFlight[node] ?? 0) + 1
      const r = await send(node, i, count)
      inFlight[node] = (inFlight[node] ?? 1) - 1
      answeredBy[node] = (answeredBy[node] ?? 0) + count
      const t1 = performance.now()
      latencies.push(t1 - since)
      const second = Math.floor((t1 - started) / 1000)
      perSecond[second] = (perSecond[second] ?? 0) + count
      ids.push(...r.ids)
      failures += r.failures
    }
    await driveLoad({ messages, batchSize, concurrency, rate }, request1)
    const acceptSeconds = (performance.now() - started) / 1000
    ownLoop.disable()
    const runtimeAfter = await Promise.all(httpPorts.map((port) => runtimeFigures(agent, port)))
    const machineAfter = machineCpu()
    const simAfter = cpuMicros(sim.pid ?? 0)
    const harness = process.cpuUsage(harnessBefore)
    const gatewaysWhileAccepting = pids.reduce((sum, pid, n) => sum + cpuMicros(pid) - (cpuBefore[n] ?? 0), 0)
    if (api.startsWith("floor-")) {
      latencies.sort((a, b) => a - b)
      console.log(JSON.stringify({
        api,
        requests: messages,
        failures,
        requestsPerSecond: Math.round(messages / acceptSeconds),
        gatewayCpuMicrosPerRequest: Math.round(gatewaysWhileAccepting / messages),
        latencyMs: { p50: +percentile(latencies, 0.5).toFixed(2), p99: +percentile(latencies, 0.99).toFixed(2) }
      }, null, 2))
      if (failures > 0) process.exitCode = 1
      return
    }
    await waitFor("all submitted", async () => (await simStats()).submits - before.submits >= ids.length, 120_000)
    const submitSeconds = (performance.now() - started) / 1000
    await waitFor("all receipts acknowledged", async () => (await simStats()).receiptsAcked - before.receiptsAcked >= ids.length, 120_000)
    const cpuAfter = pids.map(cpuMicros)
    // The store is the judge: every accepted message must end delivered.
    const sqlite = clusterNodes > 0 ? undefined : new DatabaseSync(join(dir, "gateway.db"), { readOnly: true })
    const query = (statement: string) =>
      sqlite !== undefined ? Promise.resolve(sqlite.prepare(statement).all() as ReadonlyArray<Record<string, unknown>>) : pgQuery(database, statement)
    let delivered = 0
    await waitFor("receipts matched in the store", async () => {
      const rows = await query("SELECT COUNT(*) AS n FROM messages WHERE status = 'delivered' AND from_addr = 'BENCH'")
      delivered = Number(rows[0]?.n ?? 0)
      return delivered >= ids.length
    }, 60_000).catch(() => undefined)
    const pgAfter = clusterNodes > 0 ? await pgWrites(database) : undefined
    const byStatus = await query("SELECT status, COUNT(*) AS n FROM messages WHERE from_addr = 'BENCH' GROUP BY status")
    const byLink = await query("SELECT p.link_id AS link, COUNT(*) AS n FROM message_parts p JOIN messages m ON m.id = p.message_id WHERE m.from_addr = 'BENCH' GROUP BY p.link_id ORDER BY p.link_id")
    sqlite?.close()
    const after = await simStats()
    latencies.sort((a, b) => a - b)
    const result = {
      date: new Date().toISOString(),
      machine: `${cpus().length} cores, ${cpus()[0]?.model ?? "?"}`,
      node: process.version,
      messages,
      concurrency,
      window,
      acceptedPerSecond: Math.round(ids.length / acceptSeconds),
      submittedPerSecond: Math.round((after.submits - before.submits) / submitSeconds),
      accepted: ids.length,
      httpFailures: failures,
      submitted: after.submits - before.submits,
      receiptsAcked: after.receiptsAcked - before.receiptsAcked,
      deliveredInStore: delivered,
      statuses: Object.fromEntries(byStatus.map((r) => [String(r.status), Number(r.n)])),
      links: linkCount,
      split: Object.fromEntries(byLink.map((r) => [String(r.link), Number(r.n)])),
      latencyMs: {
        p50: +percentile(latencies, 0.5).toFixed(2),
        p99: +percentile(latencies, 0.99).toFixed(2),
        p999: +percentile(latencies, 0.999).toFixed(2),
        max: +(latencies.at(-1) ?? 0).toFixed(2)
      },
      /** BENCH_RATE: the messages per second offered (open loop); absent when the load ran as fast as it could. */
      ...(rate > 0 ? { offeredPerSecond: rate } : {}),
      nodes: nodeCount,
      balance,
      /** Requests each node answered. */
      perNodeRequests: answeredBy,
      mode: clusterNodes > 0 ? "cluster (PostgreSQL, Redis)" : process.env.BENCH_REDIS === "1" ? "embedded (SQLite), L2 limits in Redis" : "embedded (SQLite)",
      api,
      messagesPerRequest: batchSize,
      gatewayCpuMicrosPerMessage: Math.round(cpuAfter.reduce((sum, after, n) => sum + after - (cpuBefore[n] ?? 0), 0) / ids.length),
      perNodeCpuMicrosPerHandledMessage: cpuAfter.map((after, n) => Math.round((after - (cpuBefore[n] ?? 0)) / Math.max(1, answeredBy[n] ?? 0))),
      gatewayPeakRssMb: Math.round(Math.max(...pids.map(peakRssMb))),
      idleCpuPercentPerNode: idlePercent,
      /** While the load ran: every process on the machine (gateways, PostgreSQL, Redis, simulator, load generator). */
      machineBusyPercent: Math.round(((machineAfter.busy - machineBefore.busy) / (machineAfter.total - machineBefore.total)) * 100),
      machineCpuMicrosPerMessage: Math.round((machineAfter.busy - machineBefore.busy) / ids.length),
      /** The same span, split: gateways, the SMSC simulator, this load generator, the rest (PostgreSQL, Redis, kernel). */
      machineSplitMicrosPerMessage: {
        gateways: Math.round(gatewaysWhileAccepting / ids.length),
        simulator: Math.round((simAfter - simBefore) / ids.length),
        loadGenerator: Math.round((harness.user + harness.system) / ids.length),
        rest: Math.round((machineAfter.busy - machineBefore.busy - gatewaysWhileAccepting - (simAfter - simBefore) - harness.user - harness.system) / ids.length)
      },
      /** While the load ran, the worst node: how long a ready callback waited for the event loop, and GC pauses in all. */
      eventLoopDelayMs: {
        p50: +Math.max(...runtimeAfter.map((r) => r.lagP50Ms)).toFixed(1),
        p99: +Math.max(...runtimeAfter.map((r) => r.lagP99Ms)).toFixed(1),
        max: +Math.max(...runtimeAfter.map((r) => r.lagMaxMs)).toFixed(1)
      },
      /** The load generator's own event-loop delay while it sent (beyond the 10 ms sampling interval). */
      loadGeneratorLoopDelayMs: {
        p99: +Math.max(0, ownLoop.percentile(99) / 1e6 - 10).toFixed(1),
        max: +Math.max(0, ownLoop.max / 1e6 - 10).toFixed(1)
      },
      gcPauseMs: {
        minor: Math.round(Math.max(...runtimeAfter.map((r, n) => r.gcMinorMs - (runtimeBefore[n]?.gcMinorMs ?? 0)))),
        major: Math.round(Math.max(...runtimeAfter.map((r, n) => r.gcMajorMs - (runtimeBefore[n]?.gcMajorMs ?? 0))))
      },
      answeredPerSecond: Array.from(perSecond, (n) => n ?? 0),
      /** Cluster: what PostgreSQL wrote for the run, per message (deterministic, unlike CPU): WAL, row updates, HOT share. */
      ...(pgBefore !== undefined && pgAfter !== undefined ? { postgres: pgWritesPerMessage(pgBefore, pgAfter, ids.length) } : {}),
      /** BENCH_TRACING: the ratio, and what the collector was sent. */
      ...(tracingRatio !== undefined
        ? { tracing: { sampleRatio: tracingRatio, exports: traceSink.exports, exportedKb: Math.round(traceSink.bytes / 1024) } }
        : {})
    }
    console.log(JSON.stringify(result, null, 2))
    if (process.env.BENCH_NO_RECORD !== "1") {
      appendFileSync("bench/RESULTS.md", `\n### ${result.date} — \`${tracingRatio !== undefined ? `BENCH_TRACING=${tracingRatio} ` : ""}${rate > 0 ? `BENCH_RATE=${rate} ` : ""}${api !== "rest" ? `BENCH_API=${api} ${batchSize > 1 ? `BENCH_BATCH=${batchSize} ` : ""}` : ""}${clusterNodes > 0 ? `BENCH_CLUSTER=${clusterNodes} ` : ""}${linkCount > 1 ? `BENCH_LINKS=${linkCount} ` : ""}${balance !== "round-robin" ? `BENCH_BALANCE=${balance} ` : ""}npm run bench\` (${result.mode}, ${messages} messages, concurrency ${concurrency}, window ${window}, receipts after ${receiptDelayMs} ms${linkCount > 1 ? `, a pool of ${linkCount} links` : ""})\n\n` +
        `| accepted msg/s | submitted msg/s | receipts matched | ${batchSize > 1 ? `request (${batchSize} messages)` : "HTTP"} p50 / p99 | gateway CPU per message | peak RSS |\n|---|---|---|---|---|---|\n` +
        `| ${result.acceptedPerSecond} | ${result.submittedPerSecond} | ${result.deliveredInStore} / ${result.accepted} | ${result.latencyMs.p50} / ${result.latencyMs.p99} ms${rate > 0 ? ` (p99.9 ${result.latencyMs.p999}, max ${result.latencyMs.max}; offered ${rate}/s)` : ""} | ${result.gatewayCpuMicrosPerMessage} µs | ${result.gatewayPeakRssMb} MB |\n\n` +
        `Machine: ${result.machine}, Node ${result.node}. Statuses in the store: \`${JSON.stringify(result.statuses)}\`. HTTP failures: ${failures}.` +
        (linkCount > 1 ? ` Split over the links: \`${JSON.stringify(result.split)}\`.` : "") +
        (clusterNodes > 0 ? ` Requests per node (${balance}): ${answeredBy.join(" / ")}; CPU per request each node answered: ${result.perNodeCpuMicrosPerHandledMessage.join(" / ")} µs.` : "") +
        ` Idle CPU per node (no traffic, ${idleSeconds} s): ${idlePercent.join(" / ")} % of a core.` +
        ` Whole machine while accepting: ${result.machineBusyPercent} % busy, ${result.machineCpuMicrosPerMessage} µs of CPU per message` +
        ` (gateways ${result.machineSplitMicrosPerMessage.gateways}, simulator ${result.machineSplitMicrosPerMessage.simulator}, load generator ${result.machineSplitMicrosPerMessage.loadGenerator}, PostgreSQL/Redis/kernel ${result.machineSplitMicrosPerMessage.rest}).` +
        ` Event loop delay while accepting (worst node): p50 ${result.eventLoopDelayMs.p50} ms, p99 ${result.eventLoopDelayMs.p99} ms, max ${result.eventLoopDelayMs.max} ms; GC pauses ${result.gcPauseMs.minor} ms minor, ${result.gcPauseMs.major} ms major; the load generator's own event-loop delay p99 ${result.loadGeneratorLoopDelayMs.p99} ms, max ${result.loadGeneratorLoopDelayMs.max} ms.` + "\n")
    }
    if (process.env.BENCH_HEAP_SNAPSHOT === "1") {
      // Needs BENCH_GATEWAY_NODE_ARGS=--heapsnapshot-signal=SIGUSR2; the snapshot lands in the working directory.
      for (const g of gateways) g.kill("SIGUSR2")
      await sleep(15_000)
    }
    if (delivered < ids.length || failures > 0) process.exitCode = 1
    if (process.env.BENCH_PEER === "kannel") {
      await Promise.all(gateways.map((g) => stopped(g, profile ? "SIGINT" : "SIGKILL")))
      const peerTools = { request, benchMessage, cpuMicros, peakRssMb, percentile, waitFor, freePort }
      const run = { messages, concurrency, rate, window, receiptDelayMs, smppPort, controlPort }
      if (!(await benchKannel(peerTools, run, result, process.env.BENCH_NO_RECORD !== "1"))) process.exitCode = 1
    }
  } finally {
    agent.destroy()
    await cleanup()
  }
}

await main()
