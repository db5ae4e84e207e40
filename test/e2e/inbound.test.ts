/**
 * Inbound (mobile-originated) messages end to end: the simulator SMSC delivers handsets' texts to the gateway's link;
 * the superadmin's routes send them to apps by number and keyword; concatenated parts come back as one message (or,
 * when a part never comes, as the parts that did after the reassembly wait); apps list them (REST, tenant-scoped) and
 * get them by signed callback; STOP puts the sender on the organisation's opt-out list (the policy then refuses
 * messages to it, campaigns exclude it) with a confirmation reply, START takes it off.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { join } from "node:path"
import { verifySignature } from "../../src/domain/Callback.ts"
import type { GatewayConfig } from "../../src/layers/Config.ts"
import { CampaignControl } from "../../src/pipeline/CampaignControl.ts"
import * as Simulator from "../../src/smpp/Simulator.ts"
import { moParts } from "../../src/smpp/Simulator.ts"
import type { SmscSimulator } from "../../src/smpp/Simulator.ts"
import { decodeShortMessage } from "../../src/smpp/Encoding.ts"
import { startReceiver } from "../fixtures/Callbacks.ts"
import { approvedCampaign, campaignOf, recipientCounts, seedList } from "../fixtures/Campaigns.ts"
import { writeNodeConfig } from "../fixtures/Cluster.ts"
import { tempDir } from "../fixtures/Databases.ts"
import { eventually } from "../fixtures/Eventually.ts"
import { freePort, killHard, spawnSmsgw, waitHealthy } from "../fixtures/Processes.ts"
import { get, post, send, signUp, startGateway, superadmin } from "../fixtures/Gateway.ts"
import type { RunningGateway } from "../fixtures/Gateway.ts"
import { client, MessageServiceClient, unary } from "../fixtures/GrpcClient.ts"
import { expectProblem, fieldsOf } from "../fixtures/Problems.ts"

const config = {
  callbacks: { allowPrivateNetworks: true, pollIntervalMs: 50, backoff: { initialMs: 100, maxMs: 400 } },
  inbound: { pollIntervalMs: 50, reassemblySeconds: 2 }
} satisfies Partial<GatewayConfig>

const within = (gw: RunningGateway) => <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  effect.pipe(Effect.provideContext(gw.context)) as Effect.Effect<A, E, never>

/** A handset sends `text` to `to`: the simulator delivers it to the gateway as an SMSC would (parts and all). */
const handset = (sim: SmscSimulator, from: string, to: string, text: string, only?: ReadonlyArray<number>, reference?: number) =>
  Effect.forEach(
    moParts({ from, to, text, ...(reference !== undefined ? { reference } : {}) }).filter((_, i) => only === undefined || only.includes(i)),
    (part) => sim.deliverMo(part),
    { discard: true }
  )

interface Listed {
  readonly id: string
  readonly appId: string
  readonly routeId: string
  readonly from: string
  readonly to: string
  readonly text: string
  readonly parts: number
  readonly missingParts: number
  readonly keyword: string | null
  readonly action: string | null
}

const listed = (baseUrl: string, auth: Record<string, string>, query = "") =>
  get(`${baseUrl}/v1/inbound${query}`, auth).pipe(Effect.map((r) => (r.json.items ?? []) as ReadonlyArray<Listed>))

/** Texts the SMSC received for `to`, decoded. */
const textsTo = (sim: SmscSimulator, to: string) =>
  Effect.map(sim.received, (all) =>
    all.filter((m) => m.destinationAddr.replace(/^\+/, "") === to.replace(/^\+/, "")).map((m) =>
      decodeShortMessage(m.shortMessage, m.dataCoding, (m.esmClass & 0x40) !== 0)
    ))

