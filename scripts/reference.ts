/**
 * `npm run docs:reference`: writes docs/reference/configuration.md from the configuration's Schema (every key, its
 * type, default and constraints) and docs/reference/metrics.md from the metrics the sources define (name, kind,
 * description, module) and docs/reference/problems.md from the problem types the HTTP API answers with;
 * smpp-status.md and grpc-status.md are what the code's own decision and mapping functions answer for a sample of each input.
 * test/unit/reference-docs.test.ts fails when a page and the code differ.
 */
import { fromBinary, toBinary } from "@bufbuild/protobuf"
import { anyUnpack } from "@bufbuild/protobuf/wkt"
import { status as Code } from "@grpc/grpc-js"
import { Result, Schema } from "effect"
import { Forbidden, Unauthenticated } from "../src/auth/Errors.ts"
import {
  IdempotencyKeyInFlight,
  IdempotencyKeyReused,
  InvalidField,
  MessageNotFound,
  NoRoute,
  PolicyRejected,
  policyReasons,
  StoreUnavailable
} from "../src/domain/Errors.ts"
import * as GrpcErrors from "../src/grpc/Errors.ts"
import { BadFields, serviceErrorOf, statusOf } from "../src/grpc/Errors.ts"
import type { GrpcError } from "../src/grpc/Errors.ts"
import { BadRequestSchema, ErrorInfoSchema, RetryInfoSchema } from "../src/grpc/gen/google/rpc/error_details_pb.ts"
import { StatusSchema } from "../src/grpc/gen/google/rpc/status_pb.ts"
import { toProblem } from "../src/http/AccountsHandlers.ts"
import { invalidField, NotFoundProblem } from "../src/http/Problems.ts"
import { retryAfterOf, submitProblem } from "../src/http/SubmitProblems.ts"
import type { SubmitError } from "../src/pipeline/Gateway.ts"
import { PolicyUnavailable } from "../src/pipeline/PolicyDispatcher.ts"
import { LimiterUnavailable, RateLimited } from "../src/ratelimit/RateLimiter.ts"
import { afterAttempt, decideSubmit } from "../src/actors/SmppLinkDecisions.ts"
import type { SubmitDecision } from "../src/actors/SmppLinkDecisions.ts"
import { classifyCommandStatus, CommandStatus } from "../src/smpp/CommandStatus.ts"
import type { CommandStatusName } from "../src/smpp/CommandStatus.ts"
import { ConnectionLost, NotBound, SubmitRejected, SubmitTimeout, WindowTimeout } from "../src/smpp/Session.ts"
import { readdirSync, readFileSync, writeFileSync } from "node:fs"
import { join, relative } from "node:path"
import { GatewayConfig } from "../src/layers/Config.ts"

// The Schema AST, read structurally: the node kinds this walk needs and the fields it reads.
interface Node {
  readonly _tag: string
  readonly propertySignatures?: ReadonlyArray<{ readonly name: PropertyKey; readonly type: Node }>
  readonly indexSignatures?: ReadonlyArray<{ readonly parameter: Node; readonly type: Node }>
  readonly types?: ReadonlyArray<Node>
  readonly rest?: ReadonlyArray<Node>
  readonly literal?: unknown
  readonly checks?: ReadonlyArray<{ readonly annotations?: { readonly expected?: string } }>
  readonly context?: { readonly isOptional?: boolean }
  /** Present on a key with a default (Schema.withDecodingDefaultKey). */
  readonly encoding?: unknown
}

/**
 * The sections that are absent unless written, each with its required keys filled in, so the defaults of their other
 * keys show. Only keys with a default of their own are shown as defaults: these filled-in values never are.
 */
const filled = {
  links: [],
  metrics: { port: 9464 },
  cluster: { runnerHost: "node-1", runnerPort: 34431 },
  simulator: { enabled: true },
  grpc: { tls: { certFile: "cert.pem", keyFile: "key.pem" } },
  telemetry: { otlp: { endpoint: "http://collector:4318" } },
  auth: { superadmin: { email: "ops@example.com", password: "x" } },
  mail: { smtp: { host: "smtp", port: 25 } }
}

/** Each kind of a union section, its required keys filled in, for the defaults of the others. */
const filledKinds: Record<string, Record<string, object>> = {
  objectStore: { local: { kind: "local", root: "./data/objects" }, s3: { kind: "s3", bucket: "smsgw" } }
}

