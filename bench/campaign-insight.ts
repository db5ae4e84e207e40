/**
 * `node --disable-warning=ExperimentalWarning bench/campaign-insight.ts`: wall time and memory of a campaign's preview
 * and dry run over an audience of BENCH_CONTACTS distinct numbers (default 100,000) in two lists that overlap by a
 * fifth (deduplicated by the database), one contact in ten with a Polish name (UCS-2), on the embedded gateway's own
 * services: SQLite, the live routing (one link) and contact policy (a blacklist of 1 in 50, quiet hours, a cap).
 * Prints JSON; appends to bench/RESULTS.md unless BENCH_NO_RECORD=1.
 */
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { AccountStore } from "../src/auth/AccountStore.ts"
import type { Campaign } from "../src/domain/Campaign.ts"
import { embeddedLayer } from "../src/layers/Gateway.ts"
import { CampaignInsight } from "../src/pipeline/CampaignInsight.ts"
import { PolicyClock } from "../src/policy/PolicyClock.ts"
import * as Simulator from "../src/smpp/Simulator.ts"

const contacts = Number(process.env.BENCH_CONTACTS ?? 100_000)
const dir = mkdtempSync(join(tmpdir(), "smsgw-bench-insight-"))
mkdirSync(join(dir, "objects", "blacklists"), { recursive: true })

const number = (i: number) => `49151${String(100_000_000 + i).slice(1)}`
let file = ""
for (let i = 0; i < contacts; i += 50) file += `+${number(i)}\n`
writeFileSync(join(dir, "objects", "blacklists", "dnd.txt"), file)

const noon = Date.UTC(2026, 0, 15, 11, 0)

const seed = (orgId: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const now = Date.now()
    // The first list holds the first 80 %, the second the last 40 %: a fifth of the audience is in both.
    const first = Math.round(contacts * 0.8)
    const lists = [
      { id: "lst_a", from: 0, to: first },
      { id: "lst_b", from: contacts - Math.round(contacts * 0.4), to: contacts }
    ]
    for (const list of lists) {
      yield* sql`INSERT INTO contact_lists ${sql.insert({ id: list.id, org_id: orgId, name: list.id, contacts: list.to - list.from, created_at: now, updated_at: now })}`
      yield* sql.withTransaction(Effect.gen(function*() {
        for (let start = list.from; start < list.to; start += 500) {
          const rows = []
          for (let i = start; i < Math.min(list.to, start + 500); i++) {
            rows.push({
              list_id: list.id,
              pos: i - list.from + 1,
              msisdn: number(i),
              country: "DE",
              vars: JSON.stringify({ name: i % 10 === 0 ? "Łucja" : "Anna", city: "Berlin" }),
              created_at: now
            })
          }
          const [head, ...rest] = rows
          if (head !== undefined) yield* sql`INSERT INTO contacts ${sql.insert([head, ...rest])}`
        }
      }))
    }
  })

