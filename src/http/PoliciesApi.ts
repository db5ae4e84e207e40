/**
 * The REST API of the contact policy and blacklists.
 */
import { Schema, Struct } from "effect"
import { HttpApi, HttpApiEndpoint, HttpApiGroup, OpenApi } from "effect/http-api"
import { PolicyDocument } from "../domain/Policy.ts"
import {
  ConflictProblem,
  ForbiddenProblem,
  NotFoundProblem,
  UnauthorizedProblem,
  UnavailableProblem,
  ValidationProblem
} from "./Problems.ts"
import { Authentication } from "./Security.ts"

export const PolicyView = PolicyDocument.mapFields(Struct.assign({
  version: Schema.Int.annotate({ description: "Bumped by every change; send it back as expectedVersion to update safely" }),
  createdAt: Schema.String,
  createdBy: Schema.optionalKey(Schema.String),
  note: Schema.optionalKey(Schema.String.annotate({ description: "What the change is for, as given with the PUT" })),
  unreadableVersions: Schema.optionalKey(
    Schema.Array(Schema.Struct({ version: Schema.Int, error: Schema.String })).annotate({
      description: "Stored versions newer than this one that do not decode (a corrupt row, or a document an upgrade no " +
        "longer accepts): skipped, this older version is in use. A PUT writes a new version on top of them."
    })
  )
}))

export const PolicyUpdate = PolicyDocument.mapFields(Struct.assign({
  expectedVersion: Schema.optionalKey(Schema.Int.annotate({
    description: "The version this change was made from: 409 if the policy changed since"
  })),
  note: Schema.optionalKey(Schema.String.check(Schema.isMaxLength(500)).annotate({
    description: "What the change is for (kept with the version, shown in its history)"
  }))
}))

export const BlacklistView = Schema.Struct({
  name: Schema.String,
  object: Schema.optionalKey(Schema.NullOr(Schema.String).annotate({
    description: "Superadmins only: the list's file in the object store; null when the list has no file (entries through the API only)"
  })),
  org: Schema.optionalKey(Schema.String),
  etag: Schema.optionalKey(Schema.String.annotate({ description: "Superadmins only: the ETag of the file in use" })),
  baseEntries: Schema.Int,
  added: Schema.Int,
  removed: Schema.Int,
  loadedAt: Schema.optionalKey(Schema.String),
  loadMs: Schema.optionalKey(Schema.Number),
  checkedAt: Schema.optionalKey(Schema.String.annotate({ description: "The last check of the file (successful or not)" })),
  sizeBytes: Schema.optionalKey(Schema.Int.annotate({ description: "Size of the file in use" })),
  entries: Schema.optionalKey(Schema.Int.annotate({
    description: "About how many numbers the list holds: the file's + added − removed (a removal of a number the file does not have counts too)"
  })),
  invalidLines: Schema.Int,
  duplicateLines: Schema.optionalKey(Schema.Int.annotate({ description: "Lines of the file repeating an earlier number" })),
  lastError: Schema.optionalKey(Schema.String.annotate({
    description: "Superadmins only: why the last check or load of the file failed (it may name the object store)"
  })),
  stale: Schema.Boolean.annotate({ description: "The last load failed: the previous version is in use" })
})

/**
 * Numbers per call: 2,000 E.164 numbers are ~40 KB of JSON, inside the default request body limit (64 KiB,
 * `http.maxBodyBytes`) with room to spare; larger batches are several calls.
 */
export const MAX_ENTRIES_PER_CALL = 2_000

export const EntriesRequest = Schema.Struct({
  numbers: Schema.Array(Schema.String.check(Schema.isMaxLength(32))).check(
    Schema.isMinLength(1),
    Schema.isMaxLength(MAX_ENTRIES_PER_CALL)
  ).annotate({ description: "E.164 numbers, e.g. +4915112345678 (up to 2,000 per call)" })
})

export const EntriesChanged = Schema.Struct({
  changed: Schema.Int.annotate({ description: "Numbers whose listing changed" })
})

const errors = [ValidationProblem, UnauthorizedProblem, ForbiddenProblem, NotFoundProblem, ConflictProblem, UnavailableProblem]
const listParams = { name: Schema.String }

/** The contact policy (superadmin) and the blacklists it names (superadmin, or an organisation's admins for its own). */
export class PoliciesGroup extends HttpApiGroup.make("policies")
  .add(
    HttpApiEndpoint.get("getPolicy", "/v1/policies", { success: PolicyView, error: errors })
      .annotate(OpenApi.Description, "The live policy document and its version."),
    HttpApiEndpoint.put("putPolicy", "/v1/policies", { payload: PolicyUpdate, success: PolicyView, error: errors })
      .annotate(
        OpenApi.Description,
        "Replaces the policy document: a new version, live on every node within a second. 400 names every bad field, " +
          "unknown keys included (a misspelt key would otherwise be dropped and change what a rule means)."
      ),
    HttpApiEndpoint.get("listBlacklists", "/v1/blacklists", { success: Schema.Array(BlacklistView), error: errors })
      .annotate(
        OpenApi.Description,
        "Blacklists you may manage, with their load state (the file's key, ETag and last error for superadmins only)."
      ),
    HttpApiEndpoint.post("addEntries", "/v1/blacklists/:name/entries", {
      params: listParams,
      payload: EntriesRequest,
      success: EntriesChanged,
      error: errors
    }).annotate(
      OpenApi.Description,
      "Lists numbers (on top of the list's file, if it has one), on every node within a second. Up to 2,000 per call."
    ),
    HttpApiEndpoint.delete("removeEntries", "/v1/blacklists/:name/entries", {
      params: listParams,
      payload: EntriesRequest,
      success: EntriesChanged,
      error: errors
    }).annotate(OpenApi.Description, "Unlists numbers, including numbers of the list's file. Up to 2,000 per call."),
    HttpApiEndpoint.post("reloadBlacklist", "/v1/blacklists/:name/reload", {
      params: listParams,
      success: BlacklistView,
      error: errors
    }).annotate(OpenApi.Description, "Checks the list's file now and loads it if it changed (superadmin).")
  )
  .middleware(Authentication)
  // Bodies here are rules and lists: an unknown key is a mistake to report, never a key to drop (the API's default
  // strips it, so `clases` would make a rule apply to every class). Every bad field in one answer, as elsewhere.
  .annotate(HttpApi.PayloadParseOptions, { errors: "all", onExcessProperty: "error" })
  .annotate(OpenApi.Title, "Contact policy")
{}
