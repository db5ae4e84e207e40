import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Layer, Option } from "effect"
import { TestClock } from "effect/testing"
import { Migrator } from "effect/sql"
import { SqlClient, SqlError } from "effect/sql"
import { accountMigrations } from "../../src/auth/AccountMigrations.ts"
import { AccountStore } from "../../src/auth/AccountStore.ts"
import { pgLayer, sqliteLayer } from "../fixtures/Databases.ts"

const unique = (label: string) => `${label}-${crypto.randomUUID().slice(0, 8)}@example.com`

const migrate = Migrator.make({})({ loader: Migrator.fromRecord(accountMigrations), table: "test_migrations" })

const registerOwner = (label: string) =>
  Effect.flatMap(AccountStore, (store) =>
    store.register({ email: unique(label), name: label, passwordHash: `hash-${label}`, orgName: `${label} org` }))

const newApp = (orgId: string, name = "sender") =>
  Effect.flatMap(AccountStore, (store) =>
    store.createApp(orgId, { name, allowList: ["10.0.0.0/8"], limits: { perSecond: 5 }, messageClass: "promotional", active: true }))

const suite = (name: string, database: Layer.Layer<SqlClient.SqlClient>) =>
  describe(`AccountStore on ${name}`, () => {
    const TestStore = AccountStore.layer.pipe(
      Layer.provideMerge(Layer.effectDiscard(Effect.orDie(migrate))),
      Layer.provide(database)
    )

    it.layer(TestStore, { timeout: 60_000 })((it) => {
      it.effect("register creates a user owning a new organisation; login finds it by any case", () =>
        Effect.gen(function*() {
          const store = yield* AccountStore
          const email = unique("Alice").toUpperCase()
          const { org, role, user } = yield* store.register({ email, name: "Alice", passwordHash: "h1", orgName: "Acme" })
          expect(user.email).toBe(email.toLowerCase())
          expect(user.id).toMatch(/^usr_[0-9a-f]{16}$/)
          expect(org.id).toMatch(/^org_[0-9a-f]{16}$/)
          expect([user.registered, user.superadmin, org.name, role]).toEqual([true, false, "Acme", "owner"])
          expect(yield* store.membershipsOf(user.id)).toEqual([{ org, role: "owner" }])
          expect(yield* store.getUser(user.id)).toEqual(user)
          expect(yield* store.getOrganisation(org.id)).toEqual(org)
          const login = yield* store.findLogin(email.toLowerCase())
          expect(Option.map(login, (l) => [l.user.id, l.passwordHash])).toEqual(Option.some([user.id, "h1"]))
          const member = Option.getOrThrow(yield* store.getMember(org.id, user.id))
          expect([member.role, member.email, member.registered]).toEqual(["owner", user.email, true])
          expect((yield* Effect.flip(store.getUser("usr_missing")))._tag).toBe("NotFound")
        }))

      it.effect("a registered email cannot register again, whatever its case", () =>
        Effect.gen(function*() {
          const store = yield* AccountStore
          const email = unique("bob")
          yield* store.register({ email, name: "Bob", passwordHash: "h", orgName: "B" })
          const error = yield* Effect.flip(
            store.register({ email: ` ${email.toUpperCase()} `, name: "Bob 2", passwordHash: "h2", orgName: "B2" })
          )
          expect(error._tag).toBe("EmailTaken")
          const login = Option.getOrThrow(yield* store.findLogin(email))
          expect([login.user.name, login.passwordHash]).toEqual(["Bob", "h"])
        }))

      it.effect("an invitation is a pending token: registering with it joins once; registering without it joins nothing", () =>
        Effect.gen(function*() {
          const store = yield* AccountStore
          const { org } = yield* registerOwner("inviter")
          yield* TestClock.adjust("1 second")
          const email = unique("carol")
          const now = yield* Clock.currentTimeMillis
          const invited = yield* store.createInvitation(org.id, {
            id: "inv1", hash: "h-inv1", email: email.toUpperCase(), role: "moderator", invitedBy: "usr_x", expiresAt: now + 60_000
          })
          expect([invited.email, invited.role, invited.acceptedAt]).toEqual([email, "moderator", null])
          // Nobody was created or listed because of it.
          expect(Option.isNone(yield* store.findLogin(email))).toBe(true)
          expect((yield* store.listMembers(org.id)).map((m) => m.name)).toEqual(["inviter"])
          expect((yield* store.listInvitations(org.id)).map((i) => i.id)).toEqual(["inv1"])
          expect(Option.map(yield* store.findInvitation("inv1"), (f) => f.hash)).toEqual(Option.some("h-inv1"))

          const joined = yield* store.register({ email, name: "Carol", passwordHash: "hc", orgName: "ignored", invitationId: "inv1" })
          expect([joined.org.id, joined.role, joined.user.registered]).toEqual([org.id, "moderator", true])
          expect((yield* store.membershipsOf(joined.user.id)).map((m) => m.org.id)).toEqual([org.id])
          expect((yield* store.listMembers(org.id)).map((m) => [m.name, m.role])).toEqual([["inviter", "owner"], ["Carol", "moderator"]])
          expect(yield* store.listInvitations(org.id)).toEqual([])
          // Spent: a second use fails, and rolls back the user it would have created.
          const other = unique("dave")
          const reused = yield* Effect.flip(store.register({ email: other, name: "D", passwordHash: "x", orgName: "x", invitationId: "inv1" }))
          expect(reused._tag).toBe("InvitationUnusable")
          expect(Option.isNone(yield* store.findLogin(other))).toBe(true)
          // A member of the organisation cannot be invited again.
          const again = yield* Effect.flip(store.createInvitation(org.id, {
            id: "inv2", hash: "h", email, role: "viewer", invitedBy: "usr_x", expiresAt: now + 60_000
          }))
          expect(again._tag).toBe("AlreadyMember")
        }))

      it.effect("an existing user accepts once; expired and revoked invitations are unusable", () =>
        Effect.gen(function*() {
          const store = yield* AccountStore
          const { org } = yield* registerOwner("host")
          const guest = yield* registerOwner("guest")
          const now = yield* Clock.currentTimeMillis
          const invite = (id: string, ttl: number) =>
            store.createInvitation(org.id, { id, hash: "h", email: guest.user.email, role: "viewer", invitedBy: "usr_x", expiresAt: now + ttl })
          yield* invite("inv-exp", 1_000)
          yield* invite("inv-rev", 60_000)
          yield* invite("inv-ok", 60_000)
          yield* store.revokeInvitation(org.id, "inv-rev")
          yield* TestClock.adjust("2 seconds")
          expect((yield* store.listInvitations(org.id)).map((i) => i.id)).toEqual(["inv-ok"])
          expect((yield* Effect.flip(store.acceptInvitation("inv-exp", guest.user.id)))._tag).toBe("InvitationUnusable")
          expect((yield* Effect.flip(store.acceptInvitation("inv-rev", guest.user.id)))._tag).toBe("InvitationUnusable")
          expect((yield* Effect.flip(store.revokeInvitation(guest.org.id, "inv-ok")))._tag).toBe("NotFound")
          const joined = yield* store.acceptInvitation("inv-ok", guest.user.id)
          expect([joined.org.id, joined.role]).toEqual([org.id, "viewer"])
          expect((yield* store.membershipsOf(guest.user.id)).map((m) => m.org.id)).toEqual([guest.org.id, org.id])
          expect((yield* Effect.flip(store.acceptInvitation("inv-ok", guest.user.id)))._tag).toBe("InvitationUnusable")
        }))

      it.effect("a pending registration creates nothing until confirmed, once, with its own secret", () =>
        Effect.gen(function*() {
          const store = yield* AccountStore
          const email = unique("pending")
          const now = yield* Clock.currentTimeMillis
          yield* store.addPendingRegistration({ id: "reg1", hash: "secret-hash", email, name: "P", orgName: "P org", passwordHash: "hp", expiresAt: now + 60_000 })
          expect(Option.isNone(yield* store.findLogin(email))).toBe(true)
          expect((yield* Effect.flip(store.confirmRegistration("reg1", (h) => h === "wrong")))._tag).toBe("InvitationUnusable")
          const done = yield* store.confirmRegistration("reg1", (h) => h === "secret-hash")
          expect([done.user.email, done.org.name, done.role]).toEqual([email, "P org", "owner"])
          expect(Option.map(yield* store.findLogin(email), (l) => l.passwordHash)).toEqual(Option.some("hp"))
          expect((yield* Effect.flip(store.confirmRegistration("reg1", (h) => h === "secret-hash")))._tag).toBe("InvitationUnusable")
        }))

      it.effect("an organisation's apps and keys are invisible to another organisation", () =>
        Effect.gen(function*() {
          const store = yield* AccountStore
          const a = (yield* registerOwner("tenant-a")).org.id
          const b = (yield* registerOwner("tenant-b")).org.id
          const app = yield* newApp(a)
          expect(app.id).toMatch(/^app_[0-9a-f]{16}$/)
          const key = yield* store.addApiKey(a, app.id, { id: `key-${app.id}`, prefix: "sk_abc", hash: "kh" })

          const failures = yield* Effect.all([
            Effect.flip(store.getApp(b, app.id)),
            Effect.flip(store.updateApp(b, app.id, { name: "stolen" })),
            Effect.flip(store.deleteApp(b, app.id)),
            Effect.flip(store.listApiKeys(b, app.id)),
            Effect.flip(store.revokeApiKey(b, app.id, key.id)),
            Effect.flip(store.addApiKey(b, app.id, { id: `key2-${app.id}`, prefix: "sk", hash: "h" }))
          ])
          expect(failures.map((e) => e._tag)).toEqual(Array(6).fill("NotFound"))
          expect(yield* store.listApps(b)).toEqual([])
          expect(yield* store.listApps(a)).toEqual([yield* store.getApp(a, app.id)])
          const stillThere = yield* store.getApp(a, app.id)
          expect([stillThere.name, stillThere.allowList, stillThere.limits]).toEqual([
            "sender",
            ["10.0.0.0/8"],
            { perSecond: 5 }
          ])
          expect((yield* store.listApiKeys(a, app.id)).map((k) => k.revokedAt)).toEqual([null])
          // Another org's app id under one's own org is as unknown as a made-up one.
          const own = yield* newApp(b)
          expect((yield* Effect.flip(store.revokeApiKey(b, own.id, key.id)))._tag).toBe("NotFound")
        }))

      it.effect("updateApp patches only the given fields", () =>
        Effect.gen(function*() {
          const store = yield* AccountStore
          const { org } = yield* registerOwner("patcher")
          const app = yield* newApp(org.id)
          const { app: paused } = yield* store.updateApp(org.id, app.id, { active: false, allowList: [] })
          expect([paused.name, paused.active, paused.allowList, paused.limits]).toEqual(["sender", false, [], { perSecond: 5 }])
          const { app: renamed } = yield* store.updateApp(org.id, app.id, { name: "renamed", limits: { perDay: 1000, burst: 3 } })
          expect([renamed.name, renamed.active, renamed.limits]).toEqual(["renamed", false, { perDay: 1000, burst: 3 }])
          expect(Option.map(yield* store.findAppById(app.id), (x) => x.name)).toEqual(Option.some("renamed"))
          // The default message class is stored, kept by other patches, and changed by its own.
          expect([app.messageClass, paused.messageClass, renamed.messageClass]).toEqual(["promotional", "promotional", "promotional"])
          const { app: transactional } = yield* store.updateApp(org.id, app.id, { messageClass: "transactional" })
          expect(Option.map(yield* store.findAppById(app.id), (x) => x.messageClass)).toEqual(Option.some(transactional.messageClass))
          expect(transactional.messageClass).toBe("transactional")
        }))

      it.effect("the last owner can be neither removed nor demoted", () =>
        Effect.gen(function*() {
          const store = yield* AccountStore
          const { org, user } = yield* registerOwner("owner")
          const demote = yield* Effect.flip(store.updateMemberRole(org.id, user.id, "admin"))
          const remove = yield* Effect.flip(store.removeMember(org.id, user.id))
          expect([demote._tag, remove._tag]).toEqual(["LastOwner", "LastOwner"])

          const now = yield* Clock.currentTimeMillis
          yield* store.createInvitation(org.id, { id: `inv-${org.id}`, hash: "h", email: unique("second"), role: "admin", invitedBy: user.id, expiresAt: now + 60_000 })
          const invitee = (yield* store.listInvitations(org.id))[0]!
          const second = { userId: (yield* store.register({ email: invitee.email, name: "S", passwordHash: "h", orgName: "x", invitationId: invitee.id })).user.id }
          expect((yield* store.updateMemberRole(org.id, second.userId, "owner")).role).toBe("owner")
          expect((yield* store.updateMemberRole(org.id, user.id, "viewer")).role).toBe("viewer")
          expect((yield* Effect.flip(store.removeMember(org.id, second.userId)))._tag).toBe("LastOwner")
          yield* store.removeMember(org.id, user.id)
          expect(Option.isNone(yield* store.getMember(org.id, user.id))).toBe(true)
          expect((yield* Effect.flip(store.removeMember(org.id, user.id)))._tag).toBe("NotFound")
          expect((yield* Effect.flip(store.updateMemberRole(org.id, user.id, "admin")))._tag).toBe("NotFound")
        }))

      it.effect("a revoked key stays listed with its revocation; lookups report it", () =>
        Effect.gen(function*() {
          const store = yield* AccountStore
          const { org } = yield* registerOwner("keys")
          const app = yield* newApp(org.id)
          const id = `key-${app.id}`
          yield* store.addApiKey(org.id, app.id, { id, prefix: "sk_live_ab", hash: "secret-hash" })
          yield* store.touchApiKey(id, 1_700_000_000_000)
          const found = Option.getOrThrow(yield* store.findApiKey(id))
          expect([found.orgId, found.hash, found.appActive, found.appDeleted, found.key.lastUsedAt]).toEqual([
            org.id,
            "secret-hash",
            true,
            false,
            1_700_000_000_000
          ])
          const revoked = yield* store.revokeApiKey(org.id, app.id, id)
          expect(revoked.revokedAt).not.toBeNull()
          expect((yield* store.revokeApiKey(org.id, app.id, id)).revokedAt).toBe(revoked.revokedAt)
          expect((yield* store.listApiKeys(org.id, app.id)).map((k) => [k.id, k.prefix, k.revokedAt])).toEqual([
            [id, "sk_live_ab", revoked.revokedAt]
          ])
          expect(Option.map(yield* store.findApiKey(id), (k) => k.key.revokedAt)).toEqual(Option.some(revoked.revokedAt))
          expect(Option.isNone(yield* store.findApiKey("key-unknown"))).toBe(true)
          expect((yield* Effect.flip(store.revokeApiKey(org.id, app.id, "key-unknown")))._tag).toBe("NotFound")
        }))

      it.effect("a deleted app is gone everywhere and its keys show it", () =>
        Effect.gen(function*() {
          const store = yield* AccountStore
          const { org } = yield* registerOwner("deleter")
          const app = yield* newApp(org.id)
          const id = `key-${app.id}`
          yield* store.addApiKey(org.id, app.id, { id, prefix: "sk", hash: "h" })
          yield* store.deleteApp(org.id, app.id)
          const found = Option.getOrThrow(yield* store.findApiKey(id))
          expect(found.appDeleted).toBe(true)
          expect(found.key.revokedAt).not.toBeNull()
          expect(Option.isNone(yield* store.findAppById(app.id))).toBe(true)
          expect(yield* store.listApps(org.id)).toEqual([])
          const failures = yield* Effect.all([
            Effect.flip(store.getApp(org.id, app.id)),
            Effect.flip(store.updateApp(org.id, app.id, { active: true })),
            Effect.flip(store.deleteApp(org.id, app.id)),
            Effect.flip(store.listApiKeys(org.id, app.id))
          ])
          expect(failures.map((e) => e._tag)).toEqual(["NotFound", "NotFound", "NotFound", "NotFound"])
        }))

      it.effect("a refresh token is revoked once, with its replacement; a user's tokens all at once", () =>
        Effect.gen(function*() {
          const store = yield* AccountStore
          const { org, user } = yield* registerOwner("refresh")
          const id = `rt-${user.id}`
          yield* store.addRefreshToken({ id, userId: user.id, orgId: org.id, hash: "rh", expiresAt: 2_000_000_000_000 })
          expect(yield* store.findRefreshToken(id)).toEqual(Option.some({
            id,
            userId: user.id,
            orgId: org.id,
            hash: "rh",
            expiresAt: 2_000_000_000_000,
            revokedAt: null
          }))
          expect(yield* store.revokeRefreshToken(id, `${id}-next`)).toBe(true)
          expect(yield* store.revokeRefreshToken(id)).toBe(false)
          expect(Option.map(yield* store.findRefreshToken(id), (t) => t.revokedAt !== null)).toEqual(Option.some(true))

          const others = [`${id}-a`, `${id}-b`]
          yield* Effect.forEach(others, (other) =>
            store.addRefreshToken({ id: other, userId: user.id, orgId: org.id, hash: "h", expiresAt: 2_000_000_000_000 }))
          yield* store.revokeRefreshTokensOfUser(user.id)
          const states = yield* Effect.forEach(others, (other) => store.findRefreshToken(other))
          expect(states.map((t) => Option.map(t, (x) => x.revokedAt !== null))).toEqual([Option.some(true), Option.some(true)])
          expect(Option.isNone(yield* store.findRefreshToken("rt-unknown"))).toBe(true)
        }))

      it.effect("the audit log lists an organisation's entries newest first, paged by time", () =>
        Effect.gen(function*() {
          const store = yield* AccountStore
          const a = (yield* registerOwner("audit-a")).org.id
          const b = (yield* registerOwner("audit-b")).org.id
          const entry = (orgId: string, action: string, at: number) =>
            store.audit({ orgId, actorUserId: null, actorAppId: null, action, target: "t", ip: "127.0.0.1", at, detail: null })
          yield* entry(a, "first", 1000)
          yield* entry(a, "third", 3000)
          yield* entry(b, "other", 2500)
          yield* entry(a, "second", 2000)
          expect((yield* store.listAudit(a, { limit: 10 })).map((e) => e.action)).toEqual(["third", "second", "first"])
          expect((yield* store.listAudit(a, { limit: 2 })).map((e) => [e.action, e.at])).toEqual([
            ["third", 3000],
            ["second", 2000]
          ])
          expect((yield* store.listAudit(a, { limit: 10, before: { at: 2000 } })).map((e) => e.action)).toEqual(["first"])
          const [other] = yield* store.listAudit(b, { limit: 10 })
          expect(other).toMatchObject({ orgId: b, action: "other", ip: "127.0.0.1", target: "t", actorUserId: null })
          expect(other?.id).toMatch(/^aud_/)
        }))

      it.effect("the audit log filters by action, actor, target and time within the organisation; pages never skip a tie", () =>
        Effect.gen(function*() {
          const store = yield* AccountStore
          const a = (yield* registerOwner("filter-a")).org.id
          const b = (yield* registerOwner("filter-b")).org.id
          const entry = (orgId: string, action: string, at: number, who: { user?: string; app?: string }, target: string | null) =>
            store.audit({
              orgId,
              actorUserId: who.user ?? null,
              actorAppId: who.app ?? null,
              action,
              target,
              ip: "127.0.0.1",
              at,
              detail: `${action}@${at}`
            })
          yield* entry(a, "app.created", 1000, { user: "usr_ann" }, "app_1")
          yield* entry(a, "api_key.created", 2000, { user: "usr_ann" }, "app_1/key_1")
          // Seven entries in one millisecond: a page boundary falls between them.
          for (let i = 0; i < 7; i++) yield* entry(a, i % 2 === 0 ? "member.role_changed" : "login", 3000, { user: "usr_bob" }, `usr_${i}`)
          yield* entry(a, "app.login.failed", 4000, { app: "app_1" }, "app_1")
          yield* entry(a, "member.role_changed", 5000, { user: "usr_ann" }, "usr_bob")
          // The other organisation's entries match every filter below and never show.
          yield* entry(b, "member.role_changed", 3000, { user: "usr_bob" }, "usr_0")
          yield* entry(b, "app.created", 1000, { user: "usr_ann" }, "app_1")

          const details = (query: Parameters<typeof store.listAudit>[1]) =>
            Effect.map(store.listAudit(a, query), (entries) => entries.map((e) => e.detail))
          const all = yield* store.listAudit(a, { limit: 100 })
          expect(all.length).toBe(11)
          expect(all.map((e) => e.at)).toEqual([5000, 4000, 3000, 3000, 3000, 3000, 3000, 3000, 3000, 2000, 1000])

          // Paging by (at, id) in pages of 2 reads every entry once, in the same order.
          const paged: Array<string> = []
          let before: { at: number; id: string } | undefined
          for (let page = 0; page < 10; page++) {
            const entries = yield* store.listAudit(a, { limit: 2, ...(before !== undefined ? { before } : {}) })
            paged.push(...entries.map((e) => e.id))
            const last = entries.at(-1)
            if (entries.length < 2 || last === undefined) break
            before = { at: last.at, id: last.id }
          }
          expect(paged).toEqual(all.map((e) => e.id))
          // The time-only cursor skips the rest of the millisecond it stopped in (why beforeId exists).
          expect((yield* store.listAudit(a, { limit: 100, before: { at: 3000 } })).map((e) => e.at)).toEqual([2000, 1000])

          expect(yield* details({ limit: 100, action: "member.role_changed" })).toEqual([
            "member.role_changed@5000",
            ...all.filter((e) => e.action === "member.role_changed" && e.at === 3000).map((e) => e.detail)
          ])
          expect(yield* details({ limit: 100, actorUserId: "usr_ann" })).toEqual([
            "member.role_changed@5000",
            "api_key.created@2000",
            "app.created@1000"
          ])
          expect(yield* details({ limit: 100, actorAppId: "app_1" })).toEqual(["app.login.failed@4000"])
          expect(yield* details({ limit: 100, target: "app_1" })).toEqual(["app.login.failed@4000", "app.created@1000"])
          // since and until are inclusive; filters combine.
          expect(yield* details({ limit: 100, since: 2000, until: 4000, actorUserId: "usr_ann" })).toEqual(["api_key.created@2000"])
          expect((yield* store.listAudit(a, { limit: 100, since: 3000, until: 3000 })).length).toBe(7)
          expect(yield* details({ limit: 100, action: "member.role_changed", actorUserId: "usr_bob", target: "usr_2" }))
            .toEqual(["member.role_changed@3000"])
          // Filters paged: the same-millisecond entries of one action, two at a time.
          const first = yield* store.listAudit(a, { limit: 2, action: "login" })
          const last = first.at(-1)
          expect(first.map((e) => e.at)).toEqual([3000, 3000])
          const rest = last === undefined ? [] : yield* store.listAudit(a, { limit: 10, action: "login", before: { at: last.at, id: last.id } })
          expect([...first, ...rest].map((e) => e.id)).toEqual(all.filter((e) => e.action === "login").map((e) => e.id))
          // Values are parameters, never SQL.
          expect(yield* details({ limit: 100, action: "x' OR '1'='1" })).toEqual([])
          expect(yield* details({ limit: 100, target: "app_1' OR 1=1 --" })).toEqual([])

          expect(yield* store.auditActions(a, 100)).toEqual([
            "api_key.created",
            "app.created",
            "app.login.failed",
            "login",
            "member.role_changed"
          ])
          expect(yield* store.auditActions(a, 2)).toEqual(["api_key.created", "app.created"])
          expect(yield* store.auditActions(b, 100)).toEqual(["app.created", "member.role_changed"])
          expect(yield* store.auditActions("org_none", 100)).toEqual([])
        }))

      it.effect("the signing key is created once and then always the same", () =>
        Effect.gen(function*() {
          const store = yield* AccountStore
          const keys = yield* Effect.all([store.signingKey, store.signingKey, store.signingKey], { concurrency: 3 })
          const first = keys[0]
          expect(first?.kid).toMatch(/^k\d{8}T\d{6}Z$/)
          expect(Buffer.from(first?.secret ?? "", "base64url").length).toBeGreaterThanOrEqual(32)
          expect(keys).toEqual([first, first, first])
          expect(yield* store.signingKey).toEqual(first)
        }))

      it.effect("ensureSuperadmin creates the operator once and promotes an existing user", () =>
        Effect.gen(function*() {
          const store = yield* AccountStore
          const email = unique("root")
          const created = yield* store.ensureSuperadmin({ email, name: "Root", passwordHash: "rh" })
          expect([created.superadmin, created.registered]).toEqual([true, true])
          const memberships = yield* store.membershipsOf(created.id)
          expect(memberships.map((m) => [m.org.name, m.role])).toEqual([["Operators", "owner"]])
          const again = yield* store.ensureSuperadmin({ email: email.toUpperCase(), name: "Root", passwordHash: "other" })
          expect(again).toEqual(created)
          expect((yield* store.membershipsOf(created.id)).length).toBe(1)
          expect(Option.map(yield* store.findLogin(email), (l) => l.passwordHash)).toEqual(Option.some("rh"))

          const { user } = yield* registerOwner("promoted")
          const promoted = yield* store.ensureSuperadmin({ email: user.email, name: "x", passwordHash: "new" })
          expect([promoted.id, promoted.superadmin]).toEqual([user.id, true])
          expect(Option.map(yield* store.findLogin(user.email), (l) => l.passwordHash)).toEqual(Option.some("hash-promoted"))
        }))
    })
  })

suite("SQLite (node:sqlite)", sqliteLayer)
suite("PostgreSQL", pgLayer)

describe("AccountStore failures", () => {
  const cases = [
    { name: "SQLite", database: sqliteLayer, said: "no such table: users" },
    { name: "PostgreSQL", database: pgLayer, said: 'relation "users" does not exist' }
  ]
  for (const { database, name, said } of cases) {
    it.effect(`on ${name}, a StoreFailure keeps the SqlError and says what the database said`, () =>
      Effect.gen(function*() {
        const store = yield* AccountStore
        const sql = yield* SqlClient.SqlClient
        yield* sql`DROP TABLE users CASCADE`.pipe(Effect.catch(() => sql`DROP TABLE users`))
        const error = yield* Effect.flip(store.getUser("usr_0000000000000000"))
        expect(error._tag).toBe("StoreFailure")
        if (error._tag !== "StoreFailure") return
        expect(SqlError.isSqlError(error.cause)).toBe(true)
        expect(error.message).toContain(said)
      }).pipe(
        Effect.provide(AccountStore.layer.pipe(
          Layer.provideMerge(Layer.effectDiscard(Effect.orDie(migrate))),
          Layer.provideMerge(database)
        ))
      ), 60_000)
  }
})
