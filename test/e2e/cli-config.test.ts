/** `smsgw serve` with a bad configuration: the operator reads each bad key once, with no stack trace, and exit 1. */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawnSync } from "node:child_process"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { tempDir } from "../fixtures/Databases.ts"
import { spawnSmsgw } from "../fixtures/Processes.ts"

describe("smsgw serve with a bad configuration", () => {
  it.live("prints the bad key once, without a stack trace, and exits 1", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const file = join(dir, "bad.yaml")
      writeFileSync(file, "http: { port: \"${HTTP_PORT}\" }\nlinks: []\n")
      const gw = yield* spawnSmsgw(["serve", "--config", file], { HTTP_PORT: "eighty" })
      const code = yield* Effect.promise(() =>
        new Promise<number | null>((resolve) => {
          if (gw.child.exitCode !== null) resolve(gw.child.exitCode)
          else gw.child.once("exit", (c) => resolve(c))
        })
      )
      const output = gw.output()
      expect(code).toBe(1)
      expect(output.split("http.port: Expected number").length - 1, output).toBe(1)
      expect(output).toContain(`invalid configuration in ${file}`)
      expect(output).not.toMatch(/^\s+at /m)
    }).pipe(Effect.scoped), 30_000)
})

describe("the documented command form", () => {
  it("`npm run -s smsgw -- …` with the machine's npm prints the command's output only (no EBADENGINE), on the project's Node", () => {
    // The machine's PATH only: npm (and its Node, older than the project's) as a newcomer's shell finds them.
    const machinePath = (process.env.PATH ?? "").split(":").filter((dir) => !dir.includes("node_modules")).join(":")
    const run = spawnSync("npm", ["run", "-s", "smsgw", "--", "--version"], {
      cwd: join(import.meta.dirname, "..", ".."),
      encoding: "utf8",
      timeout: 60_000,
      env: { ...process.env, PATH: machinePath }
    })
    expect(run.stderr).toBe("")
    expect(run.stdout.trim()).toMatch(/^smsgw v\d+\.\d+\.\d+$/)
    expect(run.status).toBe(0)
  })
})
