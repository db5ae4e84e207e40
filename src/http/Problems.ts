/**
 * The RFC 9457 problem types of the REST API, each with its stable `type` URN.
 */
import { Schema } from "effect"
import { HttpApiError } from "effect/http-api"
import { Expected, policyReasons } from "../domain/Errors.ts"

/** RFC 9457 problems. Each `type` is a stable URN clients may switch on. */

export const FieldError = Schema.Struct({
  field: Schema.String.annotate({ description: "The request field, as a dotted path (\"to\", \"body\" for the body itself)" }),
  message: Schema.String
})

export class ValidationProblem extends Expected(HttpApiError.Problem<ValidationProblem>()("ValidationProblem", {
  type: "urn:smsgw:problem:validation",
  status: 400,
  title: "The request is not valid"
}, {
  errors: Schema.Array(FieldError)
})) {}

/** A 400 naming one bad field. */
export const invalidField = (field: string, message: string) =>
  new ValidationProblem({ detail: `${field}: ${message}`, errors: [{ field, message }] })

export class NotFoundProblem extends Expected(HttpApiError.Problem<NotFoundProblem>()("NotFoundProblem", {
  type: "urn:smsgw:problem:not-found",
  status: 404,
  title: "Not found"
})) {}

export class PayloadTooLargeProblem extends Expected(HttpApiError.Problem<PayloadTooLargeProblem>()("PayloadTooLargeProblem", {
  type: "urn:smsgw:problem:payload-too-large",
  status: 413,
  title: "The request body is too large"
}, {
  maxBytes: Schema.Int
})) {}

export class NoRouteProblem extends Expected(HttpApiError.Problem<NoRouteProblem>()("NoRouteProblem", {
  type: "urn:smsgw:problem:no-route",
  status: 422,
  title: "No route for this message"
}, {
  /** The refused message is recorded (status `rejected`, reason `no_route`) under this id. */
  messageId: Schema.optionalKey(Schema.String)
})) {}

export class UnavailableProblem extends HttpApiError.Problem<UnavailableProblem>()("UnavailableProblem", {
  type: "urn:smsgw:problem:unavailable",
  status: 503,
  title: "The gateway cannot take messages right now"
}) {}

export class UnauthorizedProblem extends Expected(HttpApiError.Problem<UnauthorizedProblem>()("UnauthorizedProblem", {
  type: "urn:smsgw:problem:unauthorized",
  status: 401,
  title: "Authentication required"
})) {}

export class ForbiddenProblem extends Expected(HttpApiError.Problem<ForbiddenProblem>()("ForbiddenProblem", {
  type: "urn:smsgw:problem:forbidden",
  status: 403,
  title: "Not allowed"
})) {}

export class ConflictProblem extends Expected(HttpApiError.Problem<ConflictProblem>()("ConflictProblem", {
  type: "urn:smsgw:problem:conflict",
  status: 409,
  title: "Conflict"
})) {}

export class ListInUseProblem extends Expected(HttpApiError.Problem<ListInUseProblem>()("ListInUseProblem", {
  type: "urn:smsgw:problem:list-in-use",
  status: 409,
  title: "The list is used by campaigns not finished yet"
}, {
  campaigns: Schema.Array(Schema.String).annotate({ description: "The newest few of them" }),
  campaignCount: Schema.Int.annotate({ description: "How many there are in all" })
})) {}

export class TooManyRequestsProblem extends Expected(HttpApiError.Problem<TooManyRequestsProblem>()("TooManyRequestsProblem", {
  type: "urn:smsgw:problem:too-many-requests",
  status: 429,
  title: "Too many requests"
}, {
  retryAfterSeconds: Schema.Int
})) {}

export class PolicyRejectedProblem extends Expected(HttpApiError.Problem<PolicyRejectedProblem>()("PolicyRejectedProblem", {
  type: "urn:smsgw:problem:policy-rejected",
  status: 422,
  title: "The contact policy refused this message"
}, {
  reason: Schema.Literals(policyReasons),
  ruleId: Schema.String,
  /** The refused message is recorded (status `rejected`, with the reason and rule) under this id. */
  messageId: Schema.String,
  /** When the same message would pass this rule (caps, dedup windows, quiet hours). */
  retryAfterSeconds: Schema.optionalKey(Schema.Int)
})) {}

export class IdempotencyInFlightProblem extends Expected(HttpApiError.Problem<IdempotencyInFlightProblem>()("IdempotencyInFlightProblem", {
  type: "urn:smsgw:problem:idempotency-in-flight",
  status: 409,
  title: "A request with this idempotency key is still being processed"
}, {
  key: Schema.String
})) {}

export class IdempotencyKeyReusedProblem extends Expected(HttpApiError.Problem<IdempotencyKeyReusedProblem>()("IdempotencyKeyReusedProblem", {
  type: "urn:smsgw:problem:idempotency-key-reused",
  status: 422,
  title: "This idempotency key was used for a different request"
}, {
  key: Schema.String
})) {}
