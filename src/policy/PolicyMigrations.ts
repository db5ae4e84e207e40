/**
 * SQL migrations of the contact policy's versioned documents.
 */
import { Effect } from "effect"
import { SqlClient } from "effect/sql"

/**
 * The contact policy: every version of the policy document is kept (`PUT /v1/policies` adds one; the highest is
 * live), so a change can be read back and undone. A rejected message names the rule that refused it (`rule_id`).
 */
const initPolicies = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const big = sql.onDialectOrElse({ pg: () => sql.literal("BIGINT"), orElse: () => sql.literal("INTEGER") })
  yield* sql`CREATE TABLE IF NOT EXISTS policy_versions (
    version INTEGER PRIMARY KEY,
    document TEXT NOT NULL,
    created_at ${big} NOT NULL,
    created_by TEXT
  )`
  yield* sql`ALTER TABLE messages ADD COLUMN rule_id TEXT`
})

/**
 * What the operators' screens read: a version's `note` (what the change is for, given with the PUT), and the
 * contact-policy decisions per rule and minute, summed over every node (each node adds its counts every second:
 * see RuleCounts.ts). `rule_id` is empty for the admissions of messages no rule looked at.
 */
const versionNotesAndCounts = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const big = sql.onDialectOrElse({ pg: () => sql.literal("BIGINT"), orElse: () => sql.literal("INTEGER") })
  yield* sql`ALTER TABLE policy_versions ADD COLUMN note TEXT`
  yield* sql`CREATE TABLE IF NOT EXISTS policy_rule_counts (
    minute ${big} NOT NULL,
    rule_id TEXT NOT NULL,
    result TEXT NOT NULL,
    count ${big} NOT NULL,
    PRIMARY KEY (minute, rule_id, result)
  )`
})

/** Merged into the store's Migrator record after "0005_blacklists" (0016 after the campaigns' 0013). */
export const policyMigrations: Record<string, Effect.Effect<void, unknown, SqlClient.SqlClient>> = {
  "0006_policies": initPolicies,
  "0016_policy_versions": versionNotesAndCounts
}
