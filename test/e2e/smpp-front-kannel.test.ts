/**
 * Kannel (Debian's bearerbox + smsbox) as a customer's ESME: its `group = smsc` is the example of
 * docs/smpp-server.md, read from the page (so page and test stay in step) with this run's address and credentials.
 * 20 seconds of sendsms at a moderate concurrency; every message Kannel accepted must reach the simulator SMSC
 * exactly once, and a delivered report (dlr-url type 1) must come back to Kannel's application for each.
 * Skipped, saying so, where Kannel is not installed.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Exit } from "effect"
import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { existsSync, readFileSync, writeFileSync } from "node:fs"
import http from "node:http"
import { join } from "node:path"
import { SqlClient } from "effect/sql"
import { SmppServer } from "../../src/pipeline/SmppFront.ts"
import { tempDir } from "../fixtures/Databases.ts"
import { eventually } from "../fixtures/Eventually.ts"
import { get, send, signUp, startGateway } from "../fixtures/Gateway.ts"
import { freePort } from "../fixtures/Processes.ts"

const bearerbox = "/usr/sbin/bearerbox"
const smsbox = "/usr/sbin/smsbox"
const installed = existsSync(bearerbox) && existsSync(smsbox)
if (!installed) console.warn(`smpp-front-kannel skipped: ${bearerbox} or ${smsbox} is absent (Debian: apt-get install -y kannel)`)

const loadSeconds = 20
const concurrency = 16

/** The `group = smsc` example of docs/smpp-server.md, with this run's gateway address and app credentials. */
const smscGroup = (port: number, systemId: string, password: string): string => {
  const page = readFileSync(new URL("../../docs/smpp-server.md", import.meta.url), "utf8")
  const block = /<!-- kannel-smsc -->\s*```ini\n([\s\S]*?)```/.exec(page)?.[1]
  if (block === undefined) throw new Error("docs/smpp-server.md has no <!-- kannel-smsc --> ini block")
  return block
    .replace(/^host = .*$/m, "host = 127.0.0.1")
    .replace(/^port = .*$/m, `port = ${port}`)
    .replace(/^smsc-username = .*$/m, `smsc-username = ${systemId}`)
    .replace(/^smsc-password = .*$/m, `smsc-password = ${password}`)
}

const kannelConf = (dir: string, ports: { readonly admin: number; readonly smsbox: number; readonly sendsms: number }, smsc: string) => `
group = core
admin-port = ${ports.admin}
admin-interface = 127.0.0.1
admin-password = admin-${ports.admin}
admin-allow-ip = "127.0.0.1"
smsbox-port = ${ports.smsbox}
smsbox-interface = 127.0.0.1
box-deny-ip = "*.*.*.*"
box-allow-ip = "127.0.0.1"
log-file = "${join(dir, "bearerbox.log")}"
log-level = 2
store-type = file
store-location = "${join(dir, "kannel.store")}"
dlr-storage = internal

${smsc}
group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = ${ports.smsbox}
sendsms-port = ${ports.sendsms}
sendsms-interface = 127.0.0.1
log-file = "${join(dir, "smsbox.log")}"
log-level = 2

group = sendsms-user
username = test
password = test-${ports.sendsms}
user-allow-ip = "127.0.0.1"
max-messages = 4
concatenation = true
`

/** A box of Kannel's, killed when the scope closes; its log's end is printed if the test fails while it runs. */
const box = (binary: string, config: string, dir: string) =>
  Effect.acquireRelease(
    Effect.sync(() => spawn(binary, ["-v", "2", config], { cwd: dir, stdio: "ignore" })),
    (child: ChildProcess) =>
      Effect.promise(() =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve()
          child.once("exit", () => resolve())
          child.kill("SIGKILL")
        })
      )
  )

/** Kannel's dlr-url receiver: GET /dlr?i=<message>&t=<type>; answers 200 and remembers the types per message. */
const dlrReceiver = Effect.acquireRelease(
  Effect.promise(() =>
    new Promise<{ readonly port: number; readonly server: http.Server; readonly types: Map<number, Array<number>> }>((resolve) => {
      const types = new Map<number, Array<number>>()
      const server = http.createServer((req, res) => {
        const url = new URL(req.url ?? "/", "http://127.0.0.1")
        const i = Number(url.searchParams.get("i"))
        types.set(i, [...(types.get(i) ?? []), Number(url.searchParams.get("t"))])
        res.writeHead(200, { "content-type": "text/plain" })
        res.end("ok")
      })
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        resolve({ port: typeof address === "object" && address !== null ? address.port : 0, server, types })
      })
    })
  ),
  (r) => Effect.promise(() => new Promise<void>((resolve) => r.server.close(() => resolve())))
)

