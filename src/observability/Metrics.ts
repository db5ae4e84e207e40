/**
 * Prometheus metrics of links, pools, HTTP, rate limits, recovery, CDRs and status callbacks: labelled series made
 * once, updated synchronously.
 */
import { Context, Effect, Layer, Metric } from "effect"
import { commandStatusName } from "../smpp/CommandStatus.ts"

const latencyBoundaries = Metric.exponentialBoundaries({ start: 0.001, factor: 2, count: 16 })

const submitResponses = Metric.counter("smsgw_link_submit_responses_total", {
  description: "submit_sm responses by link and command_status"
})
const receipts = Metric.counter("smsgw_link_receipts_total", { description: "Delivery receipts by link and state" })
const inboundParts = Metric.counter("smsgw_inbound_parts_received_total", {
  description: "deliver_sm that are not receipts (mobile-originated messages or parts of them), stored, by link"
})
const windowInUse = Metric.gauge("smsgw_link_window_in_use", { description: "submit_sm awaiting a response" })
const linkBound = Metric.gauge("smsgw_link_bound", { description: "1 when the link has a bound session" })
const linkQueued = Metric.gauge("smsgw_link_queued", { description: "Messages waiting on the link" })
const submitLatency = Metric.histogram("smsgw_message_submit_latency_seconds", {
  description: "From accepted to submit_sm_resp, per part",
  boundaries: latencyBoundaries
})
const submitDuration = Metric.histogram("smsgw_link_submit_duration_seconds", {
  description: "A submit_sm's round trip to the SMSC (sent to its response or its timeout), by link",
  boundaries: latencyBoundaries
})
const queueWait = Metric.histogram("smsgw_link_queue_wait_seconds", {
  description: "How long a message waited in its link's queue before its first part was sent, by link",
  boundaries: latencyBoundaries
})
const receiptLatency = Metric.histogram("smsgw_link_receipt_latency_seconds", {
  description: "From a part's submit_sm_resp to its delivery receipt, by link",
  boundaries: Metric.exponentialBoundaries({ start: 0.05, factor: 2, count: 18 })
})
const bindChanges = Metric.counter("smsgw_link_bind_changes_total", {
  description: "A link's session bound or lost, by link and state (many in a short time: the link flaps)"
})
const grpcRequests = Metric.counter("smsgw_grpc_requests_total", { description: "gRPC calls by method and status code" })
const grpcLatency = Metric.histogram("smsgw_grpc_request_duration_seconds", {
  description: "gRPC unary call duration by method",
  boundaries: latencyBoundaries
})
const httpRequests = Metric.counter("smsgw_http_requests_total", { description: "HTTP requests by route and status" })
const httpLatency = Metric.histogram("smsgw_http_request_duration_seconds", {
  description: "HTTP request duration by route",
  boundaries: latencyBoundaries
})
const accepted = Metric.counter("smsgw_messages_accepted_total", { description: "Messages answered 202" })
const pending = Metric.gauge("smsgw_messages_pending", {
  description: "Messages accepted and not yet submitted, cluster-wide (reported by the node running recovery)"
})
const expiredNoReceipt = Metric.counter("smsgw_messages_expired_no_receipt_total", {
  description: "Messages ended expired because no receipt came within validity + grace, by link"
})
const orphansDropped = Metric.counter("smsgw_orphan_receipts_dropped_total", {
  description: "Receipts that found no message, dropped by link and reason (cap: over the per-link cap; ttl: kept too long)"
})
const rateDecisions = Metric.counter("smsgw_ratelimit_decisions_total", {
  description: "Rate-limit decisions by layer (L1 local, L2 shared store) and result"
})
const rateFailOpen = Metric.counter("smsgw_ratelimit_fail_open_total", {
  description: "Decisions taken by this node's share alone because the shared store was unavailable"
})
const rateStoreDown = Metric.counter("smsgw_ratelimit_store_outages_total", { description: "Times the shared store became unreachable" })
const rateStoreLatency = Metric.histogram("smsgw_ratelimit_store_latency_seconds", {
  description: "Round trip of a rate-limit decision to the shared store",
  boundaries: Metric.exponentialBoundaries({ start: 0.0001, factor: 2, count: 14 })
})

