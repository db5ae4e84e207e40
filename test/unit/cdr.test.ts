import { describe, expect, it } from "@effect/vitest"
import { readFileSync } from "node:fs"
import {
  batchRunName,
  cdrColumns,
  cdrObjectKey,
  csvHeader,
  csvLine,
  hourLabel,
  hourOf,
  jsonLine,
  parseCdrObjectKey,
  parseHourLabel
} from "../../src/domain/Cdr.ts"
import type { CdrRecord } from "../../src/domain/Cdr.ts"

const record: CdrRecord = {
  id: "msg_1",
  organisation: "org_a",
  app: "app_1",
  campaign: null,
  clientReference: "order \"42\", second line\nthird",
  messageClass: "transactional",
  to: "4915112345678",
  from: "ACME",
  destinationCountry: "DE",
  links: ["de1", "de2"],
  smscMessageIds: ["a1", "a2"],
  parts: 2,
  encoding: "gsm7",
  status: "undelivered",
  acceptedAt: Date.UTC(2026, 11, 3, 14, 59, 59, 123),
  submittedAt: Date.UTC(2026, 11, 3, 15, 0, 0, 5),
  finalAt: Date.UTC(2026, 11, 3, 15, 0, 3, 0),
  error: "UNDELIV:001",
  policyReason: null,
  policyRule: null,
  attempts: 0
}

describe("CDR records", () => {
  it("docs/cdr.md lists every column, in order, with its description", () => {
    const doc = readFileSync(new URL("../../docs/cdr.md", import.meta.url), "utf8")
    const table = doc.slice(doc.indexOf("<!-- cdr-columns"), doc.indexOf("<!-- /cdr-columns -->"))
    const rows = [...table.matchAll(/^\| `([a-z_]+)` \| (.+) \|$/gm)].map((m) => [m[1], m[2]])
    expect(rows).toEqual(cdrColumns.map((c) => [c.name, c.description]))
  })

  it("CSV quotes what needs it (commas, quotes, line breaks), leaves absent values empty, ends lines with CRLF", () => {
    expect(csvHeader).toBe(`${cdrColumns.map((c) => c.name).join(",")}\r\n`)
    const line = csvLine(record)
    expect(line.endsWith("\r\n")).toBe(true)
    expect(line).toContain(`,"order ""42"", second line\nthird",`)
    expect(line).toContain(",de1;de2,a1;a2,2,gsm7,undelivered,2026-12-03T14:59:59.123Z,2026-12-03T15:00:00.005Z,")
    // campaign and the two policy columns are empty.
    expect(line.startsWith("msg_1,org_a,app_1,,")).toBe(true)
    expect(line.endsWith(",UNDELIV:001,,,0\r\n")).toBe(true)
  })

  it("JSON Lines carry the same names, null for absent values", () => {
    const object = JSON.parse(jsonLine(record)) as Record<string, unknown>
    expect(Object.keys(object)).toEqual(cdrColumns.map((c) => c.name))
    expect(object).toMatchObject({ campaign: null, links: "de1;de2", parts: 2, accepted_at: "2026-12-03T14:59:59.123Z", policy_rule: null })
  })

  it("an object's key is its organisation and the hour of acceptance, and reads back; anything else under the prefix does not", () => {
    const hour = hourOf(record.acceptedAt)
    const key = cdrObjectKey("cdr", "org_a", hour, batchRunName(42, "3f9a0c1e"), "csv")
    expect(key).toBe("cdr/org_a/2026/12/03/14/b000000000042-3f9a0c1e.csv.gz")
    expect(parseCdrObjectKey("cdr", "org_a", key)).toEqual({ hour, name: "b000000000042-3f9a0c1e.csv.gz" })
    expect(parseCdrObjectKey("cdr", "org_b", key)).toBeUndefined()
    expect(parseCdrObjectKey("cdr", "org_a", "cdr/org_a/2026/12/03/14/notes.txt")).toBeUndefined()
    expect(parseCdrObjectKey("cdr", "org_a", "cdr/org_a/2026/13/03/14/b1.csv.gz")).toBeUndefined()
    expect(parseCdrObjectKey("cdr", "org_a", "cdr/org_a/2026/12/03/14/x/b1.csv.gz")).toBeUndefined()
    expect(hourLabel(hour)).toBe("2026-12-03T14")
    expect(parseHourLabel("2026-12-03T14")).toBe(hour)
    for (const bad of ["2026-12-03", "2026-02-30T01", "2026-12-03T24", "yesterday", "2026-12-03T14:00"]) {
      expect(parseHourLabel(bad)).toBeUndefined()
    }
  })
})
