/**
 * The composition root of a process: storage, cluster runtime, actors, pipeline, HTTP and admin RPC, gRPC, per mode.
 */
import { NodeClusterSocket, NodeCrypto } from "@effect/platform-node"
import { Duration, Effect, Layer, Option, Schedule } from "effect"
import type { SqlClient } from "effect/sql"
import { RunnerAddress, SingleRunner } from "effect/cluster"
import * as SmppLinkActor from "../actors/SmppLink.ts"
import * as VirtualPoolActor from "../actors/VirtualPool.ts"
import { RoutingConfig } from "../routing/RoutingConfig.ts"
import { PoolMetrics } from "../observability/Metrics.ts"
import { SmppLink } from "../actors/SmppLinkProtocol.ts"
import * as HttpServer from "../http/Server.ts"
import * as GrpcServer from "../grpc/Server.ts"
import { SmppServer } from "../pipeline/SmppFront.ts"
import { CallbackMetrics, CdrMetrics, HttpMetrics, InboundMetrics, LinkMetrics, SmppServerMetrics } from "../observability/Metrics.ts"
import { RuntimeMetrics } from "../observability/RuntimeMetrics.ts"
import * as Tracing from "../observability/Tracing.ts"
import { inModule } from "../observability/Logging.ts"
import { productVersion } from "./Version.ts"
import { Readiness } from "../pipeline/Readiness.ts"
import { Dashboard } from "../pipeline/Dashboard.ts"
import { Gateway } from "../pipeline/Gateway.ts"
import { CampaignInsight } from "../pipeline/CampaignInsight.ts"
import { Campaigns as CampaignUseCases } from "../pipeline/Campaigns.ts"
import { Audience } from "../storage/Audience.ts"
import { CampaignStats } from "../storage/CampaignStats.ts"
import { SenderUse } from "../storage/SenderUse.ts"
import { LinkDispatcher } from "../actors/LinkDispatcher.ts"
import * as ReceiptSweeper from "../pipeline/ReceiptSweeper.ts"
import * as CampaignRunner from "../pipeline/CampaignRunner.ts"
import { CampaignControl } from "../pipeline/CampaignControl.ts"
import { CampaignRecipients } from "../storage/CampaignRecipients.ts"
import { CampaignStore } from "../storage/CampaignStore.ts"
import * as Recovery from "../pipeline/Recovery.ts"
import * as CdrExport from "../pipeline/CdrExport.ts"
import { CdrFiles } from "../pipeline/CdrFiles.ts"
import * as Retention from "../pipeline/Retention.ts"
import * as Callbacks from "../pipeline/Callbacks.ts"
import * as Inbound from "../pipeline/Inbound.ts"
import { InboundStore } from "../storage/InboundStore.ts"
import { CallbackStore } from "../storage/CallbackStore.ts"
import { CdrStore } from "../storage/CdrStore.ts"
import { RetentionStore } from "../storage/RetentionStore.ts"
import { Router } from "../routing/Router.ts"
import * as Simulator from "../smpp/Simulator.ts"
import { serveControl } from "../smpp/SimulatorControl.ts"
import { MessageStore, ReceiptSettings } from "../storage/MessageStore.ts"
import { IdempotencyStore } from "../storage/IdempotencyStore.ts"
import { MessageSearch } from "../storage/MessageSearch.ts"
import { countChanges, DashboardStats } from "../storage/DashboardStats.ts"
import { ContactStore } from "../storage/ContactStore.ts"
import { decodeConfig } from "./Config.ts"
import type { GatewayConfig } from "./Config.ts"
import type { EffectiveConfig } from "./Config.ts"
import { runnerSqlLayer, sqlLayer } from "./Storage.ts"
import { rateLimitLayer } from "./RateLimits.ts"
import { Operations } from "../pipeline/Operations.ts"
import { objectStoreLayer, policyLayer } from "./Policy.ts"
import { authLayer } from "./Auth.ts"
import { redisConnections } from "./Redis.ts"
import { AccountStore } from "../auth/AccountStore.ts"
import { migrate } from "./Migrations.ts"
import { ActorRegistry, RunnerIdentity } from "../actors/ActorRegistry.ts"
import { RunnerDirectory } from "../rpc/AdminRpcServer.ts"

