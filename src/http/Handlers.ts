/**
 * Handlers of the messages and system groups, and the 400 problem made from request decoding failures.
 */
import { Effect, Layer } from "effect"
import { HttpApiBuilder, HttpApiError, HttpApiMiddleware } from "effect/http-api"
import { Access, CurrentPrincipal } from "../auth/Access.ts"
import { Gateway } from "../pipeline/Gateway.ts"
import { AccountsHandlersLive, AuthenticationLive, requestOrigin } from "./AccountsHandlers.ts"
import { SessionHandlersLive } from "./SessionHandlers.ts"
import { AdminHandlers } from "./AdminHandlers.ts"
import { CampaignInsightHandlers } from "./CampaignInsightHandlers.ts"
import { ListsHandlers } from "./ListsHandlers.ts"
import { MessageSearchHandlers } from "./MessageSearchHandlers.ts"
import { CampaignsHandlersLive } from "./CampaignsHandlers.ts"
import { DashboardHandlers } from "./DashboardHandlers.ts"
import { PoliciesHandlers } from "./PoliciesHandlers.ts"
import { OperationsHandlers } from "./OperationsHandlers.ts"
import { PolicyAdminHandlers } from "./PolicyAdminHandlers.ts"
import { Readiness } from "../pipeline/Readiness.ts"
import { GatewayApi, RequestValidation } from "./Api.ts"
import { rateLimitHeaders, refusalInfo } from "../ratelimit/RateLimiter.ts"
import {
  ForbiddenProblem,
  NoRouteProblem,
  NotFoundProblem,
  PolicyRejectedProblem,
  TooManyRequestsProblem,
  UnavailableProblem,
  ValidationProblem
} from "./Problems.ts"
import { setResponseHeader } from "./ResponseHeaders.ts"
import { fieldIssues } from "../domain/FieldIssues.ts"

/** What Schema says of a key the schema does not declare (parse option `onExcessProperty: "error"`). */
const excessProperty = "Expected no excess property"

/** Request decoding failures become one 400 problem listing each field and what is wrong with it. */
export const RequestValidationLive = HttpApiMiddleware.layerSchemaErrorTransform(
  RequestValidation,
  (error: HttpApiError.HttpApiSchemaError) => {
    if (error.kind === "Body" || error.kind === "ResponseHeaders") {
      return Effect.fail(new HttpApiError.InternalServerErrorProblem())
    }
    const errors = fieldIssues(error.cause.issue, { root: "body" }).map((issue) => ({
      field: error.kind === "Params" || error.kind === "Query" ? `${error.kind.toLowerCase()}.${issue.field}` : issue.field,
      message: issue.message === excessProperty ? "unknown field: this request has no such key" : issue.message
    }))
    return Effect.fail(new ValidationProblem({
      detail: errors.map((e) => `${e.field}: ${e.message}`).join("; "),
      errors
    }))
  }
)

const setHeaders = (headers: Record<string, string>) =>
  Effect.forEach(Object.entries(headers), ([name, value]) => setResponseHeader(name, value), { discard: true })

const unavailable = (e: { readonly message: string }) =>
  Effect.logError("storage unavailable").pipe(
    Effect.annotateLogs({ error: e.message }),
    Effect.andThen(Effect.fail(new UnavailableProblem({ detail: "message storage is unavailable; retry later" })))
  )

export const MessagesHandlers = HttpApiBuilder.group(
  GatewayApi,
  "messages",
  Effect.fn(function*(handlers) {
    const gateway = yield* Gateway
    const access = yield* Access
    return handlers
      .handle("submit", ({ payload }) =>
        Effect.gen(function*() {
          const sender = yield* access.submitter(yield* CurrentPrincipal, yield* requestOrigin)
          const outcome = yield* gateway.submit(payload, sender)
          yield* setHeaders(rateLimitHeaders(outcome.rate))
          return outcome.accepted
        }).pipe(
          Effect.catchTags({
            InvalidField: (e) =>
              Effect.fail(new ValidationProblem({ detail: `${e.field}: ${e.message}`, errors: [{ field: e.field, message: e.message }] })),
            NoRoute: (e) =>
              Effect.fail(new NoRouteProblem({ detail: e.message, ...(e.messageId !== undefined ? { messageId: e.messageId } : {}) })),
            Forbidden: (e) => Effect.fail(new ForbiddenProblem({ detail: e.message })),
            RateLimited: (e) =>
              setHeaders({ ...rateLimitHeaders(refusalInfo(e)), "retry-after": String(e.retryAfterSeconds) }).pipe(
                Effect.andThen(Effect.fail(new TooManyRequestsProblem({
                  detail: `rate limit ${e.policy} reached; retry in ${e.retryAfterSeconds} s`,
                  retryAfterSeconds: e.retryAfterSeconds
                })))
              ),
            LimiterUnavailable: (e) =>
              setHeaders({ "retry-after": String(e.retryAfterSeconds) }).pipe(
                Effect.andThen(Effect.fail(new UnavailableProblem({ detail: "rate limiting is unavailable; retry later" })))
              ),
            PolicyRejected: (e) =>
              Effect.fail(new PolicyRejectedProblem({
                detail: `${e.reason} (rule ${e.ruleId})`,
                reason: e.reason,
                ruleId: e.ruleId,
                messageId: e.messageId,
                ...(e.retryAfterSeconds !== undefined ? { retryAfterSeconds: e.retryAfterSeconds } : {})
              })),
            PolicyUnavailable: (e) =>
              Effect.logWarning("contact policy unavailable").pipe(
                Effect.annotateLogs({ error: e.message }),
                Effect.andThen(setHeaders({ "retry-after": "1" })),
                Effect.andThen(Effect.fail(new UnavailableProblem({ detail: "the contact policy cannot decide right now; retry later" })))
              ),
            StoreUnavailable: unavailable
          })
        ))
      .handle("status", ({ params }) =>
        Effect.flatMap(CurrentPrincipal, (p) => gateway.status(params.id, { orgId: p.orgId, appId: p.appId })).pipe(
          Effect.catchTags({
            MessageNotFound: (e) => Effect.fail(new NotFoundProblem({ detail: `no message ${e.id}` })),
            StoreUnavailable: unavailable
          })
        ))
  })
)

export const SystemHandlers = HttpApiBuilder.group(
  GatewayApi,
  "system",
  Effect.fn(function*(handlers) {
    const readiness = yield* Readiness
    return handlers
      .handle("healthz", () => Effect.succeed({ status: "ok" as const }))
      .handle("readyz", () =>
        readiness.check.pipe(Effect.flatMap((r) => r.ready ? Effect.succeed(r) : Effect.fail(r))))
  })
)

export const HandlersLive = Layer.mergeAll(
  MessagesHandlers,
  MessageSearchHandlers,
  SystemHandlers,
  AccountsHandlersLive,
  SessionHandlersLive,
  AdminHandlers,
  PoliciesHandlers,
  PolicyAdminHandlers,
  OperationsHandlers,
  CampaignInsightHandlers,
  ListsHandlers,
  CampaignsHandlersLive,
  DashboardHandlers,
  RequestValidationLive
).pipe(Layer.provideMerge(AuthenticationLive))
