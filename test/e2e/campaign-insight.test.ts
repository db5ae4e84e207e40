/**
 * Preview and dry run through the embedded gateway: parts by encoding as sending counts them, exclusions per rule with
 * a real blacklist, deferrals by quiet hours and the send window, the finish estimate, and that a dry run sends and
 * counts nothing. Lists and campaigns are written straight into the tables (their APIs are other work).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { join } from "node:path"
import { DatabaseSync } from "node:sqlite"
import type { RunningGateway, Tenant } from "../fixtures/Gateway.ts"
import { get, post, send, signUp, startGateway, superadmin } from "../fixtures/Gateway.ts"

/** The contact policy's clock, moved by the test. */
const NOON = Date.UTC(2026, 11, 23, 12, 0)

interface Contact {
  readonly msisdn: string
  readonly country: string
  readonly vars: Record<string, string>
}

const withDb = <A>(gw: RunningGateway, f: (db: DatabaseSync) => A) =>
  Effect.sync(() => {
    const db = new DatabaseSync(join(gw.dataDir, "gateway.db"))
    db.exec("PRAGMA busy_timeout = 5000")
    try {
      return f(db)
    } finally {
      db.close()
    }
  })

const insertList = (gw: RunningGateway, orgId: string, id: string, contacts: ReadonlyArray<Contact>) =>
  withDb(gw, (db) => {
    const now = Date.now()
    db.prepare("INSERT INTO contact_lists (id, org_id, name, contacts, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)")
      .run(id, orgId, id, contacts.length, now, now)
    const insert = db.prepare("INSERT INTO contacts (list_id, pos, msisdn, country, vars, created_at) VALUES (?, ?, ?, ?, ?, ?)")
    contacts.forEach((c, i) => insert.run(id, i + 1, c.msisdn, c.country, JSON.stringify(c.vars), now))
  })