/** Wakes every configured link actor once; `keepAlive` keeps it (and its bind) up from then on. */
const LinkStarter = Layer.effectDiscard(Effect.gen(function*() {
  const routing = yield* RoutingConfig
  const clientFor = yield* SmppLink.client
  const links = routing.current().links.filter((l) => l.enabled)
  yield* Effect.forEach(links, (link) =>
    clientFor(link.id).Inspect().pipe(
      Effect.timeout("10 seconds"),
      Effect.retry(Schedule.spaced("1 second")),
      Effect.ignore,
      Effect.forkScoped
    ), { discard: true })
}))

/** The store's receipt settings from `receipts:`; drops at the orphan cap are counted by link. */
const receiptSettingsLayer = (config: EffectiveConfig) =>
  Layer.effect(ReceiptSettings, Effect.gen(function*() {
    const metrics = yield* LinkMetrics
    const receipts = config.receipts
    return {
      graceMs: receipts.expireGraceSeconds * 1000,
      assumedValidityMs: receipts.assumedValiditySeconds * 1000,
      orphanMaxPerLink: receipts.orphanMaxPerLink,
      onOrphansDropped: (linkId: string, n: number) => metrics.orphansDropped(linkId, "cap", n)
    }
  }))

/** The built-in SMSC simulator of the embedded mode: a demo link on loopback that answers and sends receipts. */
const simulatorLayer = (config: EffectiveConfig) => {
  const sim = config.simulator
  if (sim === undefined || !sim.enabled) return Layer.empty
  return Layer.effectDiscard(Effect.gen(function*() {
    const simulator = yield* Simulator.start({
      port: sim.port,
      host: "127.0.0.1",
      ...(sim.systemId !== undefined ? { systemId: sim.systemId } : {}),
      ...(sim.password !== undefined ? { password: sim.password } : {}),
      receiptDelayMs: sim.receiptDelayMs,
      receiptState: sim.receiptState
    })
    yield* Effect.logInfo("SMSC simulator listening").pipe(Effect.annotateLogs({ port: simulator.port }))
    if (sim.controlPort !== undefined) {
      const control = yield* serveControl(simulator, sim.controlPort)
      yield* Effect.logInfo("SMSC simulator control listening").pipe(Effect.annotateLogs({ port: control.port }))
    }
  }).pipe(Effect.orDie))
}

/**
 * The cluster runtime. Embedded: SingleRunner, its state in the message store's database (or a local SQLite file when
 * that is PostgreSQL). Cluster: a socket runner on PostgreSQL, runner address and failover timings from the
 * configuration only (never from stray environment variables).
 */
const clusterLayer = (config: EffectiveConfig, Sql: Layer.Layer<SqlClient.SqlClient, unknown>) => {
  const cluster = config.cluster
  if (cluster === undefined) {
    return SingleRunner.layer({
      runnerStorage: "memory",
      shardingConfig: {
        runnerAddress: Option.some(RunnerAddress.make("127.0.0.1", 0)),
        simulateRemoteSerialization: false
      }
    }).pipe(
      Layer.provide(NodeCrypto.layerDigest),
      Layer.provide(config.storage.kind === "postgres" ? runnerSqlLayer(config) as Layer.Layer<SqlClient.SqlClient, unknown> : Sql),
      Layer.orDie
    )
  }
  return NodeClusterSocket.layer({
    storage: "sql",
    shardingConfig: {
      runnerAddress: Option.some(RunnerAddress.make(cluster.runnerHost, cluster.runnerPort)),
      runnerListenAddress: Option.some(RunnerAddress.make(cluster.listenHost ?? cluster.runnerHost, cluster.runnerPort)),
      shardLockExpiration: Duration.millis(cluster.shardLockExpirationMs),
      refreshAssignmentsInterval: Duration.millis(cluster.refreshAssignmentsIntervalMs),
      runnerHealthCheckInterval: Duration.millis(cluster.runnerHealthCheckIntervalMs),
      // Calls to an actor on this node skip the encode/decode round that only simulates a remote call (a test aid):
      // remote calls are exercised by every hand-off to another node anyway.
      simulateRemoteSerialization: false
    }
  }).pipe(Layer.provide(Sql), Layer.orDie)
}

