/**
 * Starting, pausing, resuming and cancelling a campaign: the stored state moves first (checked in the database, so
 * an impossible action is refused and a new actor honours the outcome), then the campaign's actor is told. Pause and
 * cancel answer only once the actor confirmed that nothing more will be submitted.
 */
import { Context, Duration, Effect, Layer } from "effect"
import { Campaign as CampaignEntity } from "../actors/CampaignProtocol.ts"
import type { CampaignView } from "../actors/CampaignProtocol.ts"
import type { Campaign, CampaignNotFound, InvalidTransition } from "../domain/Campaign.ts"
import type { StoreUnavailable } from "../domain/Errors.ts"
import { PolicyClock } from "../policy/PolicyClock.ts"
import { CampaignRecipients } from "../storage/CampaignRecipients.ts"
import { CampaignStore } from "../storage/CampaignStore.ts"
import { currentTraceparent } from "../observability/Tracing.ts"

export type ControlError = CampaignNotFound | InvalidTransition | StoreUnavailable

/** Who acts: an organisation's user (every id scoped by it), or the system (`orgId` undefined). */
export interface Actor {
  readonly orgId?: string | undefined
}

/** How long pause and cancel wait for the actor's confirmation (a failover can hold it for seconds). */
const confirmTimeout = Duration.seconds(20)

export class CampaignControl extends Context.Service<CampaignControl, {
  /** approved → running (or scheduled, when its start time is ahead). */
  readonly start: (id: string, actor?: Actor) => Effect.Effect<Campaign, ControlError>
  /** scheduled | running → paused; answers once nothing more is submitted. `userId`: the person who paused it. */
  readonly pause: (id: string, actor?: Actor & { readonly detail?: string; readonly userId?: string }) => Effect.Effect<Campaign, ControlError>
  /** paused → running (or scheduled); clears the pause reason. */
  readonly resume: (id: string, actor?: Actor) => Effect.Effect<Campaign, ControlError>
  /** any state but completed/cancelled → cancelled; answers once nothing more is submitted. */
  readonly cancel: (id: string, actor?: Actor) => Effect.Effect<Campaign, ControlError>
  /** The actor's live view (counts by state and reason, cursor). */
  readonly inspect: (id: string) => Effect.Effect<CampaignView, ControlError>
}>()("smsgw/pipeline/CampaignControl") {
  static readonly layer = Layer.effect(CampaignControl, Effect.suspend(() => make))
}

const make = Effect.gen(function*() {
  const store = yield* CampaignStore
  const recipients = yield* CampaignRecipients
  const clock = yield* PolicyClock
  const clientFor = yield* CampaignEntity.client

  /** Where a start or resume lands: scheduled while its start time is ahead, else running. */
  const target = (id: string) =>
    Effect.map(recipients.startTime(id), (t) => t !== undefined && t > clock.now() ? "scheduled" as const : "running" as const)

  /** Told, not awaited for long: the supervisor wakes it within a second anyway. */
  const wake = (id: string) =>
    clientFor(id).Wake().pipe(
      Effect.timeout(Duration.seconds(5)),
      Effect.catchCause((cause) => Effect.logDebug("campaign wake not answered yet").pipe(Effect.annotateLogs({ campaignId: id, cause: String(cause) })))
    )

  /** Waits for the actor's confirmation; past the timeout the stored state still stops it within a batch. */
  const confirm = (id: string, stop: "Pause" | "Cancel") =>
    clientFor(id)[stop]().pipe(
      Effect.timeout(confirmTimeout),
      Effect.catchCause((cause) =>
        Effect.logWarning("campaign actor did not confirm; its stored state stops it at its next batch").pipe(
          Effect.annotateLogs({ campaignId: id, cause: String(cause) })
        )
      )
    )

  const start = (id: string, actor: Actor = {}) =>
    Effect.gen(function*() {
      const to = yield* target(id)
      const now = Date.now()
      const trace = yield* currentTraceparent
      const patch = { ...(to === "running" ? { startedAt: now } : {}), ...(trace !== undefined ? { trace } : {}) }
      const campaign = yield* store.transition(id, "start", to, { orgId: actor.orgId, patch })
      yield* wake(id)
      return campaign
    })

  const pause = (id: string, actor: Actor & { readonly detail?: string; readonly userId?: string } = {}) =>
    Effect.gen(function*() {
      const campaign = yield* store.transition(id, "pause", "paused", {
        orgId: actor.orgId,
        patch: {
          pauseReason: { kind: "user", detail: actor.detail ?? "paused by a user", ...(actor.userId !== undefined ? { by: actor.userId } : {}) }
        }
      })
      yield* confirm(id, "Pause")
      return campaign
    })

  const resume = (id: string, actor: Actor = {}) =>
    Effect.gen(function*() {
      const to = yield* target(id)
      const campaign = yield* store.transition(id, "resume", to, { orgId: actor.orgId, patch: { pauseReason: null } })
      yield* wake(id)
      return campaign
    })

  const cancel = (id: string, actor: Actor = {}) =>
    Effect.gen(function*() {
      const campaign = yield* store.transition(id, "cancel", "cancelled", { orgId: actor.orgId, patch: { finishedAt: Date.now() } })
      // A campaign never started has no actor to stop: confirming would start one only to answer. The start transition
      // sets startedAt (running) in its own UPDATE, and a scheduled one has its startAt, so a started one always confirms.
      if (campaign.startedAt !== undefined || campaign.startAt !== undefined || campaign.audience > 0) yield* confirm(id, "Cancel")
      return campaign
    })

  const inspect = (id: string) => clientFor(id).Inspect().pipe(Effect.timeout(confirmTimeout), Effect.orDie)

  return CampaignControl.of({ start, pause, resume, cancel, inspect })
})
