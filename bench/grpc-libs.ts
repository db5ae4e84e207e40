/**
 * `node bench/grpc-libs.ts`: which gRPC server library the gateway's gRPC front should use (issue 15), by the server's
 * CPU per call. Each server runs in its own process on plaintext HTTP/2 (h2c, 127.0.0.1) and serves
 * bench/grpc-libs/bench.proto:
 * - `connect`: @connectrpc/connect-node's adapter on node:http2, code from protoc-gen-es (bench/grpc-libs/gen);
 * - `grpc-js`: @grpc/grpc-js with @grpc/proto-loader (protobuf.js);
 * - `grpc-js+es`: @grpc/grpc-js with protoc-gen-es's codec, which tells the transport's cost from the codec's.
 * One client for all of them, in a third process: @grpc/grpc-js + @grpc/proto-loader over one HTTP/2 connection,
 * each call with a 30 s deadline (the servers parse grpc-timeout). Per run: a warm-up, then BENCH_CALLS unary Submit
 * calls at BENCH_CONCURRENCY, then one server-streaming Watch of BENCH_MESSAGES messages. The server's CPU is its
 * process.cpuUsage() delta over a phase. Runs alternate between the servers, BENCH_RUNS rounds (3); prints each run,
 * then the medians as JSON. Settings: BENCH_CALLS (20000), BENCH_CONCURRENCY (50), BENCH_MESSAGES (50000),
 * BENCH_SERVERS (connect,grpc-js,grpc-js+es).
 */
import { fork } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { randomUUID } from "node:crypto"
import * as http2 from "node:http2"
import type { AddressInfo } from "node:net"
import * as path from "node:path"
import { fromBinary, toBinary } from "@bufbuild/protobuf"
import { connectNodeAdapter } from "@connectrpc/connect-node"
import * as grpc from "@grpc/grpc-js"
import * as protoLoader from "@grpc/proto-loader"
import { Bench, EventSchema, SubmitRequestSchema, SubmitResponseSchema, WatchRequestSchema } from "./grpc-libs/gen/bench_pb.ts"
import type { Event, SubmitResponse } from "./grpc-libs/gen/bench_pb.ts"

const protoPath = path.join(import.meta.dirname, "grpc-libs", "bench.proto")
const servers = ["connect", "grpc-js", "grpc-js+es"] as const
type ServerKind = (typeof servers)[number]

const calls = Number(process.env.BENCH_CALLS ?? 20_000)
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 50)
const messages = Number(process.env.BENCH_MESSAGES ?? 50_000)
const runs = Number(process.env.BENCH_RUNS ?? 3)
const chosen = (process.env.BENCH_SERVERS ?? servers.join(",")).split(",").map((name) => {
  const kind = servers.find((s) => s === name)
  if (kind === undefined) throw new Error(`BENCH_SERVERS: unknown server "${name}" (one of ${servers.join(", ")})`)
  return kind
})
const readMaxBytes = 64 * 1024
const deadlineMs = 30_000
const stepTimeoutMs = 180_000

// The IPC between the orchestrator and its two children: a command, answered by one reply.
type Command =
  | { readonly op: "cpu" }
  | { readonly op: "unary"; readonly calls: number; readonly concurrency: number }
  | { readonly op: "stream"; readonly messages: number }
  | { readonly op: "exit" }
type Reply =
  | { readonly op: "ready"; readonly port: number }
  | { readonly op: "cpu"; readonly micros: number }
  | { readonly op: "done"; readonly count: number; readonly wallMs: number }

const sample = { to: "+4915112345678", from: "ACME", text: "Your code is 123456. It expires in 10 minutes." }

const loadService = (): grpc.ServiceDefinition => {
  const definition = protoLoader.loadSync(protoPath, { defaults: true })
  const service = definition["smsgw.bench.v1.Bench"]
  if (service === undefined || "format" in service) throw new Error("bench.proto: no service smsgw.bench.v1.Bench")
  return service as grpc.ServiceDefinition
}

// --- servers -------------------------------------------------------------------------------------------------------

const submitResponse = () => ({ id: randomUUID(), status: "accepted", segments: 1 })

const serveConnect = (): Promise<number> => {
  const handler = connectNodeAdapter({
    grpc: true,
    grpcWeb: false,
    connect: false,
    readMaxBytes,
    maxTimeoutMs: 60_000,
    routes: (router) =>
      router.service(Bench, {
        submit: () => submitResponse(),
        async *watch(request, context) {
          for (let seq = 0; seq < request.count && !context.signal.aborted; seq++) {
            yield { id: "0b6f3c1e-5b8a-4d47-9a43-1d2b0c7f9e11", status: "delivered", seq }
          }
        }
      })
  })
  const server = http2.createServer(handler)
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)))
}

type Codec = Pick<grpc.MethodDefinition<unknown, unknown>, "requestDeserialize" | "responseSerialize">

