/**
 * The one submit pipeline every entry point calls: validate, decide (route, rate limit, contact policy), record.
 */
import { Context, Effect, Layer, Option, Result } from "effect"
import { InvalidField, MessageNotFound, PolicyRejected } from "../domain/Errors.ts"
import { ContactPolicy } from "./ContactPolicy.ts"
import type { PolicyVerdict } from "./ContactPolicy.ts"
import type { PolicyUnavailable } from "./PolicyDispatcher.ts"
import { NoRoute } from "../domain/Errors.ts"
import type { StoreUnavailable } from "../domain/Errors.ts"
import type { MessageView, SubmitAccepted, SubmitMessage } from "../domain/Message.ts"
import { LinkMetrics } from "../observability/Metrics.ts"
import { Router } from "../routing/Router.ts"
import type { Route } from "../routing/Router.ts"
import { chooseEncoding, countSegments, MAX_PARTS } from "../smpp/Encoding.ts"
import { DashboardStats } from "../storage/DashboardStats.ts"
import { MessageStore } from "../storage/MessageStore.ts"
import type { NewMessage } from "../storage/MessageStore.ts"
import { LinkDispatcher } from "../actors/LinkDispatcher.ts"
import { targetKey } from "../routing/Target.ts"
import type { Submitter } from "../domain/Account.ts"
import type { MessageClass } from "../domain/Policy.ts"
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

/** What validation settles beyond the schema: the encoding of the text and the message's class. */
interface Validated {
  readonly encoding: "gsm7" | "ucs2"
  readonly messageClass: MessageClass
}

/** What the pipeline decided for a valid message, before anything is recorded. */
type Decision =
  | { readonly _tag: "NoRoute"; readonly message: NewMessage; readonly reason: string }
  | { readonly _tag: "RateLimited"; readonly message: NewMessage; readonly error: RateLimited }
  | {
    readonly _tag: "Verdict"
    readonly message: NewMessage
    readonly route: Route
    readonly rate: RateInfo
    readonly verdict: PolicyVerdict
  }


/** What an internal caller (a campaign) adds to a submission; the REST and gRPC fronts pass none. */
export interface SubmitOptions {
  /** The message's id, chosen by the caller: a campaign derives it from the recipient, so after a crash it finds it. */
  readonly messageId?: string
  readonly campaignId?: string
  /**
   * Refusals (no route, rate limit, policy) are answered but not stored as messages (default: stored): a campaign
   * records them on its recipient, and retries a deferred one under another id.
   */
  readonly recordRefusals?: boolean
}

/** What the pipeline takes from the process configuration. */
export interface GatewayOptions {
  /** Rate-limited submits are stored as `rejected` (otherwise only answered 429). */
  readonly recordRejected: boolean
}

/**
 * The one pipeline every entry point calls: validate, decide (route, rate limit, contact policy), record (store,
 * committed before the answer, and hand to the link).
 */
export class Gateway extends Context.Service<Gateway, {
  readonly submit: (message: SubmitMessage, sender: Submitter, options?: SubmitOptions) => Effect.Effect<SubmitOutcome, SubmitError>
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
      const live = yield* DashboardStats
      const recordRejected = options.recordRejected
      /** Every refusal is counted for the live figures, recorded as a message or not. */
      const countRefused = (message: NewMessage, reason: string, ruleId?: string) =>
        live.refused({ orgId: message.orgId, campaignId: message.campaignId, reason, ruleId, at: message.createdAt })

      /** What the message itself must be (the schema parsed its addresses): an encoding for its text, a class its app may send. */
      const validate = (input: SubmitMessage, caller: Submitter): Effect.Effect<Validated, InvalidField> => {
        const chosen = chooseEncoding(input.text, input.encoding ?? "auto")
        if (Result.isFailure(chosen)) {
          return Effect.fail(new InvalidField({
            field: "text",
            message: `character ${JSON.stringify(chosen.failure.character)} at ${chosen.failure.index} is not in GSM 03.38; use encoding "ucs2" or "auto"`
          }))
        }
        // An app whose messages are promotional cannot declare one transactional to slip past quiet hours and caps.
        if (caller.messageClass === "promotional" && input.messageClass === "transactional") {
          return Effect.fail(new InvalidField({
            field: "messageClass",
            message: "this app sends promotional messages; an organisation admin can change the app's messageClass"
          }))
        }
        return Effect.succeed({ encoding: chosen.success, messageClass: input.messageClass ?? caller.messageClass })
      }