/**
 * A series shown at zero before anything happened (read once, it is registered): `rate()` and `increase()` then see
 * the first event, and an alert on a series that does not exist yet cannot stay silent.
 */
export const registerSeries = (metric: Metric.Metric<never, unknown> | Metric.Metric<number, unknown>, context: Context.Context<never>) =>
  void metric.valueUnsafe(context)

/** Each labelled series made once and kept, so an update is a map lookup and an add, not an effect. */
export const labelled = () => {
  const series = new Map<string, Metric.Metric<number, unknown>>()
  return (base: Metric.Metric<number, unknown>, key: string, attributes: Record<string, string>) => {
    let metric = series.get(key)
    if (metric === undefined) {
      metric = Metric.withAttributes(base, attributes)
      series.set(key, metric)
    }
    return metric
  }
}

/**
 * Hot-path metrics updated synchronously: each labelled series is made once and kept, so an update is a map lookup
 * and an add, not an effect.
 */
export class LinkMetrics extends Context.Service<LinkMetrics, {
  readonly response: (linkId: string, commandStatus: number) => void
  readonly receipt: (linkId: string, state: string) => void
  readonly inbound: (linkId: string) => void
  readonly submitLatency: (ms: number) => void
  readonly submitDuration: (linkId: string, seconds: number) => void
  readonly queueWait: (linkId: string, seconds: number) => void
  readonly receiptLatency: (linkId: string, seconds: number) => void
  readonly bindChange: (linkId: string, bound: boolean) => void
  /** A link's series shown at zero from its start. */
  readonly initLink: (linkId: string) => void
  readonly linkGauges: (linkId: string, values: { bound: boolean; windowInUse: number; queued: number }) => void
  readonly accepted: (n: number) => void
  readonly pending: (n: number) => void
  readonly expiredNoReceipt: (linkId: string, n: number) => void
  readonly orphansDropped: (linkId: string, reason: "cap" | "ttl", n: number) => void
}>()("smsgw/observability/LinkMetrics") {
  static readonly layer = Layer.effect(
    LinkMetrics,
    Effect.gen(function*() {
      const context = yield* Effect.context<never>()
      const tagged = labelled()
      for (const metric of [accepted, pending, submitLatency]) registerSeries(metric, context)
      return LinkMetrics.of({
        initLink: (link) => {
          for (const state of ["bound", "unbound"]) registerSeries(tagged(bindChanges, `bc|${link}|${state}`, { link, state }), context)
          for (const reason of ["cap", "ttl"]) {
            registerSeries(tagged(orphansDropped, `o|${link}|${reason}`, { link, reason }), context)
          }
          registerSeries(tagged(expiredNoReceipt, `x|${link}`, { link }), context)
          registerSeries(tagged(submitDuration, `s|${link}`, { link }), context)
          registerSeries(tagged(queueWait, `qw|${link}`, { link }), context)
          registerSeries(tagged(receiptLatency, `rl|${link}`, { link }), context)
          registerSeries(tagged(inboundParts, `in|${link}`, { link }), context)
        },
        response: (link, status) =>
          tagged(submitResponses, `r|${link}|${status}`, { link, status: commandStatusName(status) }).updateUnsafe(
            1,
            context
          ),
        receipt: (link, state) => tagged(receipts, `d|${link}|${state}`, { link, state }).updateUnsafe(1, context),
        inbound: (link) => tagged(inboundParts, `in|${link}`, { link }).updateUnsafe(1, context),
        submitLatency: (ms) => submitLatency.updateUnsafe(ms / 1000, context),
        submitDuration: (link, seconds) => tagged(submitDuration, `s|${link}`, { link }).updateUnsafe(seconds, context),
        queueWait: (link, seconds) => tagged(queueWait, `qw|${link}`, { link }).updateUnsafe(seconds, context),
        receiptLatency: (link, seconds) => tagged(receiptLatency, `rl|${link}`, { link }).updateUnsafe(seconds, context),
        bindChange: (link, bound) => {
          const state = bound ? "bound" : "unbound"
          tagged(bindChanges, `bc|${link}|${state}`, { link, state }).updateUnsafe(1, context)
        },
        linkGauges: (link, values) => {
          tagged(windowInUse, `w|${link}`, { link }).updateUnsafe(values.windowInUse, context)
          tagged(linkBound, `b|${link}`, { link }).updateUnsafe(values.bound ? 1 : 0, context)
          tagged(linkQueued, `q|${link}`, { link }).updateUnsafe(values.queued, context)
        },
        accepted: (n) => accepted.updateUnsafe(n, context),
        pending: (n) => pending.updateUnsafe(n, context),
        expiredNoReceipt: (link, n) => tagged(expiredNoReceipt, `x|${link}`, { link }).updateUnsafe(n, context),
        orphansDropped: (link, reason, n) =>
          tagged(orphansDropped, `o|${link}|${reason}`, { link, reason }).updateUnsafe(n, context)
      })
    })
  )
}

