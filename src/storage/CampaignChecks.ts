/**
 * What the campaign use cases read to check a campaign before it is stored or submitted: which of its lists exist in
 * the organisation, the first contacts that lack a required template variable, a contact's variables for a test
 * send, and whether the organisation has sent from a sender before. Reads `contact_lists` and `contacts` by the
 * table contract of migration 0012 (contacts in `pos` order, `vars` a JSON object with lower-case keys); scans page
 * through a list by `pos` (its index), so memory stays bounded whatever the audience size.
 */
import { Context, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import type { SqlError } from "effect/sql"
import { messageWithCauses, StoreUnavailable } from "../domain/Errors.ts"
import type { Template } from "../domain/Template.ts"
import { missingVariable } from "../domain/Template.ts"

/** A contact that lacks a variable the template requires. */
export interface MissingRow {
  readonly listId: string
  /** The contact's position in its list (upload order). */
  readonly position: number
  readonly msisdn: string
  readonly variable: string
}

export interface ContactSample {
  readonly msisdn: string
  readonly vars: Readonly<Record<string, string>>
}

type Int = number | string | bigint

const pageSize = 1_000

const failed = (error: SqlError.SqlError) => new StoreUnavailable({ message: messageWithCauses(error), cause: error })

/** `vars` as written by the lists' import: a JSON object of strings; anything else reads as no variables. */
const varsOf = (raw: string): Readonly<Record<string, string>> => {
  try {
    const parsed: unknown = JSON.parse(raw)
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return {}
    const out: Record<string, string> = {}
    for (const [k, v] of Object.entries(parsed)) if (v !== null && v !== undefined) out[k.toLowerCase()] = String(v)
    return out
  } catch {
    return {}
  }
}

export class CampaignChecks extends Context.Service<CampaignChecks, {
  /** The ids among `ids` that are lists of the organisation (others' lists are as absent as missing ones). */
  readonly existingLists: (orgId: string, ids: ReadonlyArray<string>) => Effect.Effect<ReadonlySet<string>, StoreUnavailable>
  /** Up to `limit` contacts of the lists, in list then position order, that lack a required variable. */
  readonly missingVariables: (
    lists: ReadonlyArray<string>,
    template: Template,
    limit: number
  ) => Effect.Effect<ReadonlyArray<MissingRow>, StoreUnavailable>
  /** The first contact of the first non-empty list. */
  readonly firstContact: (lists: ReadonlyArray<string>) => Effect.Effect<ContactSample | undefined, StoreUnavailable>
  /** Whether the organisation has a message from `sender`, or a campaign with it that went past approval. */
  readonly senderUsed: (orgId: string, sender: string, exceptCampaign: string) => Effect.Effect<boolean, StoreUnavailable>
}>()("smsgw/storage/CampaignChecks") {
  static readonly layer = Layer.effect(CampaignChecks, Effect.suspend(() => make))
}

const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  const existingLists = (orgId: string, ids: ReadonlyArray<string>) =>
    ids.length === 0
      ? Effect.succeed(new Set<string>())
      : sql<{ readonly id: string }>`SELECT id FROM contact_lists WHERE org_id = ${orgId} AND id IN ${sql.in(ids)}`.pipe(
        Effect.map((rows): ReadonlySet<string> => new Set(rows.map((r) => r.id))),
        Effect.mapError(failed)
      )

  const page = (listId: string, after: number) =>
    sql<{ readonly pos: Int; readonly msisdn: string; readonly vars: string }>`
      SELECT pos, msisdn, vars FROM contacts WHERE list_id = ${listId} AND pos > ${after}
      ORDER BY pos LIMIT ${pageSize}`.pipe(Effect.mapError(failed))

  const missingVariables = (lists: ReadonlyArray<string>, template: Template, limit: number) =>
    Effect.gen(function*() {
      const found: Array<MissingRow> = []
      if (template.required.length === 0) return found
      for (const listId of lists) {
        let after = -1
        while (found.length < limit) {
          const rows = yield* page(listId, after)
          for (const row of rows) {
            const variable = missingVariable(template, varsOf(row.vars))
            if (variable !== undefined && found.length < limit) {
              found.push({ listId, position: Number(row.pos), msisdn: row.msisdn, variable })
            }
          }
          const last = rows[rows.length - 1]
          if (rows.length < pageSize || last === undefined) break
          after = Number(last.pos)
        }
        if (found.length >= limit) break
      }
      return found
    })

  const firstContact = (lists: ReadonlyArray<string>) =>
    Effect.gen(function*() {
      for (const listId of lists) {
        const rows = yield* sql<{ readonly msisdn: string; readonly vars: string }>`
          SELECT msisdn, vars FROM contacts WHERE list_id = ${listId} ORDER BY pos LIMIT 1`.pipe(Effect.mapError(failed))
        const row = rows[0]
        if (row !== undefined) return { msisdn: row.msisdn, vars: varsOf(row.vars) } satisfies ContactSample
      }
      return undefined
    })

  // Campaigns first (small, by organisation); then one row of the organisation's messages from that sender. There is
  // no index on (org_id, from_addr): it would tax every submit for a check run once per campaign submission.
  const senderUsed = (orgId: string, sender: string, exceptCampaign: string) =>
    Effect.gen(function*() {
      const campaigns = yield* sql`SELECT id FROM campaigns WHERE org_id = ${orgId} AND sender = ${sender}
        AND id <> ${exceptCampaign} AND state IN ('approved', 'scheduled', 'running', 'paused', 'completed') LIMIT 1`
      if (campaigns.length > 0) return true
      const messages = yield* sql`SELECT id FROM messages WHERE org_id = ${orgId} AND from_addr = ${sender} LIMIT 1`
      return messages.length > 0
    }).pipe(Effect.mapError(failed))

  return CampaignChecks.of({ existingLists, missingVariables, firstContact, senderUsed })
})
