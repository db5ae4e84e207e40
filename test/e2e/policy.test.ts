import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import type { PolicyRule } from "../../src/domain/Policy.ts"
import { DatabaseSync } from "node:sqlite"
import { join } from "node:path"
import { ObjectStore } from "../../src/storage/ObjectStore.ts"
import { get, post, send, signUp, startGateway, superadmin, waitForStatus } from "../fixtures/Gateway.ts"
import type { Tenant } from "../fixtures/Gateway.ts"
import { eventually } from "../fixtures/Eventually.ts"
import { s3Server } from "../fixtures/S3Server.ts"

/** The contact policy's clock, moved by the test: day-long windows without waiting a day. */
const testClock = (start: number) => {
  let t = start
  return { now: () => t, advance: (ms: number) => void (t += ms), set: (ms: number) => void (t = ms) }
}

const NOON = Date.UTC(2026, 0, 15, 12, 0)

let counter = 0
const submit = (baseUrl: string, tenant: Tenant, to: string, extra: Record<string, unknown> = {}) =>
  post(`${baseUrl}/v1/messages`, { to, from: "Shop", text: `message ${++counter}`, ...extra }, tenant.auth)

const expectRejected = (
  r: { status: number; json: Record<string, unknown> },
  reason: string,
  ruleId: string
) => {
  expect(r.status, JSON.stringify(r.json)).toBe(422)
  expect(r.json).toMatchObject({ type: "urn:smsgw:problem:policy-rejected", reason, ruleId })
  expect(typeof r.json.messageId).toBe("string")
}

