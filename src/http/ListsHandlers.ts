/**
 * Handlers of the audiences API: contact lists and contacts of the caller's organisation, CSV uploads streamed into
 * the store. Viewers read; members and above write; app tokens have no access (audiences are personal data, managed
 * by people). Another organisation's list answers 404, like a missing one.
 */
import { Effect, Schema, Stream } from "effect"
import { HttpIncomingMessage } from "effect/http"
import { HttpApiBuilder } from "effect/http-api"
import { Access, CurrentPrincipal } from "../auth/Access.ts"
import type { Principal } from "../auth/Access.ts"
import { AccountStore } from "../auth/AccountStore.ts"
import { atLeast } from "../domain/Account.ts"
import type { Role } from "../domain/Account.ts"
import type { InvalidField, StoreUnavailable } from "../domain/Errors.ts"
import type { ContactParseFailed, CsvMalformed } from "../storage/ContactCsv.ts"
import { ContactStore } from "../storage/ContactStore.ts"
import type { Contact, ContactList, ContactNotFound, ImportReport, ListInUse, ListNotFound } from "../storage/ContactStore.ts"
import { requestOrigin } from "./AccountsHandlers.ts"
import { GatewayApi } from "./Api.ts"
import { beforeOf, defaultPageSize } from "./Paging.ts"
import {
  ForbiddenProblem,
  ListInUseProblem,
  NotFoundProblem,
  PayloadTooLargeProblem,
  UnavailableProblem,
  ValidationProblem
} from "./Problems.ts"
import { setResponseHeader } from "./ResponseHeaders.ts"

const iso = (ms: number) => new Date(ms).toISOString()

/** The upload went past the route's body limit while it was being read (a body without a declared length). */
class UploadTooLarge extends Schema.TaggedError<UploadTooLarge>()("UploadTooLarge", { maxBytes: Schema.Number }) {}

const listView = (list: ContactList) => ({
  id: list.id,
  name: list.name,
  ...(list.defaultCountry !== null ? { defaultCountry: list.defaultCountry } : {}),
  contacts: list.contacts,
  columns: list.columns,
  createdAt: iso(list.createdAt),
  updatedAt: iso(list.updatedAt)
})

const contactView = (contact: Contact) => ({
  msisdn: `+${contact.msisdn}`,
  ...(contact.country !== null ? { country: contact.country } : {}),
  vars: contact.vars,
  pos: contact.pos,
  createdAt: iso(contact.createdAt)
})

const inUseProblem = (error: ListInUse) => {
  const more = error.count > error.campaigns.length ? ` and ${error.count - error.campaigns.length} more` : ""
  return new ListInUseProblem({
    detail: `list ${error.id} is used by ${error.count === 1 ? "a campaign" : `${error.count} campaigns`} not finished yet ` +
      `(${error.campaigns.join(", ")}${more}): cancel ${error.count === 1 ? "it" : "them"} or let ${error.count === 1 ? "it" : "them"} complete, then delete the list`,
    campaigns: error.campaigns,
    campaignCount: error.count
  })
}

type StoreError = ListNotFound | ContactNotFound | InvalidField | CsvMalformed | ContactParseFailed | StoreUnavailable | UploadTooLarge

type ListProblem = ValidationProblem | NotFoundProblem | PayloadTooLargeProblem | UnavailableProblem

const toProblem = (error: StoreError): Effect.Effect<never, ListProblem> => {
  switch (error._tag) {
    case "ListNotFound":
      return Effect.fail(new NotFoundProblem({ detail: `no list ${error.id}` }))
    case "ContactNotFound":
      return Effect.fail(new NotFoundProblem({ detail: `no contact +${error.msisdn} in list ${error.listId}` }))
    case "InvalidField":
      return Effect.fail(new ValidationProblem({ detail: `${error.field}: ${error.message}`, errors: [{ field: error.field, message: error.message }] }))
    case "CsvMalformed": {
      const message = error.line !== undefined ? `line ${error.line}: ${error.message}` : error.message
      return Effect.fail(new ValidationProblem({ detail: `body: ${message}`, errors: [{ field: "body", message }] }))
    }
    case "UploadTooLarge":
      // The rest of the body is not read: the connection cannot carry another request.
      return setResponseHeader("connection", "close").pipe(
        Effect.andThen(Effect.fail(new PayloadTooLargeProblem({ detail: `the body exceeds ${error.maxBytes} bytes`, maxBytes: error.maxBytes })))
      )
    case "ContactParseFailed":
      return Effect.logError("contact file not imported: its parser thread failed").pipe(
        Effect.annotateLogs({ error: error.message }),
        Effect.andThen(Effect.fail(new UnavailableProblem({ detail: "the file could not be processed and nothing was imported; retry later" })))
      )
    case "StoreUnavailable":
      return Effect.logError("contact storage unavailable").pipe(
        Effect.annotateLogs({ error: error.message }),
        Effect.andThen(Effect.fail(new UnavailableProblem({ detail: "storage is unavailable; retry later" })))
      )
  }
}

