/**
 * Endpoints whose request body is not the API's usual small JSON declare it with the `LargeBody` annotation; the edge
 * (src/http/Server.ts) reads it from the API's endpoint list and applies that body limit, media type and request
 * timeout to those routes only. Every other route keeps `http.maxBodyBytes` and `http.requestTimeoutSeconds`.
 */
import { Context } from "effect"

export type LargeBodyKind =
  /** A file streamed to the handler: `http.maxUploadBytes`, `http.uploadTimeoutSeconds`, the media types listed. */
  | { readonly _tag: "Upload"; readonly contentTypes: ReadonlyArray<string> }
  /** A JSON body allowed up to `bytes` (or `http.maxBodyBytes` when that is larger). */
  | { readonly _tag: "Json"; readonly bytes: number }

export class LargeBody extends Context.Service<LargeBody, LargeBodyKind>()("smsgw/http/LargeBody") {}
