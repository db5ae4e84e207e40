import { describe, expect, it } from "@effect/vitest"
import { Cause, Context, Effect, Exit, Fiber, Scope } from "effect"
import { createServer } from "node:net"
import type { AddressInfo, Server } from "node:net"
import { readFileSync } from "node:fs"
import { connect } from "node:http2"
import { GrpcServer } from "../../src/grpc/Server.ts"
import { selfSigned } from "../fixtures/Certificates.ts"
import { eventually } from "../fixtures/Eventually.ts"
import { freePort } from "../fixtures/Processes.ts"
import { redisServer } from "../fixtures/RedisServer.ts"
import { signUp, startGateway } from "../fixtures/Gateway.ts"
import {
  client,
  FileDescriptorProto,
  grpc,
  HealthClient,
  MessageServiceClient,
  ReflectionV1alphaClient,
  ReflectionV1Client,
  serverStream,
  unary
} from "../fixtures/GrpcClient.ts"

const sms = { to: "+4915112345678", from: "ACME", text: "hi" }


type ReflectionAnswer = {
  message_response: string
  list_services_response?: { service: Array<{ name: string }> }
  file_descriptor_response?: { file_descriptor_proto: Array<Buffer> }
  error_response?: { error_code: number; error_message: string }
}

/** One reflection request on a fresh bidi stream: its one answer. */
const reflect = (c: grpc.Client, request: Record<string, unknown>) =>
  Effect.callback<ReflectionAnswer>((resume) => {
    const call = (c as unknown as { ServerReflectionInfo: () => grpc.ClientDuplexStream<unknown, ReflectionAnswer> }).ServerReflectionInfo()
    call.once("data", (answer: ReflectionAnswer) => {
      resume(Effect.succeed(answer))
      call.end()
    })
    call.once("error", (e) => resume(Effect.die(e)))
    call.write({ host: "", ...request })
  })

const grpcServerOf = (context: Context.Context<never>) => Context.get(context as Context.Context<GrpcServer>, GrpcServer)

