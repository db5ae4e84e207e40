import { describe, expect, it } from "vitest"
import { execFileSync, spawnSync } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, relative } from "node:path"

const root = join(import.meta.dirname, "..", "..")
const buf = join(root, "node_modules", ".bin", "buf")
/** Breaking-change rules for the image comparison (an image input carries no buf.yaml): the file-level set. */
const breakingConfig = JSON.stringify({ version: "v2", breaking: { use: ["FILE"] } })

const run = (args: ReadonlyArray<string>, cwd = root) => spawnSync(buf, args, { cwd, encoding: "utf8", env: { ...process.env, PATH: `${join(root, "node_modules", ".bin")}:${process.env.PATH ?? ""}` } })

const filesUnder = (dir: string): Array<string> =>
  readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath, e.name))).sort()

/** The contract, where `buf breaking` would compare it: an image of our files with their imports. */
const buildImage = (dir: string) => {
  const image = join(dir, "current.binpb")
  const built = run(["build", "--path", "proto/smsgw", "-o", image])
  expect(built.stderr).toBe("")
  return image
}

describe("the gRPC contract (proto/)", () => {
  it("buf lint (STANDARD) is clean", () => {
    const lint = run(["lint"])
    expect(lint.stdout + lint.stderr).toBe("")
    expect(lint.status).toBe(0)
  })

  it("nothing breaks the committed baseline, and a breaking change is caught", () => {
    const dir = mkdtempSync(join(tmpdir(), "smsgw-proto-"))
    try {
      const image = buildImage(dir)
      const ok = run(["breaking", image, "--against", "proto/baseline.binpb", "--exclude-imports", "--config", breakingConfig])
      expect(ok.stdout + ok.stderr).toBe("")
      expect(ok.status).toBe(0)
      // The check itself works: the same contract with a field's type changed is refused.
      const copy = join(dir, "copy")
      execFileSync("mkdir", [copy])
      execFileSync("cp", ["-r", join(root, "proto"), join(root, "buf.yaml"), copy])
      const file = join(copy, "proto/smsgw/v1/messages.proto")
      writeFileSync(file, readFileSync(file, "utf8").replace("uint32 segments = 3;", "uint64 segments = 3;"))
      const brokenImage = join(dir, "broken.binpb")
      expect(run(["build", "--path", "proto/smsgw", "-o", brokenImage], copy).status).toBe(0)
      const broken = run(["breaking", brokenImage, "--against", join(root, "proto/baseline.binpb"), "--exclude-imports", "--config", breakingConfig])
      expect(broken.status).not.toBe(0)
      expect(broken.stdout).toContain('changed type from "uint32" to "uint64"')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it("the committed generated code is what `npm run proto` makes from the protos now", () => {
    const dir = mkdtempSync(join(tmpdir(), "smsgw-gen-"))
    try {
      const generated = run(["generate", "-o", dir])
      expect(generated.stderr).toBe("")
      const fresh = join(dir, "src/grpc/gen")
      const committed = join(root, "src/grpc/gen")
      expect(filesUnder(fresh)).toEqual(filesUnder(committed))
      for (const file of filesUnder(committed)) {
        expect(readFileSync(join(fresh, file), "utf8"), file).toBe(readFileSync(join(committed, file), "utf8"))
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
