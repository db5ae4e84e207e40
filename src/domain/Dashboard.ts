/**
 * The live figures as clients see them: an organisation's dashboard (rates, the recent window, the last hour per
 * minute, and for operators each link and pool), and a campaign's health (the links and pools its messages use).
 * One home for both the pipeline that computes them and the API that sends them.
 */
import { Schema } from "effect"
import { CampaignState } from "./Campaign.ts"

/** How far back the window figures (totals, delivery rate, time to receipt, errors, refusals) look. */
export const windowMinutes = 15

/** The time series' span. */
export const seriesMinutes = 60

/** Seconds the rates average over: the last complete ones (every node writes its counts once a second). */
export const rateSeconds = 5

export const Rates = Schema.Struct({
  accepted: Schema.Finite,
  submitted: Schema.Finite,
  delivered: Schema.Finite,
  refused: Schema.Finite
}).annotate({ description: `Messages per second, cluster-wide, averaged over the last ${rateSeconds} complete seconds` })
export type Rates = typeof Rates.Type

export const Totals = Schema.Struct({
  accepted: Schema.Int,
  submitted: Schema.Int,
  delivered: Schema.Int,
  undelivered: Schema.Int,
  expired: Schema.Int,
  failed: Schema.Int,
  refused: Schema.Int
})
export type Totals = typeof Totals.Type

export const ReceiptTimes = Schema.Struct({
  count: Schema.Int,
  p50Ms: Schema.optionalKey(Schema.Finite),
  p95Ms: Schema.optionalKey(Schema.Finite)
}).annotate({
  description: "Time from acceptance to the (last part's) delivery receipt of the messages delivered in the window; " +
    "percentiles within 9 % (counted in buckets, 4 per doubling)"
})
export type ReceiptTimes = typeof ReceiptTimes.Type

export const ErrorKind = Schema.Literals(["failed", "retried", "undelivered", "expired"])

export const ErrorCount = Schema.Struct({
  kind: ErrorKind.annotate({
    description: "failed: the SMSC refused it for good (or retries ran out); retried: a transient answer (or none), sent " +
      "again; undelivered / expired: what the receipt said, or no receipt in time"
  }),
  status: Schema.String.annotate({ description: "The SMPP command status (ESME_RTHROTTLED), the receipt's error (err 001), or what happened (SubmitTimeout, no receipt)" }),
  count: Schema.Int
})
export type ErrorCount = typeof ErrorCount.Type

export const RefusalCount = Schema.Struct({
  reason: Schema.String.annotate({ description: "blacklisted, frequency_cap, duplicate, quiet_hours, rate_limited (<limit>), no_route" }),
  ruleId: Schema.optionalKey(Schema.String.annotate({ description: "The contact-policy rule that decided" })),
  count: Schema.Int
})
export type RefusalCount = typeof RefusalCount.Type

export const WindowFigures = Schema.Struct({
  minutes: Schema.Int,
  totals: Totals,
  deliveryRate: Schema.optionalKey(Schema.Finite.annotate({
    description: "delivered / messages that reached a final status in the window (delivered, undelivered, expired, failed), 0..1"
  })),
  receipt: ReceiptTimes,
  errors: Schema.Array(ErrorCount),
  refusals: Schema.Array(RefusalCount)
})
export type WindowFigures = typeof WindowFigures.Type

export const SeriesPoint = Schema.Struct({
  at: Schema.String.annotate({ description: "The minute's start (ISO)" }),
  accepted: Schema.Int,
  submitted: Schema.Int,
  delivered: Schema.Int,
  failed: Schema.Int.annotate({ description: "undelivered + expired + failed" }),
  refused: Schema.Int,
  receiptP50Ms: Schema.optionalKey(Schema.Finite),
  receiptP95Ms: Schema.optionalKey(Schema.Finite)
})
export type SeriesPoint = typeof SeriesPoint.Type

export const LinkState = Schema.Literals(["bound", "unbound", "degraded", "throttled", "disabled", "unknown"]).annotate({
  description: "The link's health; unknown: its actor did not answer in time"
})
export type LinkState = typeof LinkState.Type

/** A link's own figures over the window. */
export const LinkFigures = Schema.Struct({
  rates: Schema.Struct({ submitted: Schema.Finite, delivered: Schema.Finite }),
  totals: Schema.Struct({
    submitted: Schema.Int,
    delivered: Schema.Int,
    undelivered: Schema.Int,
    expired: Schema.Int,
    failed: Schema.Int
  }),
  receipt: ReceiptTimes,
  errors: Schema.Array(ErrorCount)
})
export type LinkFigures = typeof LinkFigures.Type

