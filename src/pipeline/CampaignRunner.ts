/**
 * The Campaign entity (protocol in src/actors/CampaignProtocol.ts; here because it submits through `Gateway`): one
 * per started campaign, kept alive while it sends. It waits for the start time, copies the audience once, then sends
 * pages from the persisted cursor in batches at the campaign's throttle, and completes when nothing is left.
 *
 * Invariants:
 * - A batch (read, submit, record) runs holding the actor's lock and after reading the stored state: Pause and Cancel
 *   take the lock before answering, and the state was stored before them, so nothing is submitted after their answer,
 *   on this node or on one that takes the campaign over.
 * - A recipient's message id is derived from (campaign, position, attempt) and its attempt count is written with its
 *   outcome: after a crash the new actor finds the ids of its page already stored and marks those recipients
 *   submitted instead of sending them again. Only an SMPP outcome left unknown by the crash may reach the SMSC twice
 *   (recovery decides and counts that).
 * - A rate-limited submission is not a refusal: the recipient stays where it is and is tried again after the wait.
 *   A transient failure (store, limiter, policy unavailable) is the same.
 * - Time decisions (start time, send window, deferrals) read the policy clock, so tests move it instead of waiting.
 */
import { Duration, Effect, Fiber, Layer, Option, Schedule, Semaphore } from "effect"
import { Entity, Singleton } from "effect/cluster"
import type { Sharding } from "effect/cluster"
import { Rpc } from "effect/rpc"
import { SqlClient } from "effect/sql"
import { Campaign as CampaignEntity } from "../actors/CampaignProtocol.ts"
import type { CampaignView } from "../actors/CampaignProtocol.ts"
import { ActorRegistry } from "../actors/ActorRegistry.ts"
import { AccountStore } from "../auth/AccountStore.ts"
import type { Submitter } from "../domain/Account.ts"
import type { Campaign, PauseReason } from "../domain/Campaign.ts"
import { activeStates } from "../domain/Campaign.ts"
import type { SubmitMessage } from "../domain/Message.ts"
import { campaignMessageId, legacyCampaignMessageId } from "../domain/MessageId.ts"
import { parseRecipient, parseSender } from "../domain/Msisdn.ts"
import type { Sender } from "../domain/Msisdn.ts"
import { missingVariable, parseTemplate, renderTemplate } from "../domain/Template.ts"
import type { Template } from "../domain/Template.ts"
import { PolicyClock } from "../policy/PolicyClock.ts"
import { PolicyConfig } from "../policy/PolicyConfig.ts"
import { countryZones, nextOpening, windowMinutes } from "../policy/SendWindow.ts"
import { Audience } from "../storage/Audience.ts"
import { CampaignRecipients } from "../storage/CampaignRecipients.ts"
import type { Recipient, RecipientOutcome } from "../storage/CampaignRecipients.ts"
import { CampaignStore } from "../storage/CampaignStore.ts"
import { Gateway } from "./Gateway.ts"
import { detached, parentOf, untracedStack } from "../observability/Tracing.ts"
import type { SubmitError, SubmitOutcome } from "./Gateway.ts"
import { logsAs } from "../observability/Logging.ts"


export interface CampaignRunnerOptions {
  /** A batch is sent every tick (throttle × tick messages); pause and the stored state are seen within one tick. */
  readonly tickMs?: number
  /** How often an idle loop (waiting for its start, a window, deferred recipients) looks again. */
  readonly idleMs?: number
}

/** What one recipient's turn came to; `retry` leaves it where it is (rate limited, something unavailable). */
export type Turn =
  | { readonly _tag: "Done"; readonly outcome: RecipientOutcome; readonly recovered?: boolean }
  | { readonly _tag: "Retry"; readonly afterMs: number; readonly rateLimited: boolean; readonly error?: string }

/** What one batch attempted, as the automatic pause judges the last minute: one tally per batch, not per recipient. */
export interface Attempts {
  readonly at: number
  readonly submitted: number
  readonly failed: number
  /** Refused or excluded by the contact policy. */
  readonly refused: number
}

const MINUTE = 60_000

