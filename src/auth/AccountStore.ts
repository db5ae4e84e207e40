/**
 * Accounts in SQL (SQLite or PostgreSQL): every query carries the caller's organisation.
 */
import type { MessageClass } from "../domain/Policy.ts"
import { Clock, Context, Effect, Layer, Option, Schema } from "effect"
import { messageWithCauses } from "../domain/Errors.ts"
import { SqlClient } from "effect/sql"
import type { SqlError, Statement } from "effect/sql"
import { randomBytes } from "node:crypto"
import { AppLimits, Role } from "../domain/Account.ts"
import type { ApiKey, App, AuditEntry, Invitation, Member, Organisation, User } from "../domain/Account.ts"
import { emailKey } from "./Identity.ts"
import { newCallbackSecret } from "../domain/Callback.ts"
import { systemIdKey } from "./SmppCredentials.ts"
import type { CallbackEvents } from "../domain/Callback.ts"

export class EmailTaken extends Schema.TaggedError<EmailTaken>()("EmailTaken", {
  email: Schema.String
}) {}

export class NotFound extends Schema.TaggedError<NotFound>()("NotFound", {
  entity: Schema.Literals(["user", "organisation", "member", "app", "api_key", "refresh_token", "invitation", "smpp"]),
  id: Schema.String
}) {}

export class AlreadyMember extends Schema.TaggedError<AlreadyMember>()("AlreadyMember", {
  orgId: Schema.String,
  email: Schema.String
}) {}

/** An organisation keeps at least one owner: the last one can be neither removed nor demoted. */
export class LastOwner extends Schema.TaggedError<LastOwner>()("LastOwner", {
  orgId: Schema.String,
  userId: Schema.String
}) {}

/** The invitation is unknown, expired, revoked or already used: all look the same to whoever holds a token. */
export class InvitationUnusable extends Schema.TaggedError<InvitationUnusable>()("InvitationUnusable", {
  id: Schema.String
}) {}

/** Another app (of any organisation) has this SMPP systemId: binds name no organisation, so it is unique everywhere. */
export class SystemIdTaken extends Schema.TaggedError<SystemIdTaken>()("SystemIdTaken", {
  systemId: Schema.String
}) {}

export class StoreFailure extends Schema.TaggedError<StoreFailure>()("StoreFailure", {
  message: Schema.String,
  /** The SqlError behind it, when there is one: what the database said, for the logs. */
  cause: Schema.optionalKey(Schema.Defect())
}) {}

export interface NewApp {
  readonly name: string
  readonly allowList: ReadonlyArray<string>
  readonly limits: AppLimits
  readonly messageClass: MessageClass
  readonly active: boolean
}

/** Absent (or undefined) fields keep their value; `callbackUrl: null` removes the callback. */
export type AppPatch = { readonly [K in keyof NewApp]?: NewApp[K] | undefined } & {
  readonly callbackUrl?: string | null | undefined
  readonly callbackEvents?: CallbackEvents | undefined
}

/** An updated app, with its callback signing secret when this update made it (shown once). */
export interface UpdatedApp {
  readonly app: App
  readonly callbackSecret?: string
}

/** How long the previous callback secret still signs after a rotation. */
export const callbackSecretOverlapMs = 24 * 3_600_000

export interface RefreshTokenRecord {
  readonly id: string
  readonly userId: string
  readonly orgId: string
  readonly hash: string
  readonly expiresAt: number
  readonly revokedAt: number | null
}

export interface ApiKeyLookup {
  readonly key: ApiKey
  readonly orgId: string
  readonly hash: string
  readonly appActive: boolean
  readonly appDeleted: boolean
}

/** A page of an organisation's audit log: every filter given must match (exact values). */
export interface AuditQuery {
  readonly limit: number
  /**
   * Where the previous page ended: its last entry's time (epoch ms) and id; entries of that same millisecond with a
   * smaller id come next, so none is skipped or repeated. Without `id`: entries strictly before `at`.
   */
  readonly before?: { readonly at: number; readonly id?: string | undefined } | undefined
  readonly action?: string | undefined
  readonly actorUserId?: string | undefined
  readonly actorAppId?: string | undefined
  readonly target?: string | undefined
  /** Epoch ms, inclusive. */
  readonly since?: number | undefined
  /** Epoch ms, inclusive. */
  readonly until?: number | undefined
}

export interface SigningKey {
  readonly kid: string
  readonly secret: string
}

/** A registration waiting for the proof of its mailbox: its password hash and organisation name kept until then. */
export interface PendingRegistration {
  readonly id: string
  readonly hash: string
  readonly email: string
  readonly name: string
  readonly orgName: string
  readonly passwordHash: string
  readonly expiresAt: number
}

export class AccountStore extends Context.Service<AccountStore, {
  /**
   * A new user owning a new organisation; with `invitationId`, the user joins that invitation's organisation with
   * its role instead (the invitation is spent in the same transaction). Never joins anything else.
   */
  readonly register: (input: {
    readonly email: string
    readonly name: string
    readonly passwordHash: string
    readonly orgName: string
    readonly invitationId?: string | undefined
  }) => Effect.Effect<
    { readonly user: User; readonly org: Organisation; readonly role: Role },
    EmailTaken | InvitationUnusable | StoreFailure
  >
  /** Registered users only: an invited user has no password to check. */
  readonly findLogin: (
    email: string
  ) => Effect.Effect<Option.Option<{ readonly user: User; readonly passwordHash: string }>, StoreFailure>
  readonly getUser: (id: string) => Effect.Effect<User, NotFound | StoreFailure>
  readonly getOrganisation: (id: string) => Effect.Effect<Organisation, NotFound | StoreFailure>
  /** Oldest membership first. */
  readonly membershipsOf: (
    userId: string
  ) => Effect.Effect<ReadonlyArray<{ readonly org: Organisation; readonly role: Role }>, StoreFailure>
  readonly getMember: (orgId: string, userId: string) => Effect.Effect<Option.Option<Member>, StoreFailure>
  /** Idempotent bootstrap of an operator; an existing user is promoted and keeps its password. */
  readonly ensureSuperadmin: (input: {
    readonly email: string
    readonly name: string
    readonly passwordHash: string
  }) => Effect.Effect<User, StoreFailure>

  readonly listMembers: (orgId: string) => Effect.Effect<ReadonlyArray<Member>, StoreFailure>
  /** A pending invitation; AlreadyMember when a member of this organisation has the email. */
  readonly createInvitation: (
    orgId: string,
    input: { readonly email: string; readonly role: Role; readonly hash: string; readonly id: string; readonly invitedBy: string; readonly expiresAt: number }
  ) => Effect.Effect<Invitation, AlreadyMember | StoreFailure>
  /** Pending (not accepted, revoked or expired) invitations of an organisation, oldest first. */
  readonly listInvitations: (orgId: string) => Effect.Effect<ReadonlyArray<Invitation>, StoreFailure>
  readonly getInvitation: (orgId: string, id: string) => Effect.Effect<Invitation, NotFound | StoreFailure>
  readonly revokeInvitation: (orgId: string, id: string) => Effect.Effect<Invitation, NotFound | StoreFailure>
  /** For a token holder: the invitation and its secret's hash, whatever its organisation. */
  readonly findInvitation: (id: string) => Effect.Effect<Option.Option<{ readonly invitation: Invitation; readonly hash: string }>, StoreFailure>
  /** Spends the invitation and makes the user a member with its role (AlreadyMember if it was one). */
  readonly acceptInvitation: (
    id: string,
    userId: string
  ) => Effect.Effect<{ readonly org: Organisation; readonly role: Role }, InvitationUnusable | AlreadyMember | StoreFailure>

