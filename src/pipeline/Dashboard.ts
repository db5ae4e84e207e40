/**
 * The live dashboard and a campaign's health, computed from the cluster-wide counters (storage/DashboardStats.ts)
 * and, for link state, from the link and pool actors. Every stream of one organisation (campaign, operator view) on
 * a node shares one read per second, so a browser tab more costs an event, not a query. Users of the organisation
 * read its figures (any role); app tokens do not. Operators (superadmin) also see every link and pool. A campaign's
 * health shows its own messages per link, and of the links only their state: another organisation's traffic on a
 * shared link stays out of it.
 */
import { Cache, Context, Effect, Layer, Option, Schedule, Stream } from "effect"
import { SmppLink } from "../actors/SmppLinkProtocol.ts"
import type { LinkState as LinkInspection } from "../actors/SmppLinkProtocol.ts"
import { VirtualPool } from "../actors/VirtualPoolProtocol.ts"
import type { PoolState } from "../actors/VirtualPoolProtocol.ts"
import type { Principal } from "../auth/Access.ts"
import { Forbidden } from "../auth/Errors.ts"
import type { CampaignNotFound } from "../domain/Campaign.ts"
import { rateSeconds, seriesMinutes, windowMinutes } from "../domain/Dashboard.ts"
import type {
  CampaignHealthView,
  CampaignLink,
  CampaignPool,
  DashboardView,
  ErrorCount,
  LinkFigures,
  LinkState,
  OperatorLink,
  OperatorPool,
  OperatorView,
  Rates,
  ReceiptTimes,
  RefusalCount,
  SeriesPoint,
  Totals,
  WindowFigures
} from "../domain/Dashboard.ts"
import type { StoreUnavailable } from "../domain/Errors.ts"
import { linkDefaults } from "../routing/Links.ts"
import { RoutingConfig } from "../routing/RoutingConfig.ts"
import { CampaignStore } from "../storage/CampaignStore.ts"
import { campaignScope, DashboardStats, linkScope, Metrics, orgScope, quantileMs } from "../storage/DashboardStats.ts"
import type { CountRow, ErrorKind } from "../storage/DashboardStats.ts"

export type DashboardError = Forbidden | CampaignNotFound | StoreUnavailable

/** One stream lasts at most this long; a client (EventSource) reconnects for more. */
const streamLifetime = "1 hour"

/** How long the link and pool actors get to answer before a link shows `unknown`. */
const inspectTimeout = "1 second"

const iso = (ms: number) => new Date(ms).toISOString()

/** The seconds the rates read at `now`: the last `rateSeconds` complete and written ones (see DashboardStats). */
export const rateRange = (now: number) => {
  const second = now - (now % 1000)
  return { from: second - (rateSeconds + 1) * 1000, to: second - 2000 }
}

const minuteOf = (ms: number) => ms - (ms % 60_000)

/** A row's key split: in a campaign's scope the link comes first (see DashboardStats.Metrics). */
export interface Keyed {
  readonly metric: string
  readonly link: string
  readonly key: string
  readonly at: number
  readonly n: number
}

const linkKeyed = new Set<string>([Metrics.submitted, Metrics.delivered, Metrics.undelivered, Metrics.expired, Metrics.failed, Metrics.error, Metrics.receipt])

export const keyedOf = (row: CountRow, byLink: boolean): Keyed => {
  if (!byLink || !linkKeyed.has(row.metric)) return { metric: row.metric, link: "", key: row.key, at: row.at, n: row.n }
  const bar = row.key.indexOf("|")
  return row.metric === Metrics.error || row.metric === Metrics.receipt
    ? { metric: row.metric, link: bar < 0 ? "" : row.key.slice(0, bar), key: bar < 0 ? row.key : row.key.slice(bar + 1), at: row.at, n: row.n }
    : { metric: row.metric, link: row.key, key: "", at: row.at, n: row.n }
}

const sum = (rows: ReadonlyArray<Keyed>, metric: string) => rows.reduce((total, r) => r.metric === metric ? total + r.n : total, 0)

/** Messages per second over the rate range, from per-second rows. */
export const ratesOf = (rows: ReadonlyArray<Keyed>, now: number): Rates => {
  const { from, to } = rateRange(now)
  const inRange = rows.filter((r) => r.at >= from && r.at <= to)
  const per = (metric: string) => Math.round((sum(inRange, metric) / rateSeconds) * 100) / 100
  return { accepted: per(Metrics.accepted), submitted: per(Metrics.submitted), delivered: per(Metrics.delivered), refused: per(Metrics.refused) }
}

