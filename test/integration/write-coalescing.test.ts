import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import net from "node:net"
import { coalesceWrites } from "../../src/smpp/WriteCoalescing.ts"
import { eventually } from "../fixtures/Eventually.ts"

/** A TCP server on loopback that answers each connection's bytes as they arrive, with the read count. */
const withPair = async (body: (client: net.Socket, received: () => { bytes: Buffer; reads: number }) => Promise<void>) => {
  const chunks: Array<Buffer> = []
  const server = net.createServer((s) => s.on("data", (c: Buffer) => chunks.push(c)))
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const port = (server.address() as net.AddressInfo).port
  const client = net.connect(port, "127.0.0.1")
  client.setNoDelay(true)
  await new Promise<void>((resolve) => client.once("connect", resolve))
  try {
    await body(client, () => ({ bytes: Buffer.concat(chunks), reads: chunks.length }))
  } finally {
    client.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
}

const until = (what: string, check: () => boolean) =>
  Effect.runPromise(eventually(what, Effect.sync(check), { timeout: 5_000, interval: 5 }))

describe("coalesceWrites", () => {
  it("sends the writes of one turn in one system call, in order, and later turns again", async () => {
    await withPair(async (client, received) => {
      coalesceWrites(client)
      // Count the writes that reach the socket's handle (one per system call).
      let handleWrites = 0
      const handle = (client as unknown as { _handle: Record<string, (...a: Array<unknown>) => unknown> })._handle
      for (const name of ["writeBuffer", "writev", "writeUtf8String", "writeLatin1String"]) {
        const original = handle[name]
        if (typeof original !== "function") continue
        handle[name] = (...a: Array<unknown>) => {
          handleWrites++
          return original.apply(handle, a)
        }
      }
      const pdus = Array.from({ length: 50 }, (_, i) => Buffer.from(`pdu-${String(i).padStart(2, "0")};`))
      for (const p of pdus) client.write(p)
      expect(client.writableCorked).toBe(1)
      await new Promise((r) => process.nextTick(r))
      expect(client.writableCorked).toBe(0)
      await until("every pdu received", () => received().bytes.length === pdus.length * 7)
      expect(received().bytes.toString()).toBe(Buffer.concat(pdus).toString())
      expect(handleWrites).toBe(1)
      // A later turn is not held back by the earlier cork.
      client.write(Buffer.from("late;"))
      await until("the late write received", () => received().bytes.toString().endsWith("late;"))
      expect(received().bytes.toString().endsWith("late;")).toBe(true)
      expect(handleWrites).toBe(2)
    })
  })

  it("without it, each write is its own system call (the control)", async () => {
    await withPair(async (client) => {
      let handleWrites = 0
      const handle = (client as unknown as { _handle: Record<string, (...a: Array<unknown>) => unknown> })._handle
      const original = handle.writeBuffer
      if (typeof original === "function") {
        handle.writeBuffer = (...a: Array<unknown>) => {
          handleWrites++
          return original.apply(handle, a)
        }
      }
      for (let i = 0; i < 10; i++) client.write(Buffer.from(`x${i};`))
      expect(handleWrites).toBe(10)
    })
  })
})
