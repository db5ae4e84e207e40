import { describe, expect, it } from "@effect/vitest"
import { readFileSync } from "node:fs"
import { configurationReference } from "../../scripts/reference.ts"

describe("generated reference pages", () => {
  it("docs/reference/configuration.md is what the configuration's Schema says now (npm run docs:reference)", () => {
    const page = readFileSync(new URL("../../docs/reference/configuration.md", import.meta.url), "utf8")
    expect(page).toBe(configurationReference())
  })

  it("the page holds every kind of key: defaults, constraints, nested sections, lists of objects, a union's kinds", () => {
    const page = configurationReference()
    expect(page).toContain("| `cdr.batchSize` | integer | `50000` | a value between 100 and 1000000 |")
    expect(page).toContain("| `cluster.shardLockExpirationMs` | integer | `6000` |")
    expect(page).toContain("| `links[].id` | string | — |")
    expect(page).toContain("| `objectStore.region (kind: s3)` | string | `\"us-east-1\"` |")
    expect(page).toContain("| `http.trustedProxies` | list of string | `[]` |")
  })
})
