/**
 * Handlers of the inbound messages API (InboundApi.ts): listings scoped like the message search (members of the
 * organisation see all its apps', an app token its own), and the superadmin's routing document, checked against the
 * apps and the policy's blacklists before it is stored.
 */
import { Effect, Option } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { CurrentPrincipal, messageListScope } from "../auth/Access.ts"
import { AccountStore } from "../auth/AccountStore.ts"
import type { StoreUnavailable } from "../domain/Errors.ts"
import { checkInboundDocument } from "../domain/Inbound.ts"
import type { InboundDocument, InboundProblem } from "../domain/Inbound.ts"
import { PolicyConfig } from "../policy/PolicyConfig.ts"
import { InboundStore } from "../storage/InboundStore.ts"
import type { StoredDocument } from "../storage/InboundStore.ts"
import { GatewayApi } from "./Api.ts"
import { defaultPageSize } from "./Paging.ts"
import { ForbiddenProblem, NotFoundProblem, UnavailableProblem, ValidationProblem } from "./Problems.ts"

const unavailable = (e: StoreUnavailable | { readonly message: string }) =>
  Effect.logError("inbound store failed").pipe(
    Effect.annotateLogs({ error: e.message }),
    Effect.andThen(Effect.fail(new UnavailableProblem({ detail: "storage is unavailable; retry later" })))
  )

const routesView = (stored: StoredDocument) => ({
  version: stored.version,
  updatedAt: stored.updatedAt === null ? null : new Date(stored.updatedAt).toISOString(),
  document: stored.document
})

const superadmin = Effect.flatMap(CurrentPrincipal, (principal) =>
  principal.superadmin
    ? Effect.succeed(principal)
    : Effect.fail(new ForbiddenProblem({ detail: "inbound routes are managed by superadmins only" })))

export const InboundHandlers = HttpApiBuilder.group(
  GatewayApi,
  "inbound",
  Effect.fn(function*(handlers) {
    const store = yield* InboundStore
    const accounts = yield* AccountStore
    const policy = yield* PolicyConfig

    const scope = Effect.gen(function*() {
      const principal = yield* CurrentPrincipal
      return { principal, appIdOf: (asked: string | undefined) => messageListScope(principal, asked) }
    })

    /** What the document names that must exist: its apps, and opt-out lists given to each app's organisation. */
    const checkReferences = (document: InboundDocument) =>
      Effect.gen(function*() {
        const problems: Array<InboundProblem> = [...checkInboundDocument(document)]
        const lists = policy.current().document.blacklists ?? []
        for (const [i, route] of document.routes.entries()) {
          const app = yield* accounts.findAppById(route.appId)
          if (Option.isNone(app)) {
            problems.push({ field: `routes[${i}].appId`, message: `no app ${route.appId}` })
            continue
          }
          if (route.optOutList === undefined) continue
          const list = lists.find((l) => l.name === route.optOutList)
          if (list === undefined) {
            problems.push({ field: `routes[${i}].optOutList`, message: `the policy has no blacklist ${route.optOutList}` })
          } else if (list.org !== app.value.orgId) {
            problems.push({
              field: `routes[${i}].optOutList`,
              message: `blacklist ${route.optOutList} does not belong to the organisation of app ${route.appId}`
            })
          }
        }
        return problems
      })

    return handlers
      .handle("list", ({ query }) =>
        Effect.gen(function*() {
          const { appIdOf, principal } = yield* scope
          const appId = yield* appIdOf(query.appId).pipe(Effect.mapError((e) => new ForbiddenProblem({ detail: e.message })))
          const limit = query.limit ?? defaultPageSize
          const rows = yield* store.list({
            orgId: principal.orgId,
            appId,
            from: query.from,
            since: query.since === undefined ? undefined : Date.parse(query.since),
            before: query.cursor,
            limit: limit + 1
          }).pipe(Effect.catchTag("StoreUnavailable", unavailable))
          const page = rows.slice(0, limit)
          const last = page.at(-1)
          return { items: page, ...(rows.length > limit && last !== undefined ? { next: last.id } : {}) }
        }))
      .handle("get", ({ params }) =>
        Effect.gen(function*() {
          const { appIdOf, principal } = yield* scope
          const appId = yield* appIdOf(undefined).pipe(Effect.mapError((e) => new ForbiddenProblem({ detail: e.message })))
          const found = yield* store.get(principal.orgId, params.id, appId).pipe(Effect.catchTag("StoreUnavailable", unavailable))
          if (Option.isNone(found)) return yield* new NotFoundProblem({ detail: `no inbound message ${params.id}` })
          return found.value
        }))
      .handle("routes", () =>
        Effect.gen(function*() {
          yield* superadmin
          return routesView(yield* store.document.pipe(Effect.catchTag("StoreUnavailable", unavailable)))
        }))
      .handle("putRoutes", ({ payload }) =>
        Effect.gen(function*() {
          const principal = yield* superadmin
          const problems = yield* checkReferences(payload).pipe(Effect.catchTag("StoreFailure", unavailable))
          if (problems.length > 0) {
            return yield* new ValidationProblem({
              detail: problems.map((p) => `${p.field}: ${p.message}`).join("; "),
              errors: problems
            })
          }
          const stored = yield* store.saveDocument(payload, principal.userId ?? "superadmin", Date.now()).pipe(
            Effect.catchTag("StoreUnavailable", unavailable)
          )
          yield* Effect.logInfo("inbound routes changed").pipe(
            Effect.annotateLogs({ version: stored.version, routes: payload.routes.length, by: principal.userId ?? "" })
          )
          return routesView(stored)
        }))
  })
)
