/**
 * `smsgw admin`: the operator's view of a running gateway or cluster, over the admin RPC (`POST /rpc/admin`).
 * Readable tables by default, `--json` for scripts. Any node answers for the whole cluster.
 */
import type { BucketView } from "../actors/RecipientPolicyProtocol.ts"
import { Config, Context, Effect, Layer, Option, Runtime, Schema } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { FetchHttpClient, HttpBody, HttpClient, HttpClientRequest } from "effect/http"
import { RpcClient, RpcSerialization } from "effect/rpc"
import type { RpcClientError } from "effect/rpc"
import type { LinkState } from "../actors/SmppLinkProtocol.ts"
import type { PoolState } from "../actors/VirtualPoolProtocol.ts"
import { ActorTypes, AdminRpc, adminRpcPath } from "../rpc/AdminRpc.ts"
import type { ActorView, BlacklistReloaded, RunnerView } from "../rpc/AdminRpc.ts"

// ---------------------------------------------------------------------------------------------------------------
// Rendering (pure: what the commands print)

/** Columns padded to their widest cell; numbers right-aligned. */
export const formatTable = (headers: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string | number>>): string => {
  const cells = rows.map((row) => row.map((c) => String(c)))
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((row) => (row[i] ?? "").length)))
  const numeric = headers.map((_, i) => rows.length > 0 && rows.every((row) => typeof row[i] === "number"))
  const line = (row: ReadonlyArray<string>) =>
    row.map((c, i) => (numeric[i] ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0))).join("  ").trimEnd()
  return [line(headers), ...cells.map(line)].join("\n")
}

const yesNo = (b: boolean) => (b ? "yes" : "no")

/** `3s ago`, `4m ago`, `2h ago`. */
export const ago = (ms: number): string => {
  const s = Math.max(0, Math.round(ms / 1000))
  if (s < 120) return `${s}s ago`
  if (s < 7200) return `${Math.round(s / 60)}m ago`
  return `${Math.round(s / 3600)}h ago`
}

const time = (epochMs: number) => new Date(epochMs).toISOString().replace(/\.\d{3}Z$/, "Z")

export const renderRunners = (runners: ReadonlyArray<RunnerView>): string =>
  runners.length === 0
    ? "no runners"
    : formatTable(
      ["ADDRESS", "HEALTHY", "SHARDS", "HEARTBEAT", ""],
      runners.map((r) => [
        r.address,
        yesNo(r.healthy),
        r.shards,
        r.heartbeatAgeMs === undefined ? "-" : ago(r.heartbeatAgeMs),
        r.self ? "(answered)" : ""
      ])
    )

export const renderActors = (actors: ReadonlyArray<ActorView>, now: number = Date.now()): string =>
  actors.length === 0
    ? "no actors registered"
    : formatTable(
      ["TYPE", "ID", "RUNNER", "STARTED", "HEARTBEAT", ""],
      actors.map((a) => [a.type, a.id, a.runner, time(a.startedAt), ago(now - a.heartbeatAt), a.stale ? "STALE" : ""])
    )

export const renderLink = (s: LinkState): string => {
  const connections = s.connections.map((c) => `${c.mode} ${c.bound ? "bound" : "unbound"}, ${c.inFlight} in flight`)
  const facts: Array<[string, string]> = [
    ["link", s.linkId],
    ["bound", `${yesNo(s.bound)}${connections.length > 0 ? ` (${connections.join("; ")})` : ""}`],
    ["health", s.health],
    ["enabled", yesNo(s.enabled)],
    ["window", `${s.windowInUse} / ${s.window} in use`],
    ["tps", `${round(s.currentTps)} now, ${s.tps} configured`],
    ["queued", String(s.queued)],
    ["last error", s.lastError ?? "-"]
  ]
  const counters = Object.entries(s.counters).map(([name, value]): [string, string] => [`  ${name}`, String(value)])
  const width = Math.max(...[...facts, ...counters].map(([k]) => k.length))
  const line = ([k, v]: [string, string]) => `${k.padEnd(width)}  ${v}`
  return [...facts.map(line), "counters", ...counters.map(line)].join("\n")
}

