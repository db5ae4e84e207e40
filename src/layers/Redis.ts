/**
 * The node's Redis connections: one per distinct server its stores are configured on (rate limits, the policy's
 * counters, login throttling), built once however many stores use it (a Layer is built once per reference).
 */
import type { Layer } from "effect"
import { RedisConnection } from "../storage/RedisConnection.ts"
import type { EffectiveConfig } from "./Config.ts"

export type RedisSettings = EffectiveConfig["rateLimits"]["redis"]

/** The connection for a store's settings (`rateLimits.redis`, `policy.redis`): the same layer for the same server. */
export type RedisConnections = (settings: RedisSettings) => Layer.Layer<RedisConnection>

export const redisConnections = (config: EffectiveConfig): RedisConnections => {
  const limits = config.rateLimits.redis
  const timeouts = [limits.timeoutMs ?? 50, config.policy.redis?.timeoutMs ?? limits.timeoutMs ?? 200]
  const layers = new Map<string, Layer.Layer<RedisConnection>>()
  return (settings) => {
    const host = settings.host
    const port = settings.port
    const key = JSON.stringify([host, port, settings.password ?? null, settings.db ?? 0])
    let layer = layers.get(key)
    if (layer === undefined) {
      layer = RedisConnection.layer({
        host,
        port,
        password: settings.password,
        db: settings.db,
        // Each store keeps its own deadline; the connection's only bounds what a hung server leaves queued.
        commandTimeoutMs: Math.max(1000, ...timeouts),
        connectTimeoutMs: Math.max(1000, 20 * Math.min(...timeouts)),
        connectionName: "smsgw"
      })
      layers.set(key, layer)
    }
    return layer
  }
}
