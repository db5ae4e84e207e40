/**
 * The counters behind the live dashboard and a campaign's health: per second (kept 15 minutes) and per minute (kept
 * 25 hours), by scope — an organisation (`o:`), a campaign (`c:`), a link (`l:`) — in two SQL tables that every node
 * adds to. Invariants:
 * - Counting is a map increment, synchronous, on the caller's fiber: the pipeline counts accepts and refusals where it
 *   decides them, the message store's writer counts status changes once they are committed (`MessageChanges`).
 * - Once a second a fiber adds this node's counts to SQL in one transaction, rows in key order (nodes upserting the
 *   same rows lock them in the same order: no deadlock). Reads therefore see the whole cluster, about two seconds late.
 * - A failed write keeps its counts for the next one (rows past their retention are dropped); a node that dies loses
 *   at most its last second of counts, never a message.
 * - A read is one index range per scope whatever the traffic: rows grow with distinct metrics and keys (statuses,
 *   reasons, links, receipt-time buckets), not with messages.
 */
import { Context, Effect, Layer, Schedule } from "effect"
import { SqlClient } from "effect/sql"
import type { SqlError } from "effect/sql"
import { messageWithCauses, StoreUnavailable } from "../domain/Errors.ts"
import { MessageChanges } from "./MessageStore.ts"
import type { MessageChange } from "./MessageStore.ts"

export type Table = "seconds" | "minutes"

const tableName: Record<Table, string> = { seconds: "dashboard_seconds", minutes: "dashboard_minutes" }

/** How long each table keeps its rows. */
export const retentionMs: Record<Table, number> = { seconds: 15 * 60_000, minutes: 25 * 3_600_000 }

export const bucketMs: Record<Table, number> = { seconds: 1000, minutes: 60_000 }

export const orgScope = (orgId: string) => `o:${orgId}`
export const campaignScope = (campaignId: string) => `c:${campaignId}`
export const linkScope = (linkId: string) => `l:${linkId}`

/**
 * What is counted. Keys, by scope (parts joined by `|`; link and rule ids cannot hold one, an error text comes last):
 * - accepted: org `""`; campaign `""` per second, the route target (link id or `pool:<id>`) per minute.
 * - refused: `reason|ruleId` (rate limits and no route have no rule) per minute, `""` per second.
 * - submitted, delivered, undelivered, expired, failed: `""`; a campaign's by link.
 * - error: `kind|status` (kind failed, retried, undelivered or expired); a campaign's `link|kind|status`.
 * - receipt: the time-to-receipt bucket (`receiptBucket`) of each delivered message; a campaign's `link|bucket`.
 */
export const Metrics = {
  accepted: "accepted",
  refused: "refused",
  submitted: "submitted",
  delivered: "delivered",
  undelivered: "undelivered",
  expired: "expired",
  failed: "failed",
  error: "error",
  receipt: "receipt"
} as const

export type ErrorKind = "failed" | "retried" | "undelivered" | "expired"

export interface CountRow {
  readonly scope: string
  readonly at: number
  readonly metric: string
  readonly key: string
  readonly n: number
}

/** Time-to-receipt buckets: 4 per doubling from 10 ms, so a bucket's middle is within 9 % of any time in it. */
export const receiptBucket = (ms: number): number => ms <= 10 ? 0 : Math.min(120, Math.ceil(4 * Math.log2(ms / 10)))

/** A bucket's representative time: the geometric middle of its bounds. */
export const bucketValueMs = (bucket: number): number => Math.round(10 * 2 ** ((bucket - 0.5) / 4))

/** The q-quantile (nearest rank) of counts per bucket, as its bucket's representative time; undefined without counts. */
export const quantileMs = (buckets: ReadonlyMap<number, number>, q: number): number | undefined => {
  const sorted = [...buckets].filter(([, n]) => n > 0).sort(([a], [b]) => a - b)
  const total = sorted.reduce((sum, [, n]) => sum + n, 0)
  if (total === 0) return undefined
  const rank = Math.max(1, Math.ceil(q * total))
  let seen = 0
  for (const [bucket, n] of sorted) {
    seen += n
    if (seen >= rank) return bucketValueMs(bucket)
  }
  return undefined
}

