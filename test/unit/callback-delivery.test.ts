import { describe, expect, it } from "vitest"
import { refusedAddressMessage, refusedKind, statusReason } from "../../src/pipeline/CallbackPost.ts"
import { afterFailure, leaseMs } from "../../src/pipeline/Callbacks.ts"

describe("where a callback may go", () => {
  it("public unicast addresses pass; private, loopback, link-local, unique-local, unspecified, multicast and reserved ones do not", () => {
    const kinds = Object.fromEntries([
      "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111",
      "10.0.0.1", "10.255.255.1", "172.16.5.4", "172.31.255.255", "192.168.1.1", "100.64.0.1",
      "127.0.0.1", "127.255.0.9", "::1",
      "169.254.169.254", "fe80::1",
      "fc00::1", "fd12:3456::1",
      "0.0.0.0", "::",
      "224.0.0.1", "ff02::1",
      "255.255.255.255", "192.0.2.1", "240.0.0.1"
    ].map((a) => [a, refusedKind(a) ?? "ok"]))
    expect(kinds).toEqual({
      "8.8.8.8": "ok",
      "1.1.1.1": "ok",
      "2606:4700:4700::1111": "ok",
      "10.0.0.1": "private",
      "10.255.255.1": "private",
      "172.16.5.4": "private",
      "172.31.255.255": "private",
      "192.168.1.1": "private",
      "100.64.0.1": "private",
      "127.0.0.1": "loopback",
      "127.255.0.9": "loopback",
      "::1": "loopback",
      "169.254.169.254": "link-local",
      "fe80::1": "link-local",
      "fc00::1": "unique-local",
      "fd12:3456::1": "unique-local",
      "0.0.0.0": "unspecified",
      "::": "unspecified",
      "224.0.0.1": "multicast",
      "ff02::1": "multicast",
      "255.255.255.255": "broadcast",
      "192.0.2.1": "reserved",
      "240.0.0.1": "reserved"
    })
  })

  it("an IPv4 address inside IPv6 is judged as the IPv4 address it reaches (mapped, NAT64)", () => {
    expect(refusedKind("::ffff:10.0.0.1")).toBe("private")
    expect(refusedKind("::ffff:7f00:1")).toBe("loopback")
    expect(refusedKind("::ffff:169.254.169.254")).toBe("link-local")
    expect(refusedKind("64:ff9b::a00:1")).toBe("private")
    expect(refusedKind("::ffff:8.8.8.8")).toBeUndefined()
    expect(refusedKind("64:ff9b::808:808")).toBeUndefined()
  })

  it("the refusal says what and how to allow it", () => {
    expect(refusedAddressMessage("10.0.0.1", "private")).toBe("address 10.0.0.1 is private; callbacks.allowPrivateNetworks is off")
  })

  it("answers that are not 2xx by class", () => {
    expect([301, 302, 307, 400, 404, 429, 500, 503].map(statusReason)).toEqual([
      "redirect", "redirect", "redirect", "http_4xx", "http_4xx", "http_4xx", "http_5xx", "http_5xx"
    ])
  })
})

describe("retries", () => {
  const options = { backoff: { initialMs: 1_000, maxMs: 3_600_000 }, maxAgeMs: 86_400_000 }
  const t0 = 1_800_000_000_000

  it("full jitter: the wait before retry n is below min(maxMs, initialMs·2^(n-1)), anywhere from 0", () => {
    const waits = (attempts: number, random: number) => {
      const next = afterFailure({ attempts, createdAt: t0 }, t0, options, random)
      return next._tag === "Retry" ? next.nextAt - t0 : -1
    }
    expect([0, 1, 2, 5, 11, 12, 30, 1000].map((a) => waits(a, 0.999999))).toEqual([
      999, 1_999, 3_999, 31_999, 2_047_997, 3_599_996, 3_599_996, 3_599_996
    ])
    expect(waits(3, 0)).toBe(0)
    expect(waits(3, 0.5)).toBe(4_000)
    expect(afterFailure({ attempts: 3, createdAt: t0 }, t0, options, 0.5)).toEqual({ _tag: "Retry", attempts: 4, nextAt: t0 + 4_000 })
  })

  it("never past the window's end, so the last attempt is made at it; a failure at or after the end is dead", () => {
    const end = t0 + options.maxAgeMs
    expect(afterFailure({ attempts: 20, createdAt: t0 }, end - 10, options, 0.9)).toEqual({ _tag: "Retry", attempts: 21, nextAt: end })
    expect(afterFailure({ attempts: 21, createdAt: t0 }, end, options, 0.9)).toEqual({ _tag: "Dead", attempts: 22 })
    expect(afterFailure({ attempts: 0, createdAt: t0 }, end + 1, options, 0.9)).toEqual({ _tag: "Dead", attempts: 1 })
  })

  it("a claim's lease outlasts a wait behind the app's posts and one's own", () => {
    expect(leaseMs(5_000)).toBe(20_000)
    expect(leaseMs(20_000)).toBe(65_000)
  })
})
