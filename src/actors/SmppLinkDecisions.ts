/**
 * What an SmppLink does about a submit_sm's answer, about the parts of a message left to retry, and whether it is down:
 * pure decisions (time a parameter, as in Aimd.ts and LinkHealth.ts) that the actor carries out — recording, retry
 * queueing, rebinding, feeding its LinkHealth and AIMD. The command_status classes are docs/smpp.md's table.
 */
import type { Result } from "effect"
import type { LinkResult } from "../routing/LinkHealth.ts"
import { classifyCommandStatus, CommandStatus, commandStatusName } from "../smpp/CommandStatus.ts"
import { normalizeMessageId } from "../smpp/MessageId.ts"
import type { SubmitError, SubmitResult } from "../smpp/Session.ts"

/** What the link's health hears of an answer: a result for LinkHealth.onResult, or a throttling answer. */
export type HealthSignal = LinkResult | "throttled"

export type SubmitDecision =
  | { readonly _tag: "Submitted"; readonly smscMessageId: string; readonly health: HealthSignal }
  /** Refused for good: the part (and message) fails, naming the status. */
  | { readonly _tag: "Failed"; readonly error: string; readonly health: HealthSignal; readonly commandStatus?: number }
  | {
    readonly _tag: "Retry"
    /** What the part is requeued with, and what a give-up reports. */
    readonly error: string
    /** The SMSC may have the part (no answer in time, or the connection dropped): a resend can duplicate it. */
    readonly unknownOutcome: boolean
    /** The session is not bound as it should be: rebind it, then retry. */
    readonly rebind: boolean
    readonly health: HealthSignal | undefined
    /** The AIMD cut asked for: ESME_RTHROTTLED halves the rate, ESME_RMSGQFUL quarters it. */
    readonly rate: "throttled" | "queueFull" | undefined
    /** The SMSC's answer, when it gave one (the message's timeline shows it). */
    readonly commandStatus?: number
  }

/** The error a part carries when no session could take it: it waits for a bind, and never gives up for it. */
export const notBound = "NotBound"

const retry = (
  error: string,
  options: Partial<Pick<Extract<SubmitDecision, { _tag: "Retry" }>, "unknownOutcome" | "rebind" | "health" | "rate" | "commandStatus">> = {}
): SubmitDecision => ({
  _tag: "Retry",
  error,
  unknownOutcome: options.unknownOutcome ?? false,
  rebind: options.rebind ?? false,
  health: options.health,
  rate: options.rate,
  ...(options.commandStatus !== undefined ? { commandStatus: options.commandStatus } : {})
})

/** What one submit_sm's answer (or its failure to come) means for the part, the link's health and its rate. */
export const decideSubmit = (result: Result.Result<SubmitResult, SubmitError>): SubmitDecision => {
  if (result._tag === "Success") {
    return { _tag: "Submitted", smscMessageId: normalizeMessageId(result.success.messageId), health: true }
  }
  const error = result.failure
  switch (error._tag) {
    case "SubmitRejected": {
      const status = error.commandStatus
      const kind = classifyCommandStatus(status)
      const name = commandStatusName(status)
      // A message the SMSC refuses says nothing about the link's health.
      if (kind === "permanent") {
        return { _tag: "Failed", error: `${name} (0x${status.toString(16).padStart(2, "0")})`, health: true, commandStatus: status }
      }
      if (kind === "throttled") return retry(name, { health: "throttled", rate: "throttled", commandStatus: status })
      if (status === CommandStatus.ESME_RMSGQFUL) return retry(name, { health: false, rate: "queueFull", commandStatus: status })
      return retry(name, { health: false, rebind: kind === "rebind", commandStatus: status })
    }
    case "SubmitTimeout":
    case "ConnectionLost":
      return retry(error._tag, { health: "timeout", unknownOutcome: true })
    case "NotBound":
    case "WindowTimeout":
      // Nothing was sent: no answer to learn from.
      return retry(error._tag)
  }
}

/** Backoff before a message's next try: 500 ms × 2ⁿ, at most 30 s. */
export const retryDelayMs = (attempt: number): number => Math.min(30_000, 500 * 2 ** Math.min(attempt, 6))

export type RetryDecision =
  | { readonly _tag: "GiveUp"; readonly error: string }
  | { readonly _tag: "Requeue"; readonly delayMs: number }

/**
 * Parts left to retry after try `attempt` (0 the first): requeued with backoff until `maxRetries` retries were made,
 * then failed with `lastError` (the last part's) — except parts waiting for a bind, which never give up here.
 */
export const afterAttempt = (attempt: number, maxRetries: number, lastError: string): RetryDecision =>
  attempt >= maxRetries && lastError !== notBound
    ? { _tag: "GiveUp", error: `gave up after ${attempt + 1} attempts: ${lastError}` }
    : { _tag: "Requeue", delayMs: retryDelayMs(attempt) }

/** A link that lost its bind this long ago hands its pool messages to the other members. */
export const failoverAfterMs = 1_000

/** Down: disabled, or unbound for `failoverAfterMs` or longer; its pool messages then go to the other members. */
export const isDown = (link: { readonly enabled: boolean; readonly unboundSince: number | undefined }, now: number): boolean =>
  !link.enabled || (link.unboundSince !== undefined && now - link.unboundSince >= failoverAfterMs)
