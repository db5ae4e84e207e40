/**
 * The Message Center's files on the API's port (src/http/WebApp.ts): the page for every screen path with a
 * Content-Security-Policy without inline scripts, hashed assets cached forever and sent precompressed, a missing file
 * or an unknown API path a 404 problem (never the page), and a clear 503 when the application was not built.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { brotliCompressSync, brotliDecompressSync } from "node:zlib"
import { tempDir } from "../fixtures/Databases.ts"
import { startGateway } from "../fixtures/Gateway.ts"
import { expectProblem } from "../fixtures/Problems.ts"

const page = "<!doctype html><html><head><script type=\"module\" src=\"/assets/app-3f2a.js\"></script></head><body></body></html>"
const script = `console.log(${JSON.stringify("x".repeat(2000))})`

const fetchRaw = (url: string, headers: Record<string, string> = {}) =>
  Effect.promise(async () => {
    const response = await fetch(url, { headers })
    const body = new Uint8Array(await response.arrayBuffer())
    const text = Buffer.from(body).toString("utf8")
    let json: Record<string, unknown> = {}
    try {
      json = JSON.parse(text) as Record<string, unknown>
    } catch {
      json = {}
    }
    return { status: response.status, headers: response.headers, contentType: response.headers.get("content-type"), body, text, json }
  })

describe("the Message Center served by the gateway", () => {
  it.live("screens get the page with a strict CSP; assets are immutable and precompressed; the rest is 404", () =>
    Effect.gen(function*() {
      const root = yield* tempDir
      mkdirSync(join(root, "assets"))
      writeFileSync(join(root, "index.html"), page)
      writeFileSync(join(root, "assets", "app-3f2a.js"), script)
      writeFileSync(join(root, "assets", "app-3f2a.js.br"), brotliCompressSync(script))
      const gw = yield* startGateway({ config: { http: { port: 0, host: "127.0.0.1", webRoot: root } as never } })

      for (const path of ["/", "/campaigns/new", "/messages/abc?status=delivered"]) {
        const r = yield* fetchRaw(`${gw.baseUrl}${path}`)
        expect(r.status, path).toBe(200)
        expect(r.text).toBe(page)
        expect(r.headers.get("content-type")).toContain("text/html")
        expect(r.headers.get("cache-control")).toBe("no-cache")
        const csp = r.headers.get("content-security-policy") ?? ""
        expect(csp).toContain("script-src 'self'")
        expect(csp).not.toMatch(/script-src[^;]*unsafe/)
        expect(csp).toContain("frame-ancestors 'none'")
        expect(r.headers.get("x-content-type-options")).toBe("nosniff")
      }

      const compressed = yield* fetchRaw(`${gw.baseUrl}/assets/app-3f2a.js`, { "accept-encoding": "gzip, br" })
      expect(compressed.status).toBe(200)
      expect(compressed.headers.get("cache-control")).toContain("immutable")
      expect(compressed.headers.get("content-type")).toContain("text/javascript")
      // fetch undoes the encoding it was sent with; the bytes are the script either way.
      expect(compressed.text === script || brotliDecompressSync(compressed.body).toString() === script).toBe(true)

      expectProblem(yield* fetchRaw(`${gw.baseUrl}/assets/app-0000.js`), 404, "not-found")
      expectProblem(yield* fetchRaw(`${gw.baseUrl}/v1/nothing-here`), 404, "not-found")
      expectProblem(yield* fetchRaw(`${gw.baseUrl}/v1/campaigns/new`), 401, "unauthorized")
      expect((yield* fetchRaw(`${gw.baseUrl}/healthz`)).json).toEqual({ status: "ok" })
      expect((yield* fetchRaw(`${gw.baseUrl}/%E0%A4%A`)).status).toBe(404)
    }).pipe(Effect.scoped), 30_000)

  it.live("without a build, the page says how to build it", () =>
    Effect.gen(function*() {
      const root = yield* tempDir
      const gw = yield* startGateway({ config: { http: { port: 0, host: "127.0.0.1", webRoot: join(root, "missing") } as never } })
      const r = yield* fetchRaw(`${gw.baseUrl}/`)
      expect(r.status).toBe(503)
      expect(r.text).toContain("npm start")
      expect((yield* fetchRaw(`${gw.baseUrl}/healthz`)).status).toBe(200)
    }).pipe(Effect.scoped), 30_000)
})