const receiptOf = (rows: ReadonlyArray<Keyed>): ReceiptTimes => {
  const buckets = new Map<number, number>()
  for (const r of rows) {
    if (r.metric !== Metrics.receipt) continue
    const bucket = Number(r.key)
    if (Number.isInteger(bucket)) buckets.set(bucket, (buckets.get(bucket) ?? 0) + r.n)
  }
  const count = [...buckets.values()].reduce((a, b) => a + b, 0)
  const p50 = quantileMs(buckets, 0.5)
  const p95 = quantileMs(buckets, 0.95)
  return { count, ...(p50 !== undefined ? { p50Ms: p50 } : {}), ...(p95 !== undefined ? { p95Ms: p95 } : {}) }
}

const errorKinds = new Set<string>(["failed", "retried", "undelivered", "expired"])

const errorsOf = (rows: ReadonlyArray<Keyed>): Array<ErrorCount> => {
  const counts = new Map<string, number>()
  for (const r of rows) if (r.metric === Metrics.error) counts.set(r.key, (counts.get(r.key) ?? 0) + r.n)
  return [...counts].flatMap(([key, count]): Array<ErrorCount> => {
    const bar = key.indexOf("|")
    const kind = bar < 0 ? "" : key.slice(0, bar)
    return errorKinds.has(kind) ? [{ kind: kind as ErrorKind, status: key.slice(bar + 1), count }] : []
  }).sort((a, b) => b.count - a.count || a.kind.localeCompare(b.kind) || a.status.localeCompare(b.status))
}

const refusalsOf = (rows: ReadonlyArray<Keyed>): Array<RefusalCount> => {
  const counts = new Map<string, number>()
  for (const r of rows) if (r.metric === Metrics.refused && r.key !== "") counts.set(r.key, (counts.get(r.key) ?? 0) + r.n)
  return [...counts].map(([key, count]): RefusalCount => {
    const bar = key.lastIndexOf("|")
    const reason = bar < 0 ? key : key.slice(0, bar)
    const ruleId = bar < 0 ? "" : key.slice(bar + 1)
    return { reason, ...(ruleId !== "" ? { ruleId } : {}), count }
  }).sort((a, b) => b.count - a.count || a.reason.localeCompare(b.reason))
}

const totalsOf = (rows: ReadonlyArray<Keyed>): Totals => ({
  accepted: sum(rows, Metrics.accepted),
  submitted: sum(rows, Metrics.submitted),
  delivered: sum(rows, Metrics.delivered),
  undelivered: sum(rows, Metrics.undelivered),
  expired: sum(rows, Metrics.expired),
  failed: sum(rows, Metrics.failed),
  // Per-second refusal rows carry no reason: the per-minute ones count them.
  refused: rows.reduce((total, r) => r.metric === Metrics.refused && r.key !== "" ? total + r.n : total, 0)
})

/** The window figures from per-minute rows (those from the window's start on). */
export const windowOf = (rows: ReadonlyArray<Keyed>): WindowFigures => {
  const totals = totalsOf(rows)
  const final = totals.delivered + totals.undelivered + totals.expired + totals.failed
  return {
    minutes: windowMinutes,
    totals,
    ...(final > 0 ? { deliveryRate: totals.delivered / final } : {}),
    receipt: receiptOf(rows),
    errors: errorsOf(rows),
    refusals: refusalsOf(rows)
  }
}

/** One point per minute from `fromMinute` to `now`'s minute, oldest first. */
export const seriesOf = (rows: ReadonlyArray<Keyed>, fromMinute: number, now: number): Array<SeriesPoint> => {
  const byMinute = new Map<number, Array<Keyed>>()
  for (const r of rows) {
    const list = byMinute.get(r.at)
    if (list === undefined) byMinute.set(r.at, [r])
    else list.push(r)
  }
  const points: Array<SeriesPoint> = []
  for (let at = fromMinute; at <= minuteOf(now); at += 60_000) {
    const minute = byMinute.get(at) ?? []
    const t = totalsOf(minute)
    const receipt = receiptOf(minute)
    points.push({
      at: iso(at),
      accepted: t.accepted,
      submitted: t.submitted,
      delivered: t.delivered,
      failed: t.undelivered + t.expired + t.failed,
      refused: t.refused,
      ...(receipt.p50Ms !== undefined ? { receiptP50Ms: receipt.p50Ms } : {}),
      ...(receipt.p95Ms !== undefined ? { receiptP95Ms: receipt.p95Ms } : {})
    })
  }
  return points
}

