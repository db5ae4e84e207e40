/**
 * Throttling of failed sign-ins per (account, address) and per address, of registrations and of invitations.
 */
import { Context, Effect, Layer, Schema } from "effect"
import { emailKey } from "./Identity.ts"
import { formatAddress, parseAddress } from "./IpAllowList.ts"

export class LoginThrottled extends Schema.TaggedError<LoginThrottled>()("LoginThrottled", {
  retryAfterSeconds: Schema.Int,
  /** The first refusal of this account from this address in its window: the one worth an audit entry. */
  firstRefusal: Schema.Boolean
}) {}

export interface LoginKey {
  /** What the attempt names: a user's email, or `app:<appId>`. */
  readonly account: string
  readonly ip: string
}

export interface Limit {
  /** Attempts allowed per window; failures and attempts still in flight count. */
  readonly max: number
  readonly windowMs: number
}

interface Counter {
  failures: number
  /** Checks passed whose outcome is not recorded yet: parallel guesses count before their KDF finishes. */
  inflight: number
  readonly resetAt: number
}

/**
 * Counters per key in a fixed window that opens at the key's first attempt. Entries are kept in insertion order,
 * which is also resetAt order (a window that expires is deleted and re-inserted), so expired ones are swept from
 * the front; past `maxEntries` the oldest goes.
 */
const makeWindow = (limit: Limit, maxEntries: number) => {
  const counters = new Map<string, Counter>()
  const sweep = (now: number) => {
    for (const [key, c] of counters) {
      if (c.resetAt > now && counters.size <= maxEntries) break
      counters.delete(key)
    }
  }
  const live = (key: string, now: number): Counter | undefined => {
    const c = counters.get(key)
    if (c !== undefined && c.resetAt <= now) {
      counters.delete(key)
      return undefined
    }
    return c
  }
  const open = (key: string, now: number): Counter => {
    const existing = live(key, now)
    if (existing !== undefined) return existing
    const c: Counter = { failures: 0, inflight: 0, resetAt: now + limit.windowMs }
    counters.set(key, c)
    sweep(now)
    return c
  }
  return {
    /** Seconds to wait when the key is at its limit, else undefined. */
    blocked: (key: string, now: number): number | undefined => {
      const c = live(key, now)
      if (c === undefined || c.failures + c.inflight < limit.max) return undefined
      return Math.max(1, Math.ceil((c.resetAt - now) / 1000))
    },
    begin: (key: string, now: number) => {
      open(key, now).inflight++
    },
    fail: (key: string, now: number) => {
      const c = open(key, now)
      c.inflight = Math.max(0, c.inflight - 1)
      c.failures++
    },
    settle: (key: string, now: number) => {
      const c = live(key, now)
      if (c !== undefined) c.inflight = Math.max(0, c.inflight - 1)
    },
    clear: (key: string) => {
      counters.delete(key)
    },
    size: () => counters.size
  }
}

export const accountKey = emailKey

/** IPv6 clients get a /64 each, so one host cannot rotate through its subnet to reset the count. */
export const ipKey = (ip: string): string => {
  const a = parseAddress(ip)
  if (a === undefined) return ip
  if (a.family === 4) return formatAddress(a)
  return `${formatAddress({ family: 6, words: [a.words[0], a.words[1], 0, 0] })}/64`
}

/** An address never contains `|`, so the pair key is unambiguous whatever the account holds. */
export const pairKey = (key: LoginKey): string => `${ipKey(key.ip)}|${accountKey(key.account)}`

export interface ThrottleLimits {
  /** Failures of one account from one address: a stranger's guesses lock only the stranger's address out. */
  readonly perAccount: Limit
  /** Failures from one address over every account: one host spraying many accounts. */
  readonly perIp: Limit
  /** Registrations from one address, successful or not (each costs a password hash and an organisation). */
  readonly registrations: Limit
  /** Invitations sent by one organisation: each is a mail to an address of the sender's choosing. */
  readonly invitations: Limit
}

