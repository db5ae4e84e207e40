/**
 * Whether this process can take traffic: its store answers and at least one link is bound. It asks the link actors,
 * so it sits above them (pipeline), not with the metrics in observability that the lower folders record into.
 */
import { Context, Effect, Layer } from "effect"
import { SmppLink } from "../actors/SmppLinkProtocol.ts"
import type { LinkState } from "../actors/SmppLinkProtocol.ts"
import { RoutingConfig } from "../routing/RoutingConfig.ts"
import { MessageStore } from "../storage/MessageStore.ts"
import { LinkMetrics } from "../observability/Metrics.ts"

export interface ReadinessReport {
  readonly ready: boolean
  readonly storage: boolean
  readonly linksBound: ReadonlyArray<string>
  readonly links: number
}

/** Asks storage and every link actor how they are; also refreshes the link gauges. */
export class Readiness extends Context.Service<Readiness, {
  readonly check: Effect.Effect<ReadinessReport>
  readonly links: Effect.Effect<ReadonlyArray<LinkState>>
}>()("smsgw/pipeline/Readiness") {
  static readonly layer = Layer.effect(
    Readiness,
    Effect.gen(function*() {
      const store = yield* MessageStore
      const routing = yield* RoutingConfig
      const enabledLinks = Effect.sync(() => routing.current().links.filter((l) => l.enabled))
      const metrics = yield* LinkMetrics
      const clientFor = yield* SmppLink.client

      const links = Effect.gen(function*() {
        const configured = yield* enabledLinks
        const states = yield* Effect.forEach(configured, (link) =>
          clientFor(link.id).Inspect().pipe(
            Effect.timeout("2 seconds"),
            Effect.tap((s) => Effect.sync(() => metrics.linkGauges(s.linkId, s))),
            Effect.option
          ), { concurrency: "unbounded" })
        return states.flatMap((s) => s._tag === "Some" ? [s.value] : [])
      })

      const check = Effect.gen(function*() {
        const storage = yield* store.ping.pipe(Effect.timeout("2 seconds"), Effect.as(true), Effect.orElseSucceed(() => false))
        const states = yield* links
        const configured = yield* enabledLinks
        const linksBound = states.filter((s) => s.bound).map((s) => s.linkId)
        return { ready: storage && linksBound.length > 0, storage, linksBound, links: configured.length }
      })

      return Readiness.of({ check, links })
    })
  )
}
