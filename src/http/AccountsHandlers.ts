/**
 * Handlers of the accounts API, and the bearer-token authentication middleware.
 */
import { Effect, Layer, Option, Redacted } from "effect"
import { HttpServerRequest } from "effect/http"
import { HttpApiBuilder } from "effect/http-api"
import { Access, CurrentPrincipal } from "../auth/Access.ts"
import type { RequestOrigin } from "../auth/Access.ts"
import type { AccountError } from "../auth/Accounts.ts"
import { Accounts } from "../auth/Accounts.ts"
import type { LoginThrottled } from "../auth/LoginThrottle.ts"
import type { Registered, Registration } from "../auth/Accounts.ts"
import type { ApiKey, App, AuditEntry, Invitation, Member } from "../domain/Account.ts"
import { GatewayApi } from "./Api.ts"
import {
  ConflictProblem,
  ForbiddenProblem,
  NotFoundProblem,
  TooManyRequestsProblem,
  UnauthorizedProblem,
  UnavailableProblem,
  ValidationProblem
} from "./Problems.ts"
import { beforeOf, defaultPageSize, isoTime } from "./Paging.ts"
import { setResponseHeader } from "./ResponseHeaders.ts"
import { Authentication } from "./Security.ts"

const iso = (ms: number) => new Date(ms).toISOString()

export const requestOrigin: Effect.Effect<RequestOrigin, never, HttpServerRequest.HttpServerRequest> = Effect.map(
  HttpServerRequest.HttpServerRequest,
  (request) => ({
    remoteAddress: Option.getOrUndefined(request.peerAddress),
    forwardedFor: request.headers["x-forwarded-for"],
    appIdHeader: request.headers["x-app-id"]
  })
)

/** The client address as Access sees it (trusted proxies honoured), for the audit log. */
const clientIp = Effect.gen(function*() {
  const access = yield* Access
  return access.clientIp(yield* requestOrigin)
})

/** Domain errors of the account use cases → RFC 9457 problems. */
export const toProblem = (error: AccountError | LoginThrottled) => {
  switch (error._tag) {
    case "InvalidField":
      return new ValidationProblem({ detail: `${error.field}: ${error.message}`, errors: [{ field: error.field, message: error.message }] })
    case "Unauthenticated":
      return new UnauthorizedProblem({ detail: error.message })
    case "Forbidden":
      return new ForbiddenProblem({ detail: error.message })
    case "NotFoundInOrg":
      return new NotFoundProblem({ detail: `no ${error.what} ${error.id}` })
    case "Conflict":
      return new ConflictProblem({ detail: error.message })
    case "StoreUnavailable":
      return new UnavailableProblem({ detail: "storage is unavailable; retry later" })
    case "MailUnavailable":
      return new UnavailableProblem({ detail: error.message })
    case "LoginThrottled":
      return new TooManyRequestsProblem({
        detail: `too many attempts from this address; retry in ${error.retryAfterSeconds} s`,
        retryAfterSeconds: error.retryAfterSeconds
      })
  }
}

export const problems = <A, R>(effect: Effect.Effect<A, AccountError | LoginThrottled, R>) =>
  effect.pipe(
    Effect.tapError((e) => e._tag === "LoginThrottled" ? setResponseHeader("retry-after", String(e.retryAfterSeconds)) : Effect.void),
    Effect.mapError(toProblem)
  )

const appView = (app: App, callbackSecret?: string) => ({
  id: app.id,
  name: app.name,
  allowList: app.allowList,
  limits: app.limits,
  messageClass: app.messageClass,
  active: app.active,
  ...(app.callback !== undefined ? { callbackUrl: app.callback.url, callbackEvents: app.callback.events } : {}),
  ...(app.callbackSecretPrefix !== undefined ? { callbackSecretPrefix: app.callbackSecretPrefix } : {}),
  ...(callbackSecret !== undefined ? { callbackSecret } : {}),
  ...(app.smppSystemId !== undefined ? { smppSystemId: app.smppSystemId } : {}),
  createdAt: iso(app.createdAt),
  updatedAt: iso(app.updatedAt)
})

const keyView = (key: ApiKey) => ({
  id: key.id,
  prefix: key.prefix,
  createdAt: iso(key.createdAt),
  ...(key.revokedAt !== null ? { revokedAt: iso(key.revokedAt) } : {}),
  ...(key.lastUsedAt !== null ? { lastUsedAt: iso(key.lastUsedAt) } : {})
})

const memberView = (m: Member) => ({
  userId: m.userId,
  email: m.email,
  name: m.name,
  role: m.role,
  registered: m.registered,
  createdAt: iso(m.createdAt)
})

