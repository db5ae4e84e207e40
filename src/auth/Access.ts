/**
 * Who is calling: bearer tokens to principals, and the submit checks (the app, its organisation, role, allow-list).
 */
import { Context, Effect, Layer, Option, Result } from "effect"
import type { App, Role } from "../domain/Account.ts"
import { atLeast } from "../domain/Account.ts"
import type { Submitter } from "../domain/Account.ts"
import { AccountStore } from "./AccountStore.ts"
import { clientIp } from "./ClientIp.ts"
import { Forbidden, Unauthenticated } from "./Errors.ts"
import type { AllowList } from "./IpAllowList.ts"
import { allows, parseAllowList } from "./IpAllowList.ts"
import { Tokens } from "./Tokens.ts"
import { traced } from "../observability/Tracing.ts"

/** Who a verified access token speaks for. */
export interface Principal {
  readonly kind: "user" | "app"
  readonly orgId: string
  readonly userId: string | null
  readonly role: Role | null
  readonly superadmin: boolean
  readonly appId: string | null
  readonly apiKeyId: string | null
}

export class CurrentPrincipal extends Context.Service<CurrentPrincipal, Principal>()("smsgw/auth/CurrentPrincipal") {}

/** What the transport knows about where a request came from. */
export interface RequestOrigin {
  readonly remoteAddress: string | undefined
  readonly forwardedFor: string | undefined
  readonly appIdHeader: string | undefined
}

export interface AccessOptions {
  /** Peers whose X-Forwarded-For is believed (load balancers, reverse proxies). */
  readonly trustedProxies: ReadonlyArray<string>
  /** How long an app or key read from the store is trusted before it is read again (cluster-wide changes). */
  readonly cacheTtlMs: number
}

interface CachedApp {
  readonly app: App | undefined
  readonly allowList: AllowList | undefined
  readonly at: number
}

/**
 * Authentication of every request and the checks of every submission: token, app, organisation, client address.
 * Apps and keys are cached briefly so the submit path costs a map lookup; local changes invalidate at once.
 */
/**
 * Whose messages a caller may list (REST search, gRPC ListMessages): an app token its own app's only, whatever it
 * asks; a member of the organisation (viewer and above) any app's, or all. Answers the app filter to apply.
 */
export const messageListScope = (principal: Principal, askedAppId: string | undefined): Effect.Effect<string | undefined, Forbidden> => {
  if (principal.kind === "app") {
    return askedAppId === undefined || askedAppId === principal.appId
      ? Effect.succeed(principal.appId ?? undefined)
      : Effect.fail(new Forbidden({ message: `an app token lists its own app's messages only, not app ${askedAppId}` }))
  }
  return principal.role !== null && atLeast(principal.role, "viewer")
    ? Effect.succeed(askedAppId)
    : Effect.fail(new Forbidden({ message: "messages are listed by members of the organisation or by an app token" }))
}

