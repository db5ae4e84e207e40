/**
 * Every feature's migrations as one ordered list, run once where the process is composed (before any store starts).
 * Ids are shared by all features in one table (smsgw_migrations) and databases have applied them: never renumber.
 */
import { Migrator } from "effect/sql"
import { registryMigrations } from "../actors/RegistryMigrations.ts"
import { accountMigrations } from "../auth/AccountMigrations.ts"
import { callbackMigrations } from "../storage/CallbackMigrations.ts"
import { campaignMigrations } from "../storage/CampaignMigrations.ts"
import { dashboardMigrations } from "../storage/DashboardMigrations.ts"
import { blacklistMigrations } from "../policy/BlacklistMigrations.ts"
import { policyMigrations } from "../policy/PolicyMigrations.ts"
import { routingMigrations } from "../routing/RoutingMigrations.ts"
import { inboundMigrations } from "../storage/InboundMigrations.ts"
import { messageMigrations } from "../storage/MessageMigrations.ts"

/**
 * The Migrator runs only ids above the highest one applied, so the features' migrations cannot each run on their own
 * against the shared table (one feature's 0010 would hide another's 0007 on a new database), and some reach into
 * another feature's tables (0006_policies adds messages.rule_id): they run together, here, before any store starts.
 */
export const migrations = Migrator.fromRecord({
  ...messageMigrations,
  ...accountMigrations,
  ...routingMigrations,
  ...registryMigrations,
  ...blacklistMigrations,
  ...policyMigrations,
  ...campaignMigrations,
  ...dashboardMigrations,
  ...callbackMigrations,
  ...inboundMigrations
})

/** Runs what the database has not applied yet; each migration runs once per database. */
export const migrate = Migrator.make({})({ loader: migrations, table: "smsgw_migrations" })
