/**
 * The HTTP edge: the API's routes, the admin RPC and /metrics on one listener (or /metrics on its own), and the
 * middleware every request passes — body refusals (size, media type), unknown routes as problems, request metrics
 * labelled by route template (a bounded label set whatever paths clients send) and the status actually sent.
 */
import { NodeHttpServer } from "@effect/platform-node"
import { ByteSize, Effect, Layer } from "effect"
import type { Cause } from "effect"
import {
  FindMyWay,
  HttpIncomingMessage,
  HttpRouter,
  HttpServer,
  HttpServerError,
  HttpServerRequest,
  HttpServerResponse
} from "effect/http"
import { HttpApi, HttpApiBuilder, HttpApiScalar } from "effect/http-api"
import { PrometheusMetrics } from "effect/observability"
import { createServer } from "node:http"
import { HttpMetrics } from "../observability/Metrics.ts"
import { Readiness } from "../pipeline/Readiness.ts"
import { GatewayApi } from "./Api.ts"
import { HandlersLive, RequestValidationLive } from "./Handlers.ts"
import { ResponseHeaders } from "./ResponseHeaders.ts"
import { adminRpcPath } from "../rpc/AdminRpc.ts"
import * as AdminRpcServer from "../rpc/AdminRpcServer.ts"

export interface HttpOptions {
  readonly port: number
  readonly host: string
  readonly maxBodyBytes: number
  /**
   * How long an idle keep-alive connection stays open. Above the idle timeout of the load balancers in front (60 s for
   * most), so the balancer, not this server, closes idle connections: otherwise a request it sends on a connection
   * this server is closing at that moment fails (a 502 at the client). Node's own default is 5 s.
   */
  readonly keepAliveSeconds: number
  /** Time to receive a request's headers: a client trickling them is cut (408) instead of holding a connection. */
  readonly headersTimeoutSeconds: number
  /** Time to receive a whole request, body included. */
  readonly requestTimeoutSeconds: number
  /** A listener of its own for /metrics, which the public port then no longer serves. */
  readonly metrics?: { readonly host: string; readonly port: number } | undefined
  readonly adminRpc: AdminRpcServer.AdminRpcOptions
}

const metricsPath = "/metrics"

const metricsResponse = Effect.gen(function*() {
  const readiness = yield* Readiness
  yield* readiness.links
  const body = yield* PrometheusMetrics.format()
  return HttpServerResponse.text(body, { contentType: "text/plain; version=0.0.4" })
})

const problem = (status: number, type: string, title: string, detail: string, extra: Record<string, unknown> = {}) =>
  HttpServerResponse.jsonUnsafe(
    { type: `urn:smsgw:problem:${type}`, status, title, detail, ...extra },
    { status, contentType: "application/problem+json" }
  )

const notFound = (request: HttpServerRequest.HttpServerRequest) =>
  problem(404, "not-found", "Not found", `no route for ${request.method} ${request.url.split("?", 1)[0]}`)

const tooLarge = (maxBytes: number) =>
  problem(413, "payload-too-large", "The request body is too large", `the body exceeds ${maxBytes} bytes`, { maxBytes })

/**
 * Body too large (declared length) or not JSON: answered before any byte of the body is read. A body with no
 * Content-Type is refused too (guessing JSON hides a client's mistake); a POST without a body needs none.
 */
const refuseBody = (request: HttpServerRequest.HttpServerRequest, maxBytes: number) => {
  if (request.method !== "POST" && request.method !== "PUT" && request.method !== "PATCH") return undefined
  const declared = Number(request.headers["content-length"] ?? 0)
  if (declared > maxBytes) return tooLarge(maxBytes)
  const hasBody = declared > 0 || request.headers["transfer-encoding"] !== undefined
  const contentType = request.headers["content-type"]
  if (contentType === undefined ? hasBody : !/^application\/(problem\+)?json\b/i.test(contentType)) {
    return problem(415, "unsupported-media-type", "Unsupported media type", "send the body as application/json")
  }
  return undefined
}

const serverErrorOf = (cause: Cause.Cause<unknown>) =>
  cause.reasons.flatMap((reason) => {
    const error = reason._tag === "Fail" ? reason.error : reason._tag === "Die" ? reason.defect : undefined
    return error instanceof HttpServerError.HttpServerError ? [error.reason] : []
  })

const isBodyTooLarge = (cause: Cause.Cause<unknown>): boolean =>
  serverErrorOf(cause).some((reason) => reason._tag === "RequestParseError" && reason.reason === "BodyTooLarge")

const isRouteNotFound = (cause: Cause.Cause<unknown>): boolean =>
  serverErrorOf(cause).some((reason) => reason._tag === "RouteNotFound")

/** The label for a path nothing serves: one series for all of them, however many paths a scanner tries. */
export const unmatchedRoute = "unmatched"

