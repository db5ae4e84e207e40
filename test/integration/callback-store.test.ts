/**
 * CallbackStore on both dialects: only a message's oldest pending row is claimed (in order per message), claims are
 * leases that two claimers never share, failures reschedule and dead rows unblock the next move, the app's secrets
 * come with each row, the per-app cap holds, and the API's list and replay never cross an organisation or an app.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { migrate } from "../../src/layers/Migrations.ts"
import { CallbackStore } from "../../src/storage/CallbackStore.ts"
import { clearOutbox, outbox, queueCallback, seedApp, seedMessage } from "../fixtures/Callbacks.ts"
import { pgLayer, sqliteLayer } from "../fixtures/Databases.ts"

const t0 = 1_800_000_000_000
const url = "https://receiver.example.com/hook"
const claim = { limit: 50, perApp: 10, leaseUntil: t0 + 60_000 }

const suite = (name: string, database: Layer.Layer<SqlClient.SqlClient>) =>
  describe(`CallbackStore on ${name}`, () => {
    const TestStore = CallbackStore.layer.pipe(
      Layer.provideMerge(Layer.effectDiscard(Effect.orDie(migrate))),
      Layer.provideMerge(database)
    )
    it.layer(TestStore, { timeout: 60_000 })((it) => {
      it.effect("in order per message: only the oldest pending row is claimed; the next one once it is delivered or dead", () =>
        Effect.gen(function*() {
          yield* clearOutbox
          const store = yield* CallbackStore
          yield* seedApp({ orgId: "org_o", appId: "app_o", secret: "s1" })
          for (const id of ["m1", "m2"]) yield* seedMessage({ id, orgId: "org_o", appId: "app_o" })
          const q = (messageId: string, status: "queued" | "submitted" | "delivered", at: number) =>
            queueCallback({ messageId, orgId: "org_o", appId: "app_o", url, status, createdAt: at })
          const m1a = yield* q("m1", "queued", t0)
          const m1b = yield* q("m1", "submitted", t0 + 1)
          const m1c = yield* q("m1", "delivered", t0 + 2)
          const m2a = yield* q("m2", "queued", t0 + 3)

          const first = yield* store.due(t0 + 10, claim)
          expect(first.map((r) => r.id)).toEqual([m1a.id, m2a.id])
          expect(first[0]).toMatchObject({ messageId: "m1", orgId: "org_o", appId: "app_o", url, body: m1a.body, attempts: 0, createdAt: t0, secrets: ["s1"], appGone: false })
          // Leased: not handed out again, and m1's later moves still wait behind its first.
          expect(yield* store.due(t0 + 20, claim)).toEqual([])

          yield* store.delivered([m1a.id])
          expect((yield* store.due(t0 + 30, claim)).map((r) => r.id)).toEqual([m1b.id])
          // A failure reschedules it and keeps the order: m1's third move waits while its second is retried.
          yield* store.failed(m1b.id, { attempts: 1, nextAt: t0 + 5_000, error: "HTTP 503", status: 503 })
          expect(yield* store.due(t0 + 40, claim)).toEqual([])
          const retried = yield* store.due(t0 + 5_000, claim)
          expect(retried.map((r) => [r.id, r.attempts])).toEqual([[m1b.id, 1]])
          // Dead: the next move is free to go.
          yield* store.dead(m1b.id, { attempts: 2, at: t0 + 6_000, error: "HTTP 503", status: 503 })
          expect((yield* store.due(t0 + 6_000, claim)).map((r) => r.id)).toEqual([m1c.id])
          const rows = yield* outbox
          expect(rows.find((r) => r.id === m1b.id)).toMatchObject({ state: "dead", attempts: 2, lastError: "HTTP 503", lastStatus: 503 })
          expect(rows.some((r) => r.id === m1a.id)).toBe(false)
        }))

      it.effect("due selection: not before next_at, oldest due first, a lease that runs out, at most `limit` and `perApp`, busy apps skipped", () =>
        Effect.gen(function*() {
          yield* clearOutbox
          const store = yield* CallbackStore
          yield* seedApp({ orgId: "org_d", appId: "app_d1", secret: "s" })
          yield* seedApp({ orgId: "org_d", appId: "app_d2", secret: "s" })
          const base = t0 + 1_000_000
          const queued: Array<{ app: string; id: number }> = []
          for (let i = 0; i < 6; i++) {
            const app = i < 4 ? "app_d1" : "app_d2"
            yield* seedMessage({ id: `d${i}`, orgId: "org_d", appId: app })
            const row = yield* queueCallback({ messageId: `d${i}`, orgId: "org_d", appId: app, url, status: "delivered", createdAt: base + i, nextAt: base + 100 - i })
            queued.push({ app, id: row.id })
          }
          yield* seedMessage({ id: "later", orgId: "org_d", appId: "app_d2" })
          const later = yield* queueCallback({ messageId: "later", orgId: "org_d", appId: "app_d2", url, status: "delivered", createdAt: base, nextAt: base + 10_000 })
          const at = base + 200
          // Two of each app, oldest due (smallest next_at) first.
          const capped = yield* store.due(at, { limit: 10, perApp: 2, leaseUntil: at + 1_000 })
          expect(capped.map((r) => r.id)).toEqual([queued[5]!.id, queued[4]!.id, queued[3]!.id, queued[2]!.id].sort((a, b) => a - b))
          // app_d2 is busy: none of its rows; the rest of app_d1's.
          const skipping = yield* store.due(at, { limit: 10, perApp: 10, leaseUntil: at + 1_000, skipApps: ["app_d2"] })
          expect(skipping.map((r) => r.id)).toEqual([queued[0]!.id, queued[1]!.id])
          expect(yield* store.due(at, { limit: 10, perApp: 10, leaseUntil: at + 1_000 })).toEqual([])
          // The leases run out: everything comes back (a deliverer that died), at most `limit`; `later` only at its time.
          const again = yield* store.due(at + 1_000, { limit: 3, perApp: 10, leaseUntil: at + 2_000 })
          expect(again.length).toBe(3)
          expect(again.some((r) => r.id === later.id)).toBe(false)
          // Those leases run out too by `later`'s time: everything is due again.
          const rest = yield* store.due(at + 10_000, { limit: 10, perApp: 10, leaseUntil: at + 20_000 })
          expect(rest.map((r) => r.id)).toEqual([...queued.map((q) => q.id), later.id].sort((a, b) => a - b))
          // Given back unused: due again at once.
          yield* store.release(rest.map((r) => r.id), at + 10_001)
          expect((yield* store.due(at + 10_001, { limit: 10, perApp: 10, leaseUntil: at + 20_000 })).length).toBe(rest.length)
        }))

      it.effect("two claimers at once never take the same row", () =>
        Effect.gen(function*() {
          yield* clearOutbox
          const store = yield* CallbackStore
          yield* seedApp({ orgId: "org_c", appId: "app_c", secret: "s" })
          const base = t0 + 2_000_000
          for (let i = 0; i < 40; i++) {
            yield* seedMessage({ id: `c${i}`, orgId: "org_c", appId: "app_c" })
            yield* queueCallback({ messageId: `c${i}`, orgId: "org_c", appId: "app_c", url, status: "delivered", createdAt: base })
          }
          const options = { limit: 15, perApp: 100, leaseUntil: base + 60_000 }
          const claims = yield* Effect.all(Array.from({ length: 4 }, () => store.due(base + 1, options)), { concurrency: 4 })
          const ids = claims.flatMap((c) => c.map((r) => r.id))
          expect(new Set(ids).size).toBe(ids.length)
          expect(ids.length).toBe(40)
        }))

      it.effect("each row comes with its app's secrets in force: the previous one while its grace lasts; none; a deleted app is gone", () =>
        Effect.gen(function*() {
          yield* clearOutbox
          const store = yield* CallbackStore
          const base = t0 + 3_000_000
          yield* seedApp({ orgId: "org_s", appId: "app_rotated", secret: "new", previous: { secret: "old", until: base + 500 } })
          yield* seedApp({ orgId: "org_s", appId: "app_unsigned" })
          yield* seedApp({ orgId: "org_s", appId: "app_deleted", secret: "x" })
          for (const app of ["app_rotated", "app_unsigned", "app_deleted"]) {
            yield* seedMessage({ id: `s_${app}`, orgId: "org_s", appId: app })
            yield* queueCallback({ messageId: `s_${app}`, orgId: "org_s", appId: app, url, status: "delivered", createdAt: base })
          }
          const sql = yield* SqlClient.SqlClient
          yield* sql`UPDATE apps SET deleted_at = ${base} WHERE id = 'app_deleted'`.pipe(Effect.orDie)
          const during = yield* store.due(base + 100, { limit: 10, perApp: 10, leaseUntil: base + 200 })
          const by = (rows: typeof during) => Object.fromEntries(rows.map((r) => [r.appId, { secrets: r.secrets, gone: r.appGone }]))
          expect(by(during)).toEqual({
            app_rotated: { secrets: ["new", "old"], gone: false },
            app_unsigned: { secrets: [], gone: false },
            app_deleted: { secrets: ["x"], gone: true }
          })
          const after = yield* store.due(base + 600, { limit: 10, perApp: 10, leaseUntil: base + 700 })
          expect(by(after).app_rotated).toEqual({ secrets: ["new"], gone: false })
        }))

      it.effect("list and replay are by organisation and app: failing and dead, newest first, paged; nobody else's requeued", () =>
        Effect.gen(function*() {
          yield* clearOutbox
          const store = yield* CallbackStore
          const base = t0 + 4_000_000
          yield* seedApp({ orgId: "org_a", appId: "app_a", secret: "s" })
          yield* seedApp({ orgId: "org_a", appId: "app_a2", secret: "s" })
          yield* seedApp({ orgId: "org_b", appId: "app_b", secret: "s" })
          const make = (app: string, org: string, n: number) =>
            Effect.forEach(Array.from({ length: n }, (_, i) => i), (i) =>
              Effect.gen(function*() {
                yield* seedMessage({ id: `${app}_${i}`, orgId: org, appId: app })
                return yield* queueCallback({ messageId: `${app}_${i}`, orgId: org, appId: app, url, status: "delivered", createdAt: base })
              }))
          const a = yield* make("app_a", "org_a", 5)
          const a2 = yield* make("app_a2", "org_a", 1)
          const b = yield* make("app_b", "org_b", 2)
          // app_a: 0 and 1 dead, 2 and 3 failing, 4 never tried (not listed). The others: all dead.
          for (const row of [a[0]!, a[1]!, a2[0]!, b[0]!, b[1]!]) yield* store.dead(row.id, { attempts: 3, at: base + 10, error: "HTTP 500", status: 500 })
          for (const row of [a[2]!, a[3]!]) yield* store.failed(row.id, { attempts: 1, nextAt: base + 1_000, error: "HTTP 503", status: 503 })

          const ids = (rows: ReadonlyArray<{ readonly id: number }>) => rows.map((r) => r.id)
          expect(ids(yield* store.list("org_a", "app_a", { limit: 10 }))).toEqual([a[3]!.id, a[2]!.id, a[1]!.id, a[0]!.id])
          expect(ids(yield* store.list("org_a", "app_a", { state: "dead", limit: 10 }))).toEqual([a[1]!.id, a[0]!.id])
          const failing = yield* store.list("org_a", "app_a", { state: "failing", limit: 10 })
          expect(failing.map((r) => [r.id, r.state, r.attempts, r.lastError, r.lastStatus, r.nextAt])).toEqual([
            [a[3]!.id, "pending", 1, "HTTP 503", 503, base + 1_000],
            [a[2]!.id, "pending", 1, "HTTP 503", 503, base + 1_000]
          ])
          // Paged by the last id.
          const page1 = yield* store.list("org_a", "app_a", { limit: 3 })
          const page2 = yield* store.list("org_a", "app_a", { limit: 3, cursor: page1.at(-1)!.id })
          expect([...ids(page1), ...ids(page2)]).toEqual([a[3]!.id, a[2]!.id, a[1]!.id, a[0]!.id])
          // Another organisation naming this app, or this organisation naming another's app: nothing.
          expect(yield* store.list("org_b", "app_a", { limit: 10 })).toEqual([])
          expect(yield* store.list("org_a", "app_b", { limit: 10 })).toEqual([])
          expect(yield* store.replay("org_b", "app_a", { _tag: "Ids", ids: ids(a) }, base + 100)).toBe(0)
          expect(yield* store.replay("org_b", "app_b", { _tag: "Ids", ids: ids(a) }, base + 100)).toBe(0)

          // By id: the dead and failing ones of the app only (not the untried one, not another app's).
          expect(yield* store.replay("org_a", "app_a", { _tag: "Ids", ids: [a[0]!.id, a[2]!.id, a[4]!.id, b[0]!.id, 999_999] }, base + 100)).toBe(2)
          const rows = yield* outbox
          const row = (id: number) => rows.find((r) => r.id === id)
          expect(row(a[0]!.id)).toMatchObject({ state: "pending", attempts: 0, nextAt: base + 100, createdAt: base + 100 })
          expect(row(a[2]!.id)).toMatchObject({ state: "pending", attempts: 0, nextAt: base + 100 })
          expect(row(b[0]!.id)).toMatchObject({ state: "dead" })
          // Every dead one of the app: a[1] only now; app_a2's stays dead.
          expect(yield* store.replay("org_a", "app_a", { _tag: "AllDead" }, base + 200)).toBe(1)
          expect(yield* store.list("org_a", "app_a", { state: "dead", limit: 10 })).toEqual([])
          expect(ids(yield* store.list("org_a", "app_a2", { state: "dead", limit: 10 }))).toEqual([a2[0]!.id])
          expect(ids(yield* store.list("org_b", "app_b", { state: "dead", limit: 10 }))).toEqual([b[1]!.id, b[0]!.id])
        }))

      it.effect("the backlog: rows due now, and since when", () =>
        Effect.gen(function*() {
          yield* clearOutbox
          const store = yield* CallbackStore
          const before = yield* store.backlog(t0)
          expect(before).toEqual({ due: 0, oldestDueAt: undefined })
          yield* seedApp({ orgId: "org_k", appId: "app_k", secret: "s" })
          yield* seedMessage({ id: "k1", orgId: "org_k", appId: "app_k" })
          yield* queueCallback({ messageId: "k1", orgId: "org_k", appId: "app_k", url, status: "delivered", createdAt: t0 - 50, nextAt: t0 - 50 })
          const after = yield* store.backlog(t0)
          expect(after).toEqual({ due: 1, oldestDueAt: t0 - 50 })
        }))

      it.effect("`smpp:` rows: never the HTTP deliverer's; the SMPP front's for the apps it names; dead once their window is over", () =>
        Effect.gen(function*() {
          yield* clearOutbox
          const store = yield* CallbackStore
          for (const appId of ["app_s1", "app_s2"]) yield* seedApp({ orgId: "org_s", appId, secret: "s" })
          yield* seedMessage({ id: "s1", orgId: "org_s", appId: "app_s1" })
          yield* seedMessage({ id: "s2", orgId: "org_s", appId: "app_s2" })
          yield* seedMessage({ id: "h1", orgId: "org_s", appId: "app_s1" })
          const s1 = yield* queueCallback({ messageId: "s1", orgId: "org_s", appId: "app_s1", url: "smpp:", status: "delivered", createdAt: t0 })
          const s2 = yield* queueCallback({ messageId: "s2", orgId: "org_s", appId: "app_s2", url: "smpp:", status: "delivered", createdAt: t0 - 10_000 })
          const h1 = yield* queueCallback({ messageId: "h1", orgId: "org_s", appId: "app_s1", url, status: "delivered", createdAt: t0 })

          expect((yield* store.due(t0 + 10, claim)).map((r) => r.id)).toEqual([h1.id])
          expect(yield* store.due(t0 + 10, { ...claim, smppApps: [] })).toEqual([])
          expect((yield* store.due(t0 + 10, { ...claim, smppApps: ["app_s1"] })).map((r) => r.id)).toEqual([s1.id])
          // app_s2 has no receiver anywhere: its row dies once it was queued before the window's start.
          expect(yield* store.expireSmpp(t0 - 5_000, t0 + 20)).toBe(1)
          const rows = yield* outbox
          expect(rows.find((r) => r.id === s2.id)).toMatchObject({ state: "dead" })
          expect(rows.find((r) => r.id === s1.id)).toMatchObject({ state: "pending" })
        }))
    })
  })

suite("SQLite", sqliteLayer)
suite("PostgreSQL", pgLayer)
