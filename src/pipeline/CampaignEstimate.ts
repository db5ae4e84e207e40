/**
 * The arithmetic of a campaign's preview and dry run, pure (time is a parameter): parts tallied by encoding, the dry
 * run's counters per rule and route and how long the limits make a campaign take. (When a send window opens is
 * policy/SendWindow.ts's, shared with the runner.)
 *
 * The duration model: each limit alone would take `messages / rate` (or, for a per-minute or per-day quota, the
 * messages beyond its first quota at the quota's rate: the limiter's buckets start full); a link or pool counts parts
 * at its `tps`. The campaign takes as long as the slowest of them. Other traffic sharing the app, organisation or
 * links is not known in advance: the estimate is the best case.
 */
import type { AppLimits } from "../domain/Account.ts"
import type {
  Deferral,
  DryRun,
  LimitTime,
  PartsSummary,
  RouteLoad,
  RuleCount,
  SendTimeRule,
  Unsendable
} from "../domain/CampaignInsight.ts"

/** A running tally of messages and parts by encoding (mutable: one per stream, millions of adds). */
export interface PartsCounter {
  readonly add: (encoding: "gsm7" | "ucs2", segments: number) => void
  readonly summary: () => PartsSummary
}

export const partsCounter = (): PartsCounter => {
  const gsm7 = { messages: 0, segments: 0 }
  const ucs2 = { messages: 0, segments: 0 }
  return {
    add: (encoding, segments) => {
      const tally = encoding === "gsm7" ? gsm7 : ucs2
      tally.messages++
      tally.segments += segments
    },
    summary: () => ({
      messages: gsm7.messages + ucs2.messages,
      segments: gsm7.segments + ucs2.segments,
      gsm7: { ...gsm7 },
      ucs2: { ...ucs2 }
    })
  }
}

/** What a campaign's pace depends on. */
export interface PaceInput {
  readonly messages: number
  /** The campaign's own messages per second. */
  readonly throttle: number
  /** The app's limits as the rate limiter applies them (the default app limits when the app has none). */
  readonly app: AppLimits
  readonly organisation: AppLimits
  /** Parts per route and the route's capacity in parts per second. */
  readonly routes: ReadonlyArray<{ readonly target: string; readonly segments: number; readonly capacityTps: number }>
}

export interface Pace {
  /** Undefined when a route the messages need sends nothing (no capacity): no finish can be given. */
  readonly seconds: number | undefined
  /** The name of the slowest limit. */
  readonly bottleneck: string
  readonly limits: ReadonlyArray<LimitTime>
}

const round = (seconds: number) => Math.round(seconds * 100) / 100

/** A route whose capacity is 0 (a pool with every link disabled): it sends nothing until a link is enabled. */
const noCapacity = "no enabled link: nothing is sent through it"

const quotaLimits = (scope: string, limits: AppLimits, messages: number): Array<LimitTime> => {
  const out: Array<LimitTime> = []
  if (limits.perSecond !== undefined) {
    out.push({ name: `${scope} per second`, detail: `${limits.perSecond} messages/s`, seconds: round(messages / limits.perSecond) })
  }
  if (limits.perMinute !== undefined) {
    const beyond = Math.max(0, messages - limits.perMinute)
    out.push({ name: `${scope} per minute`, detail: `${limits.perMinute} messages/min`, seconds: round((beyond * 60) / limits.perMinute) })
  }
  if (limits.perDay !== undefined) {
    const beyond = Math.max(0, messages - limits.perDay)
    out.push({ name: `${scope} per day`, detail: `${limits.perDay} messages/day`, seconds: round((beyond * 86_400) / limits.perDay) })
  }
  return out
}

/** How long the campaign's messages take under every limit, and which limit is the slowest. */
export const pace = (input: PaceInput): Pace => {
  const limits: Array<LimitTime> = [
    { name: "campaign throttle", detail: `${input.throttle} messages/s`, seconds: round(input.messages / Math.max(1, input.throttle)) },
    ...quotaLimits("app", input.app, input.messages),
    ...quotaLimits("organisation", input.organisation, input.messages),
    ...input.routes.map((r): LimitTime =>
      r.capacityTps > 0
        ? { name: r.target, detail: `${r.capacityTps} parts/s`, seconds: round(r.segments / r.capacityTps) }
        : { name: r.target, detail: noCapacity }
    )
  ]
  // A limit without seconds (a route that sends nothing) is slower than any other.
  const slowness = (limit: LimitTime) => limit.seconds ?? Number.POSITIVE_INFINITY
  let slowest = limits[0]
  for (const limit of limits) if (slowest === undefined || slowness(limit) > slowness(slowest)) slowest = limit
  return { seconds: slowest === undefined ? 0 : slowest.seconds, bottleneck: slowest?.name ?? "campaign throttle", limits }
}

/** Why a recipient waits: the campaign's send window, or a quiet-hours rule. */
export interface DeferralCause {
  readonly ruleId: string
  readonly reason: "quiet_hours" | "send_window"
}

/** A recipient that will get its message: when, why it waits (if it does), and what it costs where. */
export interface Sendable {
  readonly at: number
  readonly deferral: DeferralCause | undefined
  /** The stateful rules (caps, dedup) that will decide it when it goes. */
  readonly checks: ReadonlyArray<{ readonly kind: "cap" | "dedup"; readonly ruleId: string }>
  readonly encoding: "gsm7" | "ucs2"
  readonly segments: number
  readonly target: string
  readonly capacityTps: number
}

