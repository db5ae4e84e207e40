/**
 * The operators' API over the contact policy beyond reading and replacing it (PoliciesApi.ts): its version history,
 * live per-rule counters, a dry run of one message ("test this message"), and blacklist entry search and upload.
 */
import { Schema } from "effect"
import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { MessageClass, PolicyDocument, RejectionReason } from "../domain/Policy.ts"
import { MAX_HISTORY_PAGE } from "../policy/PolicyConfig.ts"
import { LargeBody } from "./BodyLimits.ts"
import {
  ForbiddenProblem,
  NotFoundProblem,
  PayloadTooLargeProblem,
  UnauthorizedProblem,
  UnavailableProblem,
  ValidationProblem
} from "./Problems.ts"
import { Authentication } from "./Security.ts"

const Iso = Schema.String.annotate({ description: "ISO 8601 date-time" })

const who = {
  createdBy: Schema.optionalKey(Schema.String.annotate({ description: "The user id of the writer (\"config\": the configuration file)" })),
  createdByEmail: Schema.optionalKey(Schema.String.annotate({ description: "The writer's email, when the user still exists" })),
  note: Schema.optionalKey(Schema.String.annotate({ description: "What the change is for, as given with the PUT" }))
}

export const VersionSummary = Schema.Struct({
  version: Schema.Int,
  createdAt: Iso,
  ...who,
  live: Schema.Boolean.annotate({ description: "The version every node applies now" }),
  rules: Schema.optionalKey(Schema.Int.annotate({ description: "How many rules it has (absent when unreadable)" })),
  blacklists: Schema.optionalKey(Schema.Int),
  error: Schema.optionalKey(Schema.String.annotate({ description: "Set when the stored document does not decode: never applied" }))
})

export const VersionPage = Schema.Struct({
  versions: Schema.Array(VersionSummary),
  next: Schema.optionalKey(Schema.Int.annotate({ description: "Pass as `before` for the next (older) page" }))
})

export const VersionView = Schema.Struct({
  version: Schema.Int,
  createdAt: Iso,
  ...who,
  live: Schema.Boolean,
  document: Schema.optionalKey(PolicyDocument.annotate({
    description: "The document of this version (absent when it does not decode). Compare two versions' documents for a diff"
  })),
  error: Schema.optionalKey(Schema.String)
})

/** Window lengths the counters keep: a week and a day of margin (RuleCounts' retention). */
export const MAX_STATS_MINUTES = 7 * 24 * 60

export const RuleStats = Schema.Struct({
  ruleId: Schema.String,
  type: Schema.optionalKey(Schema.Literals(["frequency_cap", "dedup", "blacklist", "quiet_hours"])),
  enabled: Schema.optionalKey(Schema.Boolean),
  position: Schema.optionalKey(Schema.Int.annotate({
    description: "0-based place in the order messages meet the rules (blacklists, quiet hours, dedup, caps); absent " +
      "for a rule no longer in the live policy"
  })),
  admitted: Schema.Int.annotate({ description: "Messages the rule looked at and let through, which the policy admitted" }),
  refused: Schema.Int,
  byReason: Schema.Record(Schema.String, Schema.Int).annotate({
    description: "Refusals by reason (blacklisted, quiet_hours, duplicate, frequency_cap, duplicate_returned)"
  })
})

export const PolicyStatsView = Schema.Struct({
  policyVersion: Schema.Int,
  since: Iso.annotate({ description: "The start of the window (to the minute)" }),
  until: Iso,
  admitted: Schema.Int.annotate({ description: "Messages the policy admitted in the window, on every node" }),
  refused: Schema.Int,
  rules: Schema.Array(RuleStats).annotate({
    description: "The live policy's rules in evaluation order, then rules of earlier versions that still have counts"
  })
})