/** One process of the gateway: embedded (SingleRunner) by default, one node of a cluster with `cluster:` set. */
export const gatewayLayer = (config: EffectiveConfig) => {
  const cluster = config.cluster
  const Base = Layer.mergeAll(
    LinkMetrics.layer,
    HttpMetrics.layer,
    RuntimeMetrics.layer,
    PoolMetrics.layer,
    // The runner address the actor registry and the admin RPC name this process by: the cluster's own `host:port`.
    cluster === undefined ? Layer.empty : Layer.succeed(RunnerIdentity, `${cluster.runnerHost}:${cluster.runnerPort}`)
  )
  const Sql = sqlLayer(config)
  const Cluster = clusterLayer(config, Sql as Layer.Layer<SqlClient.SqlClient, unknown>).pipe(inModule("cluster"))
  const Migrated = Layer.effectDiscard(migrate.pipe(Effect.orDie))
  const Routing = RoutingConfig.layer({
    seed: { links: config.links, pools: config.pools, routes: config.routes },
    pollIntervalMs: 1000
  })
  const Runners = cluster === undefined
    ? RunnerDirectory.layerSingle()
    : RunnerDirectory.layerSql({ shardLockExpirationMs: cluster.shardLockExpirationMs })
  // The live figures count what the store commits and what the pipeline decides: one set of counters for both.
  const Store = MessageStore.layer.pipe(
    Layer.provide(receiptSettingsLayer(config)),
    Layer.provide(countChanges),
    Layer.provideMerge(DashboardStats.layer)
  )
  const Core = Layer.mergeAll(Store, IdempotencyStore.layer(), MessageSearch.layer, AccountStore.layer, CampaignStore.layer, CampaignRecipients.layer, ContactStore.layer, InboundStore.layer, Routing, ActorRegistry.layer(), Cluster).pipe(
    Layer.provideMerge(Migrated),
    Layer.provideMerge(Sql),
    Layer.provideMerge(Base)
  )
  // The link and pool entities mark their own lines (module=link): an entity runs in the cluster runtime's fibers.
  const Actors = Layer.mergeAll(SmppLinkActor.layer({ recoveryIdleMs: config.recovery.idleSeconds * 1000 }), VirtualPoolActor.layer).pipe(
    Layer.provideMerge(LinkDispatcher.layerWith({ windowMs: config.cluster === undefined ? 1 : config.cluster.handOffWindowMs }))
  )
  // One Redis connection shared by the rate limits, the policy's counters and the login throttle.
  const redis = redisConnections(config)
  // One object store client for the process: blacklists read from it, CDR files are written to it.
  const Objects = objectStoreLayer(config)
  const Services = Layer.mergeAll(Router.layer, Actors, policyLayer(config, redis, Objects).pipe(inModule("policy")), Readiness.layer, Runners).pipe(
    Layer.provideMerge(authLayer(config, redis)),
    Layer.provideMerge(rateLimitLayer(config, redis).pipe(inModule("ratelimit"))),
    Layer.provideMerge(Core)
  )
  const recovery = config.recovery
  // Campaigns submit through the pipeline: their actor, the supervisor that keeps it going, and the control service.
  const Campaigns = Layer.mergeAll(
    CampaignRunner.layer().pipe(Layer.provide(Audience.layer)),
    CampaignRunner.supervisorLayer({ intervalMs: 1000 }),
    CampaignControl.layer
  ).pipe(inModule("campaign"), Layer.provideMerge(Gateway.layer({ recordRejected: config.rateLimits?.recordRejected === true })))
  const App = Layer.mergeAll(
    Campaigns,
    Operations.layer(),
    CampaignInsight.layer(config.rateLimits).pipe(Layer.provideMerge(Audience.layer)),
    // The campaigns API: its use cases over the store, the audience, the statistics and the control service.
    CampaignUseCases.layer(config.campaigns).pipe(Layer.provide(Layer.mergeAll(Audience.layer, SenderUse.layer, CampaignStats.layer)), Layer.provide(Campaigns)),
    Dashboard.layer,
    Layer.merge(Recovery.layer({
      idleMs: recovery.idleSeconds * 1000,
      intervalMs: recovery.intervalSeconds * 1000,
      unknownOutcome: recovery.unknownOutcome,
      // In a cluster the other nodes' fresh messages are pending too: only idle ones are re-driven.
      recoverAllOnStart: config.cluster === undefined
    }), ReceiptSweeper.layer({
      intervalMs: config.receipts.sweepIntervalSeconds * 1000,
      // Long enough for a submit result written late (a store that stalls); 10 minutes, not hours.
      orphanTtlMs: config.receipts.orphanTtlSeconds !== undefined
        ? config.receipts.orphanTtlSeconds * 1000
        : recovery.orphanReceiptHours !== undefined ? recovery.orphanReceiptHours * 3_600_000 : 600_000
    })).pipe(inModule("recovery")),
    cdrLayer(config).pipe(inModule("cdr"), Layer.provide(Objects)),
    callbacksLayer(config).pipe(inModule("callbacks")),
    inboundLayer(config).pipe(inModule("inbound"), Layer.provide(Campaigns)),
    LinkStarter
  ).pipe(Layer.provideMerge(Services))
  const http = config.http
  const Http = HttpServer.layer({
    port: http.port,
    host: http.host,
    maxBodyBytes: http.maxBodyBytes,
    keepAliveSeconds: http.keepAliveSeconds,
    headersTimeoutSeconds: http.headersTimeoutSeconds,
    requestTimeoutSeconds: http.requestTimeoutSeconds,
    maxUploadBytes: http.maxUploadBytes,
    uploadTimeoutSeconds: http.uploadTimeoutSeconds,
    webRoot: http.webRoot,
    metrics: config.metrics,
    adminRpc: { buckets: config.policy.buckets }
  }).pipe(inModule("http"))
  const grpc = config.grpc
  const Grpc = grpc.enabled
    ? GrpcServer.layer({
      host: grpc.host,
      port: grpc.port,
      tls: grpc.tls,
      maxMessageBytes: grpc.maxMessageBytes,
      keepalive: { intervalMs: grpc.keepalive.intervalSeconds * 1000, timeoutMs: grpc.keepalive.timeoutSeconds * 1000 },
      shutdownGraceMs: grpc.shutdownGraceSeconds * 1000,
      maxConcurrentStreams: grpc.maxConcurrentStreams,
      maxConnectionIdleMs: grpc.maxConnectionIdleSeconds * 1000,
      maxWatchMs: grpc.maxWatchSeconds * 1000,
      // One bound for a call without a deadline, whichever front it came by.
      unaryTimeoutMs: http.requestTimeoutSeconds * 1000
    }).pipe(inModule("grpc"))
    : Layer.empty
  return Layer.mergeAll(Http, Grpc, smppServerLayer(config)).pipe(
    Layer.provideMerge(App),
    Layer.provideMerge(simulatorLayer(config)),
    Layer.provide(tracingLayer(config))
  )
}

