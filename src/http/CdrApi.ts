/**
 * The REST API of CDR files: an organisation's exported call detail records, listed by hour and downloaded one file
 * at a time (gzip CSV or JSON Lines, docs/cdr.md). Admins and owners of the organisation; superadmins name one.
 */
import { Schema } from "effect"
import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { ForbiddenProblem, NotFoundProblem, UnauthorizedProblem, UnavailableProblem, ValidationProblem } from "./Problems.ts"
import { IsoTime } from "./MessageSearchApi.ts"
import { Authentication } from "./Security.ts"

export const CdrFileView = Schema.Struct({
  hour: Schema.String.annotate({ description: "The hour (UTC) its messages were accepted in, e.g. 2026-12-03T14" }),
  name: Schema.String.annotate({ description: "The file's name, e.g. b000000000042.csv.gz (the export batch)" }),
  size: Schema.Number.annotate({ description: "Bytes (compressed)" }),
  href: Schema.String.annotate({ description: "Where to download it" })
})

export const CdrListing = Schema.Struct({
  organisation: Schema.String,
  from: Schema.String,
  to: Schema.String,
  files: Schema.Array(CdrFileView)
})

const Organisation = Schema.String.check(Schema.isPattern(/^[A-Za-z0-9_-]{1,64}$/))

const errors = [ValidationProblem, UnauthorizedProblem, ForbiddenProblem, NotFoundProblem, UnavailableProblem]

export class CdrGroup extends HttpApiGroup.make("cdr")
  .add(
    HttpApiEndpoint.get("list", "/v1/cdr", {
      query: {
        from: Schema.optionalKey(IsoTime.annotate({ description: "Hours from this time (default: 24 hours before `to`)" })),
        to: Schema.optionalKey(IsoTime.annotate({ description: "Hours before this time (default: now)" })),
        organisation: Schema.optionalKey(Organisation.annotate({ description: "Superadmins: whose files (default: your own)" }))
      },
      success: CdrListing,
      error: errors
    }).annotate(
      OpenApi.Description,
      "The organisation's CDR files for hours in [from, to), at most 31 days, oldest first. An hour gains a file with " +
        "every export that found messages of that hour finished (late receipts land in later files of the same hour)."
    ),
    HttpApiEndpoint.get("download", "/v1/cdr/:hour/:name", {
      params: { hour: Schema.String, name: Schema.String },
      query: { organisation: Schema.optionalKey(Organisation) },
      success: HttpApiSchema.StreamUint8Array({ contentType: "application/gzip" }),
      error: errors
    }).annotate(OpenApi.Description, "One CDR file as it is stored (gzip), streamed. Another organisation's file is 404.")
  )
  .middleware(Authentication)
  .annotate(HttpApi.QueryParseOptions, { errors: "all", onExcessProperty: "error" })
  .annotate(OpenApi.Title, "CDR files")
{}
