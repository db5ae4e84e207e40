import type { MessageClass } from "../domain/Policy.ts"
import { Context, Effect, Layer, Option, Result } from "effect"
import type { ApiKey, App, AppLimits, AuditEntry, Member, Organisation, Role, User } from "../domain/Account.ts"
import { atLeast } from "../domain/Account.ts"
import { InvalidField, StoreUnavailable } from "../domain/Errors.ts"
import type { Principal } from "./Access.ts"
import { Access } from "./Access.ts"
import { AccountStore, StoreFailure } from "./AccountStore.ts"
import { Conflict, Forbidden, NotFoundInOrg, Unauthenticated } from "./Errors.ts"
import { parseAllowList } from "./IpAllowList.ts"
import type { LoginThrottled } from "./LoginThrottle.ts"
import { LoginThrottle } from "./LoginThrottle.ts"
import { emailKey, normaliseEmail, normaliseName } from "./Identity.ts"
import { dummyVerify, hashPassword, passwordProblem, verifyPassword } from "./Passwords.ts"
import { constantTimeEqual, makeApiKey, makeRefreshToken, parseApiKey, parseRefreshToken, sha256Hex } from "./Secrets.ts"
import { Tokens } from "./Tokens.ts"

export interface TokenPair {
  readonly accessToken: string
  readonly tokenType: "Bearer"
  readonly expiresIn: number
  readonly refreshToken?: string
}

export interface AppInput {
  readonly name: string
  readonly allowList?: ReadonlyArray<string> | undefined
  readonly limits?: AppLimits | undefined
  readonly messageClass?: MessageClass | undefined
  readonly active?: boolean | undefined
}

export interface NewApiKey {
  readonly id: string
  readonly key: string
  readonly prefix: string
  readonly createdAt: number
}

export type AccountError = InvalidField | Unauthenticated | Forbidden | NotFoundInOrg | Conflict | StoreUnavailable

const refreshTtlMs = 30 * 24 * 3600 * 1000

