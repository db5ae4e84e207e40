/**
 * Whether an organisation has sent from a sender before: the content check flags a campaign whose sender is new to
 * its organisation (a hijacked account's first move is often a new sender name).
 */
import { Context, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { messageWithCauses, StoreUnavailable } from "../domain/Errors.ts"

export class SenderUse extends Context.Service<SenderUse, {
  /** A message of the organisation from `sender`, or another campaign with it that went past approval. */
  readonly usedBefore: (orgId: string, sender: string, exceptCampaign: string) => Effect.Effect<boolean, StoreUnavailable>
}>()("smsgw/storage/SenderUse") {
  static readonly layer = Layer.effect(SenderUse, Effect.suspend(() => make))
}

const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  // Campaigns first (few, by organisation), then one row of the organisation's messages from that sender. There is no
  // index on messages (org_id, from_addr): it would tax every submit for a check run once per campaign submission.
  const usedBefore = (orgId: string, sender: string, exceptCampaign: string) =>
    Effect.gen(function*() {
      const campaigns = yield* sql`SELECT id FROM campaigns WHERE org_id = ${orgId} AND sender = ${sender}
        AND id <> ${exceptCampaign} AND state IN ('approved', 'scheduled', 'running', 'paused', 'completed') LIMIT 1`
      if (campaigns.length > 0) return true
      const messages = yield* sql`SELECT id FROM messages WHERE org_id = ${orgId} AND from_addr = ${sender} LIMIT 1`
      return messages.length > 0
    }).pipe(Effect.mapError((error) => new StoreUnavailable({ message: messageWithCauses(error), cause: error })))
  return SenderUse.of({ usedBefore })
})
