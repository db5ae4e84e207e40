/**
 * The client side of the link and pool actors: the pipeline, recovery and the link actors themselves (failover) hand
 * messages to a target through it, so it lives with the actors.
 */
import { Context, Effect, Layer } from "effect"
import { SmppLink } from "./SmppLinkProtocol.ts"
import type { Outbound } from "./SmppLinkProtocol.ts"
import { VirtualPool } from "./VirtualPoolProtocol.ts"
import { targetKey } from "../routing/Target.ts"
import type { Target } from "../routing/Target.ts"

const maxBatch = 500

/**
 * Hands accepted messages to link actors, coalescing the submits of one millisecond into one actor call per link (and
 * one Pick per pool). A failed hand-off loses nothing: the message stays `accepted` in the store and recovery
 * re-drives it.
 */
export class LinkDispatcher extends Context.Service<LinkDispatcher, {
  readonly dispatch: (target: Target, message: Outbound) => Effect.Effect<void>
  readonly dispatchAll: (target: Target, messages: ReadonlyArray<Outbound>) => Effect.Effect<void>
  /**
   * Moves messages of a pool to other members than `exclude` (failover, retries). Answers the messages no member could
   * take, for the caller to keep.
   */
  readonly reroute: (
    poolId: string,
    messages: ReadonlyArray<Outbound>,
    exclude: ReadonlyArray<string>
  ) => Effect.Effect<ReadonlyArray<Outbound>>
}>()("smsgw/actors/LinkDispatcher") {
  /**
   * `windowMs`: how long hand-offs to one target are gathered into one actor call. In a cluster most calls cross to
   * another node (~130 µs on each side), so a wider window there buys fewer, fuller calls for a few ms of latency.
   */
  static readonly layerWith = (options: { readonly windowMs: number }) => Layer.effect(
    LinkDispatcher,
    Effect.gen(function*() {
      const linkFor = yield* SmppLink.client
      const poolFor = yield* VirtualPool.client
      const scope = yield* Effect.scope
      const buffers = new Map<string, { target: Target; messages: Array<Outbound> }>()

      // Sent without waiting for the link's answer (it only counts what it queued): the call is done once the
      // messages are on their way to the link's node, which saves the reply's round trip on both nodes. A hand-off
      // lost with a dying node costs nothing more than before: the messages are in the store and recovery re-drives.
      const submit = (linkId: string, messages: ReadonlyArray<Outbound>) =>
        linkFor(linkId).Submit({ messages }, { discard: true }).pipe(
          Effect.timeout("10 seconds"),
          Effect.asVoid,
          Effect.catchCause((cause) =>
            Effect.logWarning("hand-off to link failed; recovery will re-drive").pipe(
              Effect.annotateLogs({ linkId, messages: messages.length, cause: String(cause) })
            )
          )
        )

      /** Asks the pool for one link per message and submits each group; answers the messages left without a link. */
      const throughPool = (poolId: string, messages: ReadonlyArray<Outbound>, exclude: ReadonlyArray<string>) =>
        poolFor(poolId).Pick({ count: messages.length, exclude }).pipe(
          Effect.timeout("10 seconds"),
          Effect.flatMap((links) => {
            const groups = new Map<string, Array<Outbound>>()
            links.forEach((linkId, i) => {
              const message = messages[i]
              if (message === undefined) return
              const group = groups.get(linkId)
              if (group === undefined) groups.set(linkId, [message])
              else group.push(message)
            })
            return Effect.forEach(groups, ([linkId, group]) => submit(linkId, group), { concurrency: "unbounded", discard: true })
              .pipe(Effect.as(messages.slice(links.length)))
          }),
          Effect.catchCause((cause) =>
            Effect.logWarning("pool pick failed").pipe(
              Effect.annotateLogs({ poolId, cause: String(cause) }),
              Effect.as(messages)
            )
          )
        )

      const flush = (key: string) =>
        Effect.suspend(() => {
          const buffer = buffers.get(key)
          buffers.delete(key)
          if (buffer === undefined || buffer.messages.length === 0) return Effect.void
          if (buffer.target._tag === "Link") return submit(buffer.target.id, buffer.messages)
          const poolId = buffer.target.id
          return throughPool(poolId, buffer.messages, []).pipe(
            Effect.flatMap((left) =>
              left.length === 0 ? Effect.void : Effect.logWarning("no healthy pool member; recovery will re-drive").pipe(
                Effect.annotateLogs({ poolId, messages: left.length })
              )
            )
          )
        })

      const add = (target: Target, messages: ReadonlyArray<Outbound>) =>
        Effect.suspend(() => {
          const key = targetKey(target)
          let buffer = buffers.get(key)
          const fresh = buffer === undefined
          if (buffer === undefined) {
            buffer = { target, messages: [] }
            buffers.set(key, buffer)
          }
          for (const m of messages) buffer.messages.push(m)
          if (buffer.messages.length >= maxBatch) return Effect.forkIn(flush(key), scope).pipe(Effect.asVoid)
          if (fresh) {
            return Effect.forkIn(Effect.sleep(options.windowMs).pipe(Effect.andThen(flush(key))), scope).pipe(Effect.asVoid)
          }
          return Effect.void
        })

      return LinkDispatcher.of({
        dispatch: (target, message) => add(target, [message]),
        dispatchAll: add,
        reroute: (poolId, messages, exclude) => messages.length === 0 ? Effect.succeed([]) : throughPool(poolId, messages, exclude)
      })
    })
  )

  static readonly layer = LinkDispatcher.layerWith({ windowMs: 1 })
}
