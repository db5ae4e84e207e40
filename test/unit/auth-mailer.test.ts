import { describe, expect, it } from "@effect/vitest"
import { Effect, Logger } from "effect"
import { createServer } from "node:net"
import { Mailer } from "../../src/auth/Mailer.ts"
import { startMailbox } from "../fixtures/Mailbox.ts"

const mail = { to: "ann@example.com", subject: "Invitation to Acme", text: "Accept: https://gw.example.com/invitations/accept#token=inv_x\n" }

describe("Mailer", () => {
  it.live("layerSmtp hands the mail to a real SMTP server", () =>
    Effect.gen(function*() {
      const mailbox = yield* startMailbox
      yield* Mailer.use((m) => m.send(mail)).pipe(
        Effect.provide(Mailer.layerSmtp({ host: "127.0.0.1", port: mailbox.port, secure: false, from: "gw@example.com", timeoutMs: 5_000 }))
      )
      const received = yield* mailbox.waitFor("ann@example.com", "Invitation")
      expect(received.subject).toBe("Invitation to Acme")
      expect(received.text).toContain("https://gw.example.com/invitations/accept#token=inv_x")
    }).pipe(Effect.scoped))

  it.live("layerSmtp gives up on a server that never greets, after its timeout", () =>
    Effect.gen(function*() {
      const silent = createServer(() => undefined)
      const port = yield* Effect.acquireRelease(
        Effect.callback<number>((resume) => {
          silent.listen(0, "127.0.0.1", () => {
            const a = silent.address()
            resume(Effect.succeed(typeof a === "object" && a !== null ? a.port : 0))
          })
        }),
        () => Effect.sync(() => silent.close())
      )
      const started = Date.now()
      const error = yield* Mailer.use((m) => m.send(mail)).pipe(
        Effect.provide(Mailer.layerSmtp({ host: "127.0.0.1", port, secure: false, from: "gw@example.com", timeoutMs: 500 })),
        Effect.flip
      )
      expect(error._tag).toBe("MailFailed")
      expect(Date.now() - started).toBeLessThan(5_000)
    }).pipe(Effect.scoped))

  it.effect("layerLog writes the mail, its link included, to the log", () =>
    Effect.gen(function*() {
      const lines: Array<{ readonly message: unknown; readonly annotations: Record<string, unknown> }> = []
      const collect = Logger.make((options) => void lines.push(Logger.formatStructured.log(options)))
      yield* Mailer.use((m) => m.send(mail)).pipe(Effect.provide([Mailer.layerLog, Logger.layer([collect])]))
      expect(lines).toHaveLength(1)
      expect(lines[0]?.annotations).toMatchObject({ to: mail.to, subject: mail.subject, text: mail.text })
    }))

  it.effect("layerUnavailable refuses instead of writing tokens anywhere", () =>
    Effect.gen(function*() {
      const error = yield* Mailer.use((m) => m.send(mail)).pipe(Effect.provide(Mailer.layerUnavailable), Effect.flip)
      expect([error._tag, error.message]).toEqual(["MailFailed", "no mail.smtp is configured"])
    }))
})
