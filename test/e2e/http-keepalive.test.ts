import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import net from "node:net"
import { startGateway } from "../fixtures/Gateway.ts"

/** One raw HTTP/1.1 connection: requests written by hand, so the test sees exactly when the server closes it. */
const connection = (port: number) =>
  Effect.promise(() =>
    new Promise<{
      readonly ask: (path: string) => Promise<string>
      readonly closedAt: () => number | undefined
      readonly end: () => void
    }>((resolve, reject) => {
      const socket = net.connect(port, "127.0.0.1")
      let buffer = ""
      let waiting: ((text: string) => void) | undefined
      let closedAt: number | undefined
      socket.setEncoding("utf8")
      socket.on("data", (chunk: string) => {
        buffer += chunk
        const end = buffer.indexOf("\r\n\r\n")
        const length = /content-length: (\d+)/i.exec(buffer)?.[1]
        if (end >= 0 && length !== undefined && buffer.length >= end + 4 + Number(length)) {
          const answer = buffer
          buffer = ""
          waiting?.(answer)
        }
      })
      socket.on("close", () => (closedAt = Date.now()))
      socket.once("error", reject)
      socket.once("connect", () =>
        resolve({
          ask: (path) =>
            new Promise((done) => {
              waiting = done
              socket.write(`GET ${path} HTTP/1.1\r\nHost: gateway\r\nConnection: keep-alive\r\n\r\n`)
            }),
          closedAt: () => closedAt,
          end: () => socket.destroy()
        })
      )
    })
  )

describe("HTTP keep-alive", () => {
  it.live("an idle connection outlives Node's 5 s default, so a load balancer's reuse of it does not fail", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway()
      const port = Number(new URL(gw.baseUrl).port)
      const conn = yield* connection(port)
      const first = yield* Effect.promise(() => conn.ask("/healthz"))
      expect(first.startsWith("HTTP/1.1 200")).toBe(true)
      expect(first.toLowerCase()).toContain("keep-alive")
      yield* Effect.sleep("6500 millis")
      expect(conn.closedAt()).toBeUndefined()
      const second = yield* Effect.promise(() => conn.ask("/healthz"))
      expect(second.startsWith("HTTP/1.1 200")).toBe(true)
      conn.end()
    }).pipe(Effect.scoped), 30_000)
})
