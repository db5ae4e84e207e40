/**
 * smsgw.v1.MessageService over the one pipeline: every call authenticates as REST does (`authorization: Bearer`,
 * `x-app-id` for user tokens, the peer address and trusted proxies for allow-lists), then SendMessage is
 * `Gateway.submit`, SendMessages `Gateway.submitMany`, GetMessage `Gateway.status`, ListMessages the message search of
 * GET /v1/messages, and WatchMessage polls `Gateway.status` until a final status. No stage is re-implemented here.
 *
 * Bounds: a unary call the client sent without a deadline gets the server's (`unaryTimeoutMs`, REST's request
 * timeout): DEADLINE_EXCEEDED and its effect interrupted, as a client deadline does. A WatchMessage ends after
 * `maxWatchMs` with UNAVAILABLE ("watch again"), so a watcher authenticates again at least that often.
 */
import { create } from "@bufbuild/protobuf"
import { Metadata as MetadataClass, status as Code } from "@grpc/grpc-js"
import type { handleServerStreamingCall, handleUnaryCall, Metadata, ServerErrorResponse, UntypedServiceImplementation } from "@grpc/grpc-js"
import { Cause, Context, Effect, Exit, Option, Result, Schema } from "effect"
import { setTimeout as sleep } from "node:timers/promises"
import { Access, messageListScope } from "../auth/Access.ts"
import type { RequestOrigin } from "../auth/Access.ts"
import { isFinal, maxBatchMessages } from "../domain/Message.ts"
import { StoreUnavailable } from "../domain/Errors.ts"
import type { MessageView } from "../domain/Message.ts"
import { RecipientFromString } from "../domain/Msisdn.ts"
import type { FieldIssue } from "../domain/FieldIssues.ts"
import { defaultPageSize } from "../http/Paging.ts"
import { Gateway } from "../pipeline/Gateway.ts"
import { cursorText, MessageSearch, maxPageSize, parseCursor } from "../storage/MessageSearch.ts"
import type { Before } from "../storage/Paging.ts"
import { acceptedOf, domainStatus, eventsOf, inboundOf, messageOf, msOf, submitOf, summaryOf, unknownFields } from "./Convert.ts"
import { InboundStore } from "../storage/InboundStore.ts"
import { maxInboundPage } from "../domain/Inbound.ts"
import { parentOf, recordedSpan, traceparentOf, untracedStack } from "../observability/Tracing.ts"
import { HttpMetrics } from "../observability/Metrics.ts"
import { cancelSignal, peerAddress } from "./Calls.ts"
import type { Calls } from "./Calls.ts"
import { BadFields, logOutage, serviceErrorOf, statusOf } from "./Errors.ts"
import { serverDeadline, watchExpired, watchShuttingDown } from "./Errors.ts"
import type { GrpcError } from "./Errors.ts"
import {
  GetMessageResponseSchema,
  ListInboundMessagesResponseSchema,
  ListMessagesResponseSchema,
  SendMessagesResponseSchema,
  SendMessagesResultSchema,
  WatchMessageResponseSchema
} from "./gen/smsgw/v1/messages_pb.ts"
import type {
  GetMessageRequest,
  GetMessageResponse,
  ListInboundMessagesRequest,
  ListInboundMessagesResponse,
  ListMessagesRequest,
  ListMessagesResponse,
  SendMessageRequest,
  SendMessageResponse,
  SendMessagesRequest,
  SendMessagesResponse,
  SendMessagesResult,
  WatchMessageRequest,
  WatchMessageResponse
} from "./gen/smsgw/v1/messages_pb.ts"

/** The pipeline answers one result per item; should it not, the message is reported unavailable, never dropped. */
const missingResult = new StoreUnavailable({ message: "no result for this message; retry it" })

/** How often WatchMessage looks at the message: modest, since a status moves a few times in a message's life. */
export const watchIntervalMs = 500

/** The first value of a metadata key, as text. */
const header = (metadata: Metadata, key: string): string | undefined => {
  const value = metadata.get(key)[0]
  return typeof value === "string" ? value : undefined
}

