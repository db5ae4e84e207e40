/**
 * Mail to people about their accounts: invitation tokens and mailbox confirmations. `layerSmtp` sends through an
 * SMTP relay (nodemailer) with bounded connection, greeting and socket timeouts; `layerLog` (embedded mode, no SMTP
 * configured) writes the mail to the log instead, links included, so a developer can follow them; `layerUnavailable`
 * (a cluster without SMTP) refuses, since tokens in a production log would be readable by whoever reads the logs.
 * Mails never carry a password.
 */
import { Context, Effect, Layer, Schema } from "effect"

export interface Mail {
  readonly to: string
  readonly subject: string
  readonly text: string
}

export class MailFailed extends Schema.TaggedError<MailFailed>()("MailFailed", {
  message: Schema.String
}) {}

export interface SmtpOptions {
  readonly host: string
  readonly port: number
  /** TLS from the first byte (port 465); otherwise STARTTLS when the server offers it (or always, with requireTls). */
  readonly secure: boolean
  readonly requireTls?: boolean | undefined
  readonly user?: string | undefined
  readonly password?: string | undefined
  readonly from: string
  /** Connection, greeting and each socket wait. */
  readonly timeoutMs: number
}

export class Mailer extends Context.Service<Mailer, {
  send(mail: Mail): Effect.Effect<void, MailFailed>
}>()("smsgw/auth/Mailer") {
  static readonly layerSmtp = (options: SmtpOptions): Layer.Layer<Mailer> =>
    Layer.effect(
      Mailer,
      Effect.gen(function*() {
        // Loaded only when mail goes out by SMTP (about 20 MB the log-only mailer does without).
        const { createTransport } = yield* Effect.promise(() => import("nodemailer"))
        const transport = yield* Effect.acquireRelease(
          Effect.sync(() =>
            createTransport({
              host: options.host,
              port: options.port,
              secure: options.secure,
              requireTLS: options.requireTls ?? false,
              ...(options.user !== undefined ? { auth: { user: options.user, pass: options.password ?? "" } } : {}),
              connectionTimeout: options.timeoutMs,
              greetingTimeout: options.timeoutMs,
              socketTimeout: options.timeoutMs
            })
          ),
          (t) => Effect.sync(() => t.close())
        )
        return Mailer.of({
          send: Effect.fn("Mailer.send")(function*(mail: Mail) {
            yield* Effect.tryPromise({
              try: () => transport.sendMail({ from: options.from, to: mail.to, subject: mail.subject, text: mail.text }),
              // nodemailer's messages name the server and the SMTP reply, never the credentials.
              catch: (e) => new MailFailed({ message: e instanceof Error ? e.message : String(e) })
            })
          })
        })
      })
    )

  static readonly layerLog: Layer.Layer<Mailer> = Layer.succeed(
    Mailer,
    Mailer.of({
      send: (mail) =>
        Effect.logInfo("mail not sent (no SMTP configured); its text follows").pipe(
          Effect.annotateLogs({ to: mail.to, subject: mail.subject, text: mail.text })
        )
    })
  )

  static readonly layerUnavailable: Layer.Layer<Mailer> = Layer.succeed(
    Mailer,
    Mailer.of({ send: () => Effect.fail(new MailFailed({ message: "no mail.smtp is configured" })) })
  )
}