/**
 * HTTP requests by route template and the status sent: a bounded label set (src/http/Server.ts makes the labels);
 * gRPC calls by method (the service's own, a fixed set) and status code.
 */
export class HttpMetrics extends Context.Service<HttpMetrics, {
  readonly request: (route: string, status: number, seconds: number) => void
  readonly grpc: (method: string, code: string, seconds: number) => void
  /** A gRPC method's series shown at zero from the start. */
  readonly initGrpc: (method: string) => void
}>()("smsgw/observability/HttpMetrics") {
  static readonly layer = Layer.effect(
    HttpMetrics,
    Effect.gen(function*() {
      const context = yield* Effect.context<never>()
      const tagged = labelled()
      return HttpMetrics.of({
        request: (route, status, seconds) => {
          tagged(httpRequests, `h|${route}|${status}`, { route, status: String(status) }).updateUnsafe(1, context)
          tagged(httpLatency, `l|${route}`, { route }).updateUnsafe(seconds, context)
        },
        initGrpc: (method) => {
          registerSeries(tagged(grpcRequests, `g|${method}|OK`, { method, code: "OK" }), context)
          registerSeries(tagged(grpcLatency, `gl|${method}`, { method }), context)
        },
        grpc: (method, code, seconds) => {
          tagged(grpcRequests, `g|${method}|${code}`, { method, code }).updateUnsafe(1, context)
          tagged(grpcLatency, `gl|${method}`, { method }).updateUnsafe(seconds, context)
        }
      })
    })
  )
}

/** Rate-limit decisions, fail-open events and store latency. */
export class RateMetrics extends Context.Service<RateMetrics, {
  readonly decision: (layer: "L1" | "L2", result: "allowed" | "rejected" | "unavailable") => void
  readonly failOpen: () => void
  readonly storeDown: () => void
  readonly storeLatency: (seconds: number) => void
}>()("smsgw/observability/RateMetrics") {
  static readonly layer = Layer.effect(
    RateMetrics,
    Effect.gen(function*() {
      const context = yield* Effect.context<never>()
      const tagged = labelled()
      const decision = (layer: string, result: string) =>
        tagged(rateDecisions, `${layer}|${result}`, { layer, result }).updateUnsafe(1, context)
      for (const metric of [rateFailOpen, rateStoreDown, rateStoreLatency]) registerSeries(metric, context)
      return RateMetrics.of({
        decision,
        failOpen: () => rateFailOpen.updateUnsafe(1, context),
        storeDown: () => rateStoreDown.updateUnsafe(1, context),
        storeLatency: (seconds) => rateStoreLatency.updateUnsafe(seconds, context)
      })
    })
  )
}

const poolWeight = Metric.gauge("smsgw_pool_member_weight", { description: "Effective SWRR weight of a pool member" })
const linkRate = Metric.gauge("smsgw_link_current_tps", { description: "A link's current send rate (AIMD)" })
const linkHealth = Metric.gauge("smsgw_link_health", {
  description: "A link's health: 0 unbound, 1 degraded, 2 throttled, 3 bound, -1 disabled"
})
const failovers = Metric.counter("smsgw_link_failovers_total", { description: "Messages moved off a link to another pool member" })
const retries = Metric.counter("smsgw_link_retries_total", { description: "Transient submit failures retried" })
const unknownOutcomes = Metric.counter("smsgw_link_unknown_outcome_resends_total", {
  description: "Parts sent again after a submit whose outcome was unknown (timeout, connection lost)"
})

const recoveredUnknown = Metric.counter("smsgw_recovery_unknown_outcomes_total", {
  description: "Parts a stopped node had handed to the SMSC without storing its answer, by link and action (resend, report)"
})