/** The automatic pause's verdict on the last minute, or undefined. */
export const autoPauseReason = (
  rules: Campaign["autoPause"],
  batches: ReadonlyArray<Omit<Attempts, "at">>
): PauseReason | undefined => {
  if (rules === undefined) return undefined
  let failed = 0
  let refused = 0
  let total = 0
  for (const b of batches) {
    failed += b.failed
    refused += b.refused
    total += b.submitted + b.failed + b.refused
  }
  if (total === 0 || total < (rules.minAttempts ?? 20)) return undefined
  const pct = (n: number) => `${Math.round(n * 1000) / 10} %`
  if (rules.failureRatio !== undefined && failed / total > rules.failureRatio) {
    return { kind: "auto", detail: `failure ratio ${pct(failed / total)} (${failed} of ${total} in the last minute) above ${pct(rules.failureRatio)}` }
  }
  if (rules.refusalRatio !== undefined && refused / total > rules.refusalRatio) {
    return { kind: "auto", detail: `refusal ratio ${pct(refused / total)} (${refused} of ${total} in the last minute) above ${pct(rules.refusalRatio)}` }
  }
  return undefined
}

/** How many messages the canary lets through before holding (undefined: no canary). */
export const canaryLimit = (canary: Campaign["canary"], audience: number): number | undefined => {
  if (canary === undefined) return undefined
  if (canary.count !== undefined) return canary.count
  if (canary.percent !== undefined) return Math.max(1, Math.ceil((canary.percent / 100) * audience))
  return undefined
}

/**
 * How many recipients a batch takes and how often batches go, so that the rate is the throttle exactly: about one
 * tick's worth a batch (at least one), a batch every `size / perSecond` seconds. A throttle below one message a
 * tick (5/s at 200 ms) spaces single messages out instead of sending one every tick.
 */
export const pacing = (perSecond: number, tickMs: number): { readonly size: number; readonly intervalMs: number } => {
  const size = Math.max(1, Math.round((perSecond * tickMs) / 1000))
  return { size, intervalMs: (size * 1000) / perSecond }
}

/** What a batch's turns come to: the outcomes to write, how far the cursor may move, what the last minute gains. */
export interface Settled {
  readonly outcomes: ReadonlyArray<RecipientOutcome>
  readonly attempted: Attempts
  /** The new cursor: past the last page recipient settled, stopping at the first one left for later. */
  readonly cursor: number
  readonly submitted: number
  readonly recovered: number
  /** Before the next batch (a rate limit's retry-after), 0 when none. */
  readonly waitMs: number
  readonly rateLimited: number
  readonly error: string | undefined
}

/** Settles a batch: `turns` in batch order, the first `dueCount` of them deferred recipients (not the cursor's). */
export const settle = (
  turns: ReadonlyArray<{ readonly r: { readonly pos: number }; readonly t: Turn }>,
  dueCount: number,
  cursorBefore: number,
  at: number
): Settled => {
  const outcomes: Array<RecipientOutcome> = []
  const attempted = { at, submitted: 0, failed: 0, refused: 0 }
  let waitMs = 0
  let cursor = cursorBefore
  let blocked = false
  let submitted = 0
  let recovered = 0
  let rateLimited = 0
  let error: string | undefined
  for (const [i, { r, t }] of turns.entries()) {
    const fromPage = i >= dueCount
    if (t._tag === "Retry") {
      waitMs = Math.max(waitMs, t.afterMs)
      if (t.rateLimited) rateLimited++
      if (t.error !== undefined) error = t.error
      if (fromPage) blocked = true
      continue
    }
    outcomes.push(t.outcome)
    if (t.recovered === true) recovered++
    if (fromPage && !blocked) cursor = r.pos + 1
    const state = t.outcome.state
    if (state === "submitted") submitted++
    if (state === "submitted") attempted.submitted++
    if (state === "failed") attempted.failed++
    if (state === "refused" || state === "excluded") attempted.refused++
  }
  return { outcomes, attempted, cursor, submitted, recovered, waitMs, rateLimited, error }
}

/** How long a loop waits before its next step; `paced`: counted from the start of the batch just sent. */
interface Wait {
  readonly ms: number
  readonly paced: boolean
}

const waitFor = (ms: number): Wait => ({ ms, paced: false })
const paced = (ms: number): Wait => ({ ms, paced: true })