const invitationView = (i: Invitation) => ({
  id: i.id,
  email: i.email,
  role: i.role,
  createdAt: iso(i.createdAt),
  expiresAt: iso(i.expiresAt)
})

const registeredView = (r: Registered) => ({
  user: { id: r.user.id, email: r.user.email, name: r.user.name },
  organisation: { id: r.organisation.id, name: r.organisation.name },
  role: r.role
})

const registrationView = (r: Registration) =>
  r._tag === "Pending" ? { status: "confirmation-mailed" as const, email: r.email, expiresAt: iso(r.expiresAt) } : registeredView(r)

const auditView = (e: AuditEntry) => ({
  id: e.id,
  at: iso(e.at),
  action: e.action,
  ...(e.actorUserId !== null ? { actorUserId: e.actorUserId } : {}),
  ...(e.actorAppId !== null ? { actorAppId: e.actorAppId } : {}),
  ...(e.target !== null ? { target: e.target } : {}),
  ...(e.ip !== null ? { ip: e.ip } : {}),
  ...(e.detail !== null ? { detail: e.detail } : {})
})

export const AuthenticationLive = Layer.effect(
  Authentication,
  Effect.gen(function*() {
    const access = yield* Access
    return Authentication.of({
      bearer: (httpEffect, { credential }) =>
        access.authenticate(Redacted.value(credential)).pipe(
          Effect.mapError((e) => new UnauthorizedProblem({ detail: e.message })),
          Effect.flatMap((principal) => Effect.provideService(httpEffect, CurrentPrincipal, principal))
        )
    })
  })
)

export const AuthHandlers = HttpApiBuilder.group(
  GatewayApi,
  "auth",
  Effect.fn(function*(handlers) {
    const accounts = yield* Accounts
    const access = yield* Access
    const ipOf = Effect.map(requestOrigin, access.clientIp)
    return handlers
      .handle("register", ({ payload }) =>
        Effect.gen(function*() {
          return registrationView(yield* accounts.register(payload, yield* ipOf))
        }).pipe(problems))
      .handle("confirm", ({ payload }) =>
        Effect.gen(function*() {
          return registeredView(yield* accounts.confirmRegistration(payload.token, yield* ipOf))
        }).pipe(problems))
      .handle("token", ({ payload }) =>
        Effect.gen(function*() {
          const ip = yield* ipOf
          return "appId" in payload
            ? yield* accounts.loginApp(payload, ip)
            : yield* accounts.login(payload, ip)
        }).pipe(problems))
      .handle("refresh", ({ payload }) =>
        Effect.flatMap(ipOf, (ip) => accounts.refresh(payload.refreshToken, ip)).pipe(problems))
      .handle("logout", ({ payload }) =>
        Effect.flatMap(ipOf, (ip) => accounts.logout(payload.refreshToken, ip)).pipe(problems))
  })
)

export const AppsHandlers = HttpApiBuilder.group(
  GatewayApi,
  "apps",
  Effect.fn(function*(handlers) {
    const accounts = yield* Accounts
    return handlers
      .handle("list", () =>
        Effect.flatMap(CurrentPrincipal, (p) => accounts.listApps(p)).pipe(Effect.map((apps) => apps.map((a) => appView(a))), problems))
      .handle("create", ({ payload }) =>
        Effect.gen(function*() {
          return appView(yield* accounts.createApp(yield* CurrentPrincipal, payload, yield* clientIp))
        }).pipe(problems))
      .handle("get", ({ params }) =>
        Effect.flatMap(CurrentPrincipal, (p) => accounts.getApp(p, params.appId)).pipe(Effect.map((a) => appView(a)), problems))
      .handle("update", ({ params, payload }) =>
        Effect.gen(function*() {
          const { app, callbackSecret } = yield* accounts.updateApp(yield* CurrentPrincipal, params.appId, payload, yield* clientIp)
          return appView(app, callbackSecret)
        }).pipe(problems))
      .handle("rotateCallbackSecret", ({ params }) =>
        Effect.gen(function*() {
          const rotated = yield* accounts.rotateCallbackSecret(yield* CurrentPrincipal, params.appId, yield* clientIp)
          return {
            secret: rotated.secret,
            prefix: rotated.secret.slice(0, 12),
            ...(rotated.previousUntil !== undefined ? { previousValidUntil: iso(rotated.previousUntil) } : {})
          }
        }).pipe(problems))
      .handle("delete", ({ params }) =>
        Effect.gen(function*() {
          yield* accounts.deleteApp(yield* CurrentPrincipal, params.appId, yield* clientIp)
        }).pipe(problems))
      .handle("setSmpp", ({ params, payload }) =>
        Effect.gen(function*() {
          const issued = yield* accounts.setSmpp(yield* CurrentPrincipal, params.appId, payload.systemId, yield* clientIp)
          return { systemId: issued.systemId, password: issued.password }
        }).pipe(problems))
      .handle("rotateSmppPassword", ({ params }) =>
        Effect.gen(function*() {
          const issued = yield* accounts.rotateSmppPassword(yield* CurrentPrincipal, params.appId, yield* clientIp)
          return { systemId: issued.systemId, password: issued.password }
        }).pipe(problems))
      .handle("removeSmpp", ({ params }) =>
        Effect.gen(function*() {
          yield* accounts.removeSmpp(yield* CurrentPrincipal, params.appId, yield* clientIp)
        }).pipe(problems))
      .handle("createKey", ({ params }) =>
        Effect.gen(function*() {
          const key = yield* accounts.createKey(yield* CurrentPrincipal, params.appId, yield* clientIp)
          return { id: key.id, key: key.key, prefix: key.prefix, createdAt: iso(key.createdAt) }
        }).pipe(problems))
      .handle("listKeys", ({ params }) =>
        Effect.flatMap(CurrentPrincipal, (p) => accounts.listKeys(p, params.appId)).pipe(Effect.map((keys) => keys.map(keyView)), problems))
      .handle("revokeKey", ({ params }) =>
        Effect.gen(function*() {
          return keyView(yield* accounts.revokeKey(yield* CurrentPrincipal, params.appId, params.keyId, yield* clientIp))
        }).pipe(problems))
  })
)

