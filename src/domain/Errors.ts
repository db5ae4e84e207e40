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
