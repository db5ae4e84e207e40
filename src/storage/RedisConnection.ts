/**
 * The one Redis connection a node's stores share (rate limits, policy counters, login throttling): each use brings
 * its own key prefix, its own command deadline (`within`) and its own down/up log lines (`monitor`).
 */
import { Context, Effect, Layer, Metric } from "effect"
import { Redis } from "ioredis"

export interface RedisConnectionOptions {
  readonly host: string
  readonly port: number
  readonly password?: string | undefined
  readonly db?: number | undefined
  /**
   * The connection's outer deadline on every command, at least each use's own: it only bounds what a server that
   * stops answering leaves queued in the client, since each use fails its calls on its own, shorter deadline.
   */
  readonly commandTimeoutMs: number
  /** How long the first connection is awaited at start (and each TCP connect attempt). */
  readonly connectTimeoutMs: number
  /** CLIENT SETNAME: how this node's connection shows in Redis's CLIENT LIST. */
  readonly connectionName?: string | undefined
}

/** One use's health, logged once when it goes down and once when it is back. */
export interface RedisUse {
  /** Logs once that the store is unreachable (until it is ready again). */
  readonly markDown: (reason: string) => void
  /** Logs once that it answers again (a call succeeded). */
  readonly markUp: () => void
}

const redisUp = Metric.gauge("smsgw_redis_up", {
  description: "1 while a use of Redis (the rate-limit store, the policy counter store) reaches it, 0 while not"
})

export const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error))

export class RedisConnection extends Context.Service<RedisConnection, {
  readonly client: Redis
  /** A use of the connection, named in its log lines ("rate-limit store"); also told of the connection's own errors. */
  readonly monitor: (name: string) => RedisUse
}>()("smsgw/storage/RedisConnection") {
  /**
   * An ioredis connection for stores that must never hold their callers up: while disconnected a command fails at
   * once (no offline queue, no resend of an unanswered command — it may have been applied), it reconnects forever and
   * soon (50, 100, 200, 400, then every 500 ms), and is closed with the scope. Starts with the connection up if Redis
   * answers soon; if not, starts anyway and its uses fail calls until it does.
   */
  static readonly layer = (options: RedisConnectionOptions): Layer.Layer<RedisConnection> =>
    Layer.effect(RedisConnection, connect(options))
}

const connect = Effect.fnUntraced(function*(options: RedisConnectionOptions) {
  const context = yield* Effect.context<never>()
  const client = new Redis({
    host: options.host,
    port: options.port,
    ...(options.password !== undefined ? { password: options.password } : {}),
    ...(options.db !== undefined ? { db: options.db } : {}),
    ...(options.connectionName !== undefined ? { connectionName: options.connectionName } : {}),
    lazyConnect: false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    commandTimeout: options.commandTimeoutMs,
    connectTimeout: options.connectTimeoutMs,
    retryStrategy: (times) => Math.min(500, 25 * 2 ** Math.min(times, 5))
  })
  yield* Effect.addFinalizer(() => Effect.sync(() => client.disconnect()))
  // A listener keeps ioredis from printing every failed reconnect; the uses log it.
  client.on("error", () => undefined)

  const where = { host: options.host, port: options.port }
  const monitor = (name: string): RedisUse => {
    let down = false
    const up = Metric.withAttributes(redisUp, { use: name })
    up.updateUnsafe(client.status === "ready" ? 1 : 0, context)
    client.on("ready", () => up.updateUnsafe(1, context))
    const markDown = (reason: string) => {
      up.updateUnsafe(0, context)
      if (down) return
      down = true
      Effect.runForkWith(context)(Effect.logWarning(`${name} unreachable`).pipe(Effect.annotateLogs({ ...where, error: reason })))
    }
    const markUp = () => {
      if (!down) return
      down = false
      up.updateUnsafe(1, context)
      Effect.runForkWith(context)(Effect.logInfo(`${name} reachable again`).pipe(Effect.annotateLogs(where)))
    }
    client.on("error", (error: unknown) => markDown(messageOf(error)))
    client.on("ready", markUp)
    return { markDown, markUp }
  }

  yield* Effect.callback<void>((resume) => {
    if (client.status === "ready") return resume(Effect.void)
    const ready = () => {
      clearTimeout(timer)
      resume(Effect.void)
    }
    const timer = setTimeout(() => {
      client.off("ready", ready)
      resume(Effect.void)
    }, options.connectTimeoutMs)
    client.once("ready", ready)
    return Effect.sync(() => {
      clearTimeout(timer)
      client.off("ready", ready)
    })
  })
  return RedisConnection.of({ client, monitor })
})

/**
 * The call's answer, or its failure (the message) after `timeoutMs` if not settled: a use's own deadline over the
 * shared connection, on a real timer (not the Effect Clock, which a test may hold still).
 */
export const within = <A>(run: () => Promise<A>, timeoutMs: number): Effect.Effect<A, string> =>
  Effect.callback<A, string>((resume) => {
    let settled = false
    const timer = setTimeout(() => {
      settled = true
      resume(Effect.fail(`no answer within ${timeoutMs} ms`))
    }, timeoutMs)
    run().then(
      (value) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        resume(Effect.succeed(value))
      },
      (error: unknown) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        resume(Effect.fail(messageOf(error)))
      }
    )
    return Effect.sync(() => {
      settled = true
      clearTimeout(timer)
    })
  })

/** A connection of a store's own, from the options its standalone layer takes: tests, benchmarks, tools. */
export const ownConnection = (options: {
  readonly host: string
  readonly port: number
  readonly password?: string | undefined
  readonly db?: number | undefined
  readonly timeoutMs: number
}): Layer.Layer<RedisConnection> =>
  RedisConnection.layer({
    host: options.host,
    port: options.port,
    password: options.password,
    db: options.db,
    commandTimeoutMs: Math.max(1000, options.timeoutMs),
    connectTimeoutMs: Math.max(1000, options.timeoutMs * 20)
  })