const round = (n: number) => String(Math.round(n * 100) / 100)

export const renderPool = (s: PoolState): string =>
  [
    `pool ${s.poolId}: ${s.members.length} members, ${s.picks} picks`,
    formatTable(
      ["LINK", "STATE", "WEIGHT", "EFFECTIVE", "SWRR", "TPS"],
      s.members.map((m) => [m.linkId, m.state, m.configuredWeight, m.effectiveWeight, m.current, m.currentTps])
    )
  ].join("\n")

export const renderBucket = (b: BucketView): string =>
  formatTable(["BUCKET", "FIELD", "VALUE"], [
    [b.bucket, "recipients in memory", `${b.recipients} / ${b.maxRecipients}`],
    [b.bucket, "decisions", b.decisions],
    [b.bucket, "admitted", b.admitted],
    [b.bucket, "rejected", b.rejected],
    [b.bucket, "duplicates answered", b.duplicatesReturned],
    [b.bucket, "memory hit rate", `${(b.hitRate * 100).toFixed(1)}% (${b.loadedFromStore} of ${b.lookups} read from the store)`],
    [b.bucket, "counters", b.persistent ? "written behind to Redis" : "in memory only"]
  ])

/** One line: "~" because an API removal of a number the file does not have still counts as removed. */
export const renderBlacklist = (r: BlacklistReloaded): string =>
  `blacklist ${r.name}: ~${r.entries} entries (file ${r.baseEntries}, added ${r.added}, removed ${r.removed})` +
  (r.object === null ? ", no file (API entries only)" : r.etag === null ? "" : `, etag ${r.etag}`) +
  (r.stale ? ` (STALE: ${r.lastError ?? "last load failed"})` : "")

// ---------------------------------------------------------------------------------------------------------------
// Failures: one readable line on stderr and exit code 1

/** Printed already: the runtime only sets the exit code. */
export class AdminCliFailure extends Schema.TaggedError<AdminCliFailure>()("AdminCliFailure", {
  message: Schema.String
}) {
  override readonly [Runtime.errorReported] = false
}

/** The messages along an error's `cause` chain (`fetch failed: connect ECONNREFUSED 127.0.0.1:8080`). */
const causeChain = (error: unknown): string => {
  const messages: Array<string> = []
  let current: unknown = error
  for (let depth = 0; depth < 8 && typeof current === "object" && current !== null; depth++) {
    const message = "message" in current && typeof current.message === "string" ? current.message : ""
    if (message !== "" && !messages.some((m) => m.includes(message))) messages.push(message)
    current = "reason" in current && depth === 0 ? current.reason : "cause" in current ? current.cause : undefined
  }
  return messages.filter((m) => !/^\w+Error: ?$/.test(m)).join(": ") || "no answer"
}

