/**
 * The operators' live view of links and pools, and what they do to them beyond configuration (AdminApi.ts): the
 * state of every link and pool now (once, or every second over SSE), a rebind, and the route tester.
 */
import { Schema } from "effect"
import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { LinkState } from "../actors/SmppLinkProtocol.ts"
import { PoolState } from "../actors/VirtualPoolProtocol.ts"
import { MessageClass } from "../domain/Policy.ts"
import { RouteTarget } from "../routing/Rules.ts"
import { ConflictProblem, ForbiddenProblem, NotFoundProblem, UnauthorizedProblem, UnavailableProblem, ValidationProblem } from "./Problems.ts"
import { Authentication } from "./Security.ts"

const unanswered = Schema.optionalKey(Schema.String.annotate({
  description: "Why there is no live state: the actor did not answer in time (a node moving, stopping or overloaded)"
}))

export const LinkLiveView = Schema.Struct({
  linkId: Schema.String,
  enabled: Schema.Boolean,
  state: Schema.optionalKey(LinkState),
  unavailable: unanswered
})

export const PoolLiveView = Schema.Struct({
  poolId: Schema.String,
  state: Schema.optionalKey(PoolState),
  nextPick: Schema.optionalKey(Schema.String.annotate({ description: "The member the pool would pick next" })),
  unavailable: unanswered
})

export const LiveView = Schema.Struct({
  at: Schema.String,
  links: Schema.Array(LinkLiveView),
  pools: Schema.Array(PoolLiveView)
})

export const RouteTestRequest = Schema.Struct({
  to: Schema.String.check(Schema.isMaxLength(32)).annotate({ description: "The recipient, E.164 (+4915112345678)" }),
  appId: Schema.optionalKey(Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(64)).annotate({
    description: "Route as this app sends (its organisation and class, unless given)"
  })),
  orgId: Schema.optionalKey(Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(64))),
  from: Schema.optionalKey(Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(16)).annotate({ description: "The sender" })),
  messageClass: Schema.optionalKey(MessageClass.annotate({ description: "Default: the app's class, else transactional" }))
})

export const RouteRuleTrace = Schema.Struct({
  ruleId: Schema.String,
  outcome: Schema.Literals(["matched", "no_match", "not_reached"]),
  detail: Schema.optionalKey(Schema.String.annotate({ description: "The first criterion that did not match" }))
})

export const RouteTestView = Schema.Struct({
  to: Schema.String,
  country: Schema.optionalKey(Schema.String),
  orgId: Schema.optionalKey(Schema.String),
  appId: Schema.optionalKey(Schema.String),
  messageClass: MessageClass,
  routed: Schema.Boolean,
  ruleId: Schema.optionalKey(Schema.String.annotate({ description: "The rule that matched (absent for the default route)" })),
  target: Schema.optionalKey(RouteTarget),
  capacityTps: Schema.optionalKey(Schema.Number.annotate({ description: "Parts per second the target can send" })),
  noRoute: Schema.optionalKey(Schema.String.annotate({ description: "Why the message would be refused no_route" })),
  defaultRoute: Schema.Boolean.annotate({ description: "No routing rules: the first enabled link takes everything" }),
  rules: Schema.Array(RouteRuleTrace),
  link: Schema.optionalKey(LinkLiveView),
  pool: Schema.optionalKey(PoolLiveView)
})

const errors = [ValidationProblem, UnauthorizedProblem, ForbiddenProblem, NotFoundProblem, ConflictProblem, UnavailableProblem]

/** Live link and pool state, rebind, route tester (superadmin only). */
export class OperationsGroup extends HttpApiGroup.make("operations")
  .add(
    HttpApiEndpoint.get("live", "/v1/admin/state", { success: LiveView, error: errors }).annotate(
      OpenApi.Description,
      "Every link's live state (bind, health, current rate, window, queue, counters) and every pool's members with " +
        "their effective weights, asked of their actors wherever they run; one that does not answer within 3 s is " +
        "reported `unavailable`."
    ),
    HttpApiEndpoint.get("liveStream", "/v1/admin/state/stream", {
      success: HttpApiSchema.StreamSse({ data: LiveView }),
      error: errors
    }).annotate(OpenApi.Description, "Server-Sent Events: the live state every second; the stream ends after an hour (reconnect)."),
    HttpApiEndpoint.post("rebindLink", "/v1/admin/links/:linkId/rebind", {
      params: { linkId: Schema.String },
      success: HttpApiSchema.NoContent,
      error: errors
    }).annotate(OpenApi.Description, "Drop the link's sessions and bind again (its queue waits meanwhile)."),
    HttpApiEndpoint.post("testRoute", "/v1/admin/routes/test", {
      payload: RouteTestRequest,
      success: RouteTestView,
      error: errors
    }).annotate(
      OpenApi.Description,
      "Which route a message to this number would take now: every rule in order with why it did not match, the " +
        "target, and for a pool its members' live state and the member it would pick next. Nothing is sent or picked."
    )
  )
  .middleware(Authentication)
  .annotate(HttpApi.PayloadParseOptions, { errors: "all", onExcessProperty: "error" })
  .annotate(OpenApi.Title, "Admin: live links and pools, route tester")
{}
