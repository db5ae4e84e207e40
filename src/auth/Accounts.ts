/**
 * The account use cases behind the REST API: registration, sign-in, apps, keys, members, invitations, audit.
 */
import type { MessageClass } from "../domain/Policy.ts"
import { Context, Effect, Layer, Option, Result } from "effect"
import type { ApiKey, App, AppLimits, AuditEntry, Invitation, Member, Organisation, Role, User } from "../domain/Account.ts"
import { atLeast } from "../domain/Account.ts"
import { InvalidField, StoreUnavailable } from "../domain/Errors.ts"
import type { Principal } from "./Access.ts"
import { Access } from "./Access.ts"
import { AccountStore, StoreFailure } from "./AccountStore.ts"
import type { AuditQuery, UpdatedApp } from "./AccountStore.ts"
import type { CallbackEvents } from "../domain/Callback.ts"
import { Conflict, Forbidden, MailUnavailable, NotFoundInOrg, Unauthenticated } from "./Errors.ts"
import { parseAllowList } from "./IpAllowList.ts"
import type { Mail } from "./Mailer.ts"
import { Mailer } from "./Mailer.ts"
import type { LoginThrottled } from "./LoginThrottle.ts"
import { LoginThrottle } from "./LoginThrottle.ts"
import { emailKey, normaliseEmail, normaliseName } from "./Identity.ts"
import { dummyVerify, hashPassword, passwordProblem, verifyPassword } from "./Passwords.ts"
import { newSmppPassword, systemIdProblem } from "./SmppCredentials.ts"
import {
  constantTimeEqual,
  makeApiKey,
  makeMailedToken,
  makeRefreshToken,
  parseApiKey,
  parseMailedToken,
  parseRefreshToken,
  sha256Hex
} from "./Secrets.ts"
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

/** What an app's update may change: its fields, and its status callback (`callbackUrl: null` removes it). */
export type AppUpdate = Partial<AppInput> & {
  readonly callbackUrl?: string | null | undefined
  readonly callbackEvents?: CallbackEvents | undefined
}

export interface NewApiKey {
  readonly id: string
  readonly key: string
  readonly prefix: string
  readonly createdAt: number
}

export type AccountError = InvalidField | Unauthenticated | Forbidden | NotFoundInOrg | Conflict | StoreUnavailable | MailUnavailable

export interface RegistrationInput {
  readonly email: string
  readonly password: string
  readonly name: string
  readonly organisation?: string | undefined
  /** From an invitation mail: joins its organisation with its role instead of creating one. */
  readonly invitationToken?: string | undefined
}

export interface Registered {
  readonly _tag: "Registered"
  readonly user: User
  readonly organisation: Organisation
  readonly role: Role
}

/** Registered at once, or (auth.requireVerifiedEmail) waiting for the link mailed to the address. */
export type Registration = Registered | { readonly _tag: "Pending"; readonly email: string; readonly expiresAt: number }

export interface Me {
  readonly user: User
  readonly organisation: Organisation
  readonly role: Role
  readonly memberships: ReadonlyArray<{ readonly org: Organisation; readonly role: Role }>
}

export interface AccountsOptions {
  /** Registrations without an invitation wait for the proof of their mailbox (a mailed token). */
  readonly requireVerifiedEmail: boolean
  readonly invitationTtlMs: number
  readonly confirmationTtlMs: number
  /** Where the links in mails point (the web application or the API). */
  readonly publicUrl: string
}

/** The most distinct actions the audit log's action filter offers (the log has a few dozen kinds). */
export const maxAuditActions = 500

/** How long a refresh token (a session) lives unused. */
export const refreshTtlMs = 30 * 24 * 3600 * 1000

/** SMPP credentials as made: the app, and the password in clear this once. */
export interface SmppCredentialsIssued {
  readonly app: App
  readonly systemId: string
  readonly password: string
}

