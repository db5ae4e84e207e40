/**
 * The wiring of rate limiting: the L2 store (memory or Redis) behind the limiter.
 */
import { Layer } from "effect"
import { RateMetrics } from "../observability/Metrics.ts"
import { RateLimiter } from "../ratelimit/RateLimiter.ts"
import { RateLimitStore } from "../ratelimit/RateLimitStore.ts"
import type { EffectiveConfig } from "./Config.ts"
import { redisConnections } from "./Redis.ts"
import type { RedisConnections } from "./Redis.ts"

type RedisSettings = EffectiveConfig["rateLimits"]["redis"]

/** The rate limits' Redis keys and timeout, which the login throttle shares (it adds `login:`). */
export const rateLimitKeyPrefix = (redis: RedisSettings) => redis.keyPrefix ?? "smsgw:rl:"
export const rateLimitRedisTimeoutMs = (redis: RedisSettings) => redis.timeoutMs ?? 50

/** L2 in memory on one machine, in Redis when several processes share the limits; L1 and the policy in front. */
export const rateLimitLayer = (config: EffectiveConfig, connections: RedisConnections = redisConnections(config)) => {
  const limits = config.rateLimits
  const redis = limits.redis
  const Store = limits.store === "redis"
    ? RateLimitStore.layerOn({
      keyPrefix: rateLimitKeyPrefix(redis),
      timeoutMs: rateLimitRedisTimeoutMs(redis),
      // Round trips at most every 5 ms: batches grow under load, CPU per decision falls (bench/RESULTS.md).
      minIntervalMs: 5
    }).pipe(Layer.provide(connections(limits.redis)))
    : RateLimitStore.layerMemory
  return RateLimiter.layer({
    defaultApp: limits.defaultApp,
    organisation: limits.organisation,
    organisations: limits.organisations,
    nodes: limits.nodes,
    l1Headroom: limits.l1Headroom,
    onStoreFailure: limits.onStoreFailure,
    probeAfterMs: 1000,
    // With Redis, most decisions spend a lease instead of a round trip; in memory every decision is exact.
    maxLeaseUnits: limits.store === "redis" ? 50 : 1,
    leaseMs: 1000
  }).pipe(Layer.provideMerge(Layer.mergeAll(Store, RateMetrics.layer)))
}
