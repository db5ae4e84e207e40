/**
 * The REST API of audiences: contact lists, their contacts (JSON, up to 10,000 per call) and CSV uploads (streamed).
 */
import { Schema } from "effect"
import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { listHoldingStates } from "../domain/Campaign.ts"
import { CsvDelimiter, maxColumns, phoneColumnNames } from "../storage/ContactCsv.ts"
import { maxContactsPerCall, maxListedInvalid } from "../storage/ContactStore.ts"
import { LargeBody } from "./BodyLimits.ts"
import { defaultPageSize, pageQuery } from "./Paging.ts"
import {
  ForbiddenProblem,
  ListInUseProblem,
  NotFoundProblem,
  PayloadTooLargeProblem,
  UnauthorizedProblem,
  UnavailableProblem,
  ValidationProblem
} from "./Problems.ts"
import { Authentication } from "./Security.ts"

/** Room for `maxContactsPerCall` contacts with a few variables each (~800 bytes a contact). */
export const maxContactsBodyBytes = 8 * 1024 * 1024

/** Lists a page of `GET /v1/lists` holds at most. */
export const maxListsPerPage = 500

/** Media types an upload is accepted under. */
export const csvContentTypes = ["text/csv", "application/csv"] as const

const Country = Schema.String.check(Schema.isPattern(/^[A-Za-z]{2}$/)).annotate({
  description: "ISO 3166 alpha-2 country code, e.g. DE: national numbers (no + or 00) are completed with it"
})

export const ListView = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  defaultCountry: Schema.optionalKey(Schema.String),
  contacts: Schema.Int,
  columns: Schema.Array(Schema.String).annotate({
    description: "Every column uploads brought (lower case): the template variables its contacts may have"
  }),
  createdAt: Schema.String,
  updatedAt: Schema.String
}).annotate({
  examples: [{
    id: "lst_2f6c1d0e9a7b4c31",
    name: "Newsletter DE",
    defaultCountry: "DE",
    contacts: 12840,
    columns: ["firstname", "city"],
    createdAt: "2026-11-30T09:12:00.000Z",
    updatedAt: "2026-12-01T16:40:12.000Z"
  }]
})

const Name = Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(200))

export const ContactView = Schema.Struct({
  msisdn: Schema.String.annotate({ description: "E.164, e.g. +4915112345678" }),
  country: Schema.optionalKey(Schema.String),
  vars: Schema.Record(Schema.String, Schema.String),
  pos: Schema.Int.annotate({ description: "Upload order; pass the last one as `after` for the next page" }),
  createdAt: Schema.String
})

export const ContactInput = Schema.Struct({
  phone: Schema.String.check(Schema.isMaxLength(32)).annotate({
    description: "E.164 (+4915112345678 or 004915112345678), or national when the list has a default country"
  }),
  vars: Schema.optionalKey(
    Schema.Record(Schema.String.check(Schema.isMaxLength(64)), Schema.String.check(Schema.isMaxLength(1000))).check(
      Schema.isMaxProperties(maxColumns)
    ).annotate({ description: "Template variables; names are trimmed and lower-cased" })
  )
})

export const ImportReport = Schema.Struct({
  rowsRead: Schema.Int,
  added: Schema.Int,
  duplicates: Schema.Int.annotate({
    description: "Valid rows whose number was already in the list or earlier in the upload: collapsed into the first"
  }),
  completed: Schema.Int.annotate({ description: "National numbers completed with the list's default country" }),
  invalid: Schema.Int,
  invalidRows: Schema.Array(Schema.Struct({
    line: Schema.Int.annotate({ description: "The file's line (1 is the header); in a JSON call, the contact's 1-based position" }),
    value: Schema.String,
    reason: Schema.String
  })).annotate({ description: `The first ${maxListedInvalid} invalid rows; \`invalid\` counts them all` }),
  columns: Schema.Array(Schema.String).annotate({ description: "The variable columns found" }),
  phoneColumn: Schema.optionalKey(Schema.String.annotate({ description: "The column read as the number (uploads)" }))
}).annotate({
  examples: [{
    rowsRead: 5,
    added: 3,
    duplicates: 1,
    completed: 1,
    invalid: 1,
    invalidRows: [{ line: 5, value: "12", reason: "not a valid phone number" }],
    columns: ["firstname", "city"],
    phoneColumn: "phone"
  }]
})

/** Every problem a lists endpoint can end in (413: a body over its limit, which the edge also answers). */
const errors = [ValidationProblem, UnauthorizedProblem, ForbiddenProblem, NotFoundProblem, PayloadTooLargeProblem, UnavailableProblem]
const listParams = { id: Schema.String }

