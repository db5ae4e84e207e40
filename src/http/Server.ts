import { NodeHttpServer } from "@effect/platform-node"
import { ByteSize, Effect, Layer } from "effect"
import type { Cause } from "effect"
import { HttpIncomingMessage, HttpRouter, HttpServerError, HttpServerRequest, HttpServerResponse } from "effect/http"
import { HttpApiBuilder, HttpApiScalar } from "effect/http-api"
import { PrometheusMetrics } from "effect/observability"
import { createServer } from "node:http"
import { LinkMetrics } from "../observability/Metrics.ts"
import { Readiness } from "../observability/Readiness.ts"
import { GatewayApi } from "./Api.ts"
import { HandlersLive, RequestValidationLive } from "./Handlers.ts"
import { ResponseHeaders } from "./ResponseHeaders.ts"
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
}

const MetricsRoute = HttpRouter.add(
  "GET",
  "/metrics",
  Effect.gen(function*() {
    const readiness = yield* Readiness
    yield* readiness.links
    const body = yield* PrometheusMetrics.format()
    return HttpServerResponse.text(body, { contentType: "text/plain; version=0.0.4" })
  })
)

const problem = (status: number, type: string, title: string, detail: string, extra: Record<string, unknown> = {}) =>
  HttpServerResponse.jsonUnsafe(
    { type: `urn:smsgw:problem:${type}`, status, title, detail, ...extra },
    { status, contentType: "application/problem+json" }
  )

const tooLarge = (maxBytes: number) =>
  problem(413, "payload-too-large", "The request body is too large", `the body exceeds ${maxBytes} bytes`, { maxBytes })

/** Body too large (declared length) or not JSON: answered before any byte of the body is read. */
const refuseBody = (request: HttpServerRequest.HttpServerRequest, maxBytes: number) => {
  if (request.method !== "POST" && request.method !== "PUT" && request.method !== "PATCH") return undefined
  if (Number(request.headers["content-length"] ?? 0) > maxBytes) return tooLarge(maxBytes)
  const contentType = request.headers["content-type"]
  if (contentType !== undefined && !/^application\/(problem\+)?json\b/i.test(contentType)) {
    return problem(415, "unsupported-media-type", "Unsupported media type", "send the body as application/json")
  }
  return undefined
}

const isBodyTooLarge = (cause: Cause.Cause<unknown>): boolean =>
  cause.reasons.some((reason) => {
    const error = reason._tag === "Fail" ? reason.error : reason._tag === "Die" ? reason.defect : undefined
    return error instanceof HttpServerError.HttpServerError && error.reason._tag === "RequestParseError" &&
      error.reason.reason === "BodyTooLarge"
  })

const routeOf = (url: string): string => {
  const path = url.split("?", 1)[0] ?? url
  return path.startsWith("/v1/messages/") ? "/v1/messages/:id" : path
}

/**
 * Every request: bodies refused early (size, media type), a header map handlers may add to, request metrics.
 * A router middleware, since only those can change the response that is sent.
 */
const edgeMiddleware = (options: HttpOptions) =>
  Layer.unwrap(Effect.gen(function*() {
    const metrics = yield* LinkMetrics
    const maxBody = ByteSize.bytes(options.maxBodyBytes)
    return HttpRouter.middleware((app) =>
      Effect.gen(function*() {
        const request = yield* HttpServerRequest.HttpServerRequest
        const started = performance.now()
        const route = routeOf(request.url)
        const refusal = refuseBody(request, options.maxBodyBytes)
        const extra = new Map<string, string>()
        const produced = refusal ?? (yield* app.pipe(
          Effect.provideService(HttpIncomingMessage.MaxBodySize, maxBody),
          Effect.provideService(ResponseHeaders, extra),
          Effect.catchCause((cause) =>
            isBodyTooLarge(cause) ? Effect.succeed(tooLarge(options.maxBodyBytes)) : Effect.failCause(cause)
          ),
          Effect.tapCause(() => Effect.sync(() => metrics.http(route, 500, (performance.now() - started) / 1000)))
        ))
        const response = extra.size === 0 ? produced : HttpServerResponse.setHeaders(produced, Object.fromEntries(extra))
        metrics.http(route, response.status, (performance.now() - started) / 1000)
        return response
      }), { global: true })
  }))

export const layer = (options: HttpOptions) => {
  const Routes = Layer.mergeAll(
    HttpApiBuilder.layer(GatewayApi, { openapiPath: "/openapi.json" }).pipe(Layer.provide(HandlersLive)),
    HttpApiScalar.layer(GatewayApi, { path: "/docs" }),
    MetricsRoute,
    AdminRpcServer.layer(),
    edgeMiddleware(options)
  )
  return HttpRouter.serve(Routes, { disableLogger: true }).pipe(
    Layer.provide(RequestValidationLive),
    Layer.provideMerge(NodeHttpServer.layer(() => {
      const server = createServer()
      server.keepAliveTimeout = options.keepAliveSeconds * 1000
      // Node wants the header timeout above the keep-alive one, or a slow next request on a kept connection is cut.
      server.headersTimeout = Math.max(60_000, options.keepAliveSeconds * 1000 + 5_000)
      return server
    }, { port: options.port, host: options.host }))
  )
}
