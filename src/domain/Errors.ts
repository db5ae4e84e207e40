/**
 * Errors of the submit pipeline that every entry point maps to its own answers.
 */
import { Schema } from "effect"

/**
 * An error class whose instances are answers, not defects (a 404, a 429, a refusal): built without capturing a stack
 * trace. A stack says nothing about an answer, and capturing one was ~9 % of a refused request's CPU
 * (`BENCH_API=floor-auth`, bench/RESULTS.md). `class X extends Expected(Schema.TaggedError<X>()("X", {…})) {}`.
 */
// A mixin's constructor takes `any[]` (TypeScript's rule for mixins); the class returned has C's own signature.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const Expected = <C extends new (...args: Array<any>) => Error>(Base: C): C => {
  class WithoutStack extends Base {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    constructor(...args: Array<any>) {
      const limit = Error.stackTraceLimit
      Error.stackTraceLimit = 0
      try {
        super(...args)
      } finally {
        Error.stackTraceLimit = limit
      }
    }
  }
  return WithoutStack
}

/** A request value the gateway cannot take; `field` names it as the client sent it. */
export class InvalidField extends Expected(Schema.TaggedError<InvalidField>()("InvalidField", {
  field: Schema.String,
  message: Schema.String
})) {}

export class MessageNotFound extends Expected(Schema.TaggedError<MessageNotFound>()("MessageNotFound", {
  id: Schema.String
})) {}

export class StoreUnavailable extends Schema.TaggedError<StoreUnavailable>()("StoreUnavailable", {
  message: Schema.String,
  /** The database's own error (an SqlError), for the logs; never shown to a client. */
  cause: Schema.optionalKey(Schema.Defect())
}) {}

/**
 * An error's message followed by its causes' ("PgConnection: Query failed: relation \"x\" does not exist"), so a log
 * says what the database said. Messages only: a driver's error also carries fields (PostgreSQL's `detail` may quote
 * a row's values), which stay out.
 */
export const messageWithCauses = (error: unknown): string => {
  const messages: Array<string> = []
  let current: unknown = error
  for (let depth = 0; depth < 5 && current !== undefined && current !== null; depth++) {
    const message = current instanceof Error || typeof (current as { message?: unknown }).message === "string"
      ? String((current as { message: unknown }).message)
      : String(current)
    if (message !== "" && !messages.includes(message)) messages.push(message)
    current = typeof current === "object" ? (current as { cause?: unknown }).cause : undefined
  }
  return messages.join(": ")
}

export class NoRoute extends Expected(Schema.TaggedError<NoRoute>()("NoRoute", {
  message: Schema.String,
  /** The id under which the refused message was recorded, when it was. */
  messageId: Schema.optionalKey(Schema.String)
})) {}

/** Why the contact policy refuses a message. */
export const policyReasons = ["blacklisted", "frequency_cap", "duplicate", "quiet_hours"] as const

/** The contact policy refused the message; it is recorded as `rejected` with this reason and rule. */
export class PolicyRejected extends Expected(Schema.TaggedError<PolicyRejected>()("PolicyRejected", {
  reason: Schema.Literals(policyReasons),
  ruleId: Schema.String,
  messageId: Schema.String,
  /** When sending the same again would pass this rule (caps, dedup windows, quiet hours), in seconds. */
  retryAfterSeconds: Schema.optionalKey(Schema.Int)
})) {}

/** Another request with this idempotency key is still being processed: retry once it has answered (REST 409). */
export class IdempotencyKeyInFlight extends Expected(Schema.TaggedError<IdempotencyKeyInFlight>()("IdempotencyKeyInFlight", {
  key: Schema.String
})) {}

/** This idempotency key was used before with a different request: a key names one request only (REST 422). */
export class IdempotencyKeyReused extends Expected(Schema.TaggedError<IdempotencyKeyReused>()("IdempotencyKeyReused", {
  key: Schema.String
})) {}
