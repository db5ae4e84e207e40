/**
 * Handlers of the operators' API over the live routing configuration.
 */
import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { CurrentPrincipal } from "../auth/Access.ts"
import type { LinkRecord, RoutingError, RoutingSnapshot } from "../routing/RoutingConfig.ts"
import { RoutingConfig, RoutingInvalid, RoutingNotFound } from "../routing/RoutingConfig.ts"
import { GatewayApi } from "./Api.ts"
import { ConflictProblem, ForbiddenProblem, NotFoundProblem, UnavailableProblem, ValidationProblem } from "./Problems.ts"

/** Domain errors of the routing configuration → RFC 9457 problems. */
export const toProblem = (error: RoutingError) => {
  switch (error._tag) {
    case "RoutingInvalid":
      return new ValidationProblem({ detail: `${error.field}: ${error.message}`, errors: [{ field: error.field, message: error.message }] })
    case "RoutingNotFound":
      return new NotFoundProblem({ detail: `no ${error.what} ${error.id}` })
    case "RoutingConflict":
      return new ConflictProblem({ detail: error.message })
    case "RoutingStoreFailure":
      return new UnavailableProblem({ detail: "storage is unavailable; retry later" })
  }
}

/** Only an operator account may change what every tenant's traffic goes through. */
const superadmin = Effect.flatMap(CurrentPrincipal, (principal) =>
  principal.superadmin
    ? Effect.succeed(principal)
    : Effect.fail(new ForbiddenProblem({ detail: "links, pools and routes are managed by superadmins only" })))

/** Runs an admin change for a superadmin, logs what changed and by whom, and maps its errors to problems. */
const change = <A, R>(action: string, target: string, effect: Effect.Effect<A, RoutingError, R>) =>
  Effect.flatMap(superadmin, (principal) =>
    effect.pipe(
      Effect.mapError(toProblem),
      Effect.tap(() =>
        Effect.logInfo("routing configuration changed").pipe(
          Effect.annotateLogs({ action, target, userId: principal.userId ?? "" })
        ))
    ))

/** Never the password: only whether one is set. */
const linkView = (link: LinkRecord) => {
  const { password, ...rest } = link
  return { ...rest, hasPassword: password !== "" }
}

/** The id comes from the path in PUT /pools/:poolId, so a bad one is named as the path names it. */
const poolIdFromPath = (e: RoutingError) =>
  e._tag === "RoutingInvalid" && e.field === "id" ? new RoutingInvalid({ field: "params.poolId", message: e.message }) : e

export const AdminHandlers = HttpApiBuilder.group(
  GatewayApi,
  "admin",
  Effect.fn(function*(handlers) {
    const routing = yield* RoutingConfig
    // Reads catch up with the database first, so a change made through another node is seen at once.
    const read = <A>(f: (snapshot: RoutingSnapshot) => Effect.Effect<A, RoutingError>) =>
      Effect.flatMap(superadmin, () => routing.refresh.pipe(Effect.flatMap(f), Effect.mapError(toProblem)))
    const linkOf = (snapshot: RoutingSnapshot, id: string) => {
      const link = snapshot.links.find((l) => l.id === id)
      return link === undefined ? Effect.fail(new RoutingNotFound({ what: "link", id })) : Effect.succeed(linkView(link))
    }
    const poolOf = (snapshot: RoutingSnapshot, id: string) => {
      const pool = snapshot.pools.find((p) => p.id === id)
      return pool === undefined ? Effect.fail(new RoutingNotFound({ what: "pool", id })) : Effect.succeed(pool)
    }
    return handlers
      .handle("listLinks", () => read((s) => Effect.succeed(s.links.map(linkView))))
      .handle("addLink", ({ payload }) => change("link.add", payload.id, Effect.map(routing.addLink(payload), linkView)))
      .handle("getLink", ({ params }) => read((s) => linkOf(s, params.linkId)))
      .handle("updateLink", ({ params, payload }) =>
        change("link.update", params.linkId, Effect.map(routing.patchLink(params.linkId, payload), linkView)))
      .handle("disableLink", ({ params }) =>
        change("link.disable", params.linkId, Effect.map(routing.setLinkEnabled(params.linkId, false), linkView)))
      .handle("enableLink", ({ params }) =>
        change("link.enable", params.linkId, Effect.map(routing.setLinkEnabled(params.linkId, true), linkView)))
      .handle("removeLink", ({ params }) => change("link.remove", params.linkId, routing.removeLink(params.linkId)))
      .handle("listPools", () => read((s) => Effect.succeed(s.pools)))
      .handle("addPool", ({ payload }) => change("pool.add", payload.id, routing.addPool(payload)))
      .handle("getPool", ({ params }) => read((s) => poolOf(s, params.poolId)))
      .handle("putPool", ({ params, payload }) =>
        change(
          "pool.put",
          params.poolId,
          routing.putPool({ id: params.poolId, members: payload.members }).pipe(Effect.mapError(poolIdFromPath))
        ))
      .handle("removePool", ({ params }) => change("pool.remove", params.poolId, routing.removePool(params.poolId)))
      .handle("setPoolWeights", ({ params, payload }) =>
        change("pool.weights", params.poolId, routing.patchPoolWeights(params.poolId, payload.weights)))
      .handle("getRoutes", () => read((s) => Effect.succeed({ routes: s.routes })))
      .handle("setRoutes", ({ payload }) =>
        change("routes.set", "routes", Effect.map(routing.setRoutes(payload.routes), (routes) => ({ routes }))))
  })
)
