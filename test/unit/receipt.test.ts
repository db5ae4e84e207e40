import { describe, expect, it } from "@effect/vitest"
import { decodeShortMessage } from "../../src/smpp/Encoding.ts"
import { isValidMessageId, messageIdCandidates, normalizeMessageId } from "../../src/smpp/MessageId.ts"
import {
  finalStatusOf,
  isInvalidReceipt,
  isReceipt,
  parseReceipt as parseAny,
  parseReceiptDate,
  type Receipt,
  type ReceiptInput,
  type ReceiptState
} from "../../src/smpp/Receipt.ts"

/** A receipt within bounds (or none): an InvalidReceipt here fails the test. */
const parseReceipt = (input: ReceiptInput): Receipt | undefined => {
  const receipt = parseAny(input)
  if (receipt !== undefined && isInvalidReceipt(receipt)) throw new Error(`refused: ${receipt.field}`)
  return receipt
}

const utc = (iso: string): Date => new Date(iso)

describe("parseReceipt: Appendix B text", () => {
  it("reads the specification's format", () => {
    const receipt = parseReceipt({
      shortMessageText:
        "id:1234567890 sub:001 dlvrd:001 submit date:2301151230 done date:2301151231 stat:DELIVRD err:000 text:Hello world"
    })
    expect(receipt).toEqual({
      smscMessageId: "1234567890",
      state: "delivered",
      stat: "DELIVRD",
      err: "000",
      submitDate: utc("2023-01-15T12:30:00Z"),
      doneDate: utc("2023-01-15T12:31:00Z"),
      submitted: 1,
      delivered: 1
    })
  })

  it("takes upper-case keys, Text:, 12-digit dates and surrounding spaces", () => {
    const receipt = parseReceipt({
      shortMessageText:
        "  ID:0A1B2C3D SUB:001 DLVRD:000 SUBMIT DATE:230115123045 DONE DATE:230116000001 STAT:UNDELIV ERR:011 Text:Hi  "
    })
    expect(receipt).toEqual({
      smscMessageId: "0A1B2C3D",
      state: "undelivered",
      stat: "UNDELIV",
      err: "011",
      submitDate: utc("2023-01-15T12:30:45Z"),
      doneDate: utc("2023-01-16T00:00:01Z"),
      submitted: 1,
      delivered: 0
    })
  })

  it("takes submit_date / done_date, lower-case stat and missing fields", () => {
    const receipt = parseReceipt({ shortMessageText: "id:77 submit_date:2402291200 done_date:2402291201 stat:expired" })
    expect(receipt).toEqual({
      smscMessageId: "77",
      state: "expired",
      stat: "EXPIRED",
      submitDate: utc("2024-02-29T12:00:00Z"),
      doneDate: utc("2024-02-29T12:01:00Z")
    })
  })

  it("skips unknown vendor fields and keeps text (with its own 'id:') out of the fields", () => {
    const receipt = parseReceipt({
      shortMessageText:
        "id:abc-123 sub:001 dlvrd:001 submit date:2301151230 done date:2301151231 stat:DELIVRD err:000 " +
        "mcc:262 mnc:01 text:id:999 stat:REJECTD"
    })
    expect(receipt).toMatchObject({ smscMessageId: "abc-123", state: "delivered", stat: "DELIVRD", err: "000" })
  })

  it("maps the stat names, short and long", () => {
    const states: ReadonlyArray<readonly [string, ReceiptState]> = [
      ["DELIVRD", "delivered"], ["DELIVERED", "delivered"], ["UNDELIV", "undelivered"],
      ["UNDELIVERABLE", "undelivered"], ["FAILED", "undelivered"], ["EXPIRED", "expired"], ["DELETED", "deleted"],
      ["ACCEPTD", "accepted"], ["REJECTD", "rejected"], ["ENROUTE", "enroute"], ["UNKNOWN", "unknown"],
      ["WHATEVER", "unknown"]
    ]
    for (const [stat, state] of states) {
      expect(parseReceipt({ shortMessageText: `id:1 stat:${stat} err:000` })?.state).toBe(state)
    }
  })

  it("reads a receipt whose ASCII text arrived as data_coding 0 (GSM): '_' decodes as '§'", () => {
    const raw = Buffer.from("id:42 sub:001 dlvrd:001 submit_date:2301151230 done_date:2301151231 stat:DELIVRD err:000", "latin1")
    const text = decodeShortMessage(raw, 0x00, false)
    expect(text).toContain("submit§date")
    expect(parseReceipt({ shortMessageText: text })).toMatchObject({
      smscMessageId: "42",
      state: "delivered",
      submitDate: utc("2023-01-15T12:30:00Z"),
      doneDate: utc("2023-01-15T12:31:00Z")
    })
  })

  it("answers undefined without an id or without a state", () => {
    expect(parseReceipt({ shortMessageText: "hello, this is a mobile-originated message" })).toBeUndefined()
    expect(parseReceipt({ shortMessageText: "stat:DELIVRD err:000" })).toBeUndefined()
    expect(parseReceipt({ shortMessageText: "id:123 sub:001 dlvrd:001" })).toBeUndefined()
    expect(parseReceipt({ shortMessageText: "id: stat:DELIVRD" })).toBeUndefined()
  })

  it("ignores invalid dates and counts", () => {
    const receipt = parseReceipt({ shortMessageText: "id:5 sub:abc submit date:2302311200 done date:12345 stat:DELIVRD" })
    expect(receipt).toEqual({ smscMessageId: "5", state: "delivered", stat: "DELIVRD" })
  })
})