/** What the dry run needs besides its recipients to answer. */
export interface DryRunContext {
  readonly campaignId: string
  readonly policyVersion: number
  readonly missingLists: ReadonlyArray<string>
  readonly throttle: number
  readonly app: AppLimits
  readonly organisation: AppLimits
}

/**
 * The dry run's counters, one recipient at a time (memory: one entry per rule, route and no-route reason), and the
 * answer with its estimate. `start` is the instant the campaign is judged at.
 */
export const dryRunTally = (start: number) => {
  const parts = partsCounter()
  const unsendable = { missingVariable: 0, notRepresentable: 0, tooLong: 0 }
  const excluded = new Map<string, RuleCount>()
  const deferred = new Map<string, { reason: DeferralCause["reason"]; recipients: number; first: number; last: number }>()
  const noRoute = new Map<string, number>()
  const stateful = new Map<string, { kind: SendTimeRule["kind"]; recipients: number }>()
  const routes = new Map<string, RouteLoad & { messages: number; segments: number }>()
  let recipients = 0
  let toSend = 0
  let deferredTotal = 0
  let lastOpening = start
  let lastCause = ""

  return {
    unsendable: (why: keyof Unsendable) => {
      recipients++
      unsendable[why]++
    },
    noRoute: (reason: string) => {
      recipients++
      noRoute.set(reason, (noRoute.get(reason) ?? 0) + 1)
    },
    excluded: (ruleId: string, reason: string) => {
      recipients++
      const key = `${ruleId}\u0000${reason}`
      const found = excluded.get(key)
      excluded.set(key, { ruleId, reason, recipients: (found?.recipients ?? 0) + 1 })
    },
    send: (s: Sendable) => {
      recipients++
      toSend++
      if (s.deferral !== undefined) {
        const d = deferred.get(s.deferral.ruleId) ?? { reason: s.deferral.reason, recipients: 0, first: s.at, last: s.at }
        d.recipients++
        d.first = Math.min(d.first, s.at)
        d.last = Math.max(d.last, s.at)
        deferred.set(s.deferral.ruleId, d)
        deferredTotal++
        if (s.at >= lastOpening) {
          lastOpening = s.at
          lastCause = s.deferral.ruleId
        }
      }
      for (const check of s.checks) {
        const rule = stateful.get(check.ruleId) ?? { kind: check.kind === "cap" ? "frequency_cap" : "dedup", recipients: 0 }
        rule.recipients++
        stateful.set(check.ruleId, rule)
      }
      parts.add(s.encoding, s.segments)
      const load = routes.get(s.target) ?? { target: s.target, messages: 0, segments: 0, capacityTps: s.capacityTps }
      load.messages++
      load.segments += s.segments
      routes.set(s.target, load)
    },
    result: (context: DryRunContext): DryRun => {
      const routeLoads = Array.from(routes.values(), (r): RouteLoad => ({ ...r }))
      const limits = { throttle: context.throttle, app: context.app, organisation: context.organisation }
      const whole = pace({ ...limits, messages: toSend, routes: routeLoads })
      // The recipients deferred to the last opening may all go then: the campaign ends no earlier than they take.
      const share = toSend === 0 ? 0 : deferredTotal / toSend
      const tail = pace({
        ...limits,
        messages: deferredTotal,
        routes: routeLoads.map((r) => ({ ...r, segments: Math.round(r.segments * share) }))
      })
      const stalled = whole.seconds === undefined || tail.seconds === undefined
      const finishWhole = start + (whole.seconds ?? 0) * 1000
      const finishTail = lastOpening + (tail.seconds ?? 0) * 1000
      const byDeferral = deferredTotal > 0 && finishTail > finishWhole
      const finish = byDeferral ? finishTail : finishWhole
      const sum = (values: Iterable<number>) => Array.from(values).reduce((a, b) => a + b, 0)
      return {
        campaignId: context.campaignId,
        evaluatedAt: iso(start),
        policyVersion: context.policyVersion,
        recipients,
        toSend,
        excluded: { total: sum(Array.from(excluded.values(), (r) => r.recipients)), byRule: Array.from(excluded.values()) },
        deferred: {
          total: deferredTotal,
          byRule: Array.from(deferred, ([ruleId, d]): Deferral => ({
            ruleId,
            reason: d.reason,
            recipients: d.recipients,
            firstUntil: iso(d.first),
            lastUntil: iso(d.last)
          }))
        },
        noRoute: { total: sum(noRoute.values()), byReason: Array.from(noRoute, ([reason, n]) => ({ reason, recipients: n })) },
        unsendable: { ...unsendable },
        decidedAtSendTime: Array.from(stateful, ([ruleId, s]): SendTimeRule => ({ ruleId, kind: s.kind, recipients: s.recipients })),
        parts: parts.summary(),
        routes: routeLoads,
        estimate: stalled
          ? { startAt: iso(start), bottleneck: `${whole.bottleneck}: no enabled link, nothing is sent through it`, limits: whole.limits }
          : {
            startAt: iso(start),
            finishAt: iso(finish),
            durationSeconds: Math.round((finish - start) / 10) / 100,
            bottleneck: byDeferral ? `deferred until ${iso(lastOpening)} (${lastCause})` : whole.bottleneck,
            limits: whole.limits
          },
        missingLists: context.missingLists
      }
    }
  }
}

const iso = (ms: number) => new Date(ms).toISOString()
