/**
 * The submit pipeline's refusals as REST answers, in one place: the problem each error is (a batch puts it in the
 * message's result), and the answer of a single submit (the problem plus its Retry-After and RateLimit headers).
 */
import { Effect } from "effect"
import type { IdempotencyKeyInFlight, IdempotencyKeyReused, InvalidField, NoRoute, PolicyRejected } from "../domain/Errors.ts"
import type { RateLimited } from "../ratelimit/RateLimiter.ts"
import type { SubmitError } from "../pipeline/Gateway.ts"
import { rateLimitHeaders, refusalInfo } from "../ratelimit/RateLimiter.ts"
import {
  IdempotencyInFlightProblem,
  IdempotencyKeyReusedProblem,
  NoRouteProblem,
  PolicyRejectedProblem,
  TooManyRequestsProblem,
  UnavailableProblem,
  ValidationProblem
} from "./Problems.ts"
import { setResponseHeader } from "./ResponseHeaders.ts"

export type SubmitProblem =
  | ValidationProblem
  | NoRouteProblem
  | TooManyRequestsProblem
  | UnavailableProblem
  | PolicyRejectedProblem
  | IdempotencyInFlightProblem
  | IdempotencyKeyReusedProblem

/** The problem a refusal is; `field` prefixes a batch message's field names (`messages[3].`). */
export const submitProblem = (error: SubmitError, fieldPrefix = ""): SubmitProblem => {
  switch (error._tag) {
    case "InvalidField": {
      const field = `${fieldPrefix}${error.field}`
      return new ValidationProblem({ detail: `${field}: ${error.message}`, errors: [{ field, message: error.message }] })
    }
    case "NoRoute":
      return new NoRouteProblem({ detail: error.message, ...(error.messageId !== undefined ? { messageId: error.messageId } : {}) })
    case "RateLimited":
      return new TooManyRequestsProblem({
        detail: `rate limit ${error.policy} reached; retry in ${error.retryAfterSeconds} s`,
        retryAfterSeconds: error.retryAfterSeconds
      })
    case "LimiterUnavailable":
      return new UnavailableProblem({ detail: "rate limiting is unavailable; retry later" })
    case "PolicyRejected":
      return new PolicyRejectedProblem({
        detail: `${error.reason} (rule ${error.ruleId})`,
        reason: error.reason,
        ruleId: error.ruleId,
        messageId: error.messageId,
        ...(error.retryAfterSeconds !== undefined ? { retryAfterSeconds: error.retryAfterSeconds } : {})
      })
    case "PolicyUnavailable":
      return new UnavailableProblem({ detail: "the contact policy cannot decide right now; retry later" })
    case "StoreUnavailable":
      return new UnavailableProblem({ detail: "message storage is unavailable; retry later" })
    case "IdempotencyKeyInFlight":
      return new IdempotencyInFlightProblem({
        detail: "a request with this Idempotency-Key is still being processed; retry once it has answered",
        key: error.key
      })
    case "IdempotencyKeyReused":
      return new IdempotencyKeyReusedProblem({
        detail: "this Idempotency-Key was used with a different request; a key names one request only",
        key: error.key
      })
  }
}

/** Seconds a client should wait before retrying this refusal, when that is known. */
export const retryAfterOf = (error: SubmitError): number | undefined => {
  switch (error._tag) {
    case "RateLimited":
    case "LimiterUnavailable":
      return error.retryAfterSeconds
    case "PolicyUnavailable":
    case "IdempotencyKeyInFlight":
      return 1
    default:
      return undefined
  }
}

const setHeaders = (headers: Record<string, string>) =>
  Effect.forEach(Object.entries(headers), ([name, value]) => setResponseHeader(name, value), { discard: true })

/** The problem each error is, by its type: a caller's failure type names only the problems it can answer. */
export type ProblemFor<E extends SubmitError> = E extends InvalidField ? ValidationProblem
  : E extends NoRoute ? NoRouteProblem
  : E extends RateLimited ? TooManyRequestsProblem
  : E extends PolicyRejected ? PolicyRejectedProblem
  : E extends IdempotencyKeyInFlight ? IdempotencyInFlightProblem
  : E extends IdempotencyKeyReused ? IdempotencyKeyReusedProblem
  : UnavailableProblem

/** A single submit's refusal: outages logged (with what failed, never shown to the client), headers set, the problem. */
export const failSubmit = <E extends SubmitError>(error: E): Effect.Effect<never, ProblemFor<E>> => {
  const retryAfter = retryAfterOf(error)
  const headers: Record<string, string> = {
    ...(error._tag === "RateLimited" ? rateLimitHeaders(refusalInfo(error)) : {}),
    ...(retryAfter !== undefined ? { "retry-after": String(retryAfter) } : {})
  }
  const log = error._tag === "StoreUnavailable"
    ? Effect.logError("storage unavailable").pipe(Effect.annotateLogs({ error: error.message }))
    : error._tag === "PolicyUnavailable"
    ? Effect.logWarning("contact policy unavailable").pipe(Effect.annotateLogs({ error: error.message }))
    : Effect.void
  return log.pipe(Effect.andThen(setHeaders(headers)), Effect.andThen(Effect.fail(submitProblem(error) as ProblemFor<E>)))
}
