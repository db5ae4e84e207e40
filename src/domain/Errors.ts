/**
 * Errors of the submit pipeline that every entry point maps to its own answers.
 */
import { Schema } from "effect"

/** A request value the gateway cannot take; `field` names it as the client sent it. */
export class InvalidField extends Schema.TaggedError<InvalidField>()("InvalidField", {
  field: Schema.String,
  message: Schema.String
}) {}

export class MessageNotFound extends Schema.TaggedError<MessageNotFound>()("MessageNotFound", {
  id: Schema.String
}) {}

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

export class NoRoute extends Schema.TaggedError<NoRoute>()("NoRoute", {
  message: Schema.String,
  /** The id under which the refused message was recorded, when it was. */
  messageId: Schema.optionalKey(Schema.String)
}) {}

/** Why the contact policy refuses a message. */
export const policyReasons = ["blacklisted", "frequency_cap", "duplicate", "quiet_hours"] as const

/** The contact policy refused the message; it is recorded as `rejected` with this reason and rule. */
export class PolicyRejected extends Schema.TaggedError<PolicyRejected>()("PolicyRejected", {
  reason: Schema.Literals(policyReasons),
  ruleId: Schema.String,
  messageId: Schema.String,
  /** When sending the same again would pass this rule (caps, dedup windows, quiet hours), in seconds. */
  retryAfterSeconds: Schema.optionalKey(Schema.Int)
}) {}

/** Another request with this idempotency key is still being processed: retry once it has answered (REST 409). */
export class IdempotencyKeyInFlight extends Schema.TaggedError<IdempotencyKeyInFlight>()("IdempotencyKeyInFlight", {
  key: Schema.String
}) {}

/** This idempotency key was used before with a different request: a key names one request only (REST 422). */
export class IdempotencyKeyReused extends Schema.TaggedError<IdempotencyKeyReused>()("IdempotencyKeyReused", {
  key: Schema.String
}) {}
