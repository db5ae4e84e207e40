import { describe, expect, it } from "@effect/vitest"
import { Result } from "effect"
import { clientIp } from "../../src/auth/ClientIp.ts"
import {
  type AllowList,
  allows,
  contains,
  emptyAllowList,
  normalizeIp,
  parseAllowList
} from "../../src/auth/IpAllowList.ts"

const list = (entries: ReadonlyArray<string>): AllowList => {
  const parsed = parseAllowList(entries)
  if (Result.isFailure(parsed)) throw new Error(`${parsed.failure.entry}: ${parsed.failure.message}`)
  return parsed.success
}

const problem = (entry: string) => {
  const parsed = parseAllowList(["10.0.0.0/8", entry])
  return Result.isFailure(parsed) ? parsed.failure : undefined
}

describe("parseAllowList", () => {
  it("reads IPv4 and IPv6 addresses and CIDRs into canonical entries", () => {
    const l = list([" 10.0.0.0/8", "192.168.1.7", "2001:DB8::/32", "::1", "::ffff:172.16.0.0/108", "10.0.0.0/8"])
    expect(l.entries).toEqual(["10.0.0.0/8", "192.168.1.7", "2001:db8::/32", "::1", "172.16.0.0/12"])
  })

  it("names the entry that is wrong and why", () => {
    expect(problem("10.0.0.1/8")).toEqual({ entry: "10.0.0.1/8", message: "host bits are set: did you mean 10.0.0.0/8?" })
    expect(problem("2001:db8::1/32")?.message).toBe("host bits are set: did you mean 2001:db8::/32?")
    expect(problem("300.1.1.1")?.message).toMatch(/not an IPv4 or IPv6/)
    expect(problem("010.0.0.1")?.message).toMatch(/not an IPv4 or IPv6/)
    expect(problem("10.1")?.message).toMatch(/not an IPv4 or IPv6/)
    expect(problem("0x0a.0.0.1")?.message).toMatch(/not an IPv4 or IPv6/)
    expect(problem("example.com")?.message).toMatch(/not an IPv4 or IPv6/)
    expect(problem("")?.message).toMatch(/not an IPv4 or IPv6/)
    expect(problem("1::2::3")?.message).toMatch(/not an IPv4 or IPv6/)
    expect(problem("::ffff:010.0.0.1")?.message).toMatch(/not an IPv4 or IPv6/)
    expect(problem("10.0.0.0/33")?.message).toBe("prefix length must be 0–32")
    expect(problem("2001:db8::/129")?.message).toBe("prefix length must be 0–128")
    expect(problem("10.0.0.0/")?.message).toBe("bad prefix length")
    expect(problem("10.0.0.0/08")?.message).toBe("bad prefix length")
    expect(problem("10.0.0.0/-1")?.message).toBe("bad prefix length")
    expect(problem("fe80::1%eth0")?.message).toBe("zone ids are not allowed")
    expect(problem("::ffff:0:0/80")?.message).toMatch(/at least 96/)
  })
})

describe("allows", () => {
  const l = list(["10.0.0.0/8", "192.168.1.7", "203.0.113.0/24", "2001:db8:abcd::/48", "::1"])

  it("matches IPv4 CIDRs and single addresses", () => {
    expect(allows(l, "10.0.0.0")).toBe(true)
    expect(allows(l, "10.255.255.255")).toBe(true)
    expect(allows(l, "11.0.0.0")).toBe(false)
    expect(allows(l, "9.255.255.255")).toBe(false)
    expect(allows(l, "192.168.1.7")).toBe(true)
    expect(allows(l, "192.168.1.8")).toBe(false)
    expect(allows(l, "203.0.113.200")).toBe(true)
    expect(allows(l, "203.0.114.1")).toBe(false)
  })

  it("matches IPv6 CIDRs, in any spelling, with or without a zone", () => {
    expect(allows(l, "2001:db8:abcd::1")).toBe(true)
    expect(allows(l, "2001:0DB8:ABCD:ffff:ffff:ffff:ffff:ffff")).toBe(true)
    expect(allows(l, "2001:db8:abce::1")).toBe(false)
    expect(allows(l, "::1")).toBe(true)
    expect(allows(l, "0:0:0:0:0:0:0:1")).toBe(true)
    expect(allows(l, "::2")).toBe(false)
    expect(allows(l, "2001:db8:abcd::1%eth0")).toBe(true)
  })

  it("matches IPv4-mapped IPv6 addresses (dual-stack sockets) against IPv4 entries", () => {
    expect(allows(l, "::ffff:10.1.2.3")).toBe(true)
    expect(allows(l, "::FFFF:192.168.1.7")).toBe(true)
    expect(allows(l, "::ffff:c0a8:107")).toBe(true)
    expect(allows(l, "0:0:0:0:0:ffff:10.9.9.9")).toBe(true)
    expect(allows(l, "::ffff:11.0.0.1")).toBe(false)
    // IPv4-compatible (::a.b.c.d) is not mapped
    expect(allows(l, "::10.1.2.3")).toBe(false)
  })

  it("keeps the families apart: ::/0 does not admit IPv4 clients, 0.0.0.0/0 no IPv6 ones", () => {
    expect(allows(list(["::/0"]), "10.1.2.3")).toBe(false)
    expect(allows(list(["::/0"]), "::ffff:10.1.2.3")).toBe(false)
    expect(allows(list(["::/0"]), "2001:db8::1")).toBe(true)
    expect(allows(list(["0.0.0.0/0"]), "2001:db8::1")).toBe(false)
    expect(allows(list(["0.0.0.0/0"]), "::ffff:8.8.8.8")).toBe(true)
  })

  it("an empty list admits anyone; a list never admits what is not an address", () => {
    expect(allows(emptyAllowList, "203.0.113.9")).toBe(true)
    expect(allows(list([]), "2001:db8::1")).toBe(true)
    for (const bad of ["", "unknown", "10.0.0.1:80", "10.0.0.1/8", "010.0.0.1", " 10.0.0.1", "10.0.0.1.1"]) {
      expect(allows(l, bad)).toBe(false)
    }
  })

  it("contains: an empty list contains nothing (what trusted proxies need)", () => {
    expect(contains(emptyAllowList, "10.0.0.1")).toBe(false)
    expect(contains(l, "10.0.0.1")).toBe(true)
  })

  it("normalises addresses", () => {
    expect(normalizeIp("::ffff:10.1.2.3")).toBe("10.1.2.3")
    expect(normalizeIp("2001:0DB8:0000:0000:0000:0000:0000:0001")).toBe("2001:db8::1")
    expect(normalizeIp("fe80::1%eth0")).toBe("fe80::1")
    expect(normalizeIp("::10.1.2.3")).toBe("::a01:203")
    expect(normalizeIp("1.2.3")).toBeUndefined()
  })

  it("a list of many ranges matches plain and IPv4-mapped addresses alike (its cost: npm run bench:auth)", () => {
    const big = list(Array.from({ length: 50 }, (_, i) => `10.${i}.0.0/16`).concat(["2001:db8::/32"]))
    expect(allows(big, "10.49.1.2")).toBe(true)
    expect(allows(big, "::ffff:10.49.1.2")).toBe(true)
    expect(allows(big, "10.50.1.2")).toBe(false)
    expect(allows(big, "2001:db8::1")).toBe(true)
  })
})

