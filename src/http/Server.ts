import { NodeHttpServer } from "@effect/platform-node"
import { ByteSize, Effect, Layer } from "effect"
import { HttpIncomingMessage, HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { HttpApiBuilder, HttpApiScalar } from "effect/http-api"
import { PrometheusMetrics } from "effect/observability"
import { createServer } from "node:http"
import { LinkMetrics } from "../observability/Metrics.ts"
import { Readiness } from "../observability/Readiness.ts"
import { GatewayApi } from "./Api.ts"
import { HandlersLive } from "./Handlers.ts"

export interface HttpOptions {
  readonly port: number
  readonly host: string
  readonly maxBodyBytes: number
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

const routeOf = (url: string): string => {
  const path = url.split("?", 1)[0] ?? url
  return path.startsWith("/v1/messages/") ? "/v1/messages/:id" : path
}

export const layer = (options: HttpOptions) => {
  const maxBody = ByteSize.bytes(options.maxBodyBytes)
  const Routes = Layer.mergeAll(
    HttpApiBuilder.layer(GatewayApi, { openapiPath: "/openapi.json" }).pipe(Layer.provide(HandlersLive)),
    HttpApiScalar.layer(GatewayApi, { path: "/docs" }),
    MetricsRoute
  )
  return Layer.unwrap(Effect.gen(function*() {
    const metrics = yield* LinkMetrics
    return HttpRouter.serve(Routes, {
      disableLogger: true,
      middleware: (app) =>
        Effect.gen(function*() {
          const request = yield* HttpServerRequest.HttpServerRequest
          const started = performance.now()
          const response = yield* app.pipe(
            Effect.provideService(HttpIncomingMessage.MaxBodySize, maxBody),
            Effect.catchTag("HttpServerError", (error) =>
              error.reason._tag === "RequestParseError" && error.reason.reason === "BodyTooLarge"
                ? Effect.succeed(HttpServerResponse.jsonUnsafe(
                  {
                    type: "urn:smsgw:problem:payload-too-large",
                    status: 413,
                    title: "The request body is too large",
                    detail: `the body exceeds ${options.maxBodyBytes} bytes`,
                    maxBytes: options.maxBodyBytes
                  },
                  { status: 413, contentType: "application/problem+json" }
                ))
                : Effect.fail(error))
          )
          metrics.http(routeOf(request.url), response.status, (performance.now() - started) / 1000)
          return response
        })
    })
  })).pipe(Layer.provide(NodeHttpServer.layer(createServer, { port: options.port, host: options.host })))
}