/**
 * Login attempts per (account, client address) and per client address. Call `check` before verifying a password,
 * then exactly one of `recordFailure` or `recordSuccess`: a passing check reserves an attempt, so parallel guesses
 * cannot all pass while their KDFs run. A reservation nobody records expires with its window.
 *
 * There is deliberately no limit per account over all addresses: whatever its size, a botnet could reach it and lock
 * the owner out, which is the attack this design removes. Guessing from many addresses stays bounded by each
 * address's own budget and by the password rules (see docs/security.md).
 */
export class LoginThrottle extends Context.Service<LoginThrottle, {
  check(key: LoginKey): Effect.Effect<void, LoginThrottled>
  recordFailure(key: LoginKey): Effect.Effect<void>
  /** Clears the (account, address) counter; the address keeps its failures. */
  recordSuccess(key: LoginKey): Effect.Effect<void>
  /** Counts one registration from the address, refusing it past the limit. */
  registration(ip: string): Effect.Effect<void, LoginThrottled>
  /** Counts one invitation sent by the organisation, refusing it past the limit. */
  invitation(orgId: string): Effect.Effect<void, LoginThrottled>
  /** Keys held (pairs + addresses + registrations + invitations), for tests and metrics. */
  readonly size: Effect.Effect<number>
}>()("smsgw/auth/LoginThrottle") {
  static readonly layerMemory = (options: ThrottleLimits & {
    /** Keys kept per dimension; 100,000 by default. */
    readonly maxEntries?: number
  }): Layer.Layer<LoginThrottle> =>
    Layer.sync(LoginThrottle, () => {
      const maxEntries = Math.max(1, options.maxEntries ?? 100_000)
      const pairs = makeWindow(options.perAccount, maxEntries)
      const ips = makeWindow(options.perIp, maxEntries)
      const refusals = makeWindow({ max: 1, windowMs: options.perAccount.windowMs }, maxEntries)
      const registrations = makeWindow(options.registrations, maxEntries)
      const invitations = makeWindow(options.invitations, maxEntries)
      /** One more in the key's window, or the wait until the window has room. */
      const spend = (window: ReturnType<typeof makeWindow>, key: string) =>
        Effect.clockWith((clock) => {
          const now = clock.currentTimeMillisUnsafe()
          const wait = window.blocked(key, now)
          if (wait !== undefined) return Effect.fail(new LoginThrottled({ retryAfterSeconds: wait, firstRefusal: false }))
          window.fail(key, now)
          return Effect.void
        })
      return LoginThrottle.of({
        check: (key) =>
          Effect.clockWith((clock) => {
            const now = clock.currentTimeMillisUnsafe()
            const pair = pairKey(key)
            const ip = ipKey(key.ip)
            const wait = Math.max(pairs.blocked(pair, now) ?? 0, ips.blocked(ip, now) ?? 0)
            if (wait > 0) {
              const firstRefusal = refusals.blocked(pair, now) === undefined
              if (firstRefusal) refusals.fail(pair, now)
              return Effect.fail(new LoginThrottled({ retryAfterSeconds: wait, firstRefusal }))
            }
            pairs.begin(pair, now)
            ips.begin(ip, now)
            return Effect.void
          }),
        recordFailure: (key) =>
          Effect.clockWith((clock) =>
            Effect.sync(() => {
              const now = clock.currentTimeMillisUnsafe()
              pairs.fail(pairKey(key), now)
              ips.fail(ipKey(key.ip), now)
            })
          ),
        recordSuccess: (key) =>
          Effect.clockWith((clock) =>
            Effect.sync(() => {
              pairs.clear(pairKey(key))
              ips.settle(ipKey(key.ip), clock.currentTimeMillisUnsafe())
            })
          ),
        registration: (ip) => spend(registrations, ipKey(ip)),
        invitation: (orgId) => spend(invitations, orgId),
        size: Effect.sync(() => pairs.size() + ips.size() + registrations.size() + invitations.size())
      })
    })
}
