import { describe, expect, it } from "@effect/vitest"
import { Context, Effect } from "effect"
import { SqlClient } from "effect/sql"
import { readdirSync, readFileSync, statSync } from "node:fs"
import { join, relative } from "node:path"
import { gunzipSync } from "node:zlib"
import { cdrColumns } from "../../src/domain/Cdr.ts"
import { CdrExporter } from "../../src/pipeline/CdrExport.ts"
import * as Retention from "../../src/pipeline/Retention.ts"
import type { RetentionStore } from "../../src/storage/RetentionStore.ts"
import { CdrStore } from "../../src/storage/CdrStore.ts"
import type { CdrMetrics } from "../../src/observability/Metrics.ts"
import { get, post, signUp, startGateway, superadmin, waitForStatus } from "../fixtures/Gateway.ts"

/** Every file under `root`, as keys relative to it. */
const filesUnder = (root: string): Array<string> => {
  const out: Array<string> = []
  const walk = (dir: string) => {
    let entries: Array<string> = []
    try {
      entries = readdirSync(dir)
    } catch {
      return
    }
    for (const e of entries) {
      const path = join(dir, e)
      if (statSync(path).isDirectory()) walk(path)
      else out.push(relative(root, path))
    }
  }
  walk(root)
  return out.sort()
}

/** A CSV text (RFC 4180, no embedded newlines in these tests) as rows keyed by the header. */
const csvRows = (text: string): Array<Record<string, string>> => {
  const lines = text.split("\r\n").filter((l) => l !== "")
  const header = lines[0]!.split(",")
  return lines.slice(1).map((line) => {
    const cells: Array<string> = []
    let cell = ""
    let quoted = false
    for (let i = 0; i < line.length; i++) {
      const c = line[i]!
      if (quoted) {
        if (c === "\"" && line[i + 1] === "\"") {
          cell += "\""
          i++
        } else if (c === "\"") quoted = false
        else cell += c
      } else if (c === "\"") quoted = true
      else if (c === ",") {
        cells.push(cell)
        cell = ""
      } else cell += c
    }
    cells.push(cell)
    return Object.fromEntries(header.map((h, i) => [h, cells[i] ?? ""]))
  })
}

