/**
 * docs/developer.md, run as a reader runs it: every fenced block in page order in one shell against a fresh
 * `smsgw serve` from config/gateway.yaml — `sh` blocks as they are, `js` blocks saved under the name on their first
 * line and run with the project's Node, `python` blocks the same with python3. Only the block marked `# grpcurl` is
 * not run (grpcurl is not installed here). A plain block is the answer of the block before it, and must be what that
 * block printed, but for ids and the rest that differs by run.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { startQuickStartGateway } from "../fixtures/Cluster.ts"
import { tempDir } from "../fixtures/Databases.ts"
import { get } from "../fixtures/Gateway.ts"
import { freePort } from "../fixtures/Processes.ts"

const root = join(import.meta.dirname, "..", "..")
const page = readFileSync(join(root, "docs", "developer.md"), "utf8")

interface Block {
  readonly lang: string
  readonly code: string
  /** The `## ` section it stands in. */
  readonly section: string
  /** js and python: the file name on its first line. */
  readonly file: string | undefined
}

const blocks: ReadonlyArray<Block> = [...page.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].map((m) => {
  const before = page.slice(0, m.index)
  const heading = [...before.matchAll(/^## (.+)$/gm)].at(-1)?.[1] ?? ""
  const code = m[2]!
  const named = /^(?:\/\/|#) ([\w-]+\.(?:mjs|py)) — /.exec(code)
  return { lang: m[1]!, code, section: heading, file: named?.[1] }
})

/** Ids, an app's id, a bucket's remaining units and the order of watch updates differ between runs. */
const comparable = (output: string) =>
  new Set(
    output
      .replaceAll(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, "<uuid>")
      .replaceAll(/app_[0-9a-f]+/g, "app_<id>")
      .replaceAll(/;r=\d+;/g, ";r=<n>;")
      .split("\n")
      .filter((l) => l.trim() !== "" && !l.startsWith("watch "))
  )

const notRun = (b: Block) => b.lang === "sh" && b.code.startsWith("# grpcurl")
const runnable = blocks.filter((b) => ["sh", "js", "python"].includes(b.lang) && !notRun(b))

const uuid = "[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}"

const imports = (b: Block) =>
  b.lang === "js"
    ? [...b.code.matchAll(/^import .* from "([^"]+)"$/gm)].map((m) => m[1]!)
    : [...b.code.matchAll(/^(?:import (.+)|from (\S+) import .+)$/gm)].flatMap((m) => m[1] !== undefined ? m[1].split(/,\s*/) : [m[2]!])

/** `bash script` in `cwd`, bounded: its process group is killed after `timeoutMs` or when the fiber is interrupted. */
const runScript = (script: string, cwd: string, env: NodeJS.ProcessEnv, timeoutMs: number) =>
  Effect.callback<{ readonly code: number | null; readonly stdout: string; readonly stderr: string; readonly timedOut: boolean }>((resume) => {
    const child = spawn("bash", [script], { cwd, env, detached: true, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    let timedOut = false
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()))
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()))
    // The group: bash and whatever node, python3 or curl it is waiting for.
    const killGroup = () => {
      if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
      try {
        process.kill(-child.pid, "SIGKILL")
      } catch {
        // Already gone.
      }
    }
    const timer = setTimeout(() => {
      timedOut = true
      killGroup()
    }, timeoutMs)
    child.on("close", (code) => {
      clearTimeout(timer)
      resume(Effect.succeed({ code, stdout, stderr, timedOut }))
    })
    return Effect.sync(() => {
      clearTimeout(timer)
      killGroup()
    })
  })

/** The output of each block, split at the markers the script prints before it. */
const splitAt = (text: string, count: number): Array<string> => {
  const parts = text.split(/^::block (\d+)\n/m)
  const out: Array<string> = Array.from({ length: count }, () => "")
  for (let i = 1; i < parts.length; i += 2) out[Number(parts[i])] = parts[i + 1]!
  return out
}

describe("docs/developer.md, run as written", () => {
  it("its blocks are the kinds the test knows, named, and the examples use only fetch, the standard library or grpc-js", () => {
    for (const b of blocks) expect(["sh", "js", "python", ""], b.code.slice(0, 80)).toContain(b.lang)
    // An answer shown follows the command that prints it.
    blocks.forEach((b, i) => {
      if (b.lang === "") expect(runnable, b.code.slice(0, 80)).toContain(blocks[i - 1])
    })
    const files = runnable.filter((b) => b.lang !== "sh").map((b) => b.file)
    expect(files.every((f) => f !== undefined)).toBe(true)
    expect(new Set(files).size).toBe(files.length)
    expect(runnable.filter((b) => b.lang === "js").every((b) => b.file?.endsWith(".mjs"))).toBe(true)
    expect(runnable.filter((b) => b.lang === "python").every((b) => b.file?.endsWith(".py"))).toBe(true)
    for (const b of runnable.filter((b) => b.lang === "js")) {
      for (const name of imports(b)) expect(["./smsgw.mjs", "@grpc/grpc-js", "@grpc/proto-loader"], `${b.file} imports ${name}`).toContain(name)
    }
    for (const b of runnable.filter((b) => b.lang === "python")) {
      for (const name of imports(b)) expect(["json", "os", "time", "uuid", "urllib.error", "urllib.request", "smsgw"], `${b.file} imports ${name}`).toContain(name)
    }
    // The environment is the only way an example learns where the gateway is.
    for (const b of runnable.filter((b) => b.lang !== "sh")) expect(b.code, b.file).not.toMatch(/localhost|127\.0\.0\.1|:8080|:9090/)
    // The one block not run holds grpcurl commands only, and the page says so.
    const skipped = blocks.filter(notRun)
    expect(skipped.length).toBe(1)
    const commands = skipped[0]!.code.split("\n").filter((l) => l.trim() !== "" && !l.startsWith("#") && !l.startsWith(" "))
    expect(commands.every((l) => l.startsWith("grpcurl "))).toBe(true)
    expect(page).toContain("**These commands are not run by the test**")
  })

  it.live("every example, in order, against a fresh gateway started from config/gateway.yaml", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const grpcPort = yield* freePort
      const { httpPort } = yield* startQuickStartGateway(dir, { SMSGW_GRPC_PORT: String(grpcPort) })
      const base = `http://127.0.0.1:${httpPort}`

      // The reader's project: the examples, node_modules with grpc-js and proto-loader, and a copy of proto/.
      const work = join(dir, "project")
      mkdirSync(work)
      symlinkSync(join(root, "node_modules"), join(work, "node_modules"))
      symlinkSync(join(root, "proto"), join(work, "proto"))
      const steps = runnable.map((b, i) => {
        const marker = `echo '::block ${i}'; echo '::block ${i}' >&2`
        if (b.lang === "sh") {
          return `${marker}\n${b.code.replaceAll("http://localhost:8080", base).replaceAll("127.0.0.1:9090", `127.0.0.1:${grpcPort}`)}`
        }
        writeFileSync(join(work, b.file!), b.code)
        // python3 -S: without site-packages, so an example that needs more than the standard library fails here.
        return `${marker}\ntimeout 30 ${b.lang === "js" ? "node" : "python3 -S"} ${b.file}`
      })
      const script = join(work, "run.sh")
      writeFileSync(script, ["set -euo pipefail", ...steps, "printf %s \"$SMSGW_TOKEN\" > .token"].join("\n"))
      const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("SMSGW_")))
      // `node` is the project's Node 24, as `npm start` gives the reader.
      const run = yield* runScript(script, work, { ...env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ""}` }, 150_000)

      // curl -i prints header lines ending in CRLF.
      const stdout = splitAt(run.stdout.replaceAll("\r\n", "\n"), runnable.length)
      const stderr = splitAt(run.stderr, runnable.length)
      const failedAt = run.stdout.match(/^::block (\d+)$/gm)?.length ?? 0
      const where = `block ${failedAt - 1} (${runnable[failedAt - 1]?.file ?? runnable[failedAt - 1]?.section}); stdout:\n${run.stdout.slice(-3_000)}\nstderr:\n${run.stderr.slice(-3_000)}`
      expect(run.timedOut, where).toBe(false)
      expect(run.code, where).toBe(0)
      runnable.forEach((b, i) => expect(stderr[i], `stderr of block ${i} (${b.file ?? b.section})`).toBe(""))

      // Each answer shown is what its block printed.
      blocks.forEach((b, i) => {
        if (b.lang !== "") return
        const printed = stdout[runnable.indexOf(blocks[i - 1]!)]!
        expect(comparable(printed), `the answer shown after block ${runnable.indexOf(blocks[i - 1]!)}:\n${b.code}\nprinted:\n${printed}`).toEqual(comparable(b.code))
      })

      const out = (file: string) => stdout[runnable.findIndex((b) => b.file === file)]!
      const sh = (section: string) => runnable.flatMap((b, i) => b.lang === "sh" && b.section === section ? [stdout[i]!] : [])
      // The app token the page's shell ended with, to read the messages the examples sent.
      const token = readFileSync(join(work, ".token"), "utf8")
      const auth = { authorization: `Bearer ${token}` }
      const statusOf = (id: string) => Effect.map(get(`${base}/v1/messages/${id}`, auth), (r) => r.json.status)

      // An app token: the organisation made, and the key exchanged by each backend.
      const [setup] = sh("An app token")
      expect(JSON.parse(setup!)).toMatchObject({ name: "Acme" })
      expect(token).toMatch(/^ey/)
      for (const file of ["app-token.mjs", "app_token.py"]) expect(out(file)).toMatch(/^token ey\S+…, valid (89\d|900) s$/m)

      // One message each, followed to its receipt; the gateway agrees on each id.
      const [curlSend] = sh("Send one message and follow it")
      const ids = [
        new RegExp(`^(${uuid})$`, "m").exec(curlSend!)?.[1],
        ...["send.mjs", "send.py"].map((f) => new RegExp(`^accepted (${uuid})$`, "m").exec(out(f))?.[1])
      ]
      expect(curlSend).toContain("{\"status\":\"delivered\",\"events\":[\"accepted\",\"submitted\",\"receipt\"]}")
      for (const file of ["send.mjs", "send.py"]) expect(out(file)).toMatch(/^delivered accepted → submitted → receipt$/m)
      expect(new Set(ids).size).toBe(3)
      for (const id of ids) expect(yield* statusOf(id!)).toBe("delivered")

      // A batch: two accepted, the third refused naming its field.
      const [curlBatch] = sh("A batch")
      expect(curlBatch).toMatch(/^\{"accepted":2,"refused":1\}$/m)
      expect(curlBatch).toContain("[2,\"refused\",\"messages[2].to\"]")
      for (const file of ["batch.mjs", "batch.py"]) {
        expect(out(file)).toMatch(/^2 accepted, 1 refused$/m)
        expect(out(file)).toMatch(new RegExp(`^0 accepted ${uuid}$`, "m"))
        expect(out(file)).toMatch(/^2 refused messages\[2\]\.to: must be a valid phone number/m)
      }

      // Idempotency: the repeat is the first answer (same id, replayed), another request under the key a 422.
      const [curlKey] = sh("Retry safely: the Idempotency-Key")
      const curlIds = [...curlKey!.matchAll(new RegExp(`"id":"(${uuid})"`, "g"))].map((m) => m[1])
      expect(curlIds.length).toBe(2)
      expect(curlIds[0]).toBe(curlIds[1])
      expect(curlKey).toMatch(/^idempotent-replayed: true$/m)
      expect(curlKey).toMatch(/^HTTP\/1\.1 422 /m)
      expect(curlKey).toContain("\"type\":\"urn:smsgw:problem:idempotency-key-reused\"")
      for (const file of ["idempotency.mjs", "idempotency.py"]) {
        const first = new RegExp(`^first  202 (${uuid})$`, "m").exec(out(file))?.[1]
        expect(first, file).toBeDefined()
        expect(out(file)).toContain(`repeat 202 ${first} replayed: true`)
        expect(out(file)).toMatch(/^other  422 urn:smsgw:problem:idempotency-key-reused$/m)
      }

      // Rate limits: the link's headers, then with one message a second the second send is a 429 with Retry-After.
      const [headers, limited, lifted] = sh("Rate limits: the headers and a 429")
      expect(headers).toMatch(/^ratelimit-policy: "link:demo-s";q=1000;w=2$/m)
      expect(headers).toMatch(/^ratelimit: "link:demo-s";r=\d+;t=\d+$/m)
      expect(limited).toMatch(/^\{"perSecond":1,"burst":1\}\nHTTP\/1\.1 202 Accepted/m)
      expect(limited).toMatch(/^HTTP\/1\.1 429 Too Many Requests\n(.*\n)*retry-after: 1$/m)
      for (const file of ["ratelimit.mjs", "ratelimit.py"]) {
        const lines = out(file).trim().split("\n")
        // Each sends twice; the second is refused at least once, waits and is accepted.
        expect(lines.filter((l) => l.startsWith("429 rate limit app:")).length, out(file)).toBeGreaterThanOrEqual(1)
        expect(lines.filter((l) => new RegExp(`^202 ${uuid} "app:app_\\w+-s";r=0;t=1$`).test(l)).length, out(file)).toBe(2)
        expect(lines.at(-1)).toMatch(/^202 /)
      }
      expect(lifted!.trim()).toBe("{}")

      // Errors: the 400 names every bad field.
      const [curlError] = sh("Errors")
      const problem = JSON.parse(curlError!) as { status: number; type: string; errors: Array<{ field: string }> }
      expect(problem.status).toBe(400)
      expect(problem.type).toBe("urn:smsgw:problem:validation")
      expect(problem.errors.map((e) => e.field).sort()).toEqual(["text", "to", "txt"])
      for (const file of ["errors.mjs", "errors.py"]) {
        expect(out(file)).toMatch(/^400 urn:smsgw:problem:validation$/m)
        expect(out(file)).toMatch(/^ {2}to: must be a valid phone number/m)
        expect(out(file)).toMatch(/^ {2}txt: unknown field/m)
      }

      // gRPC: the message sent is watched to delivered, GetMessage answers the same message's status, REST agrees.
      const grpcOut = out("grpc.mjs")
      const grpcId = new RegExp(`^sent (${uuid}) MESSAGE_STATUS_ACCEPTED$`, "m").exec(grpcOut)?.[1]
      expect(grpcId, grpcOut).toBeDefined()
      expect(grpcOut.trim().split("\n").filter((l) => l.startsWith("watch ")).at(-1)).toMatch(/^watch MESSAGE_STATUS_DELIVERED /)
      expect(grpcOut).toContain(`get ${grpcId} MESSAGE_STATUS_DELIVERED demo`)
      expect(grpcOut).toMatch(/^refused INVALID_ARGUMENT to: must be a valid phone number/m)
      expect(yield* statusOf(grpcId!)).toBe("delivered")
    }).pipe(Effect.scoped), 200_000)
})
