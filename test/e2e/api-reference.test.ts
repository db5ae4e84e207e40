/**
 * The API reference at /docs: served on request, its 3 MB page bundle loaded on the first request rather than at
 * start (a node whose operators never open it does not carry it).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { join } from "node:path"
import { writeNodeConfig } from "../fixtures/Cluster.ts"
import { tempDir } from "../fixtures/Databases.ts"
import { get } from "../fixtures/Gateway.ts"
import { freePort, spawnSmsgw, waitHealthy } from "../fixtures/Processes.ts"

const traceHook = join(import.meta.dirname, "..", "fixtures", "import-trace.mjs")

describe("API reference", () => {
  it.live("/docs is Scalar's page of the OpenAPI document; its bundle is imported on the first request, once", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const port = yield* freePort
      const config = join(dir, "gateway.yaml")
      writeNodeConfig(config, { http: { port, host: "127.0.0.1" }, storage: { kind: "sqlite", path: join(dir, "gateway.db") }, links: [] })
      const gateway = yield* spawnSmsgw(["serve", "--config", config], {
        NODE_OPTIONS: `--import=${traceHook}`,
        SMSGW_TRACE_IMPORT: "internal/httpApiScalar"
      })
      yield* waitHealthy(gateway, port)
      const base = `http://127.0.0.1:${port}`
      // Started and serving: the bundle is not loaded.
      expect((yield* get(`${base}/openapi.json`)).status).toBe(200)
      expect(gateway.output()).not.toContain("imported ")

      const first = yield* get(`${base}/docs`)
      expect(first.status).toBe(200)
      expect(first.contentType).toContain("text/html")
      expect(first.text).toContain("Scalar.createApiReference")
      expect(first.text).toContain("/v1/messages")
      expect(gateway.output()).toMatch(/imported \S*internal\/httpApiScalar/)
      // Concurrent and later requests reuse the page built once.
      const again = yield* Effect.all([get(`${base}/docs`), get(`${base}/docs`)], { concurrency: 2 })
      expect(again.map((r) => r.text)).toEqual([first.text, first.text])
      expect(gateway.output().match(/imported /g)).toHaveLength(1)
    }).pipe(Effect.scoped), 60_000)
})
