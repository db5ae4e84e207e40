/**
 * The configuration: one Schema (YAML file + environment), its defaults, decoding with every bad key named,
 * printing.
 */
import { Effect, Runtime, Schema } from "effect"
import { readFileSync } from "node:fs"
import { parse as parseYaml } from "yaml"
import { AppLimits } from "../domain/Account.ts"
import { RouteRules } from "../routing/Rules.ts"
import { LinkConfig, PoolConfig } from "../routing/Links.ts"
import { BlacklistDefinition, checkPolicy, PolicyRule } from "../domain/Policy.ts"
import { fieldIssues, fieldPath } from "../domain/FieldIssues.ts"
import { CdrFormat } from "../domain/Cdr.ts"
import { receiptDefaults, UnknownOutcomeAction } from "../storage/MessageStore.ts"
import { logLevels, logModules } from "../observability/Logging.ts"
import type { LogModule } from "../observability/Logging.ts"

const LogLevelName = Schema.Literals(logLevels)

const Port = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 65535 }))
const Positive = Schema.Int.check(Schema.isGreaterThan(0))

/**
 * An optional key whose absence decodes to `value`. Every default of the configuration is written here, in the
 * schema, once: the layers read decoded values, and `smsgw config print` shows them (docs/configuration.md).
 */
const withDefault = <S extends Schema.Top & { readonly DecodingServices: never }>(schema: S, value: S["Encoded"]) =>
  schema.pipe(Schema.withDecodingDefaultKey(Effect.succeed(value)))

/** A count allowed per window of seconds (the login throttle's limits). */
const Window = (max: number, windowSeconds: number) =>
  withDefault(Schema.Struct({ max: Positive, windowSeconds: Positive }), { max, windowSeconds })

/** keyPrefix and timeoutMs default per use (rate limits and login throttle: smsgw:rl:, 50 ms; policy counters:
 * smsgw:pol:, 200 ms), in layers/RateLimits.ts and layers/Policy.ts. */
const RedisConnection = Schema.Struct({
  host: withDefault(Schema.String, "127.0.0.1"),
  port: withDefault(Port, 6379),
  password: Schema.optionalKey(Schema.String),
  db: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 15 }))),
  keyPrefix: Schema.optionalKey(Schema.String),
  timeoutMs: Schema.optionalKey(Positive)
})

/** Where blacklist files live: a local folder (embedded default: ./data/objects) or an S3 bucket (MinIO, AWS...). */
export const ObjectStoreConfig = Schema.Union([
  Schema.Struct({ kind: Schema.Literal("local"), root: Schema.String }),
  Schema.Struct({
    kind: Schema.Literal("s3"),
    bucket: Schema.String.check(Schema.isMinLength(1)),
    region: withDefault(Schema.String, "us-east-1"),
    endpoint: Schema.optionalKey(Schema.String),
    forcePathStyle: Schema.optionalKey(Schema.Boolean),
    accessKeyId: Schema.optionalKey(Schema.String),
    secretAccessKey: Schema.optionalKey(Schema.String),
    timeoutMs: withDefault(Positive, 30_000),
    /** Large objects (CDR exports) go up in parts of this size; S3 wants at least 5 MiB. */
    partSizeMiB: withDefault(Schema.Int.check(Schema.isBetween({ minimum: 5, maximum: 256 })), 8)
  })
])