const healthValue: Record<string, number> = { unbound: 0, degraded: 1, throttled: 2, bound: 3, disabled: -1 }

/** Pools and link health: weights, rates, failovers. */
export class PoolMetrics extends Context.Service<PoolMetrics, {
  readonly member: (poolId: string, linkId: string, weight: number) => void
  readonly link: (linkId: string, values: { readonly currentTps: number; readonly health: string }) => void
  readonly failover: (linkId: string, n: number) => void
  readonly retry: (linkId: string) => void
  readonly unknownOutcome: (linkId: string) => void
  readonly unknownOutcomeRecovered: (linkId: string, action: "resend" | "report") => void
  /** A link's series shown at zero from its start. */
  readonly initLink: (linkId: string) => void
}>()("smsgw/observability/PoolMetrics") {
  static readonly layer = Layer.effect(
    PoolMetrics,
    Effect.gen(function*() {
      const context = yield* Effect.context<never>()
      const tagged = labelled()
      return PoolMetrics.of({
        initLink: (link) => {
          registerSeries(tagged(failovers, `f|${link}`, { link }), context)
          registerSeries(tagged(retries, `t|${link}`, { link }), context)
          registerSeries(tagged(unknownOutcomes, `u|${link}`, { link }), context)
          for (const action of ["resend", "report"]) {
            registerSeries(tagged(recoveredUnknown, `k|${link}|${action}`, { link, action }), context)
          }
        },
        member: (pool, link, weight) => tagged(poolWeight, `w|${pool}|${link}`, { pool, link }).updateUnsafe(weight, context),
        link: (link, values) => {
          tagged(linkRate, `r|${link}`, { link }).updateUnsafe(values.currentTps, context)
          tagged(linkHealth, `h|${link}`, { link }).updateUnsafe(healthValue[values.health] ?? 0, context)
        },
        failover: (link, n) => tagged(failovers, `f|${link}`, { link }).updateUnsafe(n, context),
        retry: (link) => tagged(retries, `t|${link}`, { link }).updateUnsafe(1, context),
        unknownOutcome: (link) => tagged(unknownOutcomes, `u|${link}`, { link }).updateUnsafe(1, context),
        unknownOutcomeRecovered: (link, action) =>
          tagged(recoveredUnknown, `k|${link}|${action}`, { link, action }).updateUnsafe(1, context)
      })
    })
  )
}

const cdrLag = Metric.gauge("smsgw_cdr_export_lag_seconds", {
  description: "How long the longest-waiting final message has waited for its CDR (0: none waiting); set by the exporting node"
})
const cdrRecords = Metric.counter("smsgw_cdr_records_exported_total", { description: "CDR records written (a batch written again counts again)" })
const cdrObjects = Metric.counter("smsgw_cdr_objects_written_total", { description: "CDR objects written to the object store" })
const cdrFailures = Metric.counter("smsgw_cdr_export_failures_total", { description: "CDR export runs that failed (retried next interval)" })
const retentionPurged = Metric.counter("smsgw_retention_rows_purged_total", { description: "Rows removed by retention, by table" })

/** The CDR export and retention: what was written, what waits, what was purged. */
export class CdrMetrics extends Context.Service<CdrMetrics, {
  readonly lag: (seconds: number) => void
  readonly exported: (records: number, objects: number) => void
  readonly failed: () => void
  readonly purged: (table: "messages" | "audit_log", n: number) => void
}>()("smsgw/observability/CdrMetrics") {
  static readonly layer = Layer.effect(
    CdrMetrics,
    Effect.gen(function*() {
      const context = yield* Effect.context<never>()
      const tagged = labelled()
      for (const metric of [cdrLag, cdrRecords, cdrObjects, cdrFailures]) registerSeries(metric, context)
      for (const table of ["messages", "audit_log"]) registerSeries(tagged(retentionPurged, `p|${table}`, { table }), context)
      return CdrMetrics.of({
        lag: (seconds) => cdrLag.updateUnsafe(seconds, context),
        exported: (records, objects) => {
          cdrRecords.updateUnsafe(records, context)
          cdrObjects.updateUnsafe(objects, context)
        },
        failed: () => cdrFailures.updateUnsafe(1, context),
        purged: (table, n) => tagged(retentionPurged, `p|${table}`, { table }).updateUnsafe(n, context)
      })
    })
  )
}

