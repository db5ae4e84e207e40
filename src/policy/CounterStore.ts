/**
 * Where the recipient buckets write their state behind (see RecipientState): one key per recipient,
 * `${keyPrefix}${recipient}` (not per bucket, so a change of the bucket count keeps every count), holding its serialized state with a TTL of when all of it has expired. A bucket
 * that moves to another node (or a node that restarts) loads it back, so counts and dedup carry on.
 */
import { Context, Effect, Layer, Schema } from "effect"
import { createHash } from "node:crypto"
import { Redis } from "ioredis"

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

export interface CounterStoreRedisOptions {
  readonly host: string
  readonly port: number
  readonly password?: string
  readonly db?: number
  /** Put before every key: `${keyPrefix}${recipient}`. */
  readonly keyPrefix: string
  /** Per call (one MGET or one pipeline): not answered in time fails it with CounterStoreUnavailable. */
  readonly timeoutMs: number
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

  static readonly layerRedis = (options: CounterStoreRedisOptions): Layer.Layer<CounterStore> =>
    Layer.effect(CounterStore, makeRedis(options))
}

const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error))

const makeRedis = Effect.fnUntraced(function*(options: CounterStoreRedisOptions) {
  const context = yield* Effect.context<never>()
  const connectTimeoutMs = Math.max(1000, options.timeoutMs * 20)
  const client = new Redis({
    host: options.host,
    port: options.port,
    ...(options.password !== undefined ? { password: options.password } : {}),
    ...(options.db !== undefined ? { db: options.db } : {}),
    lazyConnect: false,
    // While disconnected a call fails at once: the caller decides on memory alone (load) or retries later (save).
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    commandTimeout: options.timeoutMs,
    connectTimeout: connectTimeoutMs,
    // Reconnect forever, soon: 50, 100, 200, 400, then every 500 ms.
    retryStrategy: (times) => Math.min(500, 25 * 2 ** Math.min(times, 5))
  })
  yield* Effect.addFinalizer(() => Effect.sync(() => client.disconnect()))

  const where = { host: options.host, port: options.port }
  let down = false
  const markDown = (reason: string) => {
    if (down) return
    down = true
    Effect.runForkWith(context)(
      Effect.logWarning("policy counter store unreachable").pipe(Effect.annotateLogs({ ...where, error: reason }))
    )
  }
  const markUp = () => {
    if (!down) return
    down = false
    Effect.runForkWith(context)(Effect.logInfo("policy counter store reachable again").pipe(Effect.annotateLogs(where)))
  }
  // A listener also keeps ioredis from printing every failed reconnect.
  client.on("error", (error: unknown) => markDown(messageOf(error)))
  client.on("ready", markUp)
  // Start with the connection up if Redis answers soon; if not, start anyway and fail calls until it does.
  yield* Effect.callback<void>((resume) => {
    if (client.status === "ready") return resume(Effect.void)
    const ready = () => {
      clearTimeout(timer)
      resume(Effect.void)
    }
    const timer = setTimeout(() => {
      client.off("ready", ready)
      resume(Effect.void)
    }, connectTimeoutMs)
    client.once("ready", ready)
    return Effect.sync(() => {
      clearTimeout(timer)
      client.off("ready", ready)
    })
  })

  /**
   * The call's promise, failed after timeoutMs if not settled. ioredis's commandTimeout covers each command already;
   * this deadline covers the call as a whole, on a real timer (not the Effect Clock, which a test may hold still).
   */
  const call = <A>(run: () => Promise<A>): Effect.Effect<A, CounterStoreUnavailable> =>
    Effect.callback<A, CounterStoreUnavailable>((resume) => {
      let settled = false
      const failWith = (message: string) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        markDown(message)
        resume(Effect.fail(new CounterStoreUnavailable({ message })))
      }
      const timer = setTimeout(() => failWith(`no answer within ${options.timeoutMs} ms`), options.timeoutMs)
      run().then(
        (value) => {
          if (settled) return
          settled = true
          clearTimeout(timer)
          markUp()
          resume(Effect.succeed(value))
        },
        (error: unknown) => failWith(messageOf(error))
      )
      return Effect.sync(() => {
        settled = true
        clearTimeout(timer)
      })
    })

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
