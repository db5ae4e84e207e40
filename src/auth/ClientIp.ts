/**
 * The client's address of a request: the socket peer, or X-Forwarded-For read past trusted proxies only.
 */
import { type AllowList, contains, normalizeIp } from "./IpAllowList.ts"

/** One X-Forwarded-For element: an address, possibly with a port (`1.2.3.4:80`, `[2001:db8::1]:443`). */
const hopAddress = (raw: string): string => {
  const hop = raw.trim()
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(hop)
  if (bracketed?.[1] !== undefined) return normalizeIp(bracketed[1]) ?? hop
  const v4WithPort = /^(\d+\.\d+\.\d+\.\d+):\d+$/.exec(hop)
  if (v4WithPort?.[1] !== undefined) return normalizeIp(v4WithPort[1]) ?? hop
  return normalizeIp(hop) ?? hop
}

/**
 * The address of the client: the socket peer, unless the peer is a trusted proxy; then X-Forwarded-For is read from
 * the right, past every trusted proxy, to the first address none of them is. Entries left of that one were written
 * by the client and are ignored, so a forged header changes nothing. If every hop is trusted, the leftmost one.
 * A hop that is not an address is returned as written (after trimming): it matches no allow list.
 * An empty `trustedProxies` trusts nobody.
 */
export const clientIp = (options: {
  readonly remoteAddress: string | undefined
  readonly forwardedFor: string | undefined
  readonly trustedProxies: AllowList
}): string => {
  const peer = options.remoteAddress === undefined ? "" : normalizeIp(options.remoteAddress) ?? options.remoteAddress
  if (options.forwardedFor === undefined || !contains(options.trustedProxies, peer)) return peer
  const hops = options.forwardedFor.split(",").map(hopAddress).filter((hop) => hop !== "")
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i]
    if (hop !== undefined && !contains(options.trustedProxies, hop)) return hop
  }
  return hops[0] ?? peer
}