export const OperatorLink = Schema.Struct({
  linkId: Schema.String,
  enabled: Schema.Boolean,
  state: LinkState,
  bound: Schema.Boolean,
  window: Schema.Int,
  windowInUse: Schema.Int,
  queued: Schema.Int.annotate({ description: "Messages waiting on the link" }),
  tps: Schema.Finite.annotate({ description: "Configured rate" }),
  currentTps: Schema.Finite.annotate({ description: "The rate allowed now (lowered after throttling answers, recovering)" }),
  throttled: Schema.Boolean,
  lastError: Schema.optionalKey(Schema.String),
  figures: LinkFigures
})
export type OperatorLink = typeof OperatorLink.Type

export const PoolMemberHealth = Schema.Struct({
  linkId: Schema.String,
  state: LinkState,
  configuredWeight: Schema.Finite,
  effectiveWeight: Schema.Finite,
  currentTps: Schema.Finite
})

export const OperatorPool = Schema.Struct({
  poolId: Schema.String,
  members: Schema.Array(PoolMemberHealth)
})
export type OperatorPool = typeof OperatorPool.Type

export const OperatorView = Schema.Struct({
  links: Schema.Array(OperatorLink),
  pools: Schema.Array(OperatorPool)
}).annotate({ description: "Every link and pool of the gateway (superadmins only)" })
export type OperatorView = typeof OperatorView.Type

export const DashboardView = Schema.Struct({
  orgId: Schema.String,
  at: Schema.String,
  rates: Rates,
  window: WindowFigures,
  series: Schema.Array(SeriesPoint).annotate({
    description: `Per minute, oldest first: the last ${seriesMinutes} minutes in a snapshot, the last 2 in a stream's event (replace the points with the same \`at\`)`
  }),
  operator: Schema.optionalKey(OperatorView)
}).annotate({
  description: "Example: {\"orgId\":\"org_…\",\"at\":\"2026-12-03T10:00:01Z\",\"rates\":{\"accepted\":120,\"submitted\":118,\"delivered\":110,\"refused\":2}," +
    "\"window\":{\"minutes\":15,\"totals\":{\"accepted\":104000,…},\"deliveryRate\":0.97,\"receipt\":{\"count\":98000,\"p50Ms\":2100,\"p95Ms\":6300}," +
    "\"errors\":[{\"kind\":\"retried\",\"status\":\"ESME_RTHROTTLED\",\"count\":40}],\"refusals\":[{\"reason\":\"blacklisted\",\"ruleId\":\"dnc\",\"count\":12}]},\"series\":[…]}"
})
export type DashboardView = typeof DashboardView.Type

export const CampaignLink = Schema.Struct({
  linkId: Schema.String,
  state: LinkState,
  throttled: Schema.Boolean.annotate({ description: "The link sends below its configured rate after throttling answers" }),
  figures: LinkFigures.annotate({ description: "The campaign's own messages on this link" })
})
export type CampaignLink = typeof CampaignLink.Type

export const CampaignPool = Schema.Struct({
  poolId: Schema.String,
  members: Schema.Array(Schema.Struct({
    linkId: Schema.String,
    state: LinkState,
    effectiveWeight: Schema.Finite,
    configuredWeight: Schema.Finite,
    submitted: Schema.Int.annotate({ description: "The campaign's messages this member submitted in the window" })
  }))
})
export type CampaignPool = typeof CampaignPool.Type

export const CampaignHealthView = Schema.Struct({
  campaignId: Schema.String,
  at: Schema.String,
  state: CampaignState,
  throttle: Schema.Int.annotate({ description: "The campaign's own limit, messages per second" }),
  rates: Rates,
  window: WindowFigures,
  links: Schema.Array(CampaignLink).annotate({ description: `Links that took the campaign's messages in the last ${seriesMinutes} minutes` }),
  pools: Schema.Array(CampaignPool).annotate({ description: `Pools the campaign's messages were routed to in the last ${seriesMinutes} minutes` })
}).annotate({
  description: "Example: {\"campaignId\":\"cmp_…\",\"state\":\"running\",\"throttle\":50,\"rates\":{\"submitted\":31,…}," +
    "\"links\":[{\"linkId\":\"carrier-a\",\"state\":\"throttled\",\"throttled\":true,\"figures\":{\"rates\":{\"submitted\":31,\"delivered\":29}," +
    "\"errors\":[{\"kind\":\"retried\",\"status\":\"ESME_RTHROTTLED\",\"count\":220}],…}}],\"pools\":[…]}"
})
export type CampaignHealthView = typeof CampaignHealthView.Type
