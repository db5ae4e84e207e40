import { describe, expect, it } from "@effect/vitest"
import { Effect, Result } from "effect"
import * as Simulator from "../../src/smpp/Simulator.ts"
import { serveControl } from "../../src/smpp/SimulatorControl.ts"
import { eventually } from "../fixtures/Eventually.ts"
import { bound, open, request as baseRequest } from "../fixtures/Smpp.ts"
import type { SubmitRequest } from "../../src/smpp/Session.ts"

const request = (overrides: Partial<SubmitRequest> = {}) =>
  baseRequest({ sourceAddr: "4930123456", sourceTon: 1, sourceNpi: 1, shortMessage: new TextEncoder().encode("ping"), ...overrides })


const text = (bytes: Uint8Array | undefined): string => new TextDecoder().decode(bytes)

const http = (port: number, method: string, path: string, body?: string) =>
  Effect.promise(async () => {
    const init: RequestInit = body === undefined ? { method } : { method, body, headers: { "content-type": "application/json" } }
    const res = await fetch(`http://127.0.0.1:${port}${path}`, init)
    return { status: res.status, json: (await res.json()) as Record<string, unknown> }
  })

describe("SMSC simulator", () => {
  it.live("issues decimal ids and re-prints them in hex in receipts", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.start({ messageIdFormat: "decimal", receiptIdFormat: "hex", receiptDelayMs: 5, receiptTlvs: true })
      const { session, delivers } = yield* open(sim)
      yield* bound(session)
      const { messageId } = yield* session.submit(request({ registeredDelivery: 1 }))
      expect(messageId).toMatch(/^\d+$/)
      yield* eventually("sim.stats: s.receiptsAcked === 1", sim.stats, { until: (s) => s.receiptsAcked === 1 })
      const hex = BigInt(messageId).toString(16).toUpperCase()
      expect(text(delivers[0]?.shortMessage)).toMatch(new RegExp(`^id:${hex} `))
      expect(delivers[0]?.receiptedMessageId).toBe(hex)
    }))

  it.live("issues hex ids and re-prints them in decimal in receipts", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.start({ receiptIdFormat: "decimal", receiptDelayMs: 5 })
      const { session, delivers } = yield* open(sim)
      yield* bound(session)
      const { messageId } = yield* session.submit(request({ registeredDelivery: 1 }))
      expect(messageId).toMatch(/^[0-9a-f]+$/)
      yield* eventually("sim.stats: s.receiptsAcked === 1", sim.stats, { until: (s) => s.receiptsAcked === 1 })
      expect(text(delivers[0]?.shortMessage)).toMatch(new RegExp(`^id:${BigInt(`0x${messageId}`).toString(10)} `))
    }))

  it.live("keeps receipts for a transmitter-only ESME until a receiver of its system_id binds", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.start({ receiptDelayMs: 5 })
      const { session: tx } = yield* open(sim, { bindMode: "transmitter" })
      yield* bound(tx)
      const { messageId } = yield* tx.submit(request({ registeredDelivery: 1 }))
      yield* eventually("sim.stats: s.receiptsQueued === 1", sim.stats, { until: (s) => s.receiptsQueued === 1 })
      const { session: otherRx } = yield* open(sim, { bindMode: "receiver", systemId: "other" })
      yield* bound(otherRx)
      expect((yield* sim.stats).receiptsQueued).toBe(1)
      const { session: rx, delivers } = yield* open(sim, { bindMode: "receiver" })
      yield* bound(rx)
      const stats = yield* eventually("sim.stats: s.receiptsAcked === 1", sim.stats, { until: (s) => s.receiptsAcked === 1 })
      expect(stats.receiptsQueued).toBe(0)
      expect(text(delivers[0]?.shortMessage)).toContain(`id:${messageId} `)
    }))

  it.live("sends failure-only receipts only for failures", () =>
    Effect.gen(function*() {
      const ok = yield* Simulator.start({ receiptDelayMs: 5 })
      const { session } = yield* open(ok)
      yield* bound(session)
      yield* session.submit(request({ registeredDelivery: 2 }))
      yield* session.submit(request({ registeredDelivery: 1 }))
      yield* eventually("ok.stats: s.receiptsAcked === 1", ok.stats, { until: (s) => s.receiptsAcked === 1 })
      // What is tested is that no second receipt comes: ten receipt delays without one.
      yield* Effect.sleep(50)
      expect((yield* ok.stats).receiptsSent).toBe(1)

      const failing = yield* Simulator.start({ receiptDelayMs: 5, receiptState: "EXPIRED" })
      const { session: other, delivers } = yield* open(failing)
      yield* bound(other)
      yield* other.submit(request({ registeredDelivery: 2 }))
      yield* eventually("failing.stats: s.receiptsAcked === 1", failing.stats, { until: (s) => s.receiptsAcked === 1 })
      expect(text(delivers[0]?.shortMessage)).toContain("stat:EXPIRED err:001")
    }))

  it.live("gives up redelivering after maxDeliveryAttempts", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.start({ receiptDelayMs: 5, maxDeliveryAttempts: 3 })
      const { session } = yield* open(sim, { onDeliver: () => Effect.fail("nope") })
      yield* bound(session)
      yield* session.submit(request({ registeredDelivery: 1 }))
      yield* eventually("sim.stats: s.receiptsNacked === 3", sim.stats, { until: (s) => s.receiptsNacked === 3 })
      // What is tested is that no fourth attempt comes: many receipt delays without one.
      yield* Effect.sleep(150)
      const stats = yield* sim.stats
      expect(stats.receiptsSent).toBe(3)
      expect(stats.receiptsAcked).toBe(0)
    }))

  it.live("keeps a bounded log of received messages and counts duplicates", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.start({ receivedLimit: 5 })
      const { session } = yield* open(sim, { window: 1 })
      yield* bound(session)
      for (let i = 0; i < 8; i++) yield* session.submit(request({ destinationAddr: `4915100000${i}` }))
      yield* session.submit(request({ destinationAddr: "4915100000" + "7" }))
      const received = yield* sim.received
      expect(received.map((m) => m.destinationAddr)).toEqual(
        ["49151000004", "49151000005", "49151000006", "49151000007", "49151000007"]
      )
      expect(text(received[0]?.shortMessage)).toBe("ping")
      const stats = yield* sim.stats
      expect(stats.submits).toBe(9)
      expect(stats.uniqueMessages).toBe(8)
    }))

  it.live("rejects binds and submits on command", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.start({})
      yield* sim.setFaults({ rejectBinds: 0x0d })
      const { session } = yield* open(sim)
      const refused = yield* eventually("session.state: s.counters.bindFailures >= 1", session.state, { until: (s) => s.counters.bindFailures >= 1 })
      expect(refused.counters.lastError).toContain("ESME_RBINDFAIL")
      yield* sim.setFaults({ submitStatus: 0x45 })
      yield* eventually("session.state: s.bound", session.state, { until: (s) => s.bound, timeout: 5_000 })
      const rejected = yield* Effect.result(session.submit(request()))
      expect(Result.isFailure(rejected) && rejected.failure._tag === "SubmitRejected" && rejected.failure.commandStatus)
        .toBe(0x45)
      const stats = yield* sim.stats
      expect(stats.bindsRejected).toBeGreaterThanOrEqual(1)
      expect(stats.submitsByStatus).toEqual({ "0x45": 1 })
    }))

  it.live("takes faults and commands over the HTTP control endpoint", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.start({})
      const control = yield* serveControl(sim, 0)
      const { session } = yield* open(sim)
      yield* bound(session)

      expect((yield* http(control.port, "POST", "/faults", JSON.stringify({ queueFull: true }))).status).toBe(200)
      const full = yield* Effect.result(session.submit(request()))
      expect(Result.isFailure(full) && full.failure._tag === "SubmitRejected" && full.failure.commandStatus).toBe(0x14)

      expect((yield* http(control.port, "POST", "/faults", JSON.stringify({ queueFull: "yes" }))).status).toBe(400)
      expect((yield* http(control.port, "DELETE", "/faults")).status).toBe(200)
      const { messageId } = yield* session.submit(request())

      const stats = yield* http(control.port, "GET", "/stats")
      expect(stats.json["submits"]).toBe(2)
      expect(stats.json["submitsByStatus"]).toEqual({ "0x14": 1, "0x00": 1 })
      const received = yield* Effect.promise(async () => {
        const res = await fetch(`http://127.0.0.1:${control.port}/received?limit=1`)
        return (await res.json()) as Array<{ messageId: string; shortMessage: string }>
      })
      expect(received).toEqual([expect.objectContaining({ messageId, shortMessage: "70696e67" })])

      expect((yield* http(control.port, "POST", "/drop")).status).toBe(200)
      yield* eventually("sim.stats: s.binds === 2 && s.boundSessions === 1", sim.stats, { until: (s) => s.binds === 2 && s.boundSessions === 1 })
      expect((yield* http(control.port, "GET", "/nope")).status).toBe(404)
    }))

  it.live("close stops the listener and drops the ESMEs", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.start({})
      const { session } = yield* open(sim)
      yield* bound(session)
      yield* sim.close
      const state = yield* eventually("session.state: !s.bound && s.counters.reconnects >= 2", session.state, { until: (s) => !s.bound && s.counters.reconnects >= 2 })
      expect(state.counters.lastError).toMatch(/ECONNREFUSED|connection closed/)
    }))
})
