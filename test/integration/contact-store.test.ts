import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Stream } from "effect"
import type { Duration } from "effect"
import { SqlClient } from "effect/sql"
import { migrate } from "../../src/layers/Migrations.ts"
import type { CampaignAction, CampaignState } from "../../src/domain/Campaign.ts"
import { CampaignStore } from "../../src/storage/CampaignStore.ts"
import { ContactStore } from "../../src/storage/ContactStore.ts"
import { newCampaign } from "../fixtures/Campaigns.ts"
import { eventually } from "../fixtures/Eventually.ts"
import { runningWorkers, workerScripts } from "../fixtures/Workers.ts"
import { pgLayer, sqliteLayer } from "../fixtures/Databases.ts"

const encoder = new TextEncoder()
const bytes = (...parts: ReadonlyArray<string>) => Stream.fromIterable(parts.map((p) => encoder.encode(p)))
const org = () => `org_${crypto.randomUUID().slice(0, 8)}`

const stagedRows = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  Effect.map(sql<{ readonly n: number | string }>`SELECT COUNT(*) AS n FROM contact_import_rows`, (rows) => Number(rows[0]?.n)))
const stages = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  Effect.map(sql<{ readonly n: number | string }>`SELECT COUNT(*) AS n FROM contact_imports`, (rows) => Number(rows[0]?.n)))

/** Everything a list holds, for comparing before and after a failed import. */
const snapshot = (orgId: string, id: string) =>
  Effect.gen(function*() {
    const store = yield* ContactStore
    const list = yield* store.getList(orgId, id)
    const contacts = yield* store.listContacts(orgId, id, { limit: 1000 })
    return { list, contacts }
  })


const realWorker = new URL("../../src/storage/ContactCsv.worker.ts", import.meta.url).href

/** CSV parser threads that fail, each a temporary .mjs file: the real worker dying mid-file, one out of heap, one stuck. */
const failingWorkers = workerScripts("smsgw-contact-csv-", {
  // The real parser, killed as the third chunk of the file reaches it.
  diesAtThirdChunk: `
    import { parentPort } from "node:worker_threads"
    let chunks = 0
    parentPort.on("message", (m) => { if (m._tag === "Chunk" && ++chunks === 3) process.exit(7) })
    await import(${JSON.stringify(realWorker)})`,
  outOfHeap: `
    import { parentPort } from "node:worker_threads"
    const kept = []
    parentPort.on("message", () => { for (;;) kept.push(new Array(100_000).fill(kept.length)) })`,
  answersGarbage: `
    import { parentPort } from "node:worker_threads"
    parentPort.on("message", () => parentPort.postMessage({ _tag: "Rows", batch: 42 }.batch))`,
  stuck: `
    import { parentPort } from "node:worker_threads"
    parentPort.on("message", () => {})`
})

