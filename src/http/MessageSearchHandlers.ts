/**
 * Handler of the message search: users of the organisation (viewer and above) search all its messages, an app token
 * only its own app's; the storage query is always scoped by the caller's organisation.
 */
import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { CurrentPrincipal, messageListScope } from "../auth/Access.ts"
import { cursorText, MessageSearch, parseCursor } from "../storage/MessageSearch.ts"
import { GatewayApi } from "./Api.ts"
import { defaultPageSize } from "./Paging.ts"
import { ForbiddenProblem, UnavailableProblem } from "./Problems.ts"

export const MessageSearchHandlers = HttpApiBuilder.group(
  GatewayApi,
  "messageSearch",
  Effect.fn(function*(handlers) {
    const messages = yield* MessageSearch
    return handlers.handle("search", ({ query }) =>
      Effect.gen(function*() {
        const principal = yield* CurrentPrincipal
        const appId = yield* messageListScope(principal, query.appId).pipe(
          Effect.mapError((e) => new ForbiddenProblem({ detail: e.message }))
        )
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
        }, { limit: query.limit ?? defaultPageSize, after: query.after === undefined ? undefined : parseCursor(query.after) })
        return { items: page.items, ...(page.next !== undefined ? { next: cursorText(page.next) } : {}) }
      }).pipe(Effect.catchTag("StoreUnavailable", (e) =>
        Effect.logError("message storage unavailable").pipe(
          Effect.annotateLogs({ error: e.message }),
          Effect.andThen(Effect.fail(new UnavailableProblem({ detail: "message storage is unavailable; retry later" })))
        ))))
  })
)
