/**
 * The one submit pipeline every entry point calls: validate, decide (route, rate limit, contact policy), record.
 */
import { Context, Duration, Effect, Exit, Layer, Option, Result, Schedule } from "effect"
import {
  IdempotencyKeyInFlight,
  IdempotencyKeyReused,
  InvalidField,
  MessageNotFound,
  PolicyRejected,
  policyReasons
} from "../domain/Errors.ts"
import { ContactPolicy } from "./ContactPolicy.ts"
import type { PolicyVerdict } from "./ContactPolicy.ts"
import type { PolicyUnavailable } from "./PolicyDispatcher.ts"
import { NoRoute } from "../domain/Errors.ts"
import type { StoreUnavailable } from "../domain/Errors.ts"
import type { MessageView, SubmitAccepted, SubmitMessage } from "../domain/Message.ts"
import { newMessageId } from "../domain/MessageId.ts"
import { currentTraceparent, traced } from "../observability/Tracing.ts"
import { LinkMetrics } from "../observability/Metrics.ts"
import { Router } from "../routing/Router.ts"
import type { Route } from "../routing/Router.ts"
import { chooseEncoding, countSegments, MAX_PARTS } from "../smpp/Encoding.ts"
import { DashboardStats } from "../storage/DashboardStats.ts"
import { MessageStore } from "../storage/MessageStore.ts"
import type { NewMessage } from "../storage/MessageStore.ts"
import { LinkDispatcher } from "../actors/LinkDispatcher.ts"
import type { Outbound } from "../actors/SmppLinkProtocol.ts"
import { IdempotencyStore } from "../storage/IdempotencyStore.ts"
import type { ClaimRequest, HeldKey } from "../storage/IdempotencyStore.ts"
import { answerOf, fingerprint, replay } from "./Idempotency.ts"
import { targetKey } from "../routing/Target.ts"
import type { Submitter } from "../domain/Account.ts"
import type { MessageClass } from "../domain/Policy.ts"
import type { LimiterUnavailable, RateInfo, RateLimited } from "../ratelimit/RateLimiter.ts"
import { RateLimiter } from "../ratelimit/RateLimiter.ts"
import type { CallbackTarget } from "../domain/Callback.ts"

/** Who is asking: set by authentication, the organisation scopes every read. */
export interface Caller {
  readonly orgId: string
  readonly appId: string | null
}

export interface SubmitOutcome {
  readonly accepted: SubmitAccepted
  /** The limits that applied, for RateLimit headers (none for a replayed answer). */
  readonly rate: RateInfo
  /** The answer of an earlier request with the same idempotency key: nothing was sent again. */
  readonly replayed?: boolean
}

export type SubmitError =
  | InvalidField
  | NoRoute
  | StoreUnavailable
  | RateLimited
  | LimiterUnavailable
  | PolicyRejected
  | PolicyUnavailable
  | IdempotencyKeyInFlight
  | IdempotencyKeyReused

/** One message of a batch, with the idempotency key the client gave it. */
export interface SubmitItem {
  readonly message: SubmitMessage
  readonly idempotencyKey?: string
}

export type SubmitResult = Result.Result<SubmitOutcome, SubmitError>

/**
 * What a decided message comes to once its batch's store write is known: the row written in that one transaction,
 * the answer it gets if the write commits, and for an admitted message its hand-off and the policy's undo.
 */
interface Plan {
  readonly row: NewMessage | undefined
  /** Its answer needs the row committed; otherwise the row is recorded if the store takes it (a rate-limited refusal). */
  readonly required: boolean
  readonly result: SubmitResult
  readonly admitted: { readonly route: Route; readonly message: NewMessage; readonly undo: Effect.Effect<void> } | undefined
}

/** A decision's outcome as a span attribute: accepted, or the refusal's tag. */
const outcomeOf = (result: SubmitResult): string =>
  Result.isSuccess(result) ? (result.success.accepted.duplicate === true ? "duplicate" : "accepted") : result.failure._tag

