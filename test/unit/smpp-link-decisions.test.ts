import { Result } from "effect"
import { describe, expect, it } from "vitest"
import {
  afterAttempt,
  decideSubmit,
  failoverAfterMs,
  isDown,
  notBound
} from "../../src/actors/SmppLinkDecisions.ts"
import { CommandStatus } from "../../src/smpp/CommandStatus.ts"
import { ConnectionLost, NotBound, SubmitRejected, SubmitTimeout, WindowTimeout } from "../../src/smpp/Session.ts"

const T0 = Date.UTC(2027, 4, 17, 12, 0, 0)

const rejected = (commandStatus: number) => decideSubmit(Result.fail(new SubmitRejected({ commandStatus })))

describe("SmppLink decisions: a submit_sm answer", () => {
  it("ok: the part is submitted under the SMSC's id, normalised, and the link counts a success", () => {
    expect(decideSubmit(Result.succeed({ messageId: " 00A1B2 " }))).toEqual({
      _tag: "Submitted",
      smscMessageId: "a1b2",
      health: true
    })
  })

  it("throttled (0x58): retried, the rate halved, the link throttled", () => {
    expect(rejected(CommandStatus.ESME_RTHROTTLED)).toEqual({
      _tag: "Retry",
      error: "ESME_RTHROTTLED",
      unknownOutcome: false,
      rebind: false,
      health: "throttled",
      rate: "throttled",
      commandStatus: 0x58
    })
  })

  it("queue full (0x14): retried, the rate quartered, an error for the link's health", () => {
    expect(rejected(CommandStatus.ESME_RMSGQFUL)).toEqual({
      _tag: "Retry",
      error: "ESME_RMSGQFUL",
      unknownOutcome: false,
      rebind: false,
      health: false,
      rate: "queueFull",
      commandStatus: 0x14
    })
  })

  it("transient (0x08, 0x45, 0x64, 0xFF, vendor 0x400–0x4FF): retried as an error of the link, the rate kept", () => {
    const codes = [
      [CommandStatus.ESME_RSYSERR, "ESME_RSYSERR"],
      [CommandStatus.ESME_RSUBMITFAIL, "ESME_RSUBMITFAIL"],
      [CommandStatus.ESME_RX_T_APPN, "ESME_RX_T_APPN"],
      [CommandStatus.ESME_RUNKNOWNERR, "ESME_RUNKNOWNERR"],
      [0x400, "0x400"],
      [0x4ff, "0x4FF"]
    ] as const
    for (const [code, name] of codes) {
      expect(rejected(code), name).toEqual({
        _tag: "Retry",
        error: name,
        unknownOutcome: false,
        rebind: false,
        health: false,
        rate: undefined,
        commandStatus: code
      })
    }
  })

  it("rebind (0x04): the session rebinds and the part is retried", () => {
    expect(rejected(CommandStatus.ESME_RINVBNDSTS)).toEqual({
      _tag: "Retry",
      error: "ESME_RINVBNDSTS",
      unknownOutcome: false,
      rebind: true,
      health: false,
      rate: undefined,
      commandStatus: 0x04
    })
  })

  it("permanent (0x0B, 0x01, 0x43, 0x62, 0xC4, an unknown code): the part fails naming the status; the link stays healthy", () => {
    expect(rejected(CommandStatus.ESME_RINVDSTADR)).toEqual({ _tag: "Failed", error: "ESME_RINVDSTADR (0x0b)", health: true, commandStatus: 0x0b })
    expect(rejected(CommandStatus.ESME_RINVMSGLEN)).toEqual({ _tag: "Failed", error: "ESME_RINVMSGLEN (0x01)", health: true, commandStatus: 0x01 })
    expect(rejected(CommandStatus.ESME_RINVESMCLASS)).toMatchObject({ _tag: "Failed", error: "ESME_RINVESMCLASS (0x43)" })
    expect(rejected(CommandStatus.ESME_RINVEXPIRY)).toMatchObject({ _tag: "Failed", error: "ESME_RINVEXPIRY (0x62)" })
    expect(rejected(CommandStatus.ESME_RINVOPTPARAMVAL)).toMatchObject({ _tag: "Failed", error: "ESME_RINVOPTPARAMVAL (0xc4)" })
    expect(rejected(0x9a)).toEqual({ _tag: "Failed", error: "0x9A (0x9a)", health: true, commandStatus: 0x9a })
  })

  it("timeout or connection lost: retried as an unknown outcome (the SMSC may have it), a timeout for the link", () => {
    for (const error of [new SubmitTimeout(), new ConnectionLost()]) {
      expect(decideSubmit(Result.fail(error))).toEqual({
        _tag: "Retry",
        error: error._tag,
        unknownOutcome: true,
        rebind: false,
        health: "timeout",
        rate: undefined
      })
    }
  })

  it("nothing sent (not bound, no window slot): retried, nothing learnt about the link", () => {
    for (const error of [new NotBound(), new WindowTimeout()]) {
      expect(decideSubmit(Result.fail(error))).toEqual({
        _tag: "Retry",
        error: error._tag,
        unknownOutcome: false,
        rebind: false,
        health: undefined,
        rate: undefined
      })
    }
    expect(notBound).toBe(new NotBound()._tag)
  })
})

describe("SmppLink decisions: the retry limit", () => {
  it("requeues with backoff (500 ms × 2ⁿ, at most 30 s) until maxRetries retries were made, then gives up", () => {
    expect(afterAttempt(0, 3, "ESME_RSYSERR")).toEqual({ _tag: "Requeue", delayMs: 500 })
    expect(afterAttempt(1, 3, "ESME_RSYSERR")).toEqual({ _tag: "Requeue", delayMs: 1000 })
    expect(afterAttempt(2, 3, "ESME_RSYSERR")).toEqual({ _tag: "Requeue", delayMs: 2000 })
    expect(afterAttempt(3, 3, "ESME_RSYSERR")).toEqual({ _tag: "GiveUp", error: "gave up after 4 attempts: ESME_RSYSERR" })
    expect(afterAttempt(0, 0, "SubmitTimeout")).toEqual({ _tag: "GiveUp", error: "gave up after 1 attempts: SubmitTimeout" })
    expect(afterAttempt(7, 20, "ESME_RTHROTTLED")).toEqual({ _tag: "Requeue", delayMs: 30_000 })
    expect(afterAttempt(19, 20, "ESME_RTHROTTLED")).toEqual({ _tag: "Requeue", delayMs: 30_000 })
  })

  it("a part waiting for a bind never gives up for it", () => {
    expect(afterAttempt(3, 3, notBound)).toEqual({ _tag: "Requeue", delayMs: 4000 })
    expect(afterAttempt(100, 3, notBound)).toEqual({ _tag: "Requeue", delayMs: 30_000 })
  })
})

describe("SmppLink decisions: down", () => {
  it("a disabled link is down at once; an unbound one after failoverAfterMs; a bound one never", () => {
    expect(isDown({ enabled: false, unboundSince: undefined }, T0)).toBe(true)
    expect(isDown({ enabled: true, unboundSince: undefined }, T0)).toBe(false)
    expect(isDown({ enabled: true, unboundSince: T0 }, T0 + failoverAfterMs - 1)).toBe(false)
    expect(isDown({ enabled: true, unboundSince: T0 }, T0 + failoverAfterMs)).toBe(true)
    expect(failoverAfterMs).toBe(1_000)
  })
})
