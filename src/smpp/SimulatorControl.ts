/**
 * An HTTP control endpoint for a running SMSC simulator, so faults can be injected from outside
 * (`smsgw smsc-sim --control-port`):
 *   POST /faults (JSON Faults) · DELETE /faults · POST /drop · POST /unbind · GET /stats · GET /received?limit=N
 *   POST /mo `{ "from": "4915112345678", "to": "12345", "text": "STOP" }`: a handset's message to the gateway
 */
import { createServer } from "node:http"
import type { IncomingMessage, ServerResponse } from "node:http"
import { Effect, Schema } from "effect"
import type { Scope } from "effect"
import { Faults, moParts, SimulatorStartError } from "./Simulator.ts"
import type { SmscSimulator } from "./Simulator.ts"

const decodeFaults = Schema.decodeUnknownSync(Faults)

const Address = Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(20))
const decodeMo = Schema.decodeUnknownSync(Schema.Struct({
  from: Address,
  to: Address,
  text: Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(1600))
}), { onExcessProperty: "error" })

const MAX_BODY = 64 * 1024

const readBody = (req: IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    let body = ""
    req.setEncoding("utf8")
    req.on("data", (chunk: string) => {
      body += chunk
      if (body.length > MAX_BODY) reject(new Error("body too large"))
    })
    req.on("end", () => resolve(body))
    req.on("error", reject)
  })

const reply = (res: ServerResponse, status: number, body: unknown): void => {
  res.writeHead(status, { "content-type": "application/json" })
  res.end(JSON.stringify(body))
}

const received = async (sim: SmscSimulator, limitParam: string | null) => {
  const limit = Math.max(0, Math.min(10_000, Number(limitParam ?? "100") || 0))
  const all = await Effect.runPromise(sim.received)
  return all.slice(Math.max(0, all.length - limit)).map((m) => ({
    ...m,
    shortMessage: Buffer.from(m.shortMessage.buffer, m.shortMessage.byteOffset, m.shortMessage.byteLength).toString("hex")
  }))
}

const handle = async (sim: SmscSimulator, req: IncomingMessage, res: ServerResponse): Promise<void> => {
  const url = new URL(req.url ?? "/", "http://control")
  const route = `${req.method ?? "GET"} ${url.pathname}`
  switch (route) {
    case "POST /faults": {
      let faults: Faults
      try {
        faults = decodeFaults(JSON.parse(await readBody(req)))
      } catch (error) {
        reply(res, 400, { error: error instanceof Error ? error.message : String(error) })
        return
      }
      await Effect.runPromise(sim.setFaults(faults))
      reply(res, 200, { faults })
      return
    }
    case "POST /mo": {
      let parts
      try {
        parts = moParts(decodeMo(JSON.parse(await readBody(req))))
      } catch (error) {
        reply(res, 400, { error: error instanceof Error ? error.message : String(error) })
        return
      }
      for (const part of parts) await Effect.runPromise(sim.deliverMo(part))
      reply(res, 202, { parts: parts.length })
      return
    }
    case "DELETE /faults":
      await Effect.runPromise(sim.clearFaults)
      reply(res, 200, { faults: {} })
      return
    case "POST /drop":
      await Effect.runPromise(sim.dropConnections)
      reply(res, 200, { dropped: true })
      return
    case "POST /unbind":
      await Effect.runPromise(sim.unbindAll)
      reply(res, 200, { unbound: true })
      return
    case "GET /stats":
      reply(res, 200, await Effect.runPromise(sim.stats))
      return
    case "GET /received":
      reply(res, 200, await received(sim, url.searchParams.get("limit")))
      return
    default:
      reply(res, 404, { error: `no route ${route}` })
  }
}

/** Serves the control endpoint on `host:port` (0 = random) until the scope closes; returns the bound port. */
export const serveControl = (
  sim: SmscSimulator,
  port: number,
  host = "127.0.0.1"
): Effect.Effect<{ readonly port: number }, SimulatorStartError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.callback<{ readonly server: ReturnType<typeof createServer>; readonly port: number }, SimulatorStartError>(
      (resume) => {
        const server = createServer((req, res) => {
          handle(sim, req, res).catch((error: unknown) => {
            if (!res.headersSent) reply(res, 500, { error: error instanceof Error ? error.message : String(error) })
            else res.destroy()
          })
        })
        server.once("error", (error) => resume(Effect.fail(new SimulatorStartError({ message: error.message }))))
        server.listen(port, host, () => {
          const address = server.address()
          resume(Effect.succeed({ server, port: typeof address === "object" && address !== null ? address.port : port }))
        })
      }
    ),
    ({ server }) =>
      Effect.callback<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map(({ port }) => ({ port })))