/** What the transport knows about the caller, as Access reads it for REST. */
export const originOf = (call: { readonly metadata: Metadata; getPeer(): string }): RequestOrigin => ({
  remoteAddress: peerAddress(call.getPeer()),
  forwardedFor: header(call.metadata, "x-forwarded-for"),
  appIdHeader: header(call.metadata, "x-app-id")
})

const bearer = (metadata: Metadata): string => /^Bearer +(\S+) *$/i.exec(header(metadata, "authorization") ?? "")?.[1] ?? ""

/** A page token is the storage cursor's text (storage/MessageSearch.ts), base64url so clients treat it as opaque. */
const pageToken = (next: Before) => Buffer.from(cursorText(next)).toString("base64url")

const cursorOfToken = (token: string) => parseCursor(Buffer.from(token, "base64url").toString())

const bounded = (field: string, value: string | undefined, max: number): Array<FieldIssue> =>
  value !== undefined && (value.length < 1 || value.length > max) ? [{ field, message: `must be 1 to ${max} characters` }] : []

const decodeRecipient = Schema.decodeUnknownEffect(RecipientFromString)

/** A message's state as WatchMessage compares it: a response goes out when this changes. */
const versionOf = (view: MessageView) => `${view.status}|${view.updatedAt}|${view.events.length}|${view.parts.map((p) => p.status).join(",")}`

type MessageEvent = MessageView["events"][number]

/** What identifies an event, whatever its place in the list (events are ordered by time, and may arrive out of it). */
const eventKey = (e: MessageEvent) =>
  JSON.stringify([e.at, e.kind ?? null, e.status, e.part ?? null, e.linkId ?? null, e.detail ?? null, e.commandStatus ?? null, e.reason ?? null])

/**
 * The events of `events` not yet in `sent`, in their order; `sent` learns them. By identity, not by count: an event
 * written late with an earlier time (clocks of cluster nodes differ) lands before events already sent.
 */
export const unsentEvents = (sent: Set<string>, events: ReadonlyArray<MessageEvent>): Array<MessageEvent> =>
  events.filter((e) => {
    const key = eventKey(e)
    if (sent.has(key)) return false
    sent.add(key)
    return true
  })

export interface MessageServiceOptions {
  /** How long one WatchMessage runs before it ends with UNAVAILABLE, "watch again". */
  readonly maxWatchMs: number
  /** The deadline of a unary call whose client set none. */
  readonly unaryTimeoutMs: number
}

