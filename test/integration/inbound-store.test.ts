/**
 * InboundStore on both dialects: parts kept in arrival order and found by their concatenation reference, a message
 * completed once even by two processors at once (the loser writes nothing), its callback claimable from the shared
 * outbox, listings that never cross an organisation or an app; and on SQLite, migration 0025's rebuild of the
 * callback outbox keeping its rows, ids and id sequence.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { Migrator, SqlClient } from "effect/sql"
import { join } from "node:path"
import { migrate, migrations } from "../../src/layers/Migrations.ts"
import { CallbackStore } from "../../src/storage/CallbackStore.ts"
import { InboundStore } from "../../src/storage/InboundStore.ts"
import type { NewInbound, RawInbound } from "../../src/storage/InboundStore.ts"
import { NodeSqliteClient } from "../../src/storage/NodeSqliteClient.ts"
import { queueCallback, seedApp, seedMessage } from "../fixtures/Callbacks.ts"
import { pgLayer, sqliteLayer, tempDir } from "../fixtures/Databases.ts"

const t0 = 1_800_000_000_000

const raw = (overrides: Partial<RawInbound> = {}): RawInbound => ({
  linkId: "sim",
  source: "4915112345678",
  destination: "12345",
  esmClass: 0,
  dataCoding: 0,
  payload: Buffer.from("hello"),
  receivedAt: t0,
  ...overrides
})

const message = (id: string, orgId: string, appId: string, overrides: Partial<NewInbound> = {}): NewInbound => ({
  id,
  orgId,
  appId,
  routeId: "r",
  linkId: "sim",
  from: "+4915112345678",
  to: "12345",
  text: `text of ${id}`,
  encoding: "gsm7",
  parts: 1,
  missingParts: 0,
  keyword: null,
  action: null,
  receivedAt: t0,
  ...overrides
})

const suite = (name: string, database: Layer.Layer<SqlClient.SqlClient>) =>
  describe(`InboundStore on ${name}`, () => {
    const TestStore = Layer.mergeAll(InboundStore.layer, CallbackStore.layer).pipe(
      Layer.provideMerge(Layer.effectDiscard(Effect.orDie(migrate))),
      Layer.provideMerge(database)
    )
    it.layer(TestStore, { timeout: 60_000 })((it) => {
      it.effect("parts in arrival order, siblings by reference; a completion deletes exactly its parts and writes the message and its callback", () =>
        Effect.gen(function*() {
          const store = yield* InboundStore
          const callbacks = yield* CallbackStore
          yield* seedApp({ orgId: "org_a", appId: "app_a", secret: "s1" })
          yield* store.receive(raw({ payload: Buffer.from("single") }))
          yield* store.receive(raw({ esmClass: 0x40, concat: { ref: 9, total: 2, seq: 2 }, payload: Buffer.from("two") }))
          yield* store.receive(raw({ source: "4915100000000", esmClass: 0x40, concat: { ref: 9, total: 2, seq: 1 } }))
          yield* store.receive(raw({ esmClass: 0x40, concat: { ref: 9, total: 2, seq: 1 }, payload: Buffer.from("one") }))
          const pending = yield* store.pending(10)
          expect(pending.map((p) => Buffer.from(p.payload).toString())).toEqual(["single", "two", "hello", "one"])
          const second = pending[1]!
          const siblings = yield* store.siblings(second)
          expect(siblings.map((p) => p.concat?.seq)).toEqual([2, 1])
          expect(siblings.every((p) => p.source === "4915112345678")).toBe(true)
          expect(yield* store.backlog).toEqual({ waiting: 4, oldestAt: t0 })

          const id = "0190f3a0-0000-7000-8000-000000000001"
          const done = yield* store.complete({
            rawIds: siblings.map((p) => p.id),
            messages: [message(id, "org_a", "app_a", { parts: 2 })],
            callbacks: [{ inboundId: id, orgId: "org_a", appId: "app_a", url: "https://r.example.com/mo", body: "{\"type\":\"message.received\"}" }],
            now: t0
          })
          expect(done).toBe(true)
          expect((yield* store.pending(10)).map((p) => Buffer.from(p.payload).toString())).toEqual(["single", "hello"])
          const due = yield* callbacks.due(t0 + 1, { limit: 10, perApp: 10, leaseUntil: t0 + 60_000 })
          expect(due).toHaveLength(1)
          expect(due[0]).toMatchObject({ messageId: null, inboundId: id, appId: "app_a", secrets: ["s1"] })
          yield* callbacks.delivered(due.map((d) => d.id))
        }))

      it.effect("two processors completing the same parts at once: one writes, the other writes nothing", () =>
        Effect.gen(function*() {
          const store = yield* InboundStore
          const sql = yield* SqlClient.SqlClient
          yield* sql`DELETE FROM inbound_raw`
          yield* store.receive(raw({ payload: Buffer.from("race") }))
          const [row] = yield* store.pending(1)
          const attempt = (n: number) =>
            store.complete({
              rawIds: [row!.id],
              messages: [message(`0190f3a0-0000-7000-8000-00000000010${n}`, "org_a", "app_a", { text: "race" })],
              callbacks: [],
              now: t0
            })
          const results = yield* Effect.all([attempt(1), attempt(2)], { concurrency: 2 })
          expect(results.filter(Boolean)).toHaveLength(1)
          const stored = yield* sql<{ n: number | string }>`SELECT COUNT(*) AS n FROM inbound_messages WHERE body = 'race'`
          expect(Number(stored[0]?.n)).toBe(1)
        }))

      it.effect("listings name the organisation (and an app token's app): another's message is not found", () =>
        Effect.gen(function*() {
          const store = yield* InboundStore
          const ids = ["0190f3a0-0000-7000-8000-000000000201", "0190f3a0-0000-7000-8000-000000000202", "0190f3a0-0000-7000-8000-000000000203"]
          yield* store.complete({
            rawIds: [],
            messages: [
              message(ids[0]!, "org_x", "app_x1"),
              message(ids[1]!, "org_x", "app_x2", { from: "+4915199999999" }),
              message(ids[2]!, "org_y", "app_y")
            ],
            callbacks: [],
            now: t0
          })
          expect((yield* store.list({ orgId: "org_x", limit: 10 })).map((m) => m.id)).toEqual([ids[1], ids[0]])
          expect((yield* store.list({ orgId: "org_x", appId: "app_x1", limit: 10 })).map((m) => m.id)).toEqual([ids[0]])
          expect((yield* store.list({ orgId: "org_x", from: "+4915199999999", limit: 10 })).map((m) => m.id)).toEqual([ids[1]])
          expect((yield* store.list({ orgId: "org_x", before: ids[1], limit: 10 })).map((m) => m.id)).toEqual([ids[0]])
          expect((yield* store.get("org_y", ids[0]!))._tag).toBe("None")
          expect((yield* store.get("org_x", ids[0]!, "app_x2"))._tag).toBe("None")
          expect((yield* store.get("org_x", ids[0]!, "app_x1"))._tag).toBe("Some")
        }))

      it.effect("the routing document: empty before the first change, then versioned", () =>
        Effect.gen(function*() {
          const store = yield* InboundStore
          expect(yield* store.document).toEqual({ version: 0, document: { routes: [] }, updatedAt: null })
          const doc = { routes: [{ id: "r", number: "12345", appId: "app_a" }] }
          expect((yield* store.saveDocument(doc, "usr_1", t0)).version).toBe(1)
          expect((yield* store.saveDocument({ routes: [] }, "usr_1", t0 + 1)).version).toBe(2)
          expect(yield* store.document).toEqual({ version: 2, document: { routes: [] }, updatedAt: t0 + 1 })
        }))
    })
  })

suite("SQLite", sqliteLayer)
suite("PostgreSQL", pgLayer)

describe("migration 0025 on SQLite", () => {
  it.effect("rebuilds the callback outbox keeping its rows, their ids and the id sequence", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const database = NodeSqliteClient.layer({ filename: join(dir, "upgrade.db") })
      yield* Effect.gen(function*() {
        const before = Object.fromEntries(
          Object.entries(yield* migrations).filter(([, [id]]) => id <= 24).map(([key, value]) => [key, value])
        )
        const toSchema24 = Migrator.make({})({ loader: Effect.succeed(Object.values(before)), table: "smsgw_migrations" })
        yield* toSchema24
        yield* seedApp({ orgId: "org_m", appId: "app_m", secret: "s" })
        yield* seedMessage({ id: "m1", orgId: "org_m", appId: "app_m" })
        const kept = yield* queueCallback({ messageId: "m1", orgId: "org_m", appId: "app_m", url: "https://r.example.com", status: "delivered", createdAt: t0 })
        const gone = yield* queueCallback({ messageId: "m1", orgId: "org_m", appId: "app_m", url: "https://r.example.com", status: "delivered", createdAt: t0 })
        const sql = yield* SqlClient.SqlClient
        yield* sql`DELETE FROM callback_outbox WHERE id = ${gone.id}`

        yield* migrate
        const rows = yield* sql<{ id: number; message_id: string; inbound_id: string | null }>`
          SELECT id, message_id, inbound_id FROM callback_outbox`
        expect(rows).toEqual([{ id: kept.id, message_id: "m1", inbound_id: null }])
        const next = yield* queueCallback({ messageId: "m1", orgId: "org_m", appId: "app_m", url: "https://r.example.com", status: "delivered", createdAt: t0 })
        expect(next.id).toBeGreaterThan(gone.id)
        // The cascade from messages still holds after the rebuild.
        yield* sql`DELETE FROM messages WHERE id = 'm1'`
        expect(yield* sql`SELECT id FROM callback_outbox`).toEqual([])
      }).pipe(Effect.provide(database), Effect.orDie)
    }).pipe(Effect.scoped), 60_000)
})
