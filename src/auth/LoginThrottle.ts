import { Context, Effect, Layer, Schema } from "effect"
import { emailKey } from "./Identity.ts"
import { formatAddress, parseAddress } from "./IpAllowList.ts"

export class LoginThrottled extends Schema.TaggedError<LoginThrottled>()("LoginThrottled", {
  retryAfterSeconds: Schema.Int
}) {}

export interface LoginKey {
  readonly email: string
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

/**
 * Login attempts per account and per client address. Call `check` before verifying a password, then exactly one
 * of `recordFailure` or `recordSuccess`: a passing check reserves an attempt, so parallel guesses cannot all pass
 * while their KDFs run. A reservation nobody records expires with its window.
 */
export class LoginThrottle extends Context.Service<LoginThrottle, {
  check(key: LoginKey): Effect.Effect<void, LoginThrottled>
  recordFailure(key: LoginKey): Effect.Effect<void>
  /** Clears the account's counter; the address keeps its failures. */
  recordSuccess(key: LoginKey): Effect.Effect<void>
  /** Keys held (accounts + addresses), for tests and metrics. */
  readonly size: Effect.Effect<number>
}>()("smsgw/auth/LoginThrottle") {
  static readonly layerMemory = (options: {
    readonly perAccount: Limit
    readonly perIp: Limit
    /** Keys kept per dimension; 100,000 by default. */
    readonly maxEntries?: number
  }): Layer.Layer<LoginThrottle> =>
    Layer.sync(LoginThrottle, () => {
      const maxEntries = Math.max(1, options.maxEntries ?? 100_000)
      const accounts = makeWindow(options.perAccount, maxEntries)
      const ips = makeWindow(options.perIp, maxEntries)
      return LoginThrottle.of({
        check: (key) =>
          Effect.clockWith((clock) => {
            const now = clock.currentTimeMillisUnsafe()
            const account = accountKey(key.email)
            const ip = ipKey(key.ip)
            const wait = Math.max(accounts.blocked(account, now) ?? 0, ips.blocked(ip, now) ?? 0)
            if (wait > 0) return Effect.fail(new LoginThrottled({ retryAfterSeconds: wait }))
            accounts.begin(account, now)
            ips.begin(ip, now)
            return Effect.void
          }),
        recordFailure: (key) =>
          Effect.clockWith((clock) =>
            Effect.sync(() => {
              const now = clock.currentTimeMillisUnsafe()
              accounts.fail(accountKey(key.email), now)
              ips.fail(ipKey(key.ip), now)
            })
          ),
        recordSuccess: (key) =>
          Effect.clockWith((clock) =>
            Effect.sync(() => {
              accounts.clear(accountKey(key.email))
              ips.settle(ipKey(key.ip), clock.currentTimeMillisUnsafe())
            })
          ),
        size: Effect.sync(() => accounts.size() + ips.size())
      })
    })
}
