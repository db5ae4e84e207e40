/**
 * The REST API of campaigns and moderation (effect/http-api groups): campaigns and their workflow, the test send,
 * statistics (also as Server-Sent Events), messages, recipients and the CSV export, the moderation queue and settings.
 */
import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { ApprovalRule, CampaignSpecFields, CampaignState, RecipientState } from "../domain/Campaign.ts"
import { MessageStatus } from "../domain/Message.ts"
import {
  ConflictProblem,
  ForbiddenProblem,
  NoRouteProblem,
  NotFoundProblem,
  PolicyRejectedProblem,
  TooManyRequestsProblem,
  UnauthorizedProblem,
  UnavailableProblem,
  ValidationProblem
} from "./Problems.ts"
import { pageQuery } from "./Paging.ts"
import { Authentication } from "./Security.ts"

const f = CampaignSpecFields

const exampleSpec = {
  name: "Winter sale",
  appId: "app_3f2a9c0d1e4b5a67",
  sender: "ACME",
  template: "Hi {{firstname|there}}, 20% off until Sunday. Reply STOP to opt out.",
  lists: ["lst_8c1d2e3f4a5b6c7d"],
  messageClass: "promotional",
  startAt: { at: "2026-12-24T09:00", timeZone: "Europe/Berlin" },
  sendWindow: { from: "09:00", to: "20:00" },
  throttle: 50
} as const

/**
 * What a user writes to create a campaign. The example sits in the description: an `examples` annotation holds decoded
 * values, and the decoded sender is an object, not the string a client sends.
 */
export const CampaignCreate = Schema.Struct(f).annotate({
  description: "A campaign: who sends (appId, sender), what (template), to whom (lists), when and how fast. Example: " +
    JSON.stringify(exampleSpec)
})

/** An edit: the fields given replace the campaign's; `null` clears an optional one. */
export const CampaignEdit = Schema.Struct({
  name: Schema.optionalKey(f.name),
  appId: Schema.optionalKey(f.appId),
  sender: Schema.optionalKey(f.sender),
  template: Schema.optionalKey(f.template),
  lists: Schema.optionalKey(f.lists),
  messageClass: f.messageClass,
  encoding: f.encoding,
  startAt: Schema.optionalKey(Schema.NullOr(f.startAt.schema)),
  sendWindow: Schema.optionalKey(Schema.NullOr(f.sendWindow.schema)),
  throttle: f.throttle,
  validitySeconds: Schema.optionalKey(Schema.NullOr(f.validitySeconds.schema)),
  canary: Schema.optionalKey(Schema.NullOr(f.canary.schema)),
  autoPause: Schema.optionalKey(Schema.NullOr(f.autoPause.schema))
}).annotate({ description: "Only in draft or rejected. Example: {\"template\":\"Hi {{firstname}}, 25% off\",\"startAt\":null}" })

/** Why a campaign is paused: a person, its canary, or its automatic pause (with the ratio that tripped it). */
export const PauseReasonView = Schema.Struct({ kind: Schema.Literals(["user", "canary", "auto"]), detail: Schema.String })

export const CampaignView = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  appId: Schema.String,
  sender: Schema.String,
  template: Schema.String,
  lists: Schema.Array(Schema.String),
  messageClass: Schema.String,
  encoding: Schema.String,
  startAt: Schema.optionalKey(f.startAt.schema),
  startTime: Schema.optionalKey(Schema.String.annotate({ description: "startAt as an ISO instant (UTC)" })),
  sendWindow: Schema.optionalKey(f.sendWindow.schema),
  throttle: Schema.Int,
  validitySeconds: Schema.optionalKey(Schema.Int),
  canary: Schema.optionalKey(f.canary.schema),
  autoPause: Schema.optionalKey(f.autoPause.schema),
  state: CampaignState,
  pauseReason: Schema.optionalKey(PauseReasonView),
  rejectionReason: Schema.optionalKey(Schema.String.annotate({ description: "The moderator's reason, for the creator" })),
  flags: Schema.Array(Schema.String).annotate({ description: "What the content check found at submission, for the moderator" }),
  createdBy: Schema.String,
  approvedBy: Schema.optionalKey(Schema.String),
  audience: Schema.Int,
  createdAt: Schema.String,
  updatedAt: Schema.String,
  submittedAt: Schema.optionalKey(Schema.String),
  startedAt: Schema.optionalKey(Schema.String),
  finishedAt: Schema.optionalKey(Schema.String)
})