/**
 * The route template of a request (`/v1/apps/:appId`), from the API's own endpoint list plus the routes served
 * beside it: metric labels never carry ids or whatever path a client sent.
 */
export const routeTemplates = (extra: ReadonlyArray<readonly [method: string, path: `/${string}`]>) => {
  const router = FindMyWay.make<string>()
  HttpApi.reflect(GatewayApi, {
    onGroup: () => undefined,
    onEndpoint: ({ endpoint }) => router.on(endpoint.method, endpoint.path as `/${string}`, endpoint.path)
  })
  for (const [method, path] of extra) router.on(method, path, path)
  return (method: string, url: string): string =>
    (router.find(method, url) ?? (method === "HEAD" ? router.find("GET", url) : undefined))?.handler ?? unmatchedRoute
}

/**
 * Every request: bodies refused early (size, media type), a header map handlers may add to, unknown routes answered
 * as problems, request metrics with the status actually sent. A router middleware, since only those can change the
 * response that is sent.
 */
const edgeMiddleware = (options: HttpOptions, routeOf: (method: string, url: string) => string) =>
  Layer.unwrap(Effect.gen(function*() {
    const metrics = yield* HttpMetrics
    const maxBody = ByteSize.bytes(options.maxBodyBytes)
    return HttpRouter.middleware((app) =>
      Effect.gen(function*() {
        const request = yield* HttpServerRequest.HttpServerRequest
        const started = performance.now()
        const route = routeOf(request.method, request.url)
        const record = (status: number) => metrics.request(route, status, (performance.now() - started) / 1000)
        const refusal = refuseBody(request, options.maxBodyBytes)
        const extra = new Map<string, string>()
        const produced = refusal ?? (yield* app.pipe(
          Effect.provideService(HttpIncomingMessage.MaxBodySize, maxBody),
          Effect.provideService(ResponseHeaders, extra),
          Effect.catchCause((cause) =>
            isBodyTooLarge(cause)
              ? Effect.succeed(tooLarge(options.maxBodyBytes))
              : isRouteNotFound(cause)
              ? Effect.succeed(notFound(request))
              : HttpServerError.causeResponse(cause).pipe(
                Effect.flatMap(([response]) => {
                  record(response.status)
                  return response.status >= 500
                    ? Effect.logError("request failed", cause).pipe(Effect.annotateLogs({ route, status: response.status }))
                    : Effect.void
                }),
                Effect.andThen(Effect.failCause(cause))
              )
          )
        ))
        const response = extra.size === 0 ? produced : HttpServerResponse.setHeaders(produced, Object.fromEntries(extra))
        record(response.status)
        return response
      }), { global: true })
  }))

const nodeServer = (options: HttpOptions, address: { readonly port: number; readonly host: string }) =>
  NodeHttpServer.layer(() => {
    const server = createServer({
      // Node refuses a header timeout above the request timeout.
      headersTimeout: Math.min(options.headersTimeoutSeconds, options.requestTimeoutSeconds) * 1000,
      requestTimeout: options.requestTimeoutSeconds * 1000,
      // How often Node looks for connections past those timeouts (30 s by default, which would stretch them).
      connectionsCheckingInterval: Math.min(1_000, options.headersTimeoutSeconds * 500)
    })
    // Idle time between requests of a kept connection counts toward neither timeout (Node starts them at a request's first byte).
    server.keepAliveTimeout = options.keepAliveSeconds * 1000
    return server
  }, address)

/** /metrics alone on its own listener, for deployments that keep it off the public port. */
const metricsListener = (options: HttpOptions, address: { readonly host: string; readonly port: number }) =>
  HttpServer.serve(Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const path = request.url.split("?", 1)[0]
    return request.method === "GET" && path === metricsPath ? yield* metricsResponse : notFound(request)
  })).pipe(Layer.provide(nodeServer(options, address)))

export const layer = (options: HttpOptions) => {
  const separateMetrics = options.metrics !== undefined
  const routeOf = routeTemplates([
    ["GET", "/openapi.json"],
    ["GET", "/docs"],
    ["POST", adminRpcPath],
    ...(separateMetrics ? [] : [["GET", metricsPath] as const])
  ])
  const Routes = Layer.mergeAll(
    HttpApiBuilder.layer(GatewayApi, { openapiPath: "/openapi.json" }).pipe(Layer.provide(HandlersLive)),
    HttpApiScalar.layer(GatewayApi, { path: "/docs" }),
    separateMetrics ? Layer.empty : HttpRouter.add("GET", metricsPath, metricsResponse),
    AdminRpcServer.layer(options.adminRpc),
    edgeMiddleware(options, routeOf)
  )
  const Public = HttpRouter.serve(Routes, { disableLogger: true }).pipe(
    Layer.provide(RequestValidationLive),
    Layer.provideMerge(nodeServer(options, { port: options.port, host: options.host }))
  )
  return options.metrics === undefined ? Public : Layer.merge(Public, metricsListener(options, options.metrics))
}
