/**
 * The one mapping of the gateway's errors to gRPC: a status code, a message, and google.rpc details (BadRequest,
 * RetryInfo, ErrorInfo), sent in grpc-status-details-bin for a failed call (the google.rpc.Status of the error, as
 * every gRPC implementation reads it), or as the google.rpc.Status of one
 * message of a batch. It mirrors the REST problems of src/http/Handlers.ts: the same errors, the same facts.
 */
import { create, toBinary } from "@bufbuild/protobuf"
import type { DescMessage, MessageInitShape } from "@bufbuild/protobuf"
import { anyPack } from "@bufbuild/protobuf/wkt"
import { Metadata, status as Code } from "@grpc/grpc-js"
import type { ServerErrorResponse } from "@grpc/grpc-js"
import { Effect, Schema } from "effect"
import type { Forbidden, Unauthenticated } from "../auth/Errors.ts"
import type { MessageNotFound } from "../domain/Errors.ts"
import type { FieldIssue } from "../domain/FieldIssues.ts"
import type { SubmitError } from "../pipeline/Gateway.ts"
import { retryAfterOf } from "../http/SubmitProblems.ts"
import { BadRequestSchema, ErrorInfoSchema, RetryInfoSchema } from "./gen/google/rpc/error_details_pb.ts"
import { StatusSchema } from "./gen/google/rpc/status_pb.ts"
import type { Status } from "./gen/google/rpc/status_pb.ts"

/** ErrorInfo.domain of every error this gateway sends. */
export const errorDomain = "smsgw"

/** A request that does not decode: every bad field, named as the proto names it (`to`, `client_ref`, `messages[2].to`). */
export class BadFields extends Schema.TaggedError<BadFields>()("BadFields", {
  violations: Schema.Array(Schema.Struct({ field: Schema.String, message: Schema.String }))
}) {}

/** Everything a gRPC call of the message service can fail with. */
export type GrpcError = SubmitError | BadFields | Unauthenticated | Forbidden | MessageNotFound

interface Detail<Desc extends DescMessage = DescMessage> {
  readonly desc: Desc
  readonly value: MessageInitShape<Desc>
}

const detail = <Desc extends DescMessage>(desc: Desc, value: MessageInitShape<Desc>): Detail => ({ desc, value }) as Detail

/** What a call answers for an error: the status code, its message, its details. */
export interface GrpcFailure {
  readonly code: Code
  readonly message: string
  readonly details: ReadonlyArray<Detail>
}

/** A request field as the proto spells it: the domain's `clientRef` is the proto's `client_ref`. */
export const protoField = (field: string): string => field.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)

const badRequest = (violations: ReadonlyArray<FieldIssue>): GrpcFailure => ({
  code: Code.INVALID_ARGUMENT,
  message: violations.map((v) => `${v.field}: ${v.message}`).join("; "),
  details: [detail(BadRequestSchema, { fieldViolations: violations.map((v) => ({ field: v.field, description: v.message })) })]
})

const retryInfo = (seconds: number) => detail(RetryInfoSchema, { retryDelay: { seconds: BigInt(seconds) } })

const errorInfo = (reason: string, metadata: Record<string, string>) =>
  detail(ErrorInfoSchema, { reason, domain: errorDomain, metadata })

/** RetryInfo when the pipeline knows when a retry may pass (the same seconds REST puts in Retry-After). */
const retryDetails = (error: SubmitError) => {
  const seconds = retryAfterOf(error)
  return seconds === undefined ? [] : [retryInfo(seconds)]
}

const unavailable = (message: string, error: SubmitError): GrpcFailure => ({ code: Code.UNAVAILABLE, message, details: retryDetails(error) })