export const ReasonView = Schema.Struct({
  state: Schema.String.annotate({ description: "excluded, refused, failed, deferred (recipients) or message (the network)" }),
  reason: Schema.String,
  ruleId: Schema.optionalKey(Schema.String),
  count: Schema.Int
})

export const StatsView = Schema.Struct({
  id: Schema.String,
  state: CampaignState,
  pauseReason: Schema.optionalKey(PauseReasonView),
  at: Schema.String,
  audience: Schema.Int,
  recipients: Schema.Struct({
    pending: Schema.Int,
    deferred: Schema.Int,
    excluded: Schema.Int,
    refused: Schema.Int,
    failed: Schema.Int,
    submitted: Schema.Int
  }),
  messages: Schema.Struct({
    inFlight: Schema.Int,
    delivered: Schema.Int,
    undelivered: Schema.Int,
    expired: Schema.Int,
    failed: Schema.Int,
    rejected: Schema.Int
  }),
  submitted: Schema.Int,
  deliveryRate: Schema.optionalKey(Schema.Number.annotate({ description: "delivered / submitted, 0..1" })),
  receipt: Schema.Struct({
    count: Schema.Int,
    medianMs: Schema.optionalKey(Schema.Number),
    p95Ms: Schema.optionalKey(Schema.Number)
  }).annotate({ description: "Time from acceptance to the last part's delivery receipt, over delivered messages" }),
  parts: Schema.Int,
  reasons: Schema.Array(ReasonView)
}).annotate({
  description: "Example: {\"id\":\"cmp_…\",\"state\":\"running\",\"audience\":10000,\"recipients\":{\"pending\":4000,\"submitted\":5900,\"excluded\":100,…}," +
    "\"messages\":{\"delivered\":5500,\"inFlight\":380,…},\"deliveryRate\":0.93,\"receipt\":{\"count\":5500,\"medianMs\":2100,\"p95Ms\":5400},\"parts\":6100," +
    "\"reasons\":[{\"state\":\"excluded\",\"reason\":\"blacklisted\",\"ruleId\":\"dnc\",\"count\":100}]}"
})

export const OutcomeView = Schema.Struct({
  position: Schema.Int,
  msisdn: Schema.String,
  state: RecipientState,
  reason: Schema.optionalKey(Schema.String),
  ruleId: Schema.optionalKey(Schema.String.annotate({ description: "The rule that excluded, refused or deferred this recipient" })),
  nextAt: Schema.optionalKey(Schema.String.annotate({ description: "A deferred recipient's next attempt" })),
  attempts: Schema.Int,
  messageId: Schema.optionalKey(Schema.String),
  status: Schema.optionalKey(MessageStatus),
  segments: Schema.optionalKey(Schema.Int),
  messageReason: Schema.optionalKey(Schema.String),
  acceptedAt: Schema.optionalKey(Schema.String),
  updatedAt: Schema.String
})

export const OutcomePage = Schema.Struct({
  items: Schema.Array(OutcomeView),
  next: Schema.optionalKey(Schema.Int.annotate({ description: "Pass as `after` for the next page; absent on the last" }))
})

export const TestSendRequest = Schema.Struct({
  to: Schema.String.check(Schema.isMaxLength(32)).annotate({ description: "E.164 number, e.g. +4915112345678" }),
  vars: Schema.optionalKey(Schema.Record(Schema.String.check(Schema.isMaxLength(64)), Schema.String.check(Schema.isMaxLength(1000))).annotate({
    description: "Template variables; absent: the first contact's"
  }))
}).annotate({ examples: [{ to: "+4915112345678", vars: { firstname: "Ada" } }, { to: "+4915112345678" }] })

