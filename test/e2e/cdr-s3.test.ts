import { describe, expect, it } from "@effect/vitest"
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Option, Redacted } from "effect"
import { Reactivity } from "effect/reactivity"
import { execFile } from "node:child_process"
import { join } from "node:path"
import { gunzipSync } from "node:zlib"
import * as Simulator from "../../src/smpp/Simulator.ts"
import { ObjectStore } from "../../src/storage/ObjectStore.ts"
import { simLink, writeNodeConfig } from "../fixtures/Cluster.ts"
import { freshPgDatabase, pgUrl, tempDir } from "../fixtures/Databases.ts"
import { eventually } from "../fixtures/Eventually.ts"
import { get, post, signUp } from "../fixtures/Gateway.ts"
import { freePort, killHard, spawnSmsgw, waitHealthy } from "../fixtures/Processes.ts"
import { restartableS3Server } from "../fixtures/S3Server.ts"

const total = 3000
const batchSize = 100

/** The message ids in every CDR object under `prefix`: one entry per record, so a duplicate shows twice. */
const idsUnder = (prefix: string) =>
  Effect.gen(function*() {
    const store = yield* ObjectStore
    const ids: Array<string> = []
    for (const o of yield* store.list(prefix)) {
      const body = Option.getOrThrow(yield* store.get(o.key)).body
      const lines = gunzipSync(body).toString("utf8").split("\r\n").filter((l) => l !== "")
      expect(lines[0]!.startsWith("id,organisation,")).toBe(true)
      for (const line of lines.slice(1)) ids.push(line.split(",")[0]!)
    }
    return ids
  })

