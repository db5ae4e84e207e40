/**
 * The whole REST API as one HttpApi: messages, accounts, admin, policies, system; also its OpenAPI document.
 */
import { Schema } from "effect"
import { HttpApi, HttpApiEndpoint, HttpApiError, HttpApiGroup, HttpApiMiddleware, HttpApiSchema, OpenApi } from "effect/http-api"
import { IdempotencyKey, maxBatchMessages, MessageView, SubmitAccepted, SubmitMessage } from "../domain/Message.ts"
import { LargeBody } from "./BodyLimits.ts"
import { BatchAccepted, maxBatchBodyBytes, SubmitBatch } from "./MessageBatch.ts"
import { AppsGroup, AuditGroup, AuthGroup, MembersGroup } from "./AccountsApi.ts"
import { AdminGroup } from "./AdminApi.ts"
import { CampaignInsightGroup } from "./CampaignInsightApi.ts"
import { ListsGroup } from "./ListsApi.ts"
import { MessageSearchGroup } from "./MessageSearchApi.ts"
import { CampaignsGroup, ModerationGroup } from "./CampaignsApi.ts"
import { DashboardGroup } from "./DashboardApi.ts"
import { CallbacksGroup } from "./CallbacksApi.ts"
import { InboundGroup } from "./InboundApi.ts"
import { CdrGroup } from "./CdrApi.ts"
import { PoliciesGroup } from "./PoliciesApi.ts"
import { OperationsGroup } from "./OperationsApi.ts"
import { PolicyAdminGroup } from "./PolicyAdminApi.ts"
import { MeGroup, SessionGroup } from "./SessionApi.ts"
import {
  ForbiddenProblem,
  IdempotencyInFlightProblem,
  IdempotencyKeyReusedProblem,
  NoRouteProblem,
  NotFoundProblem,
  PolicyRejectedProblem,
  TooManyRequestsProblem,
  UnavailableProblem,
  ValidationProblem
} from "./Problems.ts"
import { Authentication } from "./Security.ts"

/** Turns request decoding failures into a ValidationProblem naming each bad field. */
export class RequestValidation extends HttpApiMiddleware.Service<RequestValidation>()("smsgw/http/RequestValidation", {
  error: [ValidationProblem, HttpApiError.InternalServerErrorProblem]
}) {}

export class MessagesGroup extends HttpApiGroup.make("messages")
  .add(
    HttpApiEndpoint.post("submit", "/v1/messages", {
      payload: SubmitMessage,
      headers: { "idempotency-key": Schema.optionalKey(IdempotencyKey) },
      success: SubmitAccepted.pipe(HttpApiSchema.status(202)),
      error: [
        ValidationProblem,
        ForbiddenProblem,
        NoRouteProblem,
        PolicyRejectedProblem,
        TooManyRequestsProblem,
        UnavailableProblem,
        IdempotencyInFlightProblem,
        IdempotencyKeyReusedProblem
      ]
    }).annotate(
      OpenApi.Description,
      "Accept one SMS. 202 means the message is stored and will be sent (or, with `duplicate: true`, that a dedup rule found the same message accepted before under `id`). App tokens send as their app; user tokens name the app in X-App-Id. 422 policy-rejected: the contact policy refused it (reason and rule in the problem; the message is recorded as rejected). " +
        "Idempotency-Key: a repeat of the request within 24 h answers the first result (header Idempotent-Replayed: true) without sending again; the same key with another request is 422, while the first is in flight 409."
    ),
    HttpApiEndpoint.post("submitBatch", "/v1/messages/batch", {
      payload: SubmitBatch,
      // Refused when given: a batch takes a key per message, and a header silently ignored would make a retry resend all.
      headers: { "idempotency-key": Schema.optionalKey(Schema.String.annotate({ description: "Not taken here: give each message its idempotencyKey" })) },
      success: BatchAccepted.pipe(HttpApiSchema.status(202)),
      error: [ValidationProblem, ForbiddenProblem, UnavailableProblem]
    }).annotate(LargeBody, { _tag: "Json", bytes: maxBatchBodyBytes }).annotate(
      OpenApi.Description,
      `Accept up to ${maxBatchMessages} SMS in one request: 202 with a result per message, in order — its id, or its problem exactly as POST /v1/messages would answer it (a bad number, a policy refusal, a rate limit refuse that message only). ` +
        "Every accepted message is committed in one store transaction before the answer. A body of the wrong shape (unknown key, wrong type, text too long, more than 1,000 messages) is 400 and nothing is sent; 503 when the store cannot take the batch (nothing accepted). " +
        "Each message may carry its own idempotencyKey, with the same rules as the Idempotency-Key header."
    ),
    HttpApiEndpoint.get("status", "/v1/messages/:id", {
      params: { id: Schema.String },
      success: MessageView,
      error: [NotFoundProblem, UnavailableProblem]
    }).annotate(
      OpenApi.Description,
      "A message with its parts (link, SMSC id, status, error, times) and its timeline: each event's kind, status, part, " +
        "link, the SMSC's command_status, and the reason and policy rule of a refusal. Users read their organisation's " +
        "messages, an app token its own app's; any other id is 404. Search: GET /v1/messages."
    )
  )
  .middleware(Authentication)
  .annotate(OpenApi.Title, "Messages")
{}

export const Readiness = Schema.Struct({
  ready: Schema.Boolean,
  storage: Schema.Boolean,
  linksBound: Schema.Array(Schema.String),
  links: Schema.Int
})

export class SystemGroup extends HttpApiGroup.make("system")
  .add(
    HttpApiEndpoint.get("healthz", "/healthz", { success: Schema.Struct({ status: Schema.Literal("ok") }) }),
    HttpApiEndpoint.get("readyz", "/readyz", {
      success: Readiness,
      error: Readiness.pipe(HttpApiSchema.status(503))
    }).annotate(OpenApi.Description, "Ready when storage answers and at least one link is bound.")
  )
  .annotate(OpenApi.Title, "System")
{}

export class GatewayApi extends HttpApi.make("smsgw")
  .add(MessagesGroup)
  .add(MessageSearchGroup)
  .add(AuthGroup)
  .add(SessionGroup)
  .add(MeGroup)
  .add(AppsGroup)
  .add(MembersGroup)
  .add(AuditGroup)
  .add(AdminGroup)
  .add(PoliciesGroup)
  .add(PolicyAdminGroup)
  .add(OperationsGroup)
  .add(CampaignInsightGroup)
  .add(ListsGroup)
  .add(CampaignsGroup)
  .add(ModerationGroup)
  .add(DashboardGroup)
  .add(CdrGroup)
  .add(CallbacksGroup)
  .add(InboundGroup)
  .add(SystemGroup)
  .middleware(RequestValidation)
  // Report every bad field of a body in one answer, not just the first; a key the endpoint does not know is an
  // error, never silently dropped (a misspelt `allowlist` must not create an app open to every address).
  .annotate(HttpApi.PayloadParseOptions, { errors: "all", onExcessProperty: "error" })
  .annotate(OpenApi.Title, "SMS Gateway Proxy")
  .annotate(OpenApi.Version, "0.1.0")
{}
