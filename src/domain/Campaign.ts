/**
 * Campaigns as data: the specification a user writes, the states and the transitions between them, the state of each
 * recipient, and the statistics. The one place that says which transition is possible from which state.
 */
import { Schema } from "effect"
import { maxTextLength, RequestedEncoding } from "./Message.ts"
import { SenderFromString } from "./Msisdn.ts"
import { MessageClass } from "./Policy.ts"

export const CampaignState = Schema.Literals([
  "draft",
  "pending_approval",
  "approved",
  "rejected",
  "scheduled",
  "running",
  "paused",
  "completed",
  "cancelled"
])
export type CampaignState = typeof CampaignState.Type

/** What a user (or the system) asks of a campaign; each is allowed from some states only. */
export type CampaignAction =
  | "edit"
  | "submit"
  | "approve"
  | "reject"
  | "start"
  | "pause"
  | "resume"
  | "cancel"
  | "complete"
  | "test"
  /** The system's: a scheduled campaign whose start time has come begins to send. */
  | "run"

/** Where each action may start. `start` and `resume` end in `scheduled` or `running` depending on the start time. */
export const allowedFrom: Record<CampaignAction, ReadonlyArray<CampaignState>> = {
  edit: ["draft", "rejected"],
  submit: ["draft", "rejected"],
  approve: ["pending_approval"],
  reject: ["pending_approval"],
  start: ["approved"],
  pause: ["scheduled", "running"],
  resume: ["paused"],
  cancel: ["draft", "pending_approval", "approved", "rejected", "scheduled", "running", "paused"],
  complete: ["running"],
  run: ["scheduled"],
  test: ["draft", "rejected", "pending_approval", "approved"]
}

export const canDo = (action: CampaignAction, state: CampaignState): boolean => allowedFrom[action].includes(state)

/** States in which the campaign's actor submits or waits to (the supervisor keeps their actors alive). */
export const activeStates: ReadonlyArray<CampaignState> = ["scheduled", "running"]

/**
 * States in which a campaign still needs its lists: deleting one of them is refused. Drafts and rejected campaigns
 * are not among them: they are edited before anything is sent, and submitting checks their lists again.
 */
export const listHoldingStates: ReadonlyArray<CampaignState> = ["pending_approval", "approved", "scheduled", "running", "paused"]

export const isFinalState = (state: CampaignState): boolean => state === "completed" || state === "cancelled"

const ClockTime = Schema.String.check(Schema.isPattern(/^([01]\d|2[0-3]):[0-5]\d$/))
const Id = Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(64))

/** Local wall-clock time in the recipient's country, "HH:MM"; `from` after `to` crosses midnight. */
export const SendWindow = Schema.Struct({ from: ClockTime, to: ClockTime })
export type SendWindow = typeof SendWindow.Type

/** A local date-time (no offset, "2026-12-24T09:00") read in an IANA time zone. */
export const StartAt = Schema.Struct({
  at: Schema.String.check(Schema.isPattern(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/)).annotate({
    description: "local date and time, e.g. 2026-12-24T09:00"
  }),
  timeZone: Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(64)).annotate({
    description: "IANA time zone, e.g. Europe/Berlin"
  })
})
export type StartAt = typeof StartAt.Type

/** Send the first `count` messages (or `percent` of the audience), then hold until someone resumes. One of the two. */
export const Canary = Schema.Struct({
  count: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1_000_000 }))),
  percent: Schema.optionalKey(Schema.Number.check(Schema.isBetween({ minimum: 0.01, maximum: 99 })))
}).check(Schema.makeFilter((c: { readonly count?: number; readonly percent?: number }) =>
  (c.count === undefined) !== (c.percent === undefined) || "give count or percent (one of them)"
))
export type Canary = typeof Canary.Type

/** Pause by itself when, over the last minute, failures or refusals exceed a share of what was attempted. */
export const AutoPause = Schema.Struct({
  failureRatio: Schema.optionalKey(Schema.Number.check(Schema.isBetween({ minimum: 0, maximum: 1 }))),
  refusalRatio: Schema.optionalKey(Schema.Number.check(Schema.isBetween({ minimum: 0, maximum: 1 }))),
  /** Attempts in the minute before a ratio is judged (default 20): three failures of the first five say little. */
  minAttempts: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 100_000 })))
})
export type AutoPause = typeof AutoPause.Type

