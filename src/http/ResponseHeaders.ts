/**
 * Headers and cookies a handler adds to the response it returns (rate-limit headers, Retry-After, the session
 * cookies), whatever the outcome: the server middleware gives each request empty maps and copies them onto the
 * response it sends, problems included.
 */
import { Context, Effect, Option } from "effect"
import type { Cookies } from "effect/http"

export class ResponseHeaders extends Context.Service<ResponseHeaders, Map<string, string>>()("smsgw/http/ResponseHeaders") {}

export type CookieOptions = NonNullable<Cookies.Cookie["options"]>

export class ResponseCookies extends Context.Service<
  ResponseCookies,
  Map<string, readonly [value: string, options: CookieOptions]>
>()("smsgw/http/ResponseCookies") {}

/** Sets a response header of the current request; a no-op outside the HTTP server. */
export const setResponseHeader = (name: string, value: string): Effect.Effect<void> =>
  Effect.map(Effect.serviceOption(ResponseHeaders), (headers) => {
    if (Option.isSome(headers)) headers.value.set(name, value)
  })

/** Sets a cookie on the response of the current request; a no-op outside the HTTP server. */
export const setResponseCookie = (name: string, value: string, options: CookieOptions): Effect.Effect<void> =>
  Effect.map(Effect.serviceOption(ResponseCookies), (cookies) => {
    if (Option.isSome(cookies)) cookies.value.set(name, [value, options])
  })