describe("inbound messages", () => {
  it.live("routes by number and keyword, reassembles parts, lists per tenant, posts signed callbacks; STOP and START", () =>
    Effect.gen(function*() {
      const receiver = yield* startReceiver()
      const gw = yield* startGateway({ config })
      const ops = yield* superadmin(gw.baseUrl)
      const a = yield* signUp(gw.baseUrl)
      const b = yield* signUp(gw.baseUrl)
      const patched = yield* send("PATCH", `${gw.baseUrl}/v1/apps/${a.appId}`, { callbackUrl: `${receiver.url}/mo` }, a.userAuth)
      expect(patched.status).toBe(200)
      const secret = String(patched.json.callbackSecret)

      const policy = {
        blacklists: [{ name: "a-optout", org: a.orgId, object: null }, { name: "b-optout", org: b.orgId, object: null }],
        rules: [{ id: "a-optout", scope: { org: a.orgId }, type: "blacklist", lists: ["a-optout"] }]
      }
      expect((yield* send("PUT", `${gw.baseUrl}/v1/policies`, policy, ops)).status).toBe(200)

      const routes = {
        routes: [
          {
            id: "a-long",
            number: "+447700900123",
            appId: a.appId,
            optOutList: "a-optout",
            replies: {
              en: { optOut: "You will get no more messages. Reply START to resume.", optIn: "Welcome back." },
              de: { optOut: "Abgemeldet." }
            }
          },
          { id: "a-shop", number: "12345", keyword: "shop", appId: a.appId },
          { id: "b-info", number: "12345", keyword: "INFO", appId: b.appId }
        ]
      }
      const url = `${gw.baseUrl}/v1/admin/inbound/routes`

      // Who may change them, and what is refused, each problem naming its field.
      expectProblem(yield* send("PUT", url, routes, a.userAuth), 403, "forbidden")
      const unknownKey = yield* send("PUT", url, { ...routes, extra: 1 }, ops)
      expect(unknownKey.status).toBe(400)
      const wrong = yield* send("PUT", url, {
        routes: [
          { id: "x", number: "12345", appId: "app_0000000000000000" },
          { id: "y", number: "+447700900123", appId: b.appId, optOutList: "a-optout" },
          { id: "y", number: "12345", keyword: "STOP", appId: b.appId },
          { id: "z", number: "12a", appId: b.appId }
        ]
      }, ops)
      expectProblem(wrong, 400, "validation")
      expect(fieldsOf(wrong)).toEqual(expect.arrayContaining(["routes[3].number"]))
      const semantic = yield* send("PUT", url, {
        routes: [
          { id: "x", number: "12345", appId: "app_0000000000000000" },
          { id: "y", number: "+447700900123", appId: b.appId, optOutList: "a-optout" },
          { id: "y", number: "12345", keyword: "STOP", appId: b.appId }
        ]
      }, ops)
      expectProblem(semantic, 400, "validation")
      expect(fieldsOf(semantic)).toEqual(expect.arrayContaining([
        "routes[0].appId",
        "routes[1].optOutList",
        "routes[2].id",
        "routes[2].keyword"
      ]))
      const saved = yield* send("PUT", url, routes, ops)
      expect(saved.status, JSON.stringify(saved.json)).toBe(200)
      expect(saved.json.version).toBe(1)
      expect((yield* get(url, ops)).json).toMatchObject({ version: 1, document: routes })

      // A plain reply to the long number, a two-part GSM text, a UCS-2 text, and keywords on the shared short code.
      const long = "Thanks for the offer. ".repeat(10).trim()
      yield* handset(gw.sim, "4915112345678", "447700900123", "Yes please")
      yield* handset(gw.sim, "4915112345679", "447700900123", long)
      yield* handset(gw.sim, "4915112345680", "447700900123", "Привет, как дела?")
      yield* handset(gw.sim, "4915112345681", "12345", "Shop: two shirts")
      yield* handset(gw.sim, "4915112345682", "12345", "info please")
      yield* handset(gw.sim, "4915112345683", "99999", "nobody listens here")

      const ofA = yield* eventually("app A's four messages", listed(gw.baseUrl, a.auth), { until: (items) => items.length === 4 })
      const byText = new Map(ofA.map((m) => [m.text, m]))
      expect(byText.get("Yes please")).toMatchObject({ from: "+4915112345678", to: "447700900123", routeId: "a-long", parts: 1, keyword: null })
      expect(byText.get(long)).toMatchObject({ parts: 2, missingParts: 0, from: "+4915112345679" })
      expect(byText.get("Привет, как дела?")).toMatchObject({ parts: 1 })
      expect(byText.get("Shop: two shirts")).toMatchObject({ routeId: "a-shop", keyword: "SHOP", to: "12345" })
      const ofB = yield* eventually("app B's message", listed(gw.baseUrl, b.userAuth), { until: (items) => items.length === 1 })
      expect(ofB[0]).toMatchObject({ text: "info please", routeId: "b-info", keyword: "INFO", appId: b.appId })

      // Tenants: B sees none of A's, by listing or by id; an app token its own app's only.
      const aMessage = byText.get("Yes please")!
      expect((yield* get(`${gw.baseUrl}/v1/inbound/${aMessage.id}`, b.userAuth)).status).toBe(404)
      expect((yield* get(`${gw.baseUrl}/v1/inbound/${aMessage.id}`, a.auth)).json).toMatchObject({ text: "Yes please" })
      expect((yield* get(`${gw.baseUrl}/v1/inbound?appId=${b.appId}`, a.auth)).status).toBe(403)
      expect((yield* listed(gw.baseUrl, a.userAuth, `?from=%2B4915112345678`)).map((m) => m.text)).toEqual(["Yes please"])
      expect((yield* get(`${gw.baseUrl}/v1/inbound?bogus=1`, a.auth)).status).toBe(400)
      const page = yield* get(`${gw.baseUrl}/v1/inbound?limit=3`, a.auth)
      expect((page.json.items as ReadonlyArray<unknown>).length).toBe(3)
      const rest = yield* listed(gw.baseUrl, a.auth, `?limit=3&cursor=${String(page.json.next)}`)
      expect(rest.length).toBe(1)

      // gRPC lists the same, paged, in its own words; an app token its own app's only.
      const grpc = yield* client(MessageServiceClient, gw.grpcAddress)
      type InboundPage = { messages: Array<{ id: string; text: string; keyword?: string; action: string; parts: number }>; next_page_token: string }
      const first = yield* unary<InboundPage>(grpc, "ListInboundMessages", { page_size: 3 }, a.auth)
      expect(first.ok).toBe(true)
      if (!first.ok) return
      expect(first.value.messages.map((m) => m.id)).toEqual(page.json.items && (page.json.items as ReadonlyArray<Listed>).map((m) => m.id))
      const second = yield* unary<InboundPage>(grpc, "ListInboundMessages", { page_size: 3, page_token: first.value.next_page_token }, a.auth)
      expect(second.ok && second.value.messages.map((m) => m.id)).toEqual(rest.map((m) => m.id))
      expect(second.ok && second.value.next_page_token).toBe("")
      const shop = yield* unary<InboundPage>(grpc, "ListInboundMessages", { from: "+4915112345681" }, a.auth)
      expect(shop.ok && shop.value.messages[0]).toMatchObject({ text: "Shop: two shirts", keyword: "SHOP", action: "INBOUND_ACTION_UNSPECIFIED", parts: 1 })
      const other = yield* unary(grpc, "ListInboundMessages", { app_id: b.appId }, a.auth)
      expect(other.ok ? 0 : other.error.code).toBe(7)
      const bad = yield* unary(grpc, "ListInboundMessages", { page_size: 501 }, a.auth)
      expect(bad.ok ? 0 : bad.error.code).toBe(3)

      // A's callbacks: one per message, signed with the app's secret, `message.received`.
      const posted = yield* eventually("four inbound callbacks", Effect.sync(() => [...receiver.requests]), {
        until: (rs) => rs.filter((r) => r.path === "/mo").length >= 4
      })
      for (const r of posted.filter((r) => r.path === "/mo")) {
        expect(verifySignature(secret, String(r.headers["smsgw-signature"]), r.body, Math.floor(Date.now() / 1000))).toBe(true)
        const body = JSON.parse(r.body) as Record<string, unknown>
        expect(body.type).toBe("message.received")
        expect(body.appId).toBe(a.appId)
        expect(byText.get(String(body.text))?.id).toBe(body.inboundId)
      }

      // A part that never comes: after the reassembly wait the message is made of the part that did.
      yield* handset(gw.sim, "4915112345684", "447700900123", long, [0])
      const partial = yield* eventually("the incomplete message", listed(gw.baseUrl, a.auth, "?from=%2B4915112345684"), {
        until: (items) => items.length === 1,
        timeout: 15_000
      })
      expect(partial[0]).toMatchObject({ parts: 1, missingParts: 1 })
      expect(long.startsWith(partial[0]!.text)).toBe(true)

      // Parts announced by the SAR TLVs (no UDH), second part first: joined in their order.
      for (const [seq, text] of [[2, "via SAR"], [1, "Hello "]] as const) {
        yield* gw.sim.deliverMo({ sourceAddr: "4915112345685", destinationAddr: "447700900123", shortMessage: Buffer.from(text), sar: { ref: 300, total: 2, seq } })
      }
      const sar = yield* eventually("the SAR message", listed(gw.baseUrl, a.auth, "?from=%2B4915112345685"), { until: (items) => items.length === 1 })
      expect(sar[0]).toMatchObject({ text: "Hello via SAR", parts: 2, missingParts: 0 })

      // STOP: a confirmation, then the number is on A's opt-out list: the policy refuses it, a campaign excludes it.
      const optedOut = "+4915112345678"
      yield* handset(gw.sim, "4915112345678", "447700900123", " stop. ")
      yield* eventually("the opt-out confirmation", textsTo(gw.sim, optedOut), {
        until: (texts) => texts.includes("You will get no more messages. Reply START to resume.")
      })
      const stopped = yield* eventually("STOP listed", listed(gw.baseUrl, a.auth, "?from=%2B4915112345678"), {
        until: (items) => items.some((m) => m.action === "opt_out")
      })
      expect(stopped.find((m) => m.action === "opt_out")).toMatchObject({ text: " stop. ", routeId: "a-long" })
      const refused = yield* eventually(
        "a message to the opted-out number refused",
        post(`${gw.baseUrl}/v1/messages`, { to: optedOut, from: "ACME", text: "offer" }, a.auth),
        { until: (r) => r.status === 422 }
      )
      expect(JSON.stringify(refused.json)).toContain("blacklisted")
      const run = within(gw)
      const list = yield* run(seedList(a.orgId, [
        { msisdn: "4915112345678", vars: { n: "1" } },
        { msisdn: "4915112345690", vars: { n: "2" } }
      ]))
      const campaign = yield* run(approvedCampaign(a.orgId, a.appId, { lists: [list], throttle: 100 }))
      yield* run(Effect.flatMap(Effect.service(CampaignControl), (c) => c.start(campaign)))
      yield* eventually("the campaign completed", run(campaignOf(campaign)), { timeout: 30_000, until: (c) => c.state === "completed" })
      expect(yield* run(recipientCounts(campaign))).toMatchObject({ submitted: 1, excluded: 1, "excluded:blacklisted": 1 })

      // START: off the list again (then the confirmation), and messages reach the number.
      yield* handset(gw.sim, "4915112345678", "447700900123", "Start")
      yield* eventually("the opt-in confirmation", textsTo(gw.sim, optedOut), { until: (texts) => texts.includes("Welcome back.") })
      expect((yield* post(`${gw.baseUrl}/v1/messages`, { to: optedOut, from: "ACME", text: "welcome" }, a.auth)).status).toBe(202)

      // German STOPP: the German confirmation.
      yield* handset(gw.sim, "4915112345691", "447700900123", "STOPP")
      yield* eventually("the German confirmation", textsTo(gw.sim, "+4915112345691"), { until: (texts) => texts.includes("Abgemeldet.") })

      // Each confirmation was sent once, though the processor may look at its parts again.
      const toOptedOut = yield* textsTo(gw.sim, optedOut)
      expect(toOptedOut.filter((t) => t === "Welcome back.").length).toBe(1)
      expect(toOptedOut.filter((t) => t.startsWith("You will get no more")).length).toBe(1)
    }), { timeout: 90_000 })

  it.live("what a link acknowledged survives the process: stored before the answer, routed after a SIGKILL and restart, parts across it joined", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const sim = yield* Simulator.start({ port: 0, receiptDelayMs: 50 })
      const port = yield* freePort
      const base = `http://127.0.0.1:${port}`
      const gateway = (enabled: boolean): GatewayConfig => ({
        http: { port, host: "127.0.0.1" },
        storage: { kind: "sqlite", path: join(dir, "gateway.db") },
        links: [{ id: "sim", host: "127.0.0.1", port: sim.port, systemId: "t", password: "t" }],
        auth: { superadmin: { email: "ops@example.com", password: "operator password 1" } },
        inbound: { enabled, pollIntervalMs: 50, reassemblySeconds: 60 }
      })
      const file = join(dir, "gateway.yaml")
      // The first process stores and answers, and routes nothing: everything waits in the store when it is killed.
      writeNodeConfig(file, gateway(false))
      const first = yield* spawnSmsgw(["serve", "--config", file])
      yield* waitHealthy(first, port)
      const t = yield* signUp(base)
      const ops = yield* superadmin(base)
      expect((yield* send("PUT", `${base}/v1/admin/inbound/routes`, { routes: [{ id: "r", number: "12345", appId: t.appId }] }, ops)).status).toBe(200)
      const long = "A reply long enough to take two parts. ".repeat(5).trim()
      for (let i = 0; i < 20; i++) yield* handset(sim, `49151000000${String(i).padStart(2, "0")}`, "12345", `reply ${i}`)
      yield* handset(sim, "4915100000099", "12345", long, [0], 77)
      const acked = yield* eventually("every part answered", sim.stats, { until: (s) => s.mosAcked === 21 })
      expect(acked.nacksByStatus).toEqual({})
      yield* killHard(first)

      writeNodeConfig(file, gateway(true))
      const second = yield* spawnSmsgw(["serve", "--config", file])
      yield* waitHealthy(second, port)
      yield* handset(sim, "4915100000099", "12345", long, [1], 77)
      const items = yield* eventually("all 21 messages", listed(base, t.auth, "?limit=100"), { timeout: 20_000, until: (m) => m.length === 21 })
      expect(new Set(items.map((m) => m.text))).toEqual(new Set([...Array.from({ length: 20 }, (_, i) => `reply ${i}`), long]))
      expect(items.find((m) => m.text === long)).toMatchObject({ parts: 2, missingParts: 0 })
    }).pipe(Effect.scoped), { timeout: 90_000 })
})