export const TestSendView = Schema.Struct({
  messageId: Schema.String,
  to: Schema.String,
  text: Schema.String,
  segments: Schema.Int,
  encoding: Schema.Literals(["gsm7", "ucs2"])
}).pipe(HttpApiSchema.status(202))

export const ModerationSettingsView = Schema.Struct({
  approval: ApprovalRule.annotate({
    description: "Which submitted campaigns wait for a moderator: all, promotional (only), members (created or submitted by a member; the default), none"
  }),
  keywords: Schema.Array(Schema.String.check(Schema.isMaxLength(100))).check(Schema.isMaxLength(200)).annotate({
    description: "Words and phrases the content check flags (whole words, any case)"
  }),
  urls: Schema.Array(Schema.String.check(Schema.isMaxLength(200))).check(Schema.isMaxLength(200)).annotate({
    description: "Domains (with their subdomains) or URL prefixes the content check flags when the text links to them"
  })
}).annotate({ examples: [{ approval: "all", keywords: ["free", "winner"], urls: ["bit.ly"] }] })

const campaignErrors = [ValidationProblem, UnauthorizedProblem, ForbiddenProblem, NotFoundProblem, ConflictProblem, UnavailableProblem]

const Id = { id: Schema.String }

const Limit = Schema.optionalKey(Schema.FiniteFromString.check(Schema.isInt(), Schema.isBetween({ minimum: 1, maximum: 1000 })))
const After = Schema.optionalKey(Schema.FiniteFromString.check(Schema.isInt()).annotate({ description: "`next` of the previous page" }))

const action = <Name extends string>(name: Name, path: string, description: string) =>
  HttpApiEndpoint.post(name, `/v1/campaigns/:id/${path}`, { params: Id, success: CampaignView, error: campaignErrors })
    .annotate(OpenApi.Description, description)

