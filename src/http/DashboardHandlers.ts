/**
 * Handlers of the dashboard API: pipeline/Dashboard.ts for the signed-in user, its errors as problems.
 */
import { Effect, Stream } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { CurrentPrincipal } from "../auth/Access.ts"
import type { DashboardError } from "../pipeline/Dashboard.ts"
import { Dashboard } from "../pipeline/Dashboard.ts"
import type { StoreUnavailable } from "../domain/Errors.ts"
import { GatewayApi } from "./Api.ts"
import { ForbiddenProblem, NotFoundProblem, UnavailableProblem } from "./Problems.ts"

const toProblem = (error: DashboardError): Effect.Effect<never, ForbiddenProblem | NotFoundProblem | UnavailableProblem> => {
  switch (error._tag) {
    case "Forbidden":
      return Effect.fail(new ForbiddenProblem({ detail: error.message }))
    case "CampaignNotFound":
      return Effect.fail(new NotFoundProblem({ detail: `no campaign ${error.id}` }))
    case "StoreUnavailable":
      return Effect.logError("dashboard counters unavailable").pipe(
        Effect.annotateLogs({ error: error.message }),
        Effect.andThen(Effect.fail(new UnavailableProblem({ detail: "the live figures are unavailable; retry later" })))
      )
  }
}

/** A storage failure mid-stream ends it (the headers are sent); the client reconnects. */
const endOnFailure = (what: string) => <A>(stream: Stream.Stream<A, StoreUnavailable>) =>
  stream.pipe(
    Stream.catch((e) =>
      Stream.fromEffect(Effect.logWarning(`${what} stream ended by a storage failure`).pipe(
        Effect.annotateLogs({ error: e.message })
      )).pipe(Stream.drain)
    )
  )

export const DashboardHandlers = HttpApiBuilder.group(
  GatewayApi,
  "dashboard",
  Effect.fn(function*(handlers) {
    const dashboard = yield* Dashboard
    return handlers
      .handle("snapshot", () => Effect.flatMap(CurrentPrincipal, dashboard.snapshot).pipe(Effect.catch(toProblem)))
      .handle("stream", () =>
        Effect.flatMap(CurrentPrincipal, dashboard.stream).pipe(Effect.map(endOnFailure("dashboard")), Effect.catch(toProblem)))
      .handle("campaignHealth", ({ params }) =>
        Effect.flatMap(CurrentPrincipal, (p) => dashboard.campaignHealth(p, params.id)).pipe(Effect.catch(toProblem)))
      .handle("campaignHealthStream", ({ params }) =>
        Effect.flatMap(CurrentPrincipal, (p) => dashboard.campaignHealthStream(p, params.id)).pipe(
          Effect.map(endOnFailure("campaign health")),
          Effect.catch(toProblem)
        ))
  })
)
