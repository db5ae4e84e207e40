/**
 * What a campaign will do, before it does it. `preview` renders the audience's messages and counts their parts by
 * encoding; `dryRun` takes the audience through the live routing and contact policy and the campaign's send window,
 * sending nothing and counting nothing, and estimates when it would finish.
 *
 * Invariants:
 * - Encoding and parts come from the functions `Gateway.submit` uses (chooseEncoding, countSegments with the route's
 *   UDH reference size), so preview, dry run and sending agree.
 * - Side-effect free: the policy is only screened (ContactPolicy.screen: blacklists and quiet hours decided,
 *   frequency caps and dedup only named, since they depend on the recipients' counters at the moment of sending),
 *   the rate limiter is never asked, nothing is stored, no metric moves.
 * - Bounded memory: the audience is streamed page by page (storage/Audience.ts); what is kept is counters per rule
 *   and route and the first N messages.
 */
import { Context, Effect, Layer, Result, Stream } from "effect"
import type { AppLimits } from "../domain/Account.ts"
import type { Campaign } from "../domain/Campaign.ts"
import type {
  CampaignPreview,
  Deferral,
  DryRun,
  PreviewMessage,
  RouteLoad,
  RuleCount,
  SendTimeRule,
  Unsendable
} from "../domain/CampaignInsight.ts"
import { InvalidField, StoreUnavailable } from "../domain/Errors.ts"
import type { RequestedEncoding } from "../domain/Message.ts"
import type { MessageClass } from "../domain/Policy.ts"
import type { Template } from "../domain/Template.ts"
import { missingVariable, parseTemplate, renderTemplate } from "../domain/Template.ts"
import { AccountStore } from "../auth/AccountStore.ts"
import { PolicyClock } from "../policy/PolicyClock.ts"
import { PolicyConfig } from "../policy/PolicyConfig.ts"
import type { Route } from "../routing/Router.ts"
import { Router } from "../routing/Router.ts"
import { targetKey } from "../routing/Target.ts"
import { chooseEncoding, countSegments, MAX_PARTS } from "../smpp/Encoding.ts"
import type { AudienceContact } from "../storage/Audience.ts"
import { Audience } from "../storage/Audience.ts"
import { instantOf, pace, partsCounter, windowOpening } from "./CampaignEstimate.ts"
import { ContactPolicy } from "./ContactPolicy.ts"

/** What a preview needs: a saved campaign's fields, or an unsaved one's from the editor. */
export interface PreviewInput {
  readonly orgId: string
  /** The sending app (routing rules may name it); absent in an editor that has not chosen one. */
  readonly appId: string | undefined
  readonly sender: string
  readonly template: string
  readonly lists: ReadonlyArray<string>
  readonly encoding: RequestedEncoding
  readonly messageClass: MessageClass
}

/** The rate limits as the limiter applies them to an app (layers/RateLimits.ts gives the same values). */
export interface InsightLimits {
  readonly defaultApp: AppLimits
  readonly organisation: AppLimits
  readonly organisations: Readonly<Record<string, AppLimits>>
}

export const maxPreviewMessages = 100

export class CampaignInsight extends Context.Service<CampaignInsight, {
  /** The first `n` messages rendered (at most 100), and the parts of the whole audience by encoding. */
  readonly preview: (input: PreviewInput, n: number) => Effect.Effect<CampaignPreview, InvalidField | StoreUnavailable>
  /** The audience through the live routing and policy with nothing sent or counted, and the estimated finish. */
  readonly dryRun: (campaign: Campaign) => Effect.Effect<DryRun, InvalidField | StoreUnavailable>
}>()("smsgw/pipeline/CampaignInsight") {
  static readonly layer = (limits: InsightLimits) => Layer.effect(CampaignInsight, make(limits))
}

/** One recipient's message as sending would make it, or why it cannot be made. */
type Rendered =
  | {
    readonly _tag: "Message"
    readonly text: string
    readonly encoding: "gsm7" | "ucs2"
    readonly segments: number
    readonly route: Result.Result<Route, { readonly message: string }>
  }
  | { readonly _tag: "Unsendable"; readonly why: keyof Unsendable; readonly text: string; readonly problem: string }

