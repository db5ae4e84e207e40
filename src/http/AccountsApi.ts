/**
 * The REST API of accounts: auth, apps and keys, members and invitations, audit (effect/http-api groups).
 */
import { MessageClass } from "../domain/Policy.ts"
import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { AppLimits, Role } from "../domain/Account.ts"
import { CallbackEvents } from "../domain/Callback.ts"
import { HttpUrl } from "../domain/Url.ts"
import { pageQuery } from "./Paging.ts"
import { Authentication } from "./Security.ts"
import {
  ConflictProblem,
  ForbiddenProblem,
  NotFoundProblem,
  TooManyRequestsProblem,
  UnauthorizedProblem,
  UnavailableProblem,
  ValidationProblem
} from "./Problems.ts"

const Email = Schema.String.check(Schema.isMaxLength(320))

export const UserView = Schema.Struct({ id: Schema.String, email: Schema.String, name: Schema.String })
export const OrganisationView = Schema.Struct({ id: Schema.String, name: Schema.String })

const MailedToken = Schema.String.check(Schema.isMaxLength(128))

const Registered = Schema.Struct({ user: UserView, organisation: OrganisationView, role: Role }).pipe(HttpApiSchema.status(201))

/** The same answer whether or not the address already has an account: only its mailbox learns which. */
const RegistrationPending = Schema.Struct({
  status: Schema.Literal("confirmation-mailed"),
  email: Schema.String,
  expiresAt: Schema.String
}).pipe(HttpApiSchema.status(202))

export const TokenResponse = Schema.Struct({
  accessToken: Schema.String,
  tokenType: Schema.Literal("Bearer"),
  expiresIn: Schema.Int.annotate({ description: "Seconds until the access token expires" }),
  refreshToken: Schema.optionalKey(Schema.String)
})

export const TokenRequest = Schema.Union([
  Schema.Struct({
    email: Email,
    password: Schema.String.check(Schema.isMaxLength(256)),
    organisationId: Schema.optionalKey(Schema.String)
  }),
  Schema.Struct({ appId: Schema.String, apiKey: Schema.String.check(Schema.isMaxLength(256)) })
])

/** Every problem an account use case can end in (src/http/AccountsHandlers.ts toProblem). */
export const accountErrors = [
  ValidationProblem,
  UnauthorizedProblem,
  ForbiddenProblem,
  NotFoundProblem,
  ConflictProblem,
  TooManyRequestsProblem,
  UnavailableProblem
]

export class AuthGroup extends HttpApiGroup.make("auth")
  .add(
    HttpApiEndpoint.post("register", "/v1/auth/register", {
      payload: Schema.Struct({
        email: Email,
        password: Schema.String.check(Schema.isMaxLength(256)),
        name: Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(200)),
        organisation: Schema.optionalKey(Schema.String.check(Schema.isMaxLength(200))),
        invitationToken: Schema.optionalKey(MailedToken)
      }),
      success: [Registered, RegistrationPending],
      error: accountErrors
    }).annotate(
      OpenApi.Description,
      "Create a user and their organisation (the user is its owner); with an invitationToken, join the inviting " +
        "organisation instead. With auth.requireVerifiedEmail, 202: a link is mailed and nothing exists until it is confirmed."
    ),
    HttpApiEndpoint.post("confirm", "/v1/auth/confirm", {
      payload: Schema.Struct({ token: MailedToken }),
      success: Registered,
      error: accountErrors
    }).annotate(OpenApi.Description, "Confirm a registration with the token mailed to its address (single use)."),
    HttpApiEndpoint.post("token", "/v1/auth/token", {
      payload: TokenRequest,
      success: TokenResponse,
      error: accountErrors
    }).annotate(
      OpenApi.Description,
      "Email + password → access token and refresh token; appId + apiKey → an access token scoped to the app."
    ),
    HttpApiEndpoint.post("refresh", "/v1/auth/refresh", {
      payload: Schema.Struct({ refreshToken: Schema.String.check(Schema.isMaxLength(512)) }),
      success: TokenResponse,
      error: accountErrors
    }).annotate(OpenApi.Description, "A new token pair; the refresh token used is spent."),
    HttpApiEndpoint.post("logout", "/v1/auth/logout", {
      payload: Schema.Struct({ refreshToken: Schema.String.check(Schema.isMaxLength(512)) }),
      success: HttpApiSchema.NoContent,
      error: accountErrors
    }).annotate(OpenApi.Description, "Revoke a refresh token.")
  )
  .annotate(OpenApi.Title, "Authentication")
{}

export const AppView = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  allowList: Schema.Array(Schema.String),
  limits: AppLimits,
  messageClass: MessageClass,
  active: Schema.Boolean,
  callbackUrl: Schema.optionalKey(Schema.String),
  callbackEvents: Schema.optionalKey(CallbackEvents),
  callbackSecretPrefix: Schema.optionalKey(Schema.String.annotate({ description: "The first characters of the signing secret" })),
  callbackSecret: Schema.optionalKey(Schema.String.annotate({
    description: "The callback signing secret, in the answer that made it only (when callbackUrl was first set): keep it"
  })),
  smppSystemId: Schema.optionalKey(Schema.String.annotate({
    description: "The app's SMPP system_id when it has SMPP credentials (docs/smpp-server.md); the password is never shown again"
  })),
  createdAt: Schema.String,
  updatedAt: Schema.String
})

