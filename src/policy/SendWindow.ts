/**
 * A campaign's send window in its recipients' local time: is it open at an instant, and when does it open next.
 * Pure arithmetic on epoch milliseconds (time is a parameter, as in Aimd and Gcra), in the time zones of a country.
 *
 * Invariants:
 * - `from` after `to` crosses midnight (20:00–08:00 is open at 23:00 and at 07:59); `from` equal to `to` is always open.
 * - A country spanning several zones is open when the window is open in every one of them (nobody is reached outside
 *   their window); when the zones never agree within two days, the first zone alone decides, so a window narrower
 *   than the country's spread still opens.
 * - A country's zone is the one the policy's quiet hours read it in (their `countries` map), so a send window and quiet
 *   hours never disagree on a recipient's clock; a country no quiet-hours rule names takes its zones from the tz data
 *   (countries-and-timezones): those it owns (listed first for it), or, for a country that owns none, all it uses.
 * - `nextOpening` answers an instant at which `isOpen` holds, to the minute, and never one before `now`.
 */
import { getTimezonesForCountry } from "countries-and-timezones"
import type { PolicyDocument } from "../domain/Policy.ts"
import { localMinutes } from "./PolicyEngine.ts"

const MINUTE = 60_000
/** Look-ahead for the next opening: two days cover any window and any offset change. */
const HORIZON_MINUTES = 2 * 24 * 60

export interface WindowMinutes {
  /** Minutes since local midnight. */
  readonly from: number
  readonly to: number
}

const minutesOf = (clock: string): number => Number(clock.slice(0, 2)) * 60 + Number(clock.slice(3, 5))

/** "HH:MM"–"HH:MM" as minutes since midnight. */
export const windowMinutes = (window: { readonly from: string; readonly to: string }): WindowMinutes => ({
  from: minutesOf(window.from),
  to: minutesOf(window.to)
})

/** Whether local minute-of-day `minutes` is inside the window. */
export const inWindow = (window: WindowMinutes, minutes: number): boolean =>
  window.from === window.to ||
  (window.from < window.to ? minutes >= window.from && minutes < window.to : minutes >= window.from || minutes < window.to)

const openIn = (window: WindowMinutes, zones: ReadonlyArray<string>, at: number): boolean =>
  zones.every((zone) => inWindow(window, localMinutes(zone, at)))

/** Minutes until `zone`'s local clock next reads `target` (0 when it reads it now). */
const minutesUntil = (zone: string, target: number, now: number): number =>
  (((target - localMinutes(zone, now)) % 1440) + 1440) % 1440

/** The first instant at or after `now` at which the window is open in all `zones`, or undefined within the horizon. */
const firstCommonOpening = (window: WindowMinutes, zones: ReadonlyArray<string>, now: number): number | undefined => {
  if (openIn(window, zones, now)) return now
  const start = now - (now % MINUTE) + MINUTE
  // Candidates are the instants some zone's window opens; the common window, if any, opens at one of them.
  const candidates = new Set<number>()
  for (let day = 0; day < HORIZON_MINUTES / 1440; day++) {
    for (const zone of zones) {
      candidates.add(start + (minutesUntil(zone, window.from, start) + day * 1440) * MINUTE)
    }
  }
  const sorted = [...candidates].sort((a, b) => a - b)
  for (const at of sorted) {
    if (at - now > HORIZON_MINUTES * MINUTE) break
    if (openIn(window, zones, at)) return at
  }
  return undefined
}

/** When the window is next open (now, if it is open now). */
export const nextOpening = (window: WindowMinutes, zones: ReadonlyArray<string>, now: number): number => {
  if (zones.length === 0) return now
  const common = firstCommonOpening(window, zones, now)
  if (common !== undefined) return common
  const first = zones.slice(0, 1)
  if (openIn(window, first, now)) return now
  const start = now - (now % MINUTE) + MINUTE
  return start + minutesUntil(first[0] ?? "UTC", window.from, start) * MINUTE
}

/** Whether the window is open at `now` (in every zone of `zones`; no zone: always open). */
export const isOpen = (window: WindowMinutes, zones: ReadonlyArray<string>, now: number): boolean =>
  nextOpening(window, zones, now) <= now

const tzZones = new Map<string, ReadonlyArray<string>>()

/** The zones of `country` in the tz data (cached; a country unknown to it: none, and the window is not applied). */
const zonesInTzData = (country: string): ReadonlyArray<string> => {
  const cached = tzZones.get(country)
  if (cached !== undefined) return cached
  const all = getTimezonesForCountry(country, { deprecated: false }) ?? []
  const current = all.filter((z) => (z.aliasOf ?? null) === null)
  const owned = current.filter((z) => z.countries[0] === country).map((z) => z.name)
  const zones = owned.length > 0 ? owned : current.map((z) => z.name)
  tzZones.set(country, zones)
  return zones
}

/** The zones a recipient of `country` is read in: quiet hours' zone for it when a rule names it, else the tz data's. */
export const countryZones = (country: string | undefined, policy: PolicyDocument): ReadonlyArray<string> => {
  if (country === undefined) return []
  for (const rule of policy.rules) {
    if (rule.type !== "quiet_hours" || rule.enabled === false) continue
    const zone = rule.countries[country]
    if (zone !== undefined) return [zone]
  }
  return zonesInTzData(country)
}