const decode = (document: object): unknown => Schema.decodeUnknownSync(GatewayConfig)(document)

interface Row {
  readonly key: string
  readonly type: string
  readonly defaultValue: string
  readonly constraint: string
}

const constraintOf = (node: Node): string =>
  (node.checks ?? []).map((c) => c.annotations?.expected).filter((e): e is string => e !== undefined && e !== "an integer").join(", ")

const isRecord = (node: Node) => node._tag === "Objects" && (node.indexSignatures?.length ?? 0) > 0

const typeOf = (node: Node): string => {
  switch (node._tag) {
    case "String":
      return "string"
    case "Number":
      return (node.checks ?? []).some((c) => c.annotations?.expected === "an integer") ? "integer" : "number"
    case "Boolean":
      return "boolean"
    case "Literal":
      return JSON.stringify(node.literal)
    case "Union":
      return (node.types ?? []).map(typeOf).join(" \\| ")
    case "Arrays":
      return `list of ${typeOf(node.rest?.[0] ?? { _tag: "Unknown" })}`
    case "Objects":
      {
        const index = node.indexSignatures?.[0]
        return index === undefined ? "object" : `map of ${typeOf(index.parameter)} → ${typeOf(index.type)}`
      }
    default:
      return node._tag.toLowerCase()
  }
}

const valueAt = (value: unknown, path: ReadonlyArray<string>): unknown =>
  path.reduce<unknown>((v, k) => (v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>)[k] : undefined), value)

const shown = (value: unknown): string => value === undefined ? "—" : `\`${JSON.stringify(value)}\``

/** Every key under `node`: leaves as rows; objects walked; lists of objects as `key[].field`; unions by their kind. */
const walk = (node: Node, path: ReadonlyArray<string>, label: string, defaults: unknown, rows: Array<Row>, inList: boolean) => {
  if (node._tag === "Objects" && !isRecord(node)) {
    for (const p of node.propertySignatures ?? []) {
      const name = String(p.name)
      walk(p.type, [...path, name], label === "" ? name : `${label}.${name}`, defaults, rows, inList)
    }
    return
  }
  if (node._tag === "Union" && (node.types ?? []).every((t) => t._tag === "Objects" && !isRecord(t))) {
    const members = node.types ?? []
    // The key that tells the members apart (`kind`, `type`): a literal in every member. Without one, keys are merged.
    const tag = ["kind", "type"].find((name) =>
      members.every((m) => m.propertySignatures?.some((p) => p.name === name && p.type._tag === "Literal"))
    )
    const seen = new Set<string>()
    for (const member of members) {
      const value = tag === undefined ? undefined : member.propertySignatures?.find((p) => p.name === tag)?.type.literal
      for (const p of member.propertySignatures ?? []) {
        const name = String(p.name)
        if (name === tag) continue
        const key = tag === undefined ? `${label}.${name}` : `${label}.${name} (${tag}: ${String(value)})`
        if (seen.has(key)) continue
        seen.add(key)
        const sample = filledKinds[label]?.[String(value)]
        const memberDefaults = inList || sample === undefined ? null : decode({ ...filled, [label]: sample })
        walk(p.type, [...path, name], key, memberDefaults, rows, inList)
      }
    }
    if (tag !== undefined) {
      rows.push({
        key: `${label}.${tag}`,
        type: members.map((m) => typeOf(m.propertySignatures?.find((p) => p.name === tag)?.type ?? m)).join(" \\| "),
        defaultValue: inList ? "—" : shown(valueAt(defaults, [...path, tag])),
        constraint: ""
      })
    }
    return
  }
  const element = node._tag === "Arrays" ? node.rest?.[0] : undefined
  const objectLike = (n: Node | undefined) => n !== undefined && n._tag === "Objects" && !isRecord(n)
  if (element !== undefined && (objectLike(element) || (element._tag === "Union" && (element.types ?? []).every(objectLike)))) {
    rows.push({
      key: label,
      type: "list of objects",
      defaultValue: node.encoding === undefined ? "—" : shown(valueAt(defaults, path)),
      constraint: constraintOf(node)
    })
    walk(element, [], `${label}[]`, undefined, rows, true)
    return
  }
  rows.push({
    key: label,
    type: typeOf(node),
    defaultValue: node.encoding === undefined || inList || defaults === null ? "—" : shown(valueAt(defaults, path)),
    constraint: constraintOf(node)
  })
}

