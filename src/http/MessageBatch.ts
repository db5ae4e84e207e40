/**
 * POST /v1/messages/batch as data: the request (up to 1,000 messages, each with its own idempotency key), how one
 * message of it is read (a bad number refuses that message only), and the answer (each message's id or its problem).
 */
import { Result, Schema } from "effect"
import { InvalidField } from "../domain/Errors.ts"
import { fieldIssues } from "../domain/FieldIssues.ts"
import { IdempotencyKey, maxBatchMessages, SubmitAccepted, SubmitMessage } from "../domain/Message.ts"
import { RecipientFromString, SenderFromString } from "../domain/Msisdn.ts"
import type { SubmitItem, SubmitResult } from "../pipeline/Gateway.ts"
import {
  IdempotencyInFlightProblem,
  IdempotencyKeyReusedProblem,
  NoRouteProblem,
  PolicyRejectedProblem,
  TooManyRequestsProblem,
  UnavailableProblem,
  ValidationProblem
} from "./Problems.ts"
import { submitProblem } from "./SubmitProblems.ts"

/** A batch's body at most: 1,000 messages of a few hundred bytes each fit well; long texts need smaller batches. */
export const maxBatchBodyBytes = 4 * 1024 * 1024

/**
 * One message of a batch as sent. Its addresses are read one message at a time, so a bad number refuses that message
 * only; a body of the wrong shape (an unknown key, a text too long, a wrong type) is refused whole, nothing sent.
 */
export const BatchMessage = Schema.Struct({
  ...SubmitMessage.fields,
  to: Schema.String.annotate({ description: "Recipient in E.164, e.g. +4915112345678 (checked per message)" }),
  from: Schema.String.annotate({ description: "Sender: alphanumeric (1–11), short code or number (checked per message)" }),
  idempotencyKey: Schema.optionalKey(IdempotencyKey)
})
export type BatchMessage = typeof BatchMessage.Type

export const SubmitBatch = Schema.Struct({
  messages: Schema.Array(BatchMessage).check(Schema.isMinLength(1), Schema.isMaxLength(maxBatchMessages)).annotate({
    description: `1 to ${maxBatchMessages} messages; each is decided on its own (limits and contact policy apply per message)`
  })
})

const Addresses = Schema.Struct({ to: RecipientFromString, from: SenderFromString })
const decodeAddresses = Schema.decodeUnknownResult(Addresses, { errors: "all" })

/** A batch message as the pipeline takes it, or why it cannot be (the field named as in the message: `to`, `from`). */
export const batchItem = (message: BatchMessage): Result.Result<SubmitItem, InvalidField> => {
  const addresses = decodeAddresses({ to: message.to, from: message.from })
  if (Result.isFailure(addresses)) {
    // The first bad address names the field (a batch's answer prefixes it with the message's place).
    const issue = fieldIssues(addresses.failure.issue)[0]
    return Result.fail(new InvalidField({ field: issue?.field ?? "to", message: issue?.message ?? "not a valid address" }))
  }
  const { from: _from, idempotencyKey, to: _to, ...rest } = message
  return Result.succeed({
    message: { ...rest, to: addresses.success.to, from: addresses.success.from },
    ...(idempotencyKey !== undefined ? { idempotencyKey } : {})
  })
}

export const BatchProblem = Schema.Union([
  ValidationProblem,
  NoRouteProblem,
  PolicyRejectedProblem,
  TooManyRequestsProblem,
  UnavailableProblem,
  IdempotencyInFlightProblem,
  IdempotencyKeyReusedProblem
])

export const BatchMessageResult = Schema.Struct({
  index: Schema.Int.annotate({ description: "The message's position in the request, from 0" }),
  status: Schema.Literals(["accepted", "refused"]),
  id: Schema.optionalKey(Schema.String.annotate({
    description: "The accepted message's id (for a refusal, see problem.messageId when the refusal was recorded)"
  })),
  segments: Schema.optionalKey(Schema.Int),
  encoding: Schema.optionalKey(SubmitAccepted.fields.encoding),
  duplicate: Schema.optionalKey(Schema.Boolean.annotate({ description: "A dedup rule answered with the first message's id" })),
  replayed: Schema.optionalKey(Schema.Boolean.annotate({ description: "The answer of an earlier request with this idempotency key" })),
  problem: Schema.optionalKey(BatchProblem.annotate({ description: "Why this message was refused, as a single submit answers it" }))
})
export type BatchMessageResult = typeof BatchMessageResult.Type

export const BatchAccepted = Schema.Struct({
  accepted: Schema.Int.annotate({ description: "Messages accepted (stored, to be sent), replays and dedup answers included" }),
  refused: Schema.Int,
  results: Schema.Array(BatchMessageResult)
})
export type BatchAccepted = typeof BatchAccepted.Type

/** One message's answer in the batch's body. */
export const batchResult = (index: number, result: SubmitResult): BatchMessageResult => {
  if (Result.isFailure(result)) {
    return { index, status: "refused", problem: submitProblem(result.failure, `messages[${index}].`) }
  }
  const { accepted, replayed } = result.success
  return {
    index,
    status: "accepted",
    id: accepted.id,
    segments: accepted.segments,
    encoding: accepted.encoding,
    ...(accepted.duplicate === true ? { duplicate: true } : {}),
    ...(replayed === true ? { replayed: true } : {})
  }
}
