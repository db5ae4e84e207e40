/**
 * Secrets never reach the logs: a gateway process at `log.level: debug`, taken through every way a secret crosses it —
 * registration and sign-in with a password, a wrong password, refresh tokens, app keys and their tokens, a wrong key,
 * an invitation mailed and accepted, a message sent with an app token — and its whole output searched for each one.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { join } from "node:path"
import * as Simulator from "../../src/smpp/Simulator.ts"
import { writeNodeConfig } from "../fixtures/Cluster.ts"
import { tempDir } from "../fixtures/Databases.ts"
import { post, waitForStatus } from "../fixtures/Gateway.ts"
import { startMailbox, tokenIn } from "../fixtures/Mailbox.ts"
import { freePort, spawnSmsgw, waitHealthy } from "../fixtures/Processes.ts"

describe("secrets in the logs", () => {
  it.live("none of the secrets an auth flow used appears in the process's output, in text or JSON lines", () =>
    Effect.gen(function*() {
      for (const format of ["text", "json"] as const) {
        const dir = yield* tempDir
        const sim = yield* Simulator.start({ port: 0, receiptDelayMs: 20, password: "lnkPw77!" })
        const mailbox = yield* startMailbox
        const port = yield* freePort
        const jwtSecret = "jwt-signing-secret-that-is-long-enough-42"
        const superPassword = "superadmin password 31337"
        const config = join(dir, "gateway.yaml")
        writeNodeConfig(config, {
          http: { port, host: "127.0.0.1" },
          storage: { kind: "sqlite", path: join(dir, "gateway.db") },
          objectStore: { kind: "local", root: join(dir, "objects") },
          links: [{ id: "sim", host: "127.0.0.1", port: sim.port, systemId: "test", password: "lnkPw77!" }],
          auth: { jwtKeys: [{ kid: "k1", secret: jwtSecret }], superadmin: { email: "ops@example.com", password: superPassword } },
          mail: { smtp: { host: "127.0.0.1", port: mailbox.port, secure: false, timeoutMs: 5_000 }, publicUrl: "https://gw.example.com" },
          log: { format, level: "debug" }
        })
        const gw = yield* spawnSmsgw(["serve", "--config", config], {}, { keepChars: 5_000_000 })
        yield* waitHealthy(gw, port, 45_000)
        const base = `http://127.0.0.1:${port}`
        const email = `owner-${crypto.randomUUID().slice(0, 8)}@example.com`
        const password = "owner password never logged"

        expect((yield* post(`${base}/v1/auth/register`, { email, password, name: "Owner", organisation: "Org" })).status).toBe(201)
        expect((yield* post(`${base}/v1/auth/token`, { email, password: "a wrong password 123" })).status).toBe(401)
        const login = yield* post(`${base}/v1/auth/token`, { email, password })
        const accessToken = String(login.json.accessToken)
        const refreshToken = String(login.json.refreshToken)
        const refreshed = yield* post(`${base}/v1/auth/refresh`, { refreshToken })
        expect(refreshed.status).toBe(200)
        const user = { authorization: `Bearer ${String(refreshed.json.accessToken)}` }
        const app = yield* post(`${base}/v1/apps`, { name: "app" }, user)
        const key = yield* post(`${base}/v1/apps/${String(app.json.id)}/keys`, {}, user)
        const apiKey = String(key.json.key)
        expect((yield* post(`${base}/v1/auth/token`, { appId: String(app.json.id), apiKey: `${apiKey}x` })).status).toBe(401)
        const appToken = String((yield* post(`${base}/v1/auth/token`, { appId: String(app.json.id), apiKey })).json.accessToken)
        const sent = yield* post(`${base}/v1/messages`, { to: "+4915112345678", from: "ACME", text: "hello" }, { authorization: `Bearer ${appToken}` })
        expect(sent.status).toBe(202)
        yield* waitForStatus(base, String(sent.json.id), "delivered", 10_000, { authorization: `Bearer ${appToken}` })
        const invitee = `invitee-${crypto.randomUUID().slice(0, 8)}@example.com`
        expect((yield* post(`${base}/v1/members`, { email: invitee, role: "member" }, user)).status).toBe(202)
        const invitation = tokenIn(yield* mailbox.waitFor(invitee, "Invitation"), "inv")
        const joined = yield* post(`${base}/v1/auth/register`, { email: invitee, password, name: "Invitee", invitationToken: invitation })
        expect(joined.status).toBe(201)

        const output = gw.output()
        expect(output).toContain(format === "json" ? '"level":"DEBUG"' : "level=DEBUG")
        const secrets = {
          password,
          wrongPassword: "a wrong password 123",
          accessToken,
          refreshToken,
          apiKey,
          appToken,
          invitation,
          jwtSecret,
          superPassword,
          linkPassword: "lnkPw77!"
        }
        for (const [name, secret] of Object.entries(secrets)) {
          expect(output.includes(secret), `${format} logs hold the ${name}`).toBe(false)
        }
      }
    }).pipe(Effect.scoped), 120_000)
})
