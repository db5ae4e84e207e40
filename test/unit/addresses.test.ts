import { Effect, Schema } from "effect"
import { describe, expect, it } from "vitest"
import { fieldIssues } from "../../src/domain/FieldIssues.ts"
import { SubmitMessage } from "../../src/domain/Message.ts"
import { invalidMsisdn, invalidSender, parseMsisdn, storedAddresses } from "../../src/domain/Msisdn.ts"

const decode = (body: unknown) =>
  Effect.runSync(Effect.result(Schema.decodeUnknownEffect(SubmitMessage)(body, { errors: "all" })))

const issues = (body: unknown) => {
  const result = decode(body)
  if (result._tag === "Success") throw new Error(`decoded: ${JSON.stringify(result.success)}`)
  return fieldIssues(result.failure.issue, { root: "body" })
}

describe("recipient and sender, parsed at the edge", () => {
  it("a decoded message carries the recipient's number and country and the sender's TON/NPI", () => {
    const result = decode({ to: "004915112345678", from: "+447911123456", text: "hi" })
    if (result._tag === "Failure") throw new Error(String(result.failure))
    expect(result.success.to).toEqual({ msisdn: "4915112345678", country: "DE" })
    expect(result.success.from).toEqual({ given: "+447911123456", addr: "447911123456", ton: 1, npi: 1, kind: "international" })
    // The wire form stays strings: the number as E.164, the sender as given.
    expect(Schema.encodeSync(SubmitMessage)(result.success)).toEqual({ to: "+4915112345678", from: "+447911123456", text: "hi" })
  })

  it("senders: alphanumeric (TON 5), short code (TON 3), international (TON 1/NPI 1)", () => {
    const from = (value: string) => {
      const result = decode({ to: "+447911123456", from: value, text: "hi" })
      if (result._tag === "Failure") throw new Error(String(result.failure))
      return result.success.from
    }
    expect(from("ACME Bank")).toMatchObject({ addr: "ACME Bank", ton: 5, npi: 0, kind: "alphanumeric" })
    expect(from("12345")).toMatchObject({ addr: "12345", ton: 3, npi: 0, kind: "shortcode" })
    expect(from("+4915112345678")).toMatchObject({ addr: "4915112345678", ton: 1, npi: 1, kind: "international" })
  })

  it("bad addresses are named by field with the same messages as before", () => {
    expect(issues({ to: "+49151", from: "ACME", text: "x" })).toEqual([{ field: "to", message: invalidMsisdn }])
    expect(issues({ to: "4915112345678", from: "ACME", text: "x" })).toEqual([{ field: "to", message: invalidMsisdn }])
    expect(issues({ to: "+4915112345678", from: "THIS SENDER IS TOO LONG", text: "x" })).toEqual([{ field: "from", message: invalidSender }])
    expect(issues({ to: 4915112345678, from: "12", text: "x" })).toEqual([
      { field: "to", message: "Expected string" },
      { field: "from", message: invalidSender }
    ])
  })

  it("one number after another answers each its own (no remembered parse)", () => {
    expect(parseMsisdn("+447911123456")).toBe("447911123456")
    expect(parseMsisdn("+4915112345678")).toBe("4915112345678")
    expect(parseMsisdn("+447911123456")).toBe("447911123456")
    expect(parseMsisdn("+49151")).toBeUndefined()
  })

  it("a message read back as strings gives the link its addresses, parsed once", () => {
    expect(storedAddresses("4915112345678", "ACME")).toEqual({
      destination: "4915112345678",
      source: { given: "ACME", addr: "ACME", ton: 5, npi: 0, kind: "alphanumeric" }
    })
    expect(storedAddresses("4915112345678", "+4915112345678")?.source).toMatchObject({ addr: "4915112345678", ton: 1, npi: 1 })
    expect(storedAddresses("4915112345678", "no good sender!")).toBeUndefined()
  })
})
