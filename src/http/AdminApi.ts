/**
 * The operators' REST API (superadmin): links, pools and routing rules, applied live.
 */
import { Schema, Struct } from "effect"
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { LinkConfig, PoolConfig, PoolMember } from "../routing/Links.ts"
import { RouteRules } from "../routing/Rules.ts"
import {
  ConflictProblem,
  ForbiddenProblem,
  NotFoundProblem,
  UnauthorizedProblem,
  UnavailableProblem,
  ValidationProblem
} from "./Problems.ts"
import { Authentication } from "./Security.ts"

/** A link as the API shows it: the password is write-only, so only whether one is set. */
export const LinkView = LinkConfig.mapFields(Struct.omit(["password"])).mapFields(Struct.assign({
  hasPassword: Schema.Boolean,
  enabled: Schema.Boolean
}))

export const NewLinkRequest = LinkConfig.mapFields(Struct.assign({
  enabled: Schema.optionalKey(Schema.Boolean.annotate({ description: "Default true" }))
}))

/** Any subset of a link's settings except its id; absent fields keep their value. */
export const LinkPatchRequest = LinkConfig.mapFields(Struct.omit(["id"])).mapFields(Struct.map(Schema.optionalKey))

export const PoolView = PoolConfig

export const PoolMembersRequest = Schema.Struct({ members: PoolConfig.fields.members })

export const PoolWeightsRequest = Schema.Struct({
  weights: Schema.Record(PoolMember.fields.link, Schema.Finite.check(Schema.isGreaterThan(0))).annotate({
    description: "Member link id → new weight; members not named keep theirs"
  })
})

export const RoutesView = Schema.Struct({ routes: RouteRules })

/** Every problem an admin call can end in (src/http/AdminHandlers.ts toProblem). */
const adminErrors = [
  ValidationProblem,
  UnauthorizedProblem,
  ForbiddenProblem,
  NotFoundProblem,
  ConflictProblem,
  UnavailableProblem
]

const linkParams = { linkId: Schema.String }
const poolParams = { poolId: Schema.String }

/** Links, pools and routing rules of the whole gateway, changed live on every node (superadmin only). */
export class AdminGroup extends HttpApiGroup.make("admin")
  .add(
    HttpApiEndpoint.get("listLinks", "/v1/admin/links", { success: Schema.Array(LinkView), error: adminErrors }),
    HttpApiEndpoint.post("addLink", "/v1/admin/links", {
      payload: NewLinkRequest,
      success: LinkView.pipe(HttpApiSchema.status(201)),
      error: adminErrors
    }).annotate(OpenApi.Description, "Add an SMPP link; it binds within a poll interval on the node that runs it."),
    HttpApiEndpoint.get("getLink", "/v1/admin/links/:linkId", { params: linkParams, success: LinkView, error: adminErrors }),
    HttpApiEndpoint.patch("updateLink", "/v1/admin/links/:linkId", {
      params: linkParams,
      payload: LinkPatchRequest,
      success: LinkView,
      error: adminErrors
    }).annotate(OpenApi.Description, "Change a link's settings (window, TPS, credentials, address, bind mode, TLS…)."),
    HttpApiEndpoint.post("disableLink", "/v1/admin/links/:linkId/disable", {
      params: linkParams,
      success: LinkView,
      error: adminErrors
    }).annotate(OpenApi.Description, "Take a link out of service; pools and routes skip it until it is enabled."),
    HttpApiEndpoint.post("enableLink", "/v1/admin/links/:linkId/enable", {
      params: linkParams,
      success: LinkView,
      error: adminErrors
    }),
    HttpApiEndpoint.delete("removeLink", "/v1/admin/links/:linkId", {
      params: linkParams,
      success: HttpApiSchema.NoContent,
      error: adminErrors
    }).annotate(OpenApi.Description, "Remove a link; 409 while a pool or a route uses it."),

    HttpApiEndpoint.get("listPools", "/v1/admin/pools", { success: Schema.Array(PoolView), error: adminErrors }),
    HttpApiEndpoint.post("addPool", "/v1/admin/pools", {
      payload: PoolConfig,
      success: PoolView.pipe(HttpApiSchema.status(201)),
      error: adminErrors
    }).annotate(OpenApi.Description, "Add a pool of existing links; a member's weight defaults to the link's TPS."),
    HttpApiEndpoint.get("getPool", "/v1/admin/pools/:poolId", { params: poolParams, success: PoolView, error: adminErrors }),
    HttpApiEndpoint.put("putPool", "/v1/admin/pools/:poolId", {
      params: poolParams,
      payload: PoolMembersRequest,
      success: PoolView,
      error: adminErrors
    }).annotate(OpenApi.Description, "Create or replace a pool's members."),
    HttpApiEndpoint.delete("removePool", "/v1/admin/pools/:poolId", {
      params: poolParams,
      success: HttpApiSchema.NoContent,
      error: adminErrors
    }).annotate(OpenApi.Description, "Remove a pool; 409 while a route targets it."),
    HttpApiEndpoint.patch("setPoolWeights", "/v1/admin/pools/:poolId/weights", {
      params: poolParams,
      payload: PoolWeightsRequest,
      success: PoolView,
      error: adminErrors
    }).annotate(OpenApi.Description, "Change some members' weights, applied live."),

    HttpApiEndpoint.get("getRoutes", "/v1/admin/routes", { success: RoutesView, error: adminErrors }),
    HttpApiEndpoint.put("setRoutes", "/v1/admin/routes", {
      payload: RoutesView,
      success: RoutesView,
      error: adminErrors
    }).annotate(
      OpenApi.Description,
      "Replace the whole ordered rule list (first match wins); every target must be an existing pool or link."
    )
  )
  .middleware(Authentication)
  .annotate(OpenApi.Title, "Admin: links, pools, routes")
{}
