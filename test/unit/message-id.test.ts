/**
 * Message ids: UUID version 7, valid as any UUID, and increasing within a process (the store's B-trees append).
 */
import { describe, expect, it } from "@effect/vitest"
import { newMessageId } from "../../src/domain/MessageId.ts"

const uuidV7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

describe("newMessageId", () => {
  it("is a version 7 UUID whose first 48 bits are the time in milliseconds", () => {
    const at = Date.UTC(2026, 11, 3, 9, 30, 0, 123)
    const id = newMessageId(at)
    expect(id).toMatch(uuidV7)
    expect(parseInt(id.replace(/-/g, "").slice(0, 12), 16)).toBe(at)
  })

  it("increases with every id, within one millisecond and when the clock steps back", () => {
    const at = Date.now() + 60_000
    const ids = [
      ...Array.from({ length: 5000 }, () => newMessageId(at)),
      newMessageId(at - 5000),
      newMessageId(at + 1),
      ...Array.from({ length: 100 }, () => newMessageId())
    ]
    for (const id of ids) expect(id).toMatch(uuidV7)
    for (let i = 1; i < ids.length; i++) expect(ids[i]! > ids[i - 1]!).toBe(true)
    expect(new Set(ids).size).toBe(ids.length)
  })

  it("ends in random bits: 1,000 ids, 1,000 different tails", () => {
    const tails = new Set(Array.from({ length: 1000 }, () => newMessageId().slice(19)))
    expect(tails.size).toBe(1000)
  })
})
