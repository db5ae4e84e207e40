/**
 * The arithmetic of a campaign's preview and dry run, pure (time is a parameter): parts tallied by encoding, how long
 * the limits make a campaign take, and when a send window opens in a recipient's time zone.
 *
 * The duration model: each limit alone would take `messages / rate` (or, for a per-minute or per-day quota, the
 * messages beyond its first quota at the quota's rate: the limiter's buckets start full); a link or pool counts parts
 * at its `tps`. The campaign takes as long as the slowest of them. Other traffic sharing the app, organisation or
 * links is not known in advance: the estimate is the best case.
 */
import type { AppLimits } from "../domain/Account.ts"
import type { LimitTime, PartsSummary } from "../domain/CampaignInsight.ts"
import type { SendWindow } from "../domain/Campaign.ts"
import { localMinutes } from "../policy/PolicyEngine.ts"

const MINUTE = 60_000

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
  readonly seconds: number
  /** The name of the slowest limit. */
  readonly bottleneck: string
  readonly limits: ReadonlyArray<LimitTime>
}

const round = (seconds: number) => Math.round(seconds * 100) / 100

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
    ...input.routes.map((r): LimitTime => ({
      name: r.target,
      detail: `${r.capacityTps} parts/s`,
      seconds: r.capacityTps > 0 ? round(r.segments / r.capacityTps) : Number.POSITIVE_INFINITY
    }))
  ]
  let slowest = limits[0]
  for (const limit of limits) if (slowest === undefined || limit.seconds > slowest.seconds) slowest = limit
  return { seconds: slowest?.seconds ?? 0, bottleneck: slowest?.name ?? "campaign throttle", limits }
}

const minutesOf = (clock: string): number => Number(clock.slice(0, 2)) * 60 + Number(clock.slice(3, 5))

/**
 * When the send window is next open in `zone` at or after `at`: `at` itself when it is open, otherwise the start of
 * the next opening (to the minute). `from` after `to` crosses midnight; `from` equal to `to` is always open.
 */
export const windowOpening = (window: SendWindow, zone: string, at: number): number => {
  const from = minutesOf(window.from)
  const to = minutesOf(window.to)
  if (from === to) return at
  const minutes = localMinutes(zone, at)
  const open = from < to ? minutes >= from && minutes < to : minutes >= from || minutes < to
  if (open) return at
  const wait = (((from - minutes) % 1440) + 1440) % 1440
  const opening = at - (at % MINUTE) + wait * MINUTE
  // An offset change (daylight saving) between now and then moves local time: check once and correct.
  const drift = ((((localMinutes(zone, opening) - from + 720) % 1440) + 1440) % 1440) - 720
  return drift === 0 ? opening : opening - drift * MINUTE
}

const wallFormats = new Map<string, Intl.DateTimeFormat>()

/** How far `zone`'s wall clock is ahead of UTC at `epoch`, in ms. */
const offsetAt = (zone: string, epoch: number): number => {
  let format = wallFormats.get(zone)
  if (format === undefined) {
    format = new Intl.DateTimeFormat("en-GB", {
      timeZone: zone,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric"
    })
    wallFormats.set(zone, format)
  }
  const p: Record<string, number> = {}
  for (const part of format.formatToParts(epoch)) if (part.type !== "literal") p[part.type] = Number(part.value)
  const wall = Date.UTC(p.year ?? 1970, (p.month ?? 1) - 1, p.day ?? 1, p.hour ?? 0, p.minute ?? 0, p.second ?? 0)
  return wall - (epoch - (epoch % 1000))
}

/** The instant a local date-time ("2026-12-24T09:00") names in an IANA zone (in a gap of a clock change: just after). */
export const instantOf = (local: string, zone: string): number => {
  const [date = "", time = ""] = local.split("T")
  const [y = 1970, mo = 1, d = 1] = date.split("-").map(Number)
  const [h = 0, mi = 0, s = 0] = time.split(":").map(Number)
  const wall = Date.UTC(y, mo - 1, d, h, mi, s)
  const first = wall - offsetAt(zone, wall)
  return wall - offsetAt(zone, first)
}
