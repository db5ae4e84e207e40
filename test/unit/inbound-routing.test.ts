/**
 * Inbound routing decisions (domain/Inbound.ts) and the concatenation header of incoming parts (smpp/Encoding.ts):
 * keyword over number, opt keywords only as the whole message, STOP on a shared short code reaching every programme,
 * the document's checks, and UDH parsing that refuses headers that do not hold together.
 */
import { describe, expect, it } from "vitest"
import { checkInboundDocument, confirmationOf, decideInbound } from "../../src/domain/Inbound.ts"
import type { InboundDocument } from "../../src/domain/Inbound.ts"
import { concatOf, segment } from "../../src/smpp/Encoding.ts"
import { Result } from "effect"

const doc: InboundDocument = {
  routes: [
    { id: "long", number: "+447700900123", appId: "app_a", optOutList: "a-optout", replies: { en: { optOut: "bye" }, fr: { optOut: "au revoir" } } },
    { id: "shop", number: "12345", keyword: "Shop", appId: "app_a", optOutList: "a-optout" },
    { id: "info", number: "12345", keyword: "INFO", appId: "app_b", optOutList: "b-optout" },
    { id: "quiz", number: "12345", keyword: "QUIZ", appId: "app_c" }
  ]
}

describe("inbound routing", () => {
  it("a keyword route takes its first word; a number's plain route takes the rest; other numbers are unrouted", () => {
    expect(decideInbound(doc, "12345", "shop: 2 shirts").routes.map((r) => r.id)).toEqual(["shop"])
    expect(decideInbound(doc, "12345", "  Info?").keyword).toBe("INFO")
    expect(decideInbound(doc, "447700900123", "hello").routes.map((r) => r.id)).toEqual(["long"])
    expect(decideInbound(doc, "00447700900123", "hello").routes.map((r) => r.id)).toEqual(["long"])
    expect(decideInbound(doc, "12345", "hello").routes).toEqual([])
    expect(decideInbound(doc, "99999", "shop").routes).toEqual([])
  })

  it("opt keywords count only as the whole message, in any case, accents and punctuation aside", () => {
    expect(decideInbound(doc, "447700900123", " stop. ").action).toBe("opt_out")
    expect(decideInbound(doc, "447700900123", "Arrêt").action).toBe("opt_out")
    expect(decideInbound(doc, "447700900123", "Arrêt").language).toBe("fr")
    expect(decideInbound(doc, "447700900123", "please stop").action).toBeUndefined()
    expect(decideInbound(doc, "447700900123", "START").action).toBe("opt_in")
    expect(decideInbound({ ...doc, optOutKeywords: { en: ["HALT"] } }, "447700900123", "stop").action).toBeUndefined()
  })

  it("STOP on a short code shared by keyword routes reaches every route of the number with an opt-out list", () => {
    const decision = decideInbound(doc, "12345", "STOP")
    expect(decision.action).toBe("opt_out")
    expect(decision.routes.map((r) => r.id)).toEqual(["shop", "info"])
  })

  it("the confirmation in the keyword's language, else the route's first", () => {
    const long = doc.routes[0]!
    expect(confirmationOf(long, "opt_out", "fr")).toBe("au revoir")
    expect(confirmationOf(long, "opt_out", "de")).toBe("bye")
    expect(confirmationOf(long, "opt_in", "en")).toBeUndefined()
  })

  it("the document's checks: unique ids, one route per number and keyword, keywords that mean one thing", () => {
    expect(checkInboundDocument(doc)).toEqual([])
    const problems = checkInboundDocument({
      routes: [
        { id: "a", number: "12345", keyword: "shop", appId: "x" },
        { id: "a", number: "+12345", keyword: "SHOP", appId: "y" },
        { id: "b", number: "12345", keyword: "stop", appId: "x" }
      ],
      optInKeywords: { en: ["STOP"] }
    })
    expect(problems.map((p) => p.field)).toEqual(["optInKeywords", "routes[1].id", "routes[1]", "routes[2].keyword"])
  })
})

describe("concatenated parts", () => {
  it("reads 8- and 16-bit references from the parts the gateway itself makes", () => {
    const text = "x".repeat(300)
    for (const bits of [8, 16] as const) {
      const parts = Result.getOrThrow(segment(text, { encoding: "gsm7", reference: 0x1a2, referenceBits: bits })).parts
      expect(parts.map((p) => concatOf(p.shortMessage, p.udhi))).toEqual([
        { ref: bits === 8 ? 0xa2 : 0x1a2, total: 2, seq: 1 },
        { ref: bits === 8 ? 0xa2 : 0x1a2, total: 2, seq: 2 }
      ])
    }
  })

  it("skips other elements before it and refuses headers that do not hold together", () => {
    // A port-addressing element (IEI 0x05, 4 octets) before the concatenation element.
    expect(concatOf(Uint8Array.from([11, 0x05, 4, 0, 0, 0, 0, 0x00, 3, 7, 3, 2, 0x41]), true)).toEqual({ ref: 7, total: 3, seq: 2 })
    expect(concatOf(Uint8Array.from([5, 0x00, 3, 7, 3, 2, 0x41]), false)).toBeUndefined()
    expect(concatOf(Uint8Array.from([5, 0x00, 3, 7, 2, 3, 0x41]), true)).toBeUndefined()
    expect(concatOf(Uint8Array.from([5, 0x00, 3, 7, 0, 0, 0x41]), true)).toBeUndefined()
    expect(concatOf(Uint8Array.from([9, 0x00, 3, 7, 2, 1]), true)).toBeUndefined()
    expect(concatOf(Uint8Array.from([5, 0x00, 9, 7, 2, 1]), true)).toBeUndefined()
  })
})