/** The page, as generated from the code now. */
export const configurationReference = (): string => {
  // The schema alone (not decodeConfig's checks across keys, which refuse a cluster on SQLite).
  const defaults = decode(filled)
  const rows: Array<Row> = []
  walk((GatewayConfig as unknown as { readonly ast: Node }).ast, [], "", defaults, rows, false)
  const sorted = rows.sort((a, b) => a.key.localeCompare(b.key))
  return [
    "# Reference: configuration keys",
    "",
    "<!-- Generated by `npm run docs:reference` from the configuration's Schema (src/layers/Config.ts); do not edit.",
    "     test/unit/reference-docs.test.ts fails when it and the code differ. What each key does: configuration.md. -->",
    "",
    `Every key of the configuration file: ${sorted.length} of them, with the type the file must give, the default a key`,
    "left out takes (— : none; the key is optional or required as [configuration.md](../configuration.md) says), and the",
    "constraints checked at start-up (`smsgw serve --check` shows the result). `kind: …` rows belong to that kind only.",
    "",
    "| key | type | default | constraints |",
    "|---|---|---|---|",
    // A `|` inside a cell (a pattern's alternatives) would end the cell.
    ...sorted.map((r) => `| \`${r.key}\` | ${r.type} | ${r.defaultValue.replaceAll("|", "\\|")} | ${r.constraint.replaceAll("|", "\\|")} |`),
    ""
  ].join("\n")
}

const root = new URL("..", import.meta.url).pathname

const sourceFiles = (dir: string): Array<string> =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : []
  )