describe("parseReceipt: TLVs first", () => {
  const text = "id:1111 sub:001 dlvrd:001 submit date:2301151230 done date:2301151231 stat:DELIVRD err:000 text:x"

  it("message_state and receipted_message_id win over the text", () => {
    const receipt = parseReceipt({ shortMessageText: text, receiptedMessageId: "ABCDEF01", messageState: 5 })
    expect(receipt).toMatchObject({ smscMessageId: "ABCDEF01", state: "undelivered", stat: "UNDELIV", err: "000" })
    expect(receipt?.submitDate).toEqual(utc("2023-01-15T12:30:00Z"))
  })

  it("network_error_code (type, 16-bit code) becomes err", () => {
    const receipt = parseReceipt({
      shortMessageText: text,
      messageState: 8,
      networkErrorCode: Buffer.from([0x01, 0x00, 0x0b])
    })
    expect(receipt).toMatchObject({ smscMessageId: "1111", state: "rejected", stat: "REJECTD", err: "011" })
    expect(parseReceipt({ shortMessageText: text, networkErrorCode: "0x22\0" })?.err).toBe("0x22")
  })

  it("works from TLVs alone, with an empty text", () => {
    const states: ReadonlyArray<readonly [number, ReceiptState, string]> = [
      [1, "enroute", "ENROUTE"], [2, "delivered", "DELIVRD"], [3, "expired", "EXPIRED"], [4, "deleted", "DELETED"],
      [5, "undelivered", "UNDELIV"], [6, "accepted", "ACCEPTD"], [7, "unknown", "UNKNOWN"], [8, "rejected", "REJECTD"]
    ]
    for (const [messageState, state, stat] of states) {
      expect(parseReceipt({ shortMessageText: "", receiptedMessageId: " 9f\0", messageState })).toEqual({
        smscMessageId: "9f",
        state,
        stat
      })
    }
  })

  it("an out-of-range message_state falls back to the text", () => {
    expect(parseReceipt({ shortMessageText: text, messageState: 0 })?.state).toBe("delivered")
    expect(parseReceipt({ shortMessageText: text, messageState: 9 })?.state).toBe("delivered")
  })
})

describe("receipt helpers", () => {
  it("isReceipt looks at the message type bits of esm_class", () => {
    expect(isReceipt(0x04)).toBe(true)
    expect(isReceipt(0x44)).toBe(true)
    expect(isReceipt(0x00)).toBe(false)
    expect(isReceipt(0x40)).toBe(false)
    expect(isReceipt(0x08)).toBe(false)
    expect(isReceipt(0x20)).toBe(false)
  })

  it("finalStatusOf maps receipt states to gateway statuses", () => {
    expect(finalStatusOf("delivered")).toBe("delivered")
    expect(finalStatusOf("expired")).toBe("expired")
    for (const state of ["undelivered", "rejected", "deleted", "unknown"] as const) {
      expect(finalStatusOf(state)).toBe("undelivered")
    }
    expect(finalStatusOf("accepted")).toBeUndefined()
    expect(finalStatusOf("enroute")).toBeUndefined()
  })

  it("parseReceiptDate: 10, 12 and 14 digits as UTC", () => {
    expect(parseReceiptDate("2312312359")).toEqual(utc("2023-12-31T23:59:00Z"))
    expect(parseReceiptDate("231231235958")).toEqual(utc("2023-12-31T23:59:58Z"))
    expect(parseReceiptDate("20231231235958")).toEqual(utc("2023-12-31T23:59:58Z"))
    expect(parseReceiptDate("2313011200")).toBeUndefined()
    expect(parseReceiptDate("23010112")).toBeUndefined()
    expect(parseReceiptDate("230101120a")).toBeUndefined()
  })
})