/** The account use cases: each checks the caller's role and organisation, writes the audit log, and never leaks secrets. */
export class Accounts extends Context.Service<Accounts, {
  readonly register: (
    input: { readonly email: string; readonly password: string; readonly name: string; readonly organisation?: string | undefined },
    ip: string
  ) => Effect.Effect<{ readonly user: User; readonly organisation: Organisation; readonly role: Role }, AccountError | LoginThrottled>
  readonly login: (
    input: { readonly email: string; readonly password: string; readonly organisationId?: string | undefined },
    ip: string
  ) => Effect.Effect<TokenPair, AccountError | LoginThrottled>
  readonly loginApp: (input: { readonly appId: string; readonly apiKey: string }, ip: string) => Effect.Effect<TokenPair, AccountError | LoginThrottled>
  readonly refresh: (refreshToken: string, ip: string) => Effect.Effect<TokenPair, AccountError>
  readonly logout: (refreshToken: string, ip: string) => Effect.Effect<void, AccountError>
  readonly createApp: (p: Principal, input: AppInput, ip: string) => Effect.Effect<App, AccountError>
  readonly listApps: (p: Principal) => Effect.Effect<ReadonlyArray<App>, AccountError>
  readonly getApp: (p: Principal, appId: string) => Effect.Effect<App, AccountError>
  readonly updateApp: (p: Principal, appId: string, patch: Partial<AppInput>, ip: string) => Effect.Effect<App, AccountError>
  readonly deleteApp: (p: Principal, appId: string, ip: string) => Effect.Effect<void, AccountError>
  readonly createKey: (p: Principal, appId: string, ip: string) => Effect.Effect<NewApiKey, AccountError>
  readonly listKeys: (p: Principal, appId: string) => Effect.Effect<ReadonlyArray<ApiKey>, AccountError>
  readonly revokeKey: (p: Principal, appId: string, keyId: string, ip: string) => Effect.Effect<ApiKey, AccountError>
  readonly listMembers: (p: Principal) => Effect.Effect<ReadonlyArray<Member>, AccountError>
  readonly inviteMember: (p: Principal, input: { readonly email: string; readonly role: Role }, ip: string) => Effect.Effect<Member, AccountError>
  readonly updateMember: (p: Principal, userId: string, role: Role, ip: string) => Effect.Effect<Member, AccountError>
  readonly removeMember: (p: Principal, userId: string, ip: string) => Effect.Effect<void, AccountError>
  readonly listAudit: (p: Principal, options: { readonly limit: number; readonly before?: number | undefined }) => Effect.Effect<ReadonlyArray<AuditEntry>, AccountError>
}>()("smsgw/auth/Accounts") {
  static readonly layer = Layer.effect(
    Accounts,
    Effect.gen(function*() {
      const store = yield* AccountStore
      const tokens = yield* Tokens
      const throttle = yield* LoginThrottle
      const access = yield* Access

      // Store failures are infrastructure, not the caller's fault: 503, logged without secrets.
      const infra = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, Exclude<E, StoreFailure> | StoreUnavailable, R> =>
        Effect.catchIf(
          effect,
          (e): e is Extract<E, StoreFailure> => e instanceof StoreFailure,
          (e) =>
            Effect.logError("account store failed").pipe(
              Effect.annotateLogs({ error: e.message }),
              Effect.andThen(Effect.fail(new StoreUnavailable({ message: "account storage is unavailable" })))
            )
        ) as Effect.Effect<A, Exclude<E, StoreFailure> | StoreUnavailable, R>

      const notFound = (what: string, id: string) => () => Effect.fail(new NotFoundInOrg({ what, id }))

      const audit = (p: Principal | null, orgId: string | null, action: string, target: string | null, ip: string, detail?: string) =>
        infra(store.audit({
          orgId,
          actorUserId: p?.userId ?? null,
          actorAppId: p?.appId ?? null,
          action,
          target,
          ip,
          detail: detail ?? null
        })).pipe(Effect.ignore)

      const requireUser = (p: Principal, minimum: Role) =>
        p.kind !== "user" || p.userId === null
          ? Effect.fail(new Forbidden({ message: "this needs a user token, not an app token" }))
          : p.role === null || !atLeast(p.role, minimum)
          ? Effect.fail(new Forbidden({ message: `this needs the ${minimum} role or higher` }))
          : Effect.succeed(p.userId)

      const checkAllowList = (allowList: ReadonlyArray<string> | undefined) => {
        if (allowList === undefined) return Effect.void
        const parsed = parseAllowList(allowList)
        return Result.isFailure(parsed)
          ? Effect.fail(new InvalidField({ field: "allowList", message: `${parsed.failure.entry}: ${parsed.failure.message}` }))
          : Effect.void
      }

      const issueForUser = (user: User, orgId: string, role: Role) =>
        Effect.gen(function*() {
          const access = yield* tokens.issueUserToken({ userId: user.id, orgId, role, superadmin: user.superadmin })
          const refresh = makeRefreshToken()
          yield* infra(store.addRefreshToken({
            id: refresh.id,
            userId: user.id,
            orgId,
            hash: refresh.hash,
            expiresAt: Date.now() + refreshTtlMs
          }))
          const pair: TokenPair = {
            accessToken: access.token,
            tokenType: "Bearer",
            expiresIn: Math.max(0, Math.round((access.expiresAt - Date.now()) / 1000)),
            refreshToken: refresh.token
          }
          return pair
        })

      const validEmail = (raw: string) => {
        const email = normaliseEmail(raw)
        return Result.isFailure(email)
          ? Effect.fail(new InvalidField({ field: "email", message: email.failure }))
          : Effect.succeed(email.success)
      }

      const validName = (field: string, raw: string) => {
        const name = normaliseName(raw)
        return Result.isFailure(name) ? Effect.fail(new InvalidField({ field, message: name.failure })) : Effect.succeed(name.success)
      }

      const throttledDetail = (e: LoginThrottled) => `retryAfter=${e.retryAfterSeconds}s`

      /** The first refusal of a window, in the log of the organisation whose user is targeted (none for unknown emails). */
      const auditThrottledUser = (email: string, ip: string, e: LoginThrottled) =>
        Effect.gen(function*() {
          const found = yield* infra(store.findLogin(email))
          if (Option.isNone(found)) return
          const memberships = yield* infra(store.membershipsOf(found.value.user.id))
          yield* audit(null, memberships[0]?.org.id ?? null, "login.throttled", found.value.user.id, ip, throttledDetail(e))
        }).pipe(Effect.ignore)

      const wrongLogin = new Unauthenticated({ message: "wrong email or password" })

      const register = Effect.fn("Accounts.register")(function*(
        input: { readonly email: string; readonly password: string; readonly name: string; readonly organisation?: string | undefined },
        ip: string
      ) {
        const email = yield* validEmail(input.email)
        const problem = passwordProblem(input.password)
        if (problem !== undefined) return yield* new InvalidField({ field: "password", message: problem })
        const name = yield* validName("name", input.name)
        const orgName = input.organisation === undefined || input.organisation.trim() === ""
          ? `${name}'s organisation`
          : yield* validName("organisation", input.organisation)
        // Counted once the input is valid: each registration costs a password hash and an organisation.
        yield* throttle.registration(ip)
        const passwordHash = yield* hashPassword(input.password)
        const result = yield* infra(store.register({ email, name, passwordHash, orgName })).pipe(
          Effect.catchTag("EmailTaken", () => Effect.fail(new Conflict({ message: "an account with this email exists" })))
        )
        yield* audit(null, result.org.id, "user.registered", result.user.id, ip)
        return { user: result.user, organisation: result.org, role: result.role }
      })

      const login = Effect.fn("Accounts.login")(function*(
        input: { readonly email: string; readonly password: string; readonly organisationId?: string | undefined },
        ip: string
      ) {
        const email = emailKey(input.email)
        const key = { account: email, ip }
        yield* throttle.check(key).pipe(Effect.tapError((e) => e.firstRefusal ? auditThrottledUser(email, ip, e) : Effect.void))
        const found = yield* infra(store.findLogin(email))
        if (Option.isNone(found)) {
          yield* dummyVerify(input.password)
          yield* throttle.recordFailure(key)
          yield* audit(null, null, "login.failed", email, ip)
          return yield* wrongLogin
        }
        const { user, passwordHash } = found.value
        if (!(yield* verifyPassword(input.password, passwordHash))) {
          yield* throttle.recordFailure(key)
          const memberships = yield* infra(store.membershipsOf(user.id))
          yield* audit(null, memberships[0]?.org.id ?? null, "login.failed", user.id, ip)
          return yield* wrongLogin
        }
        yield* throttle.recordSuccess(key)
        const memberships = yield* infra(store.membershipsOf(user.id))
        const chosen = input.organisationId === undefined
          ? memberships[0]
          : memberships.find((m) => m.org.id === input.organisationId)
        if (chosen === undefined) {
          return yield* new Forbidden({ message: "you are not a member of this organisation" })
        }
        const pair = yield* issueForUser(user, chosen.org.id, chosen.role)
        yield* audit({ kind: "user", orgId: chosen.org.id, userId: user.id, role: chosen.role, superadmin: user.superadmin, appId: null, apiKeyId: null }, chosen.org.id, "login", user.id, ip)
        return pair
      })

      const orgOfApp = (appId: string) =>
        infra(store.findAppById(appId)).pipe(
          Effect.map((app) => Option.isSome(app) ? app.value.orgId : null),
          Effect.orElseSucceed(() => null)
        )

      const loginApp = Effect.fn("Accounts.loginApp")(function*(input: { readonly appId: string; readonly apiKey: string }, ip: string) {
        const throttleKey = { account: `app:${input.appId}`, ip }
        yield* throttle.check(throttleKey).pipe(
          Effect.tapError((e) =>
            e.firstRefusal
              ? Effect.flatMap(orgOfApp(input.appId), (orgId) => audit(null, orgId, "app.login.throttled", input.appId, ip, throttledDetail(e)))
              : Effect.void
          )
        )
        const parsed = parseApiKey(input.apiKey)
        const found = parsed === undefined ? Option.none() : yield* infra(store.findApiKey(parsed.id))
        const valid = parsed !== undefined && Option.isSome(found) &&
          constantTimeEqual(sha256Hex(parsed.secret), found.value.hash) &&
          found.value.key.appId === input.appId && found.value.key.revokedAt === null &&
          found.value.appActive && !found.value.appDeleted
        if (!valid || parsed === undefined || Option.isNone(found)) {
          yield* throttle.recordFailure(throttleKey)
          // The attempt is on the app it names: its owner's log, never that of whoever's key was presented.
          yield* audit(null, yield* orgOfApp(input.appId), "app.login.failed", input.appId, ip)
          return yield* new Unauthenticated({ message: "wrong app id or API key, or the key was revoked" })
        }
        yield* throttle.recordSuccess(throttleKey)
        yield* infra(store.touchApiKey(parsed.id, Date.now())).pipe(Effect.ignore)
        const issued = yield* tokens.issueAppToken({ appId: input.appId, orgId: found.value.orgId, apiKeyId: parsed.id })
        const pair: TokenPair = {
          accessToken: issued.token,
          tokenType: "Bearer",
          expiresIn: Math.max(0, Math.round((issued.expiresAt - Date.now()) / 1000))
        }
        return pair
      })

      const findRefresh = (refreshToken: string) =>
        Effect.gen(function*() {
          const parsed = parseRefreshToken(refreshToken)
          const invalid = new Unauthenticated({ message: "invalid refresh token" })
          if (parsed === undefined) return yield* invalid
          const found = yield* infra(store.findRefreshToken(parsed.id))
          if (Option.isNone(found) || !constantTimeEqual(sha256Hex(parsed.secret), found.value.hash)) return yield* invalid
          return found.value
        })

      const refresh = Effect.fn("Accounts.refresh")(function*(refreshToken: string, ip: string) {
        const token = yield* findRefresh(refreshToken)
        if (token.revokedAt !== null) {
          // A revoked token used again: it was stolen or replayed. End every session of the user.
          yield* infra(store.revokeRefreshTokensOfUser(token.userId))
          yield* audit(null, token.orgId, "refresh.reused", token.userId, ip)
          return yield* new Unauthenticated({ message: "refresh token already used or revoked" })
        }
        if (token.expiresAt < Date.now()) return yield* new Unauthenticated({ message: "refresh token expired" })
        const member = yield* infra(store.getMember(token.orgId, token.userId))
        const user = yield* infra(store.getUser(token.userId)).pipe(
          Effect.catchTag("NotFound", () => Effect.fail(new Unauthenticated({ message: "the account no longer exists" })))
        )
        if (Option.isNone(member)) return yield* new Unauthenticated({ message: "no longer a member of this organisation" })
        const pair = yield* issueForUser(user, token.orgId, member.value.role)
        const next = pair.refreshToken === undefined ? undefined : parseRefreshToken(pair.refreshToken)?.id
        yield* infra(store.revokeRefreshToken(token.id, next))
        return pair
      })

      const logout = Effect.fn("Accounts.logout")(function*(refreshToken: string, ip: string) {
        const token = yield* findRefresh(refreshToken)
        if (token.revokedAt === null) {
          yield* infra(store.revokeRefreshToken(token.id))
          yield* audit(null, token.orgId, "logout", token.userId, ip)
        }
      })

      const createApp = Effect.fn("Accounts.createApp")(function*(p: Principal, input: AppInput, ip: string) {
        yield* requireUser(p, "admin")
        if (input.name.trim() === "") return yield* new InvalidField({ field: "name", message: "must not be empty" })
        yield* checkAllowList(input.allowList)
        const app = yield* infra(store.createApp(p.orgId, {
          name: input.name.trim(),
          allowList: input.allowList ?? [],
          limits: input.limits ?? {},
          messageClass: input.messageClass ?? "transactional",
          active: input.active ?? true
        }))
        yield* audit(p, p.orgId, "app.created", app.id, ip)
        return app
      })

      // An app token is for sending and reading its own messages: the account endpoints need a user.
      const getApp = (p: Principal, appId: string) =>
        requireUser(p, "viewer").pipe(
          Effect.andThen(infra(store.getApp(p.orgId, appId))),
          Effect.catchTag("NotFound", notFound("app", appId))
        )

      const updateApp = Effect.fn("Accounts.updateApp")(function*(p: Principal, appId: string, patch: Partial<AppInput>, ip: string) {
        yield* requireUser(p, "admin")
        if (patch.name !== undefined && patch.name.trim() === "") {
          return yield* new InvalidField({ field: "name", message: "must not be empty" })
        }
        yield* checkAllowList(patch.allowList)
        const app = yield* infra(store.updateApp(p.orgId, appId, patch)).pipe(Effect.catchTag("NotFound", notFound("app", appId)))
        access.invalidateApp(appId)
        yield* audit(p, p.orgId, "app.updated", appId, ip, Object.keys(patch).join(","))
        return app
      })

      const deleteApp = Effect.fn("Accounts.deleteApp")(function*(p: Principal, appId: string, ip: string) {
        yield* requireUser(p, "admin")
        yield* infra(store.deleteApp(p.orgId, appId)).pipe(Effect.catchTag("NotFound", notFound("app", appId)))
        access.invalidateApp(appId)
        yield* audit(p, p.orgId, "app.deleted", appId, ip)
      })

      const createKey = Effect.fn("Accounts.createKey")(function*(p: Principal, appId: string, ip: string) {
        yield* requireUser(p, "admin")
        const made = makeApiKey()
        const key = yield* infra(store.addApiKey(p.orgId, appId, { id: made.id, prefix: made.prefix, hash: made.hash })).pipe(
          Effect.catchTag("NotFound", notFound("app", appId))
        )
        yield* audit(p, p.orgId, "api_key.created", `${appId}/${key.id}`, ip)
        const created: NewApiKey = { id: key.id, key: made.key, prefix: key.prefix, createdAt: key.createdAt }
        return created
      })

      const listKeys = Effect.fn("Accounts.listKeys")(function*(p: Principal, appId: string) {
        yield* requireUser(p, "admin")
        return yield* infra(store.listApiKeys(p.orgId, appId)).pipe(Effect.catchTag("NotFound", notFound("app", appId)))
      })

      const revokeKey = Effect.fn("Accounts.revokeKey")(function*(p: Principal, appId: string, keyId: string, ip: string) {
        yield* requireUser(p, "admin")
        const key = yield* infra(store.revokeApiKey(p.orgId, appId, keyId)).pipe(Effect.catchTag("NotFound", notFound("api key", keyId)))
        access.invalidateKey(keyId)
        yield* audit(p, p.orgId, "api_key.revoked", `${appId}/${keyId}`, ip)
        return key
      })

      const memberOf = (p: Principal, userId: string) =>
        infra(store.getMember(p.orgId, userId)).pipe(
          Effect.flatMap((m) => Option.isSome(m) ? Effect.succeed(m.value) : Effect.fail(new NotFoundInOrg({ what: "member", id: userId })))
        )

      /** Only an owner may make, unmake or remove an owner. */
      const ownerGuard = (p: Principal, touchesOwner: boolean) =>
        touchesOwner && p.role !== "owner"
          ? Effect.fail(new Forbidden({ message: "only an owner may grant, change or remove the owner role" }))
          : Effect.void

      const lastOwner = () => Effect.fail(new Conflict({ message: "an organisation keeps at least one owner" }))

      const inviteMember = Effect.fn("Accounts.inviteMember")(function*(p: Principal, input: { readonly email: string; readonly role: Role }, ip: string) {
        yield* requireUser(p, "admin")
        yield* ownerGuard(p, input.role === "owner")
        const email = yield* validEmail(input.email)
        const member = yield* infra(store.inviteMember(p.orgId, { email, role: input.role })).pipe(
          Effect.catchTag("AlreadyMember", () => Effect.fail(new Conflict({ message: "already a member of this organisation" })))
        )
        yield* audit(p, p.orgId, "member.invited", member.userId, ip, `role=${input.role}`)
        return member
      })

      const updateMember = Effect.fn("Accounts.updateMember")(function*(p: Principal, userId: string, role: Role, ip: string) {
        yield* requireUser(p, "admin")
        const current = yield* memberOf(p, userId)
        yield* ownerGuard(p, current.role === "owner" || role === "owner")
        const member = yield* infra(store.updateMemberRole(p.orgId, userId, role)).pipe(
          Effect.catchTag("NotFound", notFound("member", userId)),
          Effect.catchTag("LastOwner", lastOwner)
        )
        yield* audit(p, p.orgId, "member.role_changed", userId, ip, `${current.role}->${role}`)
        return member
      })

      const removeMember = Effect.fn("Accounts.removeMember")(function*(p: Principal, userId: string, ip: string) {
        yield* requireUser(p, "admin")
        const current = yield* memberOf(p, userId)
        yield* ownerGuard(p, current.role === "owner")
        yield* infra(store.removeMember(p.orgId, userId)).pipe(
          Effect.catchTag("NotFound", notFound("member", userId)),
          Effect.catchTag("LastOwner", lastOwner)
        )
        yield* audit(p, p.orgId, "member.removed", userId, ip)
      })

      return Accounts.of({
        register,
        login,
        loginApp,
        refresh,
        logout,
        createApp,
        listApps: (p) => requireUser(p, "viewer").pipe(Effect.andThen(infra(store.listApps(p.orgId)))),
        getApp,
        updateApp,
        deleteApp,
        createKey,
        listKeys,
        revokeKey,
        listMembers: (p) => requireUser(p, "viewer").pipe(Effect.andThen(infra(store.listMembers(p.orgId)))),
        inviteMember,
        updateMember,
        removeMember,
        listAudit: (p, options) =>
          requireUser(p, "admin").pipe(Effect.andThen(infra(store.listAudit(p.orgId, options))))
      })
    })
  )
}
