import { execFileSync } from "node:child_process"
import { createServer } from "node:net"
import type { Socket } from "node:net"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Logger, References, Result, Scope } from "effect"
import smpp from "smpp"
import * as Session from "../../src/smpp/Session.ts"
import type { SessionState } from "../../src/smpp/Session.ts"
import * as Simulator from "../../src/smpp/Simulator.ts"
import { eventually } from "../fixtures/Eventually.ts"
import { bound, open, request } from "../fixtures/Smpp.ts"


const failureTag = (result: Result.Result<unknown, { readonly _tag: string }>): string =>
  Result.isFailure(result) ? result.failure._tag : "Success"

describe("SmppSession against the simulator", () => {
  it.live("binds as transceiver, transmitter, receiver and pair", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.start({ password: "secret" })
      const expected: Record<string, ReadonlyArray<string>> = {
        transceiver: ["transceiver"],
        transmitter: ["transmitter"],
        receiver: ["receiver"],
        pair: ["transmitter", "receiver"]
      }
      let sessions = 0
      for (const mode of ["transceiver", "transmitter", "receiver", "pair"] as const) {
        const { session } = yield* open(sim, { bindMode: mode })
        const state: SessionState = yield* bound(session)
        sessions += expected[mode]?.length ?? 0
        expect(state.connections.map((c) => c.mode)).toEqual(expected[mode])
        expect(state.connections.every((c) => c.bound && c.since !== undefined)).toBe(true)
        expect(state.canSubmit).toBe(mode !== "receiver")
        const result = yield* Effect.result(session.submit(request()))
        expect(failureTag(result)).toBe(mode === "receiver" ? "NotBound" : "Success")
      }
      const stats = yield* sim.stats
      expect(stats.binds).toBe(sessions)
      expect(stats.boundSessions).toBe(sessions)
    }))

  it.live("submits raw octets and gets unique ids; long messages go in message_payload", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.start({})
      const { session } = yield* open(sim)
      yield* bound(session)
      const bytes = new Uint8Array([0x00, 0x1b, 0x3c, 0x80, 0xff, 0x41])
      const results = yield* Effect.all(
        Array.from({ length: 50 }, (_, i) =>
          session.submit(request({ destinationAddr: `49151000000${i}`, shortMessage: bytes, dataCoding: 0 }))),
        { concurrency: "unbounded" }
      )
      const ids = new Set(results.map((r) => r.messageId))
      expect(ids.size).toBe(50)
      const long = new Uint8Array(300).map((_, i) => i % 256)
      const { messageId } = yield* session.submit(request({ shortMessage: long, dataCoding: 0x08 }))
      const received = yield* sim.received
      expect(received).toHaveLength(51)
      expect(new Set(received.map((m) => m.messageId))).toEqual(new Set([...ids, messageId]))
      expect(Array.from(received[0]?.shortMessage ?? [])).toEqual(Array.from(bytes))
      const last = received[50]
      expect(last?.dataCoding).toBe(0x08)
      expect(Array.from(last?.shortMessage ?? [])).toEqual(Array.from(long))
      const state = yield* session.state
      expect(state.counters.submitted).toBe(51)
      expect(state.counters.submitOk).toBe(51)
      expect(state.windowInUse).toBe(0)
      expect((yield* sim.stats).uniqueMessages).toBe(51)
    }))

  it.live("never has more submits outstanding than the window", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.start({})
      yield* sim.setFaults({ responseDelayMs: 60 })
      const { session } = yield* open(sim, { window: 2 })
      yield* bound(session)
      let maxInUse = 0
      const watcher = yield* Effect.forkChild(Effect.forever(
        Effect.flatMap(session.state, (s) =>
          Effect.sync(() => {
            maxInUse = Math.max(maxInUse, s.windowInUse, ...s.connections.map((c) => c.inFlight))
          })).pipe(Effect.andThen(Effect.sleep(5)))
      ))
      const started = Date.now()
      const results = yield* Effect.all(
        Array.from({ length: 6 }, () => session.submit(request())),
        { concurrency: "unbounded" }
      )
      const elapsed = Date.now() - started
      yield* Fiber.interrupt(watcher)
      expect(results).toHaveLength(6)
      expect((yield* sim.stats).maxInFlight).toBe(2)
      expect(maxInUse).toBe(2)
      // three rounds of two at 60 ms each
      expect(elapsed).toBeGreaterThanOrEqual(170)
    }))

  it.live("a submit without response fails with SubmitTimeout after responseTimeoutMs", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.start({})
      const { session } = yield* open(sim, { responseTimeoutMs: 300 })
      yield* bound(session)
      yield* sim.setFaults({ stopAnswering: true })
      const started = Date.now()
      const result = yield* Effect.result(session.submit(request()))
      const elapsed = Date.now() - started
      expect(failureTag(result)).toBe("SubmitTimeout")
      expect(elapsed).toBeGreaterThanOrEqual(290)
      expect(elapsed).toBeLessThan(600)
      const state = yield* session.state
      expect(state.counters.timeouts).toBe(1)
      expect(state.windowInUse).toBe(0)
    }))

  it.live("a full window waits, then fails with WindowTimeout when no slot frees up", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.start({})
      const { session } = yield* open(sim, { window: 1, responseTimeoutMs: 300 })
      yield* bound(session)
      yield* sim.setFaults({ stopAnswering: true })
      // A holds the only slot until it times out at 300 ms; B takes it over then; C gives up waiting at ~320 ms.
      const a = yield* Effect.forkChild(Effect.result(session.submit(request())))
      yield* Effect.sleep(10)
      const b = yield* Effect.forkChild(Effect.result(session.submit(request())))
      yield* Effect.sleep(10)
      const c = yield* Effect.result(session.submit(request()))
      expect(failureTag(c)).toBe("WindowTimeout")
      expect(failureTag(yield* Fiber.join(a))).toBe("SubmitTimeout")
      expect(failureTag(yield* Fiber.join(b))).toBe("SubmitTimeout")
      const state = yield* session.state
      expect(state.counters.windowTimeouts).toBe(1)
      expect(state.counters.submitted).toBe(2)
    }))

  it.live("reconnects when enquire_link goes unanswered", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.start({})
      const { session } = yield* open(sim, { enquireLinkIntervalMs: 50, enquireLinkTimeoutMs: 100, responseTimeoutMs: 200 })
      yield* bound(session)
      yield* sim.setFaults({ stopAnswering: true })
      const down = yield* eventually("session.state: !s.bound", session.state, { until: (s) => !s.bound })
      expect(down.counters.lastError).toContain("enquire_link timeout")
      yield* sim.clearFaults
      const up = yield* eventually("session.state: s.bound && s.counters.reconnects > 0", session.state, { until: (s) => s.bound && s.counters.reconnects > 0 })
      expect(up.counters.enquireLinkSent).toBeGreaterThan(0)
      expect((yield* sim.stats).binds).toBeGreaterThanOrEqual(2)
      const { messageId } = yield* session.submit(request())
      expect(messageId).not.toBe("")
    }))

  it.live("a dropped connection fails every in-flight submit with ConnectionLost at once, then re-binds", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.start({})
      const { session } = yield* open(sim, { window: 4, responseTimeoutMs: 2_000 })
      yield* bound(session)
      yield* sim.setFaults({ responseDelayMs: 1_000 })
      const fibers = yield* Effect.forEach(
        Array.from({ length: 6 }),
        () => Effect.forkChild(Effect.result(session.submit(request())))
      )
      yield* eventually("session.state: s.windowInUse === 4", session.state, { until: (s) => s.windowInUse === 4 })
      const dropped = Date.now()
      yield* sim.dropConnections
      const results = yield* Effect.forEach(fibers, Fiber.join)
      expect(Date.now() - dropped).toBeLessThan(300)
      const tags = results.map(failureTag).sort()
      // four were on the wire; the two waiting for a slot were never sent
      expect(tags).toEqual(["ConnectionLost", "ConnectionLost", "ConnectionLost", "ConnectionLost", "NotBound", "NotBound"])
      yield* sim.clearFaults
      const state = yield* eventually("session.state: s.bound", session.state, { until: (s) => s.bound })
      expect(state.counters.connectionLost).toBe(4)
      expect(state.counters.reconnects).toBeGreaterThanOrEqual(1)
      expect(state.windowInUse).toBe(0)
      yield* session.submit(request())
    }))

  it.live("throttling answers 0x58 above the simulator's rate; a full queue answers 0x14", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.start({})
      const { session } = yield* open(sim, { window: 10 })
      yield* bound(session)
      yield* sim.setFaults({ throttleAboveTps: 5 })
      const results = yield* Effect.all(
        Array.from({ length: 20 }, () => Effect.result(session.submit(request()))),
        { concurrency: "unbounded" }
      )
      const statuses = results.map((r) =>
        Result.isSuccess(r) ? 0 : r.failure._tag === "SubmitRejected" ? r.failure.commandStatus : -1
      )
      expect(statuses.filter((s) => s === 0x58).length).toBeGreaterThan(0)
      expect(statuses.filter((s) => s === 0).length).toBeGreaterThan(0)
      expect(statuses.every((s) => s === 0 || s === 0x58)).toBe(true)

      yield* sim.setFaults({ queueFull: true })
      const full = yield* Effect.flip(session.submit(request()))
      expect(full._tag === "SubmitRejected" && full.commandStatus).toBe(0x14)
      const stats = yield* sim.stats
      expect(stats.submitsByStatus["0x14"]).toBe(1)
      expect(stats.submitsByStatus["0x58"]).toBe(statuses.filter((s) => s === 0x58).length)
    }))

  it.live("bad credentials leave the session unbound with the bind status in lastError", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.start({ systemId: "esme", password: "secret" })
      const { session } = yield* open(sim, { password: "wrong" })
      const state = yield* eventually("session.state: s.counters.bindFailures >= 1", session.state, { until: (s) => s.counters.bindFailures >= 1 })
      expect(state.bound).toBe(false)
      expect(state.counters.lastError).toContain("ESME_RINVPASWD")
      expect(failureTag(yield* Effect.result(session.submit(request())))).toBe("NotBound")
      const { session: wrongId } = yield* open(sim, { systemId: "other" })
      const other = yield* eventually("wrongId.state: s.counters.bindFailures >= 1", wrongId.state, { until: (s) => s.counters.bindFailures >= 1 })
      expect(other.counters.lastError).toContain("ESME_RINVSYSID")
      expect((yield* sim.stats).binds).toBe(0)
    }))

  it.live("a link that cannot connect says so once per reason, not once per retry", () =>
    Effect.gen(function*() {
      const warnings: Array<{ message: string; error: unknown }> = []
      const logger = Logger.make((options) => {
        if (options.logLevel !== "Warn") return
        const error = options.fiber.getRef(References.CurrentLogAnnotations).error
        warnings.push({ message: String(options.message), error })
      })
      // A port nothing listens on: every attempt is refused, the session retries every 20–200 ms.
      const closed = yield* Effect.promise(() => new Promise<number>((resolve) => {
        const server = createServer().listen(0, "127.0.0.1", () => {
          const address = server.address()
          server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0))
        })
      }))
      const { session } = yield* open({ port: closed }).pipe(Effect.provide(Logger.layer([logger])))
      yield* eventually("five attempts refused", session.state, { until: (s) => s.counters.reconnects >= 5 })
      const failed = warnings.filter((w) => w.message === "smpp connection failed, retrying")
      expect(failed).toHaveLength(1)
      expect(String(failed[0]!.error)).toContain("ECONNREFUSED")
    }))

  it.live("receipts arrive through onDeliver in text form and are acknowledged", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.start({ receiptDelayMs: 20 })
      const { session, delivers } = yield* open(sim)
      yield* bound(session)
      const { messageId } = yield* session.submit(request({ registeredDelivery: 1, shortMessage: new TextEncoder().encode("Hello there") }))
      yield* session.submit(request({ registeredDelivery: 0 }))
      yield* eventually("sim.stats: s.receiptsAcked === 1", sim.stats, { until: (s) => s.receiptsAcked === 1 })
      expect(delivers).toHaveLength(1)
      const receipt = delivers[0]
      expect(receipt?.esmClass).toBe(0x04)
      const text = new TextDecoder().decode(receipt?.shortMessage)
      expect(text).toMatch(new RegExp(`^id:${messageId} sub:001 dlvrd:001 submit date:\\d{10} done date:\\d{10} stat:DELIVRD err:000 text:Hello there$`))
      expect(receipt?.receiptedMessageId).toBeUndefined()
      expect(receipt?.sourceAddr).toBe("4915112345678")
      expect(receipt?.destinationAddr).toBe("Acme")
      expect((yield* session.state).counters.deliversReceived).toBe(1)
    }))

  it.live("receipts carry receipted_message_id and message_state TLVs when asked", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.start({ receiptDelayMs: 10, receiptTlvs: true, receiptState: "UNDELIV" })
      const { session, delivers } = yield* open(sim)
      yield* bound(session)
      const { messageId } = yield* session.submit(request({ registeredDelivery: 1 }))
      yield* eventually("sim.stats: s.receiptsAcked === 1", sim.stats, { until: (s) => s.receiptsAcked === 1 })
      const receipt = delivers[0]
      expect(receipt?.receiptedMessageId).toBe(messageId)
      expect(receipt?.messageState).toBe(5)
      expect(Array.from(receipt?.networkErrorCode ?? [])).toEqual([3, 0, 1])
      expect(new TextDecoder().decode(receipt?.shortMessage)).toContain("stat:UNDELIV")
    }))

  it.live("a failing onDeliver answers 0x64 and the simulator redelivers", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.start({ receiptDelayMs: 10 })
      let calls = 0
      const { session } = yield* open(sim, {
        onDeliver: () => Effect.suspend(() => (++calls === 1 ? Effect.fail("store down") : Effect.void))
      })
      yield* bound(session)
      yield* session.submit(request({ registeredDelivery: 1 }))
      const stats = yield* eventually("sim.stats: s.receiptsAcked === 1", sim.stats, { until: (s) => s.receiptsAcked === 1 })
      expect(stats.receiptsNacked).toBe(1)
      expect(stats.receiptsSent).toBe(2)
      const state = yield* session.state
      expect(state.counters.deliversReceived).toBe(2)
      expect(state.counters.deliverErrors).toBe(1)
    }))

  it.live("a submit_sm_resp message_id beyond 64 characters is not kept: the submit succeeds without an id", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.start({})
      const { session } = yield* open(sim)
      yield* bound(session)
      yield* sim.setFaults({ messageId: "f".repeat(64) })
      expect((yield* session.submit(request())).messageId).toBe("f".repeat(64))
      yield* sim.setFaults({ messageId: "9".repeat(10_000) })
      expect((yield* session.submit(request())).messageId).toBe("")
      yield* sim.setFaults({ messageId: "ab\u0007cd" })
      expect((yield* session.submit(request())).messageId).toBe("")
      const state = yield* session.state
      expect(state.counters.submitOk).toBe(3)
      expect(state.counters.invalidMessageIds).toBe(2)
      expect(state.bound).toBe(true)
    }))

  it.live("a deliver_sm with an address beyond 21 octets is refused with ESME_RINVSRCADR / RINVDSTADR, unseen by onDeliver", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.start({ maxDeliveryAttempts: 1 })
      const { session, delivers } = yield* open(sim)
      yield* bound(session)
      const text = new TextEncoder().encode("Hi")
      yield* sim.deliverMo({ sourceAddr: "1".repeat(21), destinationAddr: "12345", shortMessage: text })
      yield* sim.deliverMo({ sourceAddr: "4917600000001", destinationAddr: "2".repeat(21), shortMessage: text })
      yield* sim.deliverMo({ sourceAddr: "1".repeat(20), destinationAddr: "2".repeat(20), shortMessage: text })
      const stats = yield* eventually("sim.stats: s.mosAcked === 1 && s.receiptsNacked === 2", sim.stats, { until: (s) => s.mosAcked === 1 && s.receiptsNacked === 2 })
      expect(stats.nacksByStatus).toEqual({ "0x0a": 1, "0x0b": 1 })
      expect(delivers.map((d) => d.sourceAddr)).toEqual(["1".repeat(20)])
      expect((yield* session.state).counters.deliversRefused).toBe(2)
    }))

  it.live("an onDeliver failing with DeliverRefused answers its status (not 0x64), so the SMSC does not redeliver", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.start({ receiptDelayMs: 10 })
      const { session } = yield* open(sim, {
        onDeliver: () => Effect.fail(new Session.DeliverRefused({ commandStatus: 0x65 }))
      })
      yield* bound(session)
      yield* session.submit(request({ registeredDelivery: 1 }))
      const stats = yield* eventually("sim.stats: s.receiptsNacked >= 1", sim.stats, { until: (s) => s.receiptsNacked >= 1 })
      expect(stats.nacksByStatus).toEqual({ "0x65": stats.receiptsNacked })
      const state = yield* session.state
      expect(state.counters.deliversRefused).toBe(stats.receiptsNacked)
      expect(state.counters.deliverErrors).toBe(0)
    }))

  it.live("in pair mode the receipt of a transmitter submit arrives on the receiver", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.start({ receiptDelayMs: 10 })
      const { session, delivers } = yield* open(sim, { bindMode: "pair" })
      yield* bound(session)
      const { messageId } = yield* session.submit(request({ registeredDelivery: 1 }))
      yield* eventually("sim.stats: s.receiptsAcked === 1", sim.stats, { until: (s) => s.receiptsAcked === 1 })
      expect(delivers[0]?.connectionId).toContain("/receiver#")
      expect(new TextDecoder().decode(delivers[0]?.shortMessage)).toContain(`id:${messageId} `)
    }))

  it.live("MO messages reach onDeliver as raw octets", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.start({})
      const { session, delivers } = yield* open(sim)
      yield* bound(session)
      const ucs2 = new Uint8Array([0xd8, 0x3d, 0xde, 0x00])
      yield* sim.deliverMo({ sourceAddr: "4917600000001", destinationAddr: "12345", shortMessage: ucs2, dataCoding: 0x08 })
      yield* eventually("sim.stats: s.mosAcked === 1", sim.stats, { until: (s) => s.mosAcked === 1 })
      expect(delivers[0]?.dataCoding).toBe(0x08)
      expect(delivers[0]?.esmClass).toBe(0)
      expect(Array.from(delivers[0]?.shortMessage ?? [])).toEqual([0xd8, 0x3d, 0xde, 0x00])
    }))

  it.live("an unbind from the SMSC is answered and the session binds again", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.start({})
      const changes: Array<boolean> = []
      const { session } = yield* open(sim, { onStateChange: (s) => Effect.sync(() => void changes.push(s.bound)) })
      yield* bound(session)
      yield* sim.unbindAll
      const state = yield* eventually("session.state: s.bound && s.counters.reconnects >= 1", session.state, { until: (s) => s.bound && s.counters.reconnects >= 1 })
      expect(state.counters.lastError).toContain("unbind from SMSC")
      expect((yield* sim.stats).binds).toBe(2)
      expect(changes).toEqual([true, false, true])
    }))

  it.live("a PDU the library cannot parse drops the connection and a fresh session binds again", () =>
    Effect.gen(function*() {
      let connections = 0
      const sockets = new Set<Socket>()
      const server = createServer((socket) => {
        const n = ++connections
        sockets.add(socket)
        socket.on("error", () => undefined)
        socket.once("data", (bind) => {
          const resp = new smpp.PDU("bind_transceiver_resp", { sequence_number: bind.readUInt32BE(12), system_id: "raw" })
          socket.write(resp.toBuffer())
          // command_length far above the library's 16 KiB limit: its reader throws and would stall for good
          if (n === 1) socket.write(Buffer.from([0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0x15, 0, 0, 0, 0, 0, 0, 0, 1]))
        })
      })
      const port = yield* Effect.acquireRelease(
        Effect.callback<number>((resume) => {
          server.listen(0, "127.0.0.1", () => {
            const address = server.address()
            resume(Effect.succeed(typeof address === "object" && address !== null ? address.port : 0))
          })
        }),
        () => Effect.callback<void>((resume) => {
          for (const socket of sockets) socket.destroy()
          server.close(() => resume(Effect.void))
        })
      )
      const { session } = yield* open({ port })
      const state = yield* eventually("session.state: s.bound && s.counters.reconnects >= 1", session.state, { until: (s) => s.bound && s.counters.reconnects >= 1 })
      expect(connections).toBe(2)
      expect(state.connections[0]?.id).toContain("#2")
      expect(state.counters.lastError).toContain("PDU length was too large")
    }))

  it.live("rebind drops and binds again at once", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.start({})
      const { session } = yield* open(sim, { reconnect: { initialMs: 5_000, maxMs: 10_000 } })
      yield* bound(session)
      yield* session.rebind
      const state = yield* eventually("session.state: s.bound && s.counters.reconnects === 1", session.state, { until: (s) => s.bound && s.counters.reconnects === 1, timeout: 1_000 })
      expect(state.connections[0]?.id).toContain("#2")
      const stats = yield* sim.stats
      expect(stats.binds).toBe(2)
      expect(stats.unbindsReceived).toBe(1)
    }))

  it.live("closing the scope unbinds and fails in-flight submits with ConnectionLost", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.start({})
      const scope = yield* Scope.make()
      const { session } = yield* Scope.provide(open(sim, { responseTimeoutMs: 5_000 }), scope)
      yield* bound(session)
      yield* sim.setFaults({ responseDelayMs: 3_000 })
      const inFlight = yield* Effect.forkChild(Effect.result(session.submit(request())))
      yield* eventually("session.state: s.windowInUse === 1", session.state, { until: (s) => s.windowInUse === 1 })
      const started = Date.now()
      yield* Scope.close(scope, Exit.void)
      expect(Date.now() - started).toBeLessThan(1_000)
      expect(failureTag(yield* Fiber.join(inFlight))).toBe("ConnectionLost")
      const stats = yield* eventually("sim.stats: s.boundSessions === 0", sim.stats, { until: (s) => s.boundSessions === 0 })
      expect(stats.unbindsReceived).toBe(1)
      expect(failureTag(yield* Effect.result(session.submit(request())))).toBe("NotBound")
    }))

  it.live("binds over TLS", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(join(tmpdir(), "smpp-tls-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
      execFileSync("openssl", [
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
        "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem")
      ], { stdio: "ignore" })
      const cert = readFileSync(join(dir, "cert.pem"), "utf8")
      const key = readFileSync(join(dir, "key.pem"), "utf8")
      const sim = yield* Simulator.start({ tls: { key, cert }, receiptDelayMs: 10 })
      const { session, delivers } = yield* open(sim, { tls: { ca: cert } })
      yield* bound(session)
      const { messageId } = yield* session.submit(request({ registeredDelivery: 1 }))
      yield* eventually("sim.stats: s.receiptsAcked === 1", sim.stats, { until: (s) => s.receiptsAcked === 1 })
      expect(new TextDecoder().decode(delivers[0]?.shortMessage)).toContain(`id:${messageId} `)

      const { session: untrusted } = yield* open(sim, { tls: true })
      const state = yield* eventually("untrusted.state: s.counters.lastError !== undefined", untrusted.state, { until: (s) => s.counters.lastError !== undefined })
      expect(state.bound).toBe(false)
      expect(state.counters.lastError).toMatch(/certificate/i)
    }))
})