const linkFiguresOf = (seconds: ReadonlyArray<Keyed>, minutes: ReadonlyArray<Keyed>, now: number): LinkFigures => {
  const rates = ratesOf(seconds, now)
  const t = totalsOf(minutes)
  return {
    rates: { submitted: rates.submitted, delivered: rates.delivered },
    totals: { submitted: t.submitted, delivered: t.delivered, undelivered: t.undelivered, expired: t.expired, failed: t.failed },
    receipt: receiptOf(minutes),
    errors: errorsOf(minutes)
  }
}

/** What a link actor said of itself, or nothing when it did not answer in time. */
type Inspected = Option.Option<LinkInspection>

const stateOf = (enabled: boolean, inspected: Inspected): LinkState =>
  !enabled ? "disabled" : Option.match(inspected, { onNone: () => "unknown", onSome: (s) => s.health })

const throttledOf = (inspected: Inspected) =>
  Option.match(inspected, { onNone: () => false, onSome: (s) => s.health === "throttled" || s.currentTps < s.tps })

const requireUser = (p: Principal) =>
  p.kind !== "user" || p.role === null
    ? Effect.fail(new Forbidden({ message: "the dashboard needs a user token, not an app token" }))
    : Effect.void

export class Dashboard extends Context.Service<Dashboard, {
  /** The organisation's figures with the last hour per minute (and, for a superadmin, every link and pool). */
  readonly snapshot: (p: Principal) => Effect.Effect<DashboardView, DashboardError>
  /** The figures every second (the last two minutes of the series), for an hour at most. */
  readonly stream: (p: Principal) => Effect.Effect<Stream.Stream<DashboardView, StoreUnavailable>, DashboardError>
  readonly campaignHealth: (p: Principal, campaignId: string) => Effect.Effect<CampaignHealthView, DashboardError>
  readonly campaignHealthStream: (
    p: Principal,
    campaignId: string
  ) => Effect.Effect<Stream.Stream<CampaignHealthView, StoreUnavailable>, DashboardError>
}>()("smsgw/pipeline/Dashboard") {
  static readonly layer = Layer.effect(Dashboard, Effect.suspend(() => make))
}

