/**
 * Handlers of the messages and system groups, and the 400 problem made from request decoding failures.
 */
import { Effect, Layer, Result } from "effect"
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
import { CdrHandlers } from "./CdrHandlers.ts"
import { CallbacksHandlers } from "./CallbacksHandlers.ts"
import { InboundHandlers } from "./InboundHandlers.ts"
import { PoliciesHandlers } from "./PoliciesHandlers.ts"
import { OperationsHandlers } from "./OperationsHandlers.ts"
import { PolicyAdminHandlers } from "./PolicyAdminHandlers.ts"
import { Readiness } from "../pipeline/Readiness.ts"
import { GatewayApi, RequestValidation } from "./Api.ts"
import { rateLimitHeaders } from "../ratelimit/RateLimiter.ts"
import { batchItem, batchResult } from "./MessageBatch.ts"
import type { BatchMessageResult } from "./MessageBatch.ts"
import { ForbiddenProblem, NotFoundProblem, ValidationProblem } from "./Problems.ts"
import { failSubmit } from "./SubmitProblems.ts"
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

export const MessagesHandlers = HttpApiBuilder.group(
  GatewayApi,
  "messages",
  Effect.fn(function*(handlers) {
    const gateway = yield* Gateway
    const access = yield* Access
    const sender = Effect.flatMap(Effect.all([CurrentPrincipal, requestOrigin]), ([principal, origin]) => access.submitter(principal, origin)).pipe(
      Effect.catchTag("Forbidden", (e) => Effect.fail(new ForbiddenProblem({ detail: e.message })))
    )
    return handlers
      .handle("submit", ({ headers, payload }) =>
        Effect.gen(function*() {
          const key = headers["idempotency-key"]
          const outcome = yield* gateway.submit(payload, yield* sender, key !== undefined ? { idempotencyKey: key } : {}).pipe(
            Effect.catch(failSubmit)
          )
          yield* setHeaders(outcome.replayed === true ? { "idempotent-replayed": "true" } : rateLimitHeaders(outcome.rate))
          return outcome.accepted
        }))
      .handle("submitBatch", ({ headers, payload }) =>
        Effect.gen(function*() {
          if (headers["idempotency-key"] !== undefined) {
            const message = "a batch takes a key per message: set messages[].idempotencyKey instead"
            return yield* new ValidationProblem({ detail: `idempotency-key: ${message}`, errors: [{ field: "idempotency-key", message }] })
          }
          const caller = yield* sender
          const read = payload.messages.map(batchItem)
          const items = read.flatMap((r) => Result.isSuccess(r) ? [r.success] : [])
          const ran = yield* gateway.submitMany(items, caller).pipe(Effect.catchTag("StoreUnavailable", (e) => failSubmit(e)))
          // Messages read and run, put back in the request's order next to the ones refused on reading.
          const results: Array<BatchMessageResult> = []
          let next = 0
          for (const [index, r] of read.entries()) {
            const result = Result.isSuccess(r) ? ran[next++] : Result.fail(r.failure)
            if (result === undefined) return yield* Effect.die(new Error("the pipeline answered fewer messages than it was given"))
            results.push(batchResult(index, result))
          }
          const lastRate = [...ran].reverse().find((r) => Result.isSuccess(r) && r.success.replayed !== true)
          if (lastRate !== undefined && Result.isSuccess(lastRate)) yield* setHeaders(rateLimitHeaders(lastRate.success.rate))
          const accepted = results.filter((r) => r.status === "accepted").length
          return { accepted, refused: results.length - accepted, results }
        }))
      .handle("status", ({ params }) =>
        Effect.flatMap(CurrentPrincipal, (p) => gateway.status(params.id, { orgId: p.orgId, appId: p.appId })).pipe(
          Effect.catchTags({
            MessageNotFound: (e) => Effect.fail(new NotFoundProblem({ detail: `no message ${e.id}` })),
            StoreUnavailable: (e) => failSubmit(e)
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
  CdrHandlers,
  CallbacksHandlers,
  InboundHandlers,
  RequestValidationLive
).pipe(Layer.provideMerge(AuthenticationLive))
