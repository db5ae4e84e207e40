/**
 * Handlers of the campaigns and moderation API: use cases from pipeline/Campaigns.ts, their errors as problems.
 */
import { Effect, Layer, Stream } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { Access, CurrentPrincipal } from "../auth/Access.ts"
import type { Campaign } from "../domain/Campaign.ts"
import { zonedToEpoch } from "../domain/ZonedTime.ts"
import type { CampaignError, CampaignStatistics, TestSendsExhausted } from "../pipeline/Campaigns.ts"
import { Campaigns } from "../pipeline/Campaigns.ts"
import type { SubmitError } from "../pipeline/Gateway.ts"
import type { RecipientOutcome } from "../storage/CampaignStats.ts"
import { requestOrigin } from "./AccountsHandlers.ts"
import { GatewayApi } from "./Api.ts"
import {
  ConflictProblem,
  ForbiddenProblem,
  NotFoundProblem,
  TooManyRequestsProblem,
  UnavailableProblem,
  ValidationProblem
} from "./Problems.ts"
import { beforeOf, defaultPageSize } from "./Paging.ts"
import { failSubmit } from "./SubmitProblems.ts"
import type { ProblemFor } from "./SubmitProblems.ts"
import type { IdempotencyKeyInFlight, IdempotencyKeyReused } from "../domain/Errors.ts"
import { setResponseHeader } from "./ResponseHeaders.ts"

const iso = (ms: number | undefined) => ms === undefined ? undefined : new Date(ms).toISOString()

/** Optional keys present only with a value (the views use exact optional keys). */
const defined = <A extends Record<string, unknown>>(o: A): { [K in keyof A]: Exclude<A[K], undefined> } =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as { [K in keyof A]: Exclude<A[K], undefined> }

/** Who paused it stays in the store (the audit log names them); the view says why. */
const pauseReasonView = (c: Campaign) =>
  c.pauseReason === undefined ? undefined : { kind: c.pauseReason.kind, detail: c.pauseReason.detail }

export const campaignView = (c: Campaign) => ({
  id: c.id,
  name: c.name,
  appId: c.appId,
  sender: c.sender,
  template: c.template,
  lists: c.lists,
  messageClass: c.messageClass,
  encoding: c.encoding,
  throttle: c.throttle,
  state: c.state,
  flags: c.flags,
  createdBy: c.createdBy,
  audience: c.audience,
  createdAt: new Date(c.createdAt).toISOString(),
  updatedAt: new Date(c.updatedAt).toISOString(),
  ...defined({
    startAt: c.startAt,
    startTime: c.startAt === undefined ? undefined : iso(zonedToEpoch(c.startAt.at, c.startAt.timeZone)),
    sendWindow: c.sendWindow,
    validitySeconds: c.validitySeconds,
    canary: c.canary,
    autoPause: c.autoPause,
    pauseReason: pauseReasonView(c),
    rejectionReason: c.rejectionReason,
    approvedBy: c.approvedBy,
    submittedAt: iso(c.submittedAt),
    startedAt: iso(c.startedAt),
    finishedAt: iso(c.finishedAt)
  })
})

export const statsView = (s: CampaignStatistics) => ({
  id: s.campaign.id,
  state: s.campaign.state,
  ...defined({ pauseReason: pauseReasonView(s.campaign) }),
  at: new Date(s.at).toISOString(),
  audience: Math.max(s.figures.audience, s.campaign.audience),
  recipients: s.figures.recipients,
  messages: s.figures.messages,
  submitted: s.figures.submitted,
  receipt: { count: s.figures.receipt.count, ...defined({ medianMs: s.figures.receipt.medianMs, p95Ms: s.figures.receipt.p95Ms }) },
  parts: s.figures.parts,
  reasons: s.figures.reasons.map((r) => ({ state: r.state, reason: r.reason, count: r.count, ...defined({ ruleId: r.ruleId }) })),
  ...defined({ deliveryRate: s.figures.deliveryRate })
})

const outcomeView = (o: RecipientOutcome) => ({
  position: o.position,
  msisdn: `+${o.msisdn.replace(/^\+/, "")}`,
  state: o.state,
  attempts: o.attempts,
  updatedAt: new Date(o.updatedAt).toISOString(),
  ...defined({
    reason: o.reason,
    ruleId: o.ruleId,
    nextAt: iso(o.nextAt),
    messageId: o.messageId,
    status: o.status,
    segments: o.segments,
    messageReason: o.messageReason,
    acceptedAt: iso(o.acceptedAt)
  })
})

