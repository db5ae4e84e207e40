/**
 * The REST API of inbound (mobile-originated) messages (docs/inbound.md): an organisation's messages, newest first,
 * and one by id — for its members and for an app's own token (its own app's only); and the routing document that
 * sends numbers and keywords to apps, which superadmins manage.
 */
import { Schema } from "effect"
import { HttpApi, HttpApiEndpoint, HttpApiGroup, OpenApi } from "effect/http-api"
import { InboundDocument, InboundView, maxInboundPage } from "../domain/Inbound.ts"
import { defaultPageSize } from "./Paging.ts"
import { ForbiddenProblem, NotFoundProblem, UnauthorizedProblem, UnavailableProblem, ValidationProblem } from "./Problems.ts"
import { Authentication } from "./Security.ts"

export const InboundPage = Schema.Struct({
  items: Schema.Array(InboundView),
  next: Schema.optionalKey(Schema.String.annotate({ description: "Pass as `cursor` for the next page; absent on the last" }))
})

export const InboundRoutesView = Schema.Struct({
  version: Schema.Int.annotate({ description: "0 before the first change" }),
  updatedAt: Schema.NullOr(Schema.String),
  document: InboundDocument
})

const errors = [ValidationProblem, UnauthorizedProblem, ForbiddenProblem, NotFoundProblem, UnavailableProblem]

const InboundId = Schema.String.check(Schema.isPattern(/^[0-9a-f-]{36}$/, { expected: "an inbound message id as listed" }))

export class InboundGroup extends HttpApiGroup.make("inbound")
  .add(
    HttpApiEndpoint.get("list", "/v1/inbound", {
      query: {
        appId: Schema.optionalKey(Schema.String.annotate({ description: "Only this app's (an app token sees its own only)" })),
        from: Schema.optionalKey(Schema.String.check(Schema.isMaxLength(32)).annotate({
          description: "Only messages from this sender (E.164 with its +, as listed)"
        })),
        since: Schema.optionalKey(Schema.String.check(Schema.isPattern(/^\d{4}-\d{2}-\d{2}T/, { expected: "an ISO 8601 time" })).annotate({
          description: "Only messages received at or after this time (ISO 8601)"
        })),
        cursor: Schema.optionalKey(InboundId.annotate({ description: "The previous page's `next`: the page after it" })),
        limit: Schema.optionalKey(
          Schema.FiniteFromString.check(Schema.isInt(), Schema.isBetween({ minimum: 1, maximum: maxInboundPage })).annotate({
            description: `Messages per page: ${defaultPageSize} unless given, at most ${maxInboundPage}`
          })
        )
      },
      success: InboundPage,
      error: errors
    }).annotate(
      OpenApi.Description,
      "The organisation's inbound messages (replies, keywords, opt-outs), newest first. Members of the organisation " +
        "(viewer and above) see every app's; an app token its own app's."
    ),
    HttpApiEndpoint.get("get", "/v1/inbound/:id", {
      params: { id: InboundId },
      success: InboundView,
      error: errors
    }).annotate(OpenApi.Description, "One inbound message of the organisation (an app token: of its app)."),
    HttpApiEndpoint.get("routes", "/v1/admin/inbound/routes", {
      success: InboundRoutesView,
      error: errors
    }).annotate(OpenApi.Description, "The inbound routing document: numbers and keywords to apps, opt-out keywords. Superadmins."),
    HttpApiEndpoint.put("putRoutes", "/v1/admin/inbound/routes", {
      payload: InboundDocument,
      success: InboundRoutesView,
      error: errors
    }).annotate(
      OpenApi.Description,
      "Replaces the inbound routing document. Each route names an existing app; its `optOutList` must be a blacklist the " +
        "policy gives to that app's organisation. Applies to the next message processed. Superadmins."
    )
  )
  .middleware(Authentication)
  .annotate(HttpApi.QueryParseOptions, { errors: "all", onExcessProperty: "error" })
  .annotate(OpenApi.Title, "Inbound messages")
{}
