/**
 * auth's LoginThrottle on the node's shared Redis connection (here, not in auth/, because the connection is storage's).
 */
import { Effect, Layer } from "effect"
import type { Limit, LoginKey, ThrottleLimits } from "../auth/LoginThrottle.ts"
import { ipKey, LoginThrottle, LoginThrottled, pairKey } from "../auth/LoginThrottle.ts"
import { ownConnection, RedisConnection, within } from "./RedisConnection.ts"

/**
 * KEYS: (account, address) counter, address counter, refusal marker. ARGV: pair max, pair window ms, address max,
 * address window ms. Refuses when either counter is at its limit, answering {wait ms, 1 if this is the pair's first
 * refusal in its window}; otherwise counts the attempt on both, starting a window on a new counter. Atomic, so
 * parallel guesses on several nodes cannot race past the limit.
 */
const checkScript = `
local a = tonumber(redis.call('GET', KEYS[1]) or '0')
local i = tonumber(redis.call('GET', KEYS[2]) or '0')
local wait = 0
if a >= tonumber(ARGV[1]) then wait = math.max(wait, redis.call('PTTL', KEYS[1])) end
if i >= tonumber(ARGV[3]) then wait = math.max(wait, redis.call('PTTL', KEYS[2])) end
if wait > 0 then
  local first = redis.call('SET', KEYS[3], '1', 'PX', ARGV[2], 'NX')
  return {wait, first and 1 or 0}
end
if redis.call('INCR', KEYS[1]) == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if redis.call('INCR', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[4]) end
return {0, 0}
`

/** KEYS: a counter (registrations of an address, invitations of an organisation). ARGV: max, window ms. Answers the wait in ms, 0 when counted. */
const spendScript = `
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n >= tonumber(ARGV[1]) then return math.max(1, redis.call('PTTL', KEYS[1])) end
if redis.call('INCR', KEYS[1]) == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`

export interface LoginThrottleRedisUse extends ThrottleLimits {
  /** Put before every key: `${keyPrefix}p:…`, `i:…`, `r:…`, `g:…`, `v:…`. */
  readonly keyPrefix: string
  /** Per call: not answered in time, this node's own in-memory throttle decides. */
  readonly timeoutMs: number
}

/**
 * Login throttling shared by every node of a cluster: counters in Redis, so an attacker gets the same number of
 * guesses whichever node answers. A failed attempt is counted when it is checked (before the password hash runs); a
 * success clears the (account, address) counter and gives the address its attempt back. While Redis is unreachable, each
 * node falls back to its own in-memory throttle rather than letting guesses through unchecked.
 */
export const layerOn = (options: LoginThrottleRedisUse): Layer.Layer<LoginThrottle, never, RedisConnection> =>
  Layer.effect(
    LoginThrottle,
    Effect.gen(function*() {
      const fallback = yield* LoginThrottle.pipe(
        Effect.provide(LoginThrottle.layerMemory(options))
      )
      const { client } = yield* RedisConnection
      const keys = (key: LoginKey) => [
        `${options.keyPrefix}p:${pairKey(key)}`,
        `${options.keyPrefix}i:${ipKey(key.ip)}`,
        `${options.keyPrefix}r:${pairKey(key)}`
      ] as const
      const redis = <A>(f: () => Promise<A>) => within(f, options.timeoutMs)
      /** One more on a shared counter; this node's own while Redis does not answer. */
      const spend = (key: string, limit: Limit, orElse: Effect.Effect<void, LoginThrottled>) =>
        redis(() => client.eval(spendScript, 1, key, limit.max, limit.windowMs)).pipe(
          Effect.matchEffect({
            onFailure: () => orElse,
            onSuccess: (wait) =>
              Number(wait) > 0
                ? Effect.fail(new LoginThrottled({ retryAfterSeconds: Math.max(1, Math.ceil(Number(wait) / 1000)), firstRefusal: false }))
                : Effect.void
          })
        )

      return LoginThrottle.of({
        check: (key) => {
          const [pair, ip, refused] = keys(key)
          return redis(() =>
            client.eval(checkScript, 3, pair, ip, refused, options.perAccount.max, options.perAccount.windowMs, options.perIp.max, options.perIp.windowMs)
          ).pipe(
            Effect.matchEffect({
              onFailure: () => fallback.check(key),
              onSuccess: (reply) => {
                const [wait, first] = Array.isArray(reply) ? reply.map(Number) : [0, 0]
                return wait !== undefined && wait > 0
                  ? Effect.fail(new LoginThrottled({ retryAfterSeconds: Math.max(1, Math.ceil(wait / 1000)), firstRefusal: first === 1 }))
                  : Effect.void
              }
            })
          )
        },
        // The attempt was counted when it was checked.
        recordFailure: (key) => fallback.recordFailure(key),
        recordSuccess: (key) => {
          const [pair, ip] = keys(key)
          return redis(() => client.multi().del(pair).decr(ip).exec()).pipe(
            Effect.ignore,
            Effect.andThen(fallback.recordSuccess(key))
          )
        },
        registration: (ip) =>
          spend(`${options.keyPrefix}g:${ipKey(ip)}`, options.registrations, fallback.registration(ip)),
        invitation: (orgId) => spend(`${options.keyPrefix}v:${orgId}`, options.invitations, fallback.invitation(orgId)),
        size: fallback.size
      })
    })
  )

/** layerOn over a connection of its own (tests). */
export const layerRedis = (options: LoginThrottleRedisUse & {
  readonly host: string
  readonly port: number
  readonly password?: string | undefined
  readonly db?: number | undefined
}): Layer.Layer<LoginThrottle> => layerOn(options).pipe(Layer.provide(ownConnection(options)))