/** A refusal that records nothing. */
const refused = (error: SubmitError): Plan => ({ row: undefined, required: false, result: Result.fail(error), admitted: undefined })

/** No limits to report: the answer was replayed, nothing was checked. */
const noRate: RateInfo = { policies: [], binding: undefined }

/** Messages of one batch decided at once: their limiter and policy calls coalesce, the order of answers stays. */
const decideConcurrency = 32

/**
 * The answer a message recorded by an earlier request stands for (its node stopped before it completed the key), or
 * undefined when that record was a rate-limited refusal, which a retry runs again.
 */
const recordedAnswer = (view: MessageView): SubmitResult | undefined => {
  if (view.status !== "rejected") {
    const accepted: SubmitAccepted = { id: view.id, status: "accepted", segments: view.segments, encoding: view.encoding }
    return Result.succeed({ accepted, rate: noRate, replayed: true })
  }
  if (view.reason === "no_route") return Result.fail(new NoRoute({ message: "no link can take this message", messageId: view.id }))
  const reason = policyReasons.find((r) => r === view.reason)
  if (reason !== undefined && view.ruleId !== undefined) {
    return Result.fail(new PolicyRejected({ reason, ruleId: view.ruleId, messageId: view.id }))
  }
  return undefined
}

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
  /** The client's idempotency key (scoped to the sender's app): a repeat of the request answers the first result. */
  readonly idempotencyKey?: string
}

/**
 * Where a message's moves are posted: its own statusCallback, else its app's callback URL; either way with the app's
 * choice of moves (final unless the app says all).
 */