  /** A registration waiting for the proof of its mailbox: nothing exists until it is confirmed. */
  readonly addPendingRegistration: (input: PendingRegistration) => Effect.Effect<void, StoreFailure>
  /** Spends a pending registration whose secret hashes to `hash` and registers it (a new organisation). */
  readonly confirmRegistration: (
    id: string,
    matches: (hash: string) => boolean
  ) => Effect.Effect<
    { readonly user: User; readonly org: Organisation; readonly role: Role },
    EmailTaken | InvitationUnusable | StoreFailure
  >
  readonly updateMemberRole: (
    orgId: string,
    userId: string,
    role: Role
  ) => Effect.Effect<Member, NotFound | LastOwner | StoreFailure>
  /** Also revokes the member's refresh tokens of this organisation. */
  readonly removeMember: (orgId: string, userId: string) => Effect.Effect<void, NotFound | LastOwner | StoreFailure>

  readonly createApp: (orgId: string, input: NewApp) => Effect.Effect<App, StoreFailure>
  readonly listApps: (orgId: string) => Effect.Effect<ReadonlyArray<App>, StoreFailure>
  readonly getApp: (orgId: string, appId: string) => Effect.Effect<App, NotFound | StoreFailure>
  /** For the authentication path, which compares the organisation itself; deleted apps are none. */
  readonly findAppById: (appId: string) => Effect.Effect<Option.Option<App>, StoreFailure>
  readonly updateApp: (
    orgId: string,
    appId: string,
    patch: AppPatch
  ) => Effect.Effect<UpdatedApp, NotFound | StoreFailure>
  /** A new callback signing secret; the previous one signs beside it for callbackSecretOverlapMs. */
  readonly rotateCallbackSecret: (
    orgId: string,
    appId: string
  ) => Effect.Effect<{ readonly app: App; readonly secret: string; readonly previousUntil: number | undefined }, NotFound | StoreFailure>
  /** Gives the app SMPP credentials (replacing any): this systemId and a password's hash. */
  readonly setSmppCredentials: (
    orgId: string,
    appId: string,
    credentials: { readonly systemId: string; readonly passwordHash: string }
  ) => Effect.Effect<App, NotFound | SystemIdTaken | StoreFailure>
  /** A new password hash for the app's SMPP credentials; NotFound (entity "smpp") when it has none. */
  readonly setSmppPassword: (orgId: string, appId: string, passwordHash: string) => Effect.Effect<App, NotFound | StoreFailure>
  /** The app binds over SMPP no more; NotFound (entity "smpp") when it had no credentials. */
  readonly removeSmppCredentials: (orgId: string, appId: string) => Effect.Effect<App, NotFound | StoreFailure>
  /** For a bind: the app with this systemId (any case) and its password's hash; deleted apps have none. */
  readonly findSmppLogin: (
    systemId: string
  ) => Effect.Effect<Option.Option<{ readonly app: App; readonly passwordHash: string }>, StoreFailure>
  /** Soft delete: the app is NotFound from then on and its keys are revoked. */
  readonly deleteApp: (orgId: string, appId: string) => Effect.Effect<void, NotFound | StoreFailure>

  readonly addApiKey: (
    orgId: string,
    appId: string,
    key: { readonly id: string; readonly prefix: string; readonly hash: string }
  ) => Effect.Effect<ApiKey, NotFound | StoreFailure>
  readonly listApiKeys: (orgId: string, appId: string) => Effect.Effect<ReadonlyArray<ApiKey>, NotFound | StoreFailure>
  /** Idempotent: revoking a revoked key keeps its first revocation time. */
  readonly revokeApiKey: (orgId: string, appId: string, keyId: string) => Effect.Effect<ApiKey, NotFound | StoreFailure>
  readonly findApiKey: (keyId: string) => Effect.Effect<Option.Option<ApiKeyLookup>, StoreFailure>
  readonly touchApiKey: (keyId: string, at: number) => Effect.Effect<void, StoreFailure>

  readonly addRefreshToken: (token: {
    readonly id: string
    readonly userId: string
    readonly orgId: string
    readonly hash: string
    readonly expiresAt: number
  }) => Effect.Effect<void, StoreFailure>
  readonly findRefreshToken: (id: string) => Effect.Effect<Option.Option<RefreshTokenRecord>, StoreFailure>
  /** True when this call revoked it; false when it was already revoked or is unknown (a reused token). */
  readonly revokeRefreshToken: (id: string, replacedBy?: string) => Effect.Effect<boolean, StoreFailure>
  readonly revokeRefreshTokensOfUser: (userId: string) => Effect.Effect<void, StoreFailure>

  readonly audit: (entry: Omit<AuditEntry, "id" | "at"> & { readonly at?: number }) => Effect.Effect<void, StoreFailure>
  /** Newest first (time, then id), the filters all applied, within the organisation only. */
  readonly listAudit: (orgId: string, query: AuditQuery) => Effect.Effect<ReadonlyArray<AuditEntry>, StoreFailure>
  /** The actions the organisation's log holds, sorted, at most `limit` (a filter's choices). */
  readonly auditActions: (orgId: string, limit: number) => Effect.Effect<ReadonlyArray<string>, StoreFailure>
  /**
   * When one user did one action in the organisation from `since` (epoch ms, inclusive): the newest `limit` times,
   * newest first. A quota of `limit` counts with it (fewer rows: under it) and learns when the oldest entry it counted
   * leaves its window. Walks an (org_id, …, at) index from `since` on, never the organisation's whole log.
   */
  readonly auditTimes: (query: {
    readonly orgId: string
    readonly actorUserId: string
    readonly action: string
    readonly since: number
    readonly limit: number
  }) => Effect.Effect<ReadonlyArray<number>, StoreFailure>

  /** The JWT signing key shared by every process on this database, created on first use. */
  readonly signingKey: Effect.Effect<SigningKey, StoreFailure>
}>()("smsgw/auth/AccountStore") {
  static readonly layer = Layer.effect(AccountStore, Effect.suspend(() => make))
}

type Int = number | string | bigint

interface UserRow {
  readonly id: string
  readonly email: string
  readonly name: string
  readonly password_hash: string | null
  readonly superadmin: Int | boolean
  readonly created_at: Int
}

interface OrgRow {
  readonly id: string
  readonly name: string
  readonly created_at: Int
}

interface MemberRow {
  readonly org_id: string
  readonly user_id: string
  readonly role: string
  readonly created_at: Int
  readonly email: string
  readonly name: string
  readonly password_hash: string | null
}

interface InvitationRow {
  readonly id: string
  readonly org_id: string
  readonly email: string
  readonly role: string
  readonly hash: string
  readonly invited_by: string | null
  readonly created_at: Int
  readonly expires_at: Int
  readonly accepted_at: Int | null
  readonly revoked_at: Int | null
}