describe("clientIp", () => {
  const proxies = list(["10.0.0.0/8", "192.0.2.0/24", "2001:db8:ffff::/48"])

  it("is the socket peer when no proxy is trusted, whatever the header says", () => {
    expect(clientIp({ remoteAddress: "198.51.100.7", forwardedFor: "1.1.1.1", trustedProxies: emptyAllowList }))
      .toBe("198.51.100.7")
    expect(clientIp({ remoteAddress: "::ffff:198.51.100.7", forwardedFor: undefined, trustedProxies: emptyAllowList }))
      .toBe("198.51.100.7")
    expect(clientIp({ remoteAddress: undefined, forwardedFor: "1.1.1.1", trustedProxies: emptyAllowList })).toBe("")
  })

  it("ignores a forged header from a peer that is not a trusted proxy", () => {
    expect(clientIp({ remoteAddress: "198.51.100.7", forwardedFor: "10.0.0.5, 192.0.2.1", trustedProxies: proxies }))
      .toBe("198.51.100.7")
  })

  it("takes the address a trusted proxy saw, not what the client wrote left of it", () => {
    expect(clientIp({ remoteAddress: "10.0.0.1", forwardedFor: "198.51.100.7", trustedProxies: proxies }))
      .toBe("198.51.100.7")
    expect(clientIp({ remoteAddress: "::ffff:10.0.0.1", forwardedFor: "6.6.6.6, 198.51.100.7", trustedProxies: proxies }))
      .toBe("198.51.100.7")
    expect(clientIp({ remoteAddress: "10.0.0.1", forwardedFor: undefined, trustedProxies: proxies })).toBe("10.0.0.1")
  })

  it("walks several trusted hops from the right", () => {
    expect(
      clientIp({
        remoteAddress: "10.0.0.2",
        forwardedFor: "6.6.6.6, 198.51.100.7, 192.0.2.10,10.3.3.3",
        trustedProxies: proxies
      })
    ).toBe("198.51.100.7")
    // a client claiming to be behind a trusted proxy still ends the walk at its own address
    expect(
      clientIp({ remoteAddress: "10.0.0.2", forwardedFor: "10.9.9.9, 198.51.100.7, 192.0.2.10", trustedProxies: proxies })
    ).toBe("198.51.100.7")
    expect(
      clientIp({
        remoteAddress: "2001:db8:ffff::1",
        forwardedFor: "2001:DB8:1::7, 2001:db8:ffff::2",
        trustedProxies: proxies
      })
    ).toBe("2001:db8:1::7")
  })

  it("takes the leftmost hop when every hop is trusted", () => {
    expect(clientIp({ remoteAddress: "10.0.0.1", forwardedFor: "10.0.0.5, 192.0.2.7", trustedProxies: proxies }))
      .toBe("10.0.0.5")
    expect(clientIp({ remoteAddress: "10.0.0.1", forwardedFor: " , ", trustedProxies: proxies })).toBe("10.0.0.1")
  })

  it("strips ports and brackets, normalises mapped addresses, and keeps junk as junk", () => {
    expect(clientIp({ remoteAddress: "10.0.0.1", forwardedFor: "198.51.100.7:5555", trustedProxies: proxies }))
      .toBe("198.51.100.7")
    expect(clientIp({ remoteAddress: "10.0.0.1", forwardedFor: "[2001:db8::7]:443", trustedProxies: proxies }))
      .toBe("2001:db8::7")
    expect(clientIp({ remoteAddress: "10.0.0.1", forwardedFor: "::ffff:198.51.100.7", trustedProxies: proxies }))
      .toBe("198.51.100.7")
    const junk = clientIp({ remoteAddress: "10.0.0.1", forwardedFor: "unknown", trustedProxies: proxies })
    expect(junk).toBe("unknown")
    expect(allows(list(["0.0.0.0/0", "::/0"]), junk)).toBe(false)
  })
})