/** One sentence per error the RPC (or reaching it) can produce. */
export const describeError = (error: unknown, url: string): string => {
  if (typeof error !== "object" || error === null || !("_tag" in error)) return String(error)
  const e = error as { readonly _tag: string; readonly [key: string]: unknown }
  switch (e._tag) {
    case "Unauthenticated":
      return `not authenticated: ${String(e.message)} (use --token, SMSGW_ADMIN_TOKEN or --email/--password)`
    case "Forbidden":
      return `forbidden: ${String(e.message)}`
    case "AdminNotFound":
      return `no ${String(e.what)} "${String(e.id)}"`
    case "AdminTimeout":
      return `${String(e.operation)} ${String(e.target)}: no answer within ${String(e.timeoutMs)} ms (a failover may be in progress; retry)`
    case "AdminUnavailable":
      return `unavailable: ${String(e.message)}`
    case "RpcClientError":
      return `cannot reach the admin RPC at ${url}${adminRpcPath}: ${causeChain(e)}`
    case "AdminCliFailure":
      return String(e.message)
    default:
      return "message" in e && typeof e.message === "string" ? `${e._tag}: ${e.message}` : e._tag
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The client

export class AdminClient extends Context.Service<AdminClient, RpcClient.FromGroup<typeof AdminRpc, RpcClientError.RpcClientError>>()(
  "smsgw/cli/AdminClient"
) {
  /** The admin RPC of the gateway at `url`, every call carrying the token. */
  static readonly layer = (url: string, token: string) =>
    Layer.effect(AdminClient, RpcClient.make(AdminRpc)).pipe(
      Layer.provide(RpcClient.layerProtocolHttp({
        url: `${url}${adminRpcPath}`,
        transformClient: HttpClient.mapRequest(HttpClientRequest.bearerToken(token))
      })),
      Layer.provide([FetchHttpClient.layer, RpcSerialization.layerJson])
    )
}

const TokenResponse = Schema.Struct({ accessToken: Schema.String })
const Problem = Schema.Struct({ detail: Schema.optionalKey(Schema.String), title: Schema.optionalKey(Schema.String) })

/** Signs in with email and password (`POST /v1/auth/token`): the access token. */
export const login = Effect.fn("admin.login")(function*(url: string, email: string, password: string) {
  const http = yield* HttpClient.HttpClient
  const response = yield* http.post(`${url}/v1/auth/token`, {
    body: HttpBody.jsonUnsafe({ email, password })
  }).pipe(Effect.mapError((e) => new AdminCliFailure({ message: `cannot reach ${url}: ${e.message}` })))
  const body = yield* response.json.pipe(Effect.orElseSucceed(() => ({})))
  if (response.status !== 200) {
    const problem = Schema.decodeUnknownOption(Problem)(body)
    const detail = Option.match(problem, { onNone: () => "", onSome: (p) => p.detail ?? p.title ?? "" })
    return yield* new AdminCliFailure({ message: `sign-in failed (${response.status})${detail === "" ? "" : `: ${detail}`}` })
  }
  return yield* Schema.decodeUnknownEffect(TokenResponse)(body).pipe(
    Effect.map((t) => t.accessToken),
    Effect.mapError(() => new AdminCliFailure({ message: "sign-in answered without an access token" }))
  )
}, Effect.provide(FetchHttpClient.layer))

// ---------------------------------------------------------------------------------------------------------------
// The commands

export const admin = Command.make("admin").pipe(
  Command.withSharedFlags({
    url: Flag.String("url").pipe(
      Flag.withDescription("Base URL of any gateway node"),
      Flag.withDefault("http://127.0.0.1:8080")
    ),
    token: Flag.String("token").pipe(
      Flag.withDescription("A superadmin access token (else SMSGW_ADMIN_TOKEN, else --email/--password)"),
      Flag.withFallbackConfig(Config.String("SMSGW_ADMIN_TOKEN")),
      Flag.optional
    ),
    email: Flag.String("email").pipe(Flag.withDescription("Superadmin email, to sign in"), Flag.optional),
    password: Flag.String("password").pipe(
      Flag.withDescription("Superadmin password, to sign in (else SMSGW_ADMIN_PASSWORD)"),
      Flag.withFallbackConfig(Config.String("SMSGW_ADMIN_PASSWORD")),
      Flag.optional
    ),
    json: Flag.Boolean("json").pipe(Flag.withDescription("Machine-readable output"), Flag.withDefault(false))
  }),
  Command.withDescription("Inspect and operate a running gateway: runners, actors, links, pools")
)

/** Resolves the token, runs `f` against the admin RPC, prints its result (JSON or text), reports failures. */
const run = <A, E>(
  f: (client: AdminClient["Service"]) => Effect.Effect<A, E>,
  text: (a: A) => string
) =>
  Effect.gen(function*() {
    const flags = yield* admin
    const url = flags.url.replace(/\/+$/, "")
    const token = Option.isSome(flags.token)
      ? flags.token.value
      : Option.isSome(flags.email) && Option.isSome(flags.password)
      ? yield* login(url, flags.email.value, flags.password.value)
      : yield* new AdminCliFailure({ message: "no credentials: pass --token (or set SMSGW_ADMIN_TOKEN), or --email and --password" })
    const result = yield* AdminClient.use(f).pipe(Effect.provide(AdminClient.layer(url, token)))
    yield* Effect.sync(() => console.log(flags.json ? JSON.stringify(result, null, 2) : text(result)))
  }).pipe(
    Effect.catch((error: unknown) =>
      Effect.flatMap(admin, (flags) => {
        const message = describeError(error, flags.url.replace(/\/+$/, ""))
        console.error(`smsgw admin: ${message}`)
        return Effect.fail(new AdminCliFailure({ message }))
      }))
  )

const runners = Command.make("runners", {}, () =>
  run((c) => c.ListRunners(), renderRunners)).pipe(
    Command.withDescription("Cluster runners: address, health, shards")
  )

const actors = Command.make(
  "actors",
  {
    type: Flag.Literals("type", ActorTypes).pipe(Flag.withDescription("Only actors of this type"), Flag.optional)
  },
  ({ type }) => run((c) => c.ListActors(Option.isSome(type) ? { type: type.value } : {}), (a) => renderActors(a))
).pipe(Command.withDescription("Live actors and the runner each one runs on"))

const linkId = Argument.String("id").pipe(Argument.withDescription("Link id"))
const poolId = Argument.String("id").pipe(Argument.withDescription("Pool id"))
const bucketId = Argument.String("bucket").pipe(Argument.withDescription("Bucket number, or a recipient's E.164 number"))

const inspect = Command.make("inspect").pipe(
  Command.withDescription("What one actor is doing now"),
  Command.withSubcommands([
    Command.make("link", { id: linkId }, ({ id }) => run((c) => c.InspectLink({ linkId: id }), renderLink)).pipe(
      Command.withDescription("A link: bind, window, rates, counters, last error")
    ),
    Command.make("pool", { id: poolId }, ({ id }) => run((c) => c.InspectPool({ poolId: id }), renderPool)).pipe(
      Command.withDescription("A pool: members, weights, smooth weighted round-robin state")
    ),
    Command.make("bucket", { id: bucketId }, ({ id }) =>
      run((c) => c.InspectBucket(/^\d{1,5}$/.test(id) ? { bucket: Number(id) } : { recipient: id }), renderBucket)).pipe(
        Command.withDescription("A recipient bucket (by number, or the bucket of a phone number): counters, decisions, hit rate")
      )
  ])
)

const link = Command.make("link").pipe(
  Command.withDescription("Act on a link"),
  Command.withSubcommands([
    Command.make("rebind", { id: linkId }, ({ id }) =>
      run((c) => Effect.as(c.RebindLink({ linkId: id }), { linkId: id, rebind: "requested" }), () => `link ${id}: rebinding`)).pipe(
        Command.withDescription("Unbind and bind again now")
      ),
    Command.make("disable", { id: linkId }, ({ id }) =>
      run((c) => c.SetLinkEnabled({ linkId: id, enabled: false }), (r) => `link ${r.linkId}: disabled (unbinding on its node)`)).pipe(
        Command.withDescription("Take the link out of service on every node")
      ),
    Command.make("enable", { id: linkId }, ({ id }) =>
      run((c) => c.SetLinkEnabled({ linkId: id, enabled: true }), (r) => `link ${r.linkId}: enabled (binding on its node)`)).pipe(
        Command.withDescription("Put the link back in service")
      )
  ])
)

const blacklist = Command.make("blacklist").pipe(
  Command.withDescription("Recipient blacklists"),
  Command.withSubcommands([
    Command.make("reload", { name: Argument.String("name") }, ({ name }) =>
      run((c) => c.ReloadBlacklist({ name }), renderBlacklist)).pipe(
        Command.withDescription("Load a blacklist again from its source")
      )
  ])
)

export const adminCommand = admin.pipe(Command.withSubcommands([runners, actors, inspect, link, blacklist]))
