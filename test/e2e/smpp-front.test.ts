/**
 * The SMPP server front from an ESME's side (docs/smpp-server.md), over real sockets with npm `smpp`'s own client:
 * credentials through the API, binds and their refusals, submits through the pipeline (the REST id, the simulator
 * SMSC reached), each refusal's command_status, a window answered by sequence number, receipts as deliver_sm (also to
 * a receiver that binds after the receipt came), a handset's reply routed to the app delivered to its receiver bind, and
 * PDUs no ESME should send.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Result } from "effect"
import { SqlClient } from "effect/sql"
import { readFileSync } from "node:fs"
import type { PDU } from "smpp"
import type { GatewayConfig } from "../../src/layers/Config.ts"
import { SmppServer } from "../../src/pipeline/SmppFront.ts"
import { CommandStatus } from "../../src/smpp/CommandStatus.ts"
import { parseReceipt } from "../../src/smpp/Receipt.ts"
import { moParts } from "../../src/smpp/Simulator.ts"
import { segment } from "../../src/smpp/Encoding.ts"
import { bind, bound, connect, rawPdu, rawSocket, submitFields } from "../fixtures/Esme.ts"
import { selfSigned } from "../fixtures/Certificates.ts"
import { eventually } from "../fixtures/Eventually.ts"
import { get, post, send, signUp, startGateway, superadmin, waitForStatus } from "../fixtures/Gateway.ts"
import type { RunningGateway } from "../fixtures/Gateway.ts"

const {
  ESME_ROK,
  ESME_RINVCMDID,
  ESME_RINVCMDLEN,
  ESME_RINVBNDSTS,
  ESME_RALYBND,
  ESME_RBINDFAIL,
  ESME_RINVPASWD,
  ESME_RINVDSTADR,
  ESME_RINVESMCLASS,
  ESME_RSUBMITFAIL,
  ESME_RTHROTTLED,
  ESME_RX_T_APPN
} = CommandStatus

/** Short timers so that waits are tenths of seconds; a cap of two binds per app; one message per recipient a day. */
const config: Partial<GatewayConfig> = {
  smppServer: { enabled: true, host: "127.0.0.1", port: 0, bindTimeoutSeconds: 1, maxConnectionsPerApp: 2, window: 10 },
  callbacks: { pollIntervalMs: 50, backoff: { initialMs: 100, maxMs: 400 } },
  policy: { rules: [{ id: "once-a-day", type: "frequency_cap", max: 1, window: "day" }] }
}

/** A recipient of its own for each message: the policy caps one message per recipient a day. */
let nextRecipient = 10
const recipient = () => `49151123456${String(nextRecipient++).padStart(2, "0")}`

const portOf = (gw: RunningGateway) => Context.get(gw.context as Context.Context<SmppServer>, SmppServer).address.port

/** A tenant whose app has SMPP credentials; the password as the API showed it once. */
const smppTenant = (gw: RunningGateway, systemId: string, options: { readonly allowList?: ReadonlyArray<string> } = {}) =>
  Effect.gen(function*() {
    const t = yield* signUp(gw.baseUrl, options)
    const made = yield* send("PUT", `${gw.baseUrl}/v1/apps/${t.appId}/smpp`, { systemId }, t.userAuth)
    expect(made.status).toBe(200)
    return { t, systemId, password: String(made.json.password) }
  })

const textOf = (pdu: PDU) => pdu.short_message instanceof Uint8Array ? Buffer.from(pdu.short_message).toString("latin1") : ""