      /** Where the message goes and whether it may: route, parts, rate limits, contact policy. Records nothing. */
      const decide = Effect.fnUntraced(function*(input: SubmitMessage, caller: Submitter, valid: Validated, options: SubmitOptions) {
        const { encoding, messageClass } = valid
        const to = input.to.msisdn
        const routed = yield* router.route({ to, appId: caller.appId, orgId: caller.orgId, sender: input.from.given, messageClass }).pipe(
          Effect.result
        )
        const segments = countSegments(input.text, encoding, Result.isSuccess(routed) ? routed.success.referenceBits : 8)
        if (segments > MAX_PARTS) {
          return yield* new InvalidField({ field: "text", message: `needs ${segments} parts; at most ${MAX_PARTS} are possible` })
        }
        const message: NewMessage = {
          id: options.messageId ?? crypto.randomUUID(),
          orgId: caller.orgId,
          appId: caller.appId,
          clientRef: input.clientRef,
          to,
          from: input.from.given,
          text: input.text,
          encoding,
          segments,
          validitySeconds: input.validitySeconds,
          routeLinkId: null,
          messageClass,
          createdAt: Date.now(),
          ...(options.campaignId !== undefined ? { campaignId: options.campaignId } : {})
        }
        if (Result.isFailure(routed)) return { _tag: "NoRoute", message, reason: routed.failure.message } satisfies Decision
        const route = routed.success
        const routedMessage: NewMessage = { ...message, routeLinkId: targetKey(route.target) }
        const rate = yield* limiter.check({
          orgId: caller.orgId,
          appId: caller.appId,
          appLimits: caller.appLimits,
          linkId: targetKey(route.target),
          linkTps: route.capacityTps,
          segments
        }).pipe(Effect.result)
        if (Result.isFailure(rate)) {
          if (rate.failure._tag === "RateLimited") {
            return { _tag: "RateLimited", message: routedMessage, error: rate.failure } satisfies Decision
          }
          return yield* rate.failure
        }
        const verdict = yield* policy.check({
          orgId: caller.orgId,
          appId: caller.appId,
          messageClass,
          to,
          country: input.to.country,
          from: input.from.given,
          text: input.text
        }, message.id)
        return { _tag: "Verdict", message: routedMessage, route, rate: rate.success, verdict } satisfies Decision
      })

      /** The decision carried out: a refusal recorded, or an admitted message stored (before the answer) and handed on. */
      const record = Effect.fnUntraced(function*(decision: Decision, options: SubmitOptions) {
        const message = decision.message
        const recordRefusals = options.recordRefusals !== false
        switch (decision._tag) {
          case "NoRoute": {
            countRefused(message, "no_route")
            // A message no link can take is still recorded, so its id answers a status query.
            if (recordRefusals) yield* store.accept([{ ...message, rejection: "no_route" }])
            return yield* new NoRoute({ message: decision.reason, messageId: message.id })
          }
          case "RateLimited": {
            countRefused(message, `rate_limited (${decision.error.policy})`)
            if (recordRejected && recordRefusals) {
              yield* store.accept([{ ...message, rejection: `rate_limited (${decision.error.policy})` }]).pipe(Effect.ignore)
            }
            return yield* decision.error
          }
          case "Verdict":
            break
        }
        const { route, rate, verdict } = decision
        if (verdict._tag === "Duplicate") {
          countRefused(message, "duplicate", verdict.ruleId)
          // The first message stands for this one: nothing is stored or sent again.
          const first: SubmitAccepted = {
            id: verdict.firstId,
            status: "accepted",
            segments: message.segments,
            encoding: message.encoding,
            duplicate: true
          }
          return { accepted: first, rate } satisfies SubmitOutcome
        }
        if (verdict._tag === "Reject") {
          countRefused(message, verdict.reason, verdict.ruleId)
          // Recorded, so the id in the answer answers a status query with the reason.
          if (recordRefusals) yield* store.accept([{ ...message, rejection: verdict.reason, ruleId: verdict.ruleId }])
          return yield* new PolicyRejected({
            reason: verdict.reason,
            ruleId: verdict.ruleId,
            messageId: message.id,
            ...(verdict.retryAfterMs !== undefined ? { retryAfterSeconds: Math.max(1, Math.ceil(verdict.retryAfterMs / 1000)) } : {})
          })
        }
        // Not accepted after all (the store failed): the policy gives back what it counted for this message.
        yield* store.accept([message]).pipe(Effect.tapError(() => verdict.undo()))
        metrics.accepted(1)
        live.accepted({ orgId: message.orgId, campaignId: message.campaignId, target: targetKey(route.target), at: message.createdAt })
        yield* dispatcher.dispatch(route.target, {
          ...(route.target._tag === "Pool" ? { pool: route.target.id } : {}),
          messageId: message.id,
          to: message.to,
          from: message.from,
          text: message.text,
          encoding: message.encoding,
          seqs: Array.from({ length: message.segments }, (_, i) => i + 1),
          ...(message.validitySeconds !== undefined ? { validitySeconds: message.validitySeconds } : {}),
          acceptedAt: message.createdAt
        })
        const accepted: SubmitAccepted = { id: message.id, status: "accepted", segments: message.segments, encoding: message.encoding }
        const outcome: SubmitOutcome = { accepted, rate }
        return outcome
      })

      const submit = (input: SubmitMessage, caller: Submitter, options: SubmitOptions = {}): Effect.Effect<SubmitOutcome, SubmitError> =>
        validate(input, caller).pipe(
          Effect.flatMap((valid) => decide(input, caller, valid, options)),
          Effect.flatMap((decision) => record(decision, options))
        )

      const status = Effect.fnUntraced(function*(id: string, caller: Caller) {
        const found = yield* store.get(id, caller.orgId)
        // An app reads its own messages; another app's are as unknown as a missing one (users read the organisation's).
        if (Option.isNone(found) || (caller.appId !== null && found.value.appId !== caller.appId)) {
          return yield* new MessageNotFound({ id })
        }
        return found.value
      })

      return Gateway.of({ submit, status })
    })
  )
}
