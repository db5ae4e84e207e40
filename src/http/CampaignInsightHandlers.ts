/**
 * Handlers of the campaign preview and dry run: members of the campaign's organisation read them (viewer and above);
 * another organisation's campaign is as unknown as a missing one.
 */
import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { CurrentPrincipal } from "../auth/Access.ts"
import { atLeast } from "../domain/Account.ts"
import { CampaignInsight } from "../pipeline/CampaignInsight.ts"
import { CampaignStore } from "../storage/CampaignStore.ts"
import { GatewayApi } from "./Api.ts"
import { ForbiddenProblem, NotFoundProblem, TooManyRequestsProblem, UnavailableProblem, ValidationProblem } from "./Problems.ts"
import { setResponseHeader } from "./ResponseHeaders.ts"

const defaultPreviewMessages = 10

/** A user of the organisation with any role (viewer and above); app tokens send, they do not read campaigns. */
const reader = Effect.flatMap(CurrentPrincipal, (p) =>
  p.kind === "user" && p.role !== null && atLeast(p.role, "viewer")
    ? Effect.succeed(p)
    : Effect.fail(new ForbiddenProblem({ detail: "campaigns are read with a user token of the organisation" })))

const problems = {
  InvalidField: (e: { readonly field: string; readonly message: string }) =>
    Effect.fail(new ValidationProblem({ detail: `${e.field}: ${e.message}`, errors: [{ field: e.field, message: e.message }] })),
  InsightBusy: (e: { readonly retryAfterSeconds: number }) =>
    setResponseHeader("retry-after", String(e.retryAfterSeconds)).pipe(
      Effect.andThen(Effect.fail(new TooManyRequestsProblem({
        detail: "a preview or dry run of your organisation is running; one at a time",
        retryAfterSeconds: e.retryAfterSeconds
      })))
    ),
  StoreUnavailable: (e: { readonly message: string }) =>
    Effect.logError("campaign storage unavailable").pipe(
      Effect.annotateLogs({ error: e.message }),
      Effect.andThen(Effect.fail(new UnavailableProblem({ detail: "storage is unavailable; retry later" })))
    )
}

const campaignProblems = {
  ...problems,
  CampaignNotFound: (e: { readonly id: string }) => Effect.fail(new NotFoundProblem({ detail: `no campaign ${e.id}` }))
}

export const CampaignInsightHandlers = HttpApiBuilder.group(
  GatewayApi,
  "campaignInsight",
  Effect.fn(function*(handlers) {
    const insight = yield* CampaignInsight
    const campaigns = yield* CampaignStore
    return handlers
      .handle("preview", ({ params, query }) =>
        Effect.gen(function*() {
          const principal = yield* reader
          const campaign = yield* campaigns.get(principal.orgId, params.id)
          return yield* insight.preview(campaign, query.n ?? defaultPreviewMessages)
        }).pipe(Effect.catchTags(campaignProblems)))
      .handle("previewDraft", ({ payload, query }) =>
        Effect.gen(function*() {
          const principal = yield* reader
          return yield* insight.preview({
            orgId: principal.orgId,
            appId: payload.appId,
            sender: payload.sender.given,
            template: payload.template,
            lists: payload.lists,
            encoding: payload.encoding ?? "auto",
            messageClass: payload.messageClass ?? "promotional"
          }, query.n ?? defaultPreviewMessages)
        }).pipe(Effect.catchTags(problems)))
      .handle("dryRun", ({ params }) =>
        Effect.gen(function*() {
          const principal = yield* reader
          const campaign = yield* campaigns.get(principal.orgId, params.id)
          return yield* insight.dryRun(campaign)
        }).pipe(Effect.catchTags(campaignProblems)))
  })
)
