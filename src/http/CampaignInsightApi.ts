/**
 * The REST API of a campaign's preview and dry run: what it will send and cost in parts, and what the live policy and
 * routing would do with its audience, with nothing sent.
 */
import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "effect/http-api"
import { CampaignSpecFields } from "../domain/Campaign.ts"
import { CampaignPreview, DryRun } from "../domain/CampaignInsight.ts"
import { ForbiddenProblem, NotFoundProblem, TooManyRequestsProblem, UnauthorizedProblem, UnavailableProblem, ValidationProblem } from "./Problems.ts"
import { Authentication } from "./Security.ts"

const errors = [ValidationProblem, UnauthorizedProblem, ForbiddenProblem, NotFoundProblem, TooManyRequestsProblem, UnavailableProblem]

const previewQuery = {
  n: Schema.optionalKey(Schema.FiniteFromString.check(Schema.isInt(), Schema.isBetween({ minimum: 0, maximum: 100 })).annotate({
    description: "How many rendered messages to return (default 10, at most 100); totals always cover the whole audience"
  }))
}

/** An unsaved campaign's fields that decide its messages: what the editor has so far. */
export const PreviewRequest = Schema.Struct({
  template: CampaignSpecFields.template,
  lists: CampaignSpecFields.lists,
  sender: CampaignSpecFields.sender,
  encoding: CampaignSpecFields.encoding,
  appId: Schema.optionalKey(CampaignSpecFields.appId.annotate({ description: "The sending app, if chosen (routing rules may name it)" })),
  messageClass: CampaignSpecFields.messageClass
}).annotate({
  examples: [{
    template: "Hi {{name|there}}, 20% off today",
    lists: ["lst_1"],
    // Examples are shown as written (the wire form); the schema's type holds the parsed sender.
    sender: "ACME" as never,
    encoding: "auto"
  }]
})

export class CampaignInsightGroup extends HttpApiGroup.make("campaignInsight")
  .add(
    HttpApiEndpoint.get("preview", "/v1/campaigns/:id/preview", {
      params: { id: Schema.String },
      query: previewQuery,
      success: CampaignPreview,
      error: errors
    }).annotate(
      OpenApi.Description,
      "The campaign's first N messages rendered for their recipients, each with its encoding (GSM-7, or UCS-2 when a " +
        "character needs it) and parts, and for the whole audience (deduplicated by number) the total messages and " +
        "parts split by encoding: what the campaign will cost in parts. Counted exactly as sending counts them. " +
        "Any member of the organisation (viewer and above)."
    ),
    HttpApiEndpoint.post("previewDraft", "/v1/campaigns/preview", {
      query: previewQuery,
      payload: PreviewRequest,
      success: CampaignPreview,
      error: errors
    }).annotate(
      OpenApi.Description,
      "The same preview for a campaign not saved yet (the editor's template, lists, sender and encoding). Nothing is stored."
    ),
    HttpApiEndpoint.get("dryRun", "/v1/campaigns/:id/dry-run", {
      params: { id: Schema.String },
      success: DryRun,
      error: errors
    }).annotate(
      OpenApi.Description,
      "The audience through the live routing and contact policy and the campaign's send window, with nothing sent and " +
        "nothing counted: exclusions per rule (blacklists), deferrals (quiet hours, send window) with when they end, " +
        "recipients without a route, parts and their GSM-7/UCS-2 split per route, and the estimated finish from the " +
        "campaign's throttle, the app's and organisation's limits and the routes' capacity (best case: other traffic " +
        "shares them). Frequency caps and dedup depend on the recipients' counters when the messages go: they are " +
        "listed under decidedAtSendTime with the recipients they apply to, never counted as zero. Evaluated at the " +
        "campaign's start time when it is in the future. Viewer and above."
    )
  )
  .middleware(Authentication)
  .annotate(OpenApi.Title, "Campaign preview and dry run")
{}