const makeCampaign = (options: CampaignRunnerOptions) => Effect.gen(function*() {
  const address = yield* Entity.CurrentAddress
  const campaignId = address.entityId
  const store = yield* CampaignStore
  const recipients = yield* CampaignRecipients
  const audiences = yield* Audience
  const gateway = yield* Gateway
  const accounts = yield* AccountStore
  const policy = yield* PolicyConfig
  const clock = yield* PolicyClock
  const sql = yield* SqlClient.SqlClient
  const entityScope = yield* Effect.scope
  const entityContext = yield* Effect.context<Entity.CurrentAddress | Sharding.Sharding>()
  const tickMs = options.tickMs ?? 200
  const idleMs = options.idleMs ?? 1000

  const lock = yield* Semaphore.make(1)
  const wakeLock = yield* Semaphore.make(1)
  let loop: Fiber.Fiber<void> | undefined
  let halted = false
  let lastState = "unknown"
  let lastError: string | undefined
  let recoveredSubmitted = 0
  let rateLimitedWaits = 0

  /** What a loop prepares once: the copied audience, the parsed template and sender, what it has sent so far. */
  interface Prepared {
    readonly audience: number
    readonly template: Template
    readonly sender: Sender
    submitted: number
    cursor: number
    submitter: Submitter
    submitterAt: number
  }
  let prepared: Prepared | undefined
  /** The last minute's batches, kept only for a campaign with an automatic pause. */
  let recent: Array<Attempts> = []

  const keepAlive = (enabled: boolean) => Entity.keepAlive(enabled).pipe(Effect.provideContext(entityContext))

  /**
   * What the campaign did by itself lands in the organisation's audit log beside what people did (no actor: the
   * system). Best effort: the transition is stored already, and an audit write that fails is logged, not retried.
   */
  const auditSystem = (campaign: Campaign, action: string, detail: string) =>
    accounts.audit({ orgId: campaign.orgId, actorUserId: null, actorAppId: null, action, target: campaignId, ip: null, detail }).pipe(
      Effect.catchCause((cause) => Effect.logWarning("campaign audit entry not written").pipe(Effect.annotateLogs({ campaignId, action, cause: String(cause) })))
    )

  const pause = (reason: PauseReason) =>
    store.transition(campaignId, "pause", "paused", { patch: { pauseReason: reason } }).pipe(
      Effect.tap(() => Effect.logWarning("campaign paused itself").pipe(Effect.annotateLogs({ campaignId, kind: reason.kind, detail: reason.detail }))),
      Effect.asVoid
    )

  /** The sending app as a submitter; undefined (and the campaign paused) when it is gone or disabled. */
  const submitterOf = (campaign: Campaign) =>
    Effect.gen(function*() {
      const app = yield* accounts.findAppById(campaign.appId).pipe(Effect.mapError((e) => new Error(String(e))), Effect.orDie)
      if (Option.isNone(app) || app.value.orgId !== campaign.orgId || !app.value.active) {
        const reason: PauseReason = { kind: "auto", detail: `app ${campaign.appId} is ${Option.isNone(app) ? "deleted" : "disabled"}` }
        yield* pause(reason)
        yield* auditSystem(campaign, "campaign.paused", `${reason.kind}: ${reason.detail}`)
        return undefined
      }
      const a = app.value
      const submitter: Submitter = { orgId: a.orgId, appId: a.id, appLimits: a.limits, messageClass: a.messageClass }
      return submitter
    })

  const prepare = (campaign: Campaign) =>
    Effect.gen(function*() {
      const parsed = parseTemplate(campaign.template)
      const sender = parseSender(campaign.sender)
      if ("error" in parsed || sender === undefined) {
        const reason: PauseReason = { kind: "auto", detail: "error" in parsed ? `template: ${parsed.error.message}` : `sender ${campaign.sender} is not valid` }
        yield* pause(reason)
        yield* auditSystem(campaign, "campaign.paused", `${reason.kind}: ${reason.detail}`)
        return undefined
      }
      const submitter = yield* submitterOf(campaign)
      if (submitter === undefined) return undefined
      // Before the audience is copied: a list deleted since approval leaves the audience the moderator approved
      // gone (all of it, or a part). Hold with the reason rather than send to what is left, or complete on nothing.
      if (campaign.audience === 0) {
        const { missing } = yield* audiences.resolve(campaign.orgId, campaign.lists)
        if (missing.length > 0) {
          const reason: PauseReason = {
            kind: "auto",
            detail: `list ${missing.join(", ")} was deleted before the campaign started; cancel it and create it again`
          }
          yield* pause(reason)
          yield* auditSystem(campaign, "campaign.paused", `${reason.kind}: ${reason.detail}`)
          return undefined
        }
      }
      const audience = yield* recipients.materialise(campaign)
      const counts = yield* recipients.counts(campaignId)
      const cursor = yield* recipients.cursor(campaignId)
      const p: Prepared = {
        audience,
        template: parsed.template,
        sender,
        submitted: counts.filter((c) => c.state === "submitted").reduce((n, c) => n + c.count, 0),
        cursor,
        submitter,
        submitterAt: Date.now()
      }
      return p
    })

  const outcomeOfError = (r: Recipient, attempts: number, error: SubmitError, now: number): Turn => {
    switch (error._tag) {
      case "RateLimited":
        return { _tag: "Retry", afterMs: error.retryAfterSeconds * 1000, rateLimited: true }
      case "LimiterUnavailable":
        return { _tag: "Retry", afterMs: error.retryAfterSeconds * 1000, rateLimited: false, error: "rate limiter unavailable" }
      case "StoreUnavailable":
      case "PolicyUnavailable":
        return { _tag: "Retry", afterMs: idleMs, rateLimited: false, error: error.message }
      case "NoRoute":
        return { _tag: "Done", outcome: { pos: r.pos, state: "failed", attempts, reason: "no_route" } }
      case "InvalidField":
        return { _tag: "Done", outcome: { pos: r.pos, state: "failed", attempts, reason: `invalid_${error.field}` } }
      case "IdempotencyKeyInFlight":
      case "IdempotencyKeyReused":
        // A campaign's messages carry no idempotency key (their ids are derived from the recipient instead).
        return { _tag: "Retry", afterMs: idleMs, rateLimited: false, error: error._tag }
      case "PolicyRejected": {
        if (error.reason === "quiet_hours" && error.retryAfterSeconds !== undefined) {
          return {
            _tag: "Done",
            outcome: { pos: r.pos, state: "deferred", attempts, reason: "quiet_hours", ruleId: error.ruleId, nextAt: now + error.retryAfterSeconds * 1000 }
          }
        }
        const state = error.reason === "blacklisted" ? "excluded" : "refused"
        return { _tag: "Done", outcome: { pos: r.pos, state, attempts, reason: error.reason, ruleId: error.ruleId } }
      }
    }
  }

  /** One recipient's turn: the window, then the pipeline. `ids`: its message id, and the id it is stored under if any. */
  const turn = (
    campaign: Campaign,
    p: Prepared,
    r: Recipient,
    ids: { readonly messageId: string; readonly storedAs: string | undefined },
    window: (country: string | undefined) => number
  ) =>
    Effect.gen(function*() {
      const { messageId, storedAs } = ids
      const attempts = r.attempts + 1
      if (storedAs !== undefined) {
        return { _tag: "Done", outcome: { pos: r.pos, state: "submitted", attempts, messageId: storedAs }, recovered: true } satisfies Turn
      }
      const to = parseRecipient(`+${r.msisdn}`)
      if (to === undefined) {
        return { _tag: "Done", outcome: { pos: r.pos, state: "failed", attempts: r.attempts, reason: "invalid_number" } } satisfies Turn
      }
      // Checked at submission, but a contact added to a list since then may lack a variable the template requires:
      // not sent with a hole in its text (the dry run counts it unsendable too).
      if (missingVariable(p.template, r.vars) !== undefined) {
        return { _tag: "Done", outcome: { pos: r.pos, state: "failed", attempts: r.attempts, reason: "missing_variable" } } satisfies Turn
      }
      const now = clock.now()
      // The number's own country, as quiet hours read it; the list's when the numbering plan does not tell.
      const opens = window(to.country ?? r.country)
      if (opens > now) {
        return { _tag: "Done", outcome: { pos: r.pos, state: "deferred", attempts: r.attempts, reason: "send_window", nextAt: opens } } satisfies Turn
      }
      const message: SubmitMessage = {
        to,
        from: p.sender,
        text: renderTemplate(p.template, r.vars),
        encoding: campaign.encoding,
        messageClass: campaign.messageClass,
        ...(campaign.validitySeconds !== undefined ? { validitySeconds: campaign.validitySeconds } : {})
      }
      const result = yield* gateway.submit(message, p.submitter, { messageId, campaignId, recordRefusals: false }).pipe(Effect.result)
      if (result._tag === "Failure") return outcomeOfError(r, attempts, result.failure, now)
      const accepted: SubmitOutcome = result.success
      if (accepted.accepted.duplicate === true) {
        // Dedup answered with an earlier message: nothing was sent for this recipient.
        return { _tag: "Done", outcome: { pos: r.pos, state: "refused", attempts, reason: "duplicate", messageId: accepted.accepted.id } } satisfies Turn
      }
      return { _tag: "Done", outcome: { pos: r.pos, state: "submitted", attempts, messageId } } satisfies Turn
    })

  /** A scheduled campaign: running once its start time has come (policy clock); answers the wait. */
  const startWhenDue = (campaign: Campaign) => Effect.gen(function*() {
    const startTime = yield* recipients.startTime(campaignId)
    const now = clock.now()
    if (startTime !== undefined && startTime > now) return waitFor(Math.min(idleMs, startTime - now))
    yield* store.transition(campaignId, "run", "running", { patch: { startedAt: Date.now() } })
    yield* auditSystem(campaign, "campaign.running", "its start time came")
    return waitFor(0)
  })

  /** The recipients' send window as a function of their country: when it opens (memoised for one batch). */
  const windowFor = (campaign: Campaign, now: number) => {
    if (campaign.sendWindow === undefined) return () => now
    const window = windowMinutes(campaign.sendWindow)
    const document = policy.current().document
    const openings = new Map<string, number>()
    return (country: string | undefined): number => {
      const key = country ?? ""
      const known = openings.get(key)
      if (known !== undefined) return known
      const opens = nextOpening(window, countryZones(country, document), now)
      openings.set(key, opens)
      return opens
    }
  }

  /**
   * A batch's sends are a trace of their own (kind producer: sampled like an API request), linked to the trace of the
   * request that started the campaign: one trace per campaign would hold millions of spans, past what trace stores
   * and viewers take. Its messages' spans (and their links' and receipts') are children of the batch's.
   */
  const batchSpan = (campaign: Campaign, size: number) => {
    const started = parentOf(campaign.trace)
    return Effect.withSpan("smsgw.campaign.batch", {
      kind: "producer",
      // A root even when the actor was woken inside the start request (the cluster carries the caller's span along).
      root: true,
      attributes: { "smsgw.campaign_id": campaign.id, "smsgw.org_id": campaign.orgId, "smsgw.messages": size },
      links: started === undefined ? [] : [{ span: started, attributes: { "smsgw.link": "campaign start" } }]
    }, untracedStack)
  }

  /** One batch of a running campaign: answers how long to wait before the next, or undefined when the loop ends. */
  const sendBatch = (campaign: Campaign, p: Prepared) => Effect.gen(function*() {
    const perSecond = Math.max(1, Math.min(campaign.throttle, p.submitter.appLimits.perSecond ?? Number.POSITIVE_INFINITY))
    const pace = pacing(perSecond, tickMs)
    let size = pace.size
    const canary = canaryLimit(campaign.canary, p.audience)
    const canaryOpen = canary !== undefined && p.submitted < canary
    if (canaryOpen) size = Math.min(size, canary - p.submitted)

    const now = clock.now()
    const due = yield* recipients.due(campaignId, now, size)
    const page = due.length < size ? yield* recipients.page(campaignId, p.cursor, size - due.length) : []
    if (due.length === 0 && page.length === 0) {
      const left = yield* recipients.deferred(campaignId)
      if (left.count > 0) return waitFor(idleMs)
      yield* store.transition(campaignId, "complete", "completed", { patch: { finishedAt: Date.now() } })
      yield* auditSystem(campaign, "campaign.completed", `audience=${p.audience}`)
      yield* Effect.logInfo("campaign completed").pipe(Effect.annotateLogs({ campaignId, audience: p.audience }))
      return undefined
    }

    const batch = [...due, ...page]
    // Under either form of id: a batch in flight when the gateway was upgraded was stored under the legacy one.
    const forms = batch.map((r) => ({
      r,
      messageId: campaignMessageId(campaign, r.pos, r.attempts),
      legacyId: legacyCampaignMessageId(campaignId, r.pos, r.attempts)
    }))
    const stored = yield* recipients.existing(forms.flatMap((f) => [f.messageId, f.legacyId]))
    const window = windowFor(campaign, now)
    const turns = yield* Effect.forEach(forms, ({ r, messageId, legacyId }) => {
      const storedAs = stored.has(messageId) ? messageId : stored.has(legacyId) ? legacyId : undefined
      return Effect.map(turn(campaign, p, r, { messageId, storedAs }, window), (t) => ({ r, t }))
    }, {
      concurrency: "unbounded"
    }).pipe(batchSpan(campaign, batch.length))
    const at = Date.now()
    const settled = settle(turns, due.length, p.cursor, at)
    const lastMinute = campaign.autoPause === undefined ? [] : [...recent.filter((a) => a.at > at - MINUTE), settled.attempted]
    const hold: PauseReason | undefined = canaryOpen && p.submitted + settled.submitted >= canary
      ? { kind: "canary", detail: `canary of ${canary} messages sent; resume to send the rest` }
      : autoPauseReason(campaign.autoPause, lastMinute)
    const write = recipients.record(campaignId, settled.outcomes, settled.cursor > p.cursor ? settled.cursor : undefined)
    // The outcomes and a pause in one transaction: a crash between them would lose the hold. Memory follows the
    // database: a failed write leaves the batch to be found again (its stored messages marked, not re-sent).
    // A person who paused or cancelled meanwhile stopped it already: the hold finds it not running, and the batch's
    // outcomes are kept (rolling them back would only make the next actor find its messages again).
    const held = hold === undefined ? yield* Effect.as(write, false) : yield* sql.withTransaction(Effect.andThen(
      write,
      pause(hold).pipe(Effect.as(true), Effect.catchTag("InvalidTransition", () => Effect.succeed(false)))
    ))
    if (hold !== undefined && held) yield* auditSystem(campaign, "campaign.paused", `${hold.kind}: ${hold.detail}`)
    p.cursor = Math.max(p.cursor, settled.cursor)
    p.submitted += settled.submitted
    recoveredSubmitted += settled.recovered
    rateLimitedWaits += settled.rateLimited
    if (settled.error !== undefined) lastError = settled.error
    recent = hold === undefined ? lastMinute : []
    if (hold !== undefined) {
      halted = true
      return undefined
    }
    return settled.waitMs > pace.intervalMs ? waitFor(settled.waitMs) : paced(pace.intervalMs)
  })

  /** One step under the lock, after reading the stored state: answers the wait before the next, undefined to stop. */
  const tick: Effect.Effect<Wait | undefined, unknown> = Effect.gen(function*() {
    if (halted) return undefined
    const found = yield* store.find(campaignId)
    if (Option.isNone(found)) return undefined
    const campaign = found.value
    lastState = campaign.state
    if (campaign.state === "scheduled") return yield* startWhenDue(campaign)
    if (campaign.state !== "running") return undefined
    if (prepared === undefined) {
      prepared = yield* prepare(campaign)
      if (prepared === undefined) return undefined
    }
    const p = prepared
    if (Date.now() - p.submitterAt > 5_000) {
      const submitter = yield* submitterOf(campaign)
      if (submitter === undefined) return undefined
      p.submitter = submitter
      p.submitterAt = Date.now()
    }
    return yield* sendBatch(campaign, p)
  })

  const run = Effect.gen(function*() {
    for (;;) {
      const started = Date.now()
      const next = yield* lock.withPermit(tick).pipe(
        Effect.catchCause((cause) =>
          Effect.logWarning("campaign batch failed; trying again").pipe(
            Effect.annotateLogs({ campaignId, cause: String(cause) }),
            Effect.tap(() => Effect.sync(() => { lastError = String(cause).slice(0, 500) })),
            Effect.as(waitFor(idleMs))
          )
        )
      )
      if (next === undefined) return
      // A paced batch: the next is due its interval after this one started (the throttle counts the batch's own time).
      const wait = next.paced ? Math.max(0, next.ms - (Date.now() - started)) : next.ms
      if (wait > 0) yield* Effect.sleep(Duration.millis(wait))
    }
  })

  const wake = wakeLock.withPermit(Effect.gen(function*() {
    if (loop !== undefined) return
    const found = yield* store.find(campaignId)
    if (Option.isNone(found) || !activeStates.includes(found.value.state)) return
    lastState = found.value.state
    halted = false
    prepared = undefined
    yield* keepAlive(true)
    loop = yield* run.pipe(
      Effect.ensuring(Effect.suspend(() => {
        loop = undefined
        return keepAlive(false)
      })),
      detached,
      Effect.forkIn(entityScope)
    )
  })).pipe(
    Effect.catchCause((cause) => Effect.logWarning("campaign wake failed").pipe(Effect.annotateLogs({ campaignId, cause: String(cause) })))
  )

  const halt = lock.withPermit(Effect.gen(function*() {
    halted = true
    const running = loop
    if (running !== undefined) yield* Fiber.interrupt(running)
  }))

  const inspect = Effect.gen(function*() {
    const counts = yield* recipients.counts(campaignId).pipe(Effect.orElseSucceed(() => []))
    const byKey: Record<string, number> = {}
    for (const c of counts) {
      byKey[c.state] = (byKey[c.state] ?? 0) + c.count
      if (c.reason !== "") byKey[`${c.state}:${c.reason}`] = (byKey[`${c.state}:${c.reason}`] ?? 0) + c.count
    }
    const cursor = yield* recipients.cursor(campaignId).pipe(Effect.orElseSucceed(() => 0))
    const view: CampaignView = {
      campaignId,
      state: lastState,
      sending: loop !== undefined,
      cursor,
      audience: prepared?.audience ?? counts.reduce((n, c) => n + c.count, 0),
      counts: byKey,
      recoveredSubmitted,
      rateLimitedWaits,
      ...(lastError !== undefined ? { lastError } : {})
    }
    return view
  })

  yield* (yield* ActorRegistry).register("Campaign", campaignId)

  return CampaignEntity.of({
    Wake: () => wake,
    Pause: () => halt,
    Cancel: () => halt,
    Inspect: () => inspect.pipe(Rpc.fork)
  })
})