const serveGrpcJs = (codecs: { readonly submit: Codec; readonly watch: Codec } | undefined): Promise<number> => {
  const loaded = loadService()
  const service: grpc.ServiceDefinition = codecs === undefined ? loaded : {
    Submit: { ...loaded.Submit, ...codecs.submit } as grpc.MethodDefinition<unknown, unknown>,
    Watch: { ...loaded.Watch, ...codecs.watch } as grpc.MethodDefinition<unknown, unknown>
  }
  const server = new grpc.Server({ "grpc.max_receive_message_length": readMaxBytes })
  server.addService(service, {
    Submit: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) =>
      callback(null, submitResponse()),
    Watch: (call: grpc.ServerWritableStream<{ count: number }, unknown>) => {
      let seq = 0
      // Honours the stream's back-pressure, as connect-node does for a generator.
      const pump = () => {
        while (seq < call.request.count) {
          if (call.cancelled) return
          const more = call.write({ id: "0b6f3c1e-5b8a-4d47-9a43-1d2b0c7f9e11", status: "delivered", seq: seq++ })
          if (!more) return void call.once("drain", pump)
        }
        call.end()
      }
      pump()
    }
  })
  return new Promise((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, port) =>
      error === null ? resolve(port) : reject(error)))
}

// The handlers answer plain objects of the fields; toBinary wants a message, which $typeName makes one.
const esCodecs = {
  submit: {
    requestDeserialize: (bytes: Buffer) => fromBinary(SubmitRequestSchema, bytes),
    responseSerialize: (value: unknown) =>
      Buffer.from(toBinary(SubmitResponseSchema,
        { $typeName: "smsgw.bench.v1.SubmitResponse", ...value as Omit<SubmitResponse, "$typeName"> }))
  },
  watch: {
    requestDeserialize: (bytes: Buffer) => fromBinary(WatchRequestSchema, bytes),
    responseSerialize: (value: unknown) =>
      Buffer.from(toBinary(EventSchema, { $typeName: "smsgw.bench.v1.Event", ...value as Omit<Event, "$typeName"> }))
  }
} as const

const runServer = async (kind: ServerKind) => {
  const port = await (kind === "connect" ? serveConnect() : serveGrpcJs(kind === "grpc-js" ? undefined : esCodecs))
  send({ op: "ready", port })
  process.on("message", (command: Command) => {
    if (command.op === "cpu") {
      const used = process.cpuUsage()
      send({ op: "cpu", micros: used.user + used.system })
    } else if (command.op === "exit") process.exit(0)
  })
}

// --- client --------------------------------------------------------------------------------------------------------

const runClient = (port: number) => {
  const service = loadService()
  const submit = service.Submit as grpc.MethodDefinition<typeof sample, unknown>
  const watch = service.Watch as grpc.MethodDefinition<{ count: number }, unknown>
  // One channel, so one HTTP/2 connection for every call.
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure())
  const options = (): grpc.CallOptions => ({ deadline: Date.now() + deadlineMs })

  const unary = (total: number, width: number): Promise<number> => {
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < total) {
        next++
        await new Promise<void>((resolve, reject) =>
          client.makeUnaryRequest(submit.path, submit.requestSerialize, submit.responseDeserialize, sample, options(),
            (error) => error === null ? resolve() : reject(error)))
      }
    }
    return Promise.all(Array.from({ length: width }, worker)).then(() => total)
  }

  const stream = (count: number): Promise<number> =>
    new Promise((resolve, reject) => {
      let received = 0
      const call = client.makeServerStreamRequest(watch.path, watch.requestSerialize, watch.responseDeserialize,
        { count }, options())
      call.on("data", () => received++)
      call.on("error", reject)
      call.on("end", () => resolve(received))
    })

  process.on("message", async (command: Command) => {
    if (command.op === "exit") {
      client.close()
      process.exit(0)
    }
    const started = performance.now()
    const count = command.op === "unary" ? await unary(command.calls, command.concurrency)
      : command.op === "stream" ? await stream(command.messages) : 0
    send({ op: "done", count, wallMs: performance.now() - started })
  })
  send({ op: "ready", port })
}

const send = (reply: Reply) => {
  if (process.send === undefined) throw new Error("bench/grpc-libs.ts: a child runs with an IPC channel")
  process.send(reply)
}

// --- orchestrator --------------------------------------------------------------------------------------------------

interface Child {
  readonly process: ChildProcess
  ask(command: Command): Promise<Reply>
  readonly ready: Promise<Reply>
}

