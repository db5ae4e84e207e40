/**
 * The HTTP edge as a hostile or careless client meets it: bounded metric labels whatever paths are sent, statuses
 * recorded as sent, unknown routes and unknown body keys answered as problems, bodies without a media type refused,
 * connections trickling headers cut, and /metrics on a listener of its own when configured.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import net from "node:net"
import { get, post, send, signUp, startGateway, superadmin } from "../fixtures/Gateway.ts"
import { expectProblem, fieldErrors, fieldsOf } from "../fixtures/Problems.ts"
import { freePort } from "../fixtures/Processes.ts"

const operator = { email: "ops@example.com", password: "operator password 1" }

/** A raw request: headers exactly as given (fetch always adds a content type to a string body). */
const raw = (port: number, request: string) =>
  Effect.promise(() =>
    new Promise<string>((resolve, reject) => {
      const socket = net.connect(port, "127.0.0.1")
      let answer = ""
      socket.setEncoding("utf8")
      socket.on("data", (chunk: string) => (answer += chunk))
      socket.on("end", () => resolve(answer))
      socket.on("error", reject)
      socket.write(request)
    })
  )

/** The HTTP series (other metrics appear as the gateway works: links, recovery). */
const httpSeries = (metrics: string) => metrics.split("\n").filter((line) => line.startsWith("smsgw_http_")).map((line) => line.split(" ")[0])