const page = (rows: ReadonlyArray<RecipientOutcome>, limit: number) => {
  const last = rows[rows.length - 1]
  return { items: rows.map(outcomeView), ...(rows.length === limit && last !== undefined ? { next: last.position } : {}) }
}

const validation = (field: string, message: string) => new ValidationProblem({ detail: `${field}: ${message}`, errors: [{ field, message }] })

/** Campaign use-case errors → RFC 9457 problems. */
export const toProblem = (error: CampaignError) => {
  switch (error._tag) {
    case "InvalidField":
      return validation(error.field, error.message)
    case "TemplateVariablesMissing": {
      const errors = error.rows.map((r) => ({
        field: "template",
        message: `{{${r.variable}}} has no value and no default for list ${r.listId} position ${r.position} (+${r.msisdn.replace(/^\+/, "")})`
      }))
      return new ValidationProblem({ detail: errors.map((e) => e.message).join("; "), errors })
    }
    case "Forbidden":
      return new ForbiddenProblem({ detail: error.message })
    case "CampaignNotFound":
      return new NotFoundProblem({ detail: `no campaign ${error.id}` })
    case "InvalidTransition":
      return new ConflictProblem({ detail: `cannot ${error.action} campaign ${error.id}: it is ${error.state}` })
    case "StoreUnavailable":
      return new UnavailableProblem({ detail: "campaign storage is unavailable; retry later" })
  }
}

/** A storage failure is logged with what the database said (the client only learns to retry). */
const problems = <A, R>(effect: Effect.Effect<A, CampaignError, R>) =>
  effect.pipe(
    Effect.tapError((e) =>
      e._tag === "StoreUnavailable"
        ? Effect.logError("campaign storage unavailable").pipe(Effect.annotateLogs({ error: e.message }))
        : Effect.void
    ),
    Effect.mapError(toProblem)
  )

/** The pipeline's refusals of a test send, as POST /v1/messages answers them, and the test-send quota's 429. */
const submitProblem = (
  error: CampaignError | TestSendsExhausted | SubmitError
): Effect.Effect<
  never,
  ProblemFor<Exclude<SubmitError, IdempotencyKeyInFlight | IdempotencyKeyReused>> | TooManyRequestsProblem | ReturnType<typeof toProblem>
> => {
  switch (error._tag) {
    case "TestSendsExhausted":
      return setResponseHeader("retry-after", String(error.retryAfterSeconds)).pipe(
        Effect.andThen(Effect.fail(new TooManyRequestsProblem({
          detail: `test sends are limited to ${error.limit} per user per 24 hours in an organisation (campaigns.testSendsPerDay); ` +
            `the next one is possible in ${error.retryAfterSeconds} s`,
          retryAfterSeconds: error.retryAfterSeconds
        })))
      )
    case "NoRoute":
    case "RateLimited":
    case "LimiterUnavailable":
    case "PolicyRejected":
    case "PolicyUnavailable":
      return failSubmit(error)
    case "IdempotencyKeyInFlight":
    case "IdempotencyKeyReused":
      return Effect.die(new Error("a test send carries no idempotency key"))
    default:
      return Effect.fail(toProblem(error))
  }
}

const encoder = new TextEncoder()

