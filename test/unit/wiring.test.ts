import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { decodeConfig } from "../../src/layers/Config.ts"
import { migrations } from "../../src/layers/Migrations.ts"
import { productVersion } from "../../src/layers/Version.ts"
import { readFileSync } from "node:fs"

const link = (id: string) => ({ id, host: "127.0.0.1", port: 2775, systemId: id, password: "pw" })

describe("one home for each fact", () => {
  it("the composed migrations keep the ids and order databases have applied", () => {
    const list = Effect.runSync(migrations).map(([id, name]) => [id, name])
    expect(list).toEqual([
      [1, "messages"],
      [2, "accounts"],
      [3, "routing"],
      [4, "actor_registry"],
      [5, "blacklists"],
      [6, "policies"],
      [7, "app_message_class"],
      [8, "orphan_receipt_ref"],
      [9, "handed_parts"],
      [10, "parts_awaiting_receipt"],
      [11, "invitation_tokens"],
      [12, "contact_lists"],
      [13, "campaigns"],
      [14, "message_search"],
      [15, "dashboard"],
      [16, "policy_versions"],
      [17, "audit_filters"],
      [18, "idempotency_keys"],
      [19, "message_trace"],
      [20, "campaign_trace"],
      [21, "cdr_batches"],
      [22, "audit_retention"],
      [23, "app_callbacks"],
      [24, "callbacks"],
      [25, "inbound"],
      [26, "app_smpp"],
      [27, "pg_status_statistics"]
    ])
  })

  it("the version traces name the service by is package.json's", () => {
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
    expect(productVersion).toBe(pkg.version)
  })

  it("the configuration file checks pools with the admin API's schema: duplicate members and bad link ids refused", () => {
    const refusal = (pools: unknown) =>
      Effect.runSync(decodeConfig({ links: [link("a"), link("b")], pools }).pipe(Effect.flip)).message
    expect(refusal([{ id: "p", members: [{ link: "a" }, { link: "a" }] }])).toContain("pools[0].members[1].link")
    expect(refusal([{ id: "p", members: [{ link: "not an id" }] }])).toContain("pools[0].members[0].link")
    expect(refusal([{ id: "p", members: [] }])).toContain("pools[0].members")
    expect(refusal([{ id: "p", members: [{ link: "a", weight: 0 }] }])).toContain("pools[0].members[0].weight")
  })
})
