import { describe, expect, it } from "vitest"
import type { PolicyDocument } from "../../src/domain/Policy.ts"
import { countryZones, inWindow, isOpen, nextOpening, windowMinutes } from "../../src/policy/SendWindow.ts"

const at = (iso: string) => Date.parse(iso)

describe("send window", () => {
  it("a window crossing midnight is open late and early, closed in the day", () => {
    const w = windowMinutes({ from: "20:00", to: "08:00" })
    expect(inWindow(w, 23 * 60)).toBe(true)
    expect(inWindow(w, 7 * 60 + 59)).toBe(true)
    expect(inWindow(w, 8 * 60)).toBe(false)
    expect(inWindow(w, 12 * 60)).toBe(false)
    expect(inWindow(w, 20 * 60)).toBe(true)
  })

  it("a day window is open from its start to before its end; equal ends are always open", () => {
    const w = windowMinutes({ from: "09:00", to: "20:00" })
    expect(inWindow(w, 9 * 60)).toBe(true)
    expect(inWindow(w, 19 * 60 + 59)).toBe(true)
    expect(inWindow(w, 20 * 60)).toBe(false)
    expect(inWindow(windowMinutes({ from: "10:00", to: "10:00" }), 3)).toBe(true)
  })

  it("reads the recipient's zone: 09:00-20:00 in Tokyo is closed at 23:30 UTC (08:30 local) and opens at 00:00 UTC", () => {
    const w = windowMinutes({ from: "09:00", to: "20:00" })
    const now = at("2026-03-10T23:30:00Z")
    expect(isOpen(w, ["Asia/Tokyo"], now)).toBe(false)
    expect(nextOpening(w, ["Asia/Tokyo"], now)).toBe(at("2026-03-11T00:00:00Z"))
    expect(isOpen(w, ["Asia/Tokyo"], at("2026-03-11T00:00:00Z"))).toBe(true)
  })

  it("a window crossing midnight in another zone: closed in the afternoon, open from 22:00 local to 06:00 local", () => {
    // New York in March 2026 after the 8th: UTC-4. 22:00-06:00 local is 02:00-10:00 UTC.
    const w = windowMinutes({ from: "22:00", to: "06:00" })
    const afternoon = at("2026-03-20T19:00:00Z")
    expect(isOpen(w, ["America/New_York"], afternoon)).toBe(false)
    const opens = nextOpening(w, ["America/New_York"], afternoon)
    expect(opens).toBe(at("2026-03-21T02:00:00Z"))
    expect(isOpen(w, ["America/New_York"], at("2026-03-21T05:00:00Z"))).toBe(true)
    expect(isOpen(w, ["America/New_York"], at("2026-03-21T09:59:00Z"))).toBe(true)
    expect(isOpen(w, ["America/New_York"], at("2026-03-21T10:00:00Z"))).toBe(false)
  })

  it("open now answers now; no zone is always open", () => {
    const w = windowMinutes({ from: "09:00", to: "20:00" })
    const noon = at("2026-06-01T10:00:00Z")
    expect(nextOpening(w, ["Europe/Berlin"], noon)).toBe(noon)
    expect(isOpen(w, [], at("2026-06-01T02:00:00Z"))).toBe(true)
  })

  it("a country of several zones opens when every zone's window is open", () => {
    const w = windowMinutes({ from: "09:00", to: "20:00" })
    const zones = ["America/New_York", "America/Los_Angeles"]
    // 13:30 UTC in June: 09:30 in New York, 06:30 in Los Angeles: not yet.
    const now = at("2026-06-01T13:30:00Z")
    expect(isOpen(w, zones, now)).toBe(false)
    // 09:00 in Los Angeles (UTC-7) is 16:00 UTC, 12:00 in New York.
    expect(nextOpening(w, zones, now)).toBe(at("2026-06-01T16:00:00Z"))
  })

  it("zones that never agree fall back to the first", () => {
    const w = windowMinutes({ from: "09:00", to: "10:00" })
    const zones = ["Europe/London", "Asia/Tokyo"]
    const now = at("2026-01-05T08:30:00Z")
    expect(nextOpening(w, zones, now)).toBe(at("2026-01-05T09:00:00Z"))
  })

  it("a country's zone: quiet hours' map first, then the tz data's own zones", () => {
    const policy: PolicyDocument = {
      rules: [{ id: "q", type: "quiet_hours", from: "21:00", to: "08:00", countries: { US: "America/Chicago" } }]
    }
    expect(countryZones("US", policy)).toEqual(["America/Chicago"])
    expect(countryZones("DE", policy)).toEqual(["Europe/Berlin"])
    expect(countryZones("US", { rules: [] })).toContain("America/New_York")
    expect(countryZones(undefined, policy)).toEqual([])
  })
})
