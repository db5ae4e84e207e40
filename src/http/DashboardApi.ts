/**
 * The REST API of the live figures: an organisation's dashboard (a snapshot with the last hour, and Server-Sent Events
 * every second) and a campaign's health (the links and pools its messages use). Operators also get every link and pool.
 */
import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { CampaignHealthView, DashboardView, rateSeconds, seriesMinutes, windowMinutes } from "../domain/Dashboard.ts"
import { ForbiddenProblem, NotFoundProblem, UnauthorizedProblem, UnavailableProblem, ValidationProblem } from "./Problems.ts"
import { Authentication } from "./Security.ts"

const errors = [ValidationProblem, UnauthorizedProblem, ForbiddenProblem, NotFoundProblem, UnavailableProblem]

const Id = { id: Schema.String }

const figures = `Rates are messages per second over the last ${rateSeconds} complete seconds; the window covers the last ` +
  `${windowMinutes} minutes. Figures are cluster-wide and about two seconds behind.`

export class DashboardGroup extends HttpApiGroup.make("dashboard")
  .add(
    HttpApiEndpoint.get("snapshot", "/v1/dashboard", { success: DashboardView, error: errors }).annotate(
      OpenApi.Description,
      `The organisation's live figures and the last ${seriesMinutes} minutes per minute, for a first paint (users of ` +
        `every role; app tokens 403). ${figures} A superadmin also gets \`operator\`: every link's state, rate, window and ` +
        "queue, and every pool's member weights."
    ),
    HttpApiEndpoint.get("stream", "/v1/dashboard/stream", {
      success: HttpApiSchema.StreamSse({ data: DashboardView }),
      error: errors
    }).annotate(
      OpenApi.Description,
      "Server-Sent Events: the figures every second, with the series' last two minutes (replace the points with the same " +
        "`at`); the stream ends after an hour (reconnect)."
    ),
    HttpApiEndpoint.get("campaignHealth", "/v1/campaigns/:id/health", { params: Id, success: CampaignHealthView, error: errors })
      .annotate(
        OpenApi.Description,
        "The links and pools the campaign's messages used in the last hour: per link the campaign's own rate, receipt times " +
          `and errors by SMPP status, and the link's state (throttled or not); per pool its members. ${figures} Every role.`
      ),
    HttpApiEndpoint.get("campaignHealthStream", "/v1/campaigns/:id/health/stream", {
      params: Id,
      success: HttpApiSchema.StreamSse({ data: CampaignHealthView }),
      error: errors
    }).annotate(OpenApi.Description, "Server-Sent Events: the campaign's health every second, for an hour at most (reconnect).")
  )
  .middleware(Authentication)
  .annotate(OpenApi.Title, "Dashboard")
{}
