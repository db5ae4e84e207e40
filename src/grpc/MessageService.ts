/**
 * smsgw.v1.MessageService over the one pipeline: every call authenticates as REST does (`authorization: Bearer`,
 * `x-app-id` for user tokens, the peer address and trusted proxies for allow-lists), then SendMessage is
 * `Gateway.submit`, SendMessages `Gateway.submitMany`, GetMessage `Gateway.status`, ListMessages the message search of
 * GET /v1/messages, and WatchMessage polls `Gateway.status` until a final status. No stage is re-implemented here.
 */
import { create } from "@bufbuild/protobuf"
import { Code, ConnectError, createContextKey } from "@connectrpc/connect"
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect"
import { Cause, Context, Effect, Exit, Option, Result, Schema } from "effect"
import { setTimeout as sleep } from "node:timers/promises"
import { Access } from "../auth/Access.ts"
import type { Principal, RequestOrigin } from "../auth/Access.ts"
import { Forbidden } from "../auth/Errors.ts"
import { atLeast } from "../domain/Account.ts"
import { isFinal, maxBatchMessages } from "../domain/Message.ts"
import { StoreUnavailable } from "../domain/Errors.ts"
import type { MessageView } from "../domain/Message.ts"
import { RecipientFromString } from "../domain/Msisdn.ts"
import type { FieldIssue } from "../domain/FieldIssues.ts"
import { defaultPageSize } from "../http/Paging.ts"
import { Gateway } from "../pipeline/Gateway.ts"
import { MessageSearch, maxPageSize } from "../storage/MessageSearch.ts"
import { acceptedOf, domainStatus, eventsOf, messageOf, msOf, submitOf, summaryOf, unknownFields } from "./Convert.ts"
import { BadFields, connectErrorOf, logOutage, statusOf } from "./Errors.ts"
import type { GrpcError } from "./Errors.ts"
import {
  GetMessageResponseSchema,
  ListMessagesResponseSchema,
  SendMessagesResponseSchema,
  SendMessagesResultSchema,
  WatchMessageResponseSchema
} from "./gen/smsgw/v1/messages_pb.ts"
import type { MessageService, SendMessagesResult, WatchMessageResponse } from "./gen/smsgw/v1/messages_pb.ts"

/** The pipeline answers one result per item; should it not, the message is reported unavailable, never dropped. */
const missingResult = new StoreUnavailable({ message: "no result for this message; retry it" })

/** How often WatchMessage looks at the message: modest, since a status moves a few times in a message's life. */
export const watchIntervalMs = 500

/** The peer's address of a call, set from the HTTP/2 stream's socket (src/grpc/Server.ts). */
export const PeerAddress = createContextKey<string | undefined>(undefined, { description: "the HTTP/2 peer address" })

/** What the transport knows about the caller, as Access reads it for REST. */
export const originOf = (ctx: HandlerContext): RequestOrigin => ({
  remoteAddress: ctx.values.get(PeerAddress),
  forwardedFor: ctx.requestHeader.get("x-forwarded-for") ?? undefined,
  appIdHeader: ctx.requestHeader.get("x-app-id") ?? undefined
})

const bearer = (ctx: HandlerContext): string =>
  /^Bearer +(\S+) *$/i.exec(ctx.requestHeader.get("authorization") ?? "")?.[1] ?? ""

/** The app filter the caller may use: an app token is held to its own app (the REST search's rule). */
const appScope = (p: Principal, asked: string | undefined): Effect.Effect<string | undefined, Forbidden> => {
  if (p.kind === "app") {
    return asked === undefined || asked === p.appId
      ? Effect.succeed(p.appId ?? undefined)
      : Effect.fail(new Forbidden({ message: `an app token lists its own app's messages only, not app ${asked}` }))
  }
  return p.role !== null && atLeast(p.role, "viewer")
    ? Effect.succeed(asked)
    : Effect.fail(new Forbidden({ message: "messages are listed by members of the organisation or by an app token" }))
}

/** A page token is the storage cursor (creation time and id), base64url so clients treat it as opaque. */
const pageToken = (next: { readonly at: number; readonly id?: string | undefined }) =>
  Buffer.from(`${next.at}.${next.id ?? ""}`).toString("base64url")