export const GatewayConfig = Schema.Struct({
  http: withDefault(Schema.Struct({
    port: withDefault(Port, 8080),
    host: withDefault(Schema.String, "0.0.0.0"),
    maxBodyBytes: withDefault(Positive, 64 * 1024),
    keepAliveSeconds: withDefault(Positive, 75),
    headersTimeoutSeconds: withDefault(Positive, 10),
    /** A whole request's time, body included; also the deadline of a gRPC unary call sent without one. */
    requestTimeoutSeconds: withDefault(Positive, 30),
    /** The body limit of file uploads (contact lists' CSV), which are streamed, never held in memory. */
    maxUploadBytes: withDefault(Positive, 256 * 1024 * 1024),
    /** Time to receive a whole upload: a large file on a slow line takes minutes. */
    uploadTimeoutSeconds: withDefault(Positive, 3600),
    /** Peers whose X-Forwarded-For is believed: load balancers, reverse proxies (CIDRs). */
    trustedProxies: withDefault(Schema.Array(Schema.String), []),
    /** The Message Center's built files (default: web/dist of this installation, which `npm start` builds). */
    webRoot: Schema.optionalKey(Schema.String)
  }), {}),
  /** The gRPC front (docs/grpc.md): its own HTTP/2 listener, on by default on loopback. */
  grpc: withDefault(Schema.Struct({
    enabled: withDefault(Schema.Boolean, true),
    port: withDefault(Port, 9090),
    host: withDefault(Schema.String, "127.0.0.1"),
    /** PEM files; without them the listener speaks HTTP/2 in clear text (h2c), for loopback or a TLS proxy in front. */
    tls: Schema.optionalKey(Schema.Struct({ certFile: Schema.String, keyFile: Schema.String })),
    /** The largest request message (a batch of 1,000 SMS is well below the default 4 MiB). */
    maxMessageBytes: withDefault(Positive, 4 * 1024 * 1024),
    /** Pings on idle connections; a peer that does not answer within the timeout is disconnected. */
    keepalive: withDefault(Schema.Struct({
      intervalSeconds: withDefault(Positive, 60),
      timeoutSeconds: withDefault(Positive, 20)
    }), {}),
    /** At shutdown, how long calls in flight may take to finish before their connections are closed. */
    shutdownGraceSeconds: withDefault(Positive, 10),
    /** Calls at once on one connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS); a client opens more connections for more. */
    maxConcurrentStreams: withDefault(Positive, 100),
    /** A connection without a call for this long is closed; its client reconnects on its next call. */
    maxConnectionIdleSeconds: withDefault(Positive, 300),
    /** One WatchMessage stream ends after this long with UNAVAILABLE, "watch again" (re-authenticating the watcher). */
    maxWatchSeconds: withDefault(Positive, 600)
  }), {}),
  /**
   * The SMPP server front (docs/smpp-server.md): ESMEs bind with their app's SMPP credentials and send through the same
   * pipeline as REST and gRPC; receipts go back to them as deliver_sm.
   */
  smppServer: withDefault(Schema.Struct({
    enabled: withDefault(Schema.Boolean, false),
    host: withDefault(Schema.String, "0.0.0.0"),
    port: withDefault(Port, 2775),
    /** PEM files; without them the listener speaks SMPP in clear text (loopback, a VPN, or a TLS proxy in front). */
    tls: Schema.optionalKey(Schema.Struct({ certFile: Schema.String, keyFile: Schema.String })),
    /** Connections at once on this node; more are closed as they arrive. */
    maxConnections: withDefault(Positive, 1000),
    /** Binds of one app at once on this node; another is refused with ESME_RALYBND. */
    maxConnectionsPerApp: withDefault(Positive, 10),
    /**
     * submit_sm of one connection in the pipeline at once; while it is full the connection is not read (TCP pushes
     * back), so an ESME with a larger window waits instead of being refused.
     */
    window: withDefault(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1000 })), 50),
    /** A connection not bound this long after it opened is closed. */
    bindTimeoutSeconds: withDefault(Positive, 10),
    /** A bound connection silent this long is sent enquire_link ... */
    enquireLinkIntervalSeconds: withDefault(Positive, 60),
    /** ... and closed when nothing comes back within this. */
    enquireLinkTimeoutSeconds: withDefault(Positive, 10),
    /** How long a deliver_sm (receipt, inbound message) waits for its deliver_sm_resp before it is retried. */
    responseTimeoutSeconds: withDefault(Positive, 10),
    /** A larger command_length is answered generic_nack and the connection closed (16 KiB: npm `smpp`'s decoder's own bound). */
    maxPduBytes: withDefault(Schema.Int.check(Schema.isBetween({ minimum: 1024, maximum: 16_384 })), 16_384),
    /** One submit's bound in the pipeline; past it the ESME is answered ESME_RSYSERR (retry). */
    submitTimeoutSeconds: withDefault(Positive, 30),
    /**
     * How long the parts of a concatenated submit (UDH) wait for the rest, unanswered; then each is answered
     * ESME_RSUBMITFAIL. The parts count in the window, so a client must be able to send all of a message's parts at once.
     */
    concatTimeoutSeconds: withDefault(Positive, 30),
    /** At shutdown: clients are sent unbind, submits in flight answered; connections left after this are cut. */
    shutdownGraceSeconds: withDefault(Positive, 5)
  }), {}),
  /**
   * Traces over OpenTelemetry (docs/observability.md): recorded and exported only with `otlp` set; off otherwise, at
   * no cost. `sampleRatio` is the share of traces started here (API requests, campaign batches) that are recorded;
   * a caller's `traceparent` decides for its own trace.
   */
  telemetry: withDefault(Schema.Struct({
    serviceName: withDefault(Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(100)), "smsgw"),
    sampleRatio: withDefault(Schema.Number.check(Schema.isBetween({ minimum: 0, maximum: 1 })), 1),
    otlp: Schema.optionalKey(Schema.Struct({
      /** The collector's OTLP/HTTP base URL (spans go to `<endpoint>/v1/traces`), e.g. http://otel-collector:4318. */
      endpoint: Schema.String.check(Schema.isPattern(/^https?:\/\/[^\s]+$/)),
      /** Sent with every export (a vendor's API key): secret, redacted wherever the configuration is shown. */
      headers: withDefault(Schema.Record(Schema.String, Schema.String), {}),
      /** One export request's deadline; a collector slower than that counts as down. */
      timeoutMs: withDefault(Positive, 10_000),
      exportIntervalMs: withDefault(Positive, 5_000)
    }))
  }), {}),
  /** The process's log lines: `text` (logfmt) or `json` (one object a line, with the trace and span ids). */
  log: withDefault(Schema.Struct({
    format: withDefault(Schema.Literals(["text", "json"]), "text"),
    level: withDefault(LogLevelName, "info"),
    /** A level of its own for a part of the gateway (its lines carry `module`): `{ link: debug, http: warning }`. */
    modules: withDefault(Schema.Struct(Object.fromEntries(logModules.map((m) => [m, Schema.optionalKey(LogLevelName)])) as {
      readonly [M in LogModule]: Schema.optionalKey<typeof LogLevelName>
    }), {})
  }), {}),
  /** /metrics on a listener of its own (then not on the public port): keep it on an internal address. */
  metrics: Schema.optionalKey(Schema.Struct({
    host: withDefault(Schema.String, "127.0.0.1"),
    port: Port
  })),
  auth: withDefault(Schema.Struct({
    issuer: withDefault(Schema.String, "smsgw"),
    audience: withDefault(Schema.String, "smsgw-api"),
    accessTokenTtlSeconds: withDefault(Schema.Int.check(Schema.isBetween({ minimum: 60, maximum: 86_400 })), 900),
    /** Signing keys, newest first (it signs; all verify). Empty: one is generated and kept in the database. */
    jwtKeys: withDefault(Schema.Array(Schema.Struct({
      kid: Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(64)),
      secret: Schema.String.check(Schema.isMinLength(32))
    })), []),
    superadmin: Schema.optionalKey(Schema.Struct({
      email: Schema.String,
      password: Schema.String,
      name: withDefault(Schema.String, "Operator")
    })),
    loginThrottle: withDefault(Schema.Struct({
      /** Failed logins of one account (user or app) from one client address. */
      perAccount: Window(5, 300),
      /** Failed logins from one client address over all accounts. */
      perIp: Window(50, 300),
      /** Registrations from one client address. */
      registrations: Window(10, 3600),
      /** Invitations sent by one organisation (each is a mail to an address of its choosing). */
      invitations: Window(100, 3600)
    }), {}),
    /** Registrations without an invitation wait for a link mailed to the address (false: sign in at once). */
    requireVerifiedEmail: withDefault(Schema.Boolean, false),
    /** How long an invitation token stays usable (7 days). */
    invitationTtlHours: withDefault(Positive, 168),
    /** How long a mailed registration link stays usable. */
    confirmationTtlHours: withDefault(Positive, 24)
  }), {}),
  /** Mail to people about their accounts (invitations, registration links). Without smtp they are logged. */
  mail: withDefault(Schema.Struct({
    smtp: Schema.optionalKey(Schema.Struct({
      host: Schema.String.check(Schema.isMinLength(1)),
      port: Port,
      /** TLS from the first byte (default: port 465); otherwise STARTTLS when offered. */
      secure: Schema.optionalKey(Schema.Boolean),
      /** Refuse to send unless the server upgrades to TLS (STARTTLS). */
      requireTls: Schema.optionalKey(Schema.Boolean),
      user: Schema.optionalKey(Schema.String),
      password: Schema.optionalKey(Schema.String),
      timeoutMs: withDefault(Positive, 10_000)
    })),
    from: withDefault(Schema.String, "SMS Gateway <no-reply@localhost>"),
    /** The base of the links in mails (the web application's address; default http://localhost:<http.port>). */
    publicUrl: Schema.optionalKey(Schema.String)
  }), {}),
  /** path (sqlite) and runnerPath (postgres, embedded) default by kind: see layers/Storage.ts. */
  storage: withDefault(Schema.Struct({
    kind: Schema.Literals(["sqlite", "postgres"]),
    path: Schema.optionalKey(Schema.String),
    url: Schema.optionalKey(Schema.String),
    /** With postgres storage in the embedded mode: this process's own runner state (SQLite). */
    runnerPath: Schema.optionalKey(Schema.String)
  }), { kind: "sqlite" }),
  simulator: Schema.optionalKey(Schema.Struct({
    enabled: Schema.Boolean,
    port: withDefault(Port, 2775),
    systemId: Schema.optionalKey(Schema.String),
    password: Schema.optionalKey(Schema.String),
    receiptDelayMs: withDefault(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)), 200),
    receiptState: withDefault(Schema.Literals(["DELIVRD", "UNDELIV", "EXPIRED", "REJECTD"]), "DELIVRD"),
    /** The simulator's HTTP control on 127.0.0.1 (faults, stats, `POST /mo` to play a handset); none when absent. */
    controlPort: Schema.optionalKey(Port)
  })),
  /** Present: this process is one runner of a cluster (PostgreSQL storage required); absent: embedded. */
  cluster: Schema.optionalKey(Schema.Struct({
    /** The address other runners reach this one at. */
    runnerHost: Schema.String,
    runnerPort: Port,
    /** Where to listen for other runners (default: the runner address). */
    listenHost: Schema.optionalKey(Schema.String),
    /** A dead runner's shards are taken over after this long; with refresh every second, ~this + 3 s. */
    shardLockExpirationMs: withDefault(Positive, 6_000),
    refreshAssignmentsIntervalMs: withDefault(Positive, 1_000),
    runnerHealthCheckIntervalMs: withDefault(Positive, 2_000),
    /** How long hand-offs to one link or pool are gathered into one actor call (most cross to another node). */
    handOffWindowMs: withDefault(Positive, 25)
  })),
  rateLimits: withDefault(Schema.Struct({
    /** memory: exact for one process; redis: exact across every process sharing it. */
    store: withDefault(Schema.Literals(["memory", "redis"]), "memory"),
    redis: withDefault(RedisConnection, {}),
    onStoreFailure: withDefault(Schema.Literals(["failOpen", "failClosed"]), "failOpen"),
    /** How many gateway processes share the limits: each one's L1 share is limit / nodes. */
    nodes: withDefault(Positive, 1),
    /** L1 passes up to this multiple of the node's share on to L2 (which is exact). */
    l1Headroom: withDefault(Schema.Number.check(Schema.isGreaterThanOrEqualTo(1)), 2),
    defaultApp: withDefault(AppLimits, {}),
    organisation: withDefault(AppLimits, {}),
    organisations: withDefault(Schema.Record(Schema.String, AppLimits), {}),
    recordRejected: withDefault(Schema.Boolean, false)
  }), {}),
  /** The contact policy. Rules and blacklists bootstrap the database on first start; then `PUT /v1/policies`. */
  policy: withDefault(Schema.Struct({
    rules: withDefault(Schema.Array(PolicyRule), []),
    blacklists: Schema.optionalKey(Schema.Array(BlacklistDefinition)),
    /** Recipient buckets (RecipientPolicy actors); changing it re-homes every recipient's counters. */
    buckets: withDefault(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 65_536 })), 256),
    /** Where counters survive a bucket moving between nodes (default: the rate limits' store). */
    store: Schema.optionalKey(Schema.Literals(["memory", "redis"])),
    redis: Schema.optionalKey(RedisConnection),
    /** Recipients whose counters a node keeps in memory, over all its buckets. */
    maxRecipients: withDefault(Positive, 200_000),
    /** Counters are written to the store this often (a crash loses at most this much counting). */
    flushIntervalMs: withDefault(Positive, 50),
    /** How often every node checks the blacklist files for a change (ETag). */
    blacklistPollSeconds: withDefault(Positive, 30)
  }), {}),
  objectStore: withDefault(ObjectStoreConfig, { kind: "local", root: "./data/objects" }),
  /** Call detail records of finished messages, written to the object store (docs/cdr.md). */
  cdr: withDefault(Schema.Struct({
    enabled: withDefault(Schema.Boolean, true),
    format: withDefault(Schema.Literals(CdrFormat), "csv"),
    /** Key prefix of the regular export: `<prefix>/<org>/yyyy/mm/dd/hh/…`. */
    prefix: withDefault(Schema.String.check(Schema.isPattern(/^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/)), "cdr"),
    intervalSeconds: withDefault(Positive, 300),
    /** Most messages one batch (and so one run's objects) holds. */
    batchSize: withDefault(Schema.Int.check(Schema.isBetween({ minimum: 100, maximum: 1_000_000 })), 50_000)
  }), {}),
  /** How long rows are kept (docs/cdr.md): messages only once their CDR is exported when the export is on. */
  retention: withDefault(Schema.Struct({
    /** false: nothing is deleted (the store grows without bound). */
    enabled: withDefault(Schema.Boolean, true),
    days: withDefault(Positive, 30),
    auditDays: withDefault(Positive, 365),
    intervalSeconds: withDefault(Positive, 600),
    batchSize: withDefault(Schema.Int.check(Schema.isBetween({ minimum: 10, maximum: 100_000 })), 1000)
  }), {}),
  /**
   * Status callbacks (docs/callbacks.md): how the outbox is delivered — one deliverer per cluster, its limits, its
   * retries, and where it may post.
   */
  callbacks: withDefault(Schema.Struct({
    /** false: nothing is posted; callbacks wait in the outbox, and the API still lists and replays them. */
    enabled: withDefault(Schema.Boolean, true),
    /** One POST's deadline: resolving the host, connecting and the whole answer. */
    timeoutMs: withDefault(Positive, 5_000),
    /** POSTs at once to one app's receiver: a slow receiver holds only its own share. */
    concurrencyPerApp: withDefault(Positive, 4),
    /** Callbacks in hand at once, over all apps. */
    maxConcurrency: withDefault(Positive, 64),
    /** How long a callback is retried after its move (or its replay) before it is dead: listed and replayed by the API. */
    maxAgeSeconds: withDefault(Positive, 86_400),
    /** Exponential backoff with full jitter: the wait before retry n is random below min(maxMs, initialMs · 2^(n-1)). */
    backoff: withDefault(Schema.Struct({
      initialMs: withDefault(Positive, 1_000),
      maxMs: withDefault(Positive, 3_600_000)
    }), {}),
    /** How often the outbox is read for callbacks due (a later move of a message is due once the earlier one is delivered). */
    pollIntervalMs: withDefault(Positive, 250),
    /** Most callbacks taken from the outbox at a time. */
    batchSize: withDefault(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 10_000 })), 100),
    /**
     * true: callbacks may go to private, loopback, link-local and other non-public addresses (a receiver inside your
     * own network). Off, such an address is refused before any connection is made.
     */
    allowPrivateNetworks: withDefault(Schema.Boolean, false)
  }), {}),
  /**
   * Inbound (mobile-originated) messages (docs/inbound.md): one processor per cluster reassembles, routes and delivers
   * what links stored. The routes themselves are data (`PUT /v1/admin/inbound/routes`), not configuration.
   */
  inbound: withDefault(Schema.Struct({
    /** false: links still store what SMSCs deliver (and answer them); nothing is routed until it is on again. */
    enabled: withDefault(Schema.Boolean, true),
    /** How often stored parts are looked for. */
    pollIntervalMs: withDefault(Positive, 250),
    /** How long the parts of a concatenated message wait for the others before it is made of those it has. */
    reassemblySeconds: withDefault(Positive, 300),
    /** Most stored parts one pass reads. */
    batchSize: withDefault(Schema.Int.check(Schema.isBetween({ minimum: 10, maximum: 10_000 })), 500)
  }), {}),
  links: Schema.Array(LinkConfig),
  /** Bootstrap only: once the database holds links, pools and routes, the admin API changes them. */
  pools: withDefault(Schema.Array(PoolConfig), []),
  routes: withDefault(RouteRules, []),
  recovery: withDefault(Schema.Struct({
    idleSeconds: withDefault(Positive, 30),
    intervalSeconds: withDefault(Positive, 5),
    /** Superseded by receipts.orphanTtlSeconds; still read when that is absent. */
    orphanReceiptHours: Schema.optionalKey(Positive),
    /**
     * Per message class, what recovery does with a part a stopped node had handed to the SMSC without storing its
     * answer: `resend` (may duplicate) or `report` (ends `submitted`, reason `unknown_outcome`; may be lost).
     */
    unknownOutcome: Schema.optionalKey(Schema.Struct({
      transactional: Schema.optionalKey(UnknownOutcomeAction),
      promotional: Schema.optionalKey(UnknownOutcomeAction)
    }))
  }), {}),
  campaigns: withDefault(Schema.Struct({
    /**
     * Test sends (`POST /v1/campaigns/{id}/test`) one user may make in one organisation per rolling 24 hours: they send
     * text no moderator has approved, so they are few.
     */
    testSendsPerDay: withDefault(Positive, 20)
  }), {}),
  /** How long a part waits for its receipt, and what is kept of receipts that find no message (docs/smpp.md). */
  receipts: withDefault(Schema.Struct({
    expireGraceSeconds: withDefault(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)), receiptDefaults.graceMs / 1000),
    assumedValiditySeconds: withDefault(Positive, receiptDefaults.assumedValidityMs / 1000),
    /** Default: recovery.orphanReceiptHours when set (its old name), else 600 (10 minutes). */
    orphanTtlSeconds: Schema.optionalKey(Positive),
    orphanMaxPerLink: withDefault(Positive, receiptDefaults.orphanMaxPerLink),
    sweepIntervalSeconds: withDefault(Positive, 30)
  }), {})
})
/** The configuration as written (a file, a test): keys with a default may be left out. */
export type GatewayConfig = typeof GatewayConfig.Encoded
/** The decoded configuration: every default filled in. Only src/layers reads it; modules get options. */
export type EffectiveConfig = typeof GatewayConfig.Type

