/**
 * What a link and a virtual pool are: one schema each, for the configuration file (which bootstraps them), the admin
 * API (which changes them) and the rows they are stored in, and the one place a link's unset settings get defaults.
 */
import { Schema } from "effect"

/** Link, pool and rule ids: they appear in URLs, metric labels and stored targets (`pool:<id>`). */
export const Id = Schema.String.check(Schema.isPattern(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/))

const Port = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 65535 }))
const Positive = Schema.Int.check(Schema.isGreaterThan(0))

export const LinkConfig = Schema.Struct({
  id: Id,
  host: Schema.String.check(Schema.isMinLength(1)),
  port: Port,
  systemId: Schema.String.check(Schema.isMaxLength(15)),
  password: Schema.String.check(Schema.isMaxLength(8)),
  systemType: Schema.optionalKey(Schema.String.check(Schema.isMaxLength(12))),
  bindMode: Schema.optionalKey(Schema.Literals(["transceiver", "transmitter", "receiver", "pair"])),
  window: Schema.optionalKey(Positive),
  tps: Schema.optionalKey(Positive),
  tls: Schema.optionalKey(Schema.Boolean),
  tlsRejectUnauthorized: Schema.optionalKey(Schema.Boolean),
  registeredDelivery: Schema.optionalKey(Schema.Boolean),
  responseTimeoutMs: Schema.optionalKey(Positive),
  enquireLinkIntervalMs: Schema.optionalKey(Positive),
  reconnectMaxMs: Schema.optionalKey(Positive),
  udhReferenceBits: Schema.optionalKey(Schema.Literals([8, 16])),
  maxRetries: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 100 })))
})
export type LinkConfig = typeof LinkConfig.Type

/**
 * A link's settings with the defaults of those left unset. Stored links keep unset keys unset (the admin API shows
 * what was set, and a later change of a default reaches them), so the defaults are applied where they are used.
 */
export const linkDefaults = (link: LinkConfig) => ({
  bindMode: link.bindMode ?? "transceiver",
  window: link.window ?? 10,
  tps: link.tps ?? 100,
  tls: link.tls ?? false,
  registeredDelivery: link.registeredDelivery ?? true,
  responseTimeoutMs: link.responseTimeoutMs ?? 10_000,
  enquireLinkIntervalMs: link.enquireLinkIntervalMs ?? 30_000,
  reconnectMaxMs: link.reconnectMaxMs ?? 60_000,
  udhReferenceBits: link.udhReferenceBits ?? 8,
  maxRetries: link.maxRetries ?? 5
})

export const PoolMember = Schema.Struct({
  link: Id,
  /** The member's share relative to the others; absent: the link's TPS. */
  weight: Schema.optionalKey(Schema.Finite.check(Schema.isGreaterThan(0)))
})
export type PoolMember = typeof PoolMember.Type

const uniqueMembers = Schema.makeFilter((members: ReadonlyArray<PoolMember>) => {
  const seen = new Set<string>()
  const issues: Array<Schema.FilterIssue> = []
  for (const [i, member] of members.entries()) {
    if (seen.has(member.link)) issues.push({ path: [i, "link"], issue: `link "${member.link}" is listed twice` })
    seen.add(member.link)
  }
  return issues
})

/** A virtual pool: traffic for it is spread over its member links by weight. */
export const PoolConfig = Schema.Struct({
  id: Id,
  members: Schema.Array(PoolMember).check(Schema.isMinLength(1), uniqueMembers)
})
export type PoolConfig = typeof PoolConfig.Type