interface PendingRow {
  readonly id: string
  readonly email: string
  readonly name: string
  readonly org_name: string
  readonly password_hash: string
  readonly hash: string
  readonly expires_at: Int
  readonly used_at: Int | null
}

interface AppRow {
  readonly id: string
  readonly org_id: string
  readonly name: string
  readonly allow_list: string
  readonly limits: string
  readonly message_class?: string | null
  readonly callback_url?: string | null
  readonly callback_events?: string | null
  readonly callback_secret?: string | null
  readonly smpp_system_id?: string | null
  readonly smpp_password_hash?: string | null
  readonly active: Int | boolean
  readonly created_at: Int
  readonly updated_at: Int
  readonly deleted_at: Int | null
}

interface ApiKeyRow {
  readonly id: string
  readonly app_id: string
  readonly org_id: string
  readonly prefix: string
  readonly hash: string
  readonly created_at: Int
  readonly revoked_at: Int | null
  readonly last_used_at: Int | null
}

interface RefreshTokenRow {
  readonly id: string
  readonly user_id: string
  readonly org_id: string
  readonly hash: string
  readonly expires_at: Int
  readonly revoked_at: Int | null
}

interface AuditRow {
  readonly id: string
  readonly org_id: string | null
  readonly actor_user_id: string | null
  readonly actor_app_id: string | null
  readonly action: string
  readonly target: string | null
  readonly ip: string | null
  readonly at: Int
  readonly detail: string | null
}

const newId = (prefix: string) => `${prefix}_${randomBytes(8).toString("hex")}`

const normaliseEmail = emailKey

const nullableNumber = (value: Int | null): number | null => value === null ? null : Number(value)

const flag = (value: Int | boolean): boolean => typeof value === "boolean" ? value : Number(value) === 1

const decodeRole = Schema.decodeUnknownEffect(Role)
const AllowListJson = Schema.fromJsonString(Schema.Array(Schema.String))
const LimitsJson = Schema.fromJsonString(AppLimits)
const decodeAllowList = Schema.decodeUnknownEffect(AllowListJson)
const decodeLimits = Schema.decodeUnknownEffect(LimitsJson)
const encodeAllowList = Schema.encodeSync(AllowListJson)
const encodeLimits = Schema.encodeSync(LimitsJson)

const toUser = (row: UserRow): User => ({
  id: row.id,
  email: row.email,
  name: row.name,
  superadmin: flag(row.superadmin),
  registered: row.password_hash !== null,
  createdAt: Number(row.created_at)
})

const toOrganisation = (row: OrgRow): Organisation => ({
  id: row.id,
  name: row.name,
  createdAt: Number(row.created_at)
})

const toApiKey = (row: ApiKeyRow): ApiKey => ({
  id: row.id,
  appId: row.app_id,
  prefix: row.prefix,
  createdAt: Number(row.created_at),
  revokedAt: nullableNumber(row.revoked_at),
  lastUsedAt: nullableNumber(row.last_used_at)
})

const toAuditEntry = (row: AuditRow): AuditEntry => ({
  id: row.id,
  orgId: row.org_id,
  actorUserId: row.actor_user_id,
  actorAppId: row.actor_app_id,
  action: row.action,
  target: row.target,
  ip: row.ip,
  at: Number(row.at),
  detail: row.detail
})

const storeFailure = (error: SqlError.SqlError) => new StoreFailure({ message: messageWithCauses(error), cause: error })

const corrupt = (what: string) => (error: { readonly message: string }) =>
  new StoreFailure({ message: `stored ${what} is invalid: ${error.message}` })

/** `kid` is `k` and the creation time, so a rotated key sorts after the one it replaces. */
const kidAt = (ms: number) => `k${new Date(ms).toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z")}`