const program = Effect.gen(function*() {
  const sim = yield* Simulator.start({ port: 0, receiptDelayMs: 50 }).pipe(Effect.orDie)
  const layer = embeddedLayer({
    storage: { kind: "sqlite", path: join(dir, "gateway.db") },
    links: [{ id: "sim", host: "127.0.0.1", port: sim.port, systemId: "test", password: "test", tps: 500 }],
    objectStore: { kind: "local", root: join(dir, "objects") },
    http: { port: 0, host: "127.0.0.1" },
    policy: {
      blacklists: [{ name: "dnd" }],
      rules: [
        { id: "dnd", type: "blacklist", lists: ["dnd"] },
        { id: "night", type: "quiet_hours", from: "21:00", to: "08:00", countries: { DE: "Europe/Berlin" } },
        { id: "promo-3-day", classes: ["promotional"], type: "frequency_cap", max: 3, window: "day" }
      ]
    }
  }).pipe(Layer.provide(Layer.succeed(PolicyClock, { now: () => noon })))
  const context = yield* Layer.build(layer).pipe(Effect.orDie)
  return yield* Effect.gen(function*() {
    const accounts = yield* AccountStore
    const insight = yield* CampaignInsight
    const { org } = yield* accounts.register({ email: "bench@example.com", name: "Bench", passwordHash: "x", orgName: "Bench" })
    const app = yield* accounts.createApp(org.id, { name: "bench", allowList: [], limits: { perSecond: 100 }, messageClass: "promotional", active: true })
    const seedStart = performance.now()
    yield* seed(org.id)
    const seedMs = performance.now() - seedStart
    // The blacklist file is loaded in the background: wait until it refuses its first number.
    yield* Effect.sleep("2 seconds")
    const campaign: Campaign = {
      id: "cmp_bench",
      orgId: org.id,
      name: "bench",
      appId: app.id,
      sender: "Shop",
      template: "Hi {{name}}, our {{city}} store has 20% off everything today. Reply STOP to opt out.",
      lists: ["lst_a", "lst_b"],
      messageClass: "promotional",
      encoding: "auto",
      startAt: undefined,
      sendWindow: { from: "09:00", to: "20:00" },
      throttle: 50,
      validitySeconds: undefined,
      canary: undefined,
      autoPause: undefined,
      state: "draft",
      pauseReason: undefined,
      rejectionReason: undefined,
      flags: [],
      createdBy: "bench",
      editors: [],
      submittedBy: undefined,
      approvedBy: undefined,
      createdAt: 0,
      updatedAt: 0,
      submittedAt: undefined,
      startedAt: undefined,
      finishedAt: undefined,
      audience: 0
    }
    const measure = <A, E>(effect: Effect.Effect<A, E>) =>
      Effect.gen(function*() {
        global.gc?.()
        const rssBefore = process.memoryUsage().rss
        let peak = rssBefore
        const timer = setInterval(() => void (peak = Math.max(peak, process.memoryUsage().rss)), 20)
        const start = performance.now()
        const result = yield* effect
        const ms = performance.now() - start
        clearInterval(timer)
        peak = Math.max(peak, process.memoryUsage().rss)
        return { result, ms: Math.round(ms), rssGrowthMb: Math.round((peak - rssBefore) / 1e5) / 10 }
      })
    const preview = yield* measure(insight.preview(campaign, 10))
    const dryRun = yield* measure(insight.dryRun(campaign))
    return {
      contacts,
      seedMs: Math.round(seedMs),
      preview: { ms: preview.ms, rssGrowthMb: preview.rssGrowthMb, recipients: preview.result.recipients, totals: preview.result.totals },
      dryRun: {
        ms: dryRun.ms,
        rssGrowthMb: dryRun.rssGrowthMb,
        toSend: dryRun.result.toSend,
        excluded: dryRun.result.excluded.total,
        deferred: dryRun.result.deferred.total,
        estimate: dryRun.result.estimate
      }
    }
  }).pipe(Effect.provide(context))
})

const result = await Effect.runPromise(Effect.scoped(program))
console.log(JSON.stringify(result, null, 2))
rmSync(dir, { recursive: true, force: true })
if (process.env.BENCH_NO_RECORD !== "1") {
  appendFileSync(
    join(import.meta.dirname, "RESULTS.md"),
    `
### ${new Date().toISOString()} — campaign preview and dry run (issue 13)

\`node --disable-warning=ExperimentalWarning bench/campaign-insight.ts\` (bench/campaign-insight.ts): ${contacts.toLocaleString("en")} distinct
numbers in two SQLite lists overlapping by a fifth (deduplicated in SQL, pages of 1,000), one in ten UCS-2, through the
embedded gateway's own routing and policy (blacklist of 1 in 50, quiet hours, a cap):

| | wall time | per contact | RSS growth (peak) |
|---|---|---|---|
| preview (first 10 + totals) | ${result.preview.ms} ms | ${(result.preview.ms * 1000 / contacts).toFixed(1)} µs | ${result.preview.rssGrowthMb} MB |
| dry run | ${result.dryRun.ms} ms | ${(result.dryRun.ms * 1000 / contacts).toFixed(1)} µs | ${result.dryRun.rssGrowthMb} MB |

Preview totals: \`${JSON.stringify(result.preview.totals)}\`; dry run: ${result.dryRun.toSend} to send, ${result.dryRun.excluded} excluded.
`
  )
}
process.exit(0)
