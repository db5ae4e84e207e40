/**
 * Local wall-clock times read in an IANA time zone (a campaign's `startAt`): the epoch milliseconds they stand for,
 * with the zone's offset at that moment (summer time included). No library: Intl knows every zone Node ships. The one
 * home of time-zone arithmetic: the contact policy's clocks (quiet hours, send windows) read offsets from here too.
 */

/** One formatter per zone: building one costs far more than formatting with it (the policy reads clocks per message). */
const formatters = new Map<string, Intl.DateTimeFormat>()

const formatterOf = (zone: string): Intl.DateTimeFormat => {
  let format = formatters.get(zone)
  if (format === undefined) {
    format = new Intl.DateTimeFormat("en-US", {
      timeZone: zone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit"
    })
    formatters.set(zone, format)
  }
  return format
}

/** The zone's offset from UTC in ms at instant `epochMs` (to the second); throws RangeError for an unknown zone. */
export const offsetAt = (epochMs: number, zone: string): number => {
  const parts = formatterOf(zone).formatToParts(new Date(epochMs))
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value ?? "0")
  const asUtc = Date.UTC(get("year"), get("month") - 1, get("day"), get("hour"), get("minute"), get("second"))
  return asUtc - Math.floor(epochMs / 1000) * 1000
}

/** Whether Intl knows the IANA zone (the one check for every zone a user or the configuration names). */
export const isTimeZone = (zone: string): boolean => {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone })
    return true
  } catch {
    return false
  }
}

/**
 * "2026-12-24T09:00" in "Europe/Berlin" → epoch ms. A time skipped by a summer-time change moves forward by
 * the gap; a repeated one is its first occurrence. Undefined for an unknown zone or a malformed time.
 */
export const zonedToEpoch = (at: string, zone: string): number | undefined => {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(at)
  if (m === null || !isTimeZone(zone)) return undefined
  const [year, month, day, hour, minute, second] = m.slice(1).map((v) => Number(v ?? "0")) as [number, number, number, number, number, number]
  const wall = Date.UTC(year, month - 1, day, hour, minute, second)
  const check = new Date(wall)
  if (check.getUTCMonth() !== month - 1 || check.getUTCDate() !== day) return undefined
  // Candidates from the offsets a day either side: both valid in a repeated hour (the first wins), neither in a
  // skipped one (the offset before the change applies, which lands after the gap, as Temporal's "compatible").
  const oneDay = 86_400_000
  const before = wall - offsetAt(wall - oneDay, zone)
  const after = wall - offsetAt(wall + oneDay, zone)
  const valid = [before, after].filter((c) => c + offsetAt(c, zone) === wall)
  return valid.length > 0 ? Math.min(...valid) : before
}
