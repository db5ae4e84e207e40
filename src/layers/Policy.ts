/**
 * The wiring of the contact policy: its document, blacklists and their files, counters (memory or Redis), bucket
 * actors.
 */
import { Layer } from "effect"
import { PolicyBuckets } from "../actors/PolicyBuckets.ts"
import * as RecipientPolicyActor from "../actors/RecipientPolicy.ts"
import { PolicyMetrics } from "../observability/PolicyMetrics.ts"
import { ContactPolicy } from "../pipeline/ContactPolicy.ts"
import { PolicyDispatcher } from "../pipeline/PolicyDispatcher.ts"
import { Blacklists } from "../policy/Blacklists.ts"
import { CounterStore } from "../policy/CounterStore.ts"
import { PolicyConfig } from "../policy/PolicyConfig.ts"
import { RuleCounts } from "../policy/RuleCounts.ts"
import { ObjectStore } from "../storage/ObjectStore.ts"
import type { EffectiveConfig } from "./Config.ts"
import { redisConnections } from "./Redis.ts"
import type { RedisConnections } from "./Redis.ts"

/** Blacklist files: the configured S3 bucket, or a local folder. */
export const objectStoreLayer = (config: EffectiveConfig) => {
  const store = config.objectStore
  if (store.kind === "local") return ObjectStore.layerLocal({ root: store.root }).pipe(Layer.orDie)
  return ObjectStore.layerS3({
    bucket: store.bucket,
    region: store.region,
    ...(store.endpoint !== undefined ? { endpoint: store.endpoint } : {}),
    ...(store.forcePathStyle !== undefined ? { forcePathStyle: store.forcePathStyle } : {}),
    ...(store.accessKeyId !== undefined ? { accessKeyId: store.accessKeyId } : {}),
    ...(store.secretAccessKey !== undefined ? { secretAccessKey: store.secretAccessKey } : {}),
    timeoutMs: store.timeoutMs,
    partBytes: store.partSizeMiB * 1024 * 1024
  })
}

/** Counters in memory on one machine; in Redis wherever a bucket can move to another node. */
const counterStoreLayer = (config: EffectiveConfig, connections: RedisConnections) => {
  const policy = config.policy
  // Unset: the rate limits' store and Redis connection (one Redis for both is the usual deployment).
  const kind = policy.store ?? config.rateLimits.store
  if (kind === "memory") return CounterStore.layerMemory
  // The rate limits' connection itself when policy.redis names the same server (or is absent).
  const redis = policy.redis ?? config.rateLimits.redis
  return CounterStore.layerOn({
    keyPrefix: policy.redis?.keyPrefix ?? "smsgw:pol:",
    timeoutMs: redis.timeoutMs ?? 200
  }).pipe(Layer.provide(connections(redis)))
}

/**
 * Stage 3, the contact policy: the live document, blacklists, the recipient bucket actors with their counters, and
 * the dispatcher that takes decisions to them. Needs SQL, the cluster (Sharding) and the actor registry.
 */
export const policyLayer = (
  config: EffectiveConfig,
  connections: RedisConnections = redisConnections(config),
  /** The object store the process shares (blacklists here, CDR exports elsewhere): one client for both. */
  objects: Layer.Layer<ObjectStore> = objectStoreLayer(config)
) => {
  const policy = config.policy
  const buckets = policy.buckets
  const Buckets = PolicyBuckets.layer({
    maxRecipientsPerBucket: Math.max(100, Math.ceil(policy.maxRecipients / buckets)),
    flushIntervalMs: policy.flushIntervalMs
  }).pipe(Layer.provide(counterStoreLayer(config, connections)))
  const Actors = RecipientPolicyActor.layer.pipe(
    Layer.provideMerge(PolicyDispatcher.layerWith({ windowMs: config.cluster === undefined ? 1 : 5, timeoutMs: 10_000 })),
    Layer.provideMerge(Buckets)
  )
  const Documents = Layer.mergeAll(
    PolicyConfig.layer({
      seed: { rules: policy.rules, ...(policy.blacklists !== undefined ? { blacklists: policy.blacklists } : {}) },
      pollIntervalMs: 1000
    }),
    Blacklists.layer({ pollIntervalMs: policy.blacklistPollSeconds * 1000, overlayPollIntervalMs: 1000 }).pipe(
      Layer.provide(objects)
    )
  )
  return ContactPolicy.layer({ buckets }).pipe(
    Layer.provideMerge(Layer.mergeAll(Actors, Documents)),
    Layer.provideMerge(Layer.mergeAll(PolicyMetrics.layer, RuleCounts.layer({ flushIntervalMs: 1000, retentionMinutes: 8 * 24 * 60 })))
  )
}