describe("message ids", () => {
  it("normalises case, spaces and leading zeros", () => {
    expect(normalizeMessageId("  00AbC ")).toBe("abc")
    expect(normalizeMessageId("000")).toBe("0")
    expect(normalizeMessageId("0")).toBe("0")
    expect(normalizeMessageId("1200")).toBe("1200")
  })

  const lookup = (store: ReadonlyMap<string, string>, receiptId: string): string | undefined => {
    for (const candidate of messageIdCandidates(receiptId)) {
      const hit = store.get(candidate)
      if (hit !== undefined) return hit
    }
    return undefined
  }

  it("finds a decimal submit id from a hex receipt id, and the reverse", () => {
    const decimalStore = new Map([[normalizeMessageId("1234567890"), "uuid-1"]])
    expect(lookup(decimalStore, "499602d2")).toBe("uuid-1")
    expect(lookup(decimalStore, "499602D2")).toBe("uuid-1")
    expect(lookup(decimalStore, "1234567890")).toBe("uuid-1")

    const hexStore = new Map([[normalizeMessageId("499602D2"), "uuid-2"]])
    expect(lookup(hexStore, "1234567890")).toBe("uuid-2")
    expect(lookup(hexStore, "00499602d2")).toBe("uuid-2")
  })

  it("finds ids across leading zeros", () => {
    const store = new Map([[normalizeMessageId("0000012345"), "uuid-3"]])
    expect(lookup(store, "12345")).toBe("uuid-3")
    expect(lookup(store, "012345")).toBe("uuid-3")
    expect(lookup(store, "3039")).toBe("uuid-3")
  })

  it("lists the candidates without duplicates", () => {
    expect(messageIdCandidates("1234567890")).toEqual(["1234567890", "499602d2", "78187493520"])
    expect(messageIdCandidates("499602D2")).toEqual(["499602d2", "1234567890"])
    expect(messageIdCandidates("0")).toEqual(["0"])
    expect(messageIdCandidates("9")).toEqual(["9"])
    expect(messageIdCandidates("msg-1")).toEqual(["msg-1"])
    expect(messageIdCandidates("   ")).toEqual([])
    expect(messageIdCandidates("123456789012345678901234567890")).toEqual([
      "123456789012345678901234567890",
      BigInt("123456789012345678901234567890").toString(16),
      BigInt("0x123456789012345678901234567890").toString(10)
    ])
  })
})

describe("field bounds (SMPP v3.4: message ids at most 65 octets with the NUL)", () => {
  const id64 = "a".repeat(64)

  it("takes an id of 64 printable characters, from the text or the TLV", () => {
    expect(parseReceipt({ shortMessageText: `id:${id64} stat:DELIVRD err:000` })?.smscMessageId).toBe(id64)
    expect(parseReceipt({ shortMessageText: "stat:DELIVRD", receiptedMessageId: `${id64}\0` })?.smscMessageId).toBe(id64)
  })

  it("refuses a longer id in the text for good (ESME_RX_P_APPN), and in receipted_message_id as a TLV length error", () => {
    expect(parseAny({ shortMessageText: `id:${"1".repeat(10_000)} stat:DELIVRD err:000` })).toEqual({
      _tag: "InvalidReceipt",
      field: "id",
      length: 10_000,
      commandStatus: 0x65
    })
    expect(parseAny({ shortMessageText: "id:1 stat:DELIVRD", receiptedMessageId: "b".repeat(65) })).toEqual({
      _tag: "InvalidReceipt",
      field: "receipted_message_id",
      length: 65,
      commandStatus: 0xc2
    })
  })

  it("refuses an id with control or non-ASCII characters", () => {
    expect(parseAny({ shortMessageText: "stat:DELIVRD", receiptedMessageId: "ab\u0001cd" })).toMatchObject({ field: "receipted_message_id" })
    expect(parseAny({ shortMessageText: "id:abcé stat:DELIVRD" })).toMatchObject({ field: "id" })
  })

  it("refuses an err beyond 16 characters, from the text or network_error_code", () => {
    expect(parseReceipt({ shortMessageText: `id:1 stat:UNDELIV err:${"9".repeat(16)}` })?.err).toBe("9".repeat(16))
    expect(parseAny({ shortMessageText: `id:1 stat:UNDELIV err:${"9".repeat(17)}` })).toMatchObject({
      field: "err",
      commandStatus: 0x65
    })
    expect(parseAny({ shortMessageText: "id:1 stat:UNDELIV", networkErrorCode: new Uint8Array(9) })).toMatchObject({
      field: "network_error_code",
      commandStatus: 0xc2
    })
  })

  it("bounds message ids: 1–64 printable ASCII characters once trimmed", () => {
    expect(isValidMessageId(id64)).toBe(true)
    expect(isValidMessageId(` ${id64}\0`)).toBe(true)
    expect(isValidMessageId(`${id64}f`)).toBe(false)
    expect(isValidMessageId("")).toBe(false)
    expect(isValidMessageId("ab\ncd")).toBe(false)
  })
})