const callbacksDelivered = Metric.counter("smsgw_callbacks_delivered_total", {
  description: "Status callbacks delivered (answered 2xx)"
})
const callbacksFailed = Metric.counter("smsgw_callbacks_failed_total", {
  description: "Status callback attempts that failed, by reason (timeout, refused_address, redirect, http_4xx, http_5xx, network, no_secret), each retried with backoff until its retry window ends"
})
const callbacksDead = Metric.counter("smsgw_callbacks_dead_total", {
  description: "Status callbacks given up on (retry window over, or the app deleted): dead letters, replayable through the API"
})
const callbacksDue = Metric.gauge("smsgw_callbacks_due", {
  description: "Status callbacks due now and not yet taken (the outbox's backlog); set by the delivering node"
})
const callbacksDueAge = Metric.gauge("smsgw_callbacks_due_age_seconds", {
  description: "How long the longest-waiting due status callback has been due (0: none); set by the delivering node"
})
const callbacksDuration = Metric.histogram("smsgw_callbacks_post_duration_seconds", {
  description: "A status callback's POST, from resolving the host to the answer (or the failure)",
  boundaries: latencyBoundaries
})

/** Why a callback attempt failed: a bounded set (never the URL, the app or the status code itself). */
export const callbackFailureReasons = ["timeout", "refused_address", "redirect", "http_4xx", "http_5xx", "network", "no_secret"] as const
export type CallbackFailureReason = typeof callbackFailureReasons[number]

/** Status callbacks: delivered, failed by reason, dead, and the outbox's backlog. */
export class CallbackMetrics extends Context.Service<CallbackMetrics, {
  readonly delivered: () => void
  readonly failed: (reason: CallbackFailureReason) => void
  readonly dead: () => void
  readonly posted: (seconds: number) => void
  readonly backlog: (due: number, ageSeconds: number) => void
}>()("smsgw/observability/CallbackMetrics") {
  static readonly layer = Layer.effect(
    CallbackMetrics,
    Effect.gen(function*() {
      const context = yield* Effect.context<never>()
      const tagged = labelled()
      for (const metric of [callbacksDelivered, callbacksDead, callbacksDue, callbacksDueAge, callbacksDuration]) {
        registerSeries(metric, context)
      }
      for (const reason of callbackFailureReasons) registerSeries(tagged(callbacksFailed, reason, { reason }), context)
      return CallbackMetrics.of({
        delivered: () => callbacksDelivered.updateUnsafe(1, context),
        failed: (reason) => tagged(callbacksFailed, reason, { reason }).updateUnsafe(1, context),
        dead: () => callbacksDead.updateUnsafe(1, context),
        posted: (seconds) => callbacksDuration.updateUnsafe(seconds, context),
        backlog: (due, ageSeconds) => {
          callbacksDue.updateUnsafe(due, context)
          callbacksDueAge.updateUnsafe(ageSeconds, context)
        }
      })
    })
  )
}

/** What became of an inbound message: routed to an app, unrouted (no route, or its app gone), and the opt actions. */
export const inboundOutcomes = ["routed", "unrouted", "opt_out", "opt_in"] as const
export type InboundOutcome = typeof inboundOutcomes[number]

const inboundMessages = Metric.counter("smsgw_inbound_messages_total", {
  description: "Inbound (mobile-originated) messages processed, by outcome; opt_out/opt_in count the lists changed"
})
const inboundWaiting = Metric.gauge("smsgw_inbound_waiting", {
  description: "Stored inbound parts not processed yet (incomplete concatenations included)"
})
const inboundWaitingAge = Metric.gauge("smsgw_inbound_waiting_age_seconds", {
  description: "Age of the oldest stored inbound part not processed yet"
})