describe("CDR export to S3 on PostgreSQL, across a SIGKILL and an outage", () => {
  it.live("S3 down: runs fail and are counted; back: the catch-up killed half-way resumes; each final message in one record", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const database = yield* freshPgDatabase
      const s3 = yield* restartableS3Server()
      const sim = yield* Simulator.start({ port: 0, receiptDelayMs: 10 })
      const httpPort = yield* freePort
      const configFile = join(dir, "gateway.yaml")
      const objectStore = {
        kind: "s3" as const,
        bucket: s3.info.bucket,
        endpoint: s3.info.endpoint,
        region: s3.info.region,
        forcePathStyle: true,
        accessKeyId: s3.info.accessKeyId,
        secretAccessKey: s3.info.secretAccessKey,
        timeoutMs: 2_000
      }
      writeNodeConfig(configFile, {
        http: { port: httpPort, host: "127.0.0.1" },
        storage: { kind: "postgres", url: pgUrl(database), runnerPath: join(dir, "runner.db") },
        links: [simLink("sim", sim, { window: 50 })],
        objectStore,
        cdr: { intervalSeconds: 1, batchSize }
      })
      const base = `http://127.0.0.1:${httpPort}`
      const db = yield* PgClient.make({ url: Redacted.make(pgUrl(database)), maxConnections: 1 }).pipe(
        Effect.provide(Reactivity.layer),
        Effect.orDie
      )
      const count = (query: Effect.Effect<ReadonlyArray<{ n: string | number }>, unknown>) =>
        query.pipe(Effect.map((rows) => Number(rows[0]?.n ?? -1)), Effect.orDie)
      const S3 = ObjectStore.layerS3({ ...objectStore, timeoutMs: 5_000 })

      const first = yield* spawnSmsgw(["serve", "--config", configFile])
      yield* waitHealthy(first, httpPort)
      const t = yield* signUp(base)
      // The object store goes away before anything finishes: every run fails, and says so.
      yield* s3.stop
      for (let chunk = 0; chunk < total / 1000; chunk++) {
        const messages = Array.from({ length: 1000 }, (_, i) => ({ to: `+49151${String(10_000_000 + chunk * 1000 + i)}`, from: "ACME", text: `cdr ${i}` }))
        const answer = yield* post(`${base}/v1/messages/batch`, { messages }, t.auth)
        expect(answer.status).toBe(202)
      }
      yield* eventually("all delivered", count(db`SELECT COUNT(*) AS n FROM messages WHERE status = 'delivered'`).pipe(
        Effect.map((n) => n === total ? true : undefined)
      ), { timeout: 60_000 })
      yield* eventually("failed runs counted", Effect.map(get(`${base}/metrics`), (m) => {
        const failures = Number(/^smsgw_cdr_export_failures_total(?:\{[^}]*\})? (\d+)/m.exec(m.text)?.[1] ?? 0)
        return failures >= 2 ? true : undefined
      }), { timeout: 20_000 })
      // What the outage left: one batch begun and pending (its upload failed), nothing marked done.
      expect(yield* count(db`SELECT COUNT(*) AS n FROM cdr_batches WHERE state = 'done'`)).toBe(0)
      const lag = /^smsgw_cdr_export_lag_seconds(?:\{[^}]*\})? ([\d.e+-]+)/m.exec((yield* get(`${base}/metrics`)).text)
      expect(lag).not.toBeNull()

      // S3 is back: the catch-up writes batch after batch; the node dies after the first few.
      yield* s3.start
      yield* eventually("the catch-up under way", count(db`SELECT COUNT(*) AS n FROM cdr_batches WHERE state = 'done'`).pipe(
        Effect.map((n) => n >= 2 ? true : undefined)
      ), { timeout: 20_000, interval: 0 })
      yield* killHard(first)
      const doneAtKill = yield* count(db`SELECT COUNT(*) AS n FROM cdr_batches WHERE state = 'done'`)
      expect(doneAtKill).toBeLessThan(total / batchSize)

      const second = yield* spawnSmsgw(["serve", "--config", configFile])
      yield* waitHealthy(second, httpPort)
      yield* eventually("every message exported", Effect.gen(function*() {
        const due = yield* count(db`SELECT COUNT(*) AS n FROM messages WHERE cdr_batch IS NULL`)
        const pending = yield* count(db`SELECT COUNT(*) AS n FROM cdr_batches WHERE state <> 'done'`)
        return due === 0 && pending === 0 ? true : undefined
      }), { timeout: 60_000 })

      // No gap, no duplicate: every message once across every object of the hour(s).
      const all = (yield* db<{ id: string }>`SELECT id FROM messages`.pipe(Effect.orDie)).map((r) => r.id).sort()
      const exported = yield* idsUnder("cdr/").pipe(Effect.provide(S3))
      expect(exported.length).toBe(total)
      expect([...exported].sort()).toEqual(all)

      // The re-export of the same range, from the CLI, into its own prefix: the same records.
      const from = new Date(Date.now() - 3_600_000).toISOString()
      const to = new Date(Date.now() + 60_000).toISOString()
      const printed = yield* Effect.promise(() =>
        new Promise<string>((resolve, reject) =>
          execFile(process.execPath, [
            "--no-warnings", "src/cli/main.ts", "cdr", "export", "--config", configFile, "--from", from, "--to", to, "--name", "check1"
          ], { timeout: 60_000 }, (error, stdout, stderr) => error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout))
        )
      )
      expect(printed).toContain(`${total} records`)
      const again = yield* idsUnder("cdr-reexport/check1/").pipe(Effect.provide(S3))
      expect([...again].sort()).toEqual(all)
      // The regular export was not touched by it.
      expect((yield* idsUnder("cdr/").pipe(Effect.provide(S3))).length).toBe(total)
      // A bad range is refused with a message, exit 1.
      const refused = yield* Effect.promise(() =>
        new Promise<{ code: number | null; stderr: string }>((resolve) =>
          execFile(process.execPath, [
            "--no-warnings", "src/cli/main.ts", "cdr", "export", "--config", configFile, "--from", to, "--to", from
          ], { timeout: 60_000 }, (error, _stdout, stderr) => resolve({ code: error === null ? 0 : (error.code as number | null), stderr }))
        )
      )
      expect(refused.code).toBe(1)
      expect(refused.stderr).toContain("--from must be before --to")
      yield* killHard(second)
    }).pipe(Effect.scoped, Effect.provide(Layer.empty)), 180_000)
})
