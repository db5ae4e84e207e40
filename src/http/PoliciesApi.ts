import { Schema, Struct } from "effect"
import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "effect/http-api"
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
  createdBy: Schema.optionalKey(Schema.String)
}))

export const PolicyUpdate = PolicyDocument.mapFields(Struct.assign({
  expectedVersion: Schema.optionalKey(Schema.Int.annotate({
    description: "The version this change was made from: 409 if the policy changed since"
  }))
}))

export const BlacklistView = Schema.Struct({
  name: Schema.String,
  object: Schema.String,
  org: Schema.optionalKey(Schema.String),
  etag: Schema.optionalKey(Schema.String),
  baseEntries: Schema.Int,
  added: Schema.Int,
  removed: Schema.Int,
  loadedAt: Schema.optionalKey(Schema.String),
  loadMs: Schema.optionalKey(Schema.Number),
  invalidLines: Schema.Int,
  lastError: Schema.optionalKey(Schema.String),
  stale: Schema.Boolean.annotate({ description: "The last load failed: the previous version is in use" })
})

export const EntriesRequest = Schema.Struct({
  numbers: Schema.Array(Schema.String.check(Schema.isMaxLength(32))).check(Schema.isMinLength(1), Schema.isMaxLength(10_000))
    .annotate({ description: "E.164 numbers, e.g. +4915112345678 (up to 10,000 per call)" })
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
        "Replaces the policy document: a new version, live on every node within a second. 400 names every bad field."
      ),
    HttpApiEndpoint.get("listBlacklists", "/v1/blacklists", { success: Schema.Array(BlacklistView), error: errors })
      .annotate(OpenApi.Description, "Blacklists you may manage, with their load state."),
    HttpApiEndpoint.post("addEntries", "/v1/blacklists/:name/entries", {
      params: listParams,
      payload: EntriesRequest,
      success: EntriesChanged,
      error: errors
    }).annotate(OpenApi.Description, "Lists numbers (on top of the list's file), on every node within a second."),
    HttpApiEndpoint.delete("removeEntries", "/v1/blacklists/:name/entries", {
      params: listParams,
      payload: EntriesRequest,
      success: EntriesChanged,
      error: errors
    }).annotate(OpenApi.Description, "Unlists numbers, including numbers of the list's file."),
    HttpApiEndpoint.post("reloadBlacklist", "/v1/blacklists/:name/reload", {
      params: listParams,
      success: BlacklistView,
      error: errors
    }).annotate(OpenApi.Description, "Checks the list's file now and loads it if it changed (superadmin).")
  )
  .middleware(Authentication)
  .annotate(OpenApi.Title, "Contact policy")
{}
