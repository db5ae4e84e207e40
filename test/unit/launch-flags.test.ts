import { describe, expect, it } from "@effect/vitest"
import { imageNodeFlags, startNodeFlags } from "../fixtures/Launch.ts"

describe("how the gateway is launched", () => {
  it("npm start and the container image give Node the same flags, the young generation's size among them", () => {
    expect(imageNodeFlags()).toEqual(startNodeFlags())
    // 2 × 32 MB: ~80 MB less resident at full rate than V8's default at the same CPU (bench/RESULTS.md, issue 16).
    expect(startNodeFlags()).toContain("--max-semi-space-size=32")
  })
})
