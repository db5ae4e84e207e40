/**
 * What an idempotency key remembers of a submission: a fingerprint of the request (the same key with another request
 * is refused) and the first answer (accepted, or refused with a recorded message: no route, a contact policy refusal
 * that no wait would change), replayed to every later request with that key. Outcomes a retry should run again
 * (validation, limits, outages, refusals that say when to retry) are not kept.
 */
import { Result, Schema } from "effect"
import { createHash } from "node:crypto"
import { NoRoute, PolicyRejected } from "../domain/Errors.ts"
import { SubmitAccepted } from "../domain/Message.ts"
import type { SubmitMessage } from "../domain/Message.ts"

/**
 * The request as the pipeline reads it, hashed: two requests are the same when their recipient, sender, text and
 * options are, however the client spelt the number or ordered its JSON keys — and whichever API carried them.
 */
export const fingerprint = (message: SubmitMessage): string =>
  createHash("sha256").update(JSON.stringify([
    message.to.msisdn,
    message.from.given,
    message.text,
    message.clientRef ?? null,
    message.validitySeconds ?? null,
    message.encoding ?? "auto",
    message.messageClass ?? null
  ])).digest("base64url")

const Answer = Schema.Union([
  Schema.TaggedStruct("accepted", { accepted: SubmitAccepted }),
  Schema.TaggedStruct("no_route", { message: Schema.String, messageId: Schema.optionalKey(Schema.String) }),
  Schema.TaggedStruct("policy", {
    reason: PolicyRejected.fields.reason,
    ruleId: Schema.String,
    messageId: Schema.String,
    retryAfterSeconds: Schema.optionalKey(Schema.Int)
  })
])
type Answer = typeof Answer.Type
const AnswerJson = Schema.fromJsonString(Answer)
const encodeAnswer = Schema.encodeSync(AnswerJson)
const decodeAnswer = Schema.decodeUnknownResult(AnswerJson)

/** The outcome of a first request worth replaying, as stored text; undefined when a retry should run it again. */
export const answerOf = (result: Result.Result<SubmitAccepted, { readonly _tag: string }>): string | undefined => {
  if (Result.isSuccess(result)) return encodeAnswer({ _tag: "accepted", accepted: result.success })
  const error = result.failure
  if (error instanceof NoRoute && error.messageId !== undefined) {
    return encodeAnswer({ _tag: "no_route", message: error.message, messageId: error.messageId })
  }
  // A refusal that says when to retry (quiet hours, a frequency cap) would contradict itself if replayed: not kept.
  if (error instanceof PolicyRejected && error.retryAfterSeconds === undefined) {
    const { messageId, reason, retryAfterSeconds, ruleId } = error
    return encodeAnswer({ _tag: "policy", reason, ruleId, messageId, ...(retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}) })
  }
  return undefined
}

/** A stored answer as the first request got it; a row that cannot be read is a defect (only this module writes them). */
export const replay = (stored: string): Result.Result<SubmitAccepted, NoRoute | PolicyRejected> => {
  const decoded = decodeAnswer(stored)
  if (Result.isFailure(decoded)) throw new Error(`unreadable idempotency answer: ${decoded.failure.message}`)
  const answer: Answer = decoded.success
  switch (answer._tag) {
    case "accepted":
      return Result.succeed(answer.accepted)
    case "no_route":
      return Result.fail(new NoRoute({ message: answer.message, ...(answer.messageId !== undefined ? { messageId: answer.messageId } : {}) }))
    case "policy": {
      const { _tag: _, ...fields } = answer
      return Result.fail(new PolicyRejected(fields))
    }
  }
}