/** `Metric.counter("name", { description: "…" + "…" })` and its kin, wherever the sources define one. */
const metricDefinition = /Metric\.(counter|gauge|histogram|summary)\(\s*"([a-z_:][a-z0-9_:]*)",\s*\{\s*description:\s*((?:"(?:[^"\\]|\\.)*"\s*\+?\s*)+)/g

/** The page of metrics, as the sources define them now. */
export const metricsReference = (): string => {
  const rows: Array<{ readonly name: string; readonly kind: string; readonly description: string; readonly file: string }> = []
  for (const file of sourceFiles(join(root, "src")).sort()) {
    const text = readFileSync(file, "utf8")
    for (const m of text.matchAll(metricDefinition)) {
      const description = [...(m[3] ?? "").matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((d) => JSON.parse(`"${d[1]}"`) as string).join("")
      rows.push({ name: (m[2] ?? ""), kind: (m[1] ?? ""), description, file: relative(root, file) })
    }
  }
  const sorted = rows.sort((a, b) => a.name.localeCompare(b.name))
  return [
    "# Reference: metrics",
    "",
    "<!-- Generated by `npm run docs:reference` from the metrics the sources define (Metric.counter, gauge, histogram);",
    "     do not edit. test/unit/reference-docs.test.ts fails when it and the code differ. Labels and what to watch:",
    "     operations.md and observability.md. -->",
    "",
    `Every metric the gateway defines (${sorted.length}), as \`GET /metrics\` names it: counters end in \`_total\`; histograms add`,
    "`_bucket`, `_sum` and `_count`. Effect's cluster runtime adds its own `effect_cluster_*` gauges. Labels and alerts:",
    "[operations.md](../operations.md#metrics-get-metrics-prometheus-text), [observability.md](../observability.md).",
    "",
    "| metric | kind | description | defined in |",
    "|---|---|---|---|",
    ...sorted.map((r) => `| \`${r.name}\` | ${r.kind} | ${r.description.replaceAll("|", "\\|")} | ${r.file} |`),
    ""
  ].join("\n")
}

/** Problem types: the classes of src/http/Problems.ts and the answers the HTTP edge writes itself (src/http/Server.ts). */
export const problemsReference = (): string => {
  const rows = new Map<string, { readonly type: string; readonly status: number; readonly title: string; readonly from: string }>()
  const classes = readFileSync(join(root, "src", "http", "Problems.ts"), "utf8")
  for (const m of classes.matchAll(/Problem<(\w+)>\(\)\("\w+",\s*\{\s*type:\s*"([^"]+)",\s*status:\s*(\d+),\s*title:\s*"([^"]+)"/g)) {
    rows.set(`${m[2]}|${m[3]}`, { type: (m[2] ?? ""), status: Number(m[3]), title: (m[4] ?? ""), from: (m[1] ?? "") })
  }
  const edge = readFileSync(join(root, "src", "http", "Server.ts"), "utf8")
  for (const m of edge.matchAll(/problem\((\d+), "([a-z-]+)", "([^"]+)"/g)) {
    const type = `urn:smsgw:problem:${m[2]}`
    if (!rows.has(`${type}|${m[1]}`)) rows.set(`${type}|${m[1]}`, { type, status: Number(m[1]), title: (m[3] ?? ""), from: "the HTTP edge" })
  }
  const sorted = [...rows.values()].sort((a, b) => a.status - b.status || a.type.localeCompare(b.type))
  return [
    "# Reference: problem types",
    "",
    "<!-- Generated by `npm run docs:reference` from src/http/Problems.ts and src/http/Server.ts; do not edit.",
    "     test/unit/reference-docs.test.ts fails when it and the code differ. -->",
    "",
    `Every error answer is \`application/problem+json\` (RFC 9457) with one of these ${sorted.length} types; \`detail\` says what`,
    "happened to this request, and a traced answer carries `traceId`. What each means for a submission and what to do:",
    "[sending.md](../sending.md); the gRPC status code of each error of the message API: [grpc-status.md](grpc-status.md).",
    "",
    "| status | type | title | answered by |",
    "|---:|---|---|---|",
    ...sorted.map((r) => `| ${r.status} | \`${r.type}\` | ${r.title} | ${r.from} |`),
    ""
  ].join("\n")
}

/** What a decision means, in words: for the part, the link's health, its rate. */
const decisionText = (d: SubmitDecision): { readonly part: string; readonly health: string; readonly rate: string } => {
  const health = d.health === undefined ? "—" : d.health === true ? "counts as a success" : d.health === "throttled" ? "throttled" : d.health === "timeout" ? "counts as a timeout" : "counts as a failure"
  if (d._tag === "Submitted") return { part: "submitted; waits for its receipt", health, rate: "—" }
  if (d._tag === "Failed") return { part: "fails for good (the message ends `failed`, the status named)", health, rate: "—" }
  // Whether the link gives up on it once its retries are spent (a part waiting for a bind never is).
  const givesUp = afterAttempt(3, 3, d.error)._tag === "GiveUp"
  const parts = [givesUp
    ? "retried with backoff (500 ms × 2ⁿ, at most 30 s), up to the link's retries, then failed"
    : "waits for a bind and is sent then (never given up for it)"]
  if (d.rebind) parts.push("after a rebind")
  if (d.unknownOutcome) parts.push("— the SMSC may have it (an unknown outcome)")
  const rate = d.rate === "throttled" ? "halved (AIMD)" : d.rate === "queueFull" ? "quartered (AIMD)" : "—"
  return { part: parts.join(" "), health, rate }
}

/** The SMPP answers and what the gateway does with each, from the decision function the link actor runs. */
export const smppReference = (): string => {
  const rows: Array<string> = []
  for (const name of Object.keys(CommandStatus) as Array<CommandStatusName>) {
    const code = CommandStatus[name]
    const decision = code === 0 ? decideSubmit(Result.succeed({ messageId: "1" })) : decideSubmit(Result.fail(new SubmitRejected({ commandStatus: code })))
    const t = decisionText(decision)
    rows.push(`| \`0x${code.toString(16).toUpperCase().padStart(2, "0")}\` | \`${name}\` | ${classifyCommandStatus(code)} | ${t.part} | ${t.health} | ${t.rate} |`)
  }
  const vendor = decisionText(decideSubmit(Result.fail(new SubmitRejected({ commandStatus: 0x400 }))))
  rows.push(`| \`0x400\`–\`0x4FF\` | (vendor) | ${classifyCommandStatus(0x400)} | ${vendor.part} | ${vendor.health} | ${vendor.rate} |`)
  const other = (0x4ff + 1).toString(16).toUpperCase()
  const unknown = decisionText(decideSubmit(Result.fail(new SubmitRejected({ commandStatus: 0x500 }))))
  rows.push(`| any other, e.g. \`0x${other}\` | (unlisted) | ${classifyCommandStatus(0x500)} | ${unknown.part} | ${unknown.health} | ${unknown.rate} |`)
  const failures: ReadonlyArray<readonly [string, string, Parameters<typeof decideSubmit>[0]]> = [
    ["no answer within `responseTimeoutMs`", "SubmitTimeout", Result.fail(new SubmitTimeout())],
    ["the connection dropped before the answer", "ConnectionLost", Result.fail(new ConnectionLost())],
    ["no bound session to send on", "NotBound", Result.fail(new NotBound())],
    ["no window slot freed in time", "WindowTimeout", Result.fail(new WindowTimeout())]
  ]
  const others = failures.map(([what, tag, result]) => {
    const t = decisionText(decideSubmit(result))
    return `| ${what} | \`${tag}\` | ${t.part} | ${t.health} |`
  })
  return [
    "# Reference: SMPP answers and what the gateway does",
    "",
    "<!-- Generated by `npm run docs:reference` from src/smpp/CommandStatus.ts and the link actor's decision function",
    "     (src/actors/SmppLinkDecisions.ts decideSubmit); do not edit. test/unit/reference-docs.test.ts fails when it and",
    "     the code differ. Timers, windows and receipts: smpp.md. -->",
    "",
    "Each `submit_sm_resp` command_status (SMPP v3.4 §5.1.3), its class, and what happens to the part, to the link's",
    "health (which drives failover, routing.md) and to its send rate. A pool message whose link keeps failing is moved to",
    "another member ([routing.md](../routing.md)); the message's events name the status ([messages.md](../messages.md)).",
    "",
    "| command_status | name | class | the part | link health | rate |",
    "|---|---|---|---|---|---|",
    ...rows,
    "",
    "When no answer comes:",
    "",
    "| what happened | error | the part | link health |",
    "|---|---|---|---|",
    ...others,
    ""
  ].join("\n")
}

/** Values a sample of each error is built from, twice: what differs between the two runs is the error's own value. */
interface Seed {
  readonly seconds: number
  readonly field: string
}
const seeds = [{ seconds: 7, field: "messageClass" }, { seconds: 13, field: "text" }] as const

type GrpcTag = GrpcError["_tag"]
type ErrorOf<T extends GrpcTag> = Extract<GrpcError, { readonly _tag: T }>

/** What REST answers for the same error: the problem, its Retry-After header, and the function that decided. */
interface RestAnswer {
  readonly problem: { readonly status: number; readonly type: string }
  readonly retryAfter: number | undefined
  readonly by: string
}

interface Sample<T extends GrpcTag> {
  readonly when: string
  /** Every variant worth a look (each policy reason, with and without an optional field), from the seed's values. */
  readonly errors: (seed: Seed) => ReadonlyArray<ErrorOf<T>>
  readonly rest: (error: ErrorOf<T>) => RestAnswer
}

const submitRest = (error: SubmitError): RestAnswer =>
  ({ problem: submitProblem(error), retryAfter: retryAfterOf(error), by: "`submitProblem`, `retryAfterOf` (src/http/SubmitProblems.ts)" })

const accountsRest = (error: Unauthenticated | Forbidden): RestAnswer =>
  ({ problem: toProblem(error), retryAfter: undefined, by: "`toProblem` (src/http/AccountsHandlers.ts)" })

/** A sample of every error of the union: a tag without one does not compile, so no error is left off the page. */
const grpcSamples: { readonly [T in GrpcTag]: Sample<T> } = {
  BadFields: {
    when: "a request that does not decode: every bad field of a message (`to`, `client_ref`, a field number the contract lacks as `#<n>`), a batch of none or more than 1,000, a bad ListMessages filter",
    errors: (s) => [new BadFields({ violations: [{ field: s.field, message: "is not valid" }] })],
    // REST's bad fields are its schema's (RequestValidationLive) and its handlers' (this helper): a 400 naming each.
    rest: (e) => ({ problem: invalidField(e.violations[0]?.field ?? "", "is not valid"), retryAfter: undefined, by: "`invalidField` (src/http/Problems.ts)" })
  },
  InvalidField: {
    when: "a decoded message the pipeline refuses: a text its encoding cannot carry or too long, a message class the app may not send",
    errors: (s) => [new InvalidField({ field: s.field, message: "is not valid" })],
    rest: submitRest
  },
  Unauthenticated: {
    when: "no, garbled, expired or revoked token",
    errors: () => [new Unauthenticated({ message: "invalid access token" })],
    rest: accountsRest
  },
  Forbidden: {
    when: "wrong app, a viewer sending, an address not in the allow-list, an app token listing another app",
    errors: () => [new Forbidden({ message: "not allowed" })],
    rest: accountsRest
  },
  MessageNotFound: {
    when: "an unknown message id, or another organisation's",
    errors: () => [new MessageNotFound({ id: "msg_1" })],
    // REST maps it inline in its handler (src/http/Handlers.ts, `status`): the same class, built here as it builds it.
    rest: (e) => ({ problem: new NotFoundProblem({ detail: `no message ${e.id}` }), retryAfter: undefined, by: "inline in src/http/Handlers.ts (no function to call)" })
  },
  RateLimited: {
    when: "a rate limit (app, organisation, route) is reached",
    errors: (s) => [new RateLimited({ policy: "app", retryAfterSeconds: s.seconds, layer: "L1", policies: [] })],
    rest: submitRest
  },
  LimiterUnavailable: {
    when: "the shared rate-limit store does not answer and `rateLimits.onStoreFailure` is `failClosed`",
    errors: (s) => [new LimiterUnavailable({ retryAfterSeconds: s.seconds })],
    rest: submitRest
  },
  NoRoute: {
    when: "no routing rule matches, or its target does not exist (the refused message is recorded when it can be)",
    errors: () => [new NoRoute({ message: "no routing rule matches", messageId: "msg_1" }), new NoRoute({ message: "no enabled link is configured" })],
    rest: submitRest
  },
  PolicyRejected: {
    when: "the contact policy refused the message (recorded as `rejected`)",
    errors: (s) =>
      policyReasons.flatMap((reason) => [
        new PolicyRejected({ reason, ruleId: "rule_1", messageId: "msg_1", retryAfterSeconds: s.seconds }),
        new PolicyRejected({ reason, ruleId: "rule_1", messageId: "msg_1" })
      ]),
    rest: submitRest
  },
  PolicyUnavailable: {
    when: "the contact policy cannot decide (a policy bucket failed or did not answer)",
    errors: () => [new PolicyUnavailable({ message: "bucket 3 did not answer" })],
    rest: submitRest
  },
  StoreUnavailable: {
    when: "message storage does not answer",
    errors: () => [new StoreUnavailable({ message: "connection refused" })],
    rest: submitRest
  },
  IdempotencyKeyInFlight: {
    when: "another request with this idempotency key is still being processed",
    errors: () => [new IdempotencyKeyInFlight({ key: "order-42" })],
    rest: submitRest
  },
  IdempotencyKeyReused: {
    when: "the idempotency key was used with a different message",
    errors: () => [new IdempotencyKeyReused({ key: "order-42" })],
    rest: submitRest
  }
}

/** One google.rpc detail as a client reads it. */
type WireDetail =
  | { readonly kind: "BadRequest"; readonly fields: ReadonlyArray<string> }
  | { readonly kind: "RetryInfo"; readonly seconds: number }
  | { readonly kind: "ErrorInfo"; readonly reason: string; readonly domain: string; readonly keys: ReadonlyArray<string> }
  | { readonly kind: "Other"; readonly typeName: string }

type DetailKind = WireDetail["kind"]
type DetailOf<K extends DetailKind> = Extract<WireDetail, { readonly kind: K }>

/** What a client receives for an error: the status code, and the details decoded from grpc-status-details-bin. */
const onTheWire = (error: GrpcError): { readonly code: number; readonly details: ReadonlyArray<WireDetail> } => {
  const answer = serviceErrorOf(error)
  const bin = answer.metadata?.get("grpc-status-details-bin")[0]
  if (!(bin instanceof Buffer)) throw new Error(`${error._tag}: no grpc-status-details-bin`)
  // A batch answers one message's error with statusOf: the same google.rpc.Status, or the page would describe one path only.
  if (!bin.equals(toBinary(StatusSchema, statusOf(error)))) throw new Error(`${error._tag}: statusOf and serviceErrorOf differ`)
  const status = fromBinary(StatusSchema, bin)
  if (status.code !== answer.code) throw new Error(`${error._tag}: the status in the trailer is not the call's`)
  const details = status.details.map((any): WireDetail => {
    const bad = anyUnpack(any, BadRequestSchema)
    if (bad !== undefined) return { kind: "BadRequest", fields: bad.fieldViolations.map((v) => v.field) }
    const retry = anyUnpack(any, RetryInfoSchema)
    if (retry !== undefined) return { kind: "RetryInfo", seconds: Number(retry.retryDelay?.seconds ?? 0n) }
    const info = anyUnpack(any, ErrorInfoSchema)
    if (info !== undefined) return { kind: "ErrorInfo", reason: info.reason, domain: info.domain, keys: Object.keys(info.metadata) }
    return { kind: "Other", typeName: any.typeUrl.replace(/^.*\//, "") }
  })
  return { code: answer.code ?? Code.UNKNOWN, details }
}

const codeName = (code: number) => `\`${Code[code] ?? "?"}\` (${code})`

const distinct = <A>(values: ReadonlyArray<A>): Array<A> => [...new Set(values)]

/** A number from the two runs: the error's own `retryAfterSeconds` when it followed the seeds, else what the mapping fixed. */
const secondsText = (first: ReadonlyArray<number>, second: ReadonlyArray<number>): string => {
  if (first.every((v, i) => v === seeds[0].seconds && second[i] === seeds[1].seconds)) return "the error's `retryAfterSeconds`"
  return distinct([...first, ...second]).map((v) => `${v} s`).join(" or ")
}

/** Each kind of detail in words, from its instances in the first and the second run. */
const detailText: { readonly [K in DetailKind]: (first: ReadonlyArray<DetailOf<K>>, second: ReadonlyArray<DetailOf<K>>) => string } = {
  BadRequest: (first, second) => {
    const [a, b] = [first.flatMap((d) => d.fields), second.flatMap((d) => d.fields)]
    if (a.join() === b.join()) return `\`BadRequest\` on ${a.map((f) => `\`${f}\``).join(", ")}`
    const renamed = a[0] !== seeds[0].field ? ` (\`${seeds[0].field}\` → \`${a[0] ?? ""}\`)` : ""
    return `\`BadRequest\`: a violation per bad field, named as the proto names it${renamed}`
  },
  RetryInfo: (first, second) => `\`RetryInfo\` (${secondsText(first.map((d) => d.seconds), second.map((d) => d.seconds))})`,
  ErrorInfo: (infos) => {
    const reasons = distinct(infos.map((d) => `\`${d.reason}\``)).join(" \\| ")
    const domains = distinct(infos.map((d) => `\`${d.domain}\``)).join(", ")
    const keys = distinct(infos.flatMap((d) => d.keys)).map((k) => infos.every((d) => d.keys.includes(k)) ? `\`${k}\`` : `\`${k}\` if known`)
    return `\`ErrorInfo\` (reason ${reasons}, domain ${domains}${keys.length > 0 ? `, metadata ${keys.join(", ")}` : ""})`
  },
  Other: (others) => distinct(others.map((d) => `\`${d.typeName}\``)).join(", ")
}

const ofKind = <K extends DetailKind>(variants: ReadonlyArray<ReadonlyArray<WireDetail>>, kind: K): Array<DetailOf<K>> =>
  variants.flatMap((ds) => ds.filter((d): d is DetailOf<K> => d.kind === kind))

const kindText = <K extends DetailKind>(kind: K, first: ReadonlyArray<ReadonlyArray<WireDetail>>, second: ReadonlyArray<ReadonlyArray<WireDetail>>) =>
  detailText[kind](ofKind(first, kind), ofKind(second, kind))

/** The detail cell: each kind once, merged over the variants (`if any`: only some of them carry it). */
const detailsText = (first: ReadonlyArray<ReadonlyArray<WireDetail>>, second: ReadonlyArray<ReadonlyArray<WireDetail>>): string =>
  distinct(first.flatMap((ds) => ds.map((d) => d.kind)))
    .map((kind) => kindText(kind, first, second) + (first.every((ds) => ds.some((d) => d.kind === kind)) ? "" : ", if any"))
    .join("; ") || "—"

/** One row of the page: a tag's samples through failureOf (on the wire) and through REST's mapping. */
const grpcRow = <T extends GrpcTag>(tag: T, sample: Sample<T>): string => {
  const runs = [sample.errors(seeds[0]), sample.errors(seeds[1])] as const
  if (runs[0].length === 0 || runs[0].length !== runs[1].length) throw new Error(`${tag}: its sample makes no error, or a different number per run`)
  const wire = [runs[0].map(onTheWire), runs[1].map(onTheWire)] as const
  const codes = distinct(wire[0].map((w) => codeName(w.code))).join(" / ")
  const details = detailsText(wire[0].map((w) => w.details), wire[1].map((w) => w.details))
  const rest = [runs[0].map(sample.rest), runs[1].map(sample.rest)] as const
  const problems = distinct(rest[0].map((r) => `${r.problem.status} \`${r.problem.type}\``)).join(" / ")
  const retryAfter = rest[0].map((r) => r.retryAfter)
  const header = retryAfter.every((v) => v === undefined)
    ? ""
    : `, \`Retry-After\`: ${secondsText(retryAfter.map((v) => v ?? 0), rest[1].map((r) => r.retryAfter ?? 0))}`
  const by = distinct(rest[0].map((r) => r.by)).join(", ")
  return `| \`${tag}\` | ${sample.when} | ${codes} | ${details} | ${problems}${header} | ${by} |`
}

/** The answers src/grpc/Errors.ts defines as constants (no error behind them), each with its doc comment. */
const fixedAnswers = (): Array<string> => {
  const source = readFileSync(join(root, "src", "grpc", "Errors.ts"), "utf8")
  const docs = new Map([...source.matchAll(/\/\*\* ([^\n]*?) \*\/\nexport const (\w+)/g)].map((m) => [m[2] ?? "", m[1] ?? ""]))
  // Sorted: a module namespace lists its exports in an order Node and vitest do not share.
  const exported = Object.entries(GrpcErrors).sort(([a], [b]) => a.localeCompare(b))
  return exported.flatMap(([name, value]) => {
    if (typeof value !== "object" || value === null || !("code" in value) || typeof value.code !== "number") return []
    const doc = docs.get(name)
    if (doc === undefined) throw new Error(`src/grpc/Errors.ts: ${name} has no one-line doc comment to show`)
    const message = "details" in value && typeof value.details === "string" ? value.details : ""
    const carries = "metadata" in value && value.metadata !== undefined ? "grpc-status-details-bin" : "—"
    return [`| \`${name}\` | ${doc} | ${codeName(value.code)} | ${message} | ${carries} |`]
  })
}

/** Every error a call of smsgw.v1.MessageService can fail with, computed by the mapping functions both APIs run. */
export const grpcStatusReference = (): string => {
  const rowOf = <T extends GrpcTag>(tag: T) => grpcRow(tag, grpcSamples[tag])
  const rows = (Object.keys(grpcSamples) as Array<GrpcTag>).map(rowOf)
  return [
    "# Reference: gRPC status codes and details",
    "",
    "<!-- Generated by `npm run docs:reference` by running a sample of each error of `GrpcError` through",
    "     src/grpc/Errors.ts (serviceErrorOf, statusOf) and REST's mapping of the same error; do not edit.",
    "     test/unit/reference-docs.test.ts fails when it and the code differ. How to read the details: grpc.md. -->",
    "",
    `Every error a call of \`smsgw.v1.MessageService\` fails with (${rows.length}), the gRPC status code it answers, the`,
    "`google.rpc` details in its `grpc-status-details-bin` trailer (in `SendMessages`, the same `google.rpc.Status` is one",
    "message's `error`), and what REST answers for the same error ([problems.md](problems.md)). Each row is a sample of",
    "the error run through both; `if any` and `if known`: only when the error carries it. How to read the trailer:",
    "[grpc.md](../grpc.md#errors).",
    "",
    "| error | when | gRPC status | details (`google.rpc`) | REST | REST's mapping |",
    "|---|---|---|---|---|---|",
    ...rows,
    "",
    "Answers the server gives without an error behind them (src/grpc/Errors.ts):",
    "",
    "| answer | when | gRPC status | message | details |",
    "|---|---|---|---|---|",
    ...fixedAnswers(),
    "",
    "And what grpc-js answers itself, outside the code above: a request message above `grpc.maxMessageBytes` is",
    "`RESOURCE_EXHAUSTED` before it is decoded (REST: 413 `urn:smsgw:problem:payload-too-large`); a passed client",
    "deadline `DEADLINE_EXCEEDED`; a cancelled call `CANCELLED`; a method the service lacks `UNIMPLEMENTED`. A defect in a",
    "handler is logged and answered `INTERNAL` (\"internal error\", src/grpc/MessageService.ts), as REST answers 500.",
    ""
  ].join("\n")
}

if (import.meta.main) {
  writeFileSync(new URL("../docs/reference/configuration.md", import.meta.url), configurationReference())
  writeFileSync(new URL("../docs/reference/metrics.md", import.meta.url), metricsReference())
  writeFileSync(new URL("../docs/reference/problems.md", import.meta.url), problemsReference())
  writeFileSync(new URL("../docs/reference/smpp-status.md", import.meta.url), smppReference())
  writeFileSync(new URL("../docs/reference/grpc-status.md", import.meta.url), grpcStatusReference())
  console.log("docs/reference/configuration.md, metrics.md, problems.md, smpp-status.md and grpc-status.md written")
}