describe("CDR export (embedded: SQLite and the local object store)", () => {
  it.live("every final message once, per organisation and hour; the API shows each organisation its own; retention waits for the export", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({
        // The schedule is far off: the test runs the export itself.
        config: {
          cdr: { intervalSeconds: 3600 },
          policy: { rules: [{ id: "one-a-day", type: "frequency_cap", max: 1, window: "day" }] }
        }
      })
      const a = yield* signUp(gw.baseUrl)
      const b = yield* signUp(gw.baseUrl)
      const sent = (t: typeof a, to: string, extra: Record<string, unknown> = {}) =>
        Effect.map(post(`${gw.baseUrl}/v1/messages`, { to, from: "ACME", text: "hello, \"world\"", ...extra }, t.auth), (r) => r)
      const aIds: Array<string> = []
      for (let i = 0; i < 4; i++) {
        const r = yield* sent(a, `+4915112345${String(600 + i)}`, { clientRef: `order,${i}` })
        expect(r.status).toBe(202)
        aIds.push(String(r.json.id))
      }
      // The second to the same number today is refused by the cap, and recorded.
      const refused = yield* sent(a, "+4915112345600")
      expect(refused.status).toBe(422)
      const refusedId = String(refused.json.messageId)
      const bIds: Array<string> = []
      for (let i = 0; i < 2; i++) {
        const r = yield* sent(b, `+4474001234${String(50 + i)}`)
        expect(r.status).toBe(202)
        bIds.push(String(r.json.id))
      }
      for (const id of aIds) yield* waitForStatus(gw.baseUrl, id, "delivered", 15_000, a.auth)
      for (const id of bIds) yield* waitForStatus(gw.baseUrl, id, "delivered", 15_000, b.auth)

      const exporter = Context.get(gw.context as Context.Context<CdrExporter>, CdrExporter)
      const objects = join(gw.dataDir, "objects")
      // Retention before the export: old enough by age, but nothing is purged that has no CDR yet.
      const retention = { messageDays: 30, auditDays: 365, exportGraceMs: 3_600_000, batchSize: 2, intervalMs: 1000, pauseMs: 0 }
      const inGateway = <A, E>(effect: Effect.Effect<A, E, RetentionStore | CdrMetrics>) =>
        effect.pipe(Effect.provideContext(gw.context as Context.Context<RetentionStore | CdrMetrics>))
      const monthLater = Date.now() + 31 * 86_400_000
      expect(yield* inGateway(Retention.purgeOnce(retention, monthLater))).toEqual({ messages: 0, audit: 0 })

      const first = yield* exporter.runOnce
      expect(first.records).toBe(7)
      expect(first.batches).toBe(1)
      const keys = filesUnder(objects).filter((k) => k.startsWith("cdr/"))
      // One object per organisation and hour (both sent within this hour unless the test straddles one).
      expect(keys.length).toBe(first.objects)
      expect(keys.every((k) => /^cdr\/[^/]+\/\d{4}\/\d{2}\/\d{2}\/\d{2}\/b000000000001-[0-9a-f]{8}\.csv\.gz$/.test(k))).toBe(true)
      const rows = keys.flatMap((k) => csvRows(gunzipSync(readFileSync(join(objects, k))).toString("utf8")).map((r) => ({ key: k, r })))
      expect(rows.map(({ r }) => r.id).sort()).toEqual([...aIds, refusedId, ...bIds].sort())
      for (const { key, r } of rows) expect(key.split("/")[1]).toBe(r.organisation)
      // The header is the documented columns.
      const firstText = gunzipSync(readFileSync(join(objects, keys[0]!))).toString("utf8")
      expect(firstText.split("\r\n")[0]).toBe(cdrColumns.map((c) => c.name).join(","))
      const delivered = rows.find(({ r }) => r.id === aIds[1])!.r
      expect(delivered).toMatchObject({
        organisation: a.orgId,
        app: a.appId,
        client_reference: "order,1",
        to: "4915112345601",
        from: "ACME",
        destination_country: "DE",
        links: "sim",
        parts: "1",
        encoding: "gsm7",
        status: "delivered",
        error: "",
        policy_reason: "",
        policy_rule: ""
      })
      expect(delivered.smsc_message_ids).not.toBe("")
      expect(Date.parse(delivered.submitted_at!)).toBeGreaterThanOrEqual(Date.parse(delivered.accepted_at!))
      expect(Date.parse(delivered.final_at!)).toBeGreaterThanOrEqual(Date.parse(delivered.submitted_at!))
      expect(rows.find(({ r }) => r.id === refusedId)!.r).toMatchObject({
        status: "rejected",
        policy_reason: "frequency_cap",
        policy_rule: "one-a-day",
        links: "",
        submitted_at: ""
      })
      expect(rows.find(({ r }) => r.id === bIds[0])!.r.destination_country).toBe("GB")

      // Nothing new: nothing written again.
      const second = yield* exporter.runOnce
      expect(second).toMatchObject({ batches: 0, records: 0 })
      expect(filesUnder(objects).filter((k) => k.startsWith("cdr/"))).toEqual(keys)

      // The API: each organisation lists and downloads its own files only.
      const ownerA = { authorization: `Bearer ${a.userToken}` }
      const ownerB = { authorization: `Bearer ${b.userToken}` }
      const listA = yield* get(`${gw.baseUrl}/v1/cdr`, ownerA)
      expect(listA.status).toBe(200)
      const filesA = listA.json.files as Array<{ hour: string; name: string; size: number; href: string }>
      expect(filesA.length).toBeGreaterThan(0)
      const aKey = keys.find((k) => k.split("/")[1] === a.orgId)!
      const download = yield* Effect.promise(async () => {
        const response = await fetch(`${gw.baseUrl}${filesA[0]!.href}`, { headers: ownerA })
        return { status: response.status, type: response.headers.get("content-type"), body: new Uint8Array(await response.arrayBuffer()) }
      })
      expect(download.status).toBe(200)
      expect(download.type).toBe("application/gzip")
      expect(Buffer.from(download.body).equals(readFileSync(join(objects, aKey)))).toBe(true)
      // B asking for A's organisation: refused; B's own listing holds no A message.
      expect((yield* get(`${gw.baseUrl}/v1/cdr?organisation=${a.orgId}`, ownerB)).status).toBe(403)
      const filesB = (yield* get(`${gw.baseUrl}/v1/cdr`, ownerB)).json.files as Array<{ href: string }>
      for (const f of filesB) {
        const text = yield* Effect.promise(async () => gunzipSync(new Uint8Array(await (await fetch(`${gw.baseUrl}${f.href}`, { headers: ownerB })).arrayBuffer())).toString("utf8"))
        expect(csvRows(text).every((r) => r.organisation === b.orgId)).toBe(true)
      }
      // A name B has no file by is 404, whoever else has one; an app token and bad input are refused.
      expect((yield* get(`${gw.baseUrl}/v1/cdr/${filesA[0]!.hour}/b999999999999-00000000.csv.gz`, ownerB)).status).toBe(404)
      expect((yield* get(`${gw.baseUrl}/v1/cdr/${filesA[0]!.hour}/..%2F..%2Fgateway.db`, ownerA)).status).toBe(404)
      expect((yield* get(`${gw.baseUrl}/v1/cdr`, a.auth)).status).toBe(403)
      const badHour = yield* get(`${gw.baseUrl}/v1/cdr/yesterday/b000000000001.csv.gz`, ownerA)
      expect(badHour.status).toBe(400)
      expect(JSON.stringify(badHour.json)).toContain("hour")
      const tooLong = yield* get(`${gw.baseUrl}/v1/cdr?from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z`, ownerA)
      expect(tooLong.status).toBe(400)
      expect((yield* get(`${gw.baseUrl}/v1/cdr?form=2026-01-01`, ownerA)).status).toBe(400)
      // A superadmin reads any organisation's.
      const admin = yield* superadmin(gw.baseUrl)
      const asAdmin = yield* get(`${gw.baseUrl}/v1/cdr?organisation=${a.orgId}`, admin)
      const adminFiles = asAdmin.json.files as Array<{ href: string }>
      expect(adminFiles.map((f) => f.href)).toEqual(filesA.map((f) => `${f.href}?organisation=${a.orgId}`))
      const adminDownload = yield* Effect.promise(async () => new Uint8Array(await (await fetch(`${gw.baseUrl}${adminFiles[0]!.href}`, { headers: admin })).arrayBuffer()))
      expect(Buffer.from(adminDownload).equals(readFileSync(join(objects, aKey)))).toBe(true)

      // Not while the batch is fresh: a slow second exporter might still be writing it (the grace after done).
      const fortyDays = 40 * 86_400_000
      expect((yield* inGateway(Retention.purgeOnce({ ...retention, exportGraceMs: fortyDays }, monthLater))).messages).toBe(0)
      // Retention now: every exported message goes (parts and events with it), in batches of 2.
      const sql = Context.get(gw.context as Context.Context<SqlClient.SqlClient>, SqlClient.SqlClient)
      const purged = yield* inGateway(Retention.purgeOnce(retention, monthLater))
      expect(purged.messages).toBe(7)
      const left = yield* sql<{ m: number; p: number; e: number }>`SELECT
        (SELECT COUNT(*) FROM messages) AS m, (SELECT COUNT(*) FROM message_parts) AS p, (SELECT COUNT(*) FROM message_events) AS e`
      expect(left[0]).toEqual({ m: 0, p: 0, e: 0 })
      expect((yield* get(`${gw.baseUrl}/v1/messages/${aIds[0]}`, a.auth)).status).toBe(404)
      // The batch numbering goes on after a purge: the next batch is 2, never 1 again (which would replace files).
      const later = yield* sent(a, "+4915112345699")
      yield* waitForStatus(gw.baseUrl, String(later.json.id), "delivered", 15_000, a.auth)
      yield* exporter.runOnce
      expect(filesUnder(objects).filter((k) => /\/b000000000002-[0-9a-f]{8}\.csv\.gz$/.test(k)).length).toBe(1)
      // The audit log keeps its own time: a year, not a month.
      const auditBefore = (yield* sql<{ n: number }>`SELECT COUNT(*) AS n FROM audit_log`)[0]!.n
      expect(auditBefore).toBeGreaterThan(0)
      expect((yield* inGateway(Retention.purgeOnce(retention, monthLater))).audit).toBe(0)
      expect((yield* inGateway(Retention.purgeOnce(retention, Date.now() + 366 * 86_400_000))).audit).toBe(auditBefore)
    }).pipe(Effect.scoped), 60_000)

  it.live("a batch numbered before a crash is written under the names it was numbered with, whatever the configuration says now; rows without an organisation are filed under _none", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({ config: { cdr: { intervalSeconds: 3600, format: "csv" } } })
      const t = yield* signUp(gw.baseUrl)
      const sent = yield* post(`${gw.baseUrl}/v1/messages`, { to: "+4915112345601", from: "ACME", text: "hi" }, t.auth)
      yield* waitForStatus(gw.baseUrl, String(sent.json.id), "delivered", 15_000, t.auth)
      const sql = Context.get(gw.context as Context.Context<SqlClient.SqlClient>, SqlClient.SqlClient)
      // A row from before accounts: no organisation.
      const now = Date.now()
      yield* sql`INSERT INTO messages (id, org_id, app_id, to_addr, from_addr, text, encoding, segments, status, status_rank, attempts,
        created_at, updated_at) VALUES ('msg_legacy', NULL, NULL, '4915112345602', 'ACME', 'old', 'gsm7', 1, 'delivered', 3, 0, ${now}, ${now})`
      // The run that numbered this batch wrote JSON Lines under "billing" and stopped; the configuration now says CSV under "cdr".
      const store = Context.get(gw.context as Context.Context<CdrStore>, CdrStore)
      yield* store.assign(100, now, { token: "0badf00d", prefix: "billing", format: "jsonl" })
      const exporter = Context.get(gw.context as Context.Context<CdrExporter>, CdrExporter)
      const run = yield* exporter.runOnce
      expect(run).toMatchObject({ batches: 1, records: 2 })
      const objects = join(gw.dataDir, "objects")
      const keys = filesUnder(objects).filter((k) => k.startsWith("billing/") || k.startsWith("cdr/"))
      expect(keys.every((k) => k.startsWith("billing/") && k.endsWith("/b000000000001-0badf00d.jsonl.gz"))).toBe(true)
      expect(keys.map((k) => k.split("/")[1]).sort()).toEqual([t.orgId, "_none"].sort())
      const legacy = keys.find((k) => k.split("/")[1] === "_none")!
      const record = JSON.parse(gunzipSync(readFileSync(join(objects, legacy))).toString("utf8")) as Record<string, unknown>
      expect(record).toMatchObject({ id: "msg_legacy", organisation: "_none", app: null, status: "delivered" })
    }).pipe(Effect.scoped), 60_000)
})
