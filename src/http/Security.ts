/**
 * The API's bearer-token security scheme and the middleware tag that checks it.
 */
import { HttpApiMiddleware, HttpApiSecurity } from "effect/http-api"
import type { CurrentPrincipal } from "../auth/Access.ts"
import { UnauthorizedProblem } from "./Problems.ts"

/** Bearer access tokens (users or apps); provides the verified principal to the endpoints behind it. */
export class Authentication extends HttpApiMiddleware.Service<Authentication, {
  provides: CurrentPrincipal
}>()("smsgw/http/Authentication", {
  security: { bearer: HttpApiSecurity.bearer },
  error: UnauthorizedProblem
}) {}
