import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { readFileSync } from "node:fs"
import { parse } from "yaml"
import { decodeConfig, linkDefaults } from "../../src/layers/Config.ts"

const link = { id: "demo", host: "127.0.0.1", port: 2775, systemId: "demo", password: "demo" }

const failure = (raw: unknown, env: NodeJS.ProcessEnv = {}) =>
  Effect.runSync(decodeConfig(raw, env).pipe(Effect.flip)).message

describe("configuration", () => {
  it("the shipped embedded config decodes", () => {
    const raw = parse(readFileSync("config/gateway.yaml", "utf8"))
    const config = Effect.runSync(decodeConfig(raw))
    expect(config.links.map((l) => l.id)).toEqual(["demo"])
    expect(config.simulator?.enabled).toBe(true)
    expect(config.http?.port).toBe(8080)
  })

  it("names the bad key as a path", () => {
    expect(failure({ links: [{ ...link, port: "abc" }] })).toContain("links[0].port")
    expect(failure({ links: [link], http: { port: 70000 } })).toContain("http.port")
    expect(failure({ links: [{ ...link, bindMode: "both" }] })).toContain("links[0].bindMode")
    expect(failure({})).toContain("links")
  })

  it("rejects unknown keys, so a typo does not pass silently", () => {
    expect(failure({ links: [link], htpp: { port: 1 } })).toContain("htpp")
  })

  it("rejects duplicate link ids and postgres without a url", () => {
    expect(failure({ links: [link, link] })).toContain("links[1].id")
    expect(failure({ links: [link], storage: { kind: "postgres" } })).toContain("storage.url")
  })

  it("takes secrets and ports from the environment", () => {
    const config = Effect.runSync(decodeConfig(
      { links: [{ ...link, password: "${DEMO_PW}" }] },
      { DEMO_PW: "s3cret", SMSGW_HTTP_PORT: "9090" }
    ))
    expect(config.links[0]?.password).toBe("s3cret")
    expect(config.http?.port).toBe(9090)
    const overridden = Effect.runSync(decodeConfig({ links: [link] }, { SMSGW_LINK_DEMO_PASSWORD: "fromenv" }))
    expect(overridden.links[0]?.password).toBe("fromenv")
    expect(failure({ links: [{ ...link, password: "${MISSING_PW}" }] })).toContain("MISSING_PW")
  })

  it("an environment value stays a string where the key is one, and becomes a number or boolean where the key wants it", () => {
    const config = Effect.runSync(decodeConfig(
      { http: { port: "${HTTP_PORT}" }, links: [{ ...link, password: "${PW}", systemId: "${SYS}", tls: "${TLS}", window: "${WINDOW}" }] },
      { HTTP_PORT: "8081", PW: "12345678", SYS: "true", TLS: "true", WINDOW: "20" }
    ))
    expect(config.links[0]?.password).toBe("12345678")
    expect(config.links[0]?.systemId).toBe("true")
    expect(config.links[0]?.tls).toBe(true)
    expect(config.links[0]?.window).toBe(20)
    expect(config.http?.port).toBe(8081)
    expect(failure({ http: { port: "${HTTP_PORT}" }, links: [] }, { HTTP_PORT: "eighty" })).toBe("http.port: Expected number")
  })

  it("takes the receipts section and names a bad value in it", () => {
    const config = Effect.runSync(decodeConfig({
      links: [link],
      receipts: { expireGraceSeconds: 0, assumedValiditySeconds: 172_800, orphanTtlSeconds: 300, orphanMaxPerLink: 5_000, sweepIntervalSeconds: 10 }
    }))
    expect(config.receipts).toEqual({ expireGraceSeconds: 0, assumedValiditySeconds: 172_800, orphanTtlSeconds: 300, orphanMaxPerLink: 5_000, sweepIntervalSeconds: 10 })
    expect(failure({ links: [link], receipts: { expireGraceSeconds: -1 } })).toContain("receipts.expireGraceSeconds")
    expect(failure({ links: [link], receipts: { orphanMaxPerLink: 0 } })).toContain("receipts.orphanMaxPerLink")
  })

  it("campaigns.testSendsPerDay: 20 when absent, a positive whole number when given", () => {
    expect(Effect.runSync(decodeConfig({ links: [link] })).campaigns).toEqual({ testSendsPerDay: 20 })
    expect(Effect.runSync(decodeConfig({ links: [link], campaigns: { testSendsPerDay: 3 } })).campaigns.testSendsPerDay).toBe(3)
    expect(failure({ links: [link], campaigns: { testSendsPerDay: 0 } })).toContain("campaigns.testSendsPerDay")
  })

  it("fills link defaults", () => {
    const d = linkDefaults(link)
    expect(d).toMatchObject({ bindMode: "transceiver", window: 10, registeredDelivery: true, udhReferenceBits: 8 })
    expect(Exit.isSuccess(Effect.runSyncExit(decodeConfig({ links: [] })))).toBe(true)
  })

  it("the cluster example decodes with its environment, a placeholder port becoming a number", () => {
    const raw = parse(readFileSync("config/cluster.example.yaml", "utf8"))
    const config = Effect.runSync(decodeConfig(raw, {
      SMSGW_DATABASE_URL: "postgres://smsgw@db/smsgw",
      RUNNER_HOST: "10.0.0.1",
      RUNNER_PORT: "34431",
      SMSGW_JWT_SECRET: "x".repeat(40),
      SMSGW_SUPERADMIN_PASSWORD: "operator password",
      CARRIER_A_PASSWORD: "a",
      CARRIER_B_PASSWORD: "b",
      SMSGW_S3_ENDPOINT: "http://minio:9000",
      SMSGW_S3_ACCESS_KEY: "minio",
      SMSGW_S3_SECRET_KEY: "minio secret"
    }))
    expect(config.cluster).toMatchObject({ runnerHost: "10.0.0.1", runnerPort: 34431 })
    expect(config.objectStore).toMatchObject({ kind: "s3", endpoint: "http://minio:9000" })
    expect(config.pools?.[0]?.id).toBe("main")
    expect(failure({ links: [link], cluster: { runnerHost: "h", runnerPort: 1 } })).toContain("storage.kind")
  })

  it("refuses a cluster exporting CDRs to a local folder (each node's own); S3 or the export off is accepted", () => {
    const cluster = {
      links: [link],
      storage: { kind: "postgres", url: "postgres://db/smsgw" },
      cluster: { runnerHost: "10.0.0.1", runnerPort: 34431 },
      rateLimits: { store: "redis" }
    }
    expect(failure(cluster)).toContain("objectStore.kind: a cluster writes CDR files to one object store")
    expect(Effect.runSync(decodeConfig({ ...cluster, cdr: { enabled: false } })).cdr.enabled).toBe(false)
    expect(Effect.runSync(decodeConfig({ ...cluster, objectStore: { kind: "s3", bucket: "b" } })).cdr.enabled).toBe(true)
  })

  it("refuses a cluster whose contact-policy counters would be in memory (lost on every bucket move)", () => {
    const cluster = {
      links: [link],
      storage: { kind: "postgres", url: "postgres://db/smsgw" },
      cluster: { runnerHost: "10.0.0.1", runnerPort: 34431 },
      cdr: { enabled: false }
    }
    // Neither store set, the policy's set to memory (even with the rate limits in Redis), or the rate limits' in memory.
    for (const raw of [
      cluster,
      { ...cluster, policy: { store: "memory" }, rateLimits: { store: "redis" } },
      { ...cluster, rateLimits: { store: "memory" } }
    ]) {
      const message = failure(raw)
      expect(message).toMatch(/^policy\.store: /)
      expect(message).toContain("Redis")
    }
    // Redis for the counters, through either key (or SMSGW_REDIS_URL); and one embedded node may count in memory.
    expect(Exit.isSuccess(Effect.runSyncExit(decodeConfig({ ...cluster, rateLimits: { store: "redis" } })))).toBe(true)
    expect(Exit.isSuccess(Effect.runSyncExit(decodeConfig({ ...cluster, policy: { store: "redis" } })))).toBe(true)
    expect(Exit.isSuccess(Effect.runSyncExit(decodeConfig({ ...cluster, rateLimits: { store: "memory" }, policy: { store: "redis" } })))).toBe(true)
    expect(Exit.isSuccess(Effect.runSyncExit(decodeConfig(cluster, { SMSGW_REDIS_URL: "redis://cache:6379" })))).toBe(true)
    expect(Exit.isSuccess(Effect.runSyncExit(decodeConfig({ links: [link], policy: { store: "memory" } })))).toBe(true)
  })

  it("a blacklist without a file: object null (entries through the API only); absent: the default file", () => {
    const config = Effect.runSync(decodeConfig({
      links: [link],
      policy: { blacklists: [{ name: "optout", org: "org_1", object: null }, { name: "dnd" }] }
    }))
    expect(config.policy?.blacklists).toEqual([{ name: "optout", org: "org_1", object: null }, { name: "dnd" }])
    expect(failure({ links: [link], policy: { blacklists: [{ name: "dnd", object: "" }] } })).toContain("policy.blacklists[0].object")
  })
})
