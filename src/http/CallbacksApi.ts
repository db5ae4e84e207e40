/**
 * The REST API of an app's status callbacks (docs/callbacks.md): the ones failing and the dead ones, newest first, and
 * their replay. Read and replayed by the admins and owners of the app's organisation and by the app's own token.
 */
import { Schema } from "effect"
import { HttpApi, HttpApiEndpoint, HttpApiGroup, OpenApi } from "effect/http-api"
import { defaultPageSize } from "./Paging.ts"
import { ForbiddenProblem, NotFoundProblem, UnauthorizedProblem, UnavailableProblem, ValidationProblem } from "./Problems.ts"
import { Authentication } from "./Security.ts"

/** Most callbacks a page lists, and most ids one replay names. */
export const maxCallbackPage = 500
export const maxReplayIds = 1000

/** A callback's id as the API shows it: the outbox row's number. */
const CallbackId = Schema.String.check(
  Schema.isPattern(/^[1-9][0-9]{0,15}$/, { expected: "a callback id as listed (digits)" })
)

export const CallbackView = Schema.Struct({
  id: Schema.String.annotate({ description: "The callback's id: what a replay names" }),
  eventId: Schema.String.annotate({ description: "The Smsgw-Event-Id it is posted with (the body's eventId)" }),
  messageId: Schema.optionalKey(Schema.String.annotate({ description: "The message whose status it reports (status callbacks)" })),
  inboundId: Schema.optionalKey(Schema.String.annotate({ description: "The inbound message it delivers (`message.received` callbacks)" })),
  status: Schema.String.annotate({ description: "The message status the callback reports; `received` for an inbound message" }),
  url: Schema.String.annotate({ description: "Where it is posted (fixed when the message was accepted)" }),
  state: Schema.Literals(["failing", "dead"]).annotate({
    description: "failing: tried and failed, retried with backoff; dead: given up on after the retry window, until replayed"
  }),
  attempts: Schema.Int,
  lastError: Schema.optionalKey(Schema.String.annotate({
    description: "Why the last attempt failed, e.g. `HTTP 503`, `no complete answer within 5000 ms`, `address 10.0.0.1 is private; …`"
  })),
  lastStatus: Schema.optionalKey(Schema.Int.annotate({ description: "The HTTP status of the last answer, when there was one" })),
  nextAttemptAt: Schema.optionalKey(Schema.String.annotate({ description: "failing: when it is tried next" })),
  deadAt: Schema.optionalKey(Schema.String.annotate({ description: "dead: when it was given up on" })),
  queuedAt: Schema.String.annotate({ description: "When it was queued (its move), or replayed last: the retry window starts here" })
})

export const CallbackPage = Schema.Struct({
  items: Schema.Array(CallbackView),
  next: Schema.optionalKey(Schema.String.annotate({ description: "Pass as `cursor` for the next page; absent on the last" }))
})

export const ReplayRequest = Schema.Union([
  Schema.Struct({
    ids: Schema.Array(CallbackId).check(Schema.isMinLength(1), Schema.isMaxLength(maxReplayIds)).annotate({
      description: `Up to ${maxReplayIds} ids of failing or dead callbacks of this app`
    })
  }),
  Schema.Struct({ all: Schema.Literal(true).annotate({ description: "Every dead callback of this app" }) })
]).annotate({ description: "Example: {\"ids\":[\"42\",\"43\"]} or {\"all\":true}" })

export const ReplayResult = Schema.Struct({
  requeued: Schema.Int.annotate({
    description: "How many were put back (ids of other apps, delivered or unknown ones count nothing)"
  })
})

const errors = [ValidationProblem, UnauthorizedProblem, ForbiddenProblem, NotFoundProblem, UnavailableProblem]

export class CallbacksGroup extends HttpApiGroup.make("callbacks")
  .add(
    HttpApiEndpoint.get("list", "/v1/apps/:appId/callbacks", {
      params: { appId: Schema.String },
      query: {
        state: Schema.optionalKey(Schema.Literals(["failing", "dead"]).annotate({ description: "Only these (default: both)" })),
        cursor: Schema.optionalKey(CallbackId.annotate({ description: "The previous page's `next`: the page after it" })),
        limit: Schema.optionalKey(
          Schema.FiniteFromString.check(Schema.isInt(), Schema.isBetween({ minimum: 1, maximum: maxCallbackPage })).annotate({
            description: `Callbacks per page: ${defaultPageSize} unless given, at most ${maxCallbackPage}`
          })
        )
      },
      success: CallbackPage,
      error: errors
    }).annotate(
      OpenApi.Description,
      "The app's status callbacks that failed: `failing` ones (retried with exponential backoff for `callbacks.maxAgeSeconds`, " +
        "24 h by default) and `dead` ones (given up on), newest first. Callbacks delivered, or not tried yet, are not listed. " +
        "Admins and owners of the app's organisation, and the app's own token."
    ),
    HttpApiEndpoint.post("replay", "/v1/apps/:appId/callbacks/replay", {
      params: { appId: Schema.String },
      payload: ReplayRequest,
      success: ReplayResult,
      error: errors
    }).annotate(
      OpenApi.Description,
      "Puts callbacks back in the outbox: the ids given (failing or dead ones of this app), or with `all: true` every dead one. " +
        "Each is posted again at once, in order per message, with a fresh retry window. Audited (`callbacks.replayed`)."
    )
  )
  .middleware(Authentication)
  .annotate(HttpApi.QueryParseOptions, { errors: "all", onExcessProperty: "error" })
  .annotate(OpenApi.Title, "Status callbacks")
{}
