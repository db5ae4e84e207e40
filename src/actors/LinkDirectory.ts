import { Context, Effect, Layer, Schema } from "effect"
import type { LinkConfig } from "../layers/Config.ts"
import { AppConfig } from "../layers/Config.ts"

export class UnknownLink extends Schema.TaggedError<UnknownLink>()("UnknownLink", { linkId: Schema.String }) {}

/** The configured links by id: what a link actor binds to wherever it runs. */
export class LinkDirectory extends Context.Service<LinkDirectory, {
  readonly get: (linkId: string) => Effect.Effect<LinkConfig, UnknownLink>
  readonly all: Effect.Effect<ReadonlyArray<LinkConfig>>
}>()("smsgw/actors/LinkDirectory") {
  static readonly layerConfig = Layer.effect(
    LinkDirectory,
    Effect.gen(function*() {
      const config = yield* AppConfig
      const byId = new Map(config.links.map((l) => [l.id, l]))
      return LinkDirectory.of({
        get: (linkId) => {
          const link = byId.get(linkId)
          return link === undefined ? Effect.fail(new UnknownLink({ linkId })) : Effect.succeed(link)
        },
        all: Effect.succeed(config.links)
      })
    })
  )
}
