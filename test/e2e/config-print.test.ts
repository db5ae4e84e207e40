/** `smsgw config print`: the effective configuration (defaults filled in) as YAML, with every secret hidden. */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { parse } from "yaml"
import { printableConfig } from "../../src/cli/config.ts"
import { decodeConfig } from "../../src/layers/Config.ts"
import { tempDir } from "../fixtures/Databases.ts"
import { spawnSmsgw } from "../fixtures/Processes.ts"

const secrets = ["linkpw1", "simpw", "superadmin-password", "0123456789abcdef0123456789abcdef-jwt", "smtp-pw",
  "redis-pw", "policy-redis-pw", "AKIAEXAMPLE", "s3-secret-key", "db-password", "otlp-api-key"]

const full = {
  links: [{ id: "a", host: "smsc", port: 2775, systemId: "a", password: "linkpw1" }],
  simulator: { enabled: true, password: "simpw" },
  auth: {
    superadmin: { email: "op@example.com", password: "superadmin-password" },
    jwtKeys: [{ kid: "k1", secret: "0123456789abcdef0123456789abcdef-jwt" }]
  },
  mail: { smtp: { host: "mail", port: 587, user: "gw", password: "smtp-pw" } },
  storage: { kind: "postgres", url: "postgres://gw:db-password@db:5432/sms" },
  rateLimits: { store: "redis", redis: { host: "redis", password: "redis-pw" } },
  policy: { redis: { password: "policy-redis-pw" } },
  objectStore: { kind: "s3", bucket: "lists", accessKeyId: "AKIAEXAMPLE", secretAccessKey: "s3-secret-key" },
  telemetry: { otlp: { endpoint: "http://collector:4318", headers: { "x-api-key": "otlp-api-key" } } }
}

const run = (args: ReadonlyArray<string>, env: NodeJS.ProcessEnv = {}) =>
  Effect.gen(function*() {
    const gw = yield* spawnSmsgw(args, env)
    const code = yield* Effect.promise(() =>
      new Promise<number | null>((resolve) => {
        if (gw.child.exitCode !== null) resolve(gw.child.exitCode)
        else gw.child.once("exit", (c) => resolve(c))
      })
    )
    return { code, output: gw.output() }
  }).pipe(Effect.scoped)

describe("smsgw config print", () => {
  it("fills in every default and hides every secret", () => {
    const printed = printableConfig(Effect.runSync(decodeConfig(full)))
    for (const secret of secrets) expect(printed).not.toContain(secret)
    const doc = parse(printed)
    expect(doc.links[0].password).toBe("***")
    expect(doc.links[0].tps).toBe(100)
    expect(doc.auth.jwtKeys[0]).toEqual({ kid: "k1", secret: "***" })
    expect(doc.auth.superadmin.password).toBe("***")
    expect(doc.mail.smtp.password).toBe("***")
    expect(doc.storage.url).toBe("postgres://gw:***@db:5432/sms")
    expect(doc.objectStore).toMatchObject({ accessKeyId: "***", secretAccessKey: "***", region: "us-east-1" })
    expect(doc.rateLimits.redis).toMatchObject({ host: "redis", port: 6379, password: "***" })
    expect(doc.http).toMatchObject({ port: 8080, host: "0.0.0.0", requestTimeoutSeconds: 30 })
    expect(doc.recovery).toMatchObject({ idleSeconds: 30, intervalSeconds: 5 })
    expect(doc.policy.buckets).toBe(256)
    expect(doc.telemetry).toMatchObject({ serviceName: "smsgw", sampleRatio: 1 })
    expect(doc.telemetry.otlp).toMatchObject({ endpoint: "http://collector:4318", headers: { "x-api-key": "***" }, timeoutMs: 10_000 })
    expect(doc.log).toEqual({ format: "text", level: "info", modules: {} })
  })

  it.live("prints a file's effective configuration with the environment's overrides, secrets hidden", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const file = join(dir, "gw.yaml")
      writeFileSync(file, "links:\n  - { id: demo, host: 127.0.0.1, port: 2775, systemId: demo, password: \"${PW}\" }\n")
      const { code, output } = yield* run(["config", "print", "--config", file], { PW: "s3cret", SMSGW_HTTP_PORT: "9090" })
      expect(code, output).toBe(0)
      expect(output).not.toContain("s3cret")
      const doc = parse(output)
      expect(doc.http.port).toBe(9090)
      expect(doc.links[0]).toMatchObject({ id: "demo", password: "***", window: 10 })
      expect(doc.receipts.sweepIntervalSeconds).toBe(30)
    }), 30_000)

  it.live("a bad file: each bad key once and exit 1, as serve", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const file = join(dir, "bad.yaml")
      writeFileSync(file, "links: []\nrecovery: { idleSeconds: -1 }\n")
      const { code, output } = yield* run(["config", "print", "--config", file])
      expect(code).toBe(1)
      expect(output.split("recovery.idleSeconds").length - 1, output).toBe(1)
    }), 30_000)
})
