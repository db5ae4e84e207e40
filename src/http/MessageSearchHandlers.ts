/**
 * Handler of the message search: users of the organisation (viewer and above) search all its messages, an app token
 * only its own app's; the storage query is always scoped by the caller's organisation.
 */
import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { CurrentPrincipal } from "../auth/Access.ts"
import type { Principal } from "../auth/Access.ts"
import { atLeast } from "../domain/Account.ts"
import { MessageSearch } from "../storage/MessageSearch.ts"
import { GatewayApi } from "./Api.ts"
import { cursorOf, cursorText } from "./MessageSearchApi.ts"
import { defaultPageSize } from "./Paging.ts"
import { ForbiddenProblem, UnavailableProblem } from "./Problems.ts"

/** The app filter the caller may use: an app token is held to its own app whatever it asks. */
const appScope = (p: Principal, asked: string | undefined) => {
  if (p.kind === "app") {
    return asked === undefined || asked === p.appId
      ? Effect.succeed(p.appId ?? undefined)
      : Effect.fail(new ForbiddenProblem({ detail: `an app token searches its own app's messages only, not app ${asked}` }))
  }
  return p.role !== null && atLeast(p.role, "viewer")
    ? Effect.succeed(asked)
    : Effect.fail(new ForbiddenProblem({ detail: "messages are searched by members of the organisation or by an app token" }))
}

export const MessageSearchHandlers = HttpApiBuilder.group(
  GatewayApi,
  "messageSearch",
  Effect.fn(function*(handlers) {
    const messages = yield* MessageSearch
    return handlers.handle("search", ({ query }) =>
      Effect.gen(function*() {
        const principal = yield* CurrentPrincipal
        const appId = yield* appScope(principal, query.appId)
        const page = yield* messages.search({
          orgId: principal.orgId,
          id: query.id,
          to: query.to?.msisdn,
          clientRef: query.clientRef,
          status: query.status,
          appId,
          campaignId: query.campaignId,
          since: query.since === undefined ? undefined : Date.parse(query.since),
          until: query.until === undefined ? undefined : Date.parse(query.until)
        }, { limit: query.limit ?? defaultPageSize, after: query.after === undefined ? undefined : cursorOf(query.after) })
        return { items: page.items, ...(page.next !== undefined ? { next: cursorText(page.next) } : {}) }
      }).pipe(Effect.catchTag("StoreUnavailable", (e) =>
        Effect.logError("message storage unavailable").pipe(
          Effect.annotateLogs({ error: e.message }),
          Effect.andThen(Effect.fail(new UnavailableProblem({ detail: "message storage is unavailable; retry later" })))
        ))))
  })
)
