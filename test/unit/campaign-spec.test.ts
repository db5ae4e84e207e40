/** The campaign specification a user writes, as the API decodes it. */
import { Schema } from "effect"
import { describe, expect, it } from "vitest"
import { Canary } from "../../src/domain/Campaign.ts"

describe("campaign specification", () => {
  it("a canary says count or percent, one of them: an empty one is not a silent no-canary, two are not a silent choice", () => {
    const decode = Schema.decodeUnknownExit(Canary)
    expect(decode({ count: 50 })._tag).toBe("Success")
    expect(decode({ percent: 2 })._tag).toBe("Success")
    expect(decode({})._tag).toBe("Failure")
    expect(decode({ count: 50, percent: 2 })._tag).toBe("Failure")
  })
})