export class ConfigError extends Schema.TaggedError<ConfigError>()("ConfigError", {
  message: Schema.String
}) {
  /** The CLI prints the message once; the runtime must not log it again with a stack trace. */
  override readonly [Runtime.errorReported] = false
}

/** A value that was one `${NAME}` placeholder: where it sits, and the variable's text. */
interface FromEnv {
  readonly path: ReadonlyArray<string | number>
  readonly text: string
}

/**
 * `${NAME}` in a string value is replaced by the environment variable NAME (an unset one is an error). The result is
 * a string, whatever it looks like: a carrier password `${PW}` with `PW=12345678` stays the string "12345678". Values
 * that were one placeholder are remembered, so that a key whose schema wants a number or a boolean can take them.
 */
const interpolate = (
  value: unknown,
  env: NodeJS.ProcessEnv,
  path: ReadonlyArray<string | number>,
  found: { readonly missing: Array<string>; readonly whole: Array<FromEnv> }
): unknown => {
  if (typeof value === "string") {
    const whole = /^\$\{([A-Z0-9_]+)\}$/.exec(value)
    const text = value.replace(/\$\{([A-Z0-9_]+)\}/g, (_, name: string) => {
      const variable = env[name]
      if (variable === undefined) found.missing.push(`${fieldPath(path) || "(root)"}: environment variable ${name} is not set`)
      return variable ?? ""
    })
    if (whole !== null) found.whole.push({ path, text })
    return text
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, env, [...path, i], found))
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, env, [...path, k], found)]))
  }
  return value
}

