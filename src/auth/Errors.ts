/**
 * Access errors (401, 403, 404 within an organisation, 409) shared by accounts and the submit checks.
 */
import { Schema } from "effect"
import { Expected } from "../domain/Errors.ts"

/** 401: no credentials, or credentials that do not prove who the caller is. */
export class Unauthenticated extends Expected(Schema.TaggedError<Unauthenticated>()("Unauthenticated", {
  message: Schema.String
})) {}

/** 403: the caller is known but may not do this (role, app, IP). */
export class Forbidden extends Expected(Schema.TaggedError<Forbidden>()("Forbidden", {
  message: Schema.String
})) {}

/** 404 inside the caller's organisation; also what another organisation's ids look like. */
export class NotFoundInOrg extends Expected(Schema.TaggedError<NotFoundInOrg>()("NotFoundInOrg", {
  what: Schema.String,
  id: Schema.String
})) {}

export class Conflict extends Expected(Schema.TaggedError<Conflict>()("Conflict", {
  message: Schema.String
})) {}

/** 503: the mail that carries a token could not be handed to the relay; nothing was left half-done. */
export class MailUnavailable extends Schema.TaggedError<MailUnavailable>()("MailUnavailable", {
  message: Schema.String
}) {}