/** The caller, if a user of at least `minimum` role. */
const requireRole = (minimum: Role) =>
  Effect.flatMap(CurrentPrincipal, (principal) =>
    principal.kind !== "user" || principal.role === null
      ? Effect.fail(new ForbiddenProblem({ detail: "contact lists are managed with a user token, not an app token" }))
      : atLeast(principal.role, minimum)
      ? Effect.succeed(principal)
      : Effect.fail(new ForbiddenProblem({ detail: `this needs the ${minimum} role or higher` })))

/** The body as read, failing once it passes `maxBytes`. */
const capBytes = (body: Stream.Stream<Uint8Array, unknown>, maxBytes: number) =>
  Stream.suspend(() => {
    let total = 0
    return body.pipe(
      Stream.orDie,
      Stream.mapArrayEffect((chunks) => {
        for (const chunk of chunks) total += chunk.length
        return total > maxBytes ? Effect.fail(new UploadTooLarge({ maxBytes })) : Effect.succeed(chunks)
      })
    )
  })

const importDetail = (report: ImportReport) =>
  `added=${report.added} duplicates=${report.duplicates} invalid=${report.invalid} rows=${report.rowsRead}`

export const ListsHandlers = HttpApiBuilder.group(
  GatewayApi,
  "lists",
  Effect.fn(function*(handlers) {
    const store = yield* ContactStore
    const accounts = yield* AccountStore
    const access = yield* Access

    /** Who changed which list; never the numbers themselves. */
    const audit = (principal: Principal, action: string, listId: string, detail?: string) =>
      Effect.gen(function*() {
        const ip = access.clientIp(yield* requestOrigin)
        yield* accounts.audit({
          orgId: principal.orgId,
          actorUserId: principal.userId,
          actorAppId: null,
          action,
          target: listId,
          ip,
          detail: detail ?? null
        })
      }).pipe(Effect.ignore)

    return handlers
      .handle("list", ({ query }) =>
        Effect.gen(function*() {
          const principal = yield* requireRole("viewer")
          const before = yield* beforeOf(query)
          const page = { limit: query.limit ?? defaultPageSize, before }
          return (yield* store.listLists(principal.orgId, page).pipe(Effect.catch(toProblem))).map(listView)
        }))
      .handle("create", ({ payload }) =>
        Effect.gen(function*() {
          const principal = yield* requireRole("member")
          const list = yield* store.createList(principal.orgId, payload).pipe(Effect.catch(toProblem))
          yield* audit(principal, "list.created", list.id, `name=${JSON.stringify(list.name)}`)
          return listView(list)
        }))
      .handle("get", ({ params }) =>
        Effect.gen(function*() {
          const principal = yield* requireRole("viewer")
          return listView(yield* store.getList(principal.orgId, params.id).pipe(Effect.catch(toProblem)))
        }))
      .handle("update", ({ params, payload }) =>
        Effect.gen(function*() {
          const principal = yield* requireRole("member")
          const list = yield* store.updateList(principal.orgId, params.id, payload).pipe(Effect.catch(toProblem))
          yield* audit(principal, "list.updated", list.id, Object.keys(payload).join(","))
          return listView(list)
        }))
      .handle("delete", ({ params }) =>
        Effect.gen(function*() {
          const principal = yield* requireRole("member")
          yield* store.deleteList(principal.orgId, params.id).pipe(
            Effect.catch((error): Effect.Effect<never, ListProblem | ListInUseProblem> =>
              error._tag === "ListInUse" ? Effect.fail(inUseProblem(error)) : toProblem(error)
            )
          )
          yield* audit(principal, "list.deleted", params.id)
        }))
      .handle("contacts", ({ params, query }) =>
        Effect.gen(function*() {
          const principal = yield* requireRole("viewer")
          const limit = query.limit ?? 100
          const contacts = yield* store.listContacts(principal.orgId, params.id, { after: query.after, limit }).pipe(
            Effect.catch(toProblem)
          )
          const last = contacts.at(-1)
          return {
            contacts: contacts.map(contactView),
            ...(contacts.length === limit && last !== undefined ? { next: last.pos } : {})
          }
        }))
      .handle("addContacts", ({ params, payload }) =>
        Effect.gen(function*() {
          const principal = yield* requireRole("member")
          const report = yield* store.addContacts(principal.orgId, params.id, payload.contacts).pipe(Effect.catch(toProblem))
          yield* audit(principal, "list.contacts.added", params.id, importDetail(report))
          return report
        }))
      .handle("upload", ({ params, payload, query }) =>
        Effect.gen(function*() {
          const principal = yield* requireRole("member")
          // The edge sets this route's limit (http.maxUploadBytes); a declared length above it never gets here.
          const max = yield* HttpIncomingMessage.MaxBodySize
          const body = max === undefined ? Stream.orDie(payload) : capBytes(payload, Number(max))
          const report = yield* store.importCsv(principal.orgId, params.id, body, query).pipe(Effect.catch(toProblem))
          yield* audit(principal, "list.contacts.uploaded", params.id, importDetail(report))
          return report
        }))
      .handle("removeContact", ({ params }) =>
        Effect.gen(function*() {
          const principal = yield* requireRole("member")
          yield* store.removeContact(principal.orgId, params.id, params.msisdn).pipe(Effect.catch(toProblem))
          // The audience changed (an opt-out honoured, or a number taken out): who did it, never the number.
          yield* audit(principal, "list.contact.removed", params.id)
        }))
  })
)
