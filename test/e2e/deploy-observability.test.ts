/**
 * The operator's side of observability as shipped under deploy/: Prometheus accepts the rules and their unit tests
 * pass (promtool, Debian's `prometheus` package), /metrics passes `promtool check metrics`, and every metric a
 * dashboard or a rule asks for is one a gateway exposes.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawnSync } from "node:child_process"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { parse } from "yaml"
import { get, post, signUp, startGateway, waitForStatus } from "../fixtures/Gateway.ts"
import { otlpReceiver } from "../fixtures/OtlpReceiver.ts"
import { freePort } from "../fixtures/Processes.ts"
import { redisServer } from "../fixtures/RedisServer.ts"

const deploy = join(import.meta.dirname, "..", "..", "deploy")

const promtool = (args: ReadonlyArray<string>, input?: string) => {
  const run = spawnSync("promtool", args, { cwd: join(deploy, "prometheus"), input, encoding: "utf8", timeout: 60_000 })
  return { code: run.status, output: `${run.stdout}${run.stderr}` }
}

/** The metric names a PromQL expression reads (a histogram's _bucket/_sum/_count as the histogram). */
const metricsOf = (expr: string): Array<string> =>
  [...expr.matchAll(/\b((?:smsgw|nodejs|process|effect_cluster)_[a-z0-9_]+)/g)].map((m) => m[1]!.replace(/_(bucket|sum|count)$/, ""))

const dashboards = readdirSync(join(deploy, "grafana", "dashboards")).filter((f) => f.endsWith(".json"))

const dashboardExprs = dashboards.flatMap((file) => {
  const dashboard = JSON.parse(readFileSync(join(deploy, "grafana", "dashboards", file), "utf8")) as {
    panels: Array<{ type: string; targets?: Array<{ expr: string }> }>
  }
  return dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: `${file}: ${p.type}`, expr: t.expr })))
})

const ruleExprs = (parse(readFileSync(join(deploy, "prometheus", "alerts.yml"), "utf8")) as {
  groups: Array<{ rules: Array<{ alert: string; expr: string }> }>
}).groups.flatMap((g) => g.rules.map((r) => ({ where: `alert ${r.alert}`, expr: r.expr })))

describe("deploy/: dashboards and alert rules", () => {
  it("promtool accepts the rules and their unit tests pass", () => {
    const checked = promtool(["check", "rules", "alerts.yml"])
    expect(checked.output).toContain("SUCCESS")
    expect(checked.code).toBe(0)
    const tested = promtool(["test", "rules", "alerts.test.yml"])
    expect(tested.output).toContain("SUCCESS")
    expect(tested.code).toBe(0)
  })

  it("the dashboards are Grafana dashboards with a Prometheus datasource variable and queries on every panel", () => {
    expect(dashboards.sort()).toEqual(["cluster.json", "contact-policy.json", "links-and-pools.json", "overview.json"])
    for (const file of dashboards) {
      const d = JSON.parse(readFileSync(join(deploy, "grafana", "dashboards", file), "utf8")) as {
        uid: string
        templating: { list: Array<Record<string, unknown>> }
        panels: Array<{ id: number; type: string; title: string; targets?: Array<{ expr: string }> }>
      }
      expect(d.uid, file).toMatch(/^smsgw-/)
      expect(d.templating.list[0]).toMatchObject({ name: "datasource", type: "datasource", query: "prometheus" })
      const panels = d.panels.filter((p) => p.type !== "row")
      expect(panels.length, file).toBeGreaterThan(5)
      for (const p of panels) expect(p.targets?.length ?? 0, `${file}: ${p.title}`).toBeGreaterThan(0)
      expect(new Set(d.panels.map((p) => p.id)).size).toBe(d.panels.length)
    }
  })

  it.live("/metrics passes promtool, and holds every metric the dashboards and rules use", () =>
    Effect.gen(function*() {
      const redis = yield* redisServer(yield* freePort)
      const receiver = yield* otlpReceiver
      receiver.mode = "fail"
      const gw = yield* startGateway({
        config: {
          rateLimits: { store: "redis", redis: { port: redis.port, keyPrefix: `smsgw:deploy:${crypto.randomUUID().slice(0, 8)}:` } },
          // A blacklist whose file is missing: stale, its load failure counted.
          policy: { rules: [{ id: "dnc", type: "blacklist", lists: ["dnc"] }], blacklists: [{ name: "dnc" }] },
          telemetry: { otlp: { endpoint: receiver.endpoint, exportIntervalMs: 100, timeoutMs: 500 } },
          pools: [{ id: "main", members: [{ link: "sim" }] }]
        }
      })
      const t = yield* signUp(gw.baseUrl)
      const sent = yield* post(`${gw.baseUrl}/v1/messages`, { to: "+4915112345678", from: "ACME", text: "metrics" }, t.auth)
      expect(sent.status).toBe(202)
      yield* waitForStatus(gw.baseUrl, String(sent.json.id), "delivered", 10_000, t.auth)
      const scrape = yield* Effect.map(get(`${gw.baseUrl}/metrics`), (m) => m.text)

      const lint = promtool(["check", "metrics"], scrape)
      expect(lint.output).toBe("")
      expect(lint.code).toBe(0)

      const exposed = new Set([...scrape.matchAll(/^# TYPE ([a-z0-9_]+) /gm)].map((m) => m[1]!))
      const missing = [...dashboardExprs, ...ruleExprs].flatMap(({ where, expr }) =>
        metricsOf(expr).filter((name) => !exposed.has(name)).map((name) => `${where}: ${name}`)
      )
      expect([...new Set(missing)]).toEqual([])
    }).pipe(Effect.scoped), 60_000)
})
