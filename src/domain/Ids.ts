import { Schema } from "effect"

export const MessageId = Schema.String.check(Schema.isUUID()).pipe(Schema.brand("MessageId"))
export type MessageId = typeof MessageId.Type

export const LinkId = Schema.String.check(
  Schema.isPattern(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, { message: "a link id is 1-64 letters, digits, '_', '.' or '-'" })
).pipe(Schema.brand("LinkId"))
export type LinkId = typeof LinkId.Type