const callbackOf = (input: SubmitMessage, caller: Submitter): { readonly callback?: CallbackTarget } => {
  const events = caller.callback?.events ?? "final"
  if (input.statusCallback !== undefined) return { callback: { url: input.statusCallback, events } }
  return caller.callback !== undefined ? { callback: caller.callback } : {}
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
  /**
   * A batch: each message decided one by one (limits and policies apply to each), every record written in one store
   * transaction, one result per message in order. Fails whole only when the store cannot take the batch.
   */
  readonly submitMany: (
    items: ReadonlyArray<SubmitItem>,
    sender: Submitter,
    options?: SubmitOptions
  ) => Effect.Effect<ReadonlyArray<SubmitResult>, StoreUnavailable>
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
      const idempotency = yield* IdempotencyStore
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
          traced("smsgw.route"),
          Effect.result
        )
        const segments = countSegments(input.text, encoding, Result.isSuccess(routed) ? routed.success.referenceBits : 8)
        if (segments > MAX_PARTS) {
          return yield* new InvalidField({ field: "text", message: `needs ${segments} parts; at most ${MAX_PARTS} are possible` })
        }
        if (input.statusCallback !== undefined && caller.canSignCallbacks !== true) {
          return yield* new InvalidField({
            field: "statusCallback",
            message: "the app has no callback signing secret yet: make one with POST /v1/apps/{appId}/callback-secret"
          })
        }
        const trace = yield* currentTraceparent
        const message: NewMessage = {
          id: options.messageId ?? newMessageId(),
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
          ...(options.campaignId !== undefined ? { campaignId: options.campaignId } : {}),
          ...(trace !== undefined ? { trace } : {}),
          ...callbackOf(input, caller)
        }
        yield* Effect.annotateCurrentSpan({ "smsgw.message_id": message.id, "smsgw.segments": segments })
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
        }).pipe(traced("smsgw.ratelimit"), Effect.result)
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
        }, message.id).pipe(traced("smsgw.policy"))
        return { _tag: "Verdict", message: routedMessage, route, rate: rate.success, verdict } satisfies Decision
      })

      /**
       * The decision carried out as far as it can be before the batch's one store write: a refusal counted (and its
       * record planned), an admitted message planned for the write and the hand-off to its link.
       */
      const plan = (decision: Decision, options: SubmitOptions): Plan => {
        const message = decision.message
        const recordRefusals = options.recordRefusals !== false
        switch (decision._tag) {
          case "NoRoute": {
            countRefused(message, "no_route")
            // A message no link can take is still recorded, so its id answers a status query.
            const error = new NoRoute({ message: decision.reason, ...(recordRefusals ? { messageId: message.id } : {}) })
            return recordRefusals
              ? { row: { ...message, rejection: "no_route" }, required: true, result: Result.fail(error), admitted: undefined }
              : refused(error)
          }
          case "RateLimited": {
            const reason = `rate_limited (${decision.error.policy})`
            countRefused(message, reason)
            // Recorded if the store takes it: the answer is the 429 either way.
            return recordRejected && recordRefusals
              ? { row: { ...message, rejection: reason }, required: false, result: Result.fail(decision.error), admitted: undefined }
              : refused(decision.error)
          }
          case "Verdict":
            break
        }
        const { rate, route, verdict } = decision
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
          return { row: undefined, required: false, result: Result.succeed({ accepted: first, rate }), admitted: undefined }
        }
        if (verdict._tag === "Reject") {
          countRefused(message, verdict.reason, verdict.ruleId)
          const error = new PolicyRejected({
            reason: verdict.reason,
            ruleId: verdict.ruleId,
            messageId: message.id,
            ...(verdict.retryAfterMs !== undefined ? { retryAfterSeconds: Math.max(1, Math.ceil(verdict.retryAfterMs / 1000)) } : {})
          })
          // Recorded, so the id in the answer answers a status query with the reason.
          return recordRefusals
            ? { row: { ...message, rejection: verdict.reason, ruleId: verdict.ruleId }, required: true, result: Result.fail(error), admitted: undefined }
            : refused(error)
        }
        const accepted: SubmitAccepted = { id: message.id, status: "accepted", segments: message.segments, encoding: message.encoding }
        return { row: message, required: true, result: Result.succeed({ accepted, rate }), admitted: { route, message, undo: verdict.undo() } }
      }

      /**
       * The batch's plans carried out: one store write for every record (committed before any answer), then the
       * admitted messages handed to their links. A failed write takes back what the policy counted for the admitted.
       */
      const commit = Effect.fnUntraced(function*(plans: ReadonlyArray<Plan>) {
        const rows = plans.flatMap((p) => p.row === undefined ? [] : [p.row])
        if (rows.length > 0) {
          const stored = yield* store.accept(rows).pipe(
            traced("smsgw.store.accept", { attributes: { "smsgw.messages": rows.length } }),
            Effect.exit
          )
          if (Exit.isFailure(stored)) {
            yield* Effect.forEach(plans, (p) => p.admitted?.undo ?? Effect.void, { discard: true })
            // Only best-effort records (rate-limited refusals) failed: their answers stand.
            if (plans.some((p) => p.required)) return yield* Effect.failCause(stored.cause)
            return plans.map((p) => p.result)
          }
        }
        const byTarget = new Map<string, { readonly route: Route; readonly outbound: Array<Outbound> }>()
        let admitted = 0
        for (const p of plans) {
          if (p.admitted === undefined) continue
          const { message, route } = p.admitted
          admitted++
          const target = targetKey(route.target)
          live.accepted({ orgId: message.orgId, campaignId: message.campaignId, target, at: message.createdAt })
          let group = byTarget.get(target)
          if (group === undefined) byTarget.set(target, group = { route, outbound: [] })
          group.outbound.push({
            ...(route.target._tag === "Pool" ? { pool: route.target.id } : {}),
            messageId: message.id,
            to: message.to,
            from: message.from,
            text: message.text,
            encoding: message.encoding,
            seqs: Array.from({ length: message.segments }, (_, i) => i + 1),
            ...(message.validitySeconds !== undefined ? { validitySeconds: message.validitySeconds } : {}),
            acceptedAt: message.createdAt,
            ...(message.trace !== undefined ? { trace: message.trace } : {})
          })
        }
        if (admitted > 0) metrics.accepted(admitted)
        for (const [target, { outbound, route }] of byTarget) {
          yield* dispatcher.dispatchAll(route.target, outbound).pipe(
            traced("smsgw.dispatch", { attributes: { "smsgw.target": target, "smsgw.messages": outbound.length } })
          )
        }
        return plans.map((p) => p.result)
      })

      /**
       * One message up to its plan; any refusal before the store (invalid, limiter or policy down) is its answer. Its
       * span is the message's in the trace: the link's and the receipt's spans join it later.
       */
      const decideOne = (input: SubmitMessage, caller: Submitter, options: SubmitOptions): Effect.Effect<Plan> =>
        validate(input, caller).pipe(
          Effect.flatMap((valid) => decide(input, caller, valid, options)),
          Effect.map((decision) => plan(decision, options)),
          Effect.catch((error) => Effect.succeed(refused(error))),
          Effect.tap((p) => Effect.annotateCurrentSpan("smsgw.outcome", outcomeOf(p.result))),
          traced("smsgw.message", { attributes: { "smsgw.org_id": caller.orgId, "smsgw.app_id": caller.appId ?? "" } })
        )

      /** Messages without keys (or whose keys this batch holds) decided one by one, then committed together. */
      const run = (
        items: ReadonlyArray<{ readonly message: SubmitMessage; readonly options: SubmitOptions }>,
        caller: Submitter
      ): Effect.Effect<ReadonlyArray<SubmitResult>, StoreUnavailable> =>
        items.length === 1 && items[0] !== undefined
          ? Effect.flatMap(decideOne(items[0].message, caller, items[0].options), (p) => commit([p]))
          : Effect.forEach(items, (item) => decideOne(item.message, caller, item.options), { concurrency: decideConcurrency }).pipe(
            Effect.flatMap(commit)
          )

      /**
       * The batch with its idempotency keys: keys claimed in one statement, answered keys replayed, the rest run while
       * their leases are extended, then each key completed with its answer, or released when a retry should run it
       * again. A failure that leaves unknown whether the messages were stored (the store, an interruption) lapses the
       * keys instead: the retry takes them over and finds the message if it was stored.
       */
      const submitKeyed = Effect.fnUntraced(function*(items: ReadonlyArray<SubmitItem>, caller: Submitter, options: SubmitOptions) {
        const keyed = items.flatMap((item, index) =>
          item.idempotencyKey === undefined ? [] : [{ index, key: item.idempotencyKey, message: item.message }]
        )
        const requests: Array<ClaimRequest> = keyed.map(({ key, message }) => ({
          orgId: caller.orgId,
          appId: caller.appId,
          key,
          fingerprint: fingerprint(message),
          messageId: newMessageId()
        }))
        const claims = yield* idempotency.claim(requests, Date.now())
        const claimOf = new Map(keyed.flatMap(({ index, key }, i) => {
          const claim = claims[i]
          return claim === undefined ? [] : [[index, { claim, key }] as const]
        }))
        // Keys this call holds: each is completed with its answer, released, or lapsed.
        const held: Array<{ readonly index: number; readonly key: HeldKey }> = []
        for (const [index, { claim, key }] of claimOf) {
          if (claim._tag === "Claimed" || claim._tag === "TakenOver") {
            held.push({ index, key: { orgId: caller.orgId, appId: caller.appId, key, token: claim.token } })
          }
        }
        const heldKeys = held.map((h) => h.key)
        const decided = Effect.gen(function*() {
          const results: Array<SubmitResult | undefined> = items.map(() => undefined)
          const toRun: Array<{ readonly index: number; readonly message: SubmitMessage; readonly options: SubmitOptions }> = []
          for (const [index, item] of items.entries()) {
            const found = claimOf.get(index)
            if (found === undefined) {
              toRun.push({ index, message: item.message, options })
              continue
            }
            const { claim, key } = found
            switch (claim._tag) {
              case "Answered":
                results[index] = Result.map(replay(claim.answer), (accepted) => ({ accepted, rate: noRate, replayed: true }))
                break
              case "Mismatch":
                results[index] = Result.fail(new IdempotencyKeyReused({ key }))
                break
              case "InFlight":
                results[index] = Result.fail(new IdempotencyKeyInFlight({ key }))
                break
              case "Claimed":
                toRun.push({ index, message: item.message, options: { ...options, messageId: claim.messageId } })
                break
              case "TakenOver": {
                // The first request may have committed its message before it stopped: that message is the answer.
                const stored = yield* store.get(claim.messageId, caller.orgId)
                const earlier = Option.isSome(stored) ? recordedAnswer(stored.value) : undefined
                if (earlier !== undefined) results[index] = earlier
                else {
                  const messageId = Option.isSome(stored) ? newMessageId() : claim.messageId
                  toRun.push({ index, message: item.message, options: { ...options, messageId } })
                }
                break
              }
            }
          }
          const ran = yield* run(toRun, caller)
          for (const [i, item] of toRun.entries()) results[item.index] = ran[i]
          const answered = results.filter((r) => r !== undefined)
          if (answered.length !== items.length) return yield* Effect.die(new Error("a batch message got no result"))
          return answered
        })
        // While the batch runs its leases are extended, so only a request that stopped loses its keys to a retry.
        const extendLeases = Effect.suspend(() => idempotency.extend(heldKeys, Date.now())).pipe(
          Effect.ignore,
          Effect.repeat(Schedule.spaced(Duration.millis(idempotency.leaseMs / 3))),
          Effect.delay(Duration.millis(idempotency.leaseMs / 3))
        )
        const results = yield* (heldKeys.length === 0 ? decided : Effect.raceFirst(decided, Effect.andThen(extendLeases, Effect.never))).pipe(
          Effect.onExit((exit) =>
            Exit.isSuccess(exit) ? Effect.void : idempotency.lapse(heldKeys).pipe(Effect.ignore, Effect.uninterruptible)
          )
        )
        const completed: Array<HeldKey & { readonly answer: string }> = []
        const released: Array<HeldKey> = []
        for (const { index, key } of held) {
          const result = results[index]
          const answer = result === undefined ? undefined : answerOf(Result.map(result, (o) => o.accepted))
          if (answer === undefined) released.push(key)
          else completed.push({ ...key, answer })
        }
        // A key left in flight by a failure here is taken over once its lease ends, and the retry finds the message.
        yield* idempotency.complete(completed).pipe(
          Effect.andThen(idempotency.release(released)),
          Effect.catch((e) => Effect.logWarning("idempotency keys not completed").pipe(Effect.annotateLogs({ error: e.message })))
        )
        return results
      })

      const submitMany = (items: ReadonlyArray<SubmitItem>, caller: Submitter, options: SubmitOptions = {}) =>
        items.some((item) => item.idempotencyKey !== undefined)
          ? submitKeyed(items, caller, options)
          : run(items.map((item) => ({ message: item.message, options })), caller)

      const submit = (input: SubmitMessage, caller: Submitter, options: SubmitOptions = {}): Effect.Effect<SubmitOutcome, SubmitError> =>
        submitMany([{ message: input, ...(options.idempotencyKey !== undefined ? { idempotencyKey: options.idempotencyKey } : {}) }], caller, options).pipe(
          Effect.flatMap(([result]) =>
            result === undefined ? Effect.die(new Error("a submit got no result")) : Result.isSuccess(result) ? Effect.succeed(result.success) : Effect.fail(result.failure)
          )
        )

      const status = Effect.fnUntraced(function*(id: string, caller: Caller) {
        const found = yield* store.get(id, caller.orgId)
        // An app reads its own messages; another app's are as unknown as a missing one (users read the organisation's).
        if (Option.isNone(found) || (caller.appId !== null && found.value.appId !== caller.appId)) {
          return yield* new MessageNotFound({ id })
        }
        return found.value
      })

      return Gateway.of({ submit, submitMany, status })
    })
  )
}
