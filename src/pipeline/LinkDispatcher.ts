import { Context, Effect, Layer } from "effect"
import { SmppLink } from "../actors/SmppLinkProtocol.ts"
import type { Outbound } from "../actors/SmppLinkProtocol.ts"

const maxBatch = 500

/**
 * Hands accepted messages to their link actors, coalescing the submits of one millisecond into one actor call per
 * link. A failed hand-off loses nothing: the message stays `accepted` in the store and recovery re-drives it.
 */
export class LinkDispatcher extends Context.Service<LinkDispatcher, {
  readonly dispatch: (linkId: string, message: Outbound) => Effect.Effect<void>
  readonly dispatchAll: (linkId: string, messages: ReadonlyArray<Outbound>) => Effect.Effect<void>
}>()("smsgw/pipeline/LinkDispatcher") {
  static readonly layer = Layer.effect(
    LinkDispatcher,
    Effect.gen(function*() {
      const clientFor = yield* SmppLink.client
      const scope = yield* Effect.scope
      const buffers = new Map<string, Array<Outbound>>()

      const send = (linkId: string, messages: ReadonlyArray<Outbound>) =>
        clientFor(linkId).Submit({ messages }).pipe(
          Effect.timeout("10 seconds"),
          Effect.catchCause((cause) =>
            Effect.logWarning("hand-off to link failed; recovery will re-drive").pipe(
              Effect.annotateLogs({ linkId, messages: messages.length, cause: String(cause) })
            )
          )
        )

      const flush = (linkId: string) =>
        Effect.suspend(() => {
          const batch = buffers.get(linkId)
          buffers.delete(linkId)
          if (batch === undefined || batch.length === 0) return Effect.void
          return send(linkId, batch)
        })

      const add = (linkId: string, messages: ReadonlyArray<Outbound>) =>
        Effect.suspend(() => {
          let buffer = buffers.get(linkId)
          if (buffer === undefined) {
            buffer = []
            buffers.set(linkId, buffer)
          }
          for (const m of messages) buffer.push(m)
          if (buffer.length >= maxBatch) return Effect.forkIn(flush(linkId), scope).pipe(Effect.asVoid)
          if (buffer.length === messages.length) {
            return Effect.forkIn(Effect.sleep(1).pipe(Effect.andThen(flush(linkId))), scope).pipe(Effect.asVoid)
          }
          return Effect.void
        })

      return LinkDispatcher.of({
        dispatch: (linkId, message) => add(linkId, [message]),
        dispatchAll: add
      })
    })
  )
}