export class Access extends Context.Service<Access, {
  readonly authenticate: (token: string) => Effect.Effect<Principal, Unauthenticated>
  readonly submitter: (principal: Principal, origin: RequestOrigin) => Effect.Effect<Submitter, Forbidden>
  readonly clientIp: (origin: RequestOrigin) => string
  readonly invalidateApp: (appId: string) => void
  readonly invalidateKey: (keyId: string) => void
}>()("smsgw/auth/Access") {
  static readonly layer = (options: AccessOptions) =>
    Layer.effect(
      Access,
      Effect.gen(function*() {
        const tokens = yield* Tokens
        const store = yield* AccountStore
        const trusted = parseAllowList(options.trustedProxies)
        if (Result.isFailure(trusted)) {
          return yield* Effect.die(new Error(`http.trustedProxies: ${trusted.failure.entry}: ${trusted.failure.message}`))
        }
        const trustedProxies = trusted.success
        const apps = new Map<string, CachedApp>()
        const keys = new Map<string, { readonly usable: boolean; readonly at: number }>()

        const appOf = (appId: string) =>
          Effect.suspend(() => {
            const cached = apps.get(appId)
            if (cached !== undefined && Date.now() - cached.at < options.cacheTtlMs) return Effect.succeed(cached)
            return store.findAppById(appId).pipe(
              Effect.map((found) => {
                const app = Option.getOrUndefined(found)
                const parsed = app === undefined ? undefined : parseAllowList(app.allowList)
                const entry: CachedApp = {
                  app,
                  allowList: parsed !== undefined && Result.isSuccess(parsed) ? parsed.success : undefined,
                  at: Date.now()
                }
                if (apps.size > 50_000) apps.clear()
                apps.set(appId, entry)
                return entry
              }),
              Effect.orDie
            )
          })

        const keyUsable = (keyId: string) =>
          Effect.suspend(() => {
            const cached = keys.get(keyId)
            if (cached !== undefined && Date.now() - cached.at < options.cacheTtlMs) return Effect.succeed(cached.usable)
            return store.findApiKey(keyId).pipe(
              Effect.map((found) => {
                const usable = Option.isSome(found) && found.value.key.revokedAt === null && found.value.appActive &&
                  !found.value.appDeleted
                if (keys.size > 50_000) keys.clear()
                keys.set(keyId, { usable, at: Date.now() })
                return usable
              }),
              Effect.orDie
            )
          })

        const authenticate = (token: string) =>
          Effect.gen(function*() {
            if (token === "") return yield* new Unauthenticated({ message: "an Authorization: Bearer <token> header is required" })
            const claims = yield* tokens.verify(token).pipe(
              Effect.mapError((e) => new Unauthenticated({ message: `invalid access token (${e.reason})` }))
            )
            if (claims.app !== undefined) {
              if (claims.akid === undefined || !(yield* keyUsable(claims.akid))) {
                return yield* new Unauthenticated({ message: "the API key behind this token was revoked" })
              }
              const principal: Principal = {
                kind: "app",
                orgId: claims.org,
                userId: null,
                role: null,
                superadmin: false,
                appId: claims.app,
                apiKeyId: claims.akid
              }
              return principal
            }
            const principal: Principal = {
              kind: "user",
              orgId: claims.org,
              userId: claims.sub,
              role: claims.role ?? "viewer",
              superadmin: claims.sa === true,
              appId: null,
              apiKeyId: null
            }
            return principal
          })

        const ipOf = (origin: RequestOrigin) =>
          clientIp({ remoteAddress: origin.remoteAddress, forwardedFor: origin.forwardedFor, trustedProxies })

        const submitter = (principal: Principal, origin: RequestOrigin) =>
          Effect.gen(function*() {
            const appId = principal.appId ?? origin.appIdHeader
            if (appId === undefined || appId === "") {
              return yield* new Forbidden({ message: "user tokens must name the sending app in an X-App-Id header" })
            }
            if (principal.kind === "user" && (principal.role === null || !atLeast(principal.role, "member"))) {
              return yield* new Forbidden({ message: "viewers may not send messages" })
            }
            const { app, allowList } = yield* appOf(appId)
            if (app === undefined || app.orgId !== principal.orgId) {
              return yield* new Forbidden({ message: `app ${appId} is not an app of your organisation` })
            }
            if (!app.active) return yield* new Forbidden({ message: `app ${appId} is disabled` })
            const ip = ipOf(origin)
            if (allowList === undefined || !allows(allowList, ip)) {
              return yield* new Forbidden({ message: `client address ${ip} is not in the allow-list of app ${appId}` })
            }
            const sender: Submitter = {
              orgId: app.orgId,
              appId: app.id,
              appLimits: app.limits,
              messageClass: app.messageClass,
              ...(app.callback !== undefined ? { callback: app.callback } : {}),
              canSignCallbacks: app.callbackSecretPrefix !== undefined
            }
            return sender
          })

        return Access.of({
          authenticate: (token) =>
            authenticate(token).pipe(
              Effect.tap((p) => Effect.annotateCurrentSpan({ "smsgw.principal": p.kind, "smsgw.org_id": p.orgId })),
              traced("smsgw.auth.authenticate")
            ),
          submitter: (principal, origin) =>
            submitter(principal, origin).pipe(
              Effect.tap((s) => Effect.annotateCurrentSpan("smsgw.app_id", s.appId)),
              traced("smsgw.auth.submitter")
            ),
          clientIp: ipOf,
          invalidateApp: (appId) => void apps.delete(appId),
          invalidateKey: (keyId) => void keys.delete(keyId)
        })
      })
    )
}