/** The environment's text as the number or boolean a key asked for; undefined when it is neither. */
const scalarOf = (text: string): number | boolean | undefined =>
  /^-?\d+(\.\d+)?$/.test(text) ? Number(text) : text === "true" ? true : text === "false" ? false : undefined

/** A copy of the document with the value at `path` replaced. */
const setAt = (doc: unknown, path: ReadonlyArray<string | number>, value: unknown): unknown => {
  if (path.length === 0) return value
  const [head, ...rest] = path as [string | number, ...Array<string | number>]
  if (Array.isArray(doc)) return doc.map((v, i) => (i === head ? setAt(v, rest, value) : v))
  const record = asRecord(doc)
  return { ...record, [head]: setAt(record[head], rest, value) }
}

const asRecord = (u: unknown): Record<string, unknown> =>
  u !== null && typeof u === "object" && !Array.isArray(u) ? { ...(u as Record<string, unknown>) } : {}

/** Environment overrides for what differs per deployment or must stay out of files (secrets). */
const applyEnv = (raw: Record<string, unknown>, env: NodeJS.ProcessEnv): Record<string, unknown> => {
  const out = { ...raw }
  if (env.SMSGW_HTTP_PORT !== undefined) out.http = { ...asRecord(out.http), port: Number(env.SMSGW_HTTP_PORT) }
  if (env.SMSGW_GRPC_PORT !== undefined) out.grpc = { ...asRecord(out.grpc), port: Number(env.SMSGW_GRPC_PORT) }
  if (env.SMSGW_SMPP_SERVER_PORT !== undefined) {
    out.smppServer = { ...asRecord(out.smppServer), port: Number(env.SMSGW_SMPP_SERVER_PORT) }
  }
  if (env.SMSGW_DATABASE_URL !== undefined) {
    out.storage = { ...asRecord(out.storage), kind: "postgres", url: env.SMSGW_DATABASE_URL }
  }
  if (env.SMSGW_SQLITE_PATH !== undefined) {
    out.storage = { ...asRecord(out.storage), kind: "sqlite", path: env.SMSGW_SQLITE_PATH }
  }
  if (env.SMSGW_REDIS_URL !== undefined) {
    const url = new URL(env.SMSGW_REDIS_URL)
    const limits = asRecord(out.rateLimits)
    out.rateLimits = {
      ...limits,
      store: "redis",
      redis: {
        ...asRecord(limits.redis),
        host: url.hostname,
        port: Number(url.port || 6379),
        ...(url.password !== "" ? { password: decodeURIComponent(url.password) } : {})
      }
    }
  }
  if (env.SMSGW_SUPERADMIN_EMAIL !== undefined && env.SMSGW_SUPERADMIN_PASSWORD !== undefined) {
    const auth = asRecord(out.auth)
    out.auth = { ...auth, superadmin: { email: env.SMSGW_SUPERADMIN_EMAIL, password: env.SMSGW_SUPERADMIN_PASSWORD } }
  }
  if (env.SMSGW_JWT_SECRET !== undefined) {
    out.auth = { ...asRecord(out.auth), jwtKeys: [{ kid: env.SMSGW_JWT_KID ?? "env", secret: env.SMSGW_JWT_SECRET }] }
  }
  if (Array.isArray(out.links)) {
    out.links = out.links.map((l: unknown) => {
      const link = asRecord(l)
      const key = String(link.id ?? "").toUpperCase().replace(/[^A-Z0-9]/g, "_")
      const password = env[`SMSGW_LINK_${key}_PASSWORD`]
      return password === undefined ? link : { ...link, password }
    })
  }
  return out
}