/** The account use cases: each checks the caller's role and organisation, writes the audit log, and never leaks secrets. */
export class Accounts extends Context.Service<Accounts, {
  readonly register: (input: RegistrationInput, ip: string) => Effect.Effect<Registration, AccountError | LoginThrottled>
  /** Spends a mailed registration token: the account and its organisation exist from now on. */
  readonly confirmRegistration: (token: string, ip: string) => Effect.Effect<Registered, AccountError>
  readonly login: (
    input: { readonly email: string; readonly password: string; readonly organisationId?: string | undefined },
    ip: string
  ) => Effect.Effect<TokenPair, AccountError | LoginThrottled>
  readonly loginApp: (input: { readonly appId: string; readonly apiKey: string }, ip: string) => Effect.Effect<TokenPair, AccountError | LoginThrottled>
  /** A new pair for the token's organisation, or for `organisationId` when the user is a member of it (switching). */
  readonly refresh: (refreshToken: string, ip: string, organisationId?: string) => Effect.Effect<TokenPair, AccountError>
  readonly logout: (refreshToken: string, ip: string) => Effect.Effect<void, AccountError>
  /** Every refresh token of the signed-in user revoked: each session ends when its access token expires. */
  readonly logoutEverywhere: (p: Principal, ip: string) => Effect.Effect<void, AccountError>
  /** The signed-in user, the organisation and role of the token, and every organisation the user belongs to. */
  readonly me: (p: Principal) => Effect.Effect<Me, AccountError>
  readonly createApp: (p: Principal, input: AppInput, ip: string) => Effect.Effect<App, AccountError>
  readonly listApps: (p: Principal) => Effect.Effect<ReadonlyArray<App>, AccountError>
  readonly getApp: (p: Principal, appId: string) => Effect.Effect<App, AccountError>
  readonly updateApp: (p: Principal, appId: string, patch: AppUpdate, ip: string) => Effect.Effect<UpdatedApp, AccountError>
  /** A new callback signing secret (shown once); the previous one still signs for a day. */
  readonly rotateCallbackSecret: (
    p: Principal,
    appId: string,
    ip: string
  ) => Effect.Effect<{ readonly app: App; readonly secret: string; readonly previousUntil: number | undefined }, AccountError>
  readonly deleteApp: (p: Principal, appId: string, ip: string) => Effect.Effect<void, AccountError>
  /** SMPP credentials for the app (docs/smpp-server.md): this systemId and a new password, shown once in the answer. */
  readonly setSmpp: (p: Principal, appId: string, systemId: string, ip: string) => Effect.Effect<SmppCredentialsIssued, AccountError>
  /** A new SMPP password (shown once); binds with the old one are refused from now on. */
  readonly rotateSmppPassword: (p: Principal, appId: string, ip: string) => Effect.Effect<SmppCredentialsIssued, AccountError>
  /** The app binds over SMPP no more (binds already up stay until they close). */
  readonly removeSmpp: (p: Principal, appId: string, ip: string) => Effect.Effect<void, AccountError>
  readonly createKey: (p: Principal, appId: string, ip: string) => Effect.Effect<NewApiKey, AccountError>
  readonly listKeys: (p: Principal, appId: string) => Effect.Effect<ReadonlyArray<ApiKey>, AccountError>
  readonly revokeKey: (p: Principal, appId: string, keyId: string, ip: string) => Effect.Effect<ApiKey, AccountError>
  readonly listMembers: (p: Principal) => Effect.Effect<ReadonlyArray<Member>, AccountError>
  /** Mails a single-use token; answers the same whether or not a user has the address. */
  readonly inviteMember: (p: Principal, input: { readonly email: string; readonly role: Role }, ip: string) => Effect.Effect<Invitation, AccountError | LoginThrottled>
  readonly listInvitations: (p: Principal) => Effect.Effect<ReadonlyArray<Invitation>, AccountError>
  readonly revokeInvitation: (p: Principal, id: string, ip: string) => Effect.Effect<void, AccountError>
  /** The signed-in user, whose email the invitation was sent to, becomes a member. */
  readonly acceptInvitation: (p: Principal, token: string, ip: string) => Effect.Effect<{ readonly organisation: Organisation; readonly role: Role }, AccountError>
  readonly updateMember: (p: Principal, userId: string, role: Role, ip: string) => Effect.Effect<Member, AccountError>
  readonly removeMember: (p: Principal, userId: string, ip: string) => Effect.Effect<void, AccountError>
  readonly listAudit: (p: Principal, query: AuditQuery) => Effect.Effect<ReadonlyArray<AuditEntry>, AccountError>
  /** The actions the organisation's audit log holds (owners, admins): the choices of its action filter. */
  readonly auditActions: (p: Principal) => Effect.Effect<ReadonlyArray<string>, AccountError>
}>()("smsgw/auth/Accounts") {
  static readonly layerWith = (options: AccountsOptions) => Layer.effect(
    Accounts,
    Effect.gen(function*() {
      const store = yield* AccountStore
      const mailer = yield* Mailer
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

      const sendMail = (mail: Mail) =>
        mailer.send(mail).pipe(
          Effect.tapError((e) => Effect.logError("mail failed").pipe(Effect.annotateLogs({ to: mail.to, error: e.message }))),
          Effect.mapError(() => new MailUnavailable({ message: "the mail could not be sent; retry later" }))
        )

      const link = (path: string, token: string) => `${options.publicUrl.replace(/\/+$/, "")}${path}#token=${token}`

      const badInvitation = new InvalidField({ field: "invitationToken", message: "is invalid, expired, revoked or already used" })

      /** The invitation a token names, if the token is its own and it can still be used. */
      const usableInvitation = (token: string) =>
        Effect.gen(function*() {
          const parsed = parseMailedToken("inv", token)
          if (parsed === undefined) return Option.none<Invitation>()
          const found = yield* infra(store.findInvitation(parsed.id))
          if (Option.isNone(found) || !constantTimeEqual(sha256Hex(parsed.secret), found.value.hash)) return Option.none<Invitation>()
          const i = found.value.invitation
          return i.acceptedAt === null && i.revokedAt === null && i.expiresAt > Date.now() ? Option.some(i) : Option.none<Invitation>()
        })

      const registered = (r: { readonly user: User; readonly org: Organisation; readonly role: Role }): Registered => ({
        _tag: "Registered",
        user: r.user,
        organisation: r.org,
        role: r.role
      })

      const register = Effect.fn("Accounts.register")(function*(input: RegistrationInput, ip: string) {
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
        if (input.invitationToken !== undefined) {
          // The invitation was mailed to this address: holding its token proves the mailbox.
          const invitation = yield* usableInvitation(input.invitationToken)
          if (Option.isNone(invitation) || invitation.value.email !== email) return yield* badInvitation
          const result = yield* infra(store.register({ email, name, passwordHash, orgName, invitationId: invitation.value.id })).pipe(
            Effect.catchTag("EmailTaken", () => Effect.fail(new Conflict({ message: "an account with this email exists: sign in and accept the invitation" }))),
            Effect.catchTag("InvitationUnusable", () => Effect.fail(badInvitation))
          )
          yield* audit(null, result.org.id, "member.joined", result.user.id, ip, `invitation=${invitation.value.id} role=${result.role}`)
          return registered(result)
        }
        if (options.requireVerifiedEmail) return yield* registerPending(email, name, orgName, passwordHash)
        const result = yield* infra(store.register({ email, name, passwordHash, orgName })).pipe(
          // Without mailbox confirmation the answer has to say so: the caller signs in next (docs/security.md).
          Effect.catchTag("EmailTaken", () => Effect.fail(new Conflict({ message: "an account with this email exists" }))),
          Effect.catchTag("InvitationUnusable", () => Effect.fail(badInvitation))
        )
        yield* audit(null, result.org.id, "user.registered", result.user.id, ip)
        return registered(result)
      })

      /** The same answer and the same work whether the address is taken or not; only the mailbox learns which. */
      const registerPending = (email: string, name: string, orgName: string, passwordHash: string) =>
        Effect.gen(function*() {
          const expiresAt = Date.now() + options.confirmationTtlMs
          const taken = Option.isSome(yield* infra(store.findLogin(email)))
          if (taken) {
            yield* sendMail({
              to: email,
              subject: "Someone tried to register with your address",
              text: "Someone (perhaps you) tried to create an SMS Gateway account with this address, which already has one.\n" +
                "If it was you, sign in instead. If not, nothing was changed and you can ignore this mail.\n"
            })
          } else {
            const token = makeMailedToken("reg")
            yield* infra(store.addPendingRegistration({ id: token.id, hash: token.hash, email, name, orgName, passwordHash, expiresAt }))
            yield* sendMail({
              to: email,
              subject: "Confirm your SMS Gateway account",
              text: `Confirm this address to create your account (the link works once, until ${new Date(expiresAt).toISOString()}):\n` +
                `${link("/confirm", token.token)}\n\n` +
                `Or send the token to POST /v1/auth/confirm: ${token.token}\n` +
                "If you did not register, ignore this mail: nothing is created without it.\n"
            })
          }
          const pending: Registration = { _tag: "Pending", email, expiresAt }
          return pending
        })

      const confirmRegistration = Effect.fn("Accounts.confirmRegistration")(function*(token: string, ip: string) {
        const invalid = new InvalidField({ field: "token", message: "is invalid, expired or already used" })
        const parsed = parseMailedToken("reg", token)
        if (parsed === undefined) return yield* invalid
        const result = yield* infra(store.confirmRegistration(parsed.id, (hash) => constantTimeEqual(sha256Hex(parsed.secret), hash))).pipe(
          Effect.catchTag("InvitationUnusable", () => Effect.fail(invalid)),
          // Only the mailbox's owner gets here: telling them is no leak.
          Effect.catchTag("EmailTaken", () => Effect.fail(new Conflict({ message: "this address already has an account: sign in" })))
        )
        yield* audit(null, result.org.id, "user.registered", result.user.id, ip, "mailbox confirmed")
        return registered(result)
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

      const refresh = Effect.fn("Accounts.refresh")(function*(refreshToken: string, ip: string, organisationId?: string) {
        const token = yield* findRefresh(refreshToken)
        if (token.revokedAt !== null) {
          // A revoked token used again: it was stolen or replayed. End every session of the user.
          yield* infra(store.revokeRefreshTokensOfUser(token.userId))
          yield* audit(null, token.orgId, "refresh.reused", token.userId, ip)
          return yield* new Unauthenticated({ message: "refresh token already used or revoked" })
        }
        if (token.expiresAt < Date.now()) return yield* new Unauthenticated({ message: "refresh token expired" })
        const orgId = organisationId ?? token.orgId
        const member = yield* infra(store.getMember(orgId, token.userId))
        const user = yield* infra(store.getUser(token.userId)).pipe(
          Effect.catchTag("NotFound", () => Effect.fail(new Unauthenticated({ message: "the account no longer exists" })))
        )
        if (Option.isNone(member)) {
          // Switching to an organisation the user is not in is refused without spending the token.
          return yield* orgId === token.orgId
            ? new Unauthenticated({ message: "no longer a member of this organisation" })
            : new NotFoundInOrg({ what: "organisation", id: orgId })
        }
        const pair = yield* issueForUser(user, orgId, member.value.role)
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

      const logoutEverywhere = Effect.fn("Accounts.logoutEverywhere")(function*(p: Principal, ip: string) {
        const userId = yield* requireUser(p, "viewer")
        yield* infra(store.revokeRefreshTokensOfUser(userId))
        yield* audit(p, p.orgId, "logout.everywhere", userId, ip)
      })

      const me = Effect.fn("Accounts.me")(function*(p: Principal) {
        const userId = yield* requireUser(p, "viewer")
        const gone = () => Effect.fail(new Unauthenticated({ message: "the account no longer exists" }))
        const user = yield* infra(store.getUser(userId)).pipe(Effect.catchTag("NotFound", gone))
        const memberships = yield* infra(store.membershipsOf(userId))
        const current = memberships.find((m) => m.org.id === p.orgId)
        if (current === undefined) return yield* new Unauthenticated({ message: "no longer a member of this organisation" })
        const result: Me = { user, organisation: current.org, role: current.role, memberships }
        return result
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

      const updateApp = Effect.fn("Accounts.updateApp")(function*(p: Principal, appId: string, patch: AppUpdate, ip: string) {
        yield* requireUser(p, "admin")
        if (patch.name !== undefined && patch.name.trim() === "") {
          return yield* new InvalidField({ field: "name", message: "must not be empty" })
        }
        yield* checkAllowList(patch.allowList)
        const updated = yield* infra(store.updateApp(p.orgId, appId, patch)).pipe(Effect.catchTag("NotFound", notFound("app", appId)))
        access.invalidateApp(appId)
        yield* audit(p, p.orgId, "app.updated", appId, ip, Object.keys(patch).join(","))
        return updated
      })

      const rotateCallbackSecret = Effect.fn("Accounts.rotateCallbackSecret")(function*(p: Principal, appId: string, ip: string) {
        yield* requireUser(p, "admin")
        const rotated = yield* infra(store.rotateCallbackSecret(p.orgId, appId)).pipe(Effect.catchTag("NotFound", notFound("app", appId)))
        yield* audit(p, p.orgId, "app.callback_secret_rotated", appId, ip)
        return rotated
      })

      const deleteApp = Effect.fn("Accounts.deleteApp")(function*(p: Principal, appId: string, ip: string) {
        yield* requireUser(p, "admin")
        yield* infra(store.deleteApp(p.orgId, appId)).pipe(Effect.catchTag("NotFound", notFound("app", appId)))
        access.invalidateApp(appId)
        yield* audit(p, p.orgId, "app.deleted", appId, ip)
      })

      const setSmpp = Effect.fn("Accounts.setSmpp")(function*(p: Principal, appId: string, systemId: string, ip: string) {
        yield* requireUser(p, "admin")
        const problem = systemIdProblem(systemId)
        if (problem !== undefined) return yield* new InvalidField({ field: "systemId", message: problem })
        const password = newSmppPassword()
        const passwordHash = yield* hashPassword(password)
        const app = yield* infra(store.setSmppCredentials(p.orgId, appId, { systemId, passwordHash })).pipe(
          Effect.catchTag("NotFound", notFound("app", appId)),
          Effect.catchTag("SystemIdTaken", () => Effect.fail(new Conflict({ message: `systemId ${systemId} is taken: choose another` })))
        )
        yield* audit(p, p.orgId, "app.smpp_set", appId, ip, `systemId=${systemId}`)
        const issued: SmppCredentialsIssued = { app, systemId, password }
        return issued
      })

      const rotateSmppPassword = Effect.fn("Accounts.rotateSmppPassword")(function*(p: Principal, appId: string, ip: string) {
        yield* requireUser(p, "admin")
        const password = newSmppPassword()
        const passwordHash = yield* hashPassword(password)
        const app = yield* infra(store.setSmppPassword(p.orgId, appId, passwordHash)).pipe(
          Effect.catchTag("NotFound", (e) =>
            e.entity === "smpp"
              ? Effect.fail(new NotFoundInOrg({ what: "SMPP credentials of app", id: appId }))
              : Effect.fail(new NotFoundInOrg({ what: "app", id: appId })))
        )
        yield* audit(p, p.orgId, "app.smpp_password_rotated", appId, ip)
        const issued: SmppCredentialsIssued = { app, systemId: app.smppSystemId ?? "", password }
        return issued
      })

      const removeSmpp = Effect.fn("Accounts.removeSmpp")(function*(p: Principal, appId: string, ip: string) {
        yield* requireUser(p, "admin")
        yield* infra(store.removeSmppCredentials(p.orgId, appId)).pipe(
          Effect.catchTag("NotFound", (e) =>
            e.entity === "smpp"
              ? Effect.fail(new NotFoundInOrg({ what: "SMPP credentials of app", id: appId }))
              : Effect.fail(new NotFoundInOrg({ what: "app", id: appId })))
        )
        yield* audit(p, p.orgId, "app.smpp_removed", appId, ip)
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
        const inviter = yield* requireUser(p, "admin")
        yield* ownerGuard(p, input.role === "owner")
        const email = yield* validEmail(input.email)
        yield* throttle.invitation(p.orgId)
        const org = yield* infra(store.getOrganisation(p.orgId)).pipe(Effect.catchTag("NotFound", notFound("organisation", p.orgId)))
        const token = makeMailedToken("inv")
        const invitation = yield* infra(store.createInvitation(p.orgId, {
          id: token.id,
          hash: token.hash,
          email,
          role: input.role,
          invitedBy: inviter,
          expiresAt: Date.now() + options.invitationTtlMs
        })).pipe(
          Effect.catchTag("AlreadyMember", () => Effect.fail(new Conflict({ message: "already a member of this organisation" })))
        )
        yield* sendMail({
          to: email,
          subject: `Invitation to ${org.name} on SMS Gateway`,
          text: `You are invited to join ${org.name} as ${input.role}. The invitation works once, until ` +
            `${new Date(invitation.expiresAt).toISOString()}:\n${link("/invitations/accept", token.token)}\n\n` +
            `Your token: ${token.token}\n` +
            "New here? Register with this address and the token (POST /v1/auth/register, invitationToken).\n" +
            "Already have an account? Sign in and accept it (POST /v1/invitations/accept, token).\n"
        }).pipe(
          // A token nobody received must not stay usable.
          Effect.tapError(() => infra(store.revokeInvitation(p.orgId, invitation.id)).pipe(Effect.ignore))
        )
        yield* audit(p, p.orgId, "member.invited", invitation.id, ip, `role=${input.role}`)
        return invitation
      })

      const listInvitations = Effect.fn("Accounts.listInvitations")(function*(p: Principal) {
        yield* requireUser(p, "admin")
        return yield* infra(store.listInvitations(p.orgId))
      })

      const revokeInvitation = Effect.fn("Accounts.revokeInvitation")(function*(p: Principal, id: string, ip: string) {
        yield* requireUser(p, "admin")
        const current = yield* infra(store.getInvitation(p.orgId, id)).pipe(Effect.catchTag("NotFound", notFound("invitation", id)))
        yield* ownerGuard(p, current.role === "owner")
        yield* infra(store.revokeInvitation(p.orgId, id)).pipe(Effect.catchTag("NotFound", notFound("invitation", id)))
        yield* audit(p, p.orgId, "invitation.revoked", id, ip)
      })

      const acceptInvitation = Effect.fn("Accounts.acceptInvitation")(function*(p: Principal, token: string, ip: string) {
        const userId = yield* requireUser(p, "viewer")
        const user = yield* infra(store.getUser(userId)).pipe(
          Effect.catchTag("NotFound", () => Effect.fail(new Unauthenticated({ message: "the account no longer exists" })))
        )
        const invitation = yield* usableInvitation(token)
        const invalid = new InvalidField({ field: "token", message: "is invalid, expired, revoked or already used" })
        if (Option.isNone(invitation)) return yield* invalid
        if (invitation.value.email !== user.email) {
          return yield* new Forbidden({ message: "this invitation was sent to another address" })
        }
        const joined = yield* infra(store.acceptInvitation(invitation.value.id, userId)).pipe(
          Effect.catchTag("InvitationUnusable", () => Effect.fail(invalid)),
          Effect.catchTag("AlreadyMember", () => Effect.fail(new Conflict({ message: "already a member of this organisation" })))
        )
        yield* audit(p, joined.org.id, "member.joined", userId, ip, `invitation=${invitation.value.id} role=${joined.role}`)
        return { organisation: joined.org, role: joined.role }
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
        confirmRegistration,
        login,
        loginApp,
        refresh,
        logout,
        logoutEverywhere,
        me,
        createApp,
        listApps: (p) => requireUser(p, "viewer").pipe(Effect.andThen(infra(store.listApps(p.orgId)))),
        getApp,
        updateApp,
        rotateCallbackSecret,
        deleteApp,
        setSmpp,
        rotateSmppPassword,
        removeSmpp,
        createKey,
        listKeys,
        revokeKey,
        listMembers: (p) => requireUser(p, "viewer").pipe(Effect.andThen(infra(store.listMembers(p.orgId)))),
        inviteMember,
        listInvitations,
        revokeInvitation,
        acceptInvitation,
        updateMember,
        removeMember,
        listAudit: (p, query) => requireUser(p, "admin").pipe(Effect.andThen(infra(store.listAudit(p.orgId, query)))),
        auditActions: (p) => requireUser(p, "admin").pipe(Effect.andThen(infra(store.auditActions(p.orgId, maxAuditActions))))
      })
    })
  )
}
