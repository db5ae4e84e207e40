import { Context, Effect, Layer, Option, Result } from "effect"
import { InvalidField, MessageNotFound, PolicyRejected } from "../domain/Errors.ts"
import { ContactPolicy } from "./ContactPolicy.ts"
import type { PolicyUnavailable } from "./PolicyDispatcher.ts"
import { NoRoute } from "../domain/Errors.ts"
import type { StoreUnavailable } from "../domain/Errors.ts"
import type { MessageView, SubmitAccepted, SubmitMessage } from "../domain/Message.ts"
import { countryOf, invalidMsisdn, invalidSender, parseMsisdn, parseSender } from "../domain/Msisdn.ts"
import { LinkMetrics } from "../observability/Metrics.ts"
import { Router } from "../routing/Router.ts"
import { chooseEncoding, countSegments, MAX_PARTS } from "../smpp/Encoding.ts"
import { MessageStore } from "../storage/MessageStore.ts"
import { LinkDispatcher } from "../actors/LinkDispatcher.ts"
import { targetKey } from "../routing/Target.ts"
import type { Submitter } from "../domain/Account.ts"
import type { LimiterUnavailable, RateInfo, RateLimited } from "../ratelimit/RateLimiter.ts"
import { RateLimiter } from "../ratelimit/RateLimiter.ts"

/** Who is asking: set by authentication, the organisation scopes every read. */
export interface Caller {
  readonly orgId: string
  readonly appId: string | null
}

export interface SubmitOutcome {
  readonly accepted: SubmitAccepted
  /** The limits that applied, for RateLimit headers. */
  readonly rate: RateInfo
}

export type SubmitError =
  | InvalidField
  | NoRoute
  | StoreUnavailable
  | RateLimited
  | LimiterUnavailable
  | PolicyRejected
  | PolicyUnavailable

/** What the pipeline takes from the process configuration. */
export interface GatewayOptions {
  /** Rate-limited submits are stored as `rejected` (otherwise only answered 429). */
  readonly recordRejected: boolean
}

/**
 * The one pipeline every entry point calls: validate, route, rate limit, contact policy, store (committed before the
 * answer), hand to the link.
 */
export class Gateway extends Context.Service<Gateway, {
  readonly submit: (message: SubmitMessage, sender: Submitter) => Effect.Effect<SubmitOutcome, SubmitError>
  readonly status: (id: string, caller: Caller) => Effect.Effect<MessageView, MessageNotFound | StoreUnavailable>
}>()("smsgw/pipeline/Gateway") {
  static readonly layer = (options: GatewayOptions) => Layer.effect(
    Gateway,
    Effect.gen(function*() {
      const store = yield* MessageStore
      const router = yield* Router
      const dispatcher = yield* LinkDispatcher
      const metrics = yield* LinkMetrics
      const limiter = yield* RateLimiter
      const policy = yield* ContactPolicy
      const recordRejected = options.recordRejected

      const submit = Effect.fnUntraced(function*(input: SubmitMessage, caller: Submitter) {
        const to = parseMsisdn(input.to)
        if (to === undefined) {
          return yield* new InvalidField({ field: "to", message: invalidMsisdn })
        }
        // Read now, while the parse of this number is the one remembered.
        const country = countryOf(to)
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
        const id = crypto.randomUUID()
        const createdAt = Date.now()
        // An app whose messages are promotional cannot declare one transactional to slip past quiet hours and caps.
        if (caller.messageClass === "promotional" && input.messageClass === "transactional") {
          return yield* new InvalidField({
            field: "messageClass",
            message: "this app sends promotional messages; an organisation admin can change the app's messageClass"
          })
        }
        const messageClass = input.messageClass ?? caller.messageClass
        const routed = yield* router.route({ to, appId: caller.appId, orgId: caller.orgId, sender: input.from, messageClass }).pipe(
          Effect.result
        )
        const segments = countSegments(input.text, encoding, Result.isSuccess(routed) ? routed.success.referenceBits : 8)
        if (segments > MAX_PARTS) {
          return yield* new InvalidField({ field: "text", message: `needs ${segments} parts; at most ${MAX_PARTS} are possible` })
        }
        const base = {
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
          messageClass,
          createdAt
        }
        if (Result.isFailure(routed)) {
          // A message no link can take is still recorded, so its id answers a status query.
          yield* store.accept([{ ...base, routeLinkId: null, rejection: "no_route" }])
          return yield* new NoRoute({ message: routed.failure.message, messageId: id })
        }
        const route = routed.success
        const record = { ...base, routeLinkId: targetKey(route.target) }
        const rate = yield* limiter.check({
          orgId: caller.orgId,
          appId: caller.appId,
          appLimits: caller.appLimits,
          linkId: targetKey(route.target),
          linkTps: route.capacityTps,
          segments
        }).pipe(
          Effect.tapError((e) =>
            recordRejected && e._tag === "RateLimited"
              ? store.accept([{ ...record, rejection: `rate_limited (${e.policy})` }]).pipe(Effect.ignore)
              : Effect.void
          )
        )
        const verdict = yield* policy.check({
          orgId: caller.orgId,
          appId: caller.appId,
          messageClass,
          to,
          country,
          from: input.from,
          text: input.text
        }, id)
        if (verdict._tag === "Duplicate") {
          // The first message stands for this one: nothing is stored or sent again.
          const first: SubmitAccepted = { id: verdict.firstId, status: "accepted", segments, encoding, duplicate: true }
          return { accepted: first, rate } satisfies SubmitOutcome
        }
        if (verdict._tag === "Reject") {
          // Recorded, so the id in the answer answers a status query with the reason.
          yield* store.accept([{ ...record, rejection: verdict.reason, ruleId: verdict.ruleId }])
          return yield* new PolicyRejected({
            reason: verdict.reason,
            ruleId: verdict.ruleId,
            messageId: id,
            ...(verdict.retryAfterMs !== undefined ? { retryAfterSeconds: Math.max(1, Math.ceil(verdict.retryAfterMs / 1000)) } : {})
          })
        }
        // Not accepted after all (the store failed): the policy gives back what it counted for this message.
        yield* store.accept([record]).pipe(Effect.tapError(() => verdict.undo()))
        metrics.accepted(1)
        yield* dispatcher.dispatch(route.target, {
          ...(route.target._tag === "Pool" ? { pool: route.target.id } : {}),
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
        const outcome: SubmitOutcome = { accepted, rate }
        return outcome
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