/**
 * CDR files (the API reads them whatever the export's state), the export (a singleton, when on) and retention (a
 * singleton, which waits for the export when it is on).
 */
const cdrLayer = (config: EffectiveConfig) => {
  const cdr = config.cdr
  const Files = CdrFiles.layer({ prefix: cdr.prefix })
  const Export = cdr.enabled
    ? CdrExport.scheduleLayer({ intervalMs: cdr.intervalSeconds * 1000 }).pipe(
      Layer.provideMerge(CdrExport.layer({ prefix: cdr.prefix, format: cdr.format, batchSize: cdr.batchSize })),
      Layer.provideMerge(CdrStore.layer)
    )
    : Layer.empty
  const retention = config.retention
  const Purge = retention.enabled
    ? Retention.layer({
      messageDays: retention.days,
      auditDays: retention.auditDays,
      // An hour, or three export intervals if longer: no exporter still writes a batch marked done that long ago.
      exportGraceMs: cdr.enabled ? Math.max(3_600_000, 3 * cdr.intervalSeconds * 1000) : undefined,
      batchSize: retention.batchSize,
      intervalMs: retention.intervalSeconds * 1000
    }).pipe(Layer.provideMerge(RetentionStore.layer))
    : RetentionStore.layer
  return Layer.mergeAll(Files, Export, Purge).pipe(Layer.provideMerge(CdrMetrics.layer))
}