const start = (args: ReadonlyArray<string>): Child => {
  const child = fork(import.meta.filename, args, { stdio: ["ignore", "inherit", "inherit", "ipc"] })
  const waiters: Array<(reply: Reply) => void> = []
  const failures: Array<(error: Error) => void> = []
  child.on("message", (reply: Reply) => {
    failures.shift()
    waiters.shift()?.(reply)
  })
  child.on("exit", (code) => {
    const error = new Error(`${args.join(" ")}: exited with ${code}`)
    for (const fail of failures.splice(0)) fail(error)
    waiters.splice(0)
  })
  const next = (): Promise<Reply> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${args.join(" ")}: no reply in ${stepTimeoutMs} ms`)), stepTimeoutMs)
      waiters.push((reply) => {
        clearTimeout(timer)
        resolve(reply)
      })
      failures.push((error) => {
        clearTimeout(timer)
        reject(error)
      })
    })
  const ready = next()
  return {
    process: child,
    ready,
    ask: (command) => {
      const reply = next()
      child.send(command)
      return reply
    }
  }
}

const stop = (child: Child) =>
  new Promise<void>((resolve) => {
    if (child.process.exitCode !== null) return resolve()
    child.process.once("exit", () => resolve())
    child.process.send({ op: "exit" })
  })

const cpuOf = async (server: Child) => {
  const reply = await server.ask({ op: "cpu" })
  if (reply.op !== "cpu") throw new Error(`expected cpu, got ${reply.op}`)
  return reply.micros
}

/** Runs one phase on the client and returns the server's CPU per item, the items per second. */
const phase = async (server: Child, client: Child, command: Command, expected: number) => {
  const before = await cpuOf(server)
  const reply = await client.ask(command)
  const after = await cpuOf(server)
  if (reply.op !== "done" || reply.count !== expected) throw new Error(`${command.op}: ${JSON.stringify(reply)}`)
  return { cpuMicrosPerItem: (after - before) / expected, perSecond: expected / (reply.wallMs / 1000) }
}

const runOnce = async (kind: ServerKind) => {
  const server = start(["server", kind])
  const ready = await server.ready
  if (ready.op !== "ready") throw new Error(`server ${kind}: ${JSON.stringify(ready)}`)
  const client = start(["client", String(ready.port)])
  await client.ready
  try {
    await phase(server, client, { op: "unary", calls: Math.ceil(calls / 5), concurrency }, Math.ceil(calls / 5))
    await phase(server, client, { op: "stream", messages: Math.ceil(messages / 5) }, Math.ceil(messages / 5))
    const unary = await phase(server, client, { op: "unary", calls, concurrency }, calls)
    const stream = await phase(server, client, { op: "stream", messages }, messages)
    return { unary, stream }
  } finally {
    await stop(client)
    await stop(server)
  }
}

const median = (values: ReadonlyArray<number>) => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle] ?? NaN : ((sorted[middle - 1] ?? NaN) + (sorted[middle] ?? NaN)) / 2
}
const round = (value: number, digits = 1) => Number(value.toFixed(digits))

const orchestrate = async () => {
  const results = new Map<ServerKind, Array<Awaited<ReturnType<typeof runOnce>>>>(chosen.map((kind) => [kind, []]))
  for (let r = 1; r <= runs; r++) {
    for (const kind of chosen) {
      const result = await runOnce(kind)
      results.get(kind)?.push(result)
      console.log(`run ${r} ${kind.padEnd(10)} unary ${round(result.unary.cpuMicrosPerItem)} µs/call, ` +
        `${Math.round(result.unary.perSecond)} calls/s; stream ${round(result.stream.cpuMicrosPerItem, 2)} µs/msg, ` +
        `${Math.round(result.stream.perSecond)} msg/s`)
    }
  }
  const medians = Object.fromEntries([...results].map(([kind, list]) => [kind, {
    unaryCpuMicrosPerCall: round(median(list.map((x) => x.unary.cpuMicrosPerItem))),
    callsPerSecond: Math.round(median(list.map((x) => x.unary.perSecond))),
    streamCpuMicrosPerMessage: round(median(list.map((x) => x.stream.cpuMicrosPerItem)), 2),
    messagesPerSecond: Math.round(median(list.map((x) => x.stream.perSecond)))
  }]))
  const connect = medians["connect"]
  const grpcJs = medians["grpc-js"]
  const ratio = connect === undefined || grpcJs === undefined ? undefined : {
    unaryCpu: round(connect.unaryCpuMicrosPerCall / grpcJs.unaryCpuMicrosPerCall, 2),
    streamCpu: round(connect.streamCpuMicrosPerMessage / grpcJs.streamCpuMicrosPerMessage, 2)
  }
  console.log(JSON.stringify({ calls, concurrency, messages, runs, medians, connectOverGrpcJs: ratio }, null, 2))
}

const [role, arg] = process.argv.slice(2)
if (role === "server") {
  const kind = servers.find((s) => s === arg)
  if (kind === undefined) throw new Error(`server: unknown kind ${arg}`)
  await runServer(kind)
} else if (role === "client") {
  runClient(Number(arg))
} else {
  await orchestrate()
}