/** The code, message and details of an error; storage and policy outages say no more than REST does. */
export const failureOf = (error: GrpcError): GrpcFailure => {
  switch (error._tag) {
    case "BadFields":
      return badRequest(error.violations)
    case "InvalidField":
      return badRequest([{ field: protoField(error.field), message: error.message }])
    case "Unauthenticated":
      return { code: Code.UNAUTHENTICATED, message: error.message, details: [] }
    case "Forbidden":
      return { code: Code.PERMISSION_DENIED, message: error.message, details: [] }
    case "MessageNotFound":
      return { code: Code.NOT_FOUND, message: `no message ${error.id}`, details: [] }
    case "RateLimited":
      return {
        code: Code.RESOURCE_EXHAUSTED,
        message: `rate limit ${error.policy} reached; retry in ${error.retryAfterSeconds} s`,
        details: [...retryDetails(error), errorInfo("RATE_LIMITED", { policy: error.policy })]
      }
    case "LimiterUnavailable":
      return unavailable("rate limiting is unavailable; retry later", error)
    case "NoRoute":
      return {
        code: Code.FAILED_PRECONDITION,
        message: error.message,
        details: [errorInfo("NO_ROUTE", error.messageId !== undefined ? { message_id: error.messageId } : {})]
      }
    case "PolicyRejected":
      return {
        code: Code.FAILED_PRECONDITION,
        message: `${error.reason} (rule ${error.ruleId})`,
        details: [
          errorInfo(error.reason.toUpperCase(), { rule_id: error.ruleId, message_id: error.messageId }),
          ...(error.retryAfterSeconds !== undefined ? [retryInfo(error.retryAfterSeconds)] : [])
        ]
      }
    case "PolicyUnavailable":
      return unavailable("the contact policy cannot decide right now; retry later", error)
    case "StoreUnavailable":
      return unavailable("message storage is unavailable; retry later", error)
    case "IdempotencyKeyInFlight":
      return {
        code: Code.ABORTED,
        message: "a request with this idempotency_key is still being processed; retry once it has answered",
        details: [...retryDetails(error), errorInfo("IDEMPOTENCY_KEY_IN_FLIGHT", { idempotency_key: error.key })]
      }
    case "IdempotencyKeyReused":
      return badRequest([{ field: "idempotency_key", message: "this key was used with a different request; a key names one request only" }])
  }
}

const statusOfFailure = (failure: GrpcFailure): Status =>
  create(StatusSchema, {
    code: failure.code,
    message: failure.message,
    details: failure.details.map((d) => anyPack(d.desc, create(d.desc, d.value)))
  })

/** The same answer as a google.rpc.Status: one message's result in a batch. */
export const statusOf = (error: GrpcError): Status => statusOfFailure(failureOf(error))

/** What a failed call answers: the code, the message, and the google.rpc.Status in grpc-status-details-bin. */
export const serviceErrorOf = (error: GrpcError): ServerErrorResponse => {
  const failure = failureOf(error)
  const metadata = new Metadata()
  metadata.set("grpc-status-details-bin", Buffer.from(toBinary(StatusSchema, statusOfFailure(failure))))
  // A plain object, not an Error: no stack is captured for an answer that is data.
  return { name: "GrpcError", message: failure.message, code: failure.code, details: failure.message, metadata }
}

/** Outages are logged here (REST logs them in its handlers); the client only learns to retry. */
export const logOutage = (error: GrpcError): Effect.Effect<void> => {
  switch (error._tag) {
    case "StoreUnavailable":
      return Effect.logError("message storage unavailable").pipe(Effect.annotateLogs({ error: error.message, front: "grpc" }))
    case "PolicyUnavailable":
      return Effect.logWarning("contact policy unavailable").pipe(Effect.annotateLogs({ error: error.message, front: "grpc" }))
    default:
      return Effect.void
  }
}

/** A stream the server ends on purpose (it drains, or the stream reached its time limit): the client calls again. */
const endedByServer = (details: string): ServerErrorResponse => ({ name: "GrpcError", message: details, code: Code.UNAVAILABLE, details })

/** WatchMessage when the server drains. */
export const watchShuttingDown = endedByServer("the server is shutting down; watch again")

/** WatchMessage after `grpc.maxWatchSeconds`: watching again authenticates again, so a revoked token stops here. */
export const watchExpired = endedByServer("this watch reached its time limit (grpc.maxWatchSeconds); watch again")

/** A reflection stream when the server drains. */
export const reflectionShuttingDown = endedByServer("the server is shutting down; call again")

/** A unary call sent without a deadline that ran longer than the server's own bound (REST's request timeout). */
export const serverDeadline: ServerErrorResponse = {
  name: "GrpcError",
  message: "the call took longer than the server allows a call without a deadline",
  code: Code.DEADLINE_EXCEEDED,
  details: "the call took longer than the server allows a call without a deadline"
}
