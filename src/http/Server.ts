/**
 * The HTTP edge: the API's routes, the admin RPC and /metrics on one listener (or /metrics on its own), and the
 * middleware every request passes — body refusals (size, media type), unknown routes as problems, request metrics
 * labelled by route template (a bounded label set whatever paths clients send) and the status actually sent.
 * Bodies are small JSON within `maxBodyBytes` and `requestTimeoutSeconds`, except on the endpoints annotated with
 * `LargeBody` (src/http/BodyLimits.ts): a larger JSON limit, or an upload with its own limit and timeout.
 */
import { NodeHttpServer } from "@effect/platform-node"
import { ByteSize, Context, Effect, Layer, Scope } from "effect"
import type { Cause } from "effect"
import type {
  Cookies} from "effect/http";
import {
  FindMyWay,
  HttpBody,
  HttpIncomingMessage,
  HttpMiddleware,
  HttpRouter,
  HttpServer,
  HttpServerError,
  HttpServerRequest,
  HttpServerResponse,
  UrlParams
} from "effect/http"
import { HttpApi, HttpApiBuilder, HttpApiScalar } from "effect/http-api"
import { PrometheusMetrics } from "effect/observability"
import { createServer } from "node:http"
import type { IncomingMessage, ServerResponse } from "node:http"
import { HttpMetrics } from "../observability/Metrics.ts"
import { RuntimeMetrics } from "../observability/RuntimeMetrics.ts"
import { recordedSpan } from "../observability/Tracing.ts"
import { LargeBody } from "./BodyLimits.ts"
import type { LargeBodyKind } from "./BodyLimits.ts"
import { Readiness } from "../pipeline/Readiness.ts"
import { GatewayApi } from "./Api.ts"
import { HandlersLive, RequestValidationLive } from "./Handlers.ts"
import { ResponseCookies, ResponseHeaders } from "./ResponseHeaders.ts"
import { defaultWebRoot, isWebPath, webApp } from "./WebApp.ts"
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
  /** The body limit of upload routes (streamed to their handler, never buffered). */
  readonly maxUploadBytes: number
  /** Time to receive a whole upload. */
  readonly uploadTimeoutSeconds: number
  /** The Message Center's built files (src/http/WebApp.ts); its default is web/dist of this installation. */
  readonly webRoot?: string | undefined
  /** A listener of its own for /metrics, which the public port then no longer serves. */
  readonly metrics?: { readonly host: string; readonly port: number } | undefined
  readonly adminRpc: AdminRpcServer.AdminRpcOptions
}

const metricsPath = "/metrics"

const metricsResponse = Effect.gen(function*() {
  const readiness = yield* Readiness
  yield* readiness.links
  yield* (yield* RuntimeMetrics).collect
  const body = withHelp(yield* PrometheusMetrics.format())
  return HttpServerResponse.text(body, { contentType: "text/plain; version=0.0.4" })
})

/**
 * HELP lines for the metrics Effect's cluster runtime registers without a description (`promtool check metrics` wants
 * one for every metric, and an operator reading /metrics too).
 */
const undescribed: Record<string, string> = {
  effect_cluster_entities: "Entities (links, pools, recipient buckets, campaigns) alive on this runner, by entity type",
  effect_cluster_entity_mailbox_size: "Messages waiting in an entity's mailbox",
  effect_cluster_entity_mailbox_size_max: "The largest entity mailbox on this runner",
  effect_cluster_singletons: "Cluster singletons running on this runner",
  effect_cluster_runners: "Runners registered in the cluster",
  effect_cluster_runners_healthy: "Runners of the cluster considered healthy",
  effect_cluster_shards: "Shards this runner holds",
  effect_cluster_shards_releasing: "Shards this runner is releasing"
}