export const MembersHandlers = HttpApiBuilder.group(
  GatewayApi,
  "members",
  Effect.fn(function*(handlers) {
    const accounts = yield* Accounts
    return handlers
      .handle("list", () =>
        Effect.flatMap(CurrentPrincipal, (p) => accounts.listMembers(p)).pipe(Effect.map((ms) => ms.map(memberView)), problems))
      .handle("invite", ({ payload }) =>
        Effect.gen(function*() {
          return invitationView(yield* accounts.inviteMember(yield* CurrentPrincipal, payload, yield* clientIp))
        }).pipe(problems))
      .handle("listInvitations", () =>
        Effect.flatMap(CurrentPrincipal, (p) => accounts.listInvitations(p)).pipe(Effect.map((is) => is.map(invitationView)), problems))
      .handle("revokeInvitation", ({ params }) =>
        Effect.gen(function*() {
          yield* accounts.revokeInvitation(yield* CurrentPrincipal, params.invitationId, yield* clientIp)
        }).pipe(problems))
      .handle("acceptInvitation", ({ payload }) =>
        Effect.gen(function*() {
          const joined = yield* accounts.acceptInvitation(yield* CurrentPrincipal, payload.token, yield* clientIp)
          return { organisation: { id: joined.organisation.id, name: joined.organisation.name }, role: joined.role }
        }).pipe(problems))
      .handle("update", ({ params, payload }) =>
        Effect.gen(function*() {
          return memberView(yield* accounts.updateMember(yield* CurrentPrincipal, params.userId, payload.role, yield* clientIp))
        }).pipe(problems))
      .handle("remove", ({ params }) =>
        Effect.gen(function*() {
          yield* accounts.removeMember(yield* CurrentPrincipal, params.userId, yield* clientIp)
        }).pipe(problems))
  })
)

export const AuditHandlers = HttpApiBuilder.group(
  GatewayApi,
  "audit",
  Effect.fn(function*(handlers) {
    const accounts = yield* Accounts
    return handlers
      .handle("list", ({ query }) =>
        Effect.gen(function*() {
          const before = yield* beforeOf(query)
          const since = yield* isoTime("query.since", query.since)
          const until = yield* isoTime("query.until", query.until)
          if (since !== undefined && until !== undefined && since > until) {
            return yield* new ValidationProblem({
              detail: "query.until: must not be before since",
              errors: [{ field: "query.until", message: "must not be before since" }]
            })
          }
          const entries = yield* accounts.listAudit(yield* CurrentPrincipal, {
            limit: query.limit ?? defaultPageSize,
            before,
            action: query.action,
            actorUserId: query.actorUserId,
            actorAppId: query.actorAppId,
            target: query.target,
            since,
            until
          }).pipe(problems)
          return entries.map(auditView)
        }))
      .handle("actions", () => Effect.gen(function*() {
        return yield* accounts.auditActions(yield* CurrentPrincipal).pipe(problems)
      }))
  })
)

export const AccountsHandlersLive = Layer.mergeAll(AuthHandlers, AppsHandlers, MembersHandlers, AuditHandlers)
