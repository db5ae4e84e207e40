/**
 * Headers a handler adds to the response it returns (rate-limit headers, Retry-After).
 */
import { Context, Effect, Option } from "effect"

/**
 * Headers a handler wants on its response whatever the outcome (Retry-After on a 429, rate-limit headers):
 * the server middleware gives each request an empty map and copies it onto the response it sends.
 */
export class ResponseHeaders extends Context.Service<ResponseHeaders, Map<string, string>>()("smsgw/http/ResponseHeaders") {}

/** Sets a response header of the current request; a no-op outside the HTTP server. */
export const setResponseHeader = (name: string, value: string): Effect.Effect<void> =>
  Effect.map(Effect.serviceOption(ResponseHeaders), (headers) => {
    if (Option.isSome(headers)) headers.value.set(name, value)
  })
