/**
 * `node bench/auth.ts`: CPU per message of the authentication stage of the submit path (token verification with its
 * cache, app lookup with its cache, allow-list check), on the real AccountStore over node:sqlite. Prints µs/op.
 */
import { Effect, Layer } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Access } from "../src/auth/Access.ts"
import { AccountStore } from "../src/auth/AccountStore.ts"
import { makeApiKey } from "../src/auth/Secrets.ts"
import { Tokens } from "../src/auth/Tokens.ts"
import { migrate } from "../src/layers/Migrations.ts"
import { NodeSqliteClient } from "../src/storage/NodeSqliteClient.ts"

const iterations = Number(process.env.BENCH_ITERATIONS ?? 200_000)
const dir = mkdtempSync(join(tmpdir(), "smsgw-auth-bench-"))

const program = Effect.gen(function*() {
  const store = yield* AccountStore
  const tokens = yield* Tokens
  const access = yield* Access
  const { org } = yield* store.register({ email: "bench@example.com", name: "Bench", passwordHash: "x", orgName: "Bench" })
  const app = yield* store.createApp(org.id, { name: "bench", allowList: ["127.0.0.0/8", "10.0.0.0/8", "2001:db8::/32"], limits: {}, messageClass: "transactional", active: true })
  const key = makeApiKey()
  yield* store.addApiKey(org.id, app.id, { id: key.id, prefix: key.prefix, hash: key.hash })
  const { token } = yield* tokens.issueAppToken({ appId: app.id, orgId: org.id, apiKeyId: key.id })
  const origin = { remoteAddress: "::ffff:127.0.0.1", forwardedFor: undefined, appIdHeader: undefined }
  const once = Effect.flatMap(access.authenticate(token), (principal) => access.submitter(principal, origin))
  for (let i = 0; i < 20_000; i++) yield* once
  const cpu = process.cpuUsage()
  const wall = performance.now()
  for (let i = 0; i < iterations; i++) yield* once
  const used = process.cpuUsage(cpu)
  const cpuMicros = (used.user + used.system) / iterations
  const missTokens = yield* Effect.forEach(Array.from({ length: 2000 }), () =>
    tokens.issueAppToken({ appId: app.id, orgId: org.id, apiKeyId: key.id }).pipe(Effect.map((t) => t.token)))
  const missCpu = process.cpuUsage()
  for (const t of missTokens) yield* Effect.flatMap(access.authenticate(t), (principal) => access.submitter(principal, origin))
  const miss = process.cpuUsage(missCpu)
  console.log(JSON.stringify({
    iterations,
    cachedMicrosPerMessage: +cpuMicros.toFixed(2),
    wallMicrosPerMessage: +((performance.now() - wall) * 1000 / iterations).toFixed(2),
    firstUseOfATokenMicros: +((miss.user + miss.system) / missTokens.length).toFixed(1)
  }, null, 2))
})

const Sql = NodeSqliteClient.layer({ filename: join(dir, "auth.db") }).pipe(Layer.orDie)
const Store = AccountStore.layer.pipe(Layer.provideMerge(Layer.effectDiscard(migrate.pipe(Effect.orDie))), Layer.provideMerge(Sql))
const TokensLive = Tokens.layer({ issuer: "bench", audience: "bench", keys: [{ kid: "k1", secret: "bench-secret-bench-secret-bench-secret" }], accessTtlSeconds: 900 }).pipe(Layer.orDie)
const AccessLive = Access.layer({ trustedProxies: [], cacheTtlMs: 2000 })
const Live = AccessLive.pipe(Layer.provideMerge(Layer.mergeAll(TokensLive, Store)))

await Effect.runPromise(program.pipe(Effect.provide(Live))).finally(() => rmSync(dir, { recursive: true, force: true }))
