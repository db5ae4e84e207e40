/**
 * The RecipientPolicy entity: one recipient bucket's frequency caps and dedup, decided where the bucket lives.
 */
import { Effect } from "effect"
import { Entity } from "effect/cluster"
import { Rpc } from "effect/rpc"
import { ActorRegistry } from "./ActorRegistry.ts"
import { PolicyBuckets } from "./PolicyBuckets.ts"
import { RecipientPolicy } from "./RecipientPolicyProtocol.ts"
import { logsAs } from "../observability/Logging.ts"

/**
 * A recipient bucket's actor: owns the bucket on the node it runs on (see PolicyBuckets) and decides the requests
 * other nodes send it. Kept alive, so its counters stay in memory while the node lives; a stop writes them out.
 */
const makeBucket = Effect.gen(function*() {
  const address = yield* Entity.CurrentAddress
  const bucket = Number(address.entityId)
  const buckets = yield* PolicyBuckets
  const handle = yield* buckets.open(bucket)
  yield* Entity.keepAlive(true)
  yield* (yield* ActorRegistry).register("RecipientPolicy", address.entityId)

  return RecipientPolicy.of({
    // Decisions are synchronous once the recipients' state is in memory: they need no mailbox order, and a load from
    // the store for one batch must not hold up the next.
    Decide: ({ payload }) => handle.decide(payload.requests),
    Inspect: () =>
      Effect.sync(() => {
        const stats = handle.stats()
        return {
          bucket,
          ...stats,
          hitRate: stats.lookups === 0 ? 1 : 1 - stats.loadedFromStore / stats.lookups,
          persistent: buckets.persistent
        }
      }).pipe(Rpc.fork)
  })
})

export const layer = RecipientPolicy.toLayer(makeBucket.pipe(logsAs("policy")), { concurrency: "unbounded" })