const withHelp = (body: string): string =>
  body.replace(/^# TYPE ([a-zA-Z0-9_:]+) /gm, (line, name: string) => {
    const help = undescribed[name]
    return help === undefined || body.includes(`# HELP ${name} `) ? line : `# HELP ${name} ${help}\n${line}`
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

const json = /^application\/(problem\+)?json\b/i

/** The body limit of a route: `maxBodyBytes`, unless the endpoint declares a larger body. */
const bodyLimit = (options: HttpOptions, body: LargeBodyKind | undefined): number =>
  body === undefined
    ? options.maxBodyBytes
    : body._tag === "Upload"
    ? options.maxUploadBytes
    : Math.max(options.maxBodyBytes, body.bytes)

/**
 * Body too large (declared length) or of the wrong media type: answered before any byte of the body is read. A body
 * with no Content-Type is refused too (guessing hides a client's mistake); a POST without a body needs none.
 */
const refuseBody = (request: HttpServerRequest.HttpServerRequest, maxBytes: number, body: LargeBodyKind | undefined) => {
  if (request.method !== "POST" && request.method !== "PUT" && request.method !== "PATCH") return undefined
  const declared = Number(request.headers["content-length"] ?? 0)
  if (declared > maxBytes) return tooLarge(maxBytes)
  const hasBody = declared > 0 || request.headers["transfer-encoding"] !== undefined
  const contentType = request.headers["content-type"]
  const accepted = body?._tag === "Upload"
    ? contentType !== undefined && body.contentTypes.includes(contentType.split(";", 1)[0]?.trim().toLowerCase() ?? "")
    : contentType !== undefined && json.test(contentType)
  if (contentType === undefined ? hasBody : !accepted) {
    const wanted = body?._tag === "Upload" ? body.contentTypes.join(" or ") : "application/json"
    return problem(415, "unsupported-media-type", "Unsupported media type", `send the body as ${wanted}`)
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

export interface RouteInfo {
  readonly route: string
  /** The endpoint's own kind of body, when it declares one (`LargeBody`). */
  readonly body: LargeBodyKind | undefined
}

/**
 * The route template of a request (`/v1/apps/:appId`), from the API's own endpoint list plus the routes served
 * beside it: metric labels never carry ids or whatever path a client sent. With it, the body the endpoint declares.
 */
export const routeTemplates = (extra: ReadonlyArray<readonly [method: string, path: `/${string}`]>) => {
  const router = FindMyWay.make<RouteInfo>()
  HttpApi.reflect(GatewayApi, {
    onGroup: () => undefined,
    onEndpoint: ({ endpoint }) =>
      router.on(endpoint.method, endpoint.path as `/${string}`, {
        route: endpoint.path,
        body: Context.getOrUndefined(endpoint.annotations, LargeBody)
      })
  })
  for (const [method, path] of extra) router.on(method, path, { route: path, body: undefined })
  const unmatched: RouteInfo = { route: unmatchedRoute, body: undefined }
  return (method: string, url: string): RouteInfo =>
    (router.find(method, url) ?? (method === "HEAD" ? router.find("GET", url) : undefined))?.handler ?? unmatched
}

/**
 * A traced request's answer names its trace: a `traceresponse` header (W3C Trace Context level 2) on every answer and
 * `traceId` in a problem+json body, so what a client reports leads to the trace. The server span gets the route.
 */
const tracedResponse = (response: HttpServerResponse.HttpServerResponse, route: string) =>
  Effect.map(recordedSpan, (span) => {
    if (span === undefined) return response
    if (span._tag === "Span") span.attribute("http.route", route)
    const traced = HttpServerResponse.setHeader(response, "traceresponse", `00-${span.traceId}-${span.spanId}-01`)
    const body = traced.body
    if (response.status < 400 || body._tag !== "Uint8Array" || !body.contentType.startsWith("application/problem+json")) {
      return traced
    }
    try {
      const problem: unknown = JSON.parse(body.text ?? new TextDecoder().decode(body.body))
      if (problem === null || typeof problem !== "object" || Array.isArray(problem)) return traced
      return HttpServerResponse.setBody(traced, HttpBody.text(JSON.stringify({ ...problem, traceId: span.traceId }), body.contentType))
    } catch {
      return traced
    }
  })

/**
 * Every request: bodies refused early (size, media type), a header map handlers may add to, unknown routes answered
 * as problems, request metrics with the status actually sent. A router middleware, since only those can change the
 * response that is sent.
 */
const edgeMiddleware = (options: HttpOptions, routeOf: (method: string, url: string) => RouteInfo) =>
  Layer.unwrap(Effect.gen(function*() {
    const metrics = yield* HttpMetrics
    return HttpRouter.middleware((app) =>
      Effect.gen(function*() {
        const request = yield* HttpServerRequest.HttpServerRequest
        const started = performance.now()
        const { route, body } = routeOf(request.method, request.url)
        const record = (status: number) => metrics.request(route, status, (performance.now() - started) / 1000)
        const maxBytes = bodyLimit(options, body)
        const refusal = refuseBody(request, maxBytes, body)
        const extra = new Map<string, string>()
        const cookies = new Map<string, readonly [string, Cookies.Cookie["options"]]>()
        const produced = refusal ?? (yield* app.pipe(
          Effect.provideService(HttpIncomingMessage.MaxBodySize, ByteSize.bytes(maxBytes)),
          Effect.provideService(ResponseHeaders, extra),
          Effect.provideService(ResponseCookies, cookies),
          Effect.catchCause((cause) =>
            isBodyTooLarge(cause)
              ? Effect.succeed(tooLarge(maxBytes))
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
        const traced = yield* tracedResponse(produced, route)
        const withHeaders = extra.size === 0 ? traced : HttpServerResponse.setHeaders(traced, Object.fromEntries(extra))
        const response = cookies.size === 0
          ? withHeaders
          : HttpServerResponse.setCookiesUnsafe(withHeaders, [...cookies].map(([name, [value, options]]) => [name, value, options] as const))
        record(response.status)
        return response
      }), { global: true })
  }))

const requestTimeoutResponse = "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"

/**
 * Node has one request timeout per server; uploads need a longer one. So Node's is the longer of the two, and every
 * other request whose body is still arriving after `requestTimeoutSeconds` is cut here as Node would cut it (408 if
 * nothing was answered yet, and the connection closed).
 */
const shortRequestTimeout = (timeoutMs: number, isUpload: (method: string, url: string) => boolean) =>
(request: IncomingMessage, response: ServerResponse) => {
  if (request.complete || isUpload(request.method ?? "", request.url ?? "")) return
  const timer = setTimeout(() => {
    if (request.complete) return
    const socket = request.socket
    if (socket.writable && socket.bytesWritten === 0 && !response.headersSent) socket.end(requestTimeoutResponse)
    socket.destroySoon()
  }, timeoutMs)
  timer.unref()
  const clear = () => clearTimeout(timer)
  request.once("end", clear)
  response.once("close", clear)
}

const nodeServer = (
  options: HttpOptions,
  address: { readonly port: number; readonly host: string },
  isUpload: (method: string, url: string) => boolean = () => false
) =>
  NodeHttpServer.layer(() => {
    const requestTimeoutSeconds = Math.max(options.requestTimeoutSeconds, options.uploadTimeoutSeconds)
    const server = createServer({
      // Node refuses a header timeout above the request timeout.
      headersTimeout: Math.min(options.headersTimeoutSeconds, options.requestTimeoutSeconds) * 1000,
      requestTimeout: requestTimeoutSeconds * 1000,
      // How often Node looks for connections past those timeouts (30 s by default, which would stretch them).
      connectionsCheckingInterval: Math.min(1_000, options.headersTimeoutSeconds * 500)
    })
    if (requestTimeoutSeconds > options.requestTimeoutSeconds) {
      server.on("request", shortRequestTimeout(options.requestTimeoutSeconds * 1000, isUpload))
    }
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

/**
 * Server spans named by method and route template (`POST /v1/messages`), never by the path a client sent; no span
 * for /metrics and /healthz, and secrets never in a span's URL: query parameters that carry them are redacted.
 */
const tracingNames = (routeOf: (method: string, url: string) => RouteInfo) =>
  Layer.mergeAll(
    Layer.succeed(HttpMiddleware.SpanNameGenerator, (request) =>
      `${request.method} ${routeOf(request.method, request.url.split("?", 1)[0] ?? request.url).route}`),
    Layer.succeed(HttpMiddleware.TracerDisabledWhen, (request) => {
      const path = request.url.split("?", 1)[0]
      return path === metricsPath || path === "/healthz" || path === "/readyz"
    }),
    Layer.succeed(UrlParams.CurrentRedactedNames, redactedQueryNames)
  )

/** Query parameters whose values never reach a span (links mailed to people carry tokens). */
const redactedQueryNames: ReadonlyArray<string | RegExp> = [/token/i, /secret/i, /password/i, /key/i, /code/i, /signature/i]

/** The label of the Message Center's pages and files: one series, whatever screen a path names. */
export const webRoute = "web"

/**
 * The API reference at /docs. Scalar's page carries its 3 MB bundle (a module of ~13 MB of heap once loaded): it is
 * imported on the first request, not at start, so a node whose operators never open it does not carry it.
 */
const apiReference = HttpRouter.use((router) =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const reference = yield* Effect.cached(
      HttpRouter.toHttpEffect(HttpApiScalar.layer(GatewayApi, { path: "/docs" })).pipe(Scope.provide(scope))
    )
    yield* router.add("GET", "/docs", Effect.flatten(reference))
  })
)

export const layer = (options: HttpOptions) => {
  const separateMetrics = options.metrics !== undefined
  const apiRouteOf = routeTemplates([
    ["GET", "/openapi.json"],
    ["GET", "/docs"],
    ["POST", adminRpcPath],
    ...(separateMetrics ? [] : [["GET", metricsPath] as const])
  ])
  const web: RouteInfo = { route: webRoute, body: undefined }
  const routeOf = (method: string, url: string): RouteInfo => {
    const info = apiRouteOf(method, url)
    return info.route === unmatchedRoute && (method === "GET" || method === "HEAD") && isWebPath(url) ? web : info
  }
  const page = webApp(options.webRoot ?? defaultWebRoot)
  const Routes = Layer.mergeAll(
    HttpApiBuilder.layer(GatewayApi, { openapiPath: "/openapi.json" }).pipe(Layer.provide(HandlersLive)),
    apiReference,
    separateMetrics ? Layer.empty : HttpRouter.add("GET", metricsPath, metricsResponse),
    AdminRpcServer.layer(options.adminRpc),
    HttpRouter.add("GET", "/*", Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
      Effect.map(page(request), (response) => response ?? notFound(request)))),
    edgeMiddleware(options, routeOf)
  )
  const Public = HttpRouter.serve(Routes, { disableLogger: true }).pipe(
    Layer.provide(RequestValidationLive),
    Layer.provide(tracingNames(routeOf)),
    Layer.provideMerge(nodeServer(options, { port: options.port, host: options.host }, (method, url) =>
      routeOf(method, url.split("?", 1)[0] ?? url).body?._tag === "Upload"))
  )
  return options.metrics === undefined ? Public : Layer.merge(Public, metricsListener(options, options.metrics))
}
