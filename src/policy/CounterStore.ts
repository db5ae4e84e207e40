/**
 * Where the recipient buckets write their state behind (see RecipientState): one key per recipient,
 * `${keyPrefix}${recipient}` (not per bucket, so a change of the bucket count keeps every count), holding its serialized state with a TTL of when all of it has expired. A bucket
 * that moves to another node (or a node that restarts) loads it back, so counts and dedup carry on.
 */
import { Context, Effect, Layer, Schema } from "effect"
import { createHash } from "node:crypto"
import { ownConnection, RedisConnection, within } from "../storage/RedisConnection.ts"

/** Sets every key to its value with its TTL in ms, or deletes it when the value is empty. */
export const saveScript = `
for i = 1, #KEYS do
  local value = ARGV[2 * i - 1]
  if value == "" then
    redis.call("DEL", KEYS[i])
  else
    redis.call("SET", KEYS[i], value, "PX", ARGV[2 * i])
  end
end
return #KEYS
`
const saveScriptSha = createHash("sha1").update(saveScript).digest("hex")

export class CounterStoreUnavailable extends Schema.TaggedError<CounterStoreUnavailable>()(
  "CounterStoreUnavailable",
  { message: Schema.String }
) {}

export interface CounterEntry {
  readonly bucket: number
  readonly recipient: string
  /** null: delete the key. */
  readonly value: string | null
  readonly ttlMs: number
}

/** The store's own settings on a shared connection. */
export interface CounterStoreRedisUse {
  /** Put before every key: `${keyPrefix}${recipient}`. */
  readonly keyPrefix: string
  /** Per call (one MGET or one script): not answered in time fails it with CounterStoreUnavailable. */
  readonly timeoutMs: number
}

/** On a connection of its own. */
export interface CounterStoreRedisOptions extends CounterStoreRedisUse {
  readonly host: string
  readonly port: number
  readonly password?: string
  readonly db?: number
}

export class CounterStore extends Context.Service<CounterStore, {
  /** false for the memory layer: nothing to load, writes dropped */
  readonly persistent: boolean
  /** The recipients' state, in the same order (null: none); one MGET. */
  readonly load: (bucket: number, recipients: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<string | null>, CounterStoreUnavailable>
  /** One pipeline: SET key value PX ttl, or DEL when value is null. */
  readonly save: (entries: ReadonlyArray<CounterEntry>) => Effect.Effect<void, CounterStoreUnavailable>
}>()("smsgw/policy/CounterStore") {
  /** Nothing persisted: a single node keeps its buckets' state in memory only. */
  static readonly layerMemory: Layer.Layer<CounterStore> = Layer.succeed(CounterStore, {
    persistent: false,
    load: (_bucket, recipients) => Effect.succeed(recipients.map(() => null)),
    save: () => Effect.void
  })

  /** On the node's shared Redis connection. */
  static readonly layerOn = (options: CounterStoreRedisUse): Layer.Layer<CounterStore, never, RedisConnection> =>
    Layer.effect(CounterStore, makeRedis(options))

  /** layerOn over a connection of its own (tests, benchmarks). */
  static readonly layerRedis = (options: CounterStoreRedisOptions): Layer.Layer<CounterStore> =>
    CounterStore.layerOn(options).pipe(Layer.provide(ownConnection(options)))
}

const makeRedis = Effect.fnUntraced(function*(options: CounterStoreRedisUse) {
  const { client, monitor } = yield* RedisConnection
  const { markDown, markUp } = monitor("policy counter store")

  /** The call as a whole within this store's deadline (the shared connection's own is longer). */
  const call = <A>(run: () => Promise<A>): Effect.Effect<A, CounterStoreUnavailable> =>
    within(run, options.timeoutMs).pipe(
      Effect.matchEffect({
        onFailure: (message) => {
          markDown(message)
          return Effect.fail(new CounterStoreUnavailable({ message }))
        },
        onSuccess: (value) => {
          markUp()
          return Effect.succeed(value)
        }
      })
    )

  const load = (_bucket: number, recipients: ReadonlyArray<string>) =>
    recipients.length === 0
      ? Effect.succeed([])
      : call(() => client.mget(recipients.map((recipient) => `${options.keyPrefix}${recipient}`)))

  /**
   * One command for the whole batch (a script setting each key with its TTL, or deleting it): a pipeline of N SETs
   * costs this process N command objects and promises, which was most of the write-behind's CPU.
   */
  const save = (entries: ReadonlyArray<CounterEntry>) =>
    entries.length === 0 ? Effect.void : call(async () => {
      const keys: Array<string> = []
      const argv: Array<string | number> = []
      for (const entry of entries) {
        keys.push(`${options.keyPrefix}${entry.recipient}`)
        // An empty value deletes (a serialized state is never empty); PX needs a positive integer.
        argv.push(entry.value ?? "", entry.value === null ? 0 : Math.max(1, Math.ceil(entry.ttlMs)))
      }
      const args = ([saveScriptSha, keys.length] as Array<string | number>).concat(keys, argv)
      const run = () => client.call("EVALSHA", args)
      await run().catch((error: unknown) => {
        if (!(error instanceof Error && error.message.startsWith("NOSCRIPT"))) throw error
        return client.script("LOAD", saveScript).then(run)
      })
    })

  return CounterStore.of({ persistent: true, load, save })
})