describe("contact policy through the REST API", () => {
  it.live("frequency caps per scope and window, with the time moved instead of waited for", () =>
    Effect.gen(function*() {
      const clock = testClock(NOON)
      const gw = yield* startGateway({
        clock,
        config: { policy: { rules: [{ id: "promo-2-per-hour", classes: ["promotional"], type: "frequency_cap", max: 2, window: "hour" }] } }
      })
      const a = yield* signUp(gw.baseUrl)
      const b = yield* signUp(gw.baseUrl)
      const promo = { messageClass: "promotional" }

      // Global scope: at most 2 promotions per recipient per (UTC) hour, whoever sends them.
      expect((yield* submit(gw.baseUrl, a, "+4915112345678", promo)).status).toBe(202)
      expect((yield* submit(gw.baseUrl, b, "+4915112345678", promo)).status).toBe(202)
      const third = yield* submit(gw.baseUrl, a, "+4915112345678", promo)
      expectRejected(third, "frequency_cap", "promo-2-per-hour")
      expect(third.json.retryAfterSeconds).toBe(3600)
      // The refused message is recorded with its reason and rule.
      const view = yield* get(`${gw.baseUrl}/v1/messages/${String(third.json.messageId)}`, a.auth)
      expect(view.json).toMatchObject({ status: "rejected", reason: "frequency_cap", ruleId: "promo-2-per-hour" })
      // Transactional messages and other recipients are not counted by this rule.
      expect((yield* submit(gw.baseUrl, a, "+4915112345678")).status).toBe(202)
      expect((yield* submit(gw.baseUrl, a, "+4915112345679", promo)).status).toBe(202)
      // The next hour starts a new window.
      clock.advance(3600_000)
      expect((yield* submit(gw.baseUrl, a, "+4915112345678", promo)).status).toBe(202)

      // Rules scoped to an app and to an organisation, set live through the API.
      const ops = yield* superadmin(gw.baseUrl)
      const rules: ReadonlyArray<PolicyRule> = [
        { id: "promo-2-per-hour", classes: ["promotional"], type: "frequency_cap", max: 2, window: "hour" },
        { id: "b-1-per-minute", scope: { app: b.appId }, type: "frequency_cap", max: 1, window: "minute" },
        { id: "a-2-per-10min", scope: { org: a.orgId }, classes: ["transactional"], type: "frequency_cap", max: 2, window: "rolling", windowSeconds: 600 }
      ]
      const put = yield* send("PUT", `${gw.baseUrl}/v1/policies`, { rules }, ops)
      expect(put.status, JSON.stringify(put.json)).toBe(200)
      expect(put.json.version).toBe(2)

      expect((yield* submit(gw.baseUrl, b, "+447911123456")).status).toBe(202)
      expectRejected(yield* submit(gw.baseUrl, b, "+447911123456"), "frequency_cap", "b-1-per-minute")
      // The app rule is not the organisation a's business, and a's rule is not b's.
      expect((yield* submit(gw.baseUrl, a, "+447911123456")).status).toBe(202)
      expect((yield* submit(gw.baseUrl, a, "+447911123456")).status).toBe(202)
      expectRejected(yield* submit(gw.baseUrl, a, "+447911123456"), "frequency_cap", "a-2-per-10min")
      clock.advance(60_000)
      expect((yield* submit(gw.baseUrl, b, "+447911123456")).status).toBe(202)
      // Rolling: a minute later both of a's still count; ten minutes after them, neither does.
      expectRejected(yield* submit(gw.baseUrl, a, "+447911123456"), "frequency_cap", "a-2-per-10min")
      clock.advance(540_000)
      expect((yield* submit(gw.baseUrl, a, "+447911123456")).status).toBe(202)
      expect((yield* submit(gw.baseUrl, a, "+447911123456")).status).toBe(202)
      expectRejected(yield* submit(gw.baseUrl, a, "+447911123456"), "frequency_cap", "a-2-per-10min")

      // An app whose messages are promotional by default: a message that does not say counts as a promotion.
      const patched = yield* send("PATCH", `${gw.baseUrl}/v1/apps/${a.appId}`, { messageClass: "promotional" }, a.userAuth)
      expect(patched.json.messageClass).toBe("promotional")
      const downgrade = yield* submit(gw.baseUrl, a, "+4915199999999", { messageClass: "transactional" })
      expect(downgrade.status).toBe(400)
      expect(downgrade.json.errors).toEqual([expect.objectContaining({ field: "messageClass" })])
      expect((yield* submit(gw.baseUrl, a, "+4915199999999")).status).toBe(202)
      expect((yield* submit(gw.baseUrl, a, "+4915199999999")).status).toBe(202)
      expectRejected(yield* submit(gw.baseUrl, a, "+4915199999999"), "frequency_cap", "promo-2-per-hour")
    }).pipe(Effect.scoped), 60_000)

  it.live("with counters written behind to Redis, caps and dedup count on the policy's clock", () =>
    Effect.gen(function*() {
      // A clock far from the wall clock: pruning and TTLs must follow it, not Date.now().
      const clock = testClock(Date.UTC(2025, 5, 1, 12, 0))
      const gw = yield* startGateway({
        clock,
        config: {
          policy: {
            store: "redis",
            redis: { keyPrefix: `smsgw:e2e:${crypto.randomUUID().slice(0, 8)}:` },
            flushIntervalMs: 10,
            rules: [
              { id: "two-a-day", type: "frequency_cap", max: 2, window: "day" },
              { id: "same-text", type: "dedup", windowSeconds: 600, mode: "reject" }
            ]
          }
        }
      })
      const a = yield* signUp(gw.baseUrl)
      expect((yield* submit(gw.baseUrl, a, "+4915112345678")).status).toBe(202)
      yield* Effect.sleep(100)
      expect((yield* submit(gw.baseUrl, a, "+4915112345678")).status).toBe(202)
      yield* Effect.sleep(100)
      expectRejected(yield* submit(gw.baseUrl, a, "+4915112345678"), "frequency_cap", "two-a-day")
      const text = { to: "+4915112345679", from: "Bank", text: "code 1" }
      expect((yield* post(`${gw.baseUrl}/v1/messages`, text, a.auth)).status).toBe(202)
      yield* Effect.sleep(100)
      expectRejected(yield* post(`${gw.baseUrl}/v1/messages`, text, a.auth), "duplicate", "same-text")
      clock.advance(86_400_000)
      expect((yield* submit(gw.baseUrl, a, "+4915112345678")).status).toBe(202)
    }).pipe(Effect.scoped), 60_000)

  it.live("dedup rejects a repeat, or answers with the first message's id and sends nothing again", () =>
    Effect.gen(function*() {
      const clock = testClock(NOON)
      const gw = yield* startGateway({
        clock,
        config: {
          policy: {
            rules: [
              { id: "otp-once", classes: ["transactional"], type: "dedup", windowSeconds: 60, mode: "reject" },
              { id: "promo-once", classes: ["promotional"], type: "dedup", windowSeconds: 3600, mode: "return_first" }
            ]
          }
        }
      })
      const a = yield* signUp(gw.baseUrl)
      const b = yield* signUp(gw.baseUrl)
      const otp = { to: "+4915112345678", from: "Bank", text: "Your code is 4711" }
      const first = yield* post(`${gw.baseUrl}/v1/messages`, otp, a.auth)
      expect(first.status).toBe(202)
      const again = yield* post(`${gw.baseUrl}/v1/messages`, otp, a.auth)
      expectRejected(again, "duplicate", "otp-once")
      expect(again.json.retryAfterSeconds).toBe(60)
      // Another text, another sender, another organisation: not duplicates.
      expect((yield* post(`${gw.baseUrl}/v1/messages`, { ...otp, text: "Your code is 4712" }, a.auth)).status).toBe(202)
      expect((yield* post(`${gw.baseUrl}/v1/messages`, { ...otp, from: "Bank2" }, a.auth)).status).toBe(202)
      expect((yield* post(`${gw.baseUrl}/v1/messages`, otp, b.auth)).status).toBe(202)
      clock.advance(61_000)
      expect((yield* post(`${gw.baseUrl}/v1/messages`, otp, a.auth)).status).toBe(202)

      const promo = { to: "+447911123456", from: "Shop", text: "Winter sale: 20% off", messageClass: "promotional" }
      const original = yield* post(`${gw.baseUrl}/v1/messages`, promo, a.auth)
      expect(original.status).toBe(202)
      expect(original.json.duplicate).toBeUndefined()
      const repeat = yield* post(`${gw.baseUrl}/v1/messages`, promo, a.auth)
      expect(repeat.status).toBe(202)
      expect(repeat.json).toMatchObject({ id: original.json.id, duplicate: true, status: "accepted" })
      yield* waitForStatus(gw.baseUrl, String(original.json.id), "delivered", 10_000, a.auth)
      const received = (yield* gw.sim.received).filter((m) => Buffer.from(m.shortMessage).toString("latin1") === promo.text)
      expect(received).toHaveLength(1)
      // The other organisation's same promotion is its own message.
      const theirs = yield* post(`${gw.baseUrl}/v1/messages`, promo, b.auth)
      expect(theirs.status).toBe(202)
      expect(theirs.json.id).not.toBe(original.json.id)
    }).pipe(Effect.scoped), 60_000)

  it.live("a message the store fails to accept gives its policy counts back: the retry is not a duplicate of it", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({
        config: {
          policy: {
            rules: [
              { id: "once", type: "dedup", windowSeconds: 3600, mode: "return_first" },
              { id: "one-a-day", type: "frequency_cap", max: 1, window: "day" }
            ]
          }
        }
      })
      const a = yield* signUp(gw.baseUrl)
      // A fault in the real store: inserting this text fails, once.
      const db = new DatabaseSync(join(gw.dataDir, "gateway.db"))
      db.exec(`CREATE TRIGGER fail_once BEFORE INSERT ON messages WHEN NEW.text = 'fail me'
        BEGIN SELECT RAISE(ABORT, 'injected failure'); END`)
      const otp = { to: "+4915112345678", from: "Bank", text: "fail me" }
      expect((yield* post(`${gw.baseUrl}/v1/messages`, otp, a.auth)).status).toBe(503)
      db.exec("DROP TRIGGER fail_once")
      db.close()
      // The client retries: a new message, accepted and sent — not a "duplicate" of one that never existed, and the
      // cap of one a day was not spent by it.
      const retried = yield* post(`${gw.baseUrl}/v1/messages`, otp, a.auth)
      expect(retried.status).toBe(202)
      expect(retried.json.duplicate).toBeUndefined()
      expect((yield* waitForStatus(gw.baseUrl, String(retried.json.id), "delivered", 10_000, a.auth)).status).toBe("delivered")
      expectRejected(yield* post(`${gw.baseUrl}/v1/messages`, { ...otp, text: "another" }, a.auth), "frequency_cap", "one-a-day")
    }).pipe(Effect.scoped), 60_000)

  it.live("quiet hours of the destination country keep promotions out at night", () =>
    Effect.gen(function*() {
      // 21:30 UTC in January: 22:30 in Berlin, 21:30 in London.
      const clock = testClock(Date.UTC(2026, 0, 15, 21, 30))
      const gw = yield* startGateway({
        clock,
        config: { policy: { rules: [{ id: "night", type: "quiet_hours", from: "21:00", to: "08:00", countries: { DE: "Europe/Berlin" } }] } }
      })
      const a = yield* signUp(gw.baseUrl)
      const night = yield* submit(gw.baseUrl, a, "+4915112345678", { messageClass: "promotional" })
      expectRejected(night, "quiet_hours", "night")
      // Until 08:00 in Berlin = 07:00 UTC: 9.5 hours.
      expect(night.json.retryAfterSeconds).toBe(9.5 * 3600)
      expect((yield* submit(gw.baseUrl, a, "+4915112345678", { messageClass: "transactional" })).status).toBe(202)
      expect((yield* submit(gw.baseUrl, a, "+447911123456", { messageClass: "promotional" })).status).toBe(202)
      clock.set(Date.UTC(2026, 0, 16, 7, 0))
      expect((yield* submit(gw.baseUrl, a, "+4915112345678", { messageClass: "promotional" })).status).toBe(202)
    }).pipe(Effect.scoped), 60_000)

  it.live("blacklists from an S3 object: loaded, reloaded when the object changes, edited through the API", () =>
    Effect.gen(function*() {
      const s3 = yield* s3Server()
      const objects = Context.get(
        yield* Layer.build(ObjectStore.layerS3({ ...s3, forcePathStyle: true, timeoutMs: 10_000 })),
        ObjectStore
      )
      yield* objects.put("blacklists/dnd.txt", "# national do-not-disturb\n+447911123456\n4915112345678\n")
      const gw = yield* startGateway({
        config: {
          objectStore: { kind: "s3", ...s3, forcePathStyle: true },
          policy: {
            blacklists: [{ name: "dnd" }],
            rules: [{ id: "dnd", type: "blacklist", lists: ["dnd"] }],
            blacklistPollSeconds: 1
          }
        }
      })
      const a = yield* signUp(gw.baseUrl)
      const b = yield* signUp(gw.baseUrl)
      const ops = yield* superadmin(gw.baseUrl)
      // Loaded in the background at start.
      yield* eventually("list loaded", Effect.map(submit(gw.baseUrl, a, "+447911123456"), (r) => r.status === 422 ? r : undefined))
      expectRejected(yield* submit(gw.baseUrl, a, "+4915112345678"), "blacklisted", "dnd")
      expect((yield* submit(gw.baseUrl, a, "+4915112345601")).status).toBe(202)

      // A changed object (new ETag) is found by the background check and swapped in.
      yield* objects.put("blacklists/dnd.txt", "+447911123456\n+4915112345601\n")
      yield* eventually("changed list swapped in", Effect.map(submit(gw.baseUrl, a, "+4915112345601"), (r) => r.status === 422 ? r : undefined))
      expect((yield* submit(gw.baseUrl, a, "+4915112345678")).status).toBe(202)
      const lists = yield* get(`${gw.baseUrl}/v1/blacklists`, ops)
      expect(lists.json).toEqual([expect.objectContaining({ name: "dnd", baseEntries: 2, stale: false, object: "blacklists/dnd.txt" })])

      // Entries through the API, on top of the file: list a number, unlist one of the file's.
      const added = yield* post(`${gw.baseUrl}/v1/blacklists/dnd/entries`, { numbers: ["+4915112345602"] }, ops)
      expect(added.status, JSON.stringify(added.json)).toBe(200)
      expect(added.json).toEqual({ changed: 1 })
      expectRejected(yield* submit(gw.baseUrl, a, "+4915112345602"), "blacklisted", "dnd")
      const removed = yield* send("DELETE", `${gw.baseUrl}/v1/blacklists/dnd/entries`, { numbers: ["+447911123456"] }, ops)
      expect(removed.json).toEqual({ changed: 1 })
      expect((yield* submit(gw.baseUrl, a, "+447911123456")).status).toBe(202)
      const bad = yield* post(`${gw.baseUrl}/v1/blacklists/dnd/entries`, { numbers: ["+4915112345603", "12ab"] }, ops)
      expect(bad.status).toBe(400)
      expect(bad.json.errors).toEqual([expect.objectContaining({ field: "numbers[1]" })])
      // A tenant may not touch the global list, nor learn it exists.
      expect((yield* post(`${gw.baseUrl}/v1/blacklists/dnd/entries`, { numbers: ["+4915112345604"] }, a.userAuth)).status).toBe(404)

      // An organisation's own opt-out list, managed by its admins, applied to its messages only.
      const policy = {
        blacklists: [{ name: "dnd" }, { name: "a-optout", org: a.orgId }],
        rules: [
          { id: "dnd", type: "blacklist", lists: ["dnd"] },
          { id: "a-optout", scope: { org: a.orgId }, type: "blacklist", lists: ["a-optout"] }
        ]
      }
      expect((yield* send("PUT", `${gw.baseUrl}/v1/policies`, policy, ops)).status).toBe(200)
      expect((yield* post(`${gw.baseUrl}/v1/blacklists/a-optout/entries`, { numbers: ["+4915112345605"] }, a.userAuth)).json).toEqual({ changed: 1 })
      expectRejected(yield* submit(gw.baseUrl, a, "+4915112345605"), "blacklisted", "a-optout")
      expect((yield* submit(gw.baseUrl, b, "+4915112345605")).status).toBe(202)
      expect((yield* post(`${gw.baseUrl}/v1/blacklists/a-optout/entries`, { numbers: ["+4915112345606"] }, b.userAuth)).status).toBe(404)
      expect((yield* get(`${gw.baseUrl}/v1/blacklists`, a.userAuth)).json).toEqual([expect.objectContaining({ name: "a-optout", org: a.orgId, added: 1 })])

      // An operator's reload finds a change at once, without waiting for the background check.
      yield* objects.put("blacklists/dnd.txt", "+4915112345607\n")
      const reloaded = yield* post(`${gw.baseUrl}/v1/blacklists/dnd/reload`, {}, ops)
      expect(reloaded.json).toMatchObject({ name: "dnd", baseEntries: 1, stale: false })
      expectRejected(yield* submit(gw.baseUrl, a, "+4915112345607"), "blacklisted", "dnd")
    }).pipe(Effect.scoped), 90_000)

  it.live("the policy API: superadmins read and replace it, versioned; bad documents are named field by field", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({ config: { policy: { rules: [{ id: "cap", type: "frequency_cap", max: 5, window: "day" }] } } })
      const a = yield* signUp(gw.baseUrl)
      const ops = yield* superadmin(gw.baseUrl)
      const current = yield* get(`${gw.baseUrl}/v1/policies`, ops)
      expect(current.json).toMatchObject({ version: 1, createdBy: "config", rules: [{ id: "cap", max: 5 }] })
      expect((yield* get(`${gw.baseUrl}/v1/policies`, a.userAuth)).status).toBe(403)
      expect((yield* send("PUT", `${gw.baseUrl}/v1/policies`, { rules: [] }, a.userAuth)).status).toBe(403)

      const invalid = yield* send("PUT", `${gw.baseUrl}/v1/policies`, {
        rules: [{ id: "x", type: "frequency_cap", max: 3, window: "rolling" }, { id: "x", type: "dedup", windowSeconds: 10, mode: "reject" }]
      }, ops)
      expect(invalid.status).toBe(400)
      expect((invalid.json.errors as Array<{ field: string }>).map((e) => e.field)).toEqual(["rules[0].windowSeconds", "rules[1].id"])
      const malformed = yield* send("PUT", `${gw.baseUrl}/v1/policies`, { rules: [{ id: "y", type: "frequency_cap", max: -1, window: "week" }] }, ops)
      expect(malformed.status).toBe(400)
      expect((malformed.json.errors as Array<{ field: string }>).every((e) => e.field.startsWith("rules[0]"))).toBe(true)

      const next = { rules: [{ id: "cap", type: "frequency_cap", max: 1, window: "day" }], expectedVersion: 1 }
      const replaced = yield* send("PUT", `${gw.baseUrl}/v1/policies`, next, ops)
      expect(replaced.json).toMatchObject({ version: 2, rules: [{ id: "cap", max: 1 }] })
      expect((yield* send("PUT", `${gw.baseUrl}/v1/policies`, next, ops)).status).toBe(409)
      // Live at once on this node.
      expect((yield* submit(gw.baseUrl, a, "+4915112345678")).status).toBe(202)
      expectRejected(yield* submit(gw.baseUrl, a, "+4915112345678"), "frequency_cap", "cap")
    }).pipe(Effect.scoped), 60_000)
})
