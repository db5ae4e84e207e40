import { describe, expect, it } from "@effect/vitest"
import { readFileSync } from "node:fs"
import { configurationReference, grpcStatusReference, metricsReference, problemsReference, smppReference } from "../../scripts/reference.ts"

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

  it("docs/reference/metrics.md lists every metric the sources define (npm run docs:reference)", () => {
    const page = readFileSync(new URL("../../docs/reference/metrics.md", import.meta.url), "utf8")
    expect(page).toBe(metricsReference())
    // Metrics defined over several lines and with descriptions in pieces are found too.
    expect(page).toContain("| `smsgw_cdr_export_lag_seconds` | gauge | How long the longest-waiting final message has waited for its CDR (0: none waiting); set by the exporting node |")
    expect(page).toContain("| `smsgw_link_submit_responses_total` | counter |")
  })

  it("docs/reference/problems.md lists every problem type the API answers with (npm run docs:reference)", () => {
    const page = readFileSync(new URL("../../docs/reference/problems.md", import.meta.url), "utf8")
    expect(page).toBe(problemsReference())
    expect(page).toContain("| 422 | `urn:smsgw:problem:policy-rejected` | The contact policy refused this message | PolicyRejectedProblem |")
    expect(page).toContain("| 415 | `urn:smsgw:problem:unsupported-media-type` | Unsupported media type | the HTTP edge |")
  })

  it("docs/reference/smpp-status.md is what the link actor decides for each SMPP answer (npm run docs:reference)", () => {
    const page = readFileSync(new URL("../../docs/reference/smpp-status.md", import.meta.url), "utf8")
    expect(page).toBe(smppReference())
    expect(page).toContain("| `0x58` | `ESME_RTHROTTLED` | throttled |")
    expect(page).toContain("halved (AIMD)")
    expect(page).toMatch(/\| no bound session to send on \| `NotBound` \| waits for a bind/)
    expect(page).toMatch(/`SubmitTimeout` \| retried .*\(an unknown outcome\)/)
  })

  it("docs/reference/grpc-status.md is what the gRPC and REST mappings answer for each error (npm run docs:reference)", () => {
    const page = readFileSync(new URL("../../docs/reference/grpc-status.md", import.meta.url), "utf8")
    expect(page).toBe(grpcStatusReference())
    // Details decoded from the trailer; a value the error carries told apart from one the mapping fixes.
    expect(page).toMatch(/\| `RateLimited` \|.*\| `RESOURCE_EXHAUSTED` \(8\) \| `RetryInfo` \(the error's `retryAfterSeconds`\); `ErrorInfo` \(reason `RATE_LIMITED`/)
    expect(page).toMatch(/\| `IdempotencyKeyInFlight` \|.*`RetryInfo` \(1 s\).*\| 409 `urn:smsgw:problem:idempotency-in-flight`, `Retry-After`: 1 s \|/)
    expect(page).toMatch(/\| `IdempotencyKeyReused` \|.*\| `INVALID_ARGUMENT` \(3\) \| `BadRequest` on `idempotency_key` \| 422 /)
    expect(page).toContain("(`messageClass` → `message_class`)")
    expect(page).toContain("reason `BLACKLISTED` \\| `FREQUENCY_CAP` \\| `DUPLICATE` \\| `QUIET_HOURS`")
    expect(page).toMatch(/\| `serverDeadline` \|.*\| `DEADLINE_EXCEEDED` \(4\) \|/)
  })
})