describe("the gRPC transport (issue 15)", () => {
  it.live("deadlines are honoured, and a client that goes away mid-stream leaves nothing running", () =>
    Effect.gen(function*() {
      // Receipts come late: a watch runs until its deadline or its client leaves.
      const gw = yield* startGateway({ simulator: { receiptDelayMs: 60_000 } })
      const t = yield* signUp(gw.baseUrl)
      const messages = yield* client(MessageServiceClient, gw.grpcAddress)
      const sent = yield* unary<{ id: string }>(messages, "SendMessage", sms, t.auth)
      if (!sent.ok) throw new Error(sent.error.message)
      const server = grpcServerOf(gw.context)

      const timedOut = yield* serverStream(messages, "WatchMessage", { id: sent.value.id }, t.auth, { deadlineMs: 700 })
      expect(timedOut.messages.length).toBeGreaterThan(0)
      expect(timedOut.error?.code).toBe(grpc.status.DEADLINE_EXCEEDED)

      // The client cancels after the first answer: the server's stream closes, and it keeps serving.
      const cancelled = yield* serverStream(messages, "WatchMessage", { id: sent.value.id }, t.auth, {
        onMessage: (_m, call) => call.cancel()
      })
      expect(cancelled.error?.code).toBe(grpc.status.CANCELLED)
      // A client whose connection vanishes mid-stream: a raw HTTP/2 session destroyed after the first answer.
      const session = connect(`http://${gw.grpcAddress}`)
      session.on("error", () => undefined)
      const id = Buffer.from(sent.value.id)
      const body = Buffer.concat([Buffer.from([0, 0, 0, 0, id.length + 2, 0x0a, id.length]), id])
      const stream = session.request({
        ":method": "POST",
        ":path": "/smsgw.v1.MessageService/WatchMessage",
        "content-type": "application/grpc",
        te: "trailers",
        authorization: t.auth.authorization
      })
      stream.on("error", () => undefined)
      stream.end(body)
      yield* Effect.callback<void>((resume) => {
        stream.once("data", () => resume(Effect.void))
      })
      expect(server.callsInFlight()).toBe(1)
      session.destroy()
      yield* eventually("every stream closed", Effect.sync(() => server.callsInFlight() === 0), { timeout: 5_000 })
      const again = yield* unary(messages, "GetMessage", { id: sent.value.id }, t.auth)
      expect(again.ok).toBe(true)
    }).pipe(Effect.scoped), 30_000)

  it.live("a gRPC port already taken stops the start-up with an error naming grpc.port", () =>
    Effect.gen(function*() {
      const taken = yield* Effect.acquireRelease(
        Effect.callback<Server>((resume) => {
          const server = createServer()
          server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
        }),
        (server) => Effect.sync(() => server.close())
      )
      const port = (taken.address() as AddressInfo).port
      const exit = yield* Effect.exit(startGateway({ config: { grpc: { port } } }))
      expect(Exit.isFailure(exit) && String(Cause.squash(exit.cause))).toContain(`grpc.port: cannot listen on 127.0.0.1:${port}`)
    }).pipe(Effect.scoped), 30_000)

  it.live("TLS from certificate files: a client trusting the certificate calls; a clear-text one does not get in", () =>
    Effect.gen(function*() {
      const tls = yield* selfSigned
      const gw = yield* startGateway({ config: { grpc: { tls } } })
      const t = yield* signUp(gw.baseUrl)
      expect(grpcServerOf(gw.context).tls).toBe(true)
      const secure = yield* client(MessageServiceClient, gw.grpcAddress, { ca: readFileSync(tls.certFile) })
      const sent = yield* unary<{ status: string }>(secure, "SendMessage", sms, t.auth)
      expect(sent.ok && sent.value.status).toBe("MESSAGE_STATUS_ACCEPTED")
      const plain = yield* client(MessageServiceClient, gw.grpcAddress)
      const refused = yield* unary(plain, "SendMessage", sms, t.auth, { deadlineMs: 3_000 })
      expect(refused.ok).toBe(false)
      expect(refused.ok ? undefined : refused.error.code).toBeOneOf([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED])
    }).pipe(Effect.scoped), 30_000)

  it.live("a request above maxMessageBytes is refused before it is read", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({ config: { grpc: { maxMessageBytes: 16 * 1024 } } })
      const t = yield* signUp(gw.baseUrl)
      const messages = yield* client(MessageServiceClient, gw.grpcAddress)
      const big = Array.from({ length: 200 }, (_, i) => ({ ...sms, text: `message number ${i} `.repeat(10) }))
      const refused = yield* unary(messages, "SendMessages", { messages: big }, t.auth)
      expect(refused.ok ? undefined : refused.error.code).toBe(grpc.status.RESOURCE_EXHAUSTED)
      expect((yield* unary(messages, "SendMessage", sms, t.auth)).ok).toBe(true)
    }).pipe(Effect.scoped), 30_000)

  it.live("health: SERVING exactly when ready; Watch follows readiness; an unknown service is NOT_FOUND", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway()
      const health = yield* client(HealthClient, gw.grpcAddress)
      const status = (service: string) =>
        Effect.map(unary<{ status: string }>(health, "Check", { service }), (r) => r.ok ? r.value.status : `error ${r.error.code}`)
      yield* eventually("SERVING", status(""), { until: (s) => s === "SERVING" })
      expect(yield* status("smsgw.v1.MessageService")).toBe("SERVING")
      expect(yield* status("no.such.Service")).toBe(`error ${grpc.status.NOT_FOUND}`)
      const watched: Array<string> = []
      const watching = yield* Effect.forkChild(serverStream<{ status: string }>(health, "Watch", { service: "" }, {}, {
        onMessage: (m, call) => {
          watched.push(m.status)
          if (m.status === "NOT_SERVING") call.cancel()
        }
      }))
      yield* eventually("Watch says SERVING", Effect.sync(() => watched[0] === "SERVING"))
      // The link goes down: not ready, so NOT_SERVING, on Check and on the open Watch.
      yield* gw.sim.close
      yield* eventually("NOT_SERVING", status(""), { until: (s) => s === "NOT_SERVING", timeout: 20_000 })
      yield* eventually("Watch says NOT_SERVING", Effect.sync(() => watched.at(-1) === "NOT_SERVING"), { timeout: 20_000 })
      yield* Fiber.join(watching).pipe(Effect.ignore)
      expect(watched).toEqual(["SERVING", "NOT_SERVING"])
    }).pipe(Effect.scoped), 60_000)

  it.live("health: readiness is checked at most once a second, whether one caller asks or 50 watch and 20 check at once", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway()
      const server = grpcServerOf(gw.context)
      const health = yield* client(HealthClient, gw.grpcAddress)
      const check = Effect.map(unary<{ status: string }>(health, "Check", { service: "" }), (r) => r.ok ? r.value.status : `error ${r.error.code}`)
      yield* eventually("SERVING", check, { until: (s) => s === "SERVING" })
      const beforeChecks = server.readinessChecks()
      const answers = yield* Effect.all(Array.from({ length: 20 }, () => check), { concurrency: "unbounded" })
      expect(answers.every((s) => s === "SERVING")).toBe(true)
      expect(server.readinessChecks() - beforeChecks).toBeLessThanOrEqual(1)

      let serving = 0
      for (let i = 0; i < 50; i++) {
        yield* Effect.forkChild(serverStream<{ status: string }>(health, "Watch", { service: "" }, {}, {
          onMessage: (m) => {
            if (m.status === "SERVING") serving++
          }
        }))
      }
      yield* eventually("50 watches SERVING", Effect.sync(() => serving === 50 && server.callsInFlight() === 50))
      // 50 watchers each looking every second would run ~50 checks a second; shared, three more take two intervals.
      const start = Date.now()
      const from = server.readinessChecks()
      yield* eventually("three more checks", Effect.sync(() => server.readinessChecks() >= from + 3), { interval: 10 })
      expect(Date.now() - start).toBeGreaterThanOrEqual(1_900)
    }).pipe(Effect.scoped), 30_000)

  it.live("connections: at most maxConcurrentStreams calls each, and one left idle is closed", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({ config: { grpc: { maxConcurrentStreams: 3, maxConnectionIdleSeconds: 1 } } })
      const session = yield* Effect.acquireRelease(Effect.sync(() => connect(`http://${gw.grpcAddress}`)), (s) => Effect.sync(() => s.destroy()))
      let closed = false
      session.on("error", () => undefined)
      session.on("close", () => {
        closed = true
      })
      session.on("goaway", () => {
        closed = true
      })
      const settings = yield* Effect.callback<{ maxConcurrentStreams?: number | undefined }>((resume) => {
        session.once("remoteSettings", (s) => resume(Effect.succeed(s)))
      })
      expect(settings.maxConcurrentStreams).toBe(3)
      yield* eventually("the idle connection closed by the server", Effect.sync(() => closed), { timeout: 10_000 })
    }).pipe(Effect.scoped), 30_000)

  it.live("a WatchMessage ends after maxWatchSeconds with UNAVAILABLE, watch again", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({ simulator: { receiptDelayMs: 60_000 }, config: { grpc: { maxWatchSeconds: 1 } } })
      const t = yield* signUp(gw.baseUrl)
      const messages = yield* client(MessageServiceClient, gw.grpcAddress)
      const sent = yield* unary<{ id: string }>(messages, "SendMessage", sms, t.auth)
      if (!sent.ok) throw new Error(sent.error.message)
      const ended = yield* serverStream(messages, "WatchMessage", { id: sent.value.id }, t.auth, { deadlineMs: 20_000 })
      expect(ended.messages.length).toBeGreaterThan(0)
      expect(ended.error?.code).toBe(grpc.status.UNAVAILABLE)
      expect(ended.error?.message).toContain("watch again")
      yield* eventually("the watch closed on the server", Effect.sync(() => grpcServerOf(gw.context).callsInFlight() === 0))
    }).pipe(Effect.scoped), 30_000)

  it.live("a unary call sent without a deadline is bounded by http.requestTimeoutSeconds: DEADLINE_EXCEEDED, its work interrupted", () =>
    Effect.gen(function*() {
      const redis = yield* redisServer(yield* freePort)
      const gw = yield* startGateway({
        config: {
          http: { requestTimeoutSeconds: 1 },
          rateLimits: { store: "redis", redis: { port: redis.port, timeoutMs: 10_000 } }
        }
      })
      const t = yield* signUp(gw.baseUrl)
      const messages = yield* client(MessageServiceClient, gw.grpcAddress)
      const server = grpcServerOf(gw.context)
      // Redis stops answering: the rate limiter would wait up to its 10 s timeout.
      yield* redis.pause
      const start = Date.now()
      const bounded = yield* unary(messages, "SendMessage", sms, t.auth)
      expect(bounded.ok ? undefined : bounded.error.code).toBe(grpc.status.DEADLINE_EXCEEDED)
      expect(Date.now() - start).toBeLessThan(5_000)
      // Interrupted, not left to run until the Redis timeout.
      yield* eventually("the call's work ended", Effect.sync(() => server.callsInFlight() === 0), { timeout: 3_000 })
      yield* redis.resume
    }).pipe(Effect.scoped), 30_000)

  it.live("reflection (v1 and v1alpha): the services, and each file with its dependencies, without the .proto files", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway()
      for (const Ctor of [ReflectionV1Client, ReflectionV1alphaClient]) {
        const reflection = yield* client(Ctor, gw.grpcAddress)
        const listed = yield* reflect(reflection, { list_services: "" })
        expect(listed.list_services_response?.service.map((s) => s.name).sort()).toEqual([
          "grpc.health.v1.Health",
          "grpc.reflection.v1.ServerReflection",
          "grpc.reflection.v1alpha.ServerReflection",
          "smsgw.v1.MessageService"
        ])
        const files = yield* reflect(reflection, { file_containing_symbol: "smsgw.v1.MessageService" })
        const decoded = (files.file_descriptor_response?.file_descriptor_proto ?? []).map((bytes) =>
          FileDescriptorProto.toObject(FileDescriptorProto.decode(bytes)) as { name: string; service?: Array<{ name: string; method: Array<{ name: string }> }> })
        expect(decoded.map((f) => f.name)).toEqual(expect.arrayContaining(["smsgw/v1/messages.proto", "google/rpc/status.proto", "google/protobuf/timestamp.proto"]))
        expect(decoded[0]!.service![0]!.method.map((m) => m.name)).toEqual(["SendMessage", "SendMessages", "GetMessage", "WatchMessage", "ListMessages", "ListInboundMessages"])
        const byMethod = yield* reflect(reflection, { file_containing_symbol: "smsgw.v1.MessageService.WatchMessage" })
        expect(byMethod.message_response).toBe("file_descriptor_response")
        const byName = yield* reflect(reflection, { file_by_filename: "grpc/health/v1/health.proto" })
        expect(byName.file_descriptor_response?.file_descriptor_proto).toHaveLength(1)
        const missing = yield* reflect(reflection, { file_containing_symbol: "no.such.Thing" })
        expect(missing.error_response?.error_code).toBe(grpc.status.NOT_FOUND)
      }
    }).pipe(Effect.scoped), 30_000)

  it.live("shutdown drains: open watches end with UNAVAILABLE, unary calls in flight finish, new calls find no listener", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const gw = yield* startGateway({ simulator: { receiptDelayMs: 60_000 } }).pipe(Scope.provide(scope))
      const t = yield* signUp(gw.baseUrl)
      const messages = yield* client(MessageServiceClient, gw.grpcAddress)
      const sent = yield* unary<{ id: string }>(messages, "SendMessage", sms, t.auth)
      if (!sent.ok) throw new Error(sent.error.message)
      const server = grpcServerOf(gw.context)
      const watch = yield* Effect.forkChild(serverStream(messages, "WatchMessage", { id: sent.value.id }, t.auth))
      yield* eventually("the watch open", Effect.sync(() => server.callsInFlight() === 1))
      // A batch of 1,000 in flight when the shutdown begins: it is answered in full.
      const thousand = Array.from({ length: 1000 }, (_, i) => ({ ...sms, to: `+49151${String(20_000_000 + i)}` }))
      const batch = yield* Effect.forkChild(unary<{ results: Array<{ result: string }> }>(messages, "SendMessages", { messages: thousand }, t.auth))
      yield* eventually("the batch in flight", Effect.sync(() => server.callsInFlight() === 2), { interval: 5 })
      yield* Scope.close(scope, Exit.void)
      const answered = yield* Fiber.join(batch)
      expect(answered.ok && answered.value.results.filter((r) => r.result === "accepted").length).toBe(1000)
      const ended = yield* Fiber.join(watch)
      expect(ended.messages.length).toBeGreaterThan(0)
      expect(ended.error?.code).toBe(grpc.status.UNAVAILABLE)
      expect(ended.error?.message).toContain("shutting down")
      const after = yield* unary(messages, "GetMessage", { id: sent.value.id }, t.auth, { deadlineMs: 2_000 })
      expect(after.ok ? undefined : after.error.code).toBeOneOf([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED])
    }), 30_000)

  it.live("shutdown drains: an open reflection stream (a grpcui session) is counted and ended at once, not left to the grace", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      // A grace longer than the test: the drain must not wait for it.
      const gw = yield* startGateway({ config: { grpc: { shutdownGraceSeconds: 60 } } }).pipe(Scope.provide(scope))
      const server = grpcServerOf(gw.context)
      const reflection = yield* client(ReflectionV1Client, gw.grpcAddress)
      const call = (reflection as unknown as { ServerReflectionInfo: () => grpc.ClientDuplexStream<unknown, ReflectionAnswer> }).ServerReflectionInfo()
      const ended = Effect.callback<{ code: number; details: string }>((resume) => {
        call.on("error", () => undefined)
        call.once("status", (s: grpc.StatusObject) => resume(Effect.succeed({ code: s.code, details: s.details })))
      })
      const answered = Effect.callback<ReflectionAnswer>((resume) => {
        call.once("data", (answer: ReflectionAnswer) => resume(Effect.succeed(answer)))
      })
      const status = yield* Effect.forkChild(ended)
      call.write({ host: "", list_services: "" })
      expect((yield* answered).message_response).toBe("list_services_response")
      expect(server.callsInFlight()).toBe(1)
      yield* Scope.close(scope, Exit.void)
      const { code, details } = yield* Fiber.join(status)
      expect(code).toBe(grpc.status.UNAVAILABLE)
      expect(details).toContain("shutting down")
    }), 30_000)
})