const cursorOfToken = (token: string): { readonly at: number; readonly id: string } | undefined => {
  const match = /^([0-9]{1,15})\.(\S{1,128})$/.exec(Buffer.from(token, "base64url").toString())
  return match?.[1] === undefined || match[2] === undefined ? undefined : { at: Number(match[1]), id: match[2] }
}

const bounded = (field: string, value: string | undefined, max: number): Array<FieldIssue> =>
  value !== undefined && (value.length < 1 || value.length > max) ? [{ field, message: `must be 1 to ${max} characters` }] : []

const decodeRecipient = Schema.decodeUnknownEffect(RecipientFromString)

/** A message's state as WatchMessage compares it: a response goes out when this changes. */
const versionOf = (view: MessageView) => `${view.status}|${view.updatedAt}|${view.events.length}|${view.parts.map((p) => p.status).join(",")}`

/** The service's implementation, running each call's effect on the gateway's services. */
export const makeMessageService = Effect.gen(function*() {
  const context = yield* Effect.context<Gateway | Access | MessageSearch>()
  const gateway = Context.get(context, Gateway)
  const access = Context.get(context, Access)
  const search = Context.get(context, MessageSearch)
  const runExit = Effect.runPromiseExitWith(context)

  /** Runs a call's effect: its domain error becomes the gRPC status; a deadline or a cancel stops it. */
  const run = async <A>(ctx: HandlerContext, effect: Effect.Effect<A, GrpcError>): Promise<A> => {
    const exit = await runExit(effect.pipe(Effect.tapError(logOutage)), { signal: ctx.signal })
    if (Exit.isSuccess(exit)) return exit.value
    const error = Cause.findErrorOption(exit.cause)
    if (Option.isSome(error)) throw connectErrorOf(error.value)
    if (ctx.signal.aborted) throw ConnectError.from(ctx.signal.reason)
    await runExit(Effect.logError("gRPC call failed", exit.cause).pipe(Effect.annotateLogs({ method: ctx.method.name })))
    throw new ConnectError("internal error", Code.Internal)
  }

  const principalOf = (ctx: HandlerContext) => access.authenticate(bearer(ctx))

  const senderOf = (ctx: HandlerContext) =>
    Effect.flatMap(principalOf(ctx), (principal) => access.submitter(principal, originOf(ctx)))

  const sendMessage: ServiceImpl<typeof MessageService>["sendMessage"] = (request, ctx) =>
    run(ctx, Effect.gen(function*() {
      const sender = yield* senderOf(ctx)
      const item = yield* submitOf(request)
      const outcome = yield* gateway.submit(item.message, sender, item.idempotencyKey !== undefined ? { idempotencyKey: item.idempotencyKey } : {})
      return acceptedOf(outcome.accepted, outcome.replayed === true)
    }))

  /** Every message of a batch decoded; the valid ones through the pipeline, each answered in place. */
  const sendMessages: ServiceImpl<typeof MessageService>["sendMessages"] = (request, ctx) =>
    run(ctx, Effect.gen(function*() {
      const sender = yield* senderOf(ctx)
      const count = request.messages.length
      const batchIssues = [
        ...unknownFields(request),
        ...(count === 0 ? [{ field: "messages", message: "at least one message" }] : []),
        ...(count > maxBatchMessages ? [{ field: "messages", message: `at most ${maxBatchMessages} messages per call; this one has ${count}` }] : [])
      ]
      if (batchIssues.length > 0) return yield* new BadFields({ violations: batchIssues })
      const decoded = yield* Effect.forEach(request.messages, (m) => Effect.result(submitOf(m)))
      const valid = decoded.flatMap((d) => Result.isSuccess(d) ? [d.success] : [])
      // One store transaction for the batch; it fails whole only when the store cannot take it.
      const outcomes = yield* gateway.submitMany(valid, sender)
      yield* Effect.forEach(outcomes, (r) => Result.isFailure(r) ? logOutage(r.failure) : Effect.void, { discard: true })
      let next = 0
      const results = decoded.map((d): SendMessagesResult => {
        if (Result.isFailure(d)) return create(SendMessagesResultSchema, { result: { case: "error", value: statusOf(d.failure) } })
        const outcome = outcomes[next++]
        if (outcome === undefined) return create(SendMessagesResultSchema, { result: { case: "error", value: statusOf(missingResult) } })
        return Result.isFailure(outcome)
          ? create(SendMessagesResultSchema, { result: { case: "error", value: statusOf(outcome.failure) } })
          : create(SendMessagesResultSchema, { result: { case: "accepted", value: acceptedOf(outcome.success.accepted, outcome.success.replayed === true) } })
      })
      return create(SendMessagesResponseSchema, { results })
    }))

  const getMessage: ServiceImpl<typeof MessageService>["getMessage"] = (request, ctx) =>
    run(ctx, Effect.gen(function*() {
      const principal = yield* principalOf(ctx)
      const view = yield* gateway.status(request.id, { orgId: principal.orgId, appId: principal.appId })
      return create(GetMessageResponseSchema, { message: messageOf(view) })
    }))

  const listMessages: ServiceImpl<typeof MessageService>["listMessages"] = (request, ctx) =>
    run(ctx, Effect.gen(function*() {
      const principal = yield* principalOf(ctx)
      const after = request.pageToken === "" ? undefined : cursorOfToken(request.pageToken)
      const status = request.status === 0 ? undefined : domainStatus(request.status)
      const to = request.to === undefined ? undefined : yield* Effect.option(decodeRecipient(request.to))
      const issues: Array<FieldIssue> = [
        ...unknownFields(request),
        ...(request.pageSize > maxPageSize ? [{ field: "page_size", message: `at most ${maxPageSize}` }] : []),
        ...(request.pageToken !== "" && after === undefined ? [{ field: "page_token", message: "the next_page_token of the previous page, unchanged" }] : []),
        ...(request.status !== 0 && status === undefined ? [{ field: "status", message: `unknown enum value ${request.status}` }] : []),
        ...(to !== undefined && Option.isNone(to) ? [{ field: "to", message: "not a phone number in E.164, e.g. +4915112345678" }] : []),
        ...bounded("id", request.id, 128),
        ...bounded("client_ref", request.clientRef, 128),
        ...bounded("app_id", request.appId, 128),
        ...bounded("campaign_id", request.campaignId, 128)
      ]
      if (issues.length > 0) return yield* new BadFields({ violations: issues })
      const appId = yield* appScope(principal, request.appId)
      const page = yield* search.search({
        orgId: principal.orgId,
        id: request.id,
        to: to === undefined ? undefined : Option.getOrUndefined(to)?.msisdn,
        clientRef: request.clientRef,
        status,
        appId,
        campaignId: request.campaignId,
        since: request.since === undefined ? undefined : msOf(request.since),
        until: request.until === undefined ? undefined : msOf(request.until)
      }, { limit: request.pageSize === 0 ? defaultPageSize : request.pageSize, after })
      return create(ListMessagesResponseSchema, {
        messages: page.items.map(summaryOf),
        nextPageToken: page.next === undefined ? "" : pageToken(page.next)
      })
    }))

  /**
   * The message now, then after each change, until a final status. Ends early, with an error, when the deadline
   * passes or the client goes away (the call's signal), or with UNAVAILABLE when the server drains (`draining`).
   */
  const watchMessage = (draining: AbortSignal): ServiceImpl<typeof MessageService>["watchMessage"] =>
    async function*(request, ctx) {
      const principal = await run(ctx, principalOf(ctx))
      const caller = { orgId: principal.orgId, appId: principal.appId }
      const signal = AbortSignal.any([ctx.signal, draining])
      let last = ""
      let seenEvents = 0
      for (;;) {
        const view = await run(ctx, gateway.status(request.id, caller))
        const version = versionOf(view)
        if (version !== last) {
          last = version
          const response: WatchMessageResponse = create(WatchMessageResponseSchema, {
            message: messageOf(view),
            newEvents: eventsOf(view.events.slice(seenEvents))
          })
          seenEvents = view.events.length
          yield response
        }
        if (isFinal(view.status)) return
        try {
          await sleep(watchIntervalMs, undefined, { signal })
        } catch {
          if (ctx.signal.aborted) throw ConnectError.from(ctx.signal.reason)
          throw new ConnectError("the server is shutting down; watch again", Code.Unavailable)
        }
      }
    }

  return (draining: AbortSignal): ServiceImpl<typeof MessageService> => ({
    sendMessage,
    sendMessages,
    getMessage,
    listMessages,
    watchMessage: watchMessage(draining)
  })
})
