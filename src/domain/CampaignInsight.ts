/**
 * What a campaign will do before it does it: the preview (rendered messages, parts and their encoding split) and the
 * dry run (the audience through the live policy and routing: exclusions, deferrals, unroutable recipients, the parts
 * each route carries and the estimated finish). One schema each, for the service and the REST answers.
 */
import { Schema } from "effect"

const Count = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))
const Iso = Schema.String.annotate({ description: "ISO 8601 instant (UTC)" })

/** Messages and the parts (SMPP segments) they take. */
export const PartsTally = Schema.Struct({ messages: Count, segments: Count })
export type PartsTally = typeof PartsTally.Type

/** What the messages cost in parts, split by the encoding each one takes. */
export const PartsSummary = Schema.Struct({
  messages: Count,
  segments: Count.annotate({ description: "SMPP parts: what the campaign costs" }),
  gsm7: PartsTally,
  ucs2: PartsTally
})
export type PartsSummary = typeof PartsSummary.Type

/** Recipients whose message cannot be made, by why. */
export const Unsendable = Schema.Struct({
  missingVariable: Count.annotate({ description: "A variable without default that the contact lacks" }),
  notRepresentable: Count.annotate({ description: "Encoding gsm7 was forced and the text has a character outside GSM 03.38" }),
  tooLong: Count.annotate({ description: "More than 255 parts" })
})
export type Unsendable = typeof Unsendable.Type

export const PreviewMessage = Schema.Struct({
  to: Schema.String.annotate({ description: "E.164 with +" }),
  listId: Schema.String,
  pos: Schema.Int,
  text: Schema.String,
  encoding: Schema.Literals(["gsm7", "ucs2"]),
  segments: Count,
  problem: Schema.optionalKey(Schema.String.annotate({
    description: "Why this message cannot be sent: it is not counted, and its encoding and parts are what \"auto\" would make"
  }))
})
export type PreviewMessage = typeof PreviewMessage.Type

export const CampaignPreview = Schema.Struct({
  recipients: Count.annotate({ description: "Distinct numbers of the audience" }),
  messages: Schema.Array(PreviewMessage).annotate({ description: "The first N messages, in audience order" }),
  totals: PartsSummary.annotate({ description: "Every sendable message of the audience" }),
  unsendable: Unsendable,
  missingLists: Schema.Array(Schema.String).annotate({ description: "Lists named that your organisation does not have" })
}).annotate({
  examples: [{
    recipients: 3,
    messages: [
      { to: "+4915112345678", listId: "lst_1", pos: 1, text: "Hi Anna, 20% off today", encoding: "gsm7", segments: 1 },
      { to: "+48601234567", listId: "lst_1", pos: 2, text: "Hi Łukasz, 20% off today", encoding: "ucs2", segments: 1 }
    ],
    totals: { messages: 3, segments: 3, gsm7: { messages: 2, segments: 2 }, ucs2: { messages: 1, segments: 1 } },
    unsendable: { missingVariable: 0, notRepresentable: 0, tooLong: 0 },
    missingLists: []
  }]
})
export type CampaignPreview = typeof CampaignPreview.Type

export const RuleCount = Schema.Struct({ ruleId: Schema.String, reason: Schema.String, recipients: Count })
export type RuleCount = typeof RuleCount.Type

export const Deferral = Schema.Struct({
  ruleId: Schema.String.annotate({ description: "The quiet-hours rule, or \"send_window\" for the campaign's own window" }),
  reason: Schema.Literals(["quiet_hours", "send_window"]),
  recipients: Count,
  firstUntil: Iso.annotate({ description: "The earliest time one of them may be sent" }),
  lastUntil: Iso.annotate({ description: "The latest" })
})
export type Deferral = typeof Deferral.Type

export const RouteLoad = Schema.Struct({
  target: Schema.String.annotate({ description: "A link id, or pool:<id>" }),
  messages: Count,
  segments: Count,
  capacityTps: Schema.Number.annotate({ description: "Parts per second the link or pool sends (shared with other traffic)" })
})
export type RouteLoad = typeof RouteLoad.Type

