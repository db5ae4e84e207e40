/**
 * The REST API of browser sessions (the Message Center): sign-in that keeps the refresh token in an HttpOnly cookie
 * scoped to /v1/auth/session, refresh and organisation switch from that cookie, sign-out, sign-out everywhere, and
 * the signed-in user's profile with their organisations. Tokens for scripts stay on /v1/auth/token.
 */
import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { Role } from "../domain/Account.ts"
import { accountErrors, OrganisationView, UserView } from "./AccountsApi.ts"
import { Authentication } from "./Security.ts"

/** The refresh cookie: sent by the browser to the session endpoints only, never readable by scripts. */
export const sessionCookie = { name: "smsgw_refresh", path: "/v1/auth/session", marker: "smsgw_session" } as const

export const SessionToken = Schema.Struct({
  accessToken: Schema.String,
  tokenType: Schema.Literal("Bearer"),
  expiresIn: Schema.Int.annotate({ description: "Seconds until the access token expires; refresh before then" })
})

/** The session endpoints end in the account use cases' problems (sign-in, refresh and profile are account use cases). */
const sessionErrors = accountErrors

export class SessionGroup extends HttpApiGroup.make("session")
  .add(
    HttpApiEndpoint.post("signIn", "/v1/auth/session", {
      payload: Schema.Struct({
        email: Schema.String.check(Schema.isMaxLength(320)),
        password: Schema.String.check(Schema.isMaxLength(256)),
        organisationId: Schema.optionalKey(Schema.String.check(Schema.isMaxLength(64)))
      }),
      success: SessionToken,
      error: sessionErrors
    }).annotate(
      OpenApi.Description,
      "Sign in for a browser: the access token in the body, the refresh token in an HttpOnly, Secure, SameSite=Strict " +
        `cookie (${sessionCookie.name}) whose path is ${sessionCookie.path}.`
    ),
    HttpApiEndpoint.post("refresh", "/v1/auth/session/refresh", {
      payload: Schema.Struct({ organisationId: Schema.optionalKey(Schema.String.check(Schema.isMaxLength(64))) }),
      success: SessionToken,
      error: sessionErrors
    }).annotate(
      OpenApi.Description,
      "A new access token from the session cookie (which is rotated); with organisationId, for another organisation " +
        "the user belongs to. Refused from another site (Origin / Sec-Fetch-Site)."
    ),
    HttpApiEndpoint.delete("signOut", "/v1/auth/session", {
      success: HttpApiSchema.NoContent,
      error: sessionErrors
    }).annotate(OpenApi.Description, "End this browser's session: its refresh token revoked, the cookie cleared.")
  )
  .annotate(OpenApi.Title, "Browser sessions")
{}

export const MeView = Schema.Struct({
  user: Schema.Struct({ ...UserView.fields, superadmin: Schema.Boolean }),
  organisation: OrganisationView,
  role: Role,
  organisations: Schema.Array(Schema.Struct({ ...OrganisationView.fields, role: Role }))
})

export class MeGroup extends HttpApiGroup.make("me")
  .add(
    HttpApiEndpoint.get("me", "/v1/me", { success: MeView, error: sessionErrors })
      .annotate(OpenApi.Description, "The signed-in user, the token's organisation and role, and every organisation of the user."),
    HttpApiEndpoint.post("signOutEverywhere", "/v1/me/sign-out-everywhere", {
      success: HttpApiSchema.NoContent,
      error: sessionErrors
    }).annotate(OpenApi.Description, "Revoke every session of the signed-in user (each ends when its access token expires).")
  )
  .middleware(Authentication)
  .annotate(OpenApi.Title, "Me")
{}
