import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as net from "node:net"
import { join } from "node:path"
import { DatabaseSync } from "node:sqlite"
import { get, post, send, signUp, startGateway } from "../fixtures/Gateway.ts"
import { startMailbox, tokenIn } from "../fixtures/Mailbox.ts"
import { eventually } from "../fixtures/Eventually.ts"
import { expectProblem, fieldErrors, fieldsOf } from "../fixtures/Problems.ts"

const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

/** An upload as a client sends it: a CSV body (a string, or chunks sent one by one without a declared length). */
const upload = (url: string, body: string | ReadonlyArray<string>, headers: Record<string, string>, contentType = "text/csv") =>
  Effect.promise(async () => {
    const encoder = new TextEncoder()
    const init: RequestInit & { duplex?: "half" } = typeof body === "string"
      ? { method: "POST", headers: { "content-type": contentType, ...headers }, body }
      : {
        method: "POST",
        headers: { "content-type": contentType, ...headers },
        body: new ReadableStream<Uint8Array>({
          start(controller) {
            for (const chunk of body) controller.enqueue(encoder.encode(chunk))
            controller.close()
          }
        }),
        duplex: "half"
      }
    const response = await fetch(url, init)
    const text = await response.text()
    return {
      status: response.status,
      contentType: response.headers.get("content-type"),
      json: (text === "" ? {} : JSON.parse(text)) as Record<string, unknown>
    }
  })

/** Writes a request by hand, its body a byte at a time every `dripMs`; what came back once the server closed. */
const trickle = (port: number, head: string, body: string, dripMs: number) =>
  Effect.promise(() =>
    new Promise<{ readonly answer: string; readonly ms: number }>((resolve) => {
      const started = Date.now()
      const socket = net.connect(port, "127.0.0.1")
      let text = ""
      let at = 0
      socket.setEncoding("utf8")
      socket.on("data", (chunk: string) => (text += chunk))
      socket.on("error", () => undefined)
      socket.on("close", () => {
        clearInterval(drip)
        resolve({ answer: text, ms: Date.now() - started })
      })
      socket.write(head)
      const drip = setInterval(() => {
        if (at < body.length) socket.write(body[at++] ?? "")
        if (at >= body.length && !socket.destroyed && text !== "" && text.includes("\r\n\r\n")) socket.end()
      }, dripMs)
    })
  )