export const PolicyTestRequest = Schema.Struct({
  to: Schema.String.check(Schema.isMaxLength(32)).annotate({ description: "The recipient, E.164 (+4915112345678)" }),
  from: Schema.optionalKey(Schema.String.check(Schema.isMaxLength(20)).annotate({ description: "The sender (dedup compares it)" })),
  text: Schema.String.check(Schema.isMaxLength(2_000)),
  messageClass: Schema.optionalKey(MessageClass.annotate({ description: "Default: the app's class, else transactional" })),
  appId: Schema.optionalKey(Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(64)).annotate({
    description: "Test as this app sends (its organisation and class); rules scoped to an app or organisation apply"
  })),
  orgId: Schema.optionalKey(Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(64)).annotate({
    description: "Test as this organisation sends (without appId); neither: only global rules apply"
  })),
  at: Schema.optionalKey(Iso.annotate({ description: "Decide as of this instant (quiet hours, windows); default now" })),
  policy: Schema.optionalKey(PolicyDocument.annotate({
    description: "A draft to test instead of the live policy (checked like a PUT: 400 names `policy.<field>`)"
  }))
})

export const RuleTraceView = Schema.Struct({
  ruleId: Schema.String,
  type: Schema.Literals(["frequency_cap", "dedup", "blacklist", "quiet_hours"]),
  outcome: Schema.Literals(["passed", "refused", "deferred", "not_reached", "not_applicable"]),
  detail: Schema.optionalKey(Schema.String)
})

export const PolicyTestView = Schema.Struct({
  policyVersion: Schema.optionalKey(Schema.Int.annotate({ description: "The live version tested; absent for a draft" })),
  evaluatedAt: Iso,
  to: Schema.String,
  country: Schema.optionalKey(Schema.String),
  orgId: Schema.optionalKey(Schema.String),
  appId: Schema.optionalKey(Schema.String),
  messageClass: MessageClass,
  decision: Schema.Literals(["admit", "refuse", "defer"]).annotate({
    description: "defer: quiet hours; the message may go at retryAt (a campaign waits, an API call gets 422 with retryAfterSeconds)"
  }),
  ruleId: Schema.optionalKey(Schema.String.annotate({ description: "The rule that decided (absent when admitted)" })),
  reason: Schema.optionalKey(RejectionReason),
  retryAt: Schema.optionalKey(Iso),
  retryAfterSeconds: Schema.optionalKey(Schema.Int),
  firstMessageId: Schema.optionalKey(Schema.String.annotate({
    description: "Dedup in return_first mode: the API would answer 202 with this earlier message, sending nothing"
  })),
  rules: Schema.Array(RuleTraceView).annotate({ description: "Every rule in evaluation order and what it did" }),
  unloadedLists: Schema.Array(Schema.String).annotate({ description: "Lists a draft names that are not loaded: tested as empty" })
})

export const EntryView = Schema.Struct({
  number: Schema.String,
  source: Schema.Literals(["file", "added", "removed"]).annotate({
    description: "file: in the list's file; added: listed through the API; removed: in the file but unlisted through the API"
  })
})

export const EntrySearch = Schema.Struct({
  entries: Schema.Array(EntryView),
  more: Schema.Boolean.annotate({ description: "More numbers match: narrow the query" })
})

/** Distinct numbers one upload may list (an opt-out list's size); larger lists belong in the list's file. */
export const MAX_UPLOAD_NUMBERS = 500_000

export const UploadView = Schema.Struct({
  lines: Schema.Int,
  numbers: Schema.Int.annotate({ description: "Distinct valid numbers in the file" }),
  changed: Schema.Int.annotate({ description: "Numbers whose listing changed (others were already as asked)" }),
  duplicates: Schema.Int,
  invalid: Schema.Int,
  invalidLines: Schema.Array(Schema.Struct({ line: Schema.Int, text: Schema.String })).annotate({
    description: "The first 20 lines that hold no number"
  }),
  header: Schema.Boolean.annotate({ description: "The first line was a header (skipped)" })
})

/** Media types an entries upload is accepted under. */
export const entriesContentTypes = ["text/plain", "text/csv", "application/csv"] as const

const errors = [ValidationProblem, UnauthorizedProblem, ForbiddenProblem, NotFoundProblem, UnavailableProblem]
const Minutes = Schema.FiniteFromString.check(Schema.isInt(), Schema.isBetween({ minimum: 1, maximum: MAX_STATS_MINUTES }))