const suite = (name: string, database: Layer.Layer<SqlClient.SqlClient>) =>
  describe(`ContactStore on ${name}`, () => {
    const TestStore = Layer.mergeAll(ContactStore.layer, CampaignStore.layer).pipe(
      Layer.provideMerge(Layer.effectDiscard(Effect.orDie(migrate))),
      Layer.provideMerge(database)
    )

    it.layer(TestStore, { timeout: 60_000, excludeTestServices: true })((it) => {
      it.effect("a CSV with quotes, a BOM and CRLF: duplicates collapse to the first, national numbers completed, invalid rows named by line", () =>
        Effect.gen(function*() {
          const store = yield* ContactStore
          const orgId = org()
          const list = yield* store.createList(orgId, { name: "Customers", defaultCountry: "de" })
          expect(list.defaultCountry).toBe("DE")
          const report = yield* store.importCsv(orgId, list.id, bytes(
            "\uFEFFName, Phone ,City\r\n",
            "\"Müller, Anna\",+4915112345678,Berlin\r\n",
            "Bob,0151 1234567",
            "9,\"Köln\"\r\n",
            "\"Say \"\"hi\"\"\",+4915112345678,Hamburg\r\n",
            "Eve,12,Bonn\r\n",
            "\r\n",
            "Zed,,Essen\r\n",
            "Kim,+447700900123\r\n",
            "Lou,004917612345678,München\r\n"
          ))
          expect(report).toEqual({
            rowsRead: 7,
            added: 3,
            duplicates: 1,
            completed: 1,
            invalid: 3,
            invalidRows: [
              { line: 5, value: "12", reason: "not a valid phone number" },
              { line: 7, value: "", reason: "no number" },
              { line: 8, value: "+447700900123", reason: "has 2 fields; the header has 3" }
            ],
            columns: ["name", "city"],
            phoneColumn: "phone"
          })
          const contacts = yield* store.listContacts(orgId, list.id, { limit: 10 })
          expect(contacts.map((c) => [c.msisdn, c.country, c.vars])).toEqual([
            ["4915112345678", "DE", { name: "Müller, Anna", city: "Berlin" }],
            ["4915112345679", "DE", { name: "Bob", city: "Köln" }],
            ["4917612345678", "DE", { name: "Lou", city: "München" }]
          ])
          expect(contacts.map((c) => c.pos)).toEqual([...contacts.map((c) => c.pos)].sort((a, b) => a - b))
          const stored = yield* store.getList(orgId, list.id)
          expect([stored.contacts, stored.columns]).toEqual([3, ["name", "city"]])
          expect(yield* stages).toBe(0)
        }))

      it.effect("a second import appends after the last position; numbers already listed keep their variables", () =>
        Effect.gen(function*() {
          const store = yield* ContactStore
          const orgId = org()
          const list = yield* store.createList(orgId, { name: "Two uploads" })
          yield* store.addContacts(orgId, list.id, [{ phone: "+4915112345678", vars: { First: "Ann" } }])
          const report = yield* store.importCsv(orgId, list.id, bytes("msisdn;plan\n+4915112345678;gold\n+4917612345678;silver\n"), {
            delimiter: ";"
          })
          expect([report.added, report.duplicates, report.phoneColumn]).toEqual([1, 1, "msisdn"])
          const contacts = yield* store.listContacts(orgId, list.id, { limit: 10 })
          expect(contacts.map((c) => [c.msisdn, c.vars])).toEqual([
            ["4915112345678", { first: "Ann" }],
            ["4917612345678", { plan: "silver" }]
          ])
          expect(contacts[1]!.pos).toBeGreaterThan(contacts[0]!.pos)
          expect((yield* store.getList(orgId, list.id)).columns).toEqual(["first", "plan"])
          const page = yield* store.listContacts(orgId, list.id, { after: contacts[0]!.pos, limit: 10 })
          expect(page.map((c) => c.msisdn)).toEqual(["4917612345678"])
        }))

      it.effect("JSON contacts: same report; without a default country a national number is invalid", () =>
        Effect.gen(function*() {
          const store = yield* ContactStore
          const orgId = org()
          const list = yield* store.createList(orgId, { name: "API" })
          const report = yield* store.addContacts(orgId, list.id, [
            { phone: "+4915112345678", vars: { " Name ": "A" } },
            { phone: "015112345678" },
            { phone: "+4915112345678" }
          ])
          expect(report).toEqual({
            rowsRead: 3,
            added: 1,
            duplicates: 1,
            completed: 0,
            invalid: 1,
            invalidRows: [{ line: 2, value: "015112345678", reason: "a national number, and the list has no default country to complete it" }],
            columns: ["name"]
          })
          yield* store.updateList(orgId, list.id, { defaultCountry: "DE" })
          const again = yield* store.addContacts(orgId, list.id, [{ phone: "015112345678" }])
          expect([again.added, again.completed]).toEqual([0, 1])
          expect((yield* Effect.flip(store.updateList(orgId, list.id, { defaultCountry: "XX" })))._tag).toBe("InvalidField")
        }))

      it.effect("the header: no phone column is refused naming phoneColumn; a named column is used; duplicates refused", () =>
        Effect.gen(function*() {
          const store = yield* ContactStore
          const orgId = org()
          const list = yield* store.createList(orgId, { name: "Headers" })
          const none = yield* Effect.flip(store.importCsv(orgId, list.id, bytes("name,city\nA,B\n")))
          expect(none).toMatchObject({ _tag: "InvalidField", field: "phoneColumn" })
          expect(none.message).toContain("[\"name\",\"city\"]")
          const named = yield* store.importCsv(orgId, list.id, bytes("name,cell\nA,+4915112345678\n"), { phoneColumn: "Cell" })
          expect([named.added, named.phoneColumn, named.columns]).toEqual([1, "cell", ["name"]])
          const twice = yield* Effect.flip(store.importCsv(orgId, list.id, bytes("phone,Name,name\n+4915112345678,a,b\n")))
          expect(twice).toMatchObject({ _tag: "InvalidField", field: "header" })
          const empty = yield* Effect.flip(store.importCsv(orgId, list.id, bytes("")))
          expect(empty).toMatchObject({ _tag: "InvalidField", field: "body" })
          expect((yield* store.getList(orgId, list.id)).contacts).toBe(1)
        }))

      it.effect("a failing upload leaves the list exactly as it was: malformed CSV, a body that fails, a storage error", () =>
        Effect.gen(function*() {
          const store = yield* ContactStore
          const sql = yield* SqlClient.SqlClient
          const orgId = org()
          const list = yield* store.createList(orgId, { name: "Atomic" })
          yield* store.addContacts(orgId, list.id, [{ phone: "+4915112345678", vars: { n: "1" } }])
          const before = yield* snapshot(orgId, list.id)
          const many = Array.from({ length: 1_200 }, (_, i) => `+4917${String(600000000 + i)},x\n`).join("")

          const unclosed = yield* Effect.flip(store.importCsv(orgId, list.id, bytes("phone,v\n", many, "+4917699999999,\"open\n")))
          expect(unclosed._tag).toBe("CsvMalformed")
          expect(yield* snapshot(orgId, list.id)).toEqual(before)

          const broken = bytes("phone,v\n", many).pipe(Stream.concat(Stream.fail("client went away" as const)))
          expect(yield* Effect.flip(store.importCsv(orgId, list.id, broken))).toBe("client went away")
          expect(yield* snapshot(orgId, list.id)).toEqual(before)

          // The merge fails after it took the list's row: its transaction rolls back.
          const renamesContacts = bytes("phone,v\n", many).pipe(
            Stream.concat(Stream.fromEffect(Effect.as(sql`ALTER TABLE contacts RENAME TO contacts_away`, encoder.encode("")))),
            Stream.orDie
          )
          const failed = yield* Effect.flip(store.importCsv(orgId, list.id, renamesContacts))
          yield* sql`ALTER TABLE contacts_away RENAME TO contacts`
          expect(failed._tag).toBe("StoreUnavailable")
          expect(yield* snapshot(orgId, list.id)).toEqual(before)
          expect([yield* stages, yield* stagedRows]).toEqual([0, 0])
        }))

      it.effect("an import interrupted mid-stream (the client gone) leaves nothing staged and the list unchanged", () =>
        Effect.gen(function*() {
          const store = yield* ContactStore
          const orgId = org()
          const list = yield* store.createList(orgId, { name: "Interrupted" })
          const before = yield* snapshot(orgId, list.id)
          const rows = Array.from({ length: 1_000 }, (_, i) => `+4917${String(600000000 + i)}\n`).join("")
          const fiber = yield* Effect.forkChild(store.importCsv(orgId, list.id, bytes("phone\n", rows).pipe(Stream.concat(Stream.never))))
          yield* eventually("rows staged", Effect.map(stagedRows, (n) => n >= 500))
          yield* Fiber.interrupt(fiber)
          expect([yield* stages, yield* stagedRows]).toEqual([0, 0])
          expect(yield* snapshot(orgId, list.id)).toEqual(before)
        }), { timeout: 30_000 })

      it.effect("a file larger than SQLite's merge slice (20,000 staged rows) is moved and its stage dropped whole", () =>
        Effect.gen(function*() {
          const store = yield* ContactStore
          const orgId = org()
          const list = yield* store.createList(orgId, { name: "Large" })
          yield* store.addContacts(orgId, list.id, [{ phone: "+4915112345678", vars: { n: "kept" } }])
          const rows = Array.from({ length: 45_000 }, (_, i) => `+4917${String(600000000 + i)},${i}\n`).join("")
          const report = yield* store.importCsv(orgId, list.id, bytes("phone,n\n", rows, "+4915112345678,again\n"))
          expect([report.rowsRead, report.added, report.duplicates]).toEqual([45_001, 45_000, 1])
          expect((yield* store.getList(orgId, list.id)).contacts).toBe(45_001)
          // Positions continue after the list's last (1): the file's line 45,001 is position 45,002.
          const last = yield* store.listContacts(orgId, list.id, { after: 45_001, limit: 10 })
          expect(last.map((c) => [c.pos, c.msisdn, c.vars.n])).toEqual([[45_002, "4917600044999", "44999"]])
          expect([yield* stages, yield* stagedRows]).toEqual([0, 0])
        }), { timeout: 30_000 })

      it.effect("the parser thread dying, out of heap, answering garbage or stuck fails the import: nothing imported, nothing staged, no thread left", () =>
        Effect.gen(function*() {
          const orgId = org()
          const list = yield* ContactStore.use((store) => store.createList(orgId, { name: "Worker" }))
          yield* ContactStore.use((store) => store.addContacts(orgId, list.id, [{ phone: "+4915112345678" }]))
          const before = yield* snapshot(orgId, list.id)
          const workers = yield* failingWorkers
          const threads = runningWorkers()
          const rows = (from: number) => Array.from({ length: 600 }, (_, i) => `+4917${String(600000000 + from + i)}\n`).join("")
          const importWith = (worker: URL, body: Stream.Stream<Uint8Array, never, SqlClient.SqlClient>, stallTimeout?: Duration.Input) =>
            Effect.flip(ContactStore.use((store) => store.importCsv(orgId, list.id, body)).pipe(
              Effect.provide(ContactStore.layerWith({ csvWorker: { worker, ...(stallTimeout !== undefined ? { stallTimeout } : {}) } }))
            ))

          // The third chunk is sent only once the first two chunks' rows are staged: the worker dies mid-import.
          const third = Stream.fromEffect(Effect.as(eventually("rows staged", Effect.map(stagedRows, (n) => n >= 1_000)), encoder.encode(rows(2_000))))
          const died = yield* importWith(workers.diesAtThirdChunk, bytes("phone\n", rows(0), rows(1_000)).pipe(Stream.concat(third)))
          expect(died).toMatchObject({ _tag: "ContactParseFailed", message: "the CSV parser thread exited (code 7) before the file's end" })
          expect(yield* snapshot(orgId, list.id)).toEqual(before)
          expect([yield* stages, yield* stagedRows]).toEqual([0, 0])

          const oom = yield* importWith(workers.outOfHeap, bytes("phone\n", rows(0)))
          expect(oom._tag).toBe("ContactParseFailed")
          expect(oom.message).toContain("memory limit")

          const garbage = yield* importWith(workers.answersGarbage, bytes("phone\n", rows(0)))
          expect(garbage).toMatchObject({ _tag: "ContactParseFailed", message: "the CSV parser thread answered nothing usable" })

          const stuck = yield* importWith(workers.stuck, bytes("phone\n", rows(0)), "300 millis")
          expect(stuck).toMatchObject({ _tag: "ContactParseFailed", message: "the CSV parser thread answered nothing for 300ms" })

          expect(yield* snapshot(orgId, list.id)).toEqual(before)
          expect([yield* stages, yield* stagedRows]).toEqual([0, 0])
          expect(runningWorkers()).toBe(threads)
          // The real worker imports again afterwards.
          const after = yield* ContactStore.use((store) => store.importCsv(orgId, list.id, bytes("phone\n", rows(0))))
          expect(after.added).toBe(600)
        }), { timeout: 30_000 })

      it.effect("other organisations' lists are not found, for every operation", () =>
        Effect.gen(function*() {
          const store = yield* ContactStore
          const owner = org()
          const other = org()
          const list = yield* store.createList(owner, { name: "Mine" })
          yield* store.addContacts(owner, list.id, [{ phone: "+4915112345678" }])
          const attempts = [
            store.getList(other, list.id),
            store.updateList(other, list.id, { name: "theirs" }),
            store.deleteList(other, list.id),
            store.addContacts(other, list.id, [{ phone: "+4917612345678" }]),
            store.importCsv(other, list.id, bytes("phone\n+4917612345678\n")),
            store.listContacts(other, list.id, { limit: 10 }),
            store.removeContact(other, list.id, "+4915112345678")
          ]
          for (const attempt of attempts) {
            expect(yield* Effect.flip(attempt as Effect.Effect<unknown, { readonly _tag: string }>)).toMatchObject({ _tag: "ListNotFound" })
          }
          expect(yield* store.listLists(other, { limit: 10 })).toEqual([])
          const mine = yield* store.getList(owner, list.id)
          expect([mine.name, mine.contacts]).toEqual(["Mine", 1])
        }))

      it.effect("remove a contact, rename, delete a list with its contacts", () =>
        Effect.gen(function*() {
          const store = yield* ContactStore
          const sql = yield* SqlClient.SqlClient
          const orgId = org()
          const list = yield* store.createList(orgId, { name: "Old" })
          yield* store.addContacts(orgId, list.id, [{ phone: "+4915112345678" }, { phone: "+4917612345678" }])
          yield* store.removeContact(orgId, list.id, "+4915112345678")
          expect((yield* Effect.flip(store.removeContact(orgId, list.id, "4915112345678")))._tag).toBe("ContactNotFound")
          const renamed = yield* store.updateList(orgId, list.id, { name: "New" })
          expect([renamed.name, renamed.contacts]).toEqual(["New", 1])
          expect((yield* store.listLists(orgId, { limit: 10 })).map((l) => [l.name, l.contacts])).toEqual([["New", 1]])
          yield* store.deleteList(orgId, list.id)
          expect((yield* Effect.flip(store.getList(orgId, list.id)))._tag).toBe("ListNotFound")
          const left = yield* sql<{ readonly n: number | string }>`SELECT COUNT(*) AS n FROM contacts WHERE list_id = ${list.id}`
          expect(Number(left[0]?.n)).toBe(0)
        }))

      it.effect("lists page newest first by (createdAt, id): none skipped or repeated within a millisecond", () =>
        Effect.gen(function*() {
          const store = yield* ContactStore
          const sql = yield* SqlClient.SqlClient
          const orgId = org()
          const lists = yield* Effect.forEach(["a", "b", "c", "d", "e"], (name) => store.createList(orgId, { name }))
          yield* store.createList(org(), { name: "another organisation's" })
          // Three in one millisecond, two in the one before: every page boundary of 2 falls inside a millisecond.
          yield* sql`UPDATE contact_lists SET created_at = 1000 WHERE id IN ${sql.in(lists.slice(0, 3).map((l) => l.id))}`
          yield* sql`UPDATE contact_lists SET created_at = 999 WHERE id IN ${sql.in(lists.slice(3).map((l) => l.id))}`
          const byId = (ids: ReadonlyArray<string>) => [...ids].sort().reverse()
          const expected = [...byId(lists.slice(0, 3).map((l) => l.id)), ...byId(lists.slice(3).map((l) => l.id))]
          const seen: Array<string> = []
          let page = yield* store.listLists(orgId, { limit: 2 })
          for (;;) {
            seen.push(...page.map((l) => l.id))
            const last = page.at(-1)
            if (last === undefined || page.length < 2) break
            page = yield* store.listLists(orgId, { limit: 2, before: { at: last.createdAt, id: last.id } })
          }
          expect(seen).toEqual(expected)
          expect((yield* store.listLists(orgId, { limit: 10, before: { at: 1000 } })).map((l) => l.id)).toEqual(expected.slice(3))
        }))

      it.effect("a list named by a campaign not finished yet is not deleted; drafts, rejected, completed and cancelled ones do not hold it", () =>
        Effect.gen(function*() {
          const store = yield* ContactStore
          const campaigns = yield* CampaignStore
          const orgId = org()
          const list = yield* store.createList(orgId, { name: "Audience" })
          const other = yield* store.createList(orgId, { name: "Other" })
          yield* store.addContacts(orgId, list.id, [{ phone: "+4915112345678" }])
          /** A campaign over `lists` walked through `steps` (action, state reached). */
          const campaign = (lists: ReadonlyArray<string>, steps: ReadonlyArray<readonly [CampaignAction, CampaignState]>) =>
            Effect.gen(function*() {
              const { id } = yield* campaigns.create(newCampaign(orgId, { lists }))
              for (const [action, to] of steps) yield* campaigns.transition(id, action, to)
              return id
            })
          const toApproved = [["submit", "pending_approval"], ["approve", "approved"]] as const
          const toRunning = [...toApproved, ["start", "running"]] as const
          // These never hold a list.
          yield* campaign([list.id], [])
          yield* campaign([list.id], [["submit", "pending_approval"], ["reject", "rejected"]])
          yield* campaign([other.id, list.id], [...toRunning, ["complete", "completed"]])
          yield* campaign([list.id], [...toApproved, ["cancel", "cancelled"]])
          // Another organisation's campaign naming this id (it could not be created through the API) holds nothing here.
          yield* campaigns.create(newCampaign(org(), { lists: [list.id] })).pipe(
            Effect.tap(({ id }) => campaigns.transition(id, "submit", "pending_approval"))
          )
          const holding = [
            yield* campaign([other.id, list.id], [["submit", "pending_approval"]]),
            yield* campaign([list.id], toApproved),
            yield* campaign([list.id], [...toApproved, ["start", "scheduled"]]),
            yield* campaign([list.id], toRunning),
            yield* campaign([list.id], [...toRunning, ["pause", "paused"]]),
            yield* campaign([list.id], toRunning)
          ]
          const refused = yield* Effect.flip(store.deleteList(orgId, list.id))
          expect(refused).toMatchObject({ _tag: "ListInUse", id: list.id, count: 6 })
          // The newest five of the six, by name.
          expect(refused._tag === "ListInUse" ? refused.campaigns.length : 0).toBe(5)
          for (const id of refused._tag === "ListInUse" ? refused.campaigns : []) expect(holding).toContain(id)
          expect((yield* store.getList(orgId, list.id)).contacts).toBe(1)
          // Another organisation asking gets 404 whatever holds the list.
          expect((yield* Effect.flip(store.deleteList(org(), list.id)))._tag).toBe("ListNotFound")

          for (const id of holding) yield* campaigns.transition(id, "cancel", "cancelled")
          yield* store.deleteList(orgId, list.id)
          expect((yield* Effect.flip(store.getList(orgId, list.id)))._tag).toBe("ListNotFound")
          // The list another campaign named alongside it was never held by the finished ones.
          yield* store.deleteList(orgId, other.id)
        }))
    })
  })

suite("SQLite", sqliteLayer)
suite("PostgreSQL", pgLayer)
