/**
 * Starts what the browser tests run against: the Message Center built (if its sources changed), a real SMTP server
 * whose mails are written to files (tests read invitation links from them), and one gateway process — SQLite in a
 * temporary folder, its SMSC simulator with receipts, a superadmin, status callbacks allowed to loopback with a short
 * retry window. Its address reaches the tests in the environment.
 */
import { spawn } from "node:child_process"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { SMTPServer } from "smtp-server"
import { Effect } from "effect"
import { freePort as processPort } from "../fixtures/Processes.ts"
import { buildWeb } from "../../web/build.ts"
import { operator } from "./operator.ts"

const freePort = () => Effect.runPromise(processPort)

const waitFor = async (what: string, check: () => Promise<boolean>, timeoutMs: number, output: () => string) => {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  throw new Error(`${what} within ${timeoutMs} ms; gateway output:\n${output()}`)
}

export default async function globalSetup() {
  await buildWeb({ ifChanged: true })
  const dir = mkdtempSync(join(tmpdir(), "smsgw-web-"))
  const mailDir = join(dir, "mail")
  mkdirSync(mailDir)
  let mails = 0
  const smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS", "AUTH"],
    logger: false,
    onData(stream, _session, callback) {
      const chunks: Array<Buffer> = []
      stream.on("data", (chunk: Buffer) => chunks.push(chunk))
      stream.on("end", () => {
        writeFileSync(join(mailDir, `${String(++mails).padStart(5, "0")}.eml`), Buffer.concat(chunks))
        callback()
      })
    }
  })
  const smtpPort = await freePort()
  await new Promise<void>((resolve) => smtp.listen(smtpPort, "127.0.0.1", resolve))

  const [httpPort, smscPort, controlPort, smppPort] = [await freePort(), await freePort(), await freePort(), await freePort()]
  const baseUrl = `http://127.0.0.1:${httpPort}`
  const config = {
    http: { port: httpPort, host: "127.0.0.1" },
    grpc: { port: 0 },
    storage: { kind: "sqlite", path: join(dir, "gateway.db") },
    objectStore: { kind: "local", root: join(dir, "objects") },
    simulator: { enabled: true, port: smscPort, systemId: "web", password: "web", receiptDelayMs: 300, receiptState: "DELIVRD", controlPort },
    links: [{ id: "demo", host: "127.0.0.1", port: smscPort, systemId: "web", password: "web", window: 10, tps: 200 }],
    recovery: { idleSeconds: 5, intervalSeconds: 2 },
    // For apps.spec's SMPP access journey: client ESMEs bind here.
    smppServer: { enabled: true, host: "127.0.0.1", port: smppPort },
    // For callbacks.spec.ts (no other spec sets a callback URL): its receiver is on 127.0.0.1, and a failing callback
    // must wait for the test's replay: its retry comes at the end of a 45 s window (almost surely; the backoff's jitter
    // is drawn from an hour), where it dies if still refused.
    callbacks: { allowPrivateNetworks: true, pollIntervalMs: 100, maxAgeSeconds: 45, backoff: { initialMs: 3_600_000, maxMs: 3_600_000 } },
    auth: {
      superadmin: { email: operator.email, password: operator.password, name: "Olga Operator" },
      // Every test registers its own people from 127.0.0.1.
      loginThrottle: { registrations: { max: 10_000, windowSeconds: 3600 }, perIp: { max: 10_000, windowSeconds: 300 } }
    },
    mail: { smtp: { host: "127.0.0.1", port: smtpPort }, from: "Message Center <mc@example.test>", publicUrl: baseUrl }
  }
  const configPath = join(dir, "gateway.json")
  writeFileSync(configPath, JSON.stringify(config))
  const child = spawn(process.execPath, ["--no-warnings", "src/cli/main.ts", "serve", "--config", configPath], {
    stdio: ["ignore", "pipe", "pipe"]
  })
  let output = ""
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-20_000)
  }
  child.stdout.on("data", keep)
  child.stderr.on("data", keep)
  await waitFor("the gateway ready", async () => {
    if (child.exitCode !== null) throw new Error(`the gateway exited (${child.exitCode}):\n${output}`)
    return (await fetch(`${baseUrl}/readyz`, { signal: AbortSignal.timeout(2_000) })).status === 200
  }, 60_000, () => output)

  process.env.SMSGW_WEB_BASE_URL = baseUrl
  process.env.SMSGW_WEB_MAIL_DIR = mailDir
  process.env.SMSGW_WEB_SIM_CONTROL = `http://127.0.0.1:${controlPort}`
  process.env.SMSGW_WEB_SMPP_PORT = String(smppPort)

  return async () => {
    child.kill("SIGTERM")
    await new Promise((resolve) => {
      const timer = setTimeout(() => {
        child.kill("SIGKILL")
        resolve(undefined)
      }, 10_000)
      child.once("exit", () => {
        clearTimeout(timer)
        resolve(undefined)
      })
    })
    await new Promise<void>((resolve) => smtp.close(() => resolve()))
    rmSync(dir, { recursive: true, force: true })
  }
}
