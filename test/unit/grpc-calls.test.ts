import { describe, expect, it } from "vitest"
import { EventEmitter } from "node:events"
import { Calls, cancelSignal, peerAddress } from "../../src/grpc/Calls.ts"

describe("gRPC calls", () => {
  it("the peer's address without its port, whatever form grpc-js gives it", () => {
    expect(peerAddress("127.0.0.1:52044")).toBe("127.0.0.1")
    expect(peerAddress("::1:52044")).toBe("::1")
    expect(peerAddress("[::1]:52044")).toBe("::1")
    expect(peerAddress("::ffff:10.1.2.3:443")).toBe("::ffff:10.1.2.3")
    expect(peerAddress("2001:db8::7:8080")).toBe("2001:db8::7")
    expect(peerAddress("10.1.2.3")).toBe("10.1.2.3")
    expect(peerAddress("")).toBeUndefined()
  })

  it("a call's signal aborts when grpc-js says it was cancelled, or at once if it already was", () => {
    const call = Object.assign(new EventEmitter(), { cancelled: false })
    const signal = cancelSignal(call)
    expect(signal.aborted).toBe(false)
    call.emit("cancelled", "deadline")
    expect(signal.aborted).toBe(true)
    expect(cancelSignal(Object.assign(new EventEmitter(), { cancelled: true })).aborted).toBe(true)
  })

  it("calls in flight: each finish counts once", () => {
    const calls = new Calls()
    const a = calls.begin()
    const b = calls.begin()
    expect(calls.inFlight).toBe(2)
    a()
    a()
    expect(calls.inFlight).toBe(1)
    b()
    expect(calls.inFlight).toBe(0)
  })
})
