/**
 * The clock the contact policy reads (quiet hours, windows), replaceable in tests.
 */
import { Context } from "effect"

/**
 * The time policy decisions are taken at (frequency windows, dedup windows, quiet hours). Wall-clock time by default;
 * tests provide one they move, so a day-long window is tested without waiting a day and without freezing the rest of
 * the gateway (timeouts, retries, sleeps keep the real clock).
 */
export const PolicyClock = Context.Reference<{ readonly now: () => number }>("smsgw/policy/PolicyClock", {
  defaultValue: () => ({ now: Date.now })
})