describe("audiences over HTTP: lists, contacts, CSV uploads", () => {
  it.live("create a list, upload a CSV (BOM, quotes, CRLF), read the report, page contacts, edit, delete", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway()
      const owner = yield* signUp(gw.baseUrl)
      const base = `${gw.baseUrl}/v1/lists`
      const created = yield* post(base, { name: "Customers", defaultCountry: "DE" }, owner.userAuth)
      expect(created.status).toBe(201)
      expect(created.json).toMatchObject({ name: "Customers", defaultCountry: "DE", contacts: 0, columns: [] })
      const id = String(created.json.id)

      const csv = "\uFEFFFirstName,Mobile,Note\r\n" +
        "\"Anna\",+49 151 12345678,\"likes \"\"quotes\"\", and commas\"\r\n" +
        "Bob,0176 12345678,\"two\r\nlines\"\r\n" +
        "Anna again,004915112345678,dup\r\n" +
        "Bad,12345,x\r\n"
      const report = yield* upload(`${base}/${id}/contacts/upload`, csv, owner.userAuth)
      expect(report.status, JSON.stringify(report.json)).toBe(200)
      expect(report.json).toEqual({
        rowsRead: 4,
        added: 2,
        duplicates: 1,
        completed: 1,
        invalid: 1,
        invalidRows: [{ line: 6, value: "12345", reason: "not a valid phone number" }],
        columns: ["firstname", "note"],
        phoneColumn: "mobile"
      })
      const list = yield* get(`${base}/${id}`, owner.userAuth)
      expect(list.json).toMatchObject({ contacts: 2, columns: ["firstname", "note"] })

      const page1 = yield* get(`${base}/${id}/contacts?limit=1`, owner.userAuth)
      const contacts1 = page1.json.contacts as ReadonlyArray<Record<string, unknown>>
      expect(contacts1.map((c) => [c.msisdn, c.country, c.vars])).toEqual([
        ["+4915112345678", "DE", { firstname: "Anna", note: "likes \"quotes\", and commas" }]
      ])
      const page2 = yield* get(`${base}/${id}/contacts?limit=1&after=${String(page1.json.next)}`, owner.userAuth)
      expect((page2.json.contacts as ReadonlyArray<Record<string, unknown>>).map((c) => [c.msisdn, c.vars])).toEqual([
        ["+4917612345678", { firstname: "Bob", note: "two\r\nlines" }]
      ])

      const added = yield* post(`${base}/${id}/contacts`, {
        contacts: [{ phone: "+4915112345678" }, { phone: "+447911123456", vars: { FirstName: "Cy" } }, { phone: "nope" }]
      }, owner.userAuth)
      expect(added.status, JSON.stringify(added.json)).toBe(200)
      expect(added.json).toMatchObject({ rowsRead: 3, added: 1, duplicates: 1, invalid: 1 })
      expect((added.json.invalidRows as ReadonlyArray<{ line: number }>).map((r) => r.line)).toEqual([3])

      expect((yield* send("DELETE", `${base}/${id}/contacts/+4917612345678`, undefined, owner.userAuth)).status).toBe(204)
      expectProblem(yield* send("DELETE", `${base}/${id}/contacts/4917612345678`, undefined, owner.userAuth), 404, "not-found")
      const renamed = yield* send("PATCH", `${base}/${id}`, { name: "Clients", defaultCountry: null }, owner.userAuth)
      expect(renamed.json).toMatchObject({ name: "Clients", contacts: 2 })
      expect(renamed.json.defaultCountry).toBeUndefined()
      const lists = yield* get(base, owner.userAuth)
      expect(lists.json).toEqual([expect.objectContaining({ id, name: "Clients", contacts: 2 })])

      const audit = yield* get(`${gw.baseUrl}/v1/audit`, owner.userAuth)
      const actions = (audit.json as unknown as ReadonlyArray<{ action: string }>).map((e) => e.action)
      expect(actions).toEqual(expect.arrayContaining(["list.created", "list.contacts.uploaded", "list.contacts.added", "list.updated", "list.contact.removed"]))
      // Who removed a contact is in the log; the number is not.
      const removal = (audit.json as unknown as ReadonlyArray<{ action: string; detail?: string; target?: string }>).find((e) => e.action === "list.contact.removed")
      expect([removal?.target, removal?.detail]).toEqual([id, undefined])

      expect((yield* send("DELETE", `${base}/${id}`, undefined, owner.userAuth)).status).toBe(204)
      expectProblem(yield* get(`${base}/${id}`, owner.userAuth), 404, "not-found")
    }).pipe(Effect.scoped), 30_000)

  it.live("lists page newest first, 100 unless limit says (at most 500); before + beforeId skip none created in one millisecond", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway()
      const owner = yield* signUp(gw.baseUrl)
      const other = yield* signUp(gw.baseUrl)
      const base = `${gw.baseUrl}/v1/lists`
      const db = new DatabaseSync(join(gw.dataDir, "gateway.db"))
      db.exec("PRAGMA busy_timeout = 5000")
      yield* Effect.addFinalizer(() => Effect.sync(() => db.close()))
      // 103 lists, all created in one millisecond: only the id orders them.
      const insert = db.prepare("INSERT INTO contact_lists (id, org_id, name, contacts, columns, created_at, updated_at) VALUES (?, ?, ?, 0, '[]', 1000, 1000)")
      const ids = Array.from({ length: 103 }, (_, i) => `lst_${String(i).padStart(3, "0")}_${crypto.randomUUID().slice(0, 4)}`)
      for (const id of ids) insert.run(id, owner.orgId, id)
      insert.run("lst_theirs", other.orgId, "theirs")
      const newestFirst = [...ids].reverse()
      type Listed = { readonly id: string; readonly createdAt: string }
      const page = (query: string) =>
        Effect.map(get(`${base}${query}`, owner.userAuth), (r) => {
          expect(r.status, JSON.stringify(r.json)).toBe(200)
          return r.json as unknown as ReadonlyArray<Listed>
        })

      expect((yield* page("")).map((l) => l.id)).toEqual(newestFirst.slice(0, 100))
      const seen: Array<string> = []
      let current = yield* page("?limit=40")
      for (;;) {
        seen.push(...current.map((l) => l.id))
        const last = current.at(-1)
        if (last === undefined || current.length < 40) break
        current = yield* page(`?limit=40&before=${encodeURIComponent(last.createdAt)}&beforeId=${last.id}`)
      }
      expect(seen).toEqual(newestFirst)
      // `before` alone: strictly older than that millisecond.
      expect(yield* page(`?before=${encodeURIComponent(new Date(1000).toISOString())}`)).toEqual([])

      expect(fieldsOf(yield* get(`${base}?limit=501`, owner.userAuth))).toEqual(["query.limit"])
      expect(fieldsOf(yield* get(`${base}?limit=0`, owner.userAuth))).toEqual(["query.limit"])
      expect(fieldsOf(yield* get(`${base}?beforeId=${ids[0]}`, owner.userAuth))).toEqual(["query.beforeId"])
      expect(fieldsOf(yield* get(`${base}?before=yesterday`, owner.userAuth))).toEqual(["query.before"])
      expect((yield* page("?limit=500")).length).toBe(103)
    }).pipe(Effect.scoped), 30_000)

  it.live("a list a campaign not finished yet uses is not deleted (409 naming it); a draft does not hold it, its submit then names the list", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway()
      const owner = yield* signUp(gw.baseUrl)
      const other = yield* signUp(gw.baseUrl)
      const base = `${gw.baseUrl}/v1/lists`
      const newList = (name: string) =>
        Effect.gen(function*() {
          const id = String((yield* post(base, { name }, owner.userAuth)).json.id)
          expect((yield* post(`${base}/${id}/contacts`, { contacts: [{ phone: "+4915112345678" }] }, owner.userAuth)).status).toBe(200)
          return id
        })
      const campaign = (lists: ReadonlyArray<string>) =>
        Effect.gen(function*() {
          const created = yield* post(`${gw.baseUrl}/v1/campaigns`, { name: "Sale", appId: owner.appId, sender: "ACME", template: "Hi", lists }, owner.userAuth)
          expect(created.status, JSON.stringify(created.json)).toBe(201)
          return String(created.json.id)
        })
      const held = yield* newList("Held")
      const drafted = yield* newList("Drafted")

      // The owner's campaign needs no approval (rule "members"): submitted, it is approved and holds its lists.
      const approved = yield* campaign([drafted, held])
      expect((yield* post(`${gw.baseUrl}/v1/campaigns/${approved}/submit`, {}, owner.userAuth)).json.state).toBe("approved")
      const refused = yield* send("DELETE", `${base}/${held}`, undefined, owner.userAuth)
      expectProblem(refused, 409, "list-in-use")
      expect(refused.json).toMatchObject({ campaigns: [approved], campaignCount: 1 })
      expect(String(refused.json.detail)).toContain(`list ${held} is used by a campaign not finished yet (${approved})`)
      expect((yield* get(`${base}/${held}`, owner.userAuth)).json).toMatchObject({ contacts: 1 })
      // Another organisation still gets 404.
      expectProblem(yield* send("DELETE", `${base}/${held}`, undefined, other.userAuth), 404, "not-found")

      // A draft does not hold a list; submitting it afterwards names the list that is gone.
      const draft = yield* campaign([drafted])
      expect((yield* post(`${gw.baseUrl}/v1/campaigns/${approved}/cancel`, {}, owner.userAuth)).json.state).toBe("cancelled")
      expect((yield* send("DELETE", `${base}/${drafted}`, undefined, owner.userAuth)).status).toBe(204)
      const resubmitted = yield* post(`${gw.baseUrl}/v1/campaigns/${draft}/submit`, {}, owner.userAuth)
      expectProblem(resubmitted, 400, "validation")
      expect(fieldsOf(resubmitted)).toEqual(["lists[0]"])

      const paths = (yield* get(`${gw.baseUrl}/openapi.json`)).json.paths as Record<string, Record<string, { responses: Record<string, unknown> }>>
      expect(Object.keys(paths["/v1/lists/{id}"]?.delete?.responses ?? {})).toContain("409")

      // Once the campaign is cancelled, the list deletes as before.
      expect((yield* send("DELETE", `${base}/${held}`, undefined, owner.userAuth)).status).toBe(204)
      expectProblem(yield* get(`${base}/${held}`, owner.userAuth), 404, "not-found")
    }).pipe(Effect.scoped), 30_000)

  it.live("refusals name the field: no phone column, unknown fields, bad country, wrong media type, malformed CSV", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway()
      const owner = yield* signUp(gw.baseUrl)
      const base = `${gw.baseUrl}/v1/lists`
      const id = String((yield* post(base, { name: "Strict" }, owner.userAuth)).json.id)
      const url = `${base}/${id}/contacts/upload`

      const noPhone = yield* upload(url, "name,city\nA,B\n", owner.userAuth)
      expectProblem(noPhone, 400, "validation")
      expect(fieldsOf(noPhone)).toEqual(["phoneColumn"])
      expect(fieldErrors(noPhone)[0]?.message).toContain("[\"name\",\"city\"]")
      const named = yield* upload(`${url}?phoneColumn=Cell&delimiter=%3B`, "name;cell\nA;+4915112345678\n", owner.userAuth)
      expect(named.json).toMatchObject({ added: 1, phoneColumn: "cell" })
      const missingNamed = yield* upload(`${url}?phoneColumn=fax`, "name,cell\nA,+4915112345678\n", owner.userAuth)
      expect(fieldsOf(missingNamed)).toEqual(["phoneColumn"])

      const unclosed = yield* upload(url, "phone,note\n+4917612345678,ok\n+4917612345679,\"open\n", owner.userAuth)
      expectProblem(unclosed, 400, "validation")
      expect(fieldsOf(unclosed)).toEqual(["body"])
      expectProblem(yield* upload(url, "{\"phone\":1}", owner.userAuth, "application/json"), 415, "unsupported-media-type")

      const unknown = yield* post(base, { name: "x", colour: "red" }, owner.userAuth)
      expectProblem(unknown, 400, "validation")
      expect(fieldErrors(unknown)).toEqual([{ field: "colour", message: "unknown field: this request has no such key" }])
      const unknownContact = yield* post(`${base}/${id}/contacts`, { contacts: [{ phone: "+4915112345678", name: "A" }] }, owner.userAuth)
      expect(fieldsOf(unknownContact)).toEqual(["contacts[0].name"])
      const country = yield* post(base, { name: "x", defaultCountry: "XX" }, owner.userAuth)
      expectProblem(country, 400, "validation")
      expect(fieldsOf(country)).toEqual(["defaultCountry"])

      // Nothing of the refused uploads reached the list.
      expect((yield* get(`${base}/${id}`, owner.userAuth)).json).toMatchObject({ contacts: 1, columns: ["name"] })
    }).pipe(Effect.scoped), 30_000)

  it.live("roles: viewers read, members write, app tokens are refused; other organisations' lists are 404", () =>
    Effect.gen(function*() {
      const mailbox = yield* startMailbox
      const gw = yield* startGateway({ config: { mail: { smtp: { host: "127.0.0.1", port: mailbox.port, secure: false } } } })
      const owner = yield* signUp(gw.baseUrl)
      const base = `${gw.baseUrl}/v1/lists`
      const join = (role: string) =>
        Effect.gen(function*() {
          const email = `${role}-${crypto.randomUUID().slice(0, 6)}@example.com`
          expect((yield* post(`${gw.baseUrl}/v1/members`, { email, role }, owner.userAuth)).status).toBe(202)
          const invitationToken = tokenIn(yield* mailbox.waitFor(email, "Invitation"), "inv")
          const password = "another good password"
          expect((yield* post(`${gw.baseUrl}/v1/auth/register`, { email, password, name: role, invitationToken })).status).toBe(201)
          return bearer(String((yield* post(`${gw.baseUrl}/v1/auth/token`, { email, password })).json.accessToken))
        })
      const viewer = yield* join("viewer")
      const member = yield* join("member")

      const created = yield* post(base, { name: "By a member" }, member)
      expect(created.status).toBe(201)
      const id = String(created.json.id)
      expect((yield* upload(`${base}/${id}/contacts/upload`, "phone\n+4915112345678\n", member)).status).toBe(200)

      expect((yield* get(base, viewer)).status).toBe(200)
      expect((yield* get(`${base}/${id}/contacts`, viewer)).status).toBe(200)
      expectProblem(yield* post(base, { name: "no" }, viewer), 403, "forbidden")
      expectProblem(yield* upload(`${base}/${id}/contacts/upload`, "phone\n+4917612345678\n", viewer), 403, "forbidden")
      expectProblem(yield* send("DELETE", `${base}/${id}`, undefined, viewer), 403, "forbidden")
      expectProblem(yield* get(base, owner.auth), 403, "forbidden")

      const stranger = yield* signUp(gw.baseUrl)
      expectProblem(yield* get(`${base}/${id}`, stranger.userAuth), 404, "not-found")
      expectProblem(yield* get(`${base}/${id}/contacts`, stranger.userAuth), 404, "not-found")
      expectProblem(yield* send("PATCH", `${base}/${id}`, { name: "mine now" }, stranger.userAuth), 404, "not-found")
      expectProblem(yield* upload(`${base}/${id}/contacts/upload`, "phone\n+4917612345678\n", stranger.userAuth), 404, "not-found")
      expectProblem(yield* post(`${base}/${id}/contacts`, { contacts: [{ phone: "+4917612345678" }] }, stranger.userAuth), 404, "not-found")
      expectProblem(yield* send("DELETE", `${base}/${id}/contacts/4915112345678`, undefined, stranger.userAuth), 404, "not-found")
      expectProblem(yield* send("DELETE", `${base}/${id}`, undefined, stranger.userAuth), 404, "not-found")
      expect(yield* get(base, stranger.userAuth)).toMatchObject({ json: [] })
      expect((yield* get(`${base}/${id}`, owner.userAuth)).json).toMatchObject({ name: "By a member", contacts: 1 })
    }).pipe(Effect.scoped), 60_000)

  it.live("body limits: uploads have their own (413 declared or streamed, the list untouched); JSON contacts beyond maxBodyBytes", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({ config: { http: { maxUploadBytes: 4_096 } } })
      const owner = yield* signUp(gw.baseUrl)
      const base = `${gw.baseUrl}/v1/lists`
      const id = String((yield* post(base, { name: "Limits" }, owner.userAuth)).json.id)
      const url = `${base}/${id}/contacts/upload`
      const rows = (n: number, from = 0) => Array.from({ length: n }, (_, i) => `+4917${String(600000000 + from + i)}\n`)

      const declared = yield* upload(url, ["phone\n", ...rows(400)].join(""), owner.userAuth)
      expectProblem(declared, 413, "payload-too-large")
      expect(declared.json.maxBytes).toBe(4_096)
      const streamed = yield* upload(url, ["phone\n", ...rows(400)], owner.userAuth)
      expectProblem(streamed, 413, "payload-too-large")
      expect((yield* get(`${base}/${id}`, owner.userAuth)).json).toMatchObject({ contacts: 0 })
      const fits = yield* upload(url, ["phone\n", ...rows(100)], owner.userAuth)
      expect(fits.json).toMatchObject({ added: 100 })

      // ~60 KB of JSON: above the API's default body limit (16 KiB here), inside the contacts endpoint's own.
      const many = rows(2_000, 1_000).map((phone) => ({ phone: phone.trim(), vars: { firstname: "Someone" } }))
      const added = yield* post(`${base}/${id}/contacts`, { contacts: many }, owner.userAuth)
      expect(added.status, JSON.stringify(added.json).slice(0, 300)).toBe(200)
      expect(added.json).toMatchObject({ added: 2_000 })
      expectProblem(yield* post(`${gw.baseUrl}/v1/apps`, { name: "x".repeat(20_000) }, owner.userAuth), 413, "payload-too-large")
      const tooMany = yield* post(`${base}/${id}/contacts`, {
        contacts: Array.from({ length: 10_001 }, () => ({ phone: "+4915112345678" }))
      }, owner.userAuth)
      expectProblem(tooMany, 400, "validation")
      expect(fieldsOf(tooMany)).toEqual(["contacts"])
    }).pipe(Effect.scoped), 30_000)

  it.live("a client that goes away mid-upload leaves the list as it was and nothing staged", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway()
      const owner = yield* signUp(gw.baseUrl)
      const base = `${gw.baseUrl}/v1/lists`
      const id = String((yield* post(base, { name: "Aborted" }, owner.userAuth)).json.id)
      yield* upload(`${base}/${id}/contacts/upload`, "phone\n+4915112345678\n", owner.userAuth)
      const db = new DatabaseSync(join(gw.dataDir, "gateway.db"), { readOnly: true })
      yield* Effect.addFinalizer(() => Effect.sync(() => db.close()))
      const count = (table: string) => Number((db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n)

      const encoder = new TextEncoder()
      const controller = new AbortController()
      const rows = Array.from({ length: 3_000 }, (_, i) => `+4917${String(600000000 + i)}\n`).join("")
      // The file's first 3,000 rows, then nothing more until the client gives up.
      const body = new ReadableStream<Uint8Array>({ start: (stream) => stream.enqueue(encoder.encode(`phone\n${rows}`)) })
      const answer = fetch(`${base}/${id}/contacts/upload`, {
        method: "POST",
        headers: { "content-type": "text/csv", ...owner.userAuth },
        body,
        duplex: "half",
        signal: controller.signal
      } as RequestInit).then(() => "answered", (e: unknown) => (e as Error).name)
      yield* eventually("rows staged by the upload", Effect.sync(() => count("contact_import_rows") >= 1_000))
      controller.abort()
      expect(yield* Effect.promise(() => answer)).toBe("AbortError")

      yield* eventually("the stage dropped", Effect.sync(() => count("contact_imports") === 0 && count("contact_import_rows") === 0))
      const after = yield* get(`${base}/${id}/contacts?limit=1000`, owner.userAuth)
      expect((after.json.contacts as ReadonlyArray<{ msisdn: string }>).map((c) => c.msisdn)).toEqual(["+4915112345678"])
      expect((yield* get(`${base}/${id}`, owner.userAuth)).json).toMatchObject({ contacts: 1 })
    }).pipe(Effect.scoped), 30_000)

  it.live("the request timeout: an upload may take longer; any other body still arriving after it is cut with 408", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({ config: { http: { requestTimeoutSeconds: 1, uploadTimeoutSeconds: 60 } } })
      const owner = yield* signUp(gw.baseUrl)
      const port = Number(new URL(gw.baseUrl).port)
      const id = String((yield* post(`${gw.baseUrl}/v1/lists`, { name: "Slow" }, owner.userAuth)).json.id)

      const csv = "phone\n+4915112345678\n"
      const slowUpload = yield* trickle(
        port,
        `POST /v1/lists/${id}/contacts/upload HTTP/1.1\r\nHost: gw\r\nAuthorization: ${owner.userAuth.authorization}\r\n` +
          `Content-Type: text/csv\r\nContent-Length: ${csv.length}\r\nConnection: close\r\n\r\n`,
        csv,
        100
      )
      expect(slowUpload.ms).toBeGreaterThan(1_500)
      expect(slowUpload.answer.split("\r\n")[0]).toBe("HTTP/1.1 200 OK")

      const json = JSON.stringify({ name: "a list whose body arrives too slowly" })
      const slowJson = yield* trickle(
        port,
        `POST /v1/lists HTTP/1.1\r\nHost: gw\r\nAuthorization: ${owner.userAuth.authorization}\r\n` +
          `Content-Type: application/json\r\nContent-Length: ${json.length}\r\n\r\n`,
        json,
        100
      )
      expect(slowJson.answer.split("\r\n")[0]).toBe("HTTP/1.1 408 Request Timeout")
      expect(slowJson.ms).toBeLessThan(json.length * 100)
      expect((yield* get(`${gw.baseUrl}/v1/lists`, owner.userAuth)).json).toEqual([expect.objectContaining({ name: "Slow", contacts: 1 })])
    }).pipe(Effect.scoped), 30_000)
})
