import { Context, Effect, Layer } from "effect"
import { NoRoute } from "../domain/Errors.ts"
import type { LinkConfig } from "../layers/Config.ts"
import { LinkDirectory } from "../actors/LinkDirectory.ts"

export interface RouteRequest {
  readonly to: string
  readonly appId: string | null
}

/** Chooses the link a message goes out on. Routing rules and pools replace the default route later. */
export class Router extends Context.Service<Router, {
  readonly route: (request: RouteRequest) => Effect.Effect<LinkConfig, NoRoute>
  readonly link: (linkId: string) => Effect.Effect<LinkConfig, NoRoute>
}>()("smsgw/routing/Router") {
  /** Every message takes the first configured link. */
  static readonly layerDefault = Layer.effect(
    Router,
    Effect.gen(function*() {
      const directory = yield* LinkDirectory
      const links = yield* directory.all
      const first = links[0]
      const noRoute = new NoRoute({ message: "no link is configured" })
      return Router.of({
        route: () => first === undefined ? Effect.fail(noRoute) : Effect.succeed(first),
        link: (linkId) =>
          directory.get(linkId).pipe(
            Effect.mapError(() => new NoRoute({ message: `link ${linkId} is not configured` }))
          )
      })
    })
  )
}
