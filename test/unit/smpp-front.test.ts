/**
 * The SMPP front's decisions without sockets: each pipeline refusal's command_status, a submit_sm read into the
 * pipeline's input, the receipts and inbound messages it sends, and SMPP credentials' rules.
 */
import { describe, expect, it } from "@effect/vitest"
import { Result } from "effect"
import smpp from "smpp"
import { newSmppPassword, systemIdProblem } from "../../src/auth/SmppCredentials.ts"
import { InvalidField, NoRoute, PolicyRejected, StoreUnavailable } from "../../src/domain/Errors.ts"
import { smppCallbackUrl } from "../../src/domain/Callback.ts"
import { deliverFieldsOf, eventsOf, statusOf, submitInput, textOf } from "../../src/pipeline/SmppFront.ts"
import { RateLimited } from "../../src/ratelimit/RateLimiter.ts"
import { CommandStatus } from "../../src/smpp/CommandStatus.ts"
import { encodeUcs2 } from "../../src/smpp/Encoding.ts"
import { formatReceipt, parseReceipt } from "../../src/smpp/Receipt.ts"
import { useRawMessageBytes } from "../../src/smpp/Session.ts"

useRawMessageBytes()

describe("SMPP front decisions", () => {
  it("each refusal of the pipeline has its command_status", () => {
    expect(statusOf(new InvalidField({ field: "text", message: "too long" }))).toBe(CommandStatus.ESME_RINVMSGLEN)
    expect(statusOf(new InvalidField({ field: "to", message: "bad" }))).toBe(CommandStatus.ESME_RINVDSTADR)
    expect(statusOf(new InvalidField({ field: "messageClass", message: "no" }))).toBe(CommandStatus.ESME_RSUBMITFAIL)
    expect(statusOf(new NoRoute({ message: "none" }))).toBe(CommandStatus.ESME_RINVDSTADR)
    expect(statusOf(new PolicyRejected({ reason: "blacklisted", ruleId: "dnd", messageId: "m" }))).toBe(CommandStatus.ESME_RX_R_APPN)
    expect(statusOf(new PolicyRejected({ reason: "quiet_hours", ruleId: "night", messageId: "m" }))).toBe(CommandStatus.ESME_RX_T_APPN)
    expect(statusOf(new StoreUnavailable({ message: "down" }))).toBe(CommandStatus.ESME_RSYSERR)
    expect(statusOf(new RateLimited({ policy: "app", retryAfterSeconds: 1, layer: "L1", policies: [] }))).toBe(CommandStatus.ESME_RTHROTTLED)
  })

  it("a submit_sm read by data_coding, its addresses as the pipeline reads them; what is refused before it", () => {
    const pdu = (fields: ConstructorParameters<typeof smpp.PDU>[1]) => new smpp.PDU("submit_sm", fields)
    expect(submitInput(pdu({ source_addr_ton: 1, source_addr: "4930123456", destination_addr: "4915112345678", data_coding: 0, short_message: Buffer.from("Hi @ home") })))
      .toEqual(Result.succeed({ input: { to: "+4915112345678", from: "+4930123456", text: "Hi ¡ home", encoding: "auto" }, concat: undefined }))
    expect(Result.getOrThrow(submitInput(pdu({ source_addr_ton: 5, source_addr: "ACME", destination_addr: "+4915112345678", data_coding: 8, short_message: encodeUcs2("Grüße") }))))
      .toMatchObject({ input: { to: "+4915112345678", from: "ACME", text: "Grüße", encoding: "ucs2" } })
    // A UDH that is no concatenation header is refused; a part is read after its header, with its place.
    expect(submitInput(pdu({ destination_addr: "49151", esm_class: 0x40, short_message: Buffer.from("x") }))).toEqual(Result.fail(CommandStatus.ESME_RINVESMCLASS))
    expect(Result.getOrThrow(submitInput(pdu({ destination_addr: "49151", esm_class: 0x40, short_message: Buffer.from([5, 0x00, 3, 0x2a, 3, 2, 0x41, 0x42]) }))))
      .toMatchObject({ input: { text: "AB" }, concat: { ref: 0x2a, total: 3, seq: 2 } })
    expect(submitInput(pdu({ destination_addr: "49151", short_message: Buffer.alloc(0) }))).toEqual(Result.fail(CommandStatus.ESME_RINVMSGLEN))
    expect(submitInput(pdu({ destination_addr: "49151", data_coding: 4, short_message: Buffer.from([1]) }))).toEqual(Result.fail(CommandStatus.ESME_RSUBMITFAIL))
    expect(submitInput(pdu({ destination_addr: "49151", schedule_delivery_time: "000001000000000R", short_message: Buffer.from("x") })))
      .toEqual(Result.fail(CommandStatus.ESME_RINVSCHED))
    expect(textOf(Buffer.from("abc"), 0x03)).toBe("abc")
    expect(textOf(Buffer.from([0x41]), 0xf1)).toBe("A")
    expect(textOf(Buffer.from([0x41]), 0xf4)).toBeUndefined()
    expect([eventsOf(0), eventsOf(1), eventsOf(2), eventsOf(0x11)]).toEqual([undefined, "final", "final", "all"])
  })

  it("a receipt in the Appendix B form our own receipt parser reads back, with the TLVs", () => {
    const text = formatReceipt({ id: "0192-abc", stat: "UNDELIV", submittedAt: Date.UTC(2026, 11, 3, 18, 5), doneAt: Date.UTC(2026, 11, 3, 18, 7) })
    expect(text).toBe("id:0192-abc sub:001 dlvrd:000 submit date:2612031805 done date:2612031807 stat:UNDELIV err:001 text:")
    expect(parseReceipt({ shortMessageText: text })).toMatchObject({ smscMessageId: "0192-abc", state: "undelivered" })
    const body = JSON.stringify({ type: "message.status", eventId: "e", messageId: "m-1", status: "delivered", at: "2026-12-03T18:07:00.000Z", to: "4915112345678", from: "ACME", acceptedAt: "2026-12-03T18:05:00.000Z", appId: "a" })
    const [receipt, ...rest] = deliverFieldsOf(body, 1) ?? []
    expect(rest).toEqual([])
    expect(receipt).toMatchObject({ esm_class: 0x04, source_addr: "4915112345678", destination_addr: "ACME", dest_addr_ton: 5, receipted_message_id: "m-1", message_state: 2 })
    expect(Buffer.from(receipt?.short_message ?? Buffer.alloc(0)).toString("latin1")).toContain("submit date:2612031805 done date:2612031807 stat:DELIVRD err:000")
    expect(deliverFieldsOf("{}", 1)).toBeUndefined()
    // A message the ESME sent in three parts: a receipt for each part that asked, under the part's own id.
    expect((deliverFieldsOf(body, 1, smppCallbackUrl({ total: 3, receipts: [1, 2, 3] })) ?? []).map((r) => r.receipted_message_id))
      .toEqual(["m-1-1", "m-1-2", "m-1-3"])
    expect((deliverFieldsOf(body, 1, smppCallbackUrl({ total: 3, receipts: [1] })) ?? []).map((r) => r.receipted_message_id)).toEqual(["m-1-1"])
  })

  it("an inbound message: one deliver_sm, or UDH parts when long", () => {
    const mo = (text: string) => JSON.stringify({ type: "message.received", inboundId: "i", from: "+4915199999999", to: "ACME", text, receivedAt: "2026-12-03T18:00:00Z", appId: "a" })
    const [one, ...none] = deliverFieldsOf(mo("hello"), 7) ?? []
    expect(none).toEqual([])
    expect(one).toMatchObject({ esm_class: 0, data_coding: 0, source_addr: "4915199999999", source_addr_ton: 1, destination_addr: "ACME" })
    const parts = deliverFieldsOf(mo("x".repeat(200)), 7) ?? []
    expect(parts.map((p) => p.esm_class)).toEqual([0x40, 0x40])
  })

  it("credentials: systemIds by the rule, passwords of 8 unambiguous characters", () => {
    expect(systemIdProblem("acme_01.x-y")).toBeUndefined()
    for (const bad of ["", "a".repeat(16), "with space", "ümlaut"]) expect(systemIdProblem(bad), bad).toBeDefined()
    const passwords = new Set(Array.from({ length: 200 }, newSmppPassword))
    expect(passwords.size).toBe(200)
    for (const p of passwords) expect(p).toMatch(/^[A-HJ-NP-Za-hjkmnp-z2-9]{8}$/)
  })
})