/**
 * The SMPP status an error names: the command status (`ESME_RTHROTTLED`, or `0x9A` for one outside the table) of a
 * refusal or a give-up, a receipt's `err 001`, else the error's own words (`SubmitTimeout`, `no receipt`), at most 64
 * characters.
 */
export const errorStatus = (error: string | undefined, fallback: string): string => {
  if (error === undefined || error.trim() === "") return fallback
  const esme = /ESME_[A-Z_]+/.exec(error)
  if (esme !== null) return esme[0]
  const text = error.replace(/^gave up after \d+ attempts: /, "")
  const code = /^0x[0-9A-Fa-f]+/.exec(text)
  if (code !== null) return code[0]
  return text.replace(/ \(.*$/, "").slice(0, 64)
}

const errorKindOf: Partial<Record<MessageChange["status"], ErrorKind>> = {
  failed: "failed",
  retried: "retried",
  undelivered: "undelivered",
  expired: "expired"
}

const fallbackStatus: Record<ErrorKind, string> = {
  failed: "unknown",
  retried: "unknown",
  undelivered: "UNDELIV",
  expired: "EXPIRED"
}

export interface AcceptedCount {
  readonly orgId: string
  readonly campaignId: string | undefined
  /** Where it was routed: a link id or `pool:<id>`. */
  readonly target: string
  readonly at: number
}

export interface RefusedCount {
  readonly orgId: string
  readonly campaignId: string | undefined
  /** As a refused message records it: `blacklisted`, `frequency_cap`, `rate_limited (app)`, `no_route`, … */
  readonly reason: string
  readonly ruleId: string | undefined
  readonly at: number
}

export interface DashboardStatsOptions {
  /** How often this node adds its counts to SQL. */
  readonly flushIntervalMs?: number
}

export class DashboardStats extends Context.Service<DashboardStats, {
  readonly accepted: (count: AcceptedCount) => void
  readonly refused: (count: RefusedCount) => void
  readonly changed: (changes: ReadonlyArray<MessageChange>) => void
  /** The rows of these scopes from `from` (epoch ms, inclusive) on; every node's counts summed. */
  readonly read: (table: Table, scopes: ReadonlyArray<string>, from: number) => Effect.Effect<ReadonlyArray<CountRow>, StoreUnavailable>
  /** Adds this node's counts to SQL now (also done every `flushIntervalMs`, and when the layer closes). */
  readonly flush: Effect.Effect<void>
}>()("smsgw/storage/DashboardStats") {
  static readonly layerWith = (options: DashboardStatsOptions) => Layer.effect(DashboardStats, Effect.suspend(() => make(options)))
  /** One layer value, so the store and the pipeline share one set of counters. */
  static readonly layer = DashboardStats.layerWith({})
}

const failed = (error: SqlError.SqlError) => new StoreUnavailable({ message: messageWithCauses(error), cause: error })

/** One (metric, key)'s count in a second of a scope. */
interface Cell {
  readonly metric: string
  readonly key: string
  n: number
}

/** A second's counts: scope → metric and key → count. */
type Second = Map<string, Map<string, Cell>>

/** The key a count keeps per second, or undefined when only minutes keep it (the rates need no more). */
const secondsKey = (metric: string, key: string): string | undefined => {
  switch (metric) {
    case Metrics.accepted:
    case Metrics.refused:
      return ""
    case Metrics.submitted:
    case Metrics.delivered:
      return key
    default:
      return undefined
  }
}

const make = (options: DashboardStatsOptions) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const flushIntervalMs = options.flushIntervalMs ?? 1000
    // Counted per second only (a map lookup per level, the metric's own string as the key when it has none); the
    // minutes are summed from the seconds when written, so each count costs one increment.
    let pending = new Map<number, Second>()

    const add = (scope: string, at: number, metric: string, key: string, n = 1) => {
      const start = at - (at % 1000)
      let second = pending.get(start)
      if (second === undefined) pending.set(start, second = new Map())
      let cells = second.get(scope)
      if (cells === undefined) second.set(scope, cells = new Map())
      const id = key === "" ? metric : `${metric}\u0000${key}`
      const cell = cells.get(id)
      if (cell === undefined) cells.set(id, { metric, key, n })
      else cell.n += n
    }

    const accepted = (c: AcceptedCount) => {
      add(orgScope(c.orgId), c.at, Metrics.accepted, "")
      if (c.campaignId !== undefined) add(campaignScope(c.campaignId), c.at, Metrics.accepted, c.target)
    }

    const refused = (c: RefusedCount) => {
      const key = `${c.reason}|${c.ruleId ?? ""}`
      add(orgScope(c.orgId), c.at, Metrics.refused, key)
      if (c.campaignId !== undefined) add(campaignScope(c.campaignId), c.at, Metrics.refused, key)
    }

    const changedOne = (c: MessageChange) => {
      const org = orgScope(c.orgId)
      const link = c.linkId ?? ""
      const campaign = c.campaignId === undefined ? undefined : campaignScope(c.campaignId)
      const links = c.linkId === undefined ? undefined : linkScope(c.linkId)
      switch (c.status) {
        case "submitted":
        case "delivered": {
          add(org, c.at, c.status, "")
          if (campaign !== undefined) add(campaign, c.at, c.status, link)
          if (links !== undefined) add(links, c.at, c.status, "")
          if (c.status === "delivered") {
            const bucket = String(receiptBucket(c.at - c.createdAt))
            add(org, c.at, Metrics.receipt, bucket)
            if (campaign !== undefined) add(campaign, c.at, Metrics.receipt, `${link}|${bucket}`)
            if (links !== undefined) add(links, c.at, Metrics.receipt, bucket)
          }
          return
        }
        case "undelivered":
        case "expired":
        case "failed":
        case "retried": {
          const kind = errorKindOf[c.status] ?? "failed"
          const error = `${kind}|${errorStatus(c.error, fallbackStatus[kind])}`
          if (c.status !== "retried") {
            add(org, c.at, c.status, "")
            if (campaign !== undefined) add(campaign, c.at, c.status, link)
            if (links !== undefined) add(links, c.at, c.status, "")
          }
          add(org, c.at, Metrics.error, error)
          if (campaign !== undefined) add(campaign, c.at, Metrics.error, `${link}|${error}`)
          if (links !== undefined) add(links, c.at, Metrics.error, error)
          return
        }
        default:
          return
      }
    }

    const changed = (changes: ReadonlyArray<MessageChange>) => {
      for (const c of changes) changedOne(c)
    }

    const upsert = (table: Table, rows: ReadonlyArray<CountRow>) =>
      Effect.forEach(chunks(rows, 400), (chunk) => {
        const [first, ...rest] = chunk.map((r) => ({ scope: r.scope, at: r.at, metric: r.metric, key: r.key, n: r.n }))
        if (first === undefined) return Effect.void
        const name = sql(tableName[table])
        return sql`INSERT INTO ${name} ${sql.insert([first, ...rest])}
          ON CONFLICT (scope, at, metric, key) DO UPDATE SET n = ${name}.n + excluded.n`.pipe(Effect.asVoid)
      }, { discard: true })

    let failing = false
    const flush = Effect.gen(function*() {
      if (pending.size === 0) return
      const taken = pending
      pending = new Map()
      const { seconds, minutes } = rowsOf(taken)
      const written = yield* sql.withTransaction(Effect.all([upsert("seconds", seconds), upsert("minutes", minutes)], { discard: true })).pipe(
        Effect.mapError(failed),
        Effect.result
      )
      if (written._tag === "Success") {
        if (failing) yield* Effect.logInfo("dashboard counters written again")
        failing = false
        return
      }
      // Kept for the next write, merged with what was counted meanwhile; what is past its retention goes.
      const oldest = Date.now() - retentionMs.minutes
      for (const [start, second] of taken) {
        if (start < oldest) continue
        for (const [scope, cells] of second) {
          for (const cell of cells.values()) add(scope, start, cell.metric, cell.key, cell.n)
        }
      }
      if (!failing) {
        yield* Effect.logWarning("dashboard counters not written; kept for the next try").pipe(
          Effect.annotateLogs({ error: written.failure.message })
        )
      }
      failing = true
    })

    const prune = Effect.suspend(() => {
      const now = Date.now()
      return Effect.all([
        sql`DELETE FROM dashboard_seconds WHERE at < ${now - retentionMs.seconds}`,
        sql`DELETE FROM dashboard_minutes WHERE at < ${now - retentionMs.minutes}`
      ], { discard: true })
    }).pipe(
      Effect.catch((e) => Effect.logWarning("dashboard counters not pruned").pipe(Effect.annotateLogs({ error: messageWithCauses(e) })))
    )

    yield* flush.pipe(Effect.delay(flushIntervalMs), Effect.forever, Effect.forkScoped)
    yield* prune.pipe(Effect.repeat(Schedule.spaced("1 minute")), Effect.forkScoped)
    yield* Effect.addFinalizer(() => flush)

    const read = (table: Table, scopes: ReadonlyArray<string>, from: number) =>
      scopes.length === 0 ? Effect.succeed([]) : sql<{ scope: string; at: number | string | bigint; metric: string; key: string; n: number | string | bigint }>`
        SELECT scope, at, metric, key, n FROM ${sql(tableName[table])} WHERE ${sql.in("scope", scopes)} AND at >= ${from}`.pipe(
        Effect.map((rows) => rows.map((r): CountRow => ({ scope: r.scope, at: Number(r.at), metric: r.metric, key: r.key, n: Number(r.n) }))),
        Effect.mapError(failed)
      )

    return DashboardStats.of({ accepted, refused, changed, read, flush })
  })