const insertCampaign = (
  gw: RunningGateway,
  tenant: Tenant,
  fields: {
    readonly lists: ReadonlyArray<string>
    readonly throttle: number
    readonly sendWindow?: { from: string; to: string }
    readonly startAt?: { at: string; timeZone: string }
  }
) =>
  withDb(gw, (db) => {
    const id = `cmp_${crypto.randomUUID().slice(0, 12)}`
    const now = Date.now()
    db.prepare(`INSERT INTO campaigns (id, org_id, name, app_id, sender, template, lists, message_class, encoding, send_window,
      throttle, state, flags, created_by, created_at, updated_at, start_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
      .run(
        id,
        tenant.orgId,
        "Winter sale",
        tenant.appId,
        "Shop",
        "Hi {{name}}, {{note|20% off today}}",
        JSON.stringify(fields.lists),
        "promotional",
        "auto",
        fields.sendWindow === undefined ? null : JSON.stringify(fields.sendWindow),
        fields.throttle,
        "draft",
        "[]",
        "usr_test",
        now,
        now,
        fields.startAt === undefined ? null : JSON.stringify(fields.startAt)
      )
    return id
  })

const longNote = "our winter collection is here: coats, boots, scarves and gloves at prices you will not see again this year, in every store and online until Sunday, while stocks last"

/** Six contacts: GSM-7 and UCS-2 names, a two-part text, one blacklisted, one in New York (quiet at noon UTC), one in London. */
const mainList: ReadonlyArray<Contact> = [
  { msisdn: "4915112345601", country: "DE", vars: { name: "Anna" } },
  { msisdn: "48601234502", country: "PL", vars: { name: "Łukasz" } },
  { msisdn: "4915112345603", country: "DE", vars: { name: "Bea", note: longNote } },
  { msisdn: "4915112345604", country: "DE", vars: { name: "Dirk" } },
  { msisdn: "12125550105", country: "US", vars: { name: "Eve" } },
  { msisdn: "447911123456", country: "GB", vars: { name: "Finn" } }
]

/** A repeat of Anna (counted once) and a contact without a name (the template requires one). */
const secondList: ReadonlyArray<Contact> = [
  { msisdn: "4915112345601", country: "DE", vars: { name: "Anna again" } },
  { msisdn: "4915112345607", country: "DE", vars: {} }
]

const policyFor = (orgId: string) => ({
  blacklists: [{ name: "optout", org: orgId, object: null }],
  rules: [
    { id: "optout", scope: { org: orgId }, type: "blacklist", lists: ["optout"] },
    {
      id: "night",
      type: "quiet_hours",
      from: "21:00",
      to: "08:00",
      countries: { DE: "Europe/Berlin", PL: "Europe/Warsaw", GB: "Europe/London", US: "America/New_York" }
    },
    { id: "once-a-day", type: "frequency_cap", max: 1, window: "day" }
  ]
})

const setUp = Effect.gen(function*() {
  const gw = yield* startGateway({ clock: { now: () => NOON } })
  const ops = yield* superadmin(gw.baseUrl)
  const a = yield* signUp(gw.baseUrl)
  const b = yield* signUp(gw.baseUrl)
  const put = yield* send("PUT", `${gw.baseUrl}/v1/policies`, policyFor(a.orgId), ops)
  expect(put.status, JSON.stringify(put.json)).toBe(200)
  const listed = yield* post(`${gw.baseUrl}/v1/blacklists/optout/entries`, { numbers: ["+4915112345604"] }, a.userAuth)
  expect(listed.json).toEqual({ changed: 1 })
  yield* insertList(gw, a.orgId, "lst_main", mainList)
  yield* insertList(gw, a.orgId, "lst_second", secondList)
  yield* insertList(gw, b.orgId, "lst_theirs", [{ msisdn: "4915112345699", country: "DE", vars: { name: "Zed" } }])
  return { gw, a, b }
})

describe("campaign preview and dry run", () => {
  it.live("the preview renders the first messages and counts every message's parts by encoding, as sending does", () =>
    Effect.gen(function*() {
      const { a, b, gw } = yield* setUp
      const id = yield* insertCampaign(gw, a, { lists: ["lst_main", "lst_second", "lst_theirs"], throttle: 10 })
      const preview = yield* get(`${gw.baseUrl}/v1/campaigns/${id}/preview?n=3`, a.userAuth)
      expect(preview.status, preview.text).toBe(200)
      expect(preview.json.messages).toEqual([
        { to: "+4915112345601", listId: "lst_main", pos: 1, text: "Hi Anna, 20% off today", encoding: "gsm7", segments: 1 },
        { to: "+48601234502", listId: "lst_main", pos: 2, text: "Hi Łukasz, 20% off today", encoding: "ucs2", segments: 1 },
        { to: "+4915112345603", listId: "lst_main", pos: 3, text: `Hi Bea, ${longNote}`, encoding: "gsm7", segments: 2 }
      ])
      // 7 distinct numbers (Anna once; another organisation's list not read); the nameless contact cannot be sent.
      expect(preview.json).toMatchObject({
        recipients: 7,
        totals: { messages: 6, segments: 7, gsm7: { messages: 5, segments: 6 }, ucs2: { messages: 1, segments: 1 } },
        unsendable: { missingVariable: 1, notRepresentable: 0, tooLong: 0 },
        missingLists: ["lst_theirs"]
      })

      // The same numbers for the editor's unsaved campaign; forcing GSM-7 makes the "ł" message unsendable.
      const draft = yield* post(`${gw.baseUrl}/v1/campaigns/preview?n=0`, {
        template: "Hi {{name}}, {{note|20% off today}}",
        lists: ["lst_main", "lst_second"],
        sender: "Shop",
        encoding: "gsm7"
      }, a.userAuth)
      expect(draft.status, JSON.stringify(draft.json)).toBe(200)
      expect(draft.json).toMatchObject({
        recipients: 7,
        messages: [],
        totals: { messages: 5, segments: 6, gsm7: { messages: 5, segments: 6 }, ucs2: { messages: 0, segments: 0 } },
        unsendable: { missingVariable: 1, notRepresentable: 1, tooLong: 0 }
      })
      const shown = yield* post(`${gw.baseUrl}/v1/campaigns/preview?n=2`, {
        template: "Hi {{name}}",
        lists: ["lst_main"],
        sender: "Shop",
        encoding: "gsm7"
      }, a.userAuth)
      expect((shown.json.messages as Array<unknown>)[1]).toEqual({
        to: "+48601234502",
        listId: "lst_main",
        pos: 2,
        text: "Hi Łukasz",
        encoding: "ucs2",
        segments: 1,
        problem: "character \"Ł\" is not in GSM 03.38"
      })
      const unknown = yield* post(`${gw.baseUrl}/v1/campaigns/preview`, { template: "x", lists: ["lst_main"], sender: "Shop", throttel: 3 }, a.userAuth)
      expect(unknown.status).toBe(400)
      expect(JSON.stringify(unknown.json.errors)).toContain("throttel")
      const badTemplate = yield* post(`${gw.baseUrl}/v1/campaigns/preview`, { template: "Hi {{name", lists: ["lst_main"], sender: "Shop" }, a.userAuth)
      expect(badTemplate.status).toBe(400)
      expect(badTemplate.json.errors).toEqual([expect.objectContaining({ field: "template" })])

      // Another organisation's campaign is not there; an app token does not read campaigns.
      expect((yield* get(`${gw.baseUrl}/v1/campaigns/${id}/preview`, b.userAuth)).status).toBe(404)
      expect((yield* get(`${gw.baseUrl}/v1/campaigns/${id}/dry-run`, b.userAuth)).status).toBe(404)
      expect((yield* get(`${gw.baseUrl}/v1/campaigns/${id}/dry-run`, a.auth)).status).toBe(403)
    }).pipe(Effect.scoped), 60_000)

  it.live("the dry run counts exclusions per rule and deferrals, estimates the finish, and sends and counts nothing", () =>
    Effect.gen(function*() {
      const { a, gw } = yield* setUp
      // Noon UTC: 13:00 in Berlin and Warsaw (after the window), 12:00 in London (inside), 07:00 in New York (before).
      const windowed = yield* insertCampaign(gw, a, {
        lists: ["lst_main", "lst_second"],
        throttle: 2,
        sendWindow: { from: "09:00", to: "12:30" }
      })
      const run = yield* get(`${gw.baseUrl}/v1/campaigns/${windowed}/dry-run`, a.userAuth)
      expect(run.status, run.text).toBe(200)
      expect(run.json).toMatchObject({
        campaignId: windowed,
        evaluatedAt: new Date(NOON).toISOString(),
        recipients: 7,
        toSend: 5,
        excluded: { total: 1, byRule: [{ ruleId: "optout", reason: "blacklisted", recipients: 1 }] },
        deferred: {
          total: 4,
          byRule: [{
            ruleId: "send_window",
            reason: "send_window",
            recipients: 4,
            // New York opens first (09:00 EST), Berlin and Warsaw the next morning (09:00 CET).
            firstUntil: "2026-12-23T14:00:00.000Z",
            lastUntil: "2026-12-24T08:00:00.000Z"
          }]
        },
        noRoute: { total: 0, byReason: [] },
        unsendable: { missingVariable: 1, notRepresentable: 0, tooLong: 0 },
        decidedAtSendTime: [{ ruleId: "once-a-day", kind: "frequency_cap", recipients: 5 }],
        parts: { messages: 5, segments: 6, gsm7: { messages: 4, segments: 5 }, ucs2: { messages: 1, segments: 1 } },
        routes: [{ target: "sim", messages: 5, segments: 6, capacityTps: 1000 }],
        missingLists: []
      })
      // The four deferred go when the last window opens, at 2 a second.
      expect(run.json.estimate).toMatchObject({ startAt: new Date(NOON).toISOString(), finishAt: "2026-12-24T08:00:02.000Z" })
      expect(String((run.json.estimate as { bottleneck: string }).bottleneck)).toContain("send_window")

      // Without a window, quiet hours defer New York (07:00 there) until 08:00 local.
      const open = yield* insertCampaign(gw, a, { lists: ["lst_main"], throttle: 1 })
      const quiet = yield* get(`${gw.baseUrl}/v1/campaigns/${open}/dry-run`, a.userAuth)
      expect(quiet.json).toMatchObject({
        toSend: 5,
        deferred: {
          total: 1,
          byRule: [{ ruleId: "night", reason: "quiet_hours", recipients: 1, firstUntil: "2026-12-23T13:00:00.000Z" }]
        }
      })

      // A plain campaign: the throttle sets the pace (20 messages at 4 a second: 5 seconds), not the 1,000 parts/s link.
      yield* insertList(gw, a.orgId, "lst_plain", Array.from({ length: 20 }, (_, i) => ({
        msisdn: `49151123457${String(i).padStart(2, "0")}`,
        country: "DE",
        vars: { name: `N${i}` }
      })))
      const plain = yield* insertCampaign(gw, a, { lists: ["lst_plain"], throttle: 4 })
      const paced = yield* get(`${gw.baseUrl}/v1/campaigns/${plain}/dry-run`, a.userAuth)
      expect(paced.json.estimate).toMatchObject({
        startAt: new Date(NOON).toISOString(),
        finishAt: new Date(NOON + 5_000).toISOString(),
        durationSeconds: 5,
        bottleneck: "campaign throttle"
      })

      // A campaign starting tomorrow at 10:00 in Berlin is judged then: Berlin inside the window, New York still asleep.
      const tomorrow = yield* insertCampaign(gw, a, {
        lists: ["lst_main"],
        throttle: 1,
        sendWindow: { from: "09:00", to: "12:30" },
        startAt: { at: "2026-12-24T10:00", timeZone: "Europe/Berlin" }
      })
      const later = yield* get(`${gw.baseUrl}/v1/campaigns/${tomorrow}/dry-run`, a.userAuth)
      expect(later.json).toMatchObject({
        evaluatedAt: "2026-12-24T09:00:00.000Z",
        deferred: { total: 1, byRule: [{ ruleId: "send_window", recipients: 1, firstUntil: "2026-12-24T14:00:00.000Z" }] }
      })

      // Nothing reached the SMSC, nothing was counted: the once-a-day cap still admits Finn's first real message.
      expect((yield* gw.sim.stats).submits).toBe(0)
      const first = yield* post(`${gw.baseUrl}/v1/messages`, { to: "+447911123456", from: "Shop", text: "Hi Finn" }, a.auth)
      expect(first.status, JSON.stringify(first.json)).toBe(202)
      const second = yield* post(`${gw.baseUrl}/v1/messages`, { to: "+447911123456", from: "Shop", text: "Hi again" }, a.auth)
      expect(second.json).toMatchObject({ reason: "frequency_cap", ruleId: "once-a-day" })
    }).pipe(Effect.scoped), 60_000)
})
