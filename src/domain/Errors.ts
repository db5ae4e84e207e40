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
  message: Schema.String
}) {}

export class NoRoute extends Schema.TaggedError<NoRoute>()("NoRoute", {
  message: Schema.String,
  /** The id under which the refused message was recorded, when it was. */
  messageId: Schema.optionalKey(Schema.String)
}) {}

/** The contact policy refused the message; it is recorded as `rejected` with this reason and rule. */
export class PolicyRejected extends Schema.TaggedError<PolicyRejected>()("PolicyRejected", {
  reason: Schema.Literals(["blacklisted", "frequency_cap", "duplicate", "quiet_hours"]),
  ruleId: Schema.String,
  messageId: Schema.String,
  /** When sending the same again would pass this rule (caps, dedup windows, quiet hours), in seconds. */
  retryAfterSeconds: Schema.optionalKey(Schema.Int)
}) {}