export class ListsGroup extends HttpApiGroup.make("lists")
  .add(
    HttpApiEndpoint.get("list", "/v1/lists", { query: pageQuery("lists", maxListsPerPage), success: Schema.Array(ListView), error: errors })
      .annotate(
        OpenApi.Description,
        `Your organisation's contact lists with their contact counts and columns, newest first, ${defaultPageSize} a page ` +
          `(\`limit\`: at most ${maxListsPerPage}); a full page may have more after it: ask again with the last list's ` +
          "createdAt as `before` and its id as `beforeId` (viewer and above)."
      ),
    HttpApiEndpoint.post("create", "/v1/lists", {
      payload: Schema.Struct({ name: Name, defaultCountry: Schema.optionalKey(Country) }),
      success: ListView.pipe(HttpApiSchema.status(201)),
      error: errors
    }).annotate(OpenApi.Description, "Create a contact list (member and above)."),
    HttpApiEndpoint.get("get", "/v1/lists/:id", { params: listParams, success: ListView, error: errors }),
    HttpApiEndpoint.patch("update", "/v1/lists/:id", {
      params: listParams,
      payload: Schema.Struct({ name: Schema.optionalKey(Name), defaultCountry: Schema.optionalKey(Schema.NullOr(Country)) }),
      success: ListView,
      error: errors
    }).annotate(
      OpenApi.Description,
      "Rename, or set the default country (null clears it); it applies to later uploads, not to stored contacts (member and above)."
    ),
    HttpApiEndpoint.delete("delete", "/v1/lists/:id", { params: listParams, success: HttpApiSchema.NoContent, error: [...errors, ListInUseProblem] })
      .annotate(
        OpenApi.Description,
        "Delete the list and its contacts (member and above). A list named by a campaign not finished yet " +
          `(${listHoldingStates.join(", ")}) is kept: 409 naming the campaigns; cancel them or let them complete first. ` +
          "Drafts and rejected campaigns do not hold a list: submitting one checks its lists again."
      ),
    HttpApiEndpoint.get("contacts", "/v1/lists/:id/contacts", {
      params: listParams,
      query: {
        after: Schema.optionalKey(Schema.FiniteFromString.check(Schema.isInt(), Schema.isGreaterThanOrEqualTo(0))),
        limit: Schema.optionalKey(Schema.FiniteFromString.check(Schema.isInt(), Schema.isBetween({ minimum: 1, maximum: 1000 })))
      },
      success: Schema.Struct({
        contacts: Schema.Array(ContactView),
        next: Schema.optionalKey(Schema.Int.annotate({ description: "Pass as `after` for the next page; absent on the last" }))
      }),
      error: errors
    }).annotate(OpenApi.Description, "Contacts in upload order, 100 per page unless `limit` says (at most 1,000)."),
    HttpApiEndpoint.post("addContacts", "/v1/lists/:id/contacts", {
      params: listParams,
      payload: Schema.Struct({
        contacts: Schema.Array(ContactInput).check(Schema.isMinLength(1), Schema.isMaxLength(maxContactsPerCall))
      }),
      success: ImportReport,
      error: errors
    }).annotate(
      OpenApi.Description,
      `Add up to ${maxContactsPerCall.toLocaleString("en")} contacts (member and above). Numbers already in the list are ` +
        "kept as they are (counted as duplicates); invalid numbers are reported, the rest are added. All or nothing on a storage failure."
    ).annotate(LargeBody, { _tag: "Json", bytes: maxContactsBodyBytes }),
    HttpApiEndpoint.post("upload", "/v1/lists/:id/contacts/upload", {
      params: listParams,
      query: {
        phoneColumn: Schema.optionalKey(Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(64)).annotate({
          description: `The header of the number column; without it the first of ${phoneColumnNames.join(", ")} (any case)`
        })),
        delimiter: Schema.optionalKey(CsvDelimiter.annotate({ description: "Field separator: , (default) ; | or a tab" }))
      },
      payload: HttpApiSchema.StreamUint8Array({ contentType: csvContentTypes }),
      success: ImportReport,
      error: errors
    }).annotate(
      OpenApi.Description,
      "Upload a CSV file (Content-Type: text/csv; a BOM, quotes and CRLF are fine), read as it arrives: the header row " +
        "names a phone column and any other columns, which become template variables. Answered with a report per " +
        "line (invalid numbers with line and reason, duplicates collapsed, national numbers completed with the list's " +
        "default country). All or nothing: a malformed file, a body over `http.maxUploadBytes` (413) or a failure " +
        "leaves the list as it was (member and above)."
    ).annotate(LargeBody, { _tag: "Upload", contentTypes: csvContentTypes }),
    HttpApiEndpoint.delete("removeContact", "/v1/lists/:id/contacts/:msisdn", {
      params: { id: Schema.String, msisdn: Schema.String },
      success: HttpApiSchema.NoContent,
      error: errors
    }).annotate(OpenApi.Description, "Remove one number (E.164, with or without +) from the list (member and above).")
  )
  .middleware(Authentication)
  .annotate(HttpApi.PayloadParseOptions, { errors: "all", onExcessProperty: "error" })
  .annotate(OpenApi.Title, "Audiences")
{}