/** Decodes a configuration document; the error names every bad key as a dotted path. */
export const decodeConfig = (raw: unknown, env: NodeJS.ProcessEnv = {}): Effect.Effect<EffectiveConfig, ConfigError> =>
  Effect.suspend(() => {
    const found = { missing: new Array<string>(), whole: new Array<FromEnv>() }
    const interpolated = applyEnv(asRecord(interpolate(raw ?? {}, env, [], found)), env)
    if (found.missing.length > 0) return Effect.fail(new ConfigError({ message: found.missing.join("\n") }))
    const decode = (doc: unknown) => Schema.decodeUnknownEffect(GatewayConfig)(doc, { errors: "all", onExcessProperty: "error" })
    return decode(interpolated).pipe(
      // Where the schema refused an environment value as a string, it wants a number or a boolean: give it that, once.
      Effect.catch((error) => {
        const refused = new Set(fieldIssues(error.issue).map((i) => i.field))
        const typed = found.whole.flatMap((w) => {
          const scalar = scalarOf(w.text)
          return refused.has(fieldPath(w.path)) && scalar !== undefined ? [{ path: w.path, scalar }] : []
        })
        return typed.length === 0
          ? Effect.fail(error)
          : decode(typed.reduce<unknown>((doc, t) => setAt(doc, t.path, t.scalar), interpolated))
      }),
      Effect.mapError((error) =>
        new ConfigError({ message: fieldIssues(error.issue).map((i) => `${i.field}: ${i.message}`).join("\n") })
      ),
      Effect.flatMap((config) => {
        const ids = new Set<string>()
        for (const [i, link] of config.links.entries()) {
          if (ids.has(link.id)) return Effect.fail(new ConfigError({ message: `links[${i}].id: duplicate link id "${link.id}"` }))
          ids.add(link.id)
        }
        if (config.cluster !== undefined && config.storage.kind !== "postgres") {
          return Effect.fail(new ConfigError({ message: "storage.kind: a cluster needs postgres (one database shared by its nodes)" }))
        }
        // The same choice as the counter store's layer: policy.store, else the rate limits' store, else memory. In
        // memory, a recipient bucket that moves to another node (every deploy, every failover) starts counting from
        // zero there: caps and dedup would quietly stop holding.
        if (config.cluster !== undefined && (config.policy.store ?? config.rateLimits.store) === "memory") {
          return Effect.fail(new ConfigError({
            message: "policy.store: a cluster needs the contact policy's counters in Redis (policy.store: redis, or " +
              "rateLimits.store: redis whose connection it then reuses); in memory they are lost whenever a recipient " +
              "bucket moves to another node"
          }))
        }
        // Each node would write its CDR files to its own disk, and each would list only its own.
        if (config.cluster !== undefined && config.cdr.enabled && config.objectStore.kind === "local") {
          return Effect.fail(new ConfigError({
            message: "objectStore.kind: a cluster writes CDR files to one object store its nodes share (kind: s3, e.g. " +
              "MinIO); a local folder is each node's own. Or turn the export off: cdr.enabled: false"
          }))
        }
        const problems = checkPolicy({ rules: config.policy.rules, ...(config.policy.blacklists !== undefined ? { blacklists: config.policy.blacklists } : {}) })
        if (problems.length > 0) {
          return Effect.fail(new ConfigError({ message: problems.map((p) => `policy.${p.field}: ${p.message}`).join("\n") }))
        }
        if (config.storage.kind === "postgres" && config.storage.url === undefined) {
          return Effect.fail(new ConfigError({ message: "storage.url: required when storage.kind is postgres" }))
        }
        return Effect.succeed(config)
      })
    )
  })