const make = Effect.gen(function*() {
  const stats = yield* DashboardStats
  const routing = yield* RoutingConfig
  const campaigns = yield* CampaignStore
  const linkClient = yield* SmppLink.client
  const poolClient = yield* VirtualPool.client

  /** Rows of one scope, keys split: per second from the rate range, per minute from `fromMinute`. */
  const rowsOf = (scopes: ReadonlyArray<string>, fromMinute: number, now: number, byLink: boolean) =>
    Effect.all([
      stats.read("seconds", scopes, rateRange(now).from),
      stats.read("minutes", scopes, fromMinute)
    ]).pipe(Effect.map(([seconds, minutes]) => ({
      seconds: seconds.map((r) => ({ scope: r.scope, row: keyedOf(r, byLink) })),
      minutes: minutes.map((r) => ({ scope: r.scope, row: keyedOf(r, byLink) }))
    })))

  /** The organisation's view: the window and the series from `seriesFrom` (a minute) on. */
  const orgView = (orgId: string, seriesFrom: number, now: number) =>
    Effect.gen(function*() {
      const windowFrom = minuteOf(now) - (windowMinutes - 1) * 60_000
      const { seconds, minutes } = yield* rowsOf([orgScope(orgId)], Math.min(windowFrom, seriesFrom), now, false)
      const perMinute = minutes.map((m) => m.row)
      return {
        orgId,
        at: iso(now),
        rates: ratesOf(seconds.map((s) => s.row), now),
        window: windowOf(perMinute.filter((r) => r.at >= windowFrom)),
        series: seriesOf(perMinute.filter((r) => r.at >= seriesFrom), seriesFrom, now)
      } satisfies DashboardView
    })

  const inspectLink = (linkId: string) =>
    linkClient(linkId).Inspect().pipe(Effect.timeout(inspectTimeout), Effect.option)

  const inspectPool = (poolId: string) =>
    poolClient(poolId).Inspect().pipe(Effect.timeout(inspectTimeout), Effect.option)

  /** Every configured link's answer (disabled ones are not woken), asked together. */
  const linkStates = Effect.gen(function*() {
    const links = routing.current().links
    const answers = yield* Effect.forEach(links, (l) => l.enabled ? inspectLink(l.id) : Effect.succeed(Option.none()), {
      concurrency: "unbounded"
    })
    return new Map(links.map((l, i) => [l.id, { enabled: l.enabled, inspected: answers[i] ?? Option.none<LinkInspection>() }]))
  })

  const poolStates = Effect.gen(function*() {
    const pools = routing.current().pools
    const answers = yield* Effect.forEach(pools, (p) => inspectPool(p.id), { concurrency: "unbounded" })
    return new Map(pools.map((p, i) => [p.id, answers[i] ?? Option.none<PoolState>()]))
  })

  // Link and pool states are shared by every view on this node for a second: a stream more asks no actor more.
  const sharedLinks = yield* Cache.make({ capacity: 1, timeToLive: "1 second", lookup: (_: "links") => linkStates })
  const sharedPools = yield* Cache.make({ capacity: 1, timeToLive: "1 second", lookup: (_: "pools") => poolStates })

  /** A pool's members, as its actor sees them; from the configuration when it does not answer. */
  const poolMembers = (poolId: string, states: Map<string, { enabled: boolean; inspected: Inspected }>, pool: Option.Option<PoolState>) => {
    const configured = routing.current().pools.find((p) => p.id === poolId)?.members ?? []
    return Option.match(pool, {
      onSome: (s) => s.members.map((m) => ({
        linkId: m.linkId,
        state: states.get(m.linkId)?.enabled === false ? "disabled" as const : m.state,
        configuredWeight: m.configuredWeight,
        effectiveWeight: m.effectiveWeight,
        currentTps: m.currentTps
      })),
      onNone: () => configured.map((m) => {
        const link = routing.current().links.find((l) => l.id === m.link)
        const weight = m.weight ?? (link === undefined ? 0 : linkDefaults(link).tps)
        const state = states.get(m.link)
        return {
          linkId: m.link,
          state: state === undefined ? "unknown" as const : stateOf(state.enabled, state.inspected),
          configuredWeight: weight,
          effectiveWeight: weight,
          currentTps: 0
        }
      })
    })
  }

  const operatorView = Effect.gen(function*() {
    const now = Date.now()
    const states = yield* Cache.get(sharedLinks, "links")
    const pools = yield* Cache.get(sharedPools, "pools")
    const config = routing.current()
    const windowFrom = minuteOf(now) - (windowMinutes - 1) * 60_000
    const { seconds, minutes } = yield* rowsOf(config.links.map((l) => linkScope(l.id)), windowFrom, now, false)
    const links = config.links.map((link): OperatorLink => {
      const scope = linkScope(link.id)
      const state = states.get(link.id)
      const inspected = state?.inspected ?? Option.none()
      const s = Option.getOrUndefined(inspected)
      const defaults = linkDefaults(link)
      return {
        linkId: link.id,
        enabled: link.enabled,
        state: stateOf(link.enabled, inspected),
        bound: s?.bound ?? false,
        window: s?.window ?? defaults.window,
        windowInUse: s?.windowInUse ?? 0,
        queued: s?.queued ?? 0,
        tps: s?.tps ?? defaults.tps,
        currentTps: s?.currentTps ?? 0,
        throttled: throttledOf(inspected),
        ...(s?.lastError !== undefined ? { lastError: s.lastError } : {}),
        figures: linkFiguresOf(
          seconds.filter((r) => r.scope === scope).map((r) => r.row),
          minutes.filter((r) => r.scope === scope).map((r) => r.row),
          now
        )
      }
    })
    const poolViews = config.pools.map((pool): OperatorPool => ({
      poolId: pool.id,
      members: poolMembers(pool.id, states, pools.get(pool.id) ?? Option.none())
    }))
    return { links, pools: poolViews } satisfies OperatorView
  })
  const sharedOperator = yield* Cache.make({ capacity: 1, timeToLive: "1 second", lookup: (_: "operator") => operatorView })

  const withOperator = (p: Principal, view: DashboardView) =>
    p.superadmin
      ? Effect.map(Cache.get(sharedOperator, "operator"), (operator): DashboardView => ({ ...view, operator }))
      : Effect.succeed(view)

  const snapshot = (p: Principal) =>
    Effect.gen(function*() {
      yield* requireUser(p)
      const now = Date.now()
      const view = yield* orgView(p.orgId, minuteOf(now) - (seriesMinutes - 1) * 60_000, now)
      return yield* withOperator(p, view)
    })

  // Every stream of an organisation on this node reads its counters once a second, whatever the number of tabs.
  const sharedLive = yield* Cache.make({
    capacity: 10_000,
    timeToLive: "1 second",
    lookup: (orgId: string) =>
      Effect.suspend(() => {
        const now = Date.now()
        return orgView(orgId, minuteOf(now) - 60_000, now)
      })
  })

  const stream = (p: Principal) =>
    Effect.as(requireUser(p), Stream.fromEffectSchedule(
      Effect.flatMap(Cache.get(sharedLive, p.orgId), (view) => withOperator(p, view)),
      Schedule.spaced("1 second")
    ).pipe(Stream.interruptWhen(Effect.sleep(streamLifetime))))

  const campaignView = (campaignId: string) =>
    Effect.gen(function*() {
      const campaign = yield* campaigns.find(campaignId)
      const now = Date.now()
      const seriesFrom = minuteOf(now) - (seriesMinutes - 1) * 60_000
      const windowFrom = minuteOf(now) - (windowMinutes - 1) * 60_000
      const { seconds, minutes } = yield* rowsOf([campaignScope(campaignId)], seriesFrom, now, true)
      const perSecond = seconds.map((s) => s.row)
      const perMinute = minutes.map((m) => m.row)
      const recent = perMinute.filter((r) => r.at >= windowFrom)
      const states = yield* Cache.get(sharedLinks, "links")
      const usedLinks = [...new Set(perMinute.filter((r) => r.link !== "").map((r) => r.link))].sort()
      const links = usedLinks.map((linkId): CampaignLink => {
        const state = states.get(linkId)
        const inspected = state?.inspected ?? Option.none()
        return {
          linkId,
          state: state === undefined ? "unknown" : stateOf(state.enabled, inspected),
          throttled: throttledOf(inspected),
          figures: linkFiguresOf(perSecond.filter((r) => r.link === linkId), recent.filter((r) => r.link === linkId), now)
        }
      })
      const poolIds = [...new Set(perMinute.filter((r) => r.metric === Metrics.accepted && r.key.startsWith("pool:")).map((r) => r.key.slice(5)))].sort()
      const poolStatesNow = poolIds.length === 0 ? new Map<string, Option.Option<PoolState>>() : yield* Cache.get(sharedPools, "pools")
      const submittedBy = (linkId: string) => sum(recent.filter((r) => r.link === linkId), Metrics.submitted)
      const pools = poolIds.map((poolId): CampaignPool => ({
        poolId,
        members: poolMembers(poolId, states, poolStatesNow.get(poolId) ?? Option.none()).map((m) => ({
          linkId: m.linkId,
          state: m.state,
          effectiveWeight: m.effectiveWeight,
          configuredWeight: m.configuredWeight,
          submitted: submittedBy(m.linkId)
        }))
      }))
      return {
        campaignId,
        at: iso(now),
        state: Option.match(campaign, { onNone: () => "cancelled" as const, onSome: (c) => c.state }),
        throttle: Option.match(campaign, { onNone: () => 0, onSome: (c) => c.throttle }),
        rates: ratesOf(perSecond, now),
        window: windowOf(recent),
        links,
        pools
      } satisfies CampaignHealthView
    })

  const sharedCampaigns = yield* Cache.make({ capacity: 10_000, timeToLive: "1 second", lookup: campaignView })

  /** The campaign must be one of the caller's organisation: another's id is as unknown as a missing one. */
  const readable = (p: Principal, campaignId: string) =>
    requireUser(p).pipe(Effect.andThen(campaigns.get(p.orgId, campaignId)), Effect.asVoid)

  const campaignHealth = (p: Principal, campaignId: string) =>
    readable(p, campaignId).pipe(Effect.andThen(campaignView(campaignId)))

  const campaignHealthStream = (p: Principal, campaignId: string) =>
    Effect.as(
      readable(p, campaignId),
      Stream.fromEffectSchedule(Cache.get(sharedCampaigns, campaignId), Schedule.spaced("1 second")).pipe(
        Stream.interruptWhen(Effect.sleep(streamLifetime))
      )
    )

  return Dashboard.of({ snapshot, stream, campaignHealth, campaignHealthStream })
})
