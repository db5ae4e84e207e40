/**
 * One status callback's HTTP POST, made safe to point at a URL an integrator chose:
 * - The host is resolved here (every address it has) and each address checked: private, loopback, link-local,
 *   unique-local, unspecified, multicast, broadcast and reserved ranges, and the IPv4-mapped and NAT64 forms of them,
 *   are refused unless `allowPrivateNetworks` is on. The connection goes to the checked address only: the request's
 *   `lookup` answers that address and nothing else, so a second resolution (DNS rebinding) cannot swap it.
 * - https keeps certificate checking on, with the URL's host as SNI and as the name the certificate must carry.
 * - Redirects are never followed (a 3xx is the answer); at most 4 KB of a response body is read, then dropped.
 * - One deadline covers resolving, connecting and the whole response.
 */
import { Effect, Schema } from "effect"
import type { Scope } from "effect"
import ipaddr from "ipaddr.js"
import { lookup } from "node:dns/promises"
import http from "node:http"
import https from "node:https"
import { isIP } from "node:net"
import type { LookupFunction } from "node:net"
import type { CallbackFailureReason } from "../observability/Metrics.ts"

/** Bytes of a response body read before the rest is dropped. */
export const maxResponseBytes = 4096

export class PostFailed extends Schema.TaggedError<PostFailed>()("PostFailed", {
  reason: Schema.Literals(["timeout", "refused_address", "network"]),
  message: Schema.String
}) {}

export interface PostOptions {
  readonly timeoutMs: number
  /** Off: only public unicast addresses are called. */
  readonly allowPrivateNetworks: boolean
}

export interface Post {
  readonly url: string
  readonly body: string
  readonly headers: Readonly<Record<string, string>>
}

/** Why an address may not be called (`private`, `loopback`, …); undefined when it is a public unicast address. */
export const refusedKind = (address: string): string | undefined => {
  if (!ipaddr.isValid(address)) return "not an IP address"
  let parsed = ipaddr.parse(address)
  if (parsed.kind() === "ipv6") {
    const v6 = parsed as ipaddr.IPv6
    if (v6.isIPv4MappedAddress()) parsed = v6.toIPv4Address()
    else if (v6.range() === "rfc6052") {
      // NAT64 (64:ff9b::/96): the IPv4 address in its last 32 bits is the one reached.
      const bytes = v6.toByteArray().slice(12)
      parsed = ipaddr.fromByteArray(bytes)
    }
  }
  const range = parsed.range()
  switch (range) {
    case "unicast":
      return undefined
    case "private":
    case "carrierGradeNat":
      return "private"
    case "loopback":
      return "loopback"
    case "linkLocal":
      return "link-local"
    case "uniqueLocal":
      return "unique-local"
    case "unspecified":
    case "multicast":
    case "broadcast":
      return range
    default:
      return "reserved"
  }
}

/** The refusal a delivery reports (and the API shows the integrator). */
export const refusedAddressMessage = (address: string, kind: string) =>
  `address ${address} is ${kind}; callbacks.allowPrivateNetworks is off`

/** A lookup that answers the address already checked, whatever it is asked: the connection goes nowhere else. */
const pinnedLookup = (address: string, family: number): LookupFunction => (_hostname, options, callback) => {
  if (options.all === true) callback(null, [{ address, family }])
  else callback(null, address, family)
}

/** The URL's host without IPv6 brackets, as the resolver and the socket take it. */
const hostOf = (url: URL) => url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname

/**
 * The poster: keep-alive agents for http and https (connections reused per host and port, each opened to a checked
 * address), closed with the scope.
 */
export const makePoster = (options: PostOptions): Effect.Effect<(post: Post) => Effect.Effect<number, PostFailed>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const agents = yield* Effect.acquireRelease(
      Effect.sync(() => ({
        http: new http.Agent({ keepAlive: true, keepAliveMsecs: 30_000 }),
        https: new https.Agent({ keepAlive: true, keepAliveMsecs: 30_000 })
      })),
      (a) =>
        Effect.sync(() => {
          a.http.destroy()
          a.https.destroy()
        })
    )

    /** Every address of the host, each checked; the first is the one called. */
    const resolve = (host: string) =>
      Effect.gen(function*() {
        const addresses = isIP(host) !== 0
          ? [{ address: host, family: isIP(host) }]
          : yield* Effect.tryPromise({
            try: () => lookup(host, { all: true, verbatim: true }),
            catch: (e) =>
              new PostFailed({
                reason: "network",
                message: `could not resolve ${host}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`
              })
          })
        const first = addresses[0]
        if (first === undefined) return yield* new PostFailed({ reason: "network", message: `${host} has no address` })
        if (!options.allowPrivateNetworks) {
          for (const a of addresses) {
            const kind = refusedKind(a.address)
            if (kind !== undefined) return yield* new PostFailed({ reason: "refused_address", message: refusedAddressMessage(a.address, kind) })
          }
        }
        return first
      })

    const request = (url: URL, address: { readonly address: string; readonly family: number }, post: Post) =>
      Effect.callback<number, PostFailed>((resume) => {
        const secure = url.protocol === "https:"
        const host = hostOf(url)
        const body = Buffer.from(post.body, "utf8")
        const req = (secure ? https : http).request({
          method: "POST",
          protocol: url.protocol,
          hostname: host,
          port: url.port === "" ? (secure ? 443 : 80) : Number(url.port),
          path: `${url.pathname}${url.search}`,
          headers: { ...post.headers, "content-length": String(body.length) },
          agent: secure ? agents.https : agents.http,
          lookup: pinnedLookup(address.address, address.family),
          // SNI names the host (never an IP literal); the certificate is checked against it as usual.
          ...(secure && isIP(host) === 0 ? { servername: host } : {})
        })
        req.on("response", (res) => {
          const status = res.statusCode ?? 0
          let read = 0
          const done = () => resume(Effect.succeed(status))
          res.on("data", (chunk: Buffer) => {
            read += chunk.length
            if (read > maxResponseBytes) {
              res.destroy()
              done()
            }
          })
          res.on("end", done)
          // The answer's status is in: a body cut short changes nothing.
          res.on("error", done)
          res.on("close", done)
        })
        req.on("error", (e: NodeJS.ErrnoException) =>
          resume(Effect.fail(new PostFailed({ reason: "network", message: `${e.code ?? "error"}: ${e.message}` }))))
        req.end(body)
        return Effect.sync(() => req.destroy())
      })

    return (post: Post) =>
      Effect.gen(function*() {
        const url = yield* Effect.try({
          try: () => new URL(post.url),
          catch: () => new PostFailed({ reason: "network", message: "the callback URL cannot be read" })
        })
        const address = yield* resolve(hostOf(url))
        return yield* request(url, address, post)
      }).pipe(
        Effect.timeoutOrElse({
          duration: options.timeoutMs,
          orElse: () => Effect.fail(new PostFailed({ reason: "timeout", message: `no complete answer within ${options.timeoutMs} ms` }))
        })
      )
  })

/** The reason class of an HTTP answer that is not a success. */
export const statusReason = (status: number): CallbackFailureReason =>
  status >= 300 && status < 400 ? "redirect" : status >= 400 && status < 500 ? "http_4xx" : "http_5xx"