export const loadConfigFile = (file: string, env: NodeJS.ProcessEnv = process.env) =>
  Effect.try({
    try: () => parseYaml(readFileSync(file, "utf8")) as unknown,
    catch: (e) => new ConfigError({ message: `${file}: ${e instanceof Error ? e.message : String(e)}` })
  }).pipe(
    Effect.flatMap((raw) => decodeConfig(raw, env)),
    Effect.mapError((e) => new ConfigError({ message: `invalid configuration in ${file}:\n${e.message}` }))
  )

/** Where callers of the configuration look for them; the schema and the defaults live in routing/Links.ts. */
export { LinkConfig, linkDefaults } from "../routing/Links.ts"

const hidden = "***"

/** A connection URL with its password (if any) hidden: `postgres://gw:***@db/sms`. */
const hideUrlPassword = (url: string): string => {
  try {
    const parsed = new URL(url)
    if (parsed.password === "") return url
    parsed.password = hidden
    return parsed.toString()
  } catch {
    return hidden
  }
}

/**
 * The configuration with every secret replaced by "***": passwords (links, simulator, superadmin, SMTP, Redis), JWT
 * secrets, S3 keys, the password inside the storage URL, and the OTLP exporter's header values. What `smsgw config print` shows.
 */
export const redactSecrets = (config: EffectiveConfig): EffectiveConfig => {
  const redis = <R extends { readonly password?: string }>(r: R): R => (r.password === undefined ? r : { ...r, password: hidden })
  const store = config.objectStore
  return {
    ...config,
    links: config.links.map((l) => ({ ...l, password: hidden })),
    auth: {
      ...config.auth,
      jwtKeys: config.auth.jwtKeys.map((k) => ({ ...k, secret: hidden })),
      ...(config.auth.superadmin !== undefined ? { superadmin: { ...config.auth.superadmin, password: hidden } } : {})
    },
    mail: {
      ...config.mail,
      ...(config.mail.smtp !== undefined ? { smtp: redis(config.mail.smtp) } : {})
    },
    ...(config.storage.url !== undefined ? { storage: { ...config.storage, url: hideUrlPassword(config.storage.url) } } : {}),
    ...(config.simulator !== undefined ? { simulator: redis(config.simulator) } : {}),
    rateLimits: { ...config.rateLimits, redis: redis(config.rateLimits.redis) },
    policy: { ...config.policy, ...(config.policy.redis !== undefined ? { redis: redis(config.policy.redis) } : {}) },
    telemetry: {
      ...config.telemetry,
      ...(config.telemetry.otlp !== undefined
        ? {
          otlp: {
            ...config.telemetry.otlp,
            headers: Object.fromEntries(Object.keys(config.telemetry.otlp.headers).map((name) => [name, hidden]))
          }
        }
        : {})
    },
    objectStore: store.kind === "local" ? store : {
      ...store,
      ...(store.accessKeyId !== undefined ? { accessKeyId: hidden } : {}),
      ...(store.secretAccessKey !== undefined ? { secretAccessKey: hidden } : {})
    }
  }
}
