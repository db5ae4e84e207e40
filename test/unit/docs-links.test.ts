import { describe, expect, it } from "@effect/vitest"
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { dirname, join, relative } from "node:path"

const root = join(import.meta.dirname, "..", "..")

const markdownFiles = (dir: string): Array<string> =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? markdownFiles(join(dir, e.name)) : e.name.endsWith(".md") ? [join(dir, e.name)] : []
  )

describe("the documentation's links", () => {
  it("every relative link of README.md and docs/ names a file that exists", () => {
    const broken: Array<string> = []
    for (const file of [join(root, "README.md"), ...markdownFiles(join(root, "docs"))]) {
      const text = readFileSync(file, "utf8").replace(/```[\s\S]*?```/g, "")
      for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1]!
        if (/^[a-z]+:/i.test(target) || target.startsWith("#")) continue
        const path = target.split("#")[0]!
        if (!existsSync(join(dirname(file), path))) broken.push(`${relative(root, file)}: ${target}`)
      }
    }
    expect(broken).toEqual([])
  })
})