/** A limit and how long it alone would take to send the campaign. */
export const LimitTime = Schema.Struct({
  name: Schema.String,
  detail: Schema.String,
  seconds: Schema.optionalKey(Schema.Number.annotate({ description: "Absent: this limit sends nothing (a pool with no enabled link)" }))
})
export type LimitTime = typeof LimitTime.Type

export const Estimate = Schema.Struct({
  startAt: Iso,
  finishAt: Schema.optionalKey(Iso.annotate({ description: "Absent when a route has no capacity (see bottleneck)" })),
  durationSeconds: Schema.optionalKey(Schema.Number),
  bottleneck: Schema.String.annotate({ description: "The limit that sets the pace (or the send window's last opening)" }),
  limits: Schema.Array(LimitTime)
})
export type Estimate = typeof Estimate.Type

export const SendTimeRule = Schema.Struct({
  ruleId: Schema.String,
  kind: Schema.Literals(["frequency_cap", "dedup"]),
  recipients: Count.annotate({ description: "Recipients the rule applies to; how many it refuses is decided at send time" })
})
export type SendTimeRule = typeof SendTimeRule.Type

export const DryRun = Schema.Struct({
  campaignId: Schema.String,
  evaluatedAt: Iso.annotate({ description: "The instant policy and window were evaluated at: the campaign's start, or now" }),
  policyVersion: Schema.Int,
  recipients: Count,
  toSend: Count.annotate({ description: "Recipients that will get a message (deferred ones included)" }),
  excluded: Schema.Struct({ total: Count, byRule: Schema.Array(RuleCount) }),
  deferred: Schema.Struct({ total: Count, byRule: Schema.Array(Deferral) }),
  noRoute: Schema.Struct({ total: Count, byReason: Schema.Array(Schema.Struct({ reason: Schema.String, recipients: Count })) }),
  unsendable: Unsendable,
  decidedAtSendTime: Schema.Array(SendTimeRule).annotate({
    description: "Frequency caps and dedup need the recipients' counters at the moment of sending: not counted here"
  }),
  parts: PartsSummary.annotate({ description: "The messages to send" }),
  routes: Schema.Array(RouteLoad),
  estimate: Estimate,
  missingLists: Schema.Array(Schema.String)
}).annotate({
  examples: [{
    campaignId: "cmp_3f9a1c2d4e5f",
    evaluatedAt: "2026-12-24T08:00:00.000Z",
    policyVersion: 4,
    recipients: 10_000,
    toSend: 9_870,
    excluded: { total: 130, byRule: [{ ruleId: "optout", reason: "blacklisted", recipients: 130 }] },
    deferred: {
      total: 1_200,
      byRule: [{
        ruleId: "send_window",
        reason: "send_window",
        recipients: 1_200,
        firstUntil: "2026-12-24T08:00:00.000Z",
        lastUntil: "2026-12-24T09:00:00.000Z"
      }]
    },
    noRoute: { total: 0, byReason: [] },
    unsendable: { missingVariable: 0, notRepresentable: 0, tooLong: 0 },
    decidedAtSendTime: [{ ruleId: "promo-cap", kind: "frequency_cap", recipients: 9_870 }],
    parts: { messages: 9_870, segments: 10_412, gsm7: { messages: 9_500, segments: 9_500 }, ucs2: { messages: 370, segments: 912 } },
    routes: [{ target: "pool:eu", messages: 9_870, segments: 10_412, capacityTps: 400 }],
    estimate: {
      startAt: "2026-12-24T08:00:00.000Z",
      finishAt: "2026-12-24T08:16:27.000Z",
      durationSeconds: 987,
      bottleneck: "campaign throttle",
      limits: [
        { name: "campaign throttle", detail: "10 messages/s", seconds: 987 },
        { name: "pool:eu", detail: "400 parts/s", seconds: 26.03 }
      ]
    },
    missingLists: []
  }]
})
export type DryRun = typeof DryRun.Type
