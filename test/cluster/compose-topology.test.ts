/**
 * The compose topology without Docker: three `smsgw serve` processes each running deploy/compose/gateway.yaml — the
 * file docker-compose.yml mounts into gateway1–3 — with the secrets of .env.example in their environment, on a
 * PostgreSQL database, a Redis that wants its password, an S3 server holding the `smsgw` bucket, an OTLP collector and
 * the SMSC simulator, all on 127.0.0.1. Only the addresses differ from what Compose runs (the compose network's names
 * and fixed ports become this machine's); the test checks that nothing else does.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { Redis } from "ioredis"
import { randomBytes } from "node:crypto"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { parse } from "yaml"
import * as Simulator from "../../src/smpp/Simulator.ts"
import { composeGatewayFile, composeNodeConfig, sendAnywhere, startClusterNodes } from "../fixtures/Cluster.ts"
import { freshPgDatabase, pgUrl } from "../fixtures/Databases.ts"
import { eventually } from "../fixtures/Eventually.ts"
import { get, post, signUp, waitForStatus } from "../fixtures/Gateway.ts"
import { otlpReceiver, traceOf } from "../fixtures/OtlpReceiver.ts"
import { freePort } from "../fixtures/Processes.ts"
import { redisServer } from "../fixtures/RedisServer.ts"
import { s3Server } from "../fixtures/S3Server.ts"

const root = join(import.meta.dirname, "..", "..")

/** .env.example's variables, as Compose reads them. */
const envExample = (): Record<string, string> =>
  Object.fromEntries(readFileSync(join(root, ".env.example"), "utf8").split("\n")
    .filter((line) => /^[A-Z0-9_]+=/.test(line))
    .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]))

/** The environment docker-compose.yml gives each gateway service (`x-gateway`), filled from `.env`. */
const gatewayEnvironment = (dotEnv: Record<string, string>): Record<string, string> => {
  const compose = parse(readFileSync(join(root, "docker-compose.yml"), "utf8"), { merge: true }) as {
    readonly "x-gateway": { readonly environment: Record<string, string> }
  }
  return Object.fromEntries(Object.entries(compose["x-gateway"].environment).map(([key, value]) =>
    [key, value.replace(/\$\{([A-Z0-9_]+)\}/g, (_, name: string) => dotEnv[name] ?? "")]
  ))
}

/** Every leaf of a document as `path = value`. */
const leaves = (value: unknown, path = ""): Array<string> =>
  value !== null && typeof value === "object"
    ? Object.entries(value).flatMap(([k, v]) => leaves(v, path === "" ? k : `${path}.${k}`))
    : [`${path} = ${JSON.stringify(value)}`]

describe("deploy/compose/gateway.yaml run as three cluster nodes", () => {
  it.live("the compose nodes' own file and secrets: they bind the carrier once, deliver through any node, trace, log JSON, use the passworded Redis and S3", () =>
    Effect.gen(function*() {
      const env = envExample()
      const database = yield* freshPgDatabase
      const redisPort = yield* freePort
      yield* redisServer(redisPort, { password: env.REDIS_PASSWORD! })
      const s3 = yield* s3Server("smsgw")
      const collector = yield* otlpReceiver
      const smsc = yield* Simulator.start({ port: 0, receiptDelayMs: 100 })

      const nodes = yield* startClusterNodes(3, (slot) => {
        const config = composeNodeConfig({
          slot,
          redisPort,
          s3Endpoint: s3.endpoint,
          otlpEndpoint: collector.endpoint,
          smscPort: smsc.port
        })
        if (slot.index === 0) {
          // Addresses only: every other key of the compose file reaches the node unchanged.
          const file = new Set(leaves(composeGatewayFile()))
          expect(leaves(config).filter((l) => !file.has(l)).map((l) => l.slice(0, l.indexOf(" = "))).sort()).toEqual([
            "cluster.listenHost",
            "cluster.runnerPort",
            "grpc.host",
            "grpc.port",
            "http.host",
            "http.port",
            "links.0.host",
            "links.0.port",
            "objectStore.endpoint",
            "rateLimits.redis.host",
            "rateLimits.redis.port",
            "telemetry.otlp.endpoint"
          ])
        }
        return config
      }, {
        ...gatewayEnvironment(env),
        // The compose network's PostgreSQL and runner host are this machine's; s3rver has fixed credentials.
        SMSGW_DATABASE_URL: pgUrl(database),
        MINIO_ROOT_USER: s3.accessKeyId,
        MINIO_ROOT_PASSWORD: s3.secretAccessKey,
        RUNNER_HOST: "127.0.0.1"
      })

      yield* eventually("the demo carrier bound once", Effect.map(smsc.stats, (s) => s.boundSessions === 1 ? true : undefined), { timeout: 30_000 })
      for (const node of nodes) {
        yield* eventually(`node ${node.port} ready`, Effect.map(get(`http://127.0.0.1:${node.port}/readyz`), (r) => r.json.ready === true ? true : undefined), { timeout: 30_000 })
      }

      // The superadmin of .env.example signs in on any node.
      const signIn = yield* post(`http://127.0.0.1:${nodes[2]!.port}/v1/auth/token`, {
        email: env.SMSGW_SUPERADMIN_EMAIL,
        password: env.SMSGW_SUPERADMIN_PASSWORD
      })
      expect(signIn.status).toBe(200)

      // Messages through every node, one traced by its caller: all delivered, one trace.
      const t = yield* signUp(`http://127.0.0.1:${nodes[0]!.port}`)
      const sent = yield* Effect.forEach(Array.from({ length: 30 }, (_, i) => i), (i) =>
        sendAnywhere(nodes, t, i, "+4915112345678", { text: `compose ${i}` }), { concurrency: 6 })
      expect(sent.every((s) => s !== undefined)).toBe(true)
      const traceId = randomBytes(16).toString("hex")
      const traced = yield* post(`http://127.0.0.1:${nodes[1]!.port}/v1/messages`, { to: "+4915112345678", from: "ACME", text: "traced" }, {
        ...t.auth,
        traceparent: `00-${traceId}-${randomBytes(8).toString("hex")}-01`
      })
      expect(traced.status).toBe(202)
      for (const s of [...sent, { id: String(traced.json.id) }]) {
        yield* waitForStatus(`http://127.0.0.1:${nodes[0]!.port}`, s!.id, "delivered", 30_000, t.auth)
      }
      const spans = yield* traceOf(collector, traceId, "smsgw.receipt", 20_000)
      expect(new Set(spans.map((s) => s.service["service.name"]))).toEqual(new Set(["smsgw"]))

      // The rate limits live in the Redis that wants a password; the CDR listing reads the S3 bucket.
      const redis = new Redis({ port: redisPort, host: "127.0.0.1", password: env.REDIS_PASSWORD!, lazyConnect: true })
      yield* Effect.promise(() => redis.connect())
      const keys = yield* Effect.promise(() => redis.dbsize())
      redis.disconnect()
      expect(keys).toBeGreaterThan(0)
      const files = yield* get(`http://127.0.0.1:${nodes[2]!.port}/v1/cdr`, t.userAuth)
      expect(files.status).toBe(200)

      // log.format json: every line a node wrote is one JSON object.
      for (const node of nodes) {
        const lines = node.process!.output().split("\n").filter((l) => l.trim() !== "")
        expect(lines.length).toBeGreaterThan(0)
        for (const line of lines) expect(() => JSON.parse(line), line).not.toThrow()
      }
    }).pipe(Effect.scoped), 180_000)
})