/**
 * Status callbacks: the outbox (the API lists and replays it whatever the deliverer's state) and its deliverer — a
 * singleton in a cluster, a fiber of the process embedded.
 */
/** The inbound processor: a fiber embedded, a singleton in a cluster; its metrics either way. */
const inboundLayer = (config: EffectiveConfig) => {
  const c = config.inbound
  const options: Inbound.InboundOptions = {
    pollIntervalMs: c.pollIntervalMs,
    reassemblyMs: c.reassemblySeconds * 1000,
    batchSize: c.batchSize
  }
  const Processor = !c.enabled
    ? Layer.empty
    : config.cluster === undefined
    ? Inbound.layer(options)
    : Inbound.singletonLayer(options)
  return Processor.pipe(Layer.provideMerge(InboundMetrics.layer))
}

const callbacksLayer = (config: EffectiveConfig) => {
  const c = config.callbacks
  const options: Callbacks.CallbacksOptions = {
    version: productVersion,
    timeoutMs: c.timeoutMs,
    concurrencyPerApp: c.concurrencyPerApp,
    maxConcurrency: c.maxConcurrency,
    maxAgeMs: c.maxAgeSeconds * 1000,
    backoff: c.backoff,
    pollIntervalMs: c.pollIntervalMs,
    batchSize: c.batchSize,
    allowPrivateNetworks: c.allowPrivateNetworks
  }
  const Deliverer = !c.enabled
    ? Layer.empty
    : config.cluster === undefined
    ? Callbacks.layer(options)
    : Callbacks.singletonLayer(options)
  return Deliverer.pipe(Layer.provideMerge(CallbackStore.layer), Layer.provideMerge(CallbackMetrics.layer))
}

/**
 * The SMPP server front (docs/smpp-server.md), when enabled: ESMEs submit through the pipeline; receipts go back to
 * the binds of this node from the callbacks' outbox, with the callbacks' poll interval, retry window and backoff.
 */
const smppServerLayer = (config: EffectiveConfig) => {
  const s = config.smppServer
  if (!s.enabled) return Layer.empty
  const c = config.callbacks
  return SmppServer.layer({
    host: s.host,
    port: s.port,
    tls: s.tls,
    maxConnections: s.maxConnections,
    maxConnectionsPerApp: s.maxConnectionsPerApp,
    window: s.window,
    maxPduBytes: s.maxPduBytes,
    bindTimeoutMs: s.bindTimeoutSeconds * 1000,
    enquireLinkIntervalMs: s.enquireLinkIntervalSeconds * 1000,
    enquireLinkTimeoutMs: s.enquireLinkTimeoutSeconds * 1000,
    responseTimeoutMs: s.responseTimeoutSeconds * 1000,
    submitTimeoutMs: s.submitTimeoutSeconds * 1000,
    concatTimeoutMs: s.concatTimeoutSeconds * 1000,
    shutdownGraceMs: s.shutdownGraceSeconds * 1000,
    receipts: {
      pollIntervalMs: c.pollIntervalMs,
      batchSize: c.batchSize,
      concurrencyPerApp: c.concurrencyPerApp,
      maxAgeMs: c.maxAgeSeconds * 1000,
      backoff: c.backoff
    }
  }).pipe(Layer.provide(SmppServerMetrics.layer), inModule("smpp-server"))
}

/** Traces of this process (off without an OTLP endpoint); a cluster node names itself by its runner address. */
const tracingLayer = (config: EffectiveConfig) =>
  Tracing.layer({
    serviceName: config.telemetry.serviceName,
    serviceVersion: productVersion,
    sampleRatio: config.telemetry.sampleRatio,
    otlp: config.telemetry.otlp,
    ...(config.cluster !== undefined ? { attributes: { "smsgw.runner": `${config.cluster.runnerHost}:${config.cluster.runnerPort}` } } : {})
  })

/** The gateway from a configuration as written (tests, the embedded quick start): decoded first, so defaults apply. */
export const embeddedLayer = (config: GatewayConfig) =>
  Layer.unwrap(decodeConfig(config).pipe(Effect.orDie, Effect.map(gatewayLayer)))