export const CampaignsHandlers = HttpApiBuilder.group(
  GatewayApi,
  "campaigns",
  Effect.fn(function*(handlers) {
    const campaigns = yield* Campaigns
    const access = yield* Access
    const ipOf = Effect.map(requestOrigin, access.clientIp)
    const act = (run: (typeof campaigns)["submit"]) => ({ params }: { readonly params: { readonly id: string } }) =>
      Effect.gen(function*() {
        return campaignView(yield* run(yield* CurrentPrincipal, params.id, yield* ipOf))
      }).pipe(problems)
    return handlers
      .handle("list", ({ query }) =>
        Effect.gen(function*() {
          const before = yield* beforeOf(query)
          const list = yield* campaigns.list(yield* CurrentPrincipal, { state: query.state, limit: query.limit ?? defaultPageSize, before }).pipe(problems)
          return list.map(campaignView)
        }))
      .handle("create", ({ payload }) =>
        Effect.gen(function*() {
          return campaignView(yield* campaigns.create(yield* CurrentPrincipal, payload, yield* ipOf))
        }).pipe(problems))
      .handle("get", ({ params }) => Effect.flatMap(CurrentPrincipal, (p) => campaigns.get(p, params.id)).pipe(Effect.map(campaignView), problems))
      .handle("edit", ({ params, payload }) =>
        Effect.gen(function*() {
          return campaignView(yield* campaigns.edit(yield* CurrentPrincipal, params.id, payload, yield* ipOf))
        }).pipe(problems))
      .handle("submit", act(campaigns.submit))
      .handle("approve", act(campaigns.approve))
      .handle("reject", ({ params, payload }) =>
        Effect.gen(function*() {
          return campaignView(yield* campaigns.reject(yield* CurrentPrincipal, params.id, payload.reason, yield* ipOf))
        }).pipe(problems))
      .handle("start", act(campaigns.start))
      .handle("pause", act(campaigns.pause))
      .handle("resume", act(campaigns.resume))
      .handle("cancel", act(campaigns.cancel))
      .handle("test", ({ params, payload }) =>
        Effect.gen(function*() {
          return yield* campaigns.test(yield* CurrentPrincipal, params.id, payload, yield* ipOf)
        }).pipe(Effect.catch(submitProblem)))
      .handle("stats", ({ params }) =>
        Effect.flatMap(CurrentPrincipal, (p) => campaigns.statistics(p, params.id)).pipe(Effect.map(statsView), problems))
      .handle("statsStream", ({ params }) =>
        Effect.flatMap(CurrentPrincipal, (p) => campaigns.statisticsStream(p, params.id)).pipe(
          Effect.map((stream) =>
            stream.pipe(
              Stream.map(statsView),
              // A storage failure mid-stream ends it; the client reconnects.
              Stream.catch((e) =>
                Stream.fromEffect(Effect.logWarning("campaign statistics stream ended by a storage failure").pipe(
                  Effect.annotateLogs({ campaignId: params.id, error: e.message })
                )).pipe(Stream.drain)
              )
            )
          ),
          problems
        ))
      .handle("messages", ({ params, query }) =>
        Effect.gen(function*() {
          const limit = query.limit ?? 100
          const rows = yield* campaigns.outcomes(yield* CurrentPrincipal, params.id, { status: query.status, after: query.after, limit, withMessage: true })
          return page(rows, limit)
        }).pipe(problems))
      .handle("recipients", ({ params, query }) =>
        Effect.gen(function*() {
          const limit = query.limit ?? 100
          const rows = yield* campaigns.outcomes(yield* CurrentPrincipal, params.id, { state: query.state, after: query.after, limit })
          return page(rows, limit)
        }).pipe(problems))
      .handle("export", ({ params }) =>
        Effect.gen(function*() {
          const csv = yield* campaigns.exportCsv(yield* CurrentPrincipal, params.id, yield* ipOf)
          yield* setResponseHeader("content-disposition", `attachment; filename="${params.id}.csv"`)
          return csv.pipe(
            Stream.map((text) => encoder.encode(text)),
            // Headers are sent: a failure can only cut the body short, which the client sees as an incomplete download.
            Stream.catch((e) =>
              Stream.fromEffect(Effect.logError("campaign export cut short by a storage failure").pipe(
                Effect.annotateLogs({ campaignId: params.id, error: e.message })
              )).pipe(Stream.flatMap(() => Stream.fail(new Error("campaign storage failed during the export"))))
            )
          )
        }).pipe(problems))
  })
)

export const ModerationHandlers = HttpApiBuilder.group(
  GatewayApi,
  "moderation",
  Effect.fn(function*(handlers) {
    const campaigns = yield* Campaigns
    const access = yield* Access
    const ipOf = Effect.map(requestOrigin, access.clientIp)
    return handlers
      .handle("queue", ({ query }) =>
        Effect.flatMap(CurrentPrincipal, (p) => campaigns.queue(p, query.limit ?? 100)).pipe(Effect.map((cs) => cs.map(campaignView)), problems))
      .handle("settings", () => Effect.flatMap(CurrentPrincipal, (p) => campaigns.settings(p)).pipe(problems))
      .handle("setSettings", ({ payload }) =>
        Effect.gen(function*() {
          return yield* campaigns.setSettings(yield* CurrentPrincipal, payload, yield* ipOf)
        }).pipe(problems))
  })
)

export const CampaignsHandlersLive = Layer.mergeAll(CampaignsHandlers, ModerationHandlers)