/** What a user writes to create a campaign (and, all fields optional, to edit one). */
export const CampaignSpecFields = {
  name: Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(200)),
  /** The sending identity: its limits and message class apply. */
  appId: Id,
  sender: SenderFromString,
  template: Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(maxTextLength)),
  lists: Schema.Array(Id).check(Schema.isMinLength(1), Schema.isMaxLength(20)),
  messageClass: Schema.optionalKey(MessageClass),
  encoding: Schema.optionalKey(RequestedEncoding),
  /** Absent: the campaign starts when someone starts it. */
  startAt: Schema.optionalKey(StartAt),
  sendWindow: Schema.optionalKey(SendWindow),
  /** Messages per second; never above the app's own per-second limit. */
  throttle: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 10_000 }))),
  validitySeconds: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 60, maximum: 7 * 24 * 3600 }))),
  canary: Schema.optionalKey(Canary),
  autoPause: Schema.optionalKey(AutoPause)
}
export const CampaignSpec = Schema.Struct(CampaignSpecFields)
export type CampaignSpec = typeof CampaignSpec.Type

/** The throttle of a campaign that does not set one. */
export const defaultThrottle = 10

/** Why a campaign is paused: a person, its canary, or its automatic pause (with the ratio that tripped it). */
export interface PauseReason {
  readonly kind: "user" | "canary" | "auto"
  readonly detail: string
  /** A person's pause: who paused it (a member does not resume what a moderator paused). */
  readonly by?: string
}

/** A stored campaign. Times are epoch milliseconds. */
export interface Campaign {
  readonly id: string
  readonly orgId: string
  readonly name: string
  readonly appId: string
  /** As given; parsed again (it was valid) when the campaign sends. */
  readonly sender: string
  readonly template: string
  readonly lists: ReadonlyArray<string>
  readonly messageClass: MessageClass
  readonly encoding: RequestedEncoding
  readonly startAt: StartAt | undefined
  readonly sendWindow: SendWindow | undefined
  readonly throttle: number
  readonly validitySeconds: number | undefined
  readonly canary: Canary | undefined
  readonly autoPause: AutoPause | undefined
  readonly state: CampaignState
  readonly pauseReason: PauseReason | undefined
  /** The moderator's reason, shown to the creator. */
  readonly rejectionReason: string | undefined
  /** Content check findings shown to the moderator. */
  readonly flags: ReadonlyArray<string>
  readonly createdBy: string
  /** Who else changed its fields since it was created: none of them approves it (nor its creator, nor its submitter). */
  readonly editors: ReadonlyArray<string>
  readonly submittedBy: string | undefined
  readonly approvedBy: string | undefined
  readonly createdAt: number
  readonly updatedAt: number
  readonly submittedAt: number | undefined
  readonly startedAt: number | undefined
  readonly finishedAt: number | undefined
  /** Recipients copied from the lists when the campaign first starts (deduplicated); 0 before. */
  readonly audience: number
  /** The W3C traceparent of the request that started it, when traced: each batch's span links to it. */
  readonly trace?: string | undefined
}

/**
 * Each recipient of a started campaign: `pending` until its turn; `deferred` to `next_at` by the send window or quiet
 * hours; `submitted` (its message accepted, `message_id` set); `excluded` (opt-out, blacklist), `refused` (cap, dedup:
 * not retried), `failed` (no route, invalid text), each with its reason and rule.
 */
export const RecipientState = Schema.Literals(["pending", "deferred", "submitted", "excluded", "refused", "failed"])
export type RecipientState = typeof RecipientState.Type

/** Moderation per organisation: which campaigns need approval. */
export const ApprovalRule = Schema.Literals(["all", "promotional", "none", "members"])
export type ApprovalRule = typeof ApprovalRule.Type

/** The default: campaigns created by a `member` need approval; moderators, admins and owners start their own. */
export const defaultApprovalRule: ApprovalRule = "members"

/** Moderation settings of an organisation: which campaigns need approval, and what the content check flags. */
export interface ModerationSettings {
  readonly approval: ApprovalRule
  /** Words and phrases a moderator wants to see flagged (case-insensitive). */
  readonly keywords: ReadonlyArray<string>
  /** Domains (or URL prefixes) flagged when a campaign's text links to them. */
  readonly urls: ReadonlyArray<string>
}

export const defaultModerationSettings: ModerationSettings = { approval: defaultApprovalRule, keywords: [], urls: [] }

export class CampaignNotFound extends Schema.TaggedError<CampaignNotFound>()("CampaignNotFound", {
  id: Schema.String
}) {}

/** The action is not possible in the campaign's current state (HTTP 409). */
export class InvalidTransition extends Schema.TaggedError<InvalidTransition>()("InvalidTransition", {
  id: Schema.String,
  action: Schema.String,
  state: CampaignState
}) {}
