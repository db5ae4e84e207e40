/**
 * The campaign queries a user pages through on a million recipients find their rows by an index (SQLite's query plan
 * read: a search, no full scan, no sort of the campaign's rows).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { migrate } from "../../src/layers/Migrations.ts"
import { sqliteLayer } from "../fixtures/Databases.ts"

const plan = (query: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql.unsafe<{ detail: string }>(`EXPLAIN QUERY PLAN ${query}`)
    return rows.map((r) => r.detail).join(" | ")
  })

describe("campaign indexes (SQLite plans)", () => {
  it.layer(Layer.effectDiscard(Effect.orDie(migrate)).pipe(Layer.provideMerge(sqliteLayer)))((it) => {
    it.effect("recipients of one state, paged by position (/recipients?state=excluded): the index gives them in order", () =>
      Effect.gen(function*() {
        // The shape of CampaignStats.outcomes with a state filter.
        const found = yield* plan(`SELECT r.pos FROM campaign_recipients r LEFT JOIN messages m ON m.id = r.message_id
          WHERE r.campaign_id = 'c' AND r.pos > 10 AND r.state = 'excluded' ORDER BY r.pos LIMIT 100`)
        expect(found).toMatch(/SEARCH r USING (COVERING )?INDEX campaign_recipients_state_pos \(campaign_id=\? AND state=\? AND pos>\?\)/)
        expect(found).not.toContain("TEMP B-TREE")
      }))
  })
})
