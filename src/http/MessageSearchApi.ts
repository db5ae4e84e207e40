/**
 * The REST API of the Message Center's message search: the organisation's messages filtered by id, recipient, client
 * reference, status, app, campaign and time, newest first, paged by an opaque cursor. A message's parts and timeline
 * are `GET /v1/messages/:id` (Api.ts). A query key the endpoint does not know is refused, never ignored: a misspelt
 * filter must not silently list everything.
 */
import { Schema } from "effect"
import { HttpApi, HttpApiEndpoint, HttpApiGroup, OpenApi } from "effect/http-api"
import { MessageStatus, MessageSummary } from "../domain/Message.ts"
import { RecipientFromString } from "../domain/Msisdn.ts"
import { cursorPattern, maxPageSize } from "../storage/MessageSearch.ts"
import { defaultPageSize } from "./Paging.ts"
import { ForbiddenProblem, UnauthorizedProblem, UnavailableProblem, ValidationProblem } from "./Problems.ts"
import { Authentication } from "./Security.ts"

/** A date (midnight UTC) or a date-time with its offset: a time without one would be read in the server's zone. */
export const IsoTime = Schema.String.check(
  Schema.makeFilter(
    (s: string) =>
      /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/.test(s) && !Number.isNaN(Date.parse(s)),
    { expected: "an ISO 8601 date, or date-time with Z or an offset, e.g. 2026-12-01T09:00:00Z" }
  )
)

/** `next` of a page: the last item's creation time (epoch ms) and id, read back by `cursorOf`. */
const Cursor = Schema.String.check(
  Schema.isPattern(cursorPattern, { expected: "the `next` of the previous page, unchanged" })
)

const Id = Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(128))

export const SearchQuery = {
  id: Schema.optionalKey(Id.annotate({ description: "A message id: the message, if it is one of yours" })),
  to: Schema.optionalKey(RecipientFromString.annotate({
    description: "The recipient, read as a submit reads `to` (E.164; +49 151 1234 5678 and 004915112345678 find the same)"
  })),
  clientRef: Schema.optionalKey(Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(128)).annotate({
    description: "The clientRef given at submit, exactly"
  })),
  status: Schema.optionalKey(MessageStatus),
  appId: Schema.optionalKey(Id.annotate({ description: "Sent by this app (an app token sees its own app's messages only)" })),
  campaignId: Schema.optionalKey(Id.annotate({ description: "Sent by this campaign" })),
  since: Schema.optionalKey(IsoTime.annotate({ description: "Created at or after this time (ISO 8601)" })),
  until: Schema.optionalKey(IsoTime.annotate({ description: "Created before this time (ISO 8601)" })),
  limit: Schema.optionalKey(
    Schema.FiniteFromString.check(Schema.isInt(), Schema.isBetween({ minimum: 1, maximum: maxPageSize })).annotate({
      description: `Messages per page: ${defaultPageSize} unless given, at most ${maxPageSize}`
    })
  ),
  after: Schema.optionalKey(Cursor.annotate({ description: "The previous page's `next`: the page after it" }))
}

export const MessagePage = Schema.Struct({
  items: Schema.Array(MessageSummary),
  next: Schema.optionalKey(Schema.String.annotate({
    description: "Pass as `after`, with the same filters, for the next page; absent on the last"
  }))
}).annotate({
  description: "Example: {\"items\":[{\"id\":\"5f0c…\",\"to\":\"+4915112345678\",\"from\":\"ACME\",\"status\":\"delivered\"," +
    "\"segments\":1,\"encoding\":\"gsm7\",\"appId\":\"app_…\",\"createdAt\":\"2026-12-01T09:00:00.000Z\",…}],\"next\":\"1796115600000.5f0c…\"}"
})

export class MessageSearchGroup extends HttpApiGroup.make("messageSearch")
  .add(
    HttpApiEndpoint.get("search", "/v1/messages", {
      query: SearchQuery,
      success: MessagePage,
      error: [ValidationProblem, UnauthorizedProblem, ForbiddenProblem, UnavailableProblem]
    }).annotate(
      OpenApi.Description,
      "Your organisation's messages, newest first, filtered by any of id, to, clientRef, status, appId, campaignId and " +
        "a creation time range (since inclusive, until exclusive); the filters combine. Users of any role see the whole " +
        "organisation; an app token sees only its own app's messages. A page holds `limit` messages; `next`, when " +
        "present, is passed as `after` for the following one. Each message's parts and event timeline: GET /v1/messages/{id}."
    )
  )
  .middleware(Authentication)
  .annotate(HttpApi.QueryParseOptions, { errors: "all", onExcessProperty: "error" })
  .annotate(OpenApi.Title, "Message search")
{}
