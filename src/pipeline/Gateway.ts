import { Context, Effect, Layer, Option, Result } from "effect"
import { InvalidField, MessageNotFound } from "../domain/Errors.ts"
import type { NoRoute, StoreUnavailable } from "../domain/Errors.ts"
import type { MessageView, SubmitAccepted, SubmitMessage } from "../domain/Message.ts"
import { invalidMsisdn, invalidSender, parseMsisdn, parseSender } from "../domain/Msisdn.ts"
import { linkDefaults } from "../layers/Config.ts"
import { LinkMetrics } from "../observability/Metrics.ts"
import { Router } from "../routing/Router.ts"
import { chooseEncoding, countSegments, MAX_PARTS } from "../smpp/Encoding.ts"
import { MessageStore } from "../storage/MessageStore.ts"
import { LinkDispatcher } from "./LinkDispatcher.ts"

/** Who is sending or asking: set by authentication, the organisation scopes every read. */
export interface Caller {
  readonly orgId: string
  readonly appId: string | null
}

export type SubmitError = InvalidField | NoRoute | StoreUnavailable

/** The one pipeline every entry point calls: validate, route, store (committed before the answer), hand to the link. */
export class Gateway extends Context.Service<Gateway, {
  readonly submit: (message: SubmitMessage, caller: Caller) => Effect.Effect<SubmitAccepted, SubmitError>
  readonly status: (id: string, caller: Caller) => Effect.Effect<MessageView, MessageNotFound | StoreUnavailable>
}>()("smsgw/pipeline/Gateway") {
  static readonly layer = Layer.effect(
    Gateway,
    Effect.gen(function*() {
      const store = yield* MessageStore
      const router = yield* Router
      const dispatcher = yield* LinkDispatcher
      const metrics = yield* LinkMetrics

      const submit = Effect.fnUntraced(function*(input: SubmitMessage, caller: Caller) {
        const to = parseMsisdn(input.to)
        if (to === undefined) {
          return yield* new InvalidField({ field: "to", message: invalidMsisdn })
        }
        if (parseSender(input.from) === undefined) {
          return yield* new InvalidField({ field: "from", message: invalidSender })
        }
        const chosen = chooseEncoding(input.text, input.encoding ?? "auto")
        if (Result.isFailure(chosen)) {
          return yield* new InvalidField({
            field: "text",
            message: `character ${JSON.stringify(chosen.failure.character)} at ${chosen.failure.index} is not in GSM 03.38; use encoding "ucs2" or "auto"`
          })
        }
        const encoding = chosen.success
        const link = yield* router.route({ to, appId: caller.appId })
        const segments = countSegments(input.text, encoding, linkDefaults(link).udhReferenceBits)
        if (segments > MAX_PARTS) {
          return yield* new InvalidField({ field: "text", message: `needs ${segments} parts; at most ${MAX_PARTS} are possible` })
        }
        const id = crypto.randomUUID()
        const createdAt = Date.now()
        yield* store.accept([{
          id,
          orgId: caller.orgId,
          appId: caller.appId,
          clientRef: input.clientRef,
          to,
          from: input.from,
          text: input.text,
          encoding,
          segments,
          validitySeconds: input.validitySeconds,
          routeLinkId: link.id,
          createdAt
        }])
        metrics.accepted(1)
        yield* dispatcher.dispatch(link.id, {
          messageId: id,
          to,
          from: input.from,
          text: input.text,
          encoding,
          seqs: Array.from({ length: segments }, (_, i) => i + 1),
          ...(input.validitySeconds !== undefined ? { validitySeconds: input.validitySeconds } : {}),
          acceptedAt: createdAt
        })
        const accepted: SubmitAccepted = { id, status: "accepted", segments, encoding }
        return accepted
      })

      const status = Effect.fnUntraced(function*(id: string, caller: Caller) {
        const found = yield* store.get(id, caller.orgId)
        if (Option.isNone(found)) return yield* new MessageNotFound({ id })
        return found.value
      })

      return Gateway.of({ submit, status })
    })
  )
}
