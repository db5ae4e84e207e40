/**
 * The Campaign entity's protocol: one entity per started campaign (its id), which sends it from its persisted cursor.
 * Wake is idempotent (the supervisor sends it every second); Pause and Cancel answer only once nothing more will be submitted.
 * The implementation needs the submit pipeline, so it lives in src/pipeline/CampaignRunner.ts.
 */
import { Schema } from "effect"
import { Entity } from "effect/cluster"
import { Rpc } from "effect/rpc"

export const CampaignView = Schema.Struct({
  campaignId: Schema.String,
  /** The stored state as the actor last read it. */
  state: Schema.String,
  /** The send loop runs in this actor now. */
  sending: Schema.Boolean,
  cursor: Schema.Int,
  audience: Schema.Int,
  /** Recipients by state, then by state and reason ("refused:frequency_cap"). */
  counts: Schema.Record(Schema.String, Schema.Int),
  /** Found already accepted when a new actor took over (a crash between submit and record): marked, not sent again. */
  recoveredSubmitted: Schema.Int,
  /** Answers of the rate limiter this actor waited on (not refusals). */
  rateLimitedWaits: Schema.Int,
  lastError: Schema.optionalKey(Schema.String)
})
export type CampaignView = typeof CampaignView.Type

/** Starts the send loop if the campaign is scheduled or running and it is not running already. */
export const Wake = Rpc.make("Wake")

/**
 * Pause and Cancel stop the send loop: each answers after the batch in flight (if any) is done, and nothing is
 * submitted after the answer. The caller has stored the new state (paused, cancelled) before, so a new actor honours
 * it too; the two differ only in what the caller stored.
 */
export const Pause = Rpc.make("Pause")
export const Cancel = Rpc.make("Cancel")

export const Inspect = Rpc.make("Inspect", { success: CampaignView })

export const Campaign = Entity.make("Campaign", [Wake, Pause, Cancel, Inspect])
