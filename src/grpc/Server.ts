/**
 * The gRPC edge: a @grpc/grpc-js server (TLS from PEM files, or clear-text h2c) serving smsgw.v1.MessageService,
 * grpc.health.v1.Health and server reflection (v1 and v1alpha), with protobuf-es as the codec (Definition.ts).
 * grpc-js, not Connect: it costs a quarter of the CPU per unary call (bench/RESULTS.md, "gRPC library choice").
 *
 * Invariants: request messages above `maxMessageBytes` are refused before they are decoded (RESOURCE_EXHAUSTED);
 * a connection carries at most `maxConcurrentStreams` calls at once, and one without a call for `maxConnectionIdleMs`
 * is closed; connections are pinged every keepalive interval and closed when a ping goes unanswered; a client's
 * grpc-timeout bounds its call (grpc-js answers DEADLINE_EXCEEDED, and the handler's effect is interrupted), and a
 * unary call without one is bounded by `unaryTimeoutMs` the same way; a WatchMessage ends after `maxWatchMs`
 * (UNAVAILABLE, "watch again"). Closing the scope drains: no new calls are taken, streams that would run forever
 * (WatchMessage, health Watch, reflection) end at once with UNAVAILABLE / NOT_SERVING, unary calls in flight finish,
 * and whatever is left after `shutdownGraceMs` is cut.
 */
import { Server, ServerCredentials } from "@grpc/grpc-js"
import { Context, Effect, Layer } from "effect"
import { readFileSync } from "node:fs"
import { Calls } from "./Calls.ts"
import { serviceDefinition } from "./Definition.ts"
import { Health } from "./gen/grpc/health/v1/health_pb.ts"
import { ServerReflection } from "./gen/grpc/reflection/v1/reflection_pb.ts"
import * as V1alpha from "./gen/grpc/reflection/v1alpha/reflection_pb.ts"
import { MessageService } from "./gen/smsgw/v1/messages_pb.ts"
import { makeHealthService } from "./Health.ts"
import { makeMessageService } from "./MessageService.ts"
import { makeReflectionService } from "./Reflection.ts"

export interface GrpcOptions {
  readonly host: string
  /** 0 takes a free port (tests); the bound one is in `GrpcServer.address`. */
  readonly port: number
  readonly tls?: { readonly certFile: string; readonly keyFile: string } | undefined
  readonly maxMessageBytes: number
  readonly keepalive: { readonly intervalMs: number; readonly timeoutMs: number }
  readonly shutdownGraceMs: number
  /** Calls at once on one HTTP/2 connection (SETTINGS_MAX_CONCURRENT_STREAMS). */
  readonly maxConcurrentStreams: number
  /** A connection with no call for this long is closed (GOAWAY); its client reconnects when it next calls. */
  readonly maxConnectionIdleMs: number
  /** How long one WatchMessage stream runs before it ends with UNAVAILABLE, so the client watches (and authenticates) again. */
  readonly maxWatchMs: number
  /** The deadline of a unary call whose client set none: REST's request timeout (`http.requestTimeoutSeconds`). */
  readonly unaryTimeoutMs: number
}

/** The running listener: where clients reach it, and how many calls it is serving. */
export class GrpcServer extends Context.Service<GrpcServer, {
  readonly address: { readonly host: string; readonly port: number }
  readonly tls: boolean
  /** Calls in flight (watches included): what a drain waits for, what a leak would make grow. */
  readonly callsInFlight: () => number
  /** Readiness checks the health service has run: at most one per interval, however many callers. */
  readonly readinessChecks: () => number
}>()("smsgw/grpc/GrpcServer") {}

const bindAddress = (host: string, port: number) => `${host.includes(":") ? `[${host}]` : host}:${port}`

const credentialsOf = (tls: GrpcOptions["tls"]) =>
  tls === undefined
    ? ServerCredentials.createInsecure()
    : ServerCredentials.createSsl(null, [{ cert_chain: readFileSync(tls.certFile), private_key: readFileSync(tls.keyFile) }], false)

const bind = (server: Server, options: GrpcOptions) =>
  Effect.callback<number, Error>((resume) => {
    server.bindAsync(bindAddress(options.host, options.port), credentialsOf(options.tls), (error, port) =>
      resume(error === null ? Effect.succeed(port) : Effect.fail(error)))
  })

/** No new calls; calls in flight may finish within the grace, then every connection is cut. */
const drain = (server: Server, draining: AbortController, graceMs: number) =>
  Effect.callback<void>((resume) => {
    draining.abort()
    const cut = setTimeout(() => server.forceShutdown(), graceMs)
    server.tryShutdown(() => {
      clearTimeout(cut)
      resume(Effect.void)
    })
  })

export const layer = (options: GrpcOptions) =>
  Layer.effect(
    GrpcServer,
    Effect.gen(function*() {
      const messages = yield* makeMessageService({ maxWatchMs: options.maxWatchMs, unaryTimeoutMs: options.unaryTimeoutMs })
      const health = yield* makeHealthService
      const calls = new Calls()
      const draining = new AbortController()
      const server = new Server({
        "grpc.max_receive_message_length": options.maxMessageBytes,
        "grpc.keepalive_time_ms": options.keepalive.intervalMs,
        "grpc.keepalive_timeout_ms": options.keepalive.timeoutMs,
        "grpc.max_concurrent_streams": options.maxConcurrentStreams,
        "grpc.max_connection_idle_ms": options.maxConnectionIdleMs
      })
      server.addService(serviceDefinition(MessageService), messages(calls, draining.signal))
      server.addService(serviceDefinition(Health), health.implementation(calls, draining.signal))
      const reflection = makeReflectionService(calls, draining.signal)
      server.addService(serviceDefinition(ServerReflection), reflection)
      server.addService(serviceDefinition(ServerReflection, V1alpha.ServerReflection.typeName), reflection)
      const port = yield* Effect.acquireRelease(
        bind(server, options).pipe(
          // A port taken (another gateway, another process) stops the start-up with the key to change.
          Effect.mapError((e) => new Error(`grpc.port: cannot listen on ${options.host}:${options.port} (${e.message})`)),
          Effect.orDie
        ),
        () => drain(server, draining, options.shutdownGraceMs)
      )
      const address = { host: options.host, port }
      yield* Effect.logInfo("gRPC listening").pipe(Effect.annotateLogs({ host: address.host, port, tls: options.tls !== undefined }))
      return GrpcServer.of({ address, tls: options.tls !== undefined, callsInFlight: () => calls.inFlight,
        readinessChecks: health.readinessChecks
      })
    })
  )