export class CampaignsGroup extends HttpApiGroup.make("campaigns")
  .add(
    HttpApiEndpoint.get("list", "/v1/campaigns", {
      query: { state: Schema.optionalKey(CampaignState), ...pageQuery("campaigns", 1000) },
      success: Schema.Array(CampaignView),
      error: campaignErrors
    }).annotate(
      OpenApi.Description,
      "The organisation's campaigns, newest first (every role). A full page may have more after it: ask again with the " +
        "last campaign's createdAt as `before` and its id as `beforeId`."
    ),
    HttpApiEndpoint.post("create", "/v1/campaigns", {
      payload: CampaignCreate,
      success: CampaignView.pipe(HttpApiSchema.status(201)),
      error: campaignErrors
    }).annotate(
      OpenApi.Description,
      "Create a draft (members and above). Checked: the app is an active app of the organisation and the throttle within its " +
        "perSecond limit; the lists exist; the template parses; every contact has the variables the template requires " +
        "without a default (400 naming the first rows that lack one); startAt is in the future in an existing time zone. " +
        "messageClass defaults to promotional."
    ),
    HttpApiEndpoint.get("get", "/v1/campaigns/:id", { params: Id, success: CampaignView, error: campaignErrors }),
    HttpApiEndpoint.patch("edit", "/v1/campaigns/:id", { params: Id, payload: CampaignEdit, success: CampaignView, error: campaignErrors })
      .annotate(OpenApi.Description, "Edit a draft or a rejected campaign (its creator, or a moderator and above); checked as at creation."),
    action("submit", "submit", "Submit for moderation: pending_approval when the organisation's rule asks for approval, else approved. The content check's flags are stored for the moderator."),
    action("approve", "approve", "Approve a pending campaign (moderators, admins, owners; never one's own, nor one they edited or submitted: 403)."),
    HttpApiEndpoint.post("reject", "/v1/campaigns/:id/reject", {
      params: Id,
      payload: Schema.Struct({ reason: Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(1000)) })
        .annotate({ examples: [{ reason: "The link goes to a domain we do not know; use the shop's own" }] }),
      success: CampaignView,
      error: campaignErrors
    }).annotate(OpenApi.Description, "Reject a pending campaign with a reason its creator sees; they may edit and submit again."),
    action("start", "start", "Start an approved campaign: scheduled until its startAt, else running."),
    action("pause", "pause", "Pause a scheduled or running campaign."),
    action("resume", "resume", "Resume a paused campaign."),
    action("cancel", "cancel", "Cancel a campaign in any state but completed or cancelled (a draft too: drafts are cancelled, not deleted)."),
    HttpApiEndpoint.post("test", "/v1/campaigns/:id/test", {
      params: Id,
      payload: TestSendRequest,
      success: TestSendView,
      error: [...campaignErrors, NoRouteProblem, PolicyRejectedProblem, TooManyRequestsProblem]
    }).annotate(
      OpenApi.Description,
      "Send one message of the campaign to one number, before it starts: rendered with `vars` or the first contact's, from the " +
        "campaign's app and sender, through the whole pipeline (limits, policy, routing). Each user has " +
        "`campaigns.testSendsPerDay` test sends (default 20) per rolling 24 hours in an organisation: past them 429 with " +
        "Retry-After, when the oldest counted send leaves the window."
    ),
    HttpApiEndpoint.get("stats", "/v1/campaigns/:id/stats", { params: Id, success: StatsView, error: campaignErrors })
      .annotate(OpenApi.Description, "The campaign's figures now (every role)."),
    HttpApiEndpoint.get("statsStream", "/v1/campaigns/:id/stats/stream", {
      params: Id,
      success: HttpApiSchema.StreamSse({ data: StatsView }),
      error: campaignErrors
    }).annotate(
      OpenApi.Description,
      "Server-Sent Events: the figures every second; the stream ends after the event showing a final state (completed, " +
        "cancelled), or after an hour (reconnect)."
    ),
    HttpApiEndpoint.get("messages", "/v1/campaigns/:id/messages", {
      params: Id,
      query: { status: Schema.optionalKey(MessageStatus), after: After, limit: Limit },
      success: OutcomePage,
      error: campaignErrors
    }).annotate(OpenApi.Description, "The campaign's messages with their recipients, in audience order, paged; filter by status."),
    HttpApiEndpoint.get("recipients", "/v1/campaigns/:id/recipients", {
      params: Id,
      query: { state: Schema.optionalKey(RecipientState), after: After, limit: Limit },
      success: OutcomePage,
      error: campaignErrors
    }).annotate(
      OpenApi.Description,
      "Recipients and what the campaign decided for each, in audience order, paged: an excluded, refused or deferred one names the rule."
    ),
    HttpApiEndpoint.get("export", "/v1/campaigns/:id/export", {
      params: Id,
      success: HttpApiSchema.StreamUint8Array({ contentType: "text/csv" }),
      error: campaignErrors
    }).annotate(OpenApi.Description, "Every recipient with its outcome as CSV (streamed). Audited.")
  )
  .middleware(Authentication)
  .annotate(OpenApi.Title, "Campaigns")
{}

export class ModerationGroup extends HttpApiGroup.make("moderation")
  .add(
    HttpApiEndpoint.get("queue", "/v1/moderation/queue", {
      query: { limit: Limit },
      success: Schema.Array(CampaignView),
      error: campaignErrors
    }).annotate(OpenApi.Description, "Campaigns waiting for approval, oldest submission first, with the content check's flags (moderators, admins, owners)."),
    HttpApiEndpoint.get("settings", "/v1/moderation/settings", { success: ModerationSettingsView, error: campaignErrors })
      .annotate(OpenApi.Description, "Which campaigns need approval and what the content check flags."),
    HttpApiEndpoint.put("setSettings", "/v1/moderation/settings", { payload: ModerationSettingsView, success: ModerationSettingsView, error: campaignErrors })
      .annotate(OpenApi.Description, "Change the moderation settings (admins, owners). Audited.")
  )
  .middleware(Authentication)
  .annotate(OpenApi.Title, "Moderation")
{}