export class InboundMetrics extends Context.Service<InboundMetrics, {
  readonly processed: (outcome: InboundOutcome, n?: number) => void
  readonly waiting: (n: number, ageSeconds: number) => void
}>()("smsgw/observability/InboundMetrics") {
  static readonly layer = Layer.effect(
    InboundMetrics,
    Effect.gen(function*() {
      const context = yield* Effect.context<never>()
      const tagged = labelled()
      for (const metric of [inboundWaiting, inboundWaitingAge]) registerSeries(metric, context)
      for (const outcome of inboundOutcomes) registerSeries(tagged(inboundMessages, outcome, { outcome }), context)
      return InboundMetrics.of({
        processed: (outcome, n = 1) => tagged(inboundMessages, outcome, { outcome }).updateUnsafe(n, context),
        waiting: (n, ageSeconds) => {
          inboundWaiting.updateUnsafe(n, context)
          inboundWaitingAge.updateUnsafe(ageSeconds, context)
        }
      })
    })
  )
}

const smppServerBinds = Metric.gauge("smsgw_smpp_server_binds", {
  description: "ESME binds open on this node's SMPP server front, by mode (transmitter, receiver, transceiver)"
})
const smppServerBindsRefused = Metric.counter("smsgw_smpp_server_binds_refused_total", {
  description: "Binds (and connections) the SMPP server front refused, by reason (credentials, throttled, address, app_disabled, per_app_limit, max_connections, bind_timeout, unavailable)"
})
const smppServerPdus = Metric.counter("smsgw_smpp_server_pdus_total", {
  description: "PDUs the SMPP server front read and answered, by command and the command_status answered (or, for a response, received)"
})
const smppServerDeliveries = Metric.counter("smsgw_smpp_server_deliveries_total", {
  description: "deliver_sm (receipts and inbound messages) sent to ESMEs, by outcome (delivered, failed, dead)"
})

/** Why the SMPP front refused a bind or a connection: a bounded set (never the system_id). */
export const smppBindRefusals = [
  "credentials",
  "throttled",
  "address",
  "app_disabled",
  "per_app_limit",
  "max_connections",
  "bind_timeout",
  "unavailable"
] as const
export type SmppBindRefusal = typeof smppBindRefusals[number]

/** The commands a PDU label may name; anything else is `other`. */
const smppCommands: ReadonlySet<string> = new Set([
  "bind_transmitter",
  "bind_receiver",
  "bind_transceiver",
  "submit_sm",
  "deliver_sm",
  "deliver_sm_resp",
  "enquire_link",
  "unbind",
  "generic_nack",
  "unknown",
  "invalid"
])

/** The SMPP server front: binds open, binds refused by reason, PDUs by command and status, deliveries by outcome. */
export class SmppServerMetrics extends Context.Service<SmppServerMetrics, {
  readonly binds: (mode: "transmitter" | "receiver" | "transceiver", open: number) => void
  readonly refused: (reason: SmppBindRefusal) => void
  readonly pdu: (command: string, status: number) => void
  readonly delivery: (outcome: "delivered" | "failed" | "dead") => void
}>()("smsgw/observability/SmppServerMetrics") {
  static readonly layer = Layer.effect(
    SmppServerMetrics,
    Effect.gen(function*() {
      const context = yield* Effect.context<never>()
      const tagged = labelled()
      for (const mode of ["transmitter", "receiver", "transceiver"]) registerSeries(tagged(smppServerBinds, `b|${mode}`, { mode }), context)
      for (const reason of smppBindRefusals) registerSeries(tagged(smppServerBindsRefused, `r|${reason}`, { reason }), context)
      for (const outcome of ["delivered", "failed", "dead"]) registerSeries(tagged(smppServerDeliveries, `d|${outcome}`, { outcome }), context)
      return SmppServerMetrics.of({
        binds: (mode, open) => tagged(smppServerBinds, `b|${mode}`, { mode }).updateUnsafe(open, context),
        refused: (reason) => tagged(smppServerBindsRefused, `r|${reason}`, { reason }).updateUnsafe(1, context),
        pdu: (command, status) => {
          const name = smppCommands.has(command) ? command : "other"
          // Statuses outside the table (an ESME's own codes in deliver_sm_resp) share one series.
          const code = commandStatusName(status)
          const label = code.startsWith("0x") ? "other" : code
          tagged(smppServerPdus, `p|${name}|${label}`, { command: name, status: label }).updateUnsafe(1, context)
        },
        delivery: (outcome) => tagged(smppServerDeliveries, `d|${outcome}`, { outcome }).updateUnsafe(1, context)
      })
    })
  )
}