/**
 * The rows a write adds: per second those the rates read, per minute everything, each table's rows summed by their
 * key and in key order (nodes that upsert the same rows lock them in the same order).
 */
const rowsOf = (taken: ReadonlyMap<number, Second>) => {
  const seconds = new Map<string, CountRow & { n: number }>()
  const minutes = new Map<string, CountRow & { n: number }>()
  const into = (rows: Map<string, CountRow & { n: number }>, scope: string, at: number, metric: string, key: string, n: number) => {
    const id = `${scope}\u0000${at}\u0000${metric}\u0000${key}`
    const row = rows.get(id)
    if (row === undefined) rows.set(id, { scope, at, metric, key, n })
    else row.n += n
  }
  for (const [start, second] of taken) {
    const minute = start - (start % bucketMs.minutes)
    for (const [scope, cells] of second) {
      for (const cell of cells.values()) {
        into(minutes, scope, minute, cell.metric, cell.key, cell.n)
        const key = secondsKey(cell.metric, cell.key)
        if (key !== undefined) into(seconds, scope, start, cell.metric, key, cell.n)
      }
    }
  }
  return { seconds: [...seconds.values()].sort(byKey), minutes: [...minutes.values()].sort(byKey) }
}

const byKey = (a: CountRow, b: CountRow) =>
  a.scope < b.scope ? -1 : a.scope > b.scope ? 1 :
  a.at - b.at || (a.metric < b.metric ? -1 : a.metric > b.metric ? 1 : a.key < b.key ? -1 : a.key > b.key ? 1 : 0)

const chunks = <A>(items: ReadonlyArray<A>, size: number): Array<ReadonlyArray<A>> => {
  const out: Array<ReadonlyArray<A>> = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

/** The message store tells these counters what it committed (provide to MessageStore.layer). */
export const countChanges = Layer.effect(
  MessageChanges,
  Effect.gen(function*() {
    return (yield* DashboardStats).changed
  })
)
