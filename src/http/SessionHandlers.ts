/**
 * Handlers of browser sessions: the refresh token lives only in its cookie (HttpOnly, Secure, SameSite=Strict, path
 * /v1/auth/session), so scripts on the page never see it; requests from another site are refused before the cookie
 * is used (CSRF), besides SameSite and the JSON-only bodies the edge enforces.
 */
import { Effect, Layer } from "effect"
import { HttpServerRequest } from "effect/http"
import { HttpApiBuilder } from "effect/http-api"
import { Access, CurrentPrincipal } from "../auth/Access.ts"
import { Accounts, refreshTtlMs } from "../auth/Accounts.ts"
import type { TokenPair } from "../auth/Accounts.ts"
import { problems, requestOrigin } from "./AccountsHandlers.ts"
import { GatewayApi } from "./Api.ts"
import { ForbiddenProblem, UnauthorizedProblem } from "./Problems.ts"
import { setResponseCookie } from "./ResponseHeaders.ts"
import { sessionCookie } from "./SessionApi.ts"

const maxAge = `${Math.floor(refreshTtlMs / 1000)} seconds` as const

/** The refresh token: sent back only to the session endpoints, never readable by scripts. */
const setSessionCookie = (refreshToken: string) =>
  Effect.andThen(
    setResponseCookie(sessionCookie.name, refreshToken, { path: sessionCookie.path, maxAge, httpOnly: true, secure: true, sameSite: "strict" }),
    // No secret: tells the page a session may exist, so a signed-out visit does not try (and fail) to refresh.
    setResponseCookie(sessionCookie.marker, "1", { path: "/", maxAge, secure: true, sameSite: "strict" })
  )

const clearSessionCookie = Effect.andThen(
  setResponseCookie(sessionCookie.name, "", { path: sessionCookie.path, maxAge: 0, httpOnly: true, secure: true, sameSite: "strict" }),
  setResponseCookie(sessionCookie.marker, "", { path: "/", maxAge: 0, secure: true, sameSite: "strict" })
)

/** The access token for the body; the refresh token goes to the cookie only. */
const issued = (pair: TokenPair) =>
  Effect.as(pair.refreshToken === undefined ? Effect.void : setSessionCookie(pair.refreshToken), {
    accessToken: pair.accessToken,
    tokenType: pair.tokenType,
    expiresIn: pair.expiresIn
  })

/**
 * A browser says where a request comes from: Sec-Fetch-Site, or Origin compared with Host. A request from another
 * site never reaches the cookie (SameSite=Strict should already keep it from being sent).
 */
const sameSite = Effect.gen(function*() {
  const request = yield* HttpServerRequest.HttpServerRequest
  const site = request.headers["sec-fetch-site"]
  const origin = request.headers["origin"]
  let originHost: string | undefined
  try {
    originHost = origin === undefined || origin === "null" ? undefined : new URL(origin).host
  } catch {
    originHost = "invalid"
  }
  const crossSite = (site !== undefined && site !== "same-origin" && site !== "none") ||
    origin === "null" || (originHost !== undefined && originHost !== request.headers["host"])
  if (crossSite) return yield* new ForbiddenProblem({ detail: "session requests must come from the Message Center's own origin" })
  return request.cookies[sessionCookie.name]
})

const sessionToken = Effect.flatMap(sameSite, (token) =>
  token === undefined || token === ""
    ? Effect.fail(new UnauthorizedProblem({ detail: "no session: sign in" }))
    : Effect.succeed(token))

export const SessionHandlers = HttpApiBuilder.group(
  GatewayApi,
  "session",
  Effect.fn(function*(handlers) {
    const accounts = yield* Accounts
    const access = yield* Access
    const ipOf = Effect.map(requestOrigin, access.clientIp)
    return handlers
      .handle("signIn", ({ payload }) =>
        Effect.gen(function*() {
          yield* sameSite
          return yield* issued(yield* accounts.login(payload, yield* ipOf).pipe(problems))
        }))
      .handle("refresh", ({ payload }) =>
        Effect.gen(function*() {
          const token = yield* sessionToken
          const pair = yield* accounts.refresh(token, yield* ipOf, payload.organisationId).pipe(
            problems,
            // A dead session's cookie is cleared so the browser stops sending it.
            Effect.tapError((e) => e._tag === "UnauthorizedProblem" ? clearSessionCookie : Effect.void)
          )
          return yield* issued(pair)
        }))
      .handle("signOut", () =>
        Effect.gen(function*() {
          const token = yield* sameSite
          yield* clearSessionCookie
          if (token !== undefined && token !== "") {
            yield* accounts.logout(token, yield* ipOf).pipe(Effect.catchTag("Unauthenticated", () => Effect.void), problems)
          }
        }))
  })
)

export const MeHandlers = HttpApiBuilder.group(
  GatewayApi,
  "me",
  Effect.fn(function*(handlers) {
    const accounts = yield* Accounts
    const access = yield* Access
    const ipOf = Effect.map(requestOrigin, access.clientIp)
    return handlers
      .handle("me", () =>
        Effect.gen(function*() {
          const me = yield* accounts.me(yield* CurrentPrincipal).pipe(problems)
          return {
            user: { id: me.user.id, email: me.user.email, name: me.user.name, superadmin: me.user.superadmin },
            organisation: { id: me.organisation.id, name: me.organisation.name },
            role: me.role,
            organisations: me.memberships.map((m) => ({ id: m.org.id, name: m.org.name, role: m.role }))
          }
        }))
      .handle("signOutEverywhere", () =>
        Effect.gen(function*() {
          yield* accounts.logoutEverywhere(yield* CurrentPrincipal, yield* ipOf).pipe(problems)
          yield* clearSessionCookie
        }))
  })
)

export const SessionHandlersLive = Layer.mergeAll(SessionHandlers, MeHandlers)
