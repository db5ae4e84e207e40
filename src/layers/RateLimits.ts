import { Layer } from "effect"
import { RateMetrics } from "../observability/Metrics.ts"
import { RateLimiter } from "../ratelimit/RateLimiter.ts"
import { RateLimitStore } from "../ratelimit/RateLimitStore.ts"
import type { GatewayConfig } from "./Config.ts"
import { redisConnections } from "./Redis.ts"
import type { RedisConnections } from "./Redis.ts"

/** L2 in memory on one machine, in Redis when several processes share the limits; L1 and the policy in front. */
export const rateLimitLayer = (config: GatewayConfig, connections: RedisConnections = redisConnections(config)) => {
  const limits = config.rateLimits ?? {}
  const redis = limits.redis ?? {}
  const Store = limits.store === "redis"
    ? RateLimitStore.layerOn({
      keyPrefix: redis.keyPrefix ?? "smsgw:rl:",
      timeoutMs: redis.timeoutMs ?? 50,
      // Round trips at most every 5 ms: batches grow under load, CPU per decision falls (bench/RESULTS.md).
      minIntervalMs: 5
    }).pipe(Layer.provide(connections(limits.redis)))
    : RateLimitStore.layerMemory
  return RateLimiter.layer({
    defaultApp: limits.defaultApp ?? {},
    organisation: limits.organisation ?? {},
    organisations: limits.organisations ?? {},
    nodes: limits.nodes ?? 1,
    l1Headroom: limits.l1Headroom ?? 2,
    onStoreFailure: limits.onStoreFailure ?? "failOpen",
    probeAfterMs: 1000,
    // With Redis, most decisions spend a lease instead of a round trip; in memory every decision is exact.
    maxLeaseUnits: limits.store === "redis" ? 50 : 1,
    leaseMs: 1000
  }).pipe(Layer.provideMerge(Layer.mergeAll(Store, RateMetrics.layer)))
}
