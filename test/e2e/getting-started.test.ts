import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawnSync } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { startQuickStartGateway } from "../fixtures/Cluster.ts"
import { tempDir } from "../fixtures/Databases.ts"

const root = join(import.meta.dirname, "..", "..")
const page = readFileSync(join(root, "docs", "getting-started.md"), "utf8")

/** The fenced `sh` blocks of one `## ` section of the page. */
const shBlocks = (heading: string): Array<string> => {
  const start = page.indexOf(`## ${heading}`)
  expect(start).toBeGreaterThanOrEqual(0)
  const next = page.indexOf("\n## ", start + 3)
  const section = page.slice(start, next < 0 ? undefined : next)
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!)
}

describe("docs/getting-started.md, run as written", () => {
  it.live("the embedded section's commands, against a fresh gateway started from config/gateway.yaml: the first message is delivered", () =>
    Effect.gen(function*() {
      const [install, ...steps] = shBlocks("Embedded, in one minute")
      // The first block is `npm install && npm start`: this test starts that gateway itself, on ports of its own.
      expect(install!.trim()).toBe("npm install && npm start")
      expect(steps.length).toBeGreaterThanOrEqual(3)
      const dir = yield* tempDir
      const { httpPort } = yield* startQuickStartGateway(dir)

      const script = ["set -euo pipefail", ...steps].join("\n").replaceAll("localhost:8080", `127.0.0.1:${httpPort}`)
      const run = spawnSync("bash", ["-c", script], { encoding: "utf8", timeout: 60_000 })
      expect(run.stderr).toBe("")
      expect(run.status).toBe(0)
      // The organisation printed at registration, the message id, then the delivered view.
      expect(run.stdout).toContain("\"name\": \"Acme\"")
      expect(run.stdout).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/m)
      // jq's last object starts with a `{` alone on its line.
      const view = JSON.parse(run.stdout.slice(run.stdout.lastIndexOf("\n{\n") + 1)) as Record<string, unknown>
      expect(view).toEqual({ status: "delivered", parts: [{ linkId: "demo", status: "delivered" }], events: ["accepted", "submitted", "delivered"] })
    }).pipe(Effect.scoped), 120_000)

  it("the compose section's commands are the two the deployment is checked for", () => {
    const blocks = shBlocks("A cluster with Docker Compose, in five")
    const commands = blocks.join("\n").split("\n").map((l) => l.replace(/#.*$/, "").trim()).filter((l) => l !== "")
    expect(commands).toEqual(["cp .env.example .env", "docker compose up -d"])
    // Docker cannot run here: test/e2e/compose.test.ts checks the file and each node's configuration instead.
    expect(existsSync(join(root, ".env.example"))).toBe(true)
    expect(existsSync(join(root, "docker-compose.yml"))).toBe(true)
  })
})