describe("SMPP server front", () => {
  it.live("credentials through the API: shown once, checked, unique, rotated, removed; audited", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({ config })
      const t = yield* signUp(gw.baseUrl)
      const app = `${gw.baseUrl}/v1/apps/${t.appId}`
      const bad = yield* send("PUT", `${app}/smpp`, { systemId: "has space" }, t.userAuth)
      expect(bad.status).toBe(400)
      expect(JSON.stringify(bad.json)).toContain("systemId")
      const tooLong = yield* send("PUT", `${app}/smpp`, { systemId: "a".repeat(16) }, t.userAuth)
      expect(tooLong.status).toBe(400)
      const extra = yield* send("PUT", `${app}/smpp`, { systemId: "acme01", password: "mine" }, t.userAuth)
      expect(extra.status).toBe(400)
      expect(JSON.stringify(extra.json)).toContain("password")
      const byApp = yield* send("PUT", `${app}/smpp`, { systemId: "acme01" }, t.auth)
      expect(byApp.status).toBe(403)

      const made = yield* send("PUT", `${app}/smpp`, { systemId: "acme01" }, t.userAuth)
      expect(made.status).toBe(200)
      expect(made.json.systemId).toBe("acme01")
      const password = String(made.json.password)
      expect(password).toMatch(/^[A-HJ-NP-Za-hjkmnp-z2-9]{8}$/)
      const read = yield* get(app, t.userAuth)
      expect(read.json.smppSystemId).toBe("acme01")
      expect(JSON.stringify(read.json)).not.toContain(password)

      const other = yield* signUp(gw.baseUrl)
      const taken = yield* send("PUT", `${gw.baseUrl}/v1/apps/${other.appId}/smpp`, { systemId: "ACME01" }, other.userAuth)
      expect(taken.status).toBe(409)

      const port = portOf(gw)
      const first = yield* connect(port)
      expect((yield* bind(first, "transceiver", "acme01", password)).command_status).toBe(ESME_ROK)
      const rotated = yield* post(`${app}/smpp/password`, {}, t.userAuth)
      expect(rotated.status).toBe(200)
      const next = String(rotated.json.password)
      expect(next).not.toBe(password)
      const old = yield* connect(port)
      expect((yield* bind(old, "transceiver", "acme01", password)).command_status).toBe(ESME_RINVPASWD)
      const fresh = yield* connect(port)
      expect((yield* bind(fresh, "transmitter", "acme01", next)).command_status).toBe(ESME_ROK)

      expect((yield* send("DELETE", `${app}/smpp`, undefined, t.userAuth)).status).toBe(204)
      expect((yield* get(app, t.userAuth)).json.smppSystemId).toBeUndefined()
      const gone = yield* connect(port)
      expect((yield* bind(gone, "transceiver", "acme01", next)).command_status).toBe(ESME_RINVPASWD)
      expect((yield* send("DELETE", `${app}/smpp`, undefined, t.userAuth)).status).toBe(404)

      const actions = (yield* get(`${gw.baseUrl}/v1/audit/actions`, t.userAuth)).json as unknown as Array<string>
      for (const action of ["app.smpp_set", "app.smpp_password_rotated", "app.smpp_removed"]) expect(actions).toContain(action)
      const audit = yield* get(`${gw.baseUrl}/v1/audit`, t.userAuth)
      expect(audit.text).toContain("systemId=acme01")
      expect(audit.text).not.toContain(password)
    }).pipe(Effect.scoped), 60_000)

  it.live("binds: each mode, refusals by status, the per-app cap, bind timeout, enquire_link, unbind", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({ config })
      const port = portOf(gw)
      const { password } = yield* smppTenant(gw, "binds01")
      const fenced = yield* smppTenant(gw, "fenced01", { allowList: ["10.0.0.0/8"] })

      const wrong = yield* connect(port)
      expect((yield* bind(wrong, "transceiver", "binds01", "nottheone")).command_status).toBe(ESME_RINVPASWD)
      // The same status for a systemId nobody has: a guesser cannot tell which exist.
      const unknown = yield* connect(port)
      expect((yield* bind(unknown, "transceiver", "nobody", "whatever")).command_status).toBe(ESME_RINVPASWD)
      const outside = yield* connect(port)
      expect((yield* bind(outside, "transceiver", "fenced01", fenced.password)).command_status).toBe(ESME_RBINDFAIL)

      const tx = yield* bound(port, "transmitter", "binds01", password)
      const rx = yield* bound(port, "receiver", "binds01", password)
      const third = yield* connect(port)
      expect((yield* bind(third, "transceiver", "binds01", password)).command_status).toBe(ESME_RALYBND)
      // A receiver may not submit; a transmitter may not send deliver_sm.
      expect((yield* rx.call("submit_sm", submitFields(recipient(), "hi"))).command_status).toBe(ESME_RINVBNDSTS)
      expect((yield* tx.call("deliver_sm", submitFields(recipient(), "hi"))).command_status).toBe(ESME_RINVBNDSTS)
      expect((yield* tx.call("enquire_link")).command_status).toBe(ESME_ROK)
      const unbound = yield* tx.call("unbind")
      expect(unbound.command).toBe("unbind_resp")
      yield* tx.closed
      // The slot freed: a transceiver binds now.
      yield* eventually("the transmitter's slot freed", Effect.sync(() =>
        Context.get(gw.context as Context.Context<SmppServer>, SmppServer).binds().filter((b) => b.mode === "transmitter").length === 0))
      const trx = yield* bound(port, "transceiver", "binds01", password)
      expect((yield* trx.call("enquire_link")).command_status).toBe(ESME_ROK)

      // Connected, never bound: closed after bindTimeoutSeconds.
      const idle = yield* rawSocket(port)
      yield* eventually("the unbound connection closed", Effect.sync(() => idle.isClosed()), { timeout: 5_000 })
    }).pipe(Effect.scoped), 60_000)

  it.live("submits: the REST id, delivered through the SMSC, refusals by status, a window answered by sequence number", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({ config })
      const port = portOf(gw)
      const { t, password } = yield* smppTenant(gw, "submit01")
      const esme = yield* bound(port, "transceiver", "submit01", password)

      const to = recipient()
      const resp = yield* esme.call("submit_sm", submitFields(to, "Hello over SMPP"))
      expect(resp.command_status).toBe(ESME_ROK)
      const id = String(resp.message_id)
      const view = yield* waitForStatus(gw.baseUrl, id, "delivered", 15_000, t.auth)
      expect(view).toMatchObject({ id, from: "ACME" })
      const reached = yield* gw.sim.received
      expect(reached.filter((m) => m.destinationAddr === to).map((m) => Buffer.from(m.shortMessage).toString("latin1"))).toEqual(["Hello over SMPP"])

      // UCS-2 and message_payload are read as well.
      const ucs2 = yield* esme.call("submit_sm", submitFields(recipient(), "", {
        data_coding: 8,
        short_message: Buffer.alloc(0),
        message_payload: Buffer.from("Grüße 👋", "utf16le").swap16()
      }))
      expect(ucs2.command_status).toBe(ESME_ROK)
      expect((yield* get(`${gw.baseUrl}/v1/messages/${String(ucs2.message_id)}`, t.auth)).json).toMatchObject({ encoding: "ucs2" })

      // The policy's cap: the same recipient again is refused, temporarily.
      expect((yield* esme.call("submit_sm", submitFields(to, "again"))).command_status).toBe(ESME_RX_T_APPN)
      expect((yield* esme.call("submit_sm", submitFields("12", "bad number"))).command_status).toBe(ESME_RINVDSTADR)
      // A UDH that is no concatenation header (a port-addressing element only) is refused.
      const ported = Buffer.from([6, 0x05, 4, 0x0b, 0x84, 0x23, 0xf0, 0x41])
      expect((yield* esme.call("submit_sm", submitFields(recipient(), "", { esm_class: 0x40, short_message: ported }))).command_status)
        .toBe(ESME_RINVESMCLASS)

      // A window of submits at once: every answer carries its request's sequence number and a distinct id.
      const answers = yield* Effect.forEach(
        Array.from({ length: 20 }, (_, i) => i),
        (i) => Effect.map(esme.call("submit_sm", submitFields(recipient(), `window ${i}`, { sequence_number: 1000 + i })), (r) => ({ i, r })),
        { concurrency: "unbounded" }
      )
      for (const { i, r } of answers) {
        expect(r.command_status).toBe(ESME_ROK)
        expect(r.sequence_number).toBe(1000 + i)
      }
      expect(new Set(answers.map(({ r }) => r.message_id)).size).toBe(20)

      // An app limited to one message a second: a burst is throttled.
      const limited = yield* smppTenant(gw, "limited01")
      expect((yield* send("PATCH", `${gw.baseUrl}/v1/apps/${limited.t.appId}`, { limits: { perSecond: 1, burst: 1 } }, limited.t.userAuth)).status).toBe(200)
      const slow = yield* bound(port, "transmitter", "limited01", limited.password)
      const burst = yield* Effect.forEach(Array.from({ length: 5 }, () => recipient()), (n) => slow.call("submit_sm", submitFields(n, "burst")), {
        concurrency: "unbounded"
      })
      expect(burst.some((r) => r.command_status === ESME_RTHROTTLED)).toBe(true)
    }).pipe(Effect.scoped), 90_000)

  it.live("concatenated submits: parts answered once the whole is accepted, each with its own id and its own receipt; parts that never all come are refused", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({ config: { ...config, smppServer: { ...config.smppServer, concatTimeoutSeconds: 1 } } })
      const port = portOf(gw)
      const { t, password } = yield* smppTenant(gw, "concat01")
      const esme = yield* bound(port, "transceiver", "concat01", password)
      const to = recipient()
      const text = "A long message an ESME splits itself, as Kannel does: three parts of GSM 7 text, each with its header. ".repeat(3).trim()
      // The parts as an ESME makes them (the gateway's own segmentation writes the same UDH), sent at once, last first.
      const parts = Result.getOrThrow(segment(text, { encoding: "gsm7", reference: 0x5a })).parts
      expect(parts.length).toBe(3)
      const answers = yield* Effect.forEach([...parts].reverse(), (part) =>
        Effect.map(esme.call("submit_sm", submitFields(to, "", { esm_class: 0x40, short_message: part.shortMessage, registered_delivery: 1 })), (r) => ({ seq: part.seq, r })), {
        concurrency: "unbounded"
      })
      for (const { r } of answers) expect(r.command_status).toBe(ESME_ROK)
      const ids = answers.sort((a, b) => a.seq - b.seq).map(({ r }) => String(r.message_id))
      const messageId = ids[0]!.replace(/-1$/, "")
      expect(ids).toEqual([1, 2, 3].map((n) => `${messageId}-${n}`))
      // One message with the whole text, delivered; a receipt for each part's id.
      const view = yield* waitForStatus(gw.baseUrl, messageId, "delivered", 15_000, t.auth)
      expect(view).toMatchObject({ text, segments: 3 })
      const receipts = yield* eventually("a receipt per part", Effect.sync(() => {
        const got = esme.delivers.filter((d) => ids.includes(String(d.receipted_message_id)))
        return got.length >= 3 ? got : undefined
      }))
      expect(new Set(receipts.map((d) => d.receipted_message_id))).toEqual(new Set(ids))
      for (const r of receipts) expect(parseReceipt({ shortMessageText: textOf(r) })).toMatchObject({ stat: "DELIVRD" })

      // Two parts of three, and no more: after concatTimeoutSeconds both are refused; nothing was sent.
      const lonely = Result.getOrThrow(segment(text, { encoding: "gsm7", reference: 0x5b })).parts
      const other = recipient()
      const refused = yield* Effect.forEach(lonely.slice(0, 2), (part) =>
        esme.call("submit_sm", submitFields(other, "", { esm_class: 0x40, short_message: part.shortMessage })), { concurrency: "unbounded" })
      expect(refused.map((r) => r.command_status)).toEqual([ESME_RSUBMITFAIL, ESME_RSUBMITFAIL])
      expect((yield* gw.sim.received).some((m) => m.destinationAddr === other)).toBe(false)
    }).pipe(Effect.scoped), 60_000)

  it.live("receipts and inbound messages: deliver_sm to the submitting transceiver, and to a receiver that binds after they came", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({ config })
      const port = portOf(gw)
      const { t, password } = yield* smppTenant(gw, "receipts01")
      const trx = yield* bound(port, "transceiver", "receipts01", password)
      const to = recipient()
      const resp = yield* trx.call("submit_sm", submitFields(to, "with receipt", { registered_delivery: 1 }))
      const id = String(resp.message_id)
      const receipt = yield* eventually("the receipt as deliver_sm", Effect.sync(() => trx.delivers.find((d) => d.receipted_message_id === id)))
      expect(receipt.esm_class).toBe(0x04)
      expect(receipt.source_addr).toBe(to)
      expect(receipt.destination_addr).toBe("ACME")
      expect(receipt.message_state).toBe(2)
      const parsed = parseReceipt({ shortMessageText: textOf(receipt) })
      expect(parsed).toMatchObject({ smscMessageId: id, stat: "DELIVRD", state: "delivered" })
      expect(textOf(receipt)).toMatch(new RegExp(`^id:${id} sub:001 dlvrd:001 submit date:\\d{10} done date:\\d{10} stat:DELIVRD err:000 text:$`))
      // Only the final move was asked for: one receipt.
      yield* waitForStatus(gw.baseUrl, id, "delivered", 15_000, t.auth)
      expect(trx.delivers.filter((d) => d.receipted_message_id === id)).toHaveLength(1)
      yield* trx.call("unbind")

      // No receiver bound when the receipt comes: it waits in the outbox, and goes to the receiver that binds later.
      const tx = yield* bound(port, "transmitter", "receipts01", password)
      const later = yield* tx.call("submit_sm", submitFields(recipient(), "receipt later", { registered_delivery: 1 }))
      const laterId = String(later.message_id)
      yield* waitForStatus(gw.baseUrl, laterId, "delivered", 15_000, t.auth)
      const rx = yield* bound(port, "receiver", "receipts01", password)
      yield* eventually("the waiting receipt delivered to the new receiver", Effect.sync(() => rx.delivers.find((d) => d.receipted_message_id === laterId)))

      // A receiver that refuses a deliver_sm gets it again (backoff), once it acknowledges.
      rx.ackStatus = 0x64
      const retried = yield* tx.call("submit_sm", submitFields(recipient(), "retried", { registered_delivery: 1 }))
      const retriedId = String(retried.message_id)
      yield* eventually("the receipt refused once", Effect.sync(() => rx.delivers.some((d) => d.receipted_message_id === retriedId)))
      rx.ackStatus = 0
      yield* eventually("the receipt acknowledged and gone from the outbox", Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const rows = yield* sql<{ n: number }>`SELECT COUNT(*) AS n FROM callback_outbox WHERE message_id = ${retriedId}`
        return Number(rows[0]?.n ?? -1) === 0 && rx.delivers.filter((d) => d.receipted_message_id === retriedId).length >= 2
      }).pipe(Effect.provideContext(gw.context as Context.Context<SqlClient.SqlClient>)))

      // A handset's reply to a number routed to the app (which has no callback URL): through the SMSC, the link, the
      // inbound processor and the outbox, to the app's receiver bind as deliver_sm parts.
      const text = "Ünïcödé reply 👍 ".repeat(6)
      const ops = yield* superadmin(gw.baseUrl)
      const routed = yield* send("PUT", `${gw.baseUrl}/v1/admin/inbound/routes`, { routes: [{ id: "smpp-app", number: "4477009001", appId: t.appId }] }, ops)
      expect(routed.status).toBe(200)
      for (const part of moParts({ from: "4915199999999", to: "4477009001", text })) yield* gw.sim.deliverMo(part)
      const parts = yield* eventually("the inbound message's parts", Effect.sync(() => {
        const mo = rx.delivers.filter((d) => d.source_addr === "4915199999999")
        return mo.length >= 2 ? mo : undefined
      }))
      for (const part of parts) {
        expect(part.esm_class).toBe(0x40)
        expect(part.data_coding).toBe(8)
      }
      const joined = parts.map((p) => {
        const bytes = Buffer.from(p.short_message as Uint8Array)
        return Buffer.from(bytes.subarray(1 + (bytes[0] ?? 0))).swap16().toString("utf16le")
      }).join("")
      expect(joined).toBe(text)
    }).pipe(Effect.scoped), 90_000)

  it.live("TLS: a client that trusts the certificate binds and sends; a plain-TCP client gets no SMPP answer", () =>
    Effect.gen(function*() {
      const certificate = yield* selfSigned
      const gw = yield* startGateway({ config: { ...config, smppServer: { ...config.smppServer, tls: certificate } } })
      const port = portOf(gw)
      const { t, password } = yield* smppTenant(gw, "secure01")
      const ca = readFileSync(certificate.certFile)
      const trx = yield* bound(port, "transceiver", "secure01", password, { ca })
      expect((trx.session.socket as unknown as { encrypted?: boolean }).encrypted).toBe(true)
      const resp = yield* trx.call("submit_sm", submitFields(recipient(), "over TLS", { registered_delivery: 1 }))
      expect(resp.command_status).toBe(ESME_ROK)
      const id = String(resp.message_id)
      yield* waitForStatus(gw.baseUrl, id, "delivered", 15_000, t.auth)
      yield* eventually("the receipt over TLS", Effect.sync(() => trx.delivers.find((d) => d.receipted_message_id === id)))

      // Plain SMPP against the TLS port: the bytes are no TLS handshake, so the connection closes with no SMPP answer.
      const plain = yield* rawSocket(port)
      plain.socket.write(rawPdu(0x00000009, 1, Buffer.from("secure01\0nottls\0\0\x34\0\0\0", "latin1")))
      yield* eventually("the plain connection closed", Effect.sync(() => plain.isClosed()), { timeout: 5_000 })
      expect(plain.received().length === 0 || plain.received()[0] === 0x15).toBe(true)
    }).pipe(Effect.scoped), 60_000)

  it.live("idle binds: the server's enquire_link keeps an answering ESME bound and closes one that does not answer", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({
        config: { ...config, smppServer: { ...config.smppServer, enquireLinkIntervalSeconds: 1, enquireLinkTimeoutSeconds: 1 } }
      })
      const port = portOf(gw)
      const { password } = yield* smppTenant(gw, "idle01")
      const answering = yield* bound(port, "transceiver", "idle01", password)
      // A bind written by hand that never answers what the server sends.
      const silent = yield* rawSocket(port)
      const body = Buffer.concat([Buffer.from(`idle01\0${password}\0\0`, "latin1"), Buffer.from([0x34, 0, 0, 0])])
      silent.socket.write(rawPdu(0x00000009, 1, body))
      yield* eventually("the silent bind answered", Effect.sync(() => silent.received().length >= 16 ? silent.received() : undefined))
      expect(silent.received().readUInt32BE(4)).toBe(0x80000009)
      expect(silent.received().readUInt32BE(8)).toBe(ESME_ROK)
      yield* eventually("the silent bind closed", Effect.sync(() => silent.isClosed()), { timeout: 10_000 })
      // Its enquire_link came first (command 0x15 after the bind response).
      const afterBind = silent.received().subarray(silent.received().readUInt32BE(0))
      expect(afterBind.readUInt32BE(4)).toBe(0x00000015)
      expect(answering.isClosed()).toBe(false)
      expect((yield* answering.call("enquire_link")).command_status).toBe(ESME_ROK)
    }).pipe(Effect.scoped), 60_000)

  it.live("PDUs no ESME should send: unknown command, garbage, oversized; another bind keeps working", () =>
    Effect.gen(function*() {
      const gw = yield* startGateway({ config })
      const port = portOf(gw)
      const { password } = yield* smppTenant(gw, "robust01")
      const good = yield* bound(port, "transceiver", "robust01", password)

      const unknownCommand = yield* rawSocket(port)
      unknownCommand.socket.write(rawPdu(0x00000099, 7))
      const nack = yield* eventually("generic_nack for an unknown command", Effect.sync(() =>
        unknownCommand.received().length >= 16 ? unknownCommand.received() : undefined))
      expect([nack.readUInt32BE(4), nack.readUInt32BE(8), nack.readUInt32BE(12)]).toEqual([0x80000000, ESME_RINVCMDID, 7])

      const garbage = yield* rawSocket(port)
      garbage.socket.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
      yield* eventually("garbage answered generic_nack and closed", Effect.sync(() => garbage.isClosed()), { timeout: 5_000 })
      expect(garbage.received().readUInt32BE(4)).toBe(0x80000000)
      expect(garbage.received().readUInt32BE(8)).toBe(ESME_RINVCMDLEN)

      const tiny = yield* rawSocket(port)
      tiny.socket.write(rawPdu(0x00000015, 1, Buffer.alloc(0), 4))
      yield* eventually("a command_length below the header closed", Effect.sync(() => tiny.isClosed()), { timeout: 5_000 })

      const huge = yield* rawSocket(port)
      huge.socket.write(rawPdu(0x00000004, 2, Buffer.alloc(0), 10_000_000))
      yield* eventually("an oversized command_length closed", Effect.sync(() => huge.isClosed()), { timeout: 5_000 })

      // A submit_sm whose body is cut short of its fields: refused, nothing crashes.
      const cut = yield* rawSocket(port)
      cut.socket.write(rawPdu(0x00000004, 3, Buffer.from([0x00, 0x05])))
      yield* eventually("the cut submit answered", Effect.sync(() => cut.received().length >= 16 ? true : undefined))

      expect((yield* good.call("enquire_link")).command_status).toBe(ESME_ROK)
      expect((yield* good.call("submit_sm", submitFields(recipient(), "still here"))).command_status).toBe(ESME_ROK)
    }).pipe(Effect.scoped), 60_000)
})