describe("HTTP edge", () => {
  it.live("metric labels stay bounded: unknown paths share one series, ids never appear, statuses are the ones sent", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway()
      const tenant = yield* signUp(gw.baseUrl)
      yield* get(`${gw.baseUrl}/v1/apps/${tenant.appId}`, tenant.userAuth)
      yield* get(`${gw.baseUrl}/v1/apps/${tenant.appId}/keys`, tenant.userAuth)
      const scan = (from: number, to: number) =>
        Effect.gen(function*() {
          for (let i = from; i < to; i++) {
            const r = yield* get(`${gw.baseUrl}/v1/scan-${i}/${crypto.randomUUID()}`)
            expect(r.status).toBe(404)
          }
        })
      yield* scan(0, 5)
      yield* get(`${gw.baseUrl}/metrics`)
      const before = (yield* get(`${gw.baseUrl}/metrics`)).text
      yield* scan(5, 305)
      const after = (yield* get(`${gw.baseUrl}/metrics`)).text
      // 300 more distinct paths add not one series.
      expect(httpSeries(after)).toEqual(httpSeries(before))
      expect(after).not.toContain("scan-")
      expect(after).not.toContain(tenant.appId)
      expect(after).toContain(`route="/v1/apps/:appId/keys"`)
      expect(after).toMatch(/smsgw_http_requests_total\{[^}]*route="unmatched"[^}]*status="404"[^}]*\} 30\d/)
      expect(after).not.toMatch(/route="unmatched"[^}]*status="500"/)
    }).pipe(Effect.scoped), 30_000)

  it.live("an unknown route answers a problem, not an empty 404", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway()
      const r = yield* get(`${gw.baseUrl}/v1/nothing-here?x=1`)
      expectProblem(r, 404, "not-found")
      expect(String(r.json.detail)).toContain("GET /v1/nothing-here")
      expectProblem(yield* send("DELETE", `${gw.baseUrl}/v1/messages`, {}), 404, "not-found")
    }).pipe(Effect.scoped), 30_000)

  it.live("a body without a Content-Type is refused with 415; a POST with no body needs none", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway()
      const tenant = yield* signUp(gw.baseUrl)
      const port = Number(new URL(gw.baseUrl).port)
      const body = JSON.stringify({ to: "+4915112345678", from: "ACME", text: "hi" })
      const refused = yield* raw(
        port,
        `POST /v1/messages HTTP/1.1\r\nHost: gw\r\nAuthorization: ${tenant.auth.authorization}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`
      )
      expect(refused.split("\r\n")[0]).toBe("HTTP/1.1 415 Unsupported Media Type")
      expect(refused).toContain("urn:smsgw:problem:unsupported-media-type")
      const noBody = yield* raw(
        port,
        `POST /v1/apps/${tenant.appId}/keys HTTP/1.1\r\nHost: gw\r\nAuthorization: ${tenant.userAuth.authorization}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`
      )
      expect(noBody.split("\r\n")[0]).toBe("HTTP/1.1 201 Created")
    }).pipe(Effect.scoped), 30_000)

  it.live("a client trickling its headers is cut at the header timeout, not held for minutes", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({ config: { http: { headersTimeoutSeconds: 1 } } })
      const port = Number(new URL(gw.baseUrl).port)
      const started = Date.now()
      const answer = yield* Effect.promise(() =>
        new Promise<string>((resolve) => {
          const socket = net.connect(port, "127.0.0.1")
          let text = ""
          socket.setEncoding("utf8")
          socket.on("data", (chunk: string) => (text += chunk))
          socket.on("close", () => {
            clearInterval(drip)
            resolve(text)
          })
          socket.write("GET /healthz HTTP/1.1\r\nHost: gw\r\n")
          const drip = setInterval(() => socket.write("X-Slow: 1\r\n"), 200)
        })
      )
      expect(answer.split("\r\n")[0]).toBe("HTTP/1.1 408 Request Timeout")
      expect(Date.now() - started).toBeLessThan(5_000)
    }).pipe(Effect.scoped), 30_000)

  it.live("unknown keys are refused and named, on every kind of endpoint", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({ config: { auth: { superadmin: operator } } })
      const tenant = yield* signUp(gw.baseUrl)
      const misspelt = yield* post(`${gw.baseUrl}/v1/apps`, { name: "open?", allowlist: ["10.0.0.0/8"] }, tenant.userAuth)
      expectProblem(misspelt, 400, "validation")
      expect(fieldErrors(misspelt)).toEqual([{ field: "allowlist", message: "unknown field: this request has no such key" }])
      const apps = yield* get(`${gw.baseUrl}/v1/apps`, tenant.userAuth)
      expect((apps.json.apps as ReadonlyArray<{ name: string }> | undefined ?? []).map((a) => a.name)).not.toContain("open?")

      const patch = yield* send("PATCH", `${gw.baseUrl}/v1/apps/${tenant.appId}`, { enabled: false }, tenant.userAuth)
      expectProblem(patch, 400, "validation")
      expect(fieldsOf(patch)).toEqual(["enabled"])
      const still = yield* get(`${gw.baseUrl}/v1/apps/${tenant.appId}`, tenant.userAuth)
      expect(still.json.active).toBe(true)

      const submit = yield* post(`${gw.baseUrl}/v1/messages`, { to: "+4915112345678", from: "ACME", text: "hi", sender: "X" }, tenant.auth)
      expectProblem(submit, 400, "validation")
      expect(fieldsOf(submit)).toEqual(["sender"])

      const admin = yield* superadmin(gw.baseUrl)
      const routes = yield* send("PUT", `${gw.baseUrl}/v1/admin/routes`, {
        routes: [{ id: "gb", match: { country: ["GB"] }, target: { link: "sim" } }]
      }, admin)
      expectProblem(routes, 400, "validation")
      expect(fieldsOf(routes)).toContain("routes[0].match.country")
      const link = yield* post(`${gw.baseUrl}/v1/admin/links`, {
        id: "tls-typo",
        host: "127.0.0.1",
        port: 2776,
        systemId: "x",
        password: "y",
        TLS: true
      }, admin)
      expectProblem(link, 400, "validation")
      expect(fieldsOf(link)).toEqual(["TLS"])
    }).pipe(Effect.scoped), 30_000)

  it.live("with a metrics listener of its own, /metrics leaves the public port", () =>
    Effect.gen(function*() {
      const metricsPort = yield* freePort
      const gw = yield* startGateway({ config: { metrics: { host: "127.0.0.1", port: metricsPort } } })
      yield* get(`${gw.baseUrl}/healthz`)
      expectProblem(yield* get(`${gw.baseUrl}/metrics`), 404, "not-found")
      const metrics = yield* get(`http://127.0.0.1:${metricsPort}/metrics`)
      expect(metrics.status).toBe(200)
      expect(metrics.text).toContain(`smsgw_http_requests_total{route="/healthz",status="200"}`)
      expect((yield* get(`http://127.0.0.1:${metricsPort}/v1/apps`)).status).toBe(404)
    }).pipe(Effect.scoped), 30_000)
})