/** History, counters and dry runs of the contact policy (superadmin); blacklist search and upload (who may edit the list). */
export class PolicyAdminGroup extends HttpApiGroup.make("policyAdmin")
  .add(
    HttpApiEndpoint.get("listVersions", "/v1/policies/versions", {
      query: {
        before: Schema.optionalKey(Schema.FiniteFromString.check(Schema.isInt()).annotate({ description: "Versions below this one" })),
        limit: Schema.optionalKey(Schema.FiniteFromString.check(Schema.isInt(), Schema.isBetween({ minimum: 1, maximum: MAX_HISTORY_PAGE })))
      },
      success: VersionPage,
      error: errors
    }).annotate(OpenApi.Description, `Every stored version, newest first, ${MAX_HISTORY_PAGE} at most a page (superadmin).`),
    HttpApiEndpoint.get("getVersion", "/v1/policies/versions/:version", {
      params: { version: Schema.FiniteFromString.check(Schema.isInt(), Schema.isGreaterThanOrEqualTo(1)) },
      success: VersionView,
      error: errors
    }).annotate(OpenApi.Description, "One stored version with its document (superadmin)."),
    HttpApiEndpoint.get("stats", "/v1/policies/stats", {
      query: { minutes: Schema.optionalKey(Minutes.annotate({ description: "The window: the last N minutes (default 60)" })) },
      success: PolicyStatsView,
      error: errors
    }).annotate(
      OpenApi.Description,
      "Messages each rule let through and refused in the last `minutes`, summed over every node (each adds its counts " +
        "every second) (superadmin)."
    ),
    HttpApiEndpoint.get("statsStream", "/v1/policies/stats/stream", {
      query: { minutes: Schema.optionalKey(Minutes) },
      success: HttpApiSchema.StreamSse({ data: PolicyStatsView }),
      error: errors
    }).annotate(OpenApi.Description, "Server-Sent Events: the counters every second; the stream ends after an hour (reconnect)."),
    HttpApiEndpoint.post("test", "/v1/policies/test", {
      payload: PolicyTestRequest,
      success: PolicyTestView,
      error: errors
    }).annotate(
      OpenApi.Description,
      "A dry run of the contact policy for one message: which rule would decide and how, with every rule's part. Caps " +
        "and dedup read the recipient's counters as they are; nothing is counted, stored or sent (superadmin)."
    ),
    HttpApiEndpoint.get("searchEntries", "/v1/blacklists/:name/entries", {
      params: { name: Schema.String },
      query: {
        q: Schema.optionalKey(Schema.String.check(Schema.isMaxLength(32)).annotate({
          description: "The start of a number (+49151…, spaces and dashes ignored); absent: any"
        })),
        limit: Schema.optionalKey(Schema.FiniteFromString.check(Schema.isInt(), Schema.isBetween({ minimum: 1, maximum: 500 })))
      },
      success: EntrySearch,
      error: errors
    }).annotate(OpenApi.Description, "Numbers of the list starting with `q`, ascending, 50 unless `limit` says (who may edit the list)."),
    HttpApiEndpoint.post("uploadEntries", "/v1/blacklists/:name/entries/upload", {
      params: { name: Schema.String },
      query: {
        mode: Schema.optionalKey(Schema.Literals(["add", "remove"]).annotate({ description: "List the numbers (default) or unlist them" }))
      },
      payload: HttpApiSchema.StreamUint8Array({ contentType: entriesContentTypes }),
      success: UploadView,
      error: [...errors, PayloadTooLargeProblem]
    }).annotate(
      OpenApi.Description,
      "Upload numbers as a file (text/plain: one per line, # comments; text/csv: the first column, a header row is " +
        `skipped), read as it arrives, up to ${MAX_UPLOAD_NUMBERS.toLocaleString("en")} distinct numbers. All or nothing: ` +
        "applied in one transaction, on every node within a second; a file with more invalid lines than numbers is " +
        "refused (400) as the wrong file (who may edit the list)."
    ).annotate(LargeBody, { _tag: "Upload", contentTypes: entriesContentTypes })
  )
  .middleware(Authentication)
  .annotate(HttpApi.PayloadParseOptions, { errors: "all", onExcessProperty: "error" })
  .annotate(OpenApi.Title, "Contact policy: history, counters, tests")
{}