/** The answer that makes SMPP credentials or a new password: the only one that shows the password. */
export const SmppCredentialsView = Schema.Struct({
  systemId: Schema.String,
  password: Schema.String.annotate({ description: "8 characters, shown in this answer only: keep it (a new one is made with POST .../smpp/password)" })
})

const AllowListInput = Schema.Array(Schema.String.check(Schema.isMaxLength(64))).check(Schema.isMaxLength(256))

export const ApiKeyView = Schema.Struct({
  id: Schema.String,
  prefix: Schema.String,
  createdAt: Schema.String,
  revokedAt: Schema.optionalKey(Schema.String),
  lastUsedAt: Schema.optionalKey(Schema.String)
})


export class AppsGroup extends HttpApiGroup.make("apps")
  .add(
    HttpApiEndpoint.get("list", "/v1/apps", { success: Schema.Array(AppView), error: accountErrors }),
    HttpApiEndpoint.post("create", "/v1/apps", {
      payload: Schema.Struct({
        name: Schema.String.check(Schema.isMaxLength(200)),
        allowList: Schema.optionalKey(AllowListInput),
        limits: Schema.optionalKey(AppLimits),
        messageClass: Schema.optionalKey(MessageClass),
        active: Schema.optionalKey(Schema.Boolean)
      }),
      success: AppView.pipe(HttpApiSchema.status(201)),
      error: accountErrors
    }),
    HttpApiEndpoint.get("get", "/v1/apps/:appId", { params: { appId: Schema.String }, success: AppView, error: accountErrors }),
    HttpApiEndpoint.patch("update", "/v1/apps/:appId", {
      params: { appId: Schema.String },
      payload: Schema.Struct({
        name: Schema.optionalKey(Schema.String.check(Schema.isMaxLength(200))),
        allowList: Schema.optionalKey(AllowListInput),
        limits: Schema.optionalKey(AppLimits),
        messageClass: Schema.optionalKey(MessageClass),
        active: Schema.optionalKey(Schema.Boolean),
        callbackUrl: Schema.optionalKey(Schema.NullOr(HttpUrl).annotate({
          description: "Where the app's messages' status changes are POSTed (docs/callbacks.md); null removes it"
        })),
        callbackEvents: Schema.optionalKey(CallbackEvents.annotate({ description: "final (default): the final status only; all: every change" }))
      }),
      success: AppView,
      error: accountErrors
    }),
    HttpApiEndpoint.post("rotateCallbackSecret", "/v1/apps/:appId/callback-secret", {
      params: { appId: Schema.String },
      success: Schema.Struct({
        secret: Schema.String,
        prefix: Schema.String,
        previousValidUntil: Schema.optionalKey(Schema.String)
      }),
      error: accountErrors
    }).annotate(
      OpenApi.Description,
      "A new callback signing secret, shown once. The previous one still signs (a second v1 in Smsgw-Signature) until previousValidUntil."
    ),
    HttpApiEndpoint.delete("delete", "/v1/apps/:appId", {
      params: { appId: Schema.String },
      success: HttpApiSchema.NoContent,
      error: accountErrors
    }),
    HttpApiEndpoint.put("setSmpp", "/v1/apps/:appId/smpp", {
      params: { appId: Schema.String },
      payload: Schema.Struct({
        systemId: Schema.String.annotate({
          description: "The SMPP system_id the app binds with: 1-15 characters of A-Z a-z 0-9 . _ -, unique in the installation (any case)"
        })
      }),
      success: SmppCredentialsView,
      error: accountErrors
    }).annotate(
      OpenApi.Description,
      "SMPP credentials for the app (docs/smpp-server.md): the systemId chosen and a generated password, shown once. " +
        "Replaces earlier credentials; 409 when another app has the systemId."
    ),
    HttpApiEndpoint.post("rotateSmppPassword", "/v1/apps/:appId/smpp/password", {
      params: { appId: Schema.String },
      success: SmppCredentialsView,
      error: accountErrors
    }).annotate(OpenApi.Description, "A new SMPP password, shown once; new binds with the old one are refused from now on."),
    HttpApiEndpoint.delete("removeSmpp", "/v1/apps/:appId/smpp", {
      params: { appId: Schema.String },
      success: HttpApiSchema.NoContent,
      error: accountErrors
    }).annotate(OpenApi.Description, "The app's SMPP credentials removed: new binds are refused."),
    HttpApiEndpoint.post("createKey", "/v1/apps/:appId/keys", {
      params: { appId: Schema.String },
      success: Schema.Struct({ id: Schema.String, key: Schema.String, prefix: Schema.String, createdAt: Schema.String }).pipe(
        HttpApiSchema.status(201)
      ),
      error: accountErrors
    }).annotate(OpenApi.Description, "The key is shown once; only its prefix is kept readable."),
    HttpApiEndpoint.get("listKeys", "/v1/apps/:appId/keys", {
      params: { appId: Schema.String },
      success: Schema.Array(ApiKeyView),
      error: accountErrors
    }),
    HttpApiEndpoint.delete("revokeKey", "/v1/apps/:appId/keys/:keyId", {
      params: { appId: Schema.String, keyId: Schema.String },
      success: ApiKeyView,
      error: accountErrors
    })
  )
  .middleware(Authentication)
  .annotate(OpenApi.Title, "Apps")
{}