export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  const toMember = (row: MemberRow) =>
    Effect.map(decodeRole(row.role).pipe(Effect.mapError(corrupt("role"))), (role): Member => ({
      orgId: row.org_id,
      userId: row.user_id,
      email: row.email,
      name: row.name,
      role,
      registered: row.password_hash !== null,
      createdAt: Number(row.created_at)
    }))

  const toInvitation = (row: InvitationRow) =>
    Effect.map(decodeRole(row.role).pipe(Effect.mapError(corrupt("role"))), (role): Invitation => ({
      id: row.id,
      orgId: row.org_id,
      email: row.email,
      role,
      invitedBy: row.invited_by,
      createdAt: Number(row.created_at),
      expiresAt: Number(row.expires_at),
      acceptedAt: nullableNumber(row.accepted_at),
      revokedAt: nullableNumber(row.revoked_at)
    }))

  const toApp = (row: AppRow) =>
    Effect.gen(function*() {
      const allowList = yield* decodeAllowList(row.allow_list).pipe(Effect.mapError(corrupt("allow list")))
      const limits = yield* decodeLimits(row.limits).pipe(Effect.mapError(corrupt("limits")))
      const app: App = {
        id: row.id,
        orgId: row.org_id,
        name: row.name,
        allowList,
        limits,
        messageClass: row.message_class === "promotional" ? "promotional" : "transactional",
        active: flag(row.active),
        callback: row.callback_url === null || row.callback_url === undefined
          ? undefined
          : { url: row.callback_url, events: row.callback_events === "all" ? "all" : "final" },
        callbackSecretPrefix: row.callback_secret === null || row.callback_secret === undefined
          ? undefined
          : row.callback_secret.slice(0, 12),
        smppSystemId: row.smpp_system_id ?? undefined,
        createdAt: Number(row.created_at),
        updatedAt: Number(row.updated_at)
      }
      return app
    })

  const userByEmail = (email: string) =>
    Effect.map(sql<UserRow>`SELECT * FROM users WHERE email = ${email}`, (rows) => Option.fromNullishOr(rows[0]))

  const userById = (id: string) =>
    Effect.map(sql<UserRow>`SELECT * FROM users WHERE id = ${id}`, (rows) => Option.fromNullishOr(rows[0]))

  const orgById = (id: string) =>
    Effect.map(sql<OrgRow>`SELECT * FROM organisations WHERE id = ${id}`, (rows) => Option.fromNullishOr(rows[0]))

  const memberRow = (orgId: string, userId: string) =>
    Effect.map(
      sql<MemberRow>`
        SELECT m.org_id, m.user_id, m.role, m.created_at, u.email, u.name, u.password_hash
        FROM members m JOIN users u ON u.id = m.user_id
        WHERE m.org_id = ${orgId} AND m.user_id = ${userId}`,
      (rows) => Option.fromNullishOr(rows[0])
    )

  const liveAppRow = (orgId: string, appId: string) =>
    Effect.map(
      sql<AppRow>`SELECT * FROM apps WHERE id = ${appId} AND org_id = ${orgId} AND deleted_at IS NULL`,
      (rows) => Option.fromNullishOr(rows[0])
    )

  const requireApp = (orgId: string, appId: string) =>
    Effect.flatMap(liveAppRow(orgId, appId), (row) =>
      Option.match(row, {
        onNone: () => Effect.fail(new NotFound({ entity: "app", id: appId })),
        onSome: Effect.succeed
      }))

  /** A new organisation owned by `userId`. */
  /** A new user row, or none when the email is taken (the caller decides what that means). */
  const insertUser = (u: { email: string; name: string; passwordHash: string; superadmin: boolean; now: number }) =>
    sql<UserRow>`
      INSERT INTO users ${
      sql.insert({
        id: newId("usr"),
        email: u.email,
        name: u.name,
        password_hash: u.passwordHash,
        superadmin: u.superadmin ? 1 : 0,
        created_at: u.now
      })
    } ON CONFLICT (email) DO NOTHING RETURNING *`

  const createOrganisation = (name: string, userId: string, now: number) =>
    Effect.gen(function*() {
      const org: Organisation = { id: newId("org"), name, createdAt: now }
      yield* sql`INSERT INTO organisations ${sql.insert({ id: org.id, name: org.name, created_at: now })}`
      yield* sql`INSERT INTO members ${sql.insert({ org_id: org.id, user_id: userId, role: "owner", created_at: now })}`
      return org
    })

  /** Serialises changes to an organisation's owners (SQLite already runs one writer at a time). */
  const lockOrganisation = (orgId: string) =>
    sql.onDialectOrElse({
      pg: () => sql`SELECT id FROM organisations WHERE id = ${orgId} FOR UPDATE`.pipe(Effect.asVoid),
      orElse: () => Effect.void
    })

  const ownerCount = (orgId: string) =>
    Effect.map(
      sql<{ n: Int }>`SELECT COUNT(*) AS n FROM members WHERE org_id = ${orgId} AND role = 'owner'`,
      (rows) => Number(rows[0]?.n ?? 0)
    )

  /** The member, failing NotFound, and LastOwner when it is the only owner and `nextRole` is not owner. */
  const guardOwner = (orgId: string, userId: string, nextRole: Role | null) =>
    Effect.gen(function*() {
      yield* lockOrganisation(orgId)
      const row = yield* memberRow(orgId, userId)
      if (Option.isNone(row)) return yield* new NotFound({ entity: "member", id: userId })
      if (row.value.role === "owner" && nextRole !== "owner" && (yield* ownerCount(orgId)) <= 1) {
        return yield* new LastOwner({ orgId, userId })
      }
      return row.value
    })

  /** Spends a usable invitation (conditional update: one winner), answering its organisation and role. */
  const spendInvitation = (id: string, userId: string, now: number) =>
    Effect.gen(function*() {
      const spent = yield* sql<InvitationRow>`
        UPDATE invitations SET accepted_at = ${now}, accepted_by = ${userId}
        WHERE id = ${id} AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > ${now}
        RETURNING *`
      const row = spent[0]
      if (row === undefined) return yield* new InvitationUnusable({ id })
      const org = yield* orgById(row.org_id)
      if (Option.isNone(org)) return yield* new InvitationUnusable({ id })
      const role = yield* decodeRole(row.role).pipe(Effect.mapError(corrupt("role")))
      return { org: toOrganisation(org.value), role, email: row.email }
    })

  const registerIn = (input: {
    readonly email: string
    readonly name: string
    readonly passwordHash: string
    readonly orgName: string
    readonly invitationId?: string | undefined
  }, now: number) =>
    Effect.gen(function*() {
      const email = normaliseEmail(input.email)
      const existing = yield* userByEmail(email)
      let row: UserRow | undefined
      if (Option.isSome(existing)) {
        // A user row without a password is left from the old e-mail invitations: it is claimed, joining nothing.
        const claimed = yield* sql<UserRow>`
          UPDATE users SET password_hash = ${input.passwordHash}, name = ${input.name}
          WHERE id = ${existing.value.id} AND password_hash IS NULL
          RETURNING *`
        row = claimed[0]
        if (row === undefined) return yield* new EmailTaken({ email })
        yield* sql`DELETE FROM members WHERE user_id = ${row.id}`
      } else {
        const inserted = yield* insertUser({ email, name: input.name, passwordHash: input.passwordHash, superadmin: false, now })
        row = inserted[0]
        if (row === undefined) return yield* new EmailTaken({ email })
      }
      if (input.invitationId !== undefined) {
        const joined = yield* spendInvitation(input.invitationId, row.id, now)
        yield* sql`INSERT INTO members ${sql.insert({ org_id: joined.org.id, user_id: row.id, role: joined.role, created_at: now })}`
        return { user: toUser(row), org: joined.org, role: joined.role }
      }
      const org = yield* createOrganisation(input.orgName, row.id, now)
      return { user: toUser(row), org, role: "owner" as Role }
    })

  const register = Effect.fn("AccountStore.register")(function*(input: {
    readonly email: string
    readonly name: string
    readonly passwordHash: string
    readonly orgName: string
    readonly invitationId?: string | undefined
  }) {
    const now = yield* Clock.currentTimeMillis
    return yield* sql.withTransaction(registerIn(input, now))
  }, Effect.catchTag("SqlError", (e) => Effect.fail(storeFailure(e))))

  const findLogin = Effect.fn("AccountStore.findLogin")(function*(email: string) {
    const row = yield* userByEmail(normaliseEmail(email))
    if (Option.isNone(row) || row.value.password_hash === null) return Option.none()
    return Option.some({ user: toUser(row.value), passwordHash: row.value.password_hash })
  }, Effect.mapError(storeFailure))

  const membershipsOf = Effect.fn("AccountStore.membershipsOf")(function*(userId: string) {
    const rows = yield* sql<OrgRow & { readonly role: string }>`
      SELECT o.id, o.name, o.created_at, m.role FROM members m JOIN organisations o ON o.id = m.org_id
      WHERE m.user_id = ${userId} ORDER BY m.created_at, m.org_id`
    return yield* Effect.forEach(rows, (row) =>
      Effect.map(
        decodeRole(row.role).pipe(Effect.mapError(corrupt("role"))),
        (role) => ({ org: toOrganisation(row), role })
      ))
  }, Effect.catchTag("SqlError", (e) => Effect.fail(storeFailure(e))))

  const getUser = Effect.fn("AccountStore.getUser")(function*(id: string) {
    const row = yield* userById(id)
    if (Option.isNone(row)) return yield* new NotFound({ entity: "user", id })
    return toUser(row.value)
  }, Effect.catchTag("SqlError", (e) => Effect.fail(storeFailure(e))))

  const getOrganisation = Effect.fn("AccountStore.getOrganisation")(function*(id: string) {
    const row = yield* orgById(id)
    if (Option.isNone(row)) return yield* new NotFound({ entity: "organisation", id })
    return toOrganisation(row.value)
  }, Effect.catchTag("SqlError", (e) => Effect.fail(storeFailure(e))))

  const getMember = Effect.fn("AccountStore.getMember")(function*(orgId: string, userId: string) {
    const row = yield* memberRow(orgId, userId)
    return Option.isNone(row) ? Option.none() : Option.some(yield* toMember(row.value))
  }, Effect.catchTag("SqlError", (e) => Effect.fail(storeFailure(e))))

  const ensureSuperadmin = Effect.fn("AccountStore.ensureSuperadmin")(function*(input: {
    readonly email: string
    readonly name: string
    readonly passwordHash: string
  }) {
    const email = normaliseEmail(input.email)
    const now = yield* Clock.currentTimeMillis
    return yield* sql.withTransaction(Effect.gen(function*() {
      const inserted = yield* insertUser({ email, name: input.name, passwordHash: input.passwordHash, superadmin: true, now })
      const created = inserted[0]
      if (created !== undefined) {
        yield* createOrganisation("Operators", created.id, now)
        return toUser(created)
      }
      // An invited user gets the bootstrap password, since it has none to keep.
      const promoted = yield* sql<UserRow>`
        UPDATE users SET superadmin = 1, password_hash = COALESCE(password_hash, ${input.passwordHash})
        WHERE email = ${email} RETURNING *`
      const row = promoted[0]
      if (row === undefined) return yield* new StoreFailure({ message: `superadmin ${email} vanished` })
      return toUser(row)
    }))
  }, Effect.catchTag("SqlError", (e) => Effect.fail(storeFailure(e))))

  const listMembers = Effect.fn("AccountStore.listMembers")(function*(orgId: string) {
    const rows = yield* sql<MemberRow>`
      SELECT m.org_id, m.user_id, m.role, m.created_at, u.email, u.name, u.password_hash
      FROM members m JOIN users u ON u.id = m.user_id
      WHERE m.org_id = ${orgId} ORDER BY m.created_at, m.user_id`
    return yield* Effect.forEach(rows, toMember)
  }, Effect.catchTag("SqlError", (e) => Effect.fail(storeFailure(e))))

  const createInvitation = Effect.fn("AccountStore.createInvitation")(function*(
    orgId: string,
    input: { readonly email: string; readonly role: Role; readonly hash: string; readonly id: string; readonly invitedBy: string; readonly expiresAt: number }
  ) {
    const email = normaliseEmail(input.email)
    const now = yield* Clock.currentTimeMillis
    const members = yield* sql<{ user_id: string }>`
      SELECT m.user_id FROM members m JOIN users u ON u.id = m.user_id WHERE m.org_id = ${orgId} AND u.email = ${email}`
    if (members.length > 0) return yield* new AlreadyMember({ orgId, email })
    const invitation: Invitation = {
      id: input.id,
      orgId,
      email,
      role: input.role,
      invitedBy: input.invitedBy,
      createdAt: now,
      expiresAt: input.expiresAt,
      acceptedAt: null,
      revokedAt: null
    }
    yield* sql`INSERT INTO invitations ${
      sql.insert({
        id: invitation.id,
        org_id: orgId,
        email,
        role: input.role,
        hash: input.hash,
        invited_by: input.invitedBy,
        created_at: now,
        expires_at: input.expiresAt,
        accepted_at: null,
        accepted_by: null,
        revoked_at: null
      })
    }`
    return invitation
  }, Effect.catchTag("SqlError", (e) => Effect.fail(storeFailure(e))))

  const listInvitations = Effect.fn("AccountStore.listInvitations")(function*(orgId: string) {
    const now = yield* Clock.currentTimeMillis
    const rows = yield* sql<InvitationRow>`
      SELECT * FROM invitations
      WHERE org_id = ${orgId} AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > ${now}
      ORDER BY created_at, id`
    return yield* Effect.forEach(rows, toInvitation)
  }, Effect.catchTag("SqlError", (e) => Effect.fail(storeFailure(e))))

  const getInvitation = Effect.fn("AccountStore.getInvitation")(function*(orgId: string, id: string) {
    const rows = yield* sql<InvitationRow>`SELECT * FROM invitations WHERE id = ${id} AND org_id = ${orgId}`
    const row = rows[0]
    if (row === undefined) return yield* new NotFound({ entity: "invitation", id })
    return yield* toInvitation(row)
  }, Effect.catchTag("SqlError", (e) => Effect.fail(storeFailure(e))))

  const revokeInvitation = Effect.fn("AccountStore.revokeInvitation")(function*(orgId: string, id: string) {
    const now = yield* Clock.currentTimeMillis
    const rows = yield* sql<InvitationRow>`
      UPDATE invitations SET revoked_at = COALESCE(revoked_at, ${now})
      WHERE id = ${id} AND org_id = ${orgId} AND accepted_at IS NULL
      RETURNING *`
    const row = rows[0]
    if (row === undefined) return yield* new NotFound({ entity: "invitation", id })
    return yield* toInvitation(row)
  }, Effect.catchTag("SqlError", (e) => Effect.fail(storeFailure(e))))

  const findInvitation = Effect.fn("AccountStore.findInvitation")(function*(id: string) {
    const rows = yield* sql<InvitationRow>`SELECT * FROM invitations WHERE id = ${id}`
    const row = rows[0]
    if (row === undefined) return Option.none()
    return Option.some({ invitation: yield* toInvitation(row), hash: row.hash })
  }, Effect.catchTag("SqlError", (e) => Effect.fail(storeFailure(e))))

  const acceptInvitation = Effect.fn("AccountStore.acceptInvitation")(function*(id: string, userId: string) {
    const now = yield* Clock.currentTimeMillis
    return yield* sql.withTransaction(Effect.gen(function*() {
      const joined = yield* spendInvitation(id, userId, now)
      const added = yield* sql<{ user_id: string }>`
        INSERT INTO members ${sql.insert({ org_id: joined.org.id, user_id: userId, role: joined.role, created_at: now })}
        ON CONFLICT (org_id, user_id) DO NOTHING RETURNING user_id`
      // Failing rolls the spending back: the invitation was not used.
      if (added.length === 0) return yield* new AlreadyMember({ orgId: joined.org.id, email: joined.email })
      return { org: joined.org, role: joined.role }
    }))
  }, Effect.catchTag("SqlError", (e) => Effect.fail(storeFailure(e))))

  const addPendingRegistration = Effect.fn("AccountStore.addPendingRegistration")(function*(input: PendingRegistration) {
    const now = yield* Clock.currentTimeMillis
    // Expired ones are of no use to anyone: each new one sweeps them.
    yield* sql`DELETE FROM pending_registrations WHERE expires_at < ${now}`
    yield* sql`INSERT INTO pending_registrations ${
      sql.insert({
        id: input.id,
        email: normaliseEmail(input.email),
        name: input.name,
        org_name: input.orgName,
        password_hash: input.passwordHash,
        hash: input.hash,
        created_at: now,
        expires_at: input.expiresAt,
        used_at: null
      })
    }`
  }, Effect.mapError(storeFailure))

  const confirmRegistration = Effect.fn("AccountStore.confirmRegistration")(function*(
    id: string,
    matches: (hash: string) => boolean
  ) {
    const now = yield* Clock.currentTimeMillis
    return yield* sql.withTransaction(Effect.gen(function*() {
      const rows = yield* sql<PendingRow>`SELECT * FROM pending_registrations WHERE id = ${id}`
      const row = rows[0]
      if (row === undefined || row.used_at !== null || Number(row.expires_at) <= now || !matches(row.hash)) {
        return yield* new InvitationUnusable({ id })
      }
      const spent = yield* sql<{ id: string }>`
        UPDATE pending_registrations SET used_at = ${now} WHERE id = ${id} AND used_at IS NULL RETURNING id`
      if (spent.length === 0) return yield* new InvitationUnusable({ id })
      return yield* registerIn({ email: row.email, name: row.name, passwordHash: row.password_hash, orgName: row.org_name }, now)
    }))
  }, Effect.catchTag("SqlError", (e) => Effect.fail(storeFailure(e))))

  const updateMemberRole = Effect.fn("AccountStore.updateMemberRole")(function*(
    orgId: string,
    userId: string,
    role: Role
  ) {
    return yield* sql.withTransaction(Effect.gen(function*() {
      const row = yield* guardOwner(orgId, userId, role)
      yield* sql`UPDATE members SET role = ${role} WHERE org_id = ${orgId} AND user_id = ${userId}`
      return yield* toMember({ ...row, role })
    }))
  }, Effect.catchTag("SqlError", (e) => Effect.fail(storeFailure(e))))

  const removeMember = Effect.fn("AccountStore.removeMember")(function*(orgId: string, userId: string) {
    const now = yield* Clock.currentTimeMillis
    yield* sql.withTransaction(Effect.gen(function*() {
      yield* guardOwner(orgId, userId, null)
      yield* sql`DELETE FROM members WHERE org_id = ${orgId} AND user_id = ${userId}`
      yield* sql`UPDATE refresh_tokens SET revoked_at = ${now}
        WHERE user_id = ${userId} AND org_id = ${orgId} AND revoked_at IS NULL`
    }))
  }, Effect.catchTag("SqlError", (e) => Effect.fail(storeFailure(e))))

  const createApp = Effect.fn("AccountStore.createApp")(function*(orgId: string, input: NewApp) {
    const now = yield* Clock.currentTimeMillis
    const app: App = {
      id: newId("app"),
      orgId,
      name: input.name,
      allowList: input.allowList,
      limits: input.limits,
      messageClass: input.messageClass,
      active: input.active,
      callback: undefined,
      callbackSecretPrefix: undefined,
      smppSystemId: undefined,
      createdAt: now,
      updatedAt: now
    }
    yield* sql`INSERT INTO apps ${
      sql.insert({
        id: app.id,
        org_id: orgId,
        name: app.name,
        allow_list: encodeAllowList(app.allowList),
        limits: encodeLimits(app.limits),
        message_class: app.messageClass,
        active: app.active ? 1 : 0,
        created_at: now,
        updated_at: now,
        deleted_at: null
      })
    }`
    return app
  }, Effect.mapError(storeFailure))

  const listApps = Effect.fn("AccountStore.listApps")(function*(orgId: string) {
    const rows = yield* sql<AppRow>`
      SELECT * FROM apps WHERE org_id = ${orgId} AND deleted_at IS NULL ORDER BY created_at, id`
    return yield* Effect.forEach(rows, toApp)
  }, Effect.catchTag("SqlError", (e) => Effect.fail(storeFailure(e))))

  const getApp = Effect.fn("AccountStore.getApp")(function*(orgId: string, appId: string) {
    return yield* toApp(yield* requireApp(orgId, appId))
  }, Effect.catchTag("SqlError", (e) => Effect.fail(storeFailure(e))))

  const findAppById = Effect.fn("AccountStore.findAppById")(function*(appId: string) {
    const rows = yield* sql<AppRow>`SELECT * FROM apps WHERE id = ${appId} AND deleted_at IS NULL`
    const row = rows[0]
    return row === undefined ? Option.none() : Option.some(yield* toApp(row))
  }, Effect.catchTag("SqlError", (e) => Effect.fail(storeFailure(e))))

  const updateApp = Effect.fn("AccountStore.updateApp")(function*(
    orgId: string,
    appId: string,
    patch: AppPatch
  ) {
    const now = yield* Clock.currentTimeMillis
    const setUrl = patch.callbackUrl !== undefined
    // An app that gets a callback URL and has no secret gets one now, shown once in this answer.
    const secret = typeof patch.callbackUrl === "string" ? newCallbackSecret() : null
    const rows = yield* sql<AppRow>`
      UPDATE apps SET
        name = COALESCE(${patch.name ?? null}, name),
        allow_list = COALESCE(${patch.allowList === undefined ? null : encodeAllowList(patch.allowList)}, allow_list),
        limits = COALESCE(${patch.limits === undefined ? null : encodeLimits(patch.limits)}, limits),
        message_class = COALESCE(${patch.messageClass ?? null}, message_class),
        active = COALESCE(${patch.active === undefined ? null : patch.active ? 1 : 0}, active),
        callback_url = CASE WHEN CAST(${setUrl ? 1 : 0} AS INTEGER) = 1 THEN CAST(${patch.callbackUrl ?? null} AS TEXT)
          ELSE callback_url END,
        callback_events = COALESCE(CAST(${patch.callbackEvents ?? null} AS TEXT), callback_events),
        callback_secret = COALESCE(callback_secret, CAST(${secret} AS TEXT)),
        updated_at = ${now}
      WHERE id = ${appId} AND org_id = ${orgId} AND deleted_at IS NULL
      RETURNING *`
    const row = rows[0]
    if (row === undefined) return yield* new NotFound({ entity: "app", id: appId })
    const app = yield* toApp(row)
    const updated: UpdatedApp = secret !== null && row.callback_secret === secret ? { app, callbackSecret: secret } : { app }
    return updated
  }, Effect.catchTag("SqlError", (e) => Effect.fail(storeFailure(e))))

  const rotateCallbackSecret = Effect.fn("AccountStore.rotateCallbackSecret")(function*(orgId: string, appId: string) {
    const now = yield* Clock.currentTimeMillis
    const secret = newCallbackSecret()
    const until = now + callbackSecretOverlapMs
    const rows = yield* sql<AppRow & { readonly callback_secret_previous_until: Int | null }>`
      UPDATE apps SET
        callback_secret_previous = callback_secret,
        callback_secret_previous_until = CASE WHEN callback_secret IS NULL THEN NULL ELSE CAST(${until} AS BIGINT) END,
        callback_secret = ${secret},
        updated_at = ${now}
      WHERE id = ${appId} AND org_id = ${orgId} AND deleted_at IS NULL
      RETURNING *`
    const row = rows[0]
    if (row === undefined) return yield* new NotFound({ entity: "app", id: appId })
    const previousUntil = row.callback_secret_previous_until === null ? undefined : Number(row.callback_secret_previous_until)
    return { app: yield* toApp(row), secret, previousUntil }
  }, Effect.catchTag("SqlError", (e) => Effect.fail(storeFailure(e))))

  const systemIdHolder = (key: string, appId: string) =>
    Effect.map(
      sql<{ id: string }>`SELECT id FROM apps WHERE smpp_system_key = ${key} AND id <> ${appId}`,
      (rows) => rows.length > 0
    )

  const setSmppCredentials = Effect.fn("AccountStore.setSmppCredentials")(function*(
    orgId: string,
    appId: string,
    credentials: { readonly systemId: string; readonly passwordHash: string }
  ) {
    const now = yield* Clock.currentTimeMillis
    const key = systemIdKey(credentials.systemId)
    if (yield* systemIdHolder(key, appId)) return yield* new SystemIdTaken({ systemId: credentials.systemId })
    const rows = yield* sql<AppRow>`
      UPDATE apps SET smpp_system_id = ${credentials.systemId}, smpp_system_key = ${key},
        smpp_password_hash = ${credentials.passwordHash}, updated_at = ${now}
      WHERE id = ${appId} AND org_id = ${orgId} AND deleted_at IS NULL
      RETURNING *`.pipe(
      // Two apps taking the same systemId at once: the unique index refuses the second.
      Effect.catchTag("SqlError", (e) =>
        Effect.flatMap(systemIdHolder(key, appId), (taken) =>
          Effect.fail<SystemIdTaken | SqlError.SqlError>(taken ? new SystemIdTaken({ systemId: credentials.systemId }) : e)))
    )
    const row = rows[0]
    if (row === undefined) return yield* new NotFound({ entity: "app", id: appId })
    return yield* toApp(row)
  }, Effect.catchTag("SqlError", (e) => Effect.fail(storeFailure(e))))

  /** Changes the app's SMPP columns (`set`), when it has SMPP credentials; the app after it. */
  const updateSmpp = (orgId: string, appId: string, set: Statement.Fragment) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const rows = yield* sql<AppRow>`
        UPDATE apps SET ${set}, updated_at = ${now}
        WHERE id = ${appId} AND org_id = ${orgId} AND deleted_at IS NULL AND smpp_system_key IS NOT NULL
        RETURNING *`
      const row = rows[0]
      if (row === undefined) return yield* new NotFound({ entity: "smpp", id: appId })
      return yield* toApp(row)
    }).pipe(Effect.catchTag("SqlError", (e) => Effect.fail(storeFailure(e))))

  const setSmppPassword = (orgId: string, appId: string, passwordHash: string) =>
    updateSmpp(orgId, appId, sql`smpp_password_hash = ${passwordHash}`).pipe(Effect.withSpan("AccountStore.setSmppPassword"))

  const removeSmppCredentials = (orgId: string, appId: string) =>
    updateSmpp(orgId, appId, sql`smpp_system_id = NULL, smpp_system_key = NULL, smpp_password_hash = NULL`).pipe(
      Effect.withSpan("AccountStore.removeSmppCredentials")
    )

  const findSmppLogin = Effect.fn("AccountStore.findSmppLogin")(function*(systemId: string) {
    const rows = yield* sql<AppRow>`
      SELECT * FROM apps WHERE smpp_system_key = ${systemIdKey(systemId)} AND deleted_at IS NULL`
    const row = rows[0]
    if (row === undefined || row.smpp_password_hash === null || row.smpp_password_hash === undefined) return Option.none()
    return Option.some({ app: yield* toApp(row), passwordHash: row.smpp_password_hash })
  }, Effect.catchTag("SqlError", (e) => Effect.fail(storeFailure(e))))

  const deleteApp = Effect.fn("AccountStore.deleteApp")(function*(orgId: string, appId: string) {
    const now = yield* Clock.currentTimeMillis
    yield* sql.withTransaction(Effect.gen(function*() {
      const rows = yield* sql<{ id: string }>`
        UPDATE apps SET deleted_at = ${now}, updated_at = ${now},
          smpp_system_id = NULL, smpp_system_key = NULL, smpp_password_hash = NULL
        WHERE id = ${appId} AND org_id = ${orgId} AND deleted_at IS NULL
        RETURNING id`
      if (rows.length === 0) return yield* new NotFound({ entity: "app", id: appId })
      yield* sql`UPDATE api_keys SET revoked_at = ${now}
        WHERE app_id = ${appId} AND org_id = ${orgId} AND revoked_at IS NULL`
    }))
  }, Effect.catchTag("SqlError", (e) => Effect.fail(storeFailure(e))))

  const addApiKey = Effect.fn("AccountStore.addApiKey")(function*(
    orgId: string,
    appId: string,
    key: { readonly id: string; readonly prefix: string; readonly hash: string }
  ) {
    const now = yield* Clock.currentTimeMillis
    return yield* sql.withTransaction(Effect.gen(function*() {
      yield* requireApp(orgId, appId)
      yield* sql`INSERT INTO api_keys ${
        sql.insert({
          id: key.id,
          app_id: appId,
          org_id: orgId,
          prefix: key.prefix,
          hash: key.hash,
          created_at: now,
          revoked_at: null,
          last_used_at: null
        })
      }`
      const apiKey: ApiKey = { id: key.id, appId, prefix: key.prefix, createdAt: now, revokedAt: null, lastUsedAt: null }
      return apiKey
    }))
  }, Effect.catchTag("SqlError", (e) => Effect.fail(storeFailure(e))))

  const listApiKeys = Effect.fn("AccountStore.listApiKeys")(function*(orgId: string, appId: string) {
    yield* requireApp(orgId, appId)
    const rows = yield* sql<ApiKeyRow>`
      SELECT * FROM api_keys WHERE app_id = ${appId} AND org_id = ${orgId} ORDER BY created_at, id`
    return rows.map(toApiKey)
  }, Effect.catchTag("SqlError", (e) => Effect.fail(storeFailure(e))))

  const revokeApiKey = Effect.fn("AccountStore.revokeApiKey")(function*(orgId: string, appId: string, keyId: string) {
    const now = yield* Clock.currentTimeMillis
    return yield* sql.withTransaction(Effect.gen(function*() {
      yield* requireApp(orgId, appId)
      const rows = yield* sql<ApiKeyRow>`
        UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ${now})
        WHERE id = ${keyId} AND app_id = ${appId} AND org_id = ${orgId}
        RETURNING *`
      const row = rows[0]
      if (row === undefined) return yield* new NotFound({ entity: "api_key", id: keyId })
      return toApiKey(row)
    }))
  }, Effect.catchTag("SqlError", (e) => Effect.fail(storeFailure(e))))

  const findApiKey = Effect.fn("AccountStore.findApiKey")(function*(keyId: string) {
    const rows = yield* sql<ApiKeyRow & { readonly app_active: Int | boolean; readonly app_deleted_at: Int | null }>`
      SELECT k.*, a.active AS app_active, a.deleted_at AS app_deleted_at
      FROM api_keys k JOIN apps a ON a.id = k.app_id AND a.org_id = k.org_id
      WHERE k.id = ${keyId}`
    const row = rows[0]
    if (row === undefined) return Option.none()
    const found: ApiKeyLookup = {
      key: toApiKey(row),
      orgId: row.org_id,
      hash: row.hash,
      appActive: flag(row.app_active),
      appDeleted: row.app_deleted_at !== null
    }
    return Option.some(found)
  }, Effect.mapError(storeFailure))

  const touchApiKey = Effect.fn("AccountStore.touchApiKey")(function*(keyId: string, at: number) {
    yield* sql`UPDATE api_keys SET last_used_at = ${at} WHERE id = ${keyId}`
  }, Effect.mapError(storeFailure))

  const addRefreshToken = Effect.fn("AccountStore.addRefreshToken")(function*(token: {
    readonly id: string
    readonly userId: string
    readonly orgId: string
    readonly hash: string
    readonly expiresAt: number
  }) {
    const now = yield* Clock.currentTimeMillis
    yield* sql`INSERT INTO refresh_tokens ${
      sql.insert({
        id: token.id,
        user_id: token.userId,
        org_id: token.orgId,
        hash: token.hash,
        expires_at: token.expiresAt,
        revoked_at: null,
        created_at: now,
        replaced_by: null
      })
    }`
  }, Effect.mapError(storeFailure))

  const findRefreshToken = Effect.fn("AccountStore.findRefreshToken")(function*(id: string) {
    const rows = yield* sql<RefreshTokenRow>`
      SELECT id, user_id, org_id, hash, expires_at, revoked_at FROM refresh_tokens WHERE id = ${id}`
    const row = rows[0]
    if (row === undefined) return Option.none()
    const token: RefreshTokenRecord = {
      id: row.id,
      userId: row.user_id,
      orgId: row.org_id,
      hash: row.hash,
      expiresAt: Number(row.expires_at),
      revokedAt: nullableNumber(row.revoked_at)
    }
    return Option.some(token)
  }, Effect.mapError(storeFailure))

  const revokeRefreshToken = Effect.fn("AccountStore.revokeRefreshToken")(function*(id: string, replacedBy?: string) {
    const now = yield* Clock.currentTimeMillis
    const rows = yield* sql<{ id: string }>`
      UPDATE refresh_tokens SET revoked_at = ${now}, replaced_by = ${replacedBy ?? null}
      WHERE id = ${id} AND revoked_at IS NULL
      RETURNING id`
    return rows.length > 0
  }, Effect.mapError(storeFailure))

  const revokeRefreshTokensOfUser = Effect.fn("AccountStore.revokeRefreshTokensOfUser")(function*(userId: string) {
    const now = yield* Clock.currentTimeMillis
    yield* sql`UPDATE refresh_tokens SET revoked_at = ${now} WHERE user_id = ${userId} AND revoked_at IS NULL`
  }, Effect.mapError(storeFailure))

  const audit = Effect.fn("AccountStore.audit")(function*(
    entry: Omit<AuditEntry, "id" | "at"> & { readonly at?: number }
  ) {
    const at = entry.at ?? (yield* Clock.currentTimeMillis)
    yield* sql`INSERT INTO audit_log ${
      sql.insert({
        id: newId("aud"),
        org_id: entry.orgId,
        actor_user_id: entry.actorUserId,
        actor_app_id: entry.actorAppId,
        action: entry.action,
        target: entry.target,
        ip: entry.ip,
        at,
        detail: entry.detail
      })
    }`
  }, Effect.mapError(storeFailure))

  // Each equality filter has an index (org_id, column, at, id) (migration 0017), so a rare value is found without
  // walking the organisation's whole log; with none, (org_id, at, id) serves the order. The cursor is written as a
  // range on `at` first (`at <= t AND (at < t OR id < i)`): an OR alone kept both planners from starting the index
  // scan at the cursor (bench/audit-filters.ts: a page in the middle of a million entries 180 ms on PostgreSQL).
  const listAudit = Effect.fn("AccountStore.listAudit")(function*(orgId: string, query: AuditQuery) {
    const before = query.before
    const conditions = [
      sql`org_id = ${orgId}`,
      ...(query.action !== undefined ? [sql`action = ${query.action}`] : []),
      ...(query.actorUserId !== undefined ? [sql`actor_user_id = ${query.actorUserId}`] : []),
      ...(query.actorAppId !== undefined ? [sql`actor_app_id = ${query.actorAppId}`] : []),
      ...(query.target !== undefined ? [sql`target = ${query.target}`] : []),
      ...(query.since !== undefined ? [sql`at >= ${query.since}`] : []),
      ...(query.until !== undefined ? [sql`at <= ${query.until}`] : []),
      ...(before === undefined
        ? []
        : before.id === undefined
        ? [sql`at < ${before.at}`]
        : [sql`at <= ${before.at} AND (at < ${before.at} OR id < ${before.id})`])
    ]
    const rows = yield* sql<AuditRow>`
      SELECT * FROM audit_log WHERE ${sql.and(conditions)}
      ORDER BY at DESC, id DESC LIMIT ${Math.max(0, Math.floor(query.limit))}`
    return rows.map(toAuditEntry)
  }, Effect.mapError(storeFailure))

  // A loose index scan of (org_id, action, ...): one index probe per distinct action, not one row read per entry.
  const auditActions = Effect.fn("AccountStore.auditActions")(function*(orgId: string, limit: number) {
    const rows = yield* sql<{ action: string | null }>`
      WITH RECURSIVE actions (action, n) AS (
        SELECT (SELECT MIN(action) FROM audit_log WHERE org_id = ${orgId}), 1
        UNION ALL
        SELECT (SELECT MIN(a.action) FROM audit_log a WHERE a.org_id = ${orgId} AND a.action > actions.action), n + 1
        FROM actions WHERE actions.action IS NOT NULL AND n < ${Math.max(0, Math.floor(limit))}
      )
      SELECT action FROM actions WHERE action IS NOT NULL`
    return rows.flatMap((r) => r.action === null ? [] : [r.action])
  }, Effect.mapError(storeFailure))

  const auditTimes = Effect.fn("AccountStore.auditTimes")(function*(query: {
    readonly orgId: string
    readonly actorUserId: string
    readonly action: string
    readonly since: number
    readonly limit: number
  }) {
    const rows = yield* sql<{ at: number | string }>`
      SELECT at FROM audit_log
      WHERE org_id = ${query.orgId} AND at >= ${query.since}
        AND actor_user_id = ${query.actorUserId} AND action = ${query.action}
      ORDER BY at DESC LIMIT ${Math.max(0, Math.floor(query.limit))}`
    return rows.map((r) => Number(r.at))
  }, Effect.mapError(storeFailure))

  const oldestSigningKey = Effect.map(
    sql<{ kid: string; secret: string }>`SELECT kid, secret FROM signing_keys ORDER BY created_at, kid LIMIT 1`,
    (rows) => Option.fromNullishOr(rows[0])
  )

  // Processes racing to create it may insert different keys; all of them then read the same oldest one.
  const signingKey = Effect.gen(function*() {
    const stored = yield* oldestSigningKey
    if (Option.isSome(stored)) return stored.value
    const now = yield* Clock.currentTimeMillis
    yield* sql`INSERT INTO signing_keys ${
      sql.insert({ kid: kidAt(now), secret: randomBytes(32).toString("base64url"), created_at: now })
    } ON CONFLICT (kid) DO NOTHING`
    const created = yield* oldestSigningKey
    if (Option.isNone(created)) return yield* new StoreFailure({ message: "signing key was not stored" })
    return created.value
  }).pipe(
    Effect.catchTag("SqlError", (e) => Effect.fail(storeFailure(e))),
    Effect.withSpan("AccountStore.signingKey")
  )

  return AccountStore.of({
    register,
    findLogin,
    getUser,
    getOrganisation,
    membershipsOf,
    getMember,
    ensureSuperadmin,
    listMembers,
    createInvitation,
    listInvitations,
    getInvitation,
    revokeInvitation,
    findInvitation,
    acceptInvitation,
    addPendingRegistration,
    confirmRegistration,
    updateMemberRole,
    removeMember,
    createApp,
    listApps,
    getApp,
    findAppById,
    updateApp,
    rotateCallbackSecret,
    setSmppCredentials,
    setSmppPassword,
    removeSmppCredentials,
    findSmppLogin,
    deleteApp,
    addApiKey,
    listApiKeys,
    revokeApiKey,
    findApiKey,
    touchApiKey,
    addRefreshToken,
    findRefreshToken,
    revokeRefreshToken,
    revokeRefreshTokensOfUser,
    audit,
    listAudit,
    auditActions,
    auditTimes,
    signingKey
  })
})
