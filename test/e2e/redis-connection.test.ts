import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { Redis } from "ioredis"
import { post, signUp, startGateway } from "../fixtures/Gateway.ts"
import { eventually } from "../fixtures/Eventually.ts"
import { freePort } from "../fixtures/Processes.ts"
import { redisServer } from "../fixtures/RedisServer.ts"

/** A client of the test's own on the gateway's Redis, to look at what the gateway left there. */
const probe = (port: number) =>
  Effect.acquireRelease(
    Effect.sync(() => new Redis({ host: "127.0.0.1", port, maxRetriesPerRequest: 0 })),
    (client) => Effect.promise(() => client.quit())
  )

describe("the gateway's Redis connection", () => {
  it.live("rate limits, policy counters and the login throttle share one connection", () =>
    Effect.gen(function*() {
      const redis = yield* redisServer(yield* freePort)
      const gw = yield* startGateway({
        config: {
          rateLimits: { store: "redis", redis: { host: "127.0.0.1", port: redis.port } },
          policy: { flushIntervalMs: 10, rules: [{ id: "cap", type: "frequency_cap", max: 5, window: "day" }] }
        }
      })
      // Sign-up spends a registration (login throttle), the submit a rate-limit decision and a policy count.
      const tenant = yield* signUp(gw.baseUrl)
      const submitted = yield* post(`${gw.baseUrl}/v1/messages`, { to: "+4915112345678", from: "Shop", text: "hello" }, tenant.auth)
      expect(submitted.status).toBe(202)

      const client = yield* probe(redis.port)
      const keysOf = (pattern: string) => Effect.promise(() => client.keys(pattern))
      const used = yield* eventually("a key of each use", Effect.gen(function*() {
        const uses = {
          login: (yield* keysOf("smsgw:rl:login:*")).length,
          rateLimits: (yield* keysOf("smsgw:rl:*")).filter((key) => !key.startsWith("smsgw:rl:login:")).length,
          policy: (yield* keysOf("smsgw:pol:*")).length
        }
        return Object.values(uses).every((n) => n > 0) ? uses : undefined
      }))
      expect(used.login).toBeGreaterThan(0)

      const own = yield* Effect.promise(() => client.client("ID"))
      const list = yield* Effect.promise(() => client.client("LIST")) as Effect.Effect<string>
      const others = list.split("\n").filter((line) => line.startsWith("id=") && !line.startsWith(`id=${String(own)} `))
      expect(others.map((line) => /\bname=(\S*)/.exec(line)?.[1])).toEqual(["smsgw"])
    }).pipe(Effect.scoped), 60_000)
})