const httpGet = (agent: http.Agent, port: number, path: string) =>
  new Promise<{ readonly status: number; readonly body: string }>((resolve) => {
    const req = http.get({ host: "127.0.0.1", port, path, agent }, (res) => {
      let body = ""
      res.on("data", (c: Buffer) => body += c.toString())
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on("error", (e) => resolve({ status: 0, body: e.message }))
    req.setTimeout(10_000, () => req.destroy(new Error("timeout")))
  })

describe.skipIf(!installed)("SMPP front with Kannel as the ESME", () => {
  it.live(`${loadSeconds} s of sendsms through Kannel: each accepted message reaches the SMSC once, each gets its delivered report`, () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({
        config: { smppServer: { enabled: true, host: "127.0.0.1", port: 0 }, callbacks: { pollIntervalMs: 20 } },
        link: { window: 50, tps: 5000 },
        simulator: { receiptDelayMs: 50 }
      })
      const port = Context.get(gw.context as Context.Context<SmppServer>, SmppServer).address.port
      const t = yield* signUp(gw.baseUrl)
      const made = yield* send("PUT", `${gw.baseUrl}/v1/apps/${t.appId}/smpp`, { systemId: "kannel01" }, t.userAuth)
      expect(made.status).toBe(200)

      const dir = yield* tempDir
      const ports = { admin: yield* freePort, smsbox: yield* freePort, sendsms: yield* freePort }
      const config = join(dir, "kannel.conf")
      writeFileSync(config, kannelConf(dir, ports, smscGroup(port, "kannel01", String(made.json.password))), { mode: 0o600 })
      const dlr = yield* dlrReceiver
      const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency })
      yield* Effect.addFinalizer(() => Effect.sync(() => agent.destroy()))
      const server = Context.get(gw.context as Context.Context<SmppServer>, SmppServer)

      // Kannel's own logs, when the test fails: why it did not bind, send or report.
      yield* Effect.addFinalizer((exit) =>
        Exit.isSuccess(exit) ? Effect.void : Effect.gen(function*() {
          for (const log of ["bearerbox.log", "smsbox.log"]) {
            const path = join(dir, log)
            if (existsSync(path)) console.error(`Kannel's ${log} (end):\n${readFileSync(path, "utf8").slice(-4000)}`)
          }
          const sql = yield* SqlClient.SqlClient
          const rows = yield* sql`SELECT url, state, COUNT(*) AS n, MAX(attempts) AS attempts, MAX(last_error) AS error
            FROM callback_outbox GROUP BY url, state`
          console.error(`the gateway's callback outbox: ${JSON.stringify(rows)}`)
        }).pipe(Effect.provideContext(gw.context as Context.Context<SqlClient.SqlClient>), Effect.ignore))
      yield* box(bearerbox, config, dir)
      yield* eventually("Kannel bound as a transceiver", Effect.sync(() =>
        server.binds().some((b) => b.appId === t.appId && b.mode === "transceiver")), { timeout: 30_000 })
      yield* box(smsbox, config, dir)
      yield* eventually("smsbox's sendsms port up", Effect.promise(() => httpGet(agent, ports.sendsms, "/").then((r) => r.status > 0)), {
        timeout: 30_000
      })

      const sendsms = (i: number) => {
        const dlrUrl = `http://127.0.0.1:${dlr.port}/dlr?i=${i}&t=%d`
        const query = `username=test&password=test-${ports.sendsms}&to=${encodeURIComponent(`+49151${String(10_000_000 + i)}`)}` +
          `&from=ACME&text=${encodeURIComponent(`kannel ${i}`)}&dlr-mask=1&dlr-url=${encodeURIComponent(dlrUrl)}`
        return httpGet(agent, ports.sendsms, `/cgi-bin/sendsms?${query}`)
      }
      const accepted: Array<number> = []
      const answers = new Map<string, number>()
      let next = 0
      const started = performance.now()
      const deadline = started + loadSeconds * 1000
      const worker = async () => {
        while (performance.now() < deadline) {
          const i = next++
          const r = await sendsms(i)
          const answer = `${r.status} ${r.body.trim()}`
          answers.set(answer, (answers.get(answer) ?? 0) + 1)
          if (r.status === 202) accepted.push(i)
        }
      }
      yield* Effect.promise(() => Promise.all(Array.from({ length: concurrency }, worker)))
      const acceptSeconds = (performance.now() - started) / 1000
      expect(accepted.length).toBeGreaterThan(0)

      const marker = /^kannel (\d+)$/
      const reachedSmsc = () =>
        Effect.map(gw.sim.received, (log) => {
          const counts = new Map<number, number>()
          for (const m of log) {
            const found = marker.exec(Buffer.from(m.shortMessage).toString("latin1"))
            if (found !== null) counts.set(Number(found[1]), (counts.get(Number(found[1])) ?? 0) + 1)
          }
          return counts
        })
      yield* eventually("every accepted message at the SMSC", Effect.map(reachedSmsc(), (c) => accepted.every((i) => c.has(i))), {
        timeout: 60_000,
        interval: 500
      })
      const submitSeconds = (performance.now() - started) / 1000
      const reports = () => {
        const byType: Record<string, number> = {}
        for (const types of dlr.types.values()) for (const t of types) byType[t] = (byType[t] ?? 0) + 1
        return { accepted: accepted.length, delivered: accepted.filter((i) => dlr.types.get(i)?.includes(1) === true).length, byType }
      }
      yield* eventually("a delivered report (type 1) at Kannel's dlr-url for every accepted message", Effect.sync(reports), {
        timeout: 60_000,
        interval: 500,
        until: (r) => r.delivered === r.accepted
      })
      const reportSeconds = (performance.now() - started) / 1000

      const counts = yield* reachedSmsc()
      const twice = accepted.filter((i) => (counts.get(i) ?? 0) !== 1)
      expect(twice).toEqual([])
      // Nothing reached the SMSC that Kannel did not accept.
      expect([...counts.keys()].filter((i) => !accepted.includes(i))).toEqual([])
      // Long texts: Kannel splits them into UDH-concatenated submit_sm; the gateway joins them into one message and
      // answers each part with its own id, and Kannel's report for the message comes back.
      const long = (i: number) => `kannel long ${i}: ${"a text longer than one SMS, so Kannel sends it in parts; ".repeat(5)}end`
      const longOnes = [900_001, 900_002, 900_003]
      for (const i of longOnes) {
        const dlrUrl = `http://127.0.0.1:${dlr.port}/dlr?i=${i}&t=%d`
        const query = `username=test&password=test-${ports.sendsms}&to=${encodeURIComponent(`+49151${String(30_000_000 + i)}`)}` +
          `&from=ACME&text=${encodeURIComponent(long(i))}&dlr-mask=1&dlr-url=${encodeURIComponent(dlrUrl)}`
        const r = yield* Effect.promise(() => httpGet(agent, ports.sendsms, `/cgi-bin/sendsms?${query}`))
        expect(r.status, r.body).toBe(202)
      }
      for (const i of longOnes) {
        const found = yield* eventually(`long message ${i} stored whole`, Effect.gen(function*() {
          const page = yield* get(`${gw.baseUrl}/v1/messages?to=${encodeURIComponent(`+49151${String(30_000_000 + i)}`)}`, t.auth)
          const [item] = (page.json.items ?? []) as ReadonlyArray<{ id: string }>
          if (item === undefined) return undefined
          return (yield* get(`${gw.baseUrl}/v1/messages/${item.id}`, t.auth)).json as { text: string; segments: number; status: string }
        }), { timeout: 30_000, until: (m) => m.status === "delivered" })
        expect(found.text).toBe(long(i))
        expect(found.segments).toBeGreaterThan(1)
        yield* eventually(`Kannel's delivered report for long message ${i}`, Effect.sync(() => dlr.types.get(i)?.includes(1) === true), {
          timeout: 30_000,
          until: (ok) => ok
        })
      }

      console.log(JSON.stringify({
        kannelThroughSmppFront: {
          loadSeconds,
          concurrency,
          accepted: accepted.length,
          acceptedPerSecond: Math.round(accepted.length / acceptSeconds),
          atSmscPerSecond: Math.round(accepted.length / submitSeconds),
          reportsPerSecond: Math.round(accepted.length / reportSeconds),
          answers: Object.fromEntries(answers)
        }
      }))
    }).pipe(Effect.scoped), 180_000)
})