/** The Campaign entity's handlers; concurrent, so Pause is never queued behind anything but the batch in flight. */
export const layer = (options: CampaignRunnerOptions = {}) =>
  CampaignEntity.toLayer(makeCampaign(options).pipe(logsAs("campaign")), { concurrency: "unbounded" })

export interface SupervisorOptions {
  readonly intervalMs: number
}

/**
 * Keeps every started campaign's actor going (a cluster singleton): wakes the actor of each scheduled or running
 * campaign every interval, so one whose node died resumes on another from its cursor and a scheduled one starts.
 */
export const supervisorLayer = (options: SupervisorOptions) =>
  Layer.unwrap(Effect.gen(function*() {
    const store = yield* CampaignStore
    const clientFor = yield* CampaignEntity.client
    const tick = store.active.pipe(
      Effect.flatMap((active) =>
        Effect.forEach(active, (c) =>
          clientFor(c.id).Wake().pipe(
            Effect.timeout(Duration.seconds(10)),
            Effect.catchCause((cause) => Effect.logDebug("campaign wake not answered").pipe(Effect.annotateLogs({ campaignId: c.id, cause: String(cause) })))
          ), { concurrency: 16, discard: true })
      ),
      Effect.catchCause((cause) => Effect.logWarning("campaign supervisor tick failed").pipe(Effect.annotateLogs({ cause: String(cause) })))
    )
    return Singleton.make("smsgw/campaign-supervisor", tick.pipe(Effect.repeat(Schedule.spaced(options.intervalMs))))
  }))
