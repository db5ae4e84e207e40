/**
 * The servers of `npm run bench:floor` (bench/http-floor.ts), one per process: what an HTTP request costs on this
 * machine before the gateway does anything. `node`: Node's own HTTP server, answering from its request callback.
 * `effect`: Effect's HTTP server and router (the stack the gateway's API runs on) with two routes and no middleware.
 * Both answer `GET /healthz` with a small JSON body and `POST /v1/messages` by parsing the JSON body and answering
 * 202 with a small JSON body, like the gateway's two cheapest answers. Reports its port, then its CPU when asked.
 */
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { HttpRouter, HttpServer, HttpServerRequest, HttpServerResponse } from "effect/http"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"

const accepted = (to: unknown) => ({ id: "0192f0a4-7d1c-7cc1-8e3c-5b8f0c1a2b3c", status: "accepted", to })

const report = (server: ReturnType<typeof createServer>) => {
  process.on("message", (message) => {
    if (message === "cpu") process.send?.({ cpu: process.cpuUsage() })
  })
  process.send?.({ port: (server.address() as AddressInfo).port })
}

const kind = process.argv[2]
if (kind === "node") {
  const server = createServer((request, response) => {
    const answer = (status: number, body: unknown) => {
      const text = JSON.stringify(body)
      response.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) })
      response.end(text)
    }
    if (request.method === "POST") {
      const chunks: Array<Buffer> = []
      request.on("data", (chunk: Buffer) => chunks.push(chunk))
      request.on("end", () => answer(202, accepted((JSON.parse(Buffer.concat(chunks).toString()) as { to: unknown }).to)))
    } else {
      answer(200, { status: "ok" })
    }
  })
  server.listen(0, "127.0.0.1", () => report(server))
} else if (kind === "effect") {
  const server = createServer()
  const routes = Layer.mergeAll(
    HttpRouter.add("GET", "/healthz", Effect.succeed(HttpServerResponse.jsonUnsafe({ status: "ok" }))),
    HttpRouter.add(
      "POST",
      "/v1/messages",
      Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => request.json).pipe(
        Effect.map((body) => HttpServerResponse.jsonUnsafe(accepted((body as { to: unknown }).to), { status: 202 }))
      )
    )
  )
  // Reported once the server listens (the layer below provides HttpServer only then).
  const listening = Layer.effectDiscard(Effect.gen(function*() {
    yield* HttpServer.HttpServer
    report(server)
  }))
  NodeRuntime.runMain(Layer.launch(
    Layer.mergeAll(HttpRouter.serve(routes, { disableLogger: true, disableListenLog: true }), listening).pipe(
      Layer.provide(NodeHttpServer.layer(() => server, { port: 0, host: "127.0.0.1" }))
    )
  ))
} else {
  throw new Error(`floor-server: node or effect, not ${kind}`)
}
