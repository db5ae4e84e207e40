/**
 * The gRPC edge: one node:http2 listener (TLS from PEM files, or clear-text h2c) serving, through Connect's one
 * handler, gRPC, gRPC-Web and Connect for smsgw.v1.MessageService, grpc.health.v1.Health and server reflection.
 *
 * Invariants: request messages above `maxMessageBytes` are refused before they are decoded (RESOURCE_EXHAUSTED);
 * idle connections are pinged and dropped when a ping goes unanswered; a client's grpc-timeout bounds its call (the
 * handler's signal interrupts the pipeline's effect). Closing the scope drains: the listener stops, every connection
 * gets GOAWAY (no new calls), streams that would run forever (WatchMessage, health Watch) end with UNAVAILABLE, unary
 * calls in flight finish, and whatever is left after `shutdownGraceMs` is cut.
 */
import { connectNodeAdapter } from "@connectrpc/connect-node"
import { createContextValues } from "@connectrpc/connect"
import type { ConnectRouter } from "@connectrpc/connect"
import { Context, Effect, Layer } from "effect"
import { readFileSync } from "node:fs"
import * as http2 from "node:http2"
import type { Http2SecureServer, Http2Server, Http2Session } from "node:http2"
import { Health } from "./gen/grpc/health/v1/health_pb.ts"
import { ServerReflection } from "./gen/grpc/reflection/v1/reflection_pb.ts"
import * as V1alpha from "./gen/grpc/reflection/v1alpha/reflection_pb.ts"
import { MessageService } from "./gen/smsgw/v1/messages_pb.ts"
import { makeHealthService } from "./Health.ts"
import { makeMessageService, PeerAddress } from "./MessageService.ts"
import { makeReflectionServices } from "./Reflection.ts"

export interface GrpcOptions {
  readonly host: string
  /** 0 takes a free port (tests); the bound one is in `GrpcServer.address`. */
  readonly port: number
  readonly tls?: { readonly certFile: string; readonly keyFile: string } | undefined
  readonly maxMessageBytes: number
  readonly keepalive: { readonly intervalMs: number; readonly timeoutMs: number }
  readonly shutdownGraceMs: number
}

/** The running listener: where clients reach it. */
export class GrpcServer extends Context.Service<GrpcServer, {
  readonly address: { readonly host: string; readonly port: number }
  readonly tls: boolean
  /** HTTP/2 streams open now (calls in flight, watches included): what a drain waits for, what a leak would grow. */
  readonly openStreams: () => number
}>()("smsgw/grpc/GrpcServer") {}

/** Pings a connection every `intervalMs`; no answer within `timeoutMs` (a vanished peer, a dead NAT entry) closes it. */
const keepAlive = (session: Http2Session, options: GrpcOptions["keepalive"]) => {
  const timer = setInterval(() => {
    if (session.closed || session.destroyed) return
    const deadline = setTimeout(() => session.destroy(), options.timeoutMs)
    deadline.unref()
    const sent = session.ping((error) => {
      clearTimeout(deadline)
      if (error !== null && !session.destroyed) session.destroy()
    })
    if (!sent) clearTimeout(deadline)
  }, options.intervalMs)
  timer.unref()
  session.once("close", () => clearInterval(timer))
}

const listen = (server: Http2Server | Http2SecureServer, options: GrpcOptions) =>
  Effect.callback<{ readonly host: string; readonly port: number }, Error>((resume) => {
    const onError = (error: Error) => resume(Effect.fail(error))
    server.once("error", onError)
    server.listen(options.port, options.host, () => {
      server.off("error", onError)
      const address = server.address()
      resume(Effect.succeed({ host: options.host, port: typeof address === "object" && address !== null ? address.port : options.port }))
    })
  })

/** Stops the listener, sends GOAWAY on every connection, waits for calls in flight, cuts them after the grace. */
const drain = (
  server: Http2Server | Http2SecureServer,
  sessions: Set<Http2Session>,
  draining: AbortController,
  graceMs: number
) =>
  Effect.callback<void>((resume) => {
    draining.abort()
    const cut = setTimeout(() => {
      for (const session of sessions) session.destroy()
    }, graceMs)
    server.close(() => {
      clearTimeout(cut)
      resume(Effect.void)
    })
    for (const session of sessions) session.close()
  })

export const layer = (options: GrpcOptions) =>
  Layer.effect(
    GrpcServer,
    Effect.gen(function*() {
      const messages = yield* makeMessageService
      const health = yield* makeHealthService
      const reflection = makeReflectionServices()
      const draining = new AbortController()
      const routes = (router: ConnectRouter) => {
        router.service(MessageService, messages(draining.signal))
        router.service(Health, health(draining.signal))
        router.service(ServerReflection, reflection.v1)
        router.service(V1alpha.ServerReflection, reflection.v1alpha)
      }
      const handler = connectNodeAdapter({
        routes,
        readMaxBytes: options.maxMessageBytes,
        // Connect JSON and gRPC-Web clients get the same refusal of unknown fields as binary ones (Convert.ts).
        jsonOptions: { ignoreUnknownFields: false },
        contextValues: (request) => createContextValues().set(PeerAddress, request.socket.remoteAddress)
      })
      const tls = options.tls
      const server = tls === undefined
        ? http2.createServer(handler)
        : http2.createSecureServer({ cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile), allowHTTP1: false }, handler)
      const sessions = new Set<Http2Session>()
      let openStreams = 0
      server.on("stream", (stream) => {
        openStreams++
        stream.once("close", () => openStreams--)
      })
      server.on("session", (session: Http2Session) => {
        sessions.add(session)
        session.once("close", () => sessions.delete(session))
        // A session error (a peer that reset the connection) ends that connection only, never the process.
        session.on("error", () => undefined)
        keepAlive(session, options.keepalive)
      })
      const address = yield* Effect.acquireRelease(
        listen(server, options).pipe(
          // A port taken (another gateway, another process) stops the start-up with the key to change.
          Effect.mapError((e) => new Error(`grpc.port: cannot listen on ${options.host}:${options.port} (${e.message})`)),
          Effect.orDie
        ),
        () => drain(server, sessions, draining, options.shutdownGraceMs)
      )
      yield* Effect.logInfo("gRPC listening").pipe(Effect.annotateLogs({ host: address.host, port: address.port, tls: tls !== undefined }))
      return GrpcServer.of({ address, tls: tls !== undefined, openStreams: () => openStreams })
    })
  )