/** The service's implementation, running each call's effect on the gateway's services. */
export const makeMessageService = (options: MessageServiceOptions) => Effect.gen(function*() {
  const context = yield* Effect.context<Gateway | Access | MessageSearch | InboundStore | HttpMetrics>()
  const metrics = Context.get(context, HttpMetrics)
  for (const method of ["SendMessage", "SendMessages", "GetMessage", "ListMessages", "ListInboundMessages"]) metrics.initGrpc(method)
  const inbound = Context.get(context, InboundStore)
  const gateway = Context.get(context, Gateway)
  const access = Context.get(context, Access)
  const search = Context.get(context, MessageSearch)
  const runExit = Effect.runPromiseExitWith(context)

  /**
   * Runs a call's effect until it answers, or until the client cancels or its deadline passes (`signal`: grpc-js then
   * answers CANCELLED or DEADLINE_EXCEEDED itself). A domain error becomes its status; a defect is logged, INTERNAL.
   */
  const run = async <A>(method: string, signal: AbortSignal, effect: Effect.Effect<A, GrpcError>): Promise<Result.Result<A, ServerErrorResponse>> => {
    const exit = await runExit(effect.pipe(Effect.tapError(logOutage)), { signal })
    if (Exit.isSuccess(exit)) return Result.succeed(exit.value)
    const error = Cause.findErrorOption(exit.cause)
    if (Option.isSome(error)) return Result.fail(serviceErrorOf(error.value))
    if (!signal.aborted) await runExit(Effect.logError("gRPC call failed", exit.cause).pipe(Effect.annotateLogs({ method })))
    const internal: ServerErrorResponse = { name: "GrpcError", message: "internal error", code: Code.INTERNAL, details: "internal error" }
    return Result.fail(internal)
  }

  /**
   * A unary method: its effect run for the call, its answer or its status sent. Without a client deadline the
   * server's bound applies: DEADLINE_EXCEEDED is answered at once and the effect interrupted.
   */
  const unary = <Req, Res>(
    calls: Calls,
    method: string,
    handle: (request: Req, call: { readonly metadata: Metadata; getPeer(): string }) => Effect.Effect<Res, GrpcError>
  ): handleUnaryCall<Req, Res> =>
  (call, callback) => {
    const done = calls.begin()
    const cancelled = cancelSignal(call)
    const overdue = new AbortController()
    let answered = false
    const timer = call.getDeadline() === Infinity
      ? setTimeout(() => {
        answered = true
        callback(serverDeadline)
        overdue.abort()
      }, options.unaryTimeoutMs)
      : undefined
    // The call's server span: a client's traceparent (metadata) continues its trace; otherwise one may start here.
    // A traced call's answer names its trace (trailing metadata `traceresponse`, as the HTTP header).
    let traceresponse: string | undefined
    const named = Effect.map(recordedSpan, (span) => {
      if (span !== undefined) traceresponse = traceparentOf(span)
    })
    const traced = Effect.andThen(named, handle(call.request, call)).pipe(
      Effect.tapError((error) => Effect.annotateCurrentSpan("rpc.grpc.status_code", serviceErrorOf(error).code)),
      Effect.withSpan(`smsgw.v1.MessageService/${method}`, {
        kind: "server",
        parent: parentOf(header(call.metadata, "traceparent")),
        attributes: { "rpc.system": "grpc", "rpc.service": "smsgw.v1.MessageService", "rpc.method": method }
      }, untracedStack)
    )
    const started = performance.now()
    void run(method, AbortSignal.any([cancelled, overdue.signal]), traced).then((result) => {
      clearTimeout(timer)
      done()
      const code = answered ? Code.DEADLINE_EXCEEDED : cancelled.aborted ? Code.CANCELLED : Result.isSuccess(result) ? Code.OK : result.failure.code ?? Code.UNKNOWN
      metrics.grpc(method, Code[code] ?? String(code), (performance.now() - started) / 1000)
      if (answered) return
      const trailer = traceresponse === undefined ? undefined : new MetadataClass()
      if (trailer !== undefined && traceresponse !== undefined) trailer.set("traceresponse", traceresponse)
      if (Result.isSuccess(result)) callback(null, result.success, trailer)
      else callback(trailer === undefined ? result.failure : { ...result.failure, metadata: trailer })
    })
  }

  const principalOf = (metadata: Metadata) => access.authenticate(bearer(metadata))

  const senderOf = (call: { readonly metadata: Metadata; getPeer(): string }) =>
    Effect.flatMap(principalOf(call.metadata), (principal) => access.submitter(principal, originOf(call)))

  const sendMessage = (request: SendMessageRequest, call: { readonly metadata: Metadata; getPeer(): string }) =>
    Effect.gen(function*() {
      const sender = yield* senderOf(call)
      const item = yield* submitOf(request)
      const outcome = yield* gateway.submit(item.message, sender, item.idempotencyKey !== undefined ? { idempotencyKey: item.idempotencyKey } : {})
      return acceptedOf(outcome.accepted, outcome.replayed === true)
    })

  /** Every message of a batch decoded; the valid ones through the pipeline, each answered in place. */
  const sendMessages = (request: SendMessagesRequest, call: { readonly metadata: Metadata; getPeer(): string }) =>
    Effect.gen(function*() {
      const sender = yield* senderOf(call)
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
    })

  const getMessage = (request: GetMessageRequest, call: { readonly metadata: Metadata }) =>
    Effect.gen(function*() {
      const principal = yield* principalOf(call.metadata)
      const view = yield* gateway.status(request.id, { orgId: principal.orgId, appId: principal.appId })
      return create(GetMessageResponseSchema, { message: messageOf(view) })
    })

  const listMessages = (request: ListMessagesRequest, call: { readonly metadata: Metadata }) =>
    Effect.gen(function*() {
      const principal = yield* principalOf(call.metadata)
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
      const appId = yield* messageListScope(principal, request.appId)
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
    })

  const listInboundMessages = (request: ListInboundMessagesRequest, call: { readonly metadata: Metadata }) =>
    Effect.gen(function*() {
      const principal = yield* principalOf(call.metadata)
      const before = request.pageToken === "" ? undefined : Buffer.from(request.pageToken, "base64url").toString()
      const issues: Array<FieldIssue> = [
        ...unknownFields(request),
        ...(request.pageSize > maxInboundPage ? [{ field: "page_size", message: `at most ${maxInboundPage}` }] : []),
        ...(before !== undefined && !/^[0-9a-f-]{36}$/.test(before)
          ? [{ field: "page_token", message: "the next_page_token of the previous page, unchanged" }]
          : []),
        ...bounded("app_id", request.appId, 128),
        ...bounded("from", request.from, 32)
      ]
      if (issues.length > 0) return yield* new BadFields({ violations: issues })
      const appId = yield* messageListScope(principal, request.appId)
      const limit = request.pageSize === 0 ? defaultPageSize : request.pageSize
      const rows = yield* inbound.list({
        orgId: principal.orgId,
        appId,
        from: request.from,
        since: request.since === undefined ? undefined : msOf(request.since),
        before,
        limit: limit + 1
      })
      const page = rows.slice(0, limit)
      const last = page.at(-1)
      return create(ListInboundMessagesResponseSchema, {
        messages: page.map(inboundOf),
        nextPageToken: rows.length > limit && last !== undefined ? Buffer.from(last.id).toString("base64url") : ""
      })
    })

  /**
   * The message now, then after each change, until a final status. Stops when the client cancels or its deadline
   * passes, and ends with UNAVAILABLE when the server drains (`draining`) or after `maxWatchMs`.
   */
  const watchMessage = (calls: Calls, draining: AbortSignal): handleServerStreamingCall<WatchMessageRequest, WatchMessageResponse> =>
  (call) => {
    const done = calls.begin()
    const cancelled = cancelSignal(call)
    const expired = new AbortController()
    const limit = setTimeout(() => expired.abort(), options.maxWatchMs)
    const signal = AbortSignal.any([cancelled, draining, expired.signal])
    const fail = (error: ServerErrorResponse) => void call.emit("error", error)
    const loop = async () => {
      const principal = await run("WatchMessage", cancelled, principalOf(call.metadata))
      if (Result.isFailure(principal)) return fail(principal.failure)
      const caller = { orgId: principal.success.orgId, appId: principal.success.appId }
      let last = ""
      const sent = new Set<string>()
      for (;;) {
        const view = await run("WatchMessage", cancelled, gateway.status(call.request.id, caller))
        if (cancelled.aborted) return
        if (Result.isFailure(view)) return fail(view.failure)
        const version = versionOf(view.success)
        if (version !== last) {
          last = version
          call.write(create(WatchMessageResponseSchema, {
            message: messageOf(view.success),
            newEvents: eventsOf(unsentEvents(sent, view.success.events))
          }))
        }
        if (isFinal(view.success.status)) return void call.end()
        const woke = await sleep(watchIntervalMs, undefined, { signal }).then(() => true, () => false)
        if (cancelled.aborted) return
        if (!woke) return fail(draining.aborted ? watchShuttingDown : watchExpired)
      }
    }
    void loop().finally(() => {
      clearTimeout(limit)
      done()
    })
  }

  return (calls: Calls, draining: AbortSignal): UntypedServiceImplementation => ({
    sendMessage: unary<SendMessageRequest, SendMessageResponse>(calls, "SendMessage", sendMessage),
    sendMessages: unary<SendMessagesRequest, SendMessagesResponse>(calls, "SendMessages", sendMessages),
    getMessage: unary<GetMessageRequest, GetMessageResponse>(calls, "GetMessage", getMessage),
    listMessages: unary<ListMessagesRequest, ListMessagesResponse>(calls, "ListMessages", listMessages),
    listInboundMessages: unary<ListInboundMessagesRequest, ListInboundMessagesResponse>(calls, "ListInboundMessages", listInboundMessages),
    watchMessage: watchMessage(calls, draining)
  })
})