export const MemberView = Schema.Struct({
  userId: Schema.String,
  email: Schema.String,
  name: Schema.String,
  role: Role,
  registered: Schema.Boolean,
  createdAt: Schema.String
})

/** What the inviter learns: the same for an address with or without an account. */
export const InvitationView = Schema.Struct({
  id: Schema.String,
  email: Schema.String,
  role: Role,
  createdAt: Schema.String,
  expiresAt: Schema.String
})

export class MembersGroup extends HttpApiGroup.make("members")
  .add(
    HttpApiEndpoint.get("list", "/v1/members", { success: Schema.Array(MemberView), error: accountErrors }),
    HttpApiEndpoint.post("invite", "/v1/members", {
      payload: Schema.Struct({ email: Email, role: Role }),
      success: InvitationView.pipe(HttpApiSchema.status(202)),
      error: accountErrors
    }).annotate(
      OpenApi.Description,
      "Invite by email: a single-use token is mailed; the person is a member only once they register or accept with it."
    ),
    HttpApiEndpoint.get("listInvitations", "/v1/invitations", { success: Schema.Array(InvitationView), error: accountErrors })
      .annotate(OpenApi.Description, "Pending invitations (owners, admins)."),
    HttpApiEndpoint.delete("revokeInvitation", "/v1/invitations/:invitationId", {
      params: { invitationId: Schema.String },
      success: HttpApiSchema.NoContent,
      error: accountErrors
    }),
    HttpApiEndpoint.post("acceptInvitation", "/v1/invitations/accept", {
      payload: Schema.Struct({ token: MailedToken }),
      success: Schema.Struct({ organisation: OrganisationView, role: Role }),
      error: accountErrors
    }).annotate(
      OpenApi.Description,
      "The signed-in user (the address the invitation was sent to) joins; sign in with organisationId to act there."
    ),
    HttpApiEndpoint.patch("update", "/v1/members/:userId", {
      params: { userId: Schema.String },
      payload: Schema.Struct({ role: Role }),
      success: MemberView,
      error: accountErrors
    }),
    HttpApiEndpoint.delete("remove", "/v1/members/:userId", {
      params: { userId: Schema.String },
      success: HttpApiSchema.NoContent,
      error: accountErrors
    })
  )
  .middleware(Authentication)
  .annotate(OpenApi.Title, "Members")
{}

export const AuditView = Schema.Struct({
  id: Schema.String,
  at: Schema.String,
  action: Schema.String,
  actorUserId: Schema.optionalKey(Schema.String),
  actorAppId: Schema.optionalKey(Schema.String),
  target: Schema.optionalKey(Schema.String),
  ip: Schema.optionalKey(Schema.String),
  detail: Schema.optionalKey(Schema.String)
})

const auditFilter = (description: string) =>
  Schema.optionalKey(Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(200)).annotate({ description }))

const auditTime = (description: string) => Schema.optionalKey(Schema.String.annotate({ description }))

/** Entries per page of the audit log at most. */
export const maxAuditPage = 1000

export class AuditGroup extends HttpApiGroup.make("audit")
  .add(
    HttpApiEndpoint.get("list", "/v1/audit", {
      query: {
        ...pageQuery("entries", maxAuditPage, "at"),
        action: auditFilter("Only this action (exact), e.g. member.role_changed"),
        actorUserId: auditFilter("Only what this user did"),
        actorAppId: auditFilter("Only what this app did"),
        target: auditFilter("Only entries about this target (exact: a user, app, campaign or invitation id; keys are appId/keyId)"),
        since: auditTime("ISO time: entries at or after it"),
        until: auditTime("ISO time: entries at or before it")
      },
      success: Schema.Array(AuditView),
      error: accountErrors
    }).annotate(
      OpenApi.Description,
      "Security-relevant actions of the organisation, newest first (owners and admins), filtered by every filter given. " +
        "A full page may have more after it: ask again with the same filters, the last entry's `at` as `before` and its " +
        "id as `beforeId`."
    ),
    HttpApiEndpoint.get("actions", "/v1/audit/actions", { success: Schema.Array(Schema.String), error: accountErrors })
      .annotate(OpenApi.Description, "The actions the organisation's audit log holds, sorted (owners and admins).")
  )
  .middleware(Authentication)
  .annotate(OpenApi.Title, "Audit")
{}
