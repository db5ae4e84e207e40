/**
 * Accounts as data: roles and their ranks, users, organisations, apps, keys, members, audit entries.
 */
import { Schema } from "effect"
import type { MessageClass } from "./Policy.ts"
import type { CallbackTarget } from "./Callback.ts"

export const Role = Schema.Literals(["owner", "admin", "moderator", "member", "viewer"])
export type Role = typeof Role.Type

/** Higher ranks may do what lower ranks may. */
export const roleRank: Record<Role, number> = { viewer: 0, member: 1, moderator: 2, admin: 3, owner: 4 }

export const atLeast = (role: Role, minimum: Role): boolean => roleRank[role] >= roleRank[minimum]

export interface User {
  readonly id: string
  readonly email: string
  readonly name: string
  /** Operator-level: manages links, pools and policies of the whole gateway. */
  readonly superadmin: boolean
  /** False only for users invited before invitations became tokens (they join nothing until they accept one). */
  readonly registered: boolean
  readonly createdAt: number
}

/**
 * An offer to join an organisation with a role, delivered by mail as a single-use token. Nobody is a member
 * because of it until the person holding the token accepts.
 */
export interface Invitation {
  readonly id: string
  readonly orgId: string
  /** As normalised from what the inviter typed; says nothing about whether such a user exists. */
  readonly email: string
  readonly role: Role
  readonly invitedBy: string | null
  readonly createdAt: number
  readonly expiresAt: number
  readonly acceptedAt: number | null
  readonly revokedAt: number | null
}

export interface Organisation {
  readonly id: string
  readonly name: string
  readonly createdAt: number
}

export interface Member {
  readonly orgId: string
  readonly userId: string
  readonly email: string
  readonly name: string
  readonly role: Role
  readonly registered: boolean
  readonly createdAt: number
}

export const AppLimits = Schema.Struct({
  perSecond: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThan(0))),
  perMinute: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThan(0))),
  perDay: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThan(0))),
  burst: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThan(0)))
})
export type AppLimits = typeof AppLimits.Type

export interface App {
  readonly id: string
  readonly orgId: string
  readonly name: string
  /** IPv4/IPv6 CIDRs (a bare address is a /32 or /128); empty = any address. */
  readonly allowList: ReadonlyArray<string>
  readonly limits: AppLimits
  /** The class of its messages that do not say (contact policy: quiet hours, promotional caps). */
  readonly messageClass: MessageClass
  readonly active: boolean
  /** Where its messages' status changes are posted, and which ones; none when unset. */
  readonly callback: CallbackTarget | undefined
  /** The first characters of its callback signing secret (the secret itself is shown once, when made). */
  readonly callbackSecretPrefix: string | undefined
  /** Its SMPP system_id (docs/smpp-server.md), when it binds over SMPP; the password is only ever stored hashed. */
  readonly smppSystemId: string | undefined
  readonly createdAt: number
  readonly updatedAt: number
}

export interface ApiKey {
  readonly id: string
  readonly appId: string
  /** The first characters of the key, shown so a user can tell keys apart; the key itself is never stored. */
  readonly prefix: string
  readonly createdAt: number
  readonly revokedAt: number | null
  readonly lastUsedAt: number | null
}

export interface AuditEntry {
  readonly id: string
  readonly orgId: string | null
  readonly actorUserId: string | null
  readonly actorAppId: string | null
  readonly action: string
  readonly target: string | null
  readonly ip: string | null
  readonly at: number
  readonly detail: string | null
}

/** Who is sending: an app of an organisation, with the app's own limits (authentication finds it, the pipeline uses it). */
export interface Submitter {
  readonly orgId: string
  readonly appId: string
  readonly appLimits: AppLimits
  /** The class of the app's messages that do not say. */
  readonly messageClass: MessageClass
  /** Where the app's messages' status changes are posted (a message's own statusCallback replaces the URL). */
  readonly callback?: CallbackTarget
  /** Whether the app has a callback signing secret (a message's own statusCallback needs one). */
  readonly canSignCallbacks?: boolean
}