/** What an unsendable text would be in "auto" (shown beside its problem, never counted). */
const shown = (text: string) => ({
  encoding: Result.getOrElse(chooseEncoding(text, "auto"), () => "ucs2" as const),
  segments: countSegments(text, "auto")
})

const iso = (ms: number) => new Date(ms).toISOString()

const increment = <K>(map: Map<K, number>, key: K) => map.set(key, (map.get(key) ?? 0) + 1)

const make = (limits: InsightLimits) =>
  Effect.gen(function*() {
    const audience = yield* Audience
    const router = yield* Router
    const policy = yield* ContactPolicy
    const policies = yield* PolicyConfig
    const accounts = yield* AccountStore
    const clock = yield* PolicyClock

    const templateOf = (source: string): Effect.Effect<Template, InvalidField> => {
      const parsed = parseTemplate(source)
      return "error" in parsed
        ? Effect.fail(new InvalidField({ field: "template", message: `${parsed.error.message} (at ${parsed.error.index})` }))
        : Effect.succeed(parsed.template)
    }

    /** The same steps as Gateway.submit's validate and decide, up to the route and the parts. */
    const render = (
      template: Template,
      input: Omit<PreviewInput, "template" | "lists">,
      contact: AudienceContact
    ): Effect.Effect<Rendered> =>
      Effect.gen(function*() {
        const missing = missingVariable(template, contact.vars)
        const text = renderTemplate(template, contact.vars)
        if (missing !== undefined) {
          return { _tag: "Unsendable", why: "missingVariable", text, problem: `the contact has no "${missing}"` } as const
        }
        const chosen = chooseEncoding(text, input.encoding)
        if (Result.isFailure(chosen)) {
          return {
            _tag: "Unsendable",
            why: "notRepresentable",
            text,
            problem: `character ${JSON.stringify(chosen.failure.character)} is not in GSM 03.38`
          } as const
        }
        const route = yield* router.route({
          to: contact.msisdn,
          appId: input.appId ?? null,
          orgId: input.orgId,
          sender: input.sender,
          messageClass: input.messageClass
        }).pipe(Effect.result)
        const segments = countSegments(text, chosen.success, Result.isSuccess(route) ? route.success.referenceBits : 8)
        if (segments > MAX_PARTS) {
          return { _tag: "Unsendable", why: "tooLong", text, problem: `needs ${segments} parts; at most ${MAX_PARTS}` } as const
        }
        return { _tag: "Message", text, encoding: chosen.success, segments, route } as const
      })

    const unsendableCounter = () => {
      const counts = { missingVariable: 0, notRepresentable: 0, tooLong: 0 }
      return { add: (why: keyof Unsendable) => counts[why]++, summary: (): Unsendable => ({ ...counts }) }
    }

    /** The campaign's app, in its organisation: another organisation's app is as unknown as a missing one. */
    const appOf = (orgId: string, appId: string) =>
      accounts.getApp(orgId, appId).pipe(
        Effect.catchTags({
          NotFound: () => Effect.fail(new InvalidField({ field: "appId", message: `no app ${appId} in this organisation` })),
          StoreFailure: (e) => Effect.fail(new StoreUnavailable({ message: e.message, ...(e.cause !== undefined ? { cause: e.cause } : {}) }))
        })
      )

    const preview = Effect.fn("CampaignInsight.preview")(function*(input: PreviewInput, n: number) {
      const template = yield* templateOf(input.template)
      if (input.appId !== undefined) yield* appOf(input.orgId, input.appId)
      const { missing } = yield* audience.resolve(input.orgId, input.lists)
      const wanted = Math.max(0, Math.min(maxPreviewMessages, n))
      const first: Array<PreviewMessage> = []
      const parts = partsCounter()
      const unsendable = unsendableCounter()
      let recipients = 0
      yield* Stream.runForEachArray(audience.contacts(input.orgId, input.lists), (contacts) =>
        Effect.forEach(contacts, (contact) =>
          Effect.map(render(template, input, contact), (rendered) => {
            recipients++
            if (rendered._tag === "Message") parts.add(rendered.encoding, rendered.segments)
            else unsendable.add(rendered.why)
            if (first.length < wanted) {
              first.push({
                to: `+${contact.msisdn}`,
                listId: contact.listId,
                pos: contact.pos,
                text: rendered.text,
                ...(rendered._tag === "Message"
                  ? { encoding: rendered.encoding, segments: rendered.segments }
                  : { ...shown(rendered.text), problem: rendered.problem })
              })
            }
          }), { discard: true }))
      return {
        recipients,
        messages: first,
        totals: parts.summary(),
        unsendable: unsendable.summary(),
        missingLists: missing
      } satisfies CampaignPreview
    })

    /** The time zone a recipient's send window is read in: the country's zone as the quiet-hours rules name it. */
    const windowZones = () => {
      const zones = new Map<string, string>()
      for (const rule of policies.current().document.rules) {
        if (rule.type !== "quiet_hours") continue
        for (const [country, zone] of Object.entries(rule.countries)) if (!zones.has(country)) zones.set(country, zone)
      }
      return zones
    }

    const dryRun = Effect.fn("CampaignInsight.dryRun")(function*(campaign: Campaign) {
      const template = yield* templateOf(campaign.template)
      const app = yield* appOf(campaign.orgId, campaign.appId)
      const { missing } = yield* audience.resolve(campaign.orgId, campaign.lists)
      const now = clock.now()
      const startTime = campaign.startAt === undefined ? undefined : instantOf(campaign.startAt.at, campaign.startAt.timeZone)
      const at = Math.max(now, startTime ?? now)
      const zones = windowZones()
      const fallbackZone = campaign.startAt?.timeZone ?? "UTC"
      const input = { ...campaign, orgId: campaign.orgId, appId: campaign.appId }

      const parts = partsCounter()
      const unsendable = unsendableCounter()
      const excluded = new Map<string, number>()
      const deferred = new Map<string, { reason: Deferral["reason"]; recipients: number; first: number; last: number }>()
      const noRoute = new Map<string, number>()
      const stateful = new Map<string, { kind: SendTimeRule["kind"]; recipients: number }>()
      const routes = new Map<string, { messages: number; segments: number; capacityTps: number }>()
      let recipients = 0
      let toSend = 0
      let deferredTotal = 0
      let lastOpening = at
      let lastDeferral = ""

      const consider = (contact: AudienceContact, rendered: Rendered) => {
        recipients++
        if (rendered._tag === "Unsendable") return unsendable.add(rendered.why)
        if (Result.isFailure(rendered.route)) return increment(noRoute, rendered.route.failure.message)
        const route = rendered.route.success
        const subject = {
          orgId: campaign.orgId,
          appId: campaign.appId,
          messageClass: campaign.messageClass,
          to: contact.msisdn,
          country: contact.country,
          from: campaign.sender,
          text: rendered.text
        }
        // Deferred by the window, then perhaps by quiet hours at its opening, and so on: a few rounds settle it.
        let t = at
        let deferral: { readonly ruleId: string; readonly reason: Deferral["reason"] } | undefined
        let checks: ReadonlyArray<{ readonly kind: "cap" | "dedup"; readonly ruleId: string }> = []
        for (let round = 0; round < 4; round++) {
          if (campaign.sendWindow !== undefined) {
            const zone = (contact.country !== undefined ? zones.get(contact.country) : undefined) ?? fallbackZone
            const opens = windowOpening(campaign.sendWindow, zone, t)
            if (opens > t) {
              deferral ??= { ruleId: "send_window", reason: "send_window" }
              t = opens
            }
          }
          const screen = policy.screen(subject, t)
          if (screen._tag === "Checks") {
            checks = screen.checks
            break
          }
          if (screen.reason === "quiet_hours") {
            deferral ??= { ruleId: screen.ruleId, reason: "quiet_hours" }
            t = Math.max(t + 60_000, screen.retryAt ?? 0)
            continue
          }
          return increment(excluded, `${screen.ruleId}\u0000${screen.reason}`)
        }
        if (deferral !== undefined) {
          const d = deferred.get(deferral.ruleId) ?? { reason: deferral.reason, recipients: 0, first: t, last: t }
          d.recipients++
          d.first = Math.min(d.first, t)
          d.last = Math.max(d.last, t)
          deferred.set(deferral.ruleId, d)
          deferredTotal++
          if (t >= lastOpening) {
            lastOpening = t
            lastDeferral = deferral.ruleId
          }
        }
        for (const check of checks) {
          const s = stateful.get(check.ruleId) ?? { kind: check.kind === "cap" ? "frequency_cap" : "dedup", recipients: 0 }
          s.recipients++
          stateful.set(check.ruleId, s)
        }
        toSend++
        parts.add(rendered.encoding, rendered.segments)
        const key = targetKey(route.target)
        const load = routes.get(key) ?? { messages: 0, segments: 0, capacityTps: route.capacityTps }
        load.messages++
        load.segments += rendered.segments
        routes.set(key, load)
      }

      yield* Stream.runForEachArray(audience.contacts(campaign.orgId, campaign.lists), (contacts) =>
        Effect.forEach(contacts, (contact) => Effect.map(render(template, input, contact), (r) => consider(contact, r)), {
          discard: true
        }))

      const routeLoads = Array.from(routes, ([target, load]): RouteLoad => ({ target, ...load }))
      const paceInput = {
        throttle: campaign.throttle,
        app: Object.keys(app.limits).length > 0 ? app.limits : limits.defaultApp,
        organisation: limits.organisations[campaign.orgId] ?? limits.organisation
      }
      const whole = pace({ ...paceInput, messages: toSend, routes: routeLoads })
      // The recipients deferred to the last opening may all go then: the campaign ends no earlier than they take.
      const share = toSend === 0 ? 0 : deferredTotal / toSend
      const tail = pace({
        ...paceInput,
        messages: deferredTotal,
        routes: routeLoads.map((r) => ({ ...r, segments: Math.round(r.segments * share) }))
      })
      const finishWhole = at + whole.seconds * 1000
      const finishTail = lastOpening + tail.seconds * 1000
      const byWindow = deferredTotal > 0 && finishTail > finishWhole
      const finish = byWindow ? finishTail : finishWhole

      return {
        campaignId: campaign.id,
        evaluatedAt: iso(at),
        policyVersion: policy.version(),
        recipients,
        toSend,
        excluded: {
          total: Array.from(excluded.values()).reduce((a, b) => a + b, 0),
          byRule: Array.from(excluded, ([key, n]): RuleCount => {
            const [ruleId = "", reason = ""] = key.split("\u0000")
            return { ruleId, reason, recipients: n }
          })
        },
        deferred: {
          total: deferredTotal,
          byRule: Array.from(deferred, ([ruleId, d]): Deferral => ({
            ruleId,
            reason: d.reason,
            recipients: d.recipients,
            firstUntil: iso(d.first),
            lastUntil: iso(d.last)
          }))
        },
        noRoute: {
          total: Array.from(noRoute.values()).reduce((a, b) => a + b, 0),
          byReason: Array.from(noRoute, ([reason, n]) => ({ reason, recipients: n }))
        },
        unsendable: unsendable.summary(),
        decidedAtSendTime: Array.from(stateful, ([ruleId, s]): SendTimeRule => ({ ruleId, kind: s.kind, recipients: s.recipients })),
        parts: parts.summary(),
        routes: routeLoads,
        estimate: {
          startAt: iso(at),
          finishAt: iso(finish),
          durationSeconds: Math.round((finish - at) / 10) / 100,
          bottleneck: byWindow ? `deferred until ${iso(lastOpening)} (${lastDeferral})` : whole.bottleneck,
          limits: whole.limits
        },
        missingLists: missing
      } satisfies DryRun
    })

    return CampaignInsight.of({ preview, dryRun })
  })
