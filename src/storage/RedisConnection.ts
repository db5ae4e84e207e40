import { Effect } from "effect"
import type { Scope } from "effect"
import { Redis } from "ioredis"

export interface RedisConnectionOptions {
  readonly host: string
  readonly port: number
  readonly password?: string
  readonly db?: number
  /** Every command's deadline; the first connection is awaited up to 20 times this (at least 1 s). */
  readonly timeoutMs: number
  /** What the connection serves, in its log lines ("rate-limit store"). */
  readonly name: string
}

export interface RedisConnection {
  readonly client: Redis
  /** Logs once that the store is unreachable (until it is ready again). */
  readonly markDown: (reason: string) => void
  /** Logs once that it answers again (a call succeeded). */
  readonly markUp: () => void
}

export const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error))

/**
 * An ioredis connection for a store that must never hold its callers up: while disconnected a command fails at once
 * (no offline queue, no resend of an unanswered command — it may have been applied), it reconnects forever and soon
 * (50, 100, 200, 400, then every 500 ms), logs once when it goes down and once when it is back, and is closed with
 * the scope. Starts with the connection up if Redis answers soon; if not, starts anyway and fails calls until it does.
 */
export const connectRedis = (options: RedisConnectionOptions): Effect.Effect<RedisConnection, never, Scope.Scope> =>
  Effect.gen(function*() {
    const context = yield* Effect.context<never>()
    const connectTimeoutMs = Math.max(1000, options.timeoutMs * 20)
    const client = new Redis({
      host: options.host,
      port: options.port,
      ...(options.password !== undefined ? { password: options.password } : {}),
      ...(options.db !== undefined ? { db: options.db } : {}),
      lazyConnect: false,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      commandTimeout: options.timeoutMs,
      connectTimeout: connectTimeoutMs,
      retryStrategy: (times) => Math.min(500, 25 * 2 ** Math.min(times, 5))
    })
    yield* Effect.addFinalizer(() => Effect.sync(() => client.disconnect()))

    const where = { host: options.host, port: options.port }
    let down = false
    const markDown = (reason: string) => {
      if (down) return
      down = true
      Effect.runForkWith(context)(
        Effect.logWarning(`${options.name} unreachable`).pipe(Effect.annotateLogs({ ...where, error: reason }))
      )
    }
    const markUp = () => {
      if (!down) return
      down = false
      Effect.runForkWith(context)(Effect.logInfo(`${options.name} reachable again`).pipe(Effect.annotateLogs(where)))
    }
    // A listener also keeps ioredis from printing every failed reconnect.
    client.on("error", (error: unknown) => markDown(messageOf(error)))
    client.on("ready", markUp)
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
    return { client, markDown, markUp }
  })
