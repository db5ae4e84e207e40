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
 * - The send window is read as the runner reads it (policy/SendWindow.ts: the country's zones, the next opening).
 * - Contacts are trusted as the lists' store wrote them (valid numbers, the country their numbering plan gives): the
 *   runner parses each number again before it submits, which would cost ~30 µs a contact here (measured: 4x the whole
 *   dry run) and change nothing.
 */
import { Context, Effect, Layer, Result, Schema, Stream } from "effect"
import type { AppLimits } from "../domain/Account.ts"
import type { Campaign } from "../domain/Campaign.ts"
import type { CampaignPreview, DryRun, PreviewMessage, Unsendable } from "../domain/CampaignInsight.ts"
import { InvalidField, StoreUnavailable } from "../domain/Errors.ts"
import type { RequestedEncoding } from "../domain/Message.ts"
import type { MessageClass } from "../domain/Policy.ts"
import type { Template } from "../domain/Template.ts"
import { missingVariable, parseTemplate, renderTemplate } from "../domain/Template.ts"
import { AccountStore } from "../auth/AccountStore.ts"
import { PolicyClock } from "../policy/PolicyClock.ts"
import { PolicyConfig } from "../policy/PolicyConfig.ts"
import type { PolicySubject } from "../policy/PolicyEngine.ts"
import { countryZones, nextOpening, windowMinutes } from "../policy/SendWindow.ts"
import type { WindowMinutes } from "../policy/SendWindow.ts"
import type { PolicyCheck } from "../policy/RecipientState.ts"
import type { Route } from "../routing/Router.ts"
import { Router } from "../routing/Router.ts"
import { targetKey } from "../routing/Target.ts"
import { chooseEncoding, countSegments, MAX_PARTS } from "../smpp/Encoding.ts"
import type { AudienceContact } from "../storage/Audience.ts"
import { Audience } from "../storage/Audience.ts"
import { CampaignRecipients } from "../storage/CampaignRecipients.ts"
import { dryRunTally, partsCounter } from "./CampaignEstimate.ts"
import type { DeferralCause } from "./CampaignEstimate.ts"
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

/**
 * A preview or dry run of the organisation is already reading its whole audience: each routes and screens every
 * contact (about a second per 100,000), so an organisation runs one at a time and a second is answered at once.
 */
export class InsightBusy extends Schema.TaggedError<InsightBusy>()("InsightBusy", {
  retryAfterSeconds: Schema.Int
}) {}

/**
 * Runs an effect for a key only when no other runs for it; another caller meanwhile fails with `InsightBusy` at once
 * (nothing queues behind a long read). The key is released however the effect ends.
 */
export const onePerKey = () => {
  const running = new Set<string>()
  return <A, E, R>(key: string, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | InsightBusy, R> =>
    Effect.suspend((): Effect.Effect<A, E | InsightBusy, R> => {
      if (running.has(key)) return Effect.fail(new InsightBusy({ retryAfterSeconds: 2 }))
      running.add(key)
      return Effect.ensuring(effect, Effect.sync(() => running.delete(key)))
    })
}

export class CampaignInsight extends Context.Service<CampaignInsight, {
  /** The first `n` messages rendered (at most 100), and the parts of the whole audience by encoding. */
  readonly preview: (input: PreviewInput, n: number) => Effect.Effect<CampaignPreview, InvalidField | StoreUnavailable | InsightBusy>
  /** The audience through the live routing and policy with nothing sent or counted, and the estimated finish. */
  readonly dryRun: (campaign: Campaign) => Effect.Effect<DryRun, InvalidField | StoreUnavailable | InsightBusy>
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

const make = (limits: InsightLimits) =>
  Effect.gen(function*() {
    const audience = yield* Audience
    const router = yield* Router
    const policy = yield* ContactPolicy
    const policies = yield* PolicyConfig
    const accounts = yield* AccountStore
    const clock = yield* PolicyClock
    const recipients = yield* CampaignRecipients

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

    /**
     * When a routed recipient may go, from `at`: the send window in its local time, then the policy's stateless
     * screen at that moment (a quiet-hours refusal defers it again); a blacklist excludes it whenever it would go.
     */
    const settle = (
      window: WindowMinutes | undefined,
      subject: PolicySubject,
      zones: ReadonlyArray<string>,
      at: number
    ): { readonly _tag: "Excluded"; readonly ruleId: string; readonly reason: string } | {
      readonly _tag: "Send"
      readonly at: number
      readonly deferral: DeferralCause | undefined
      readonly checks: ReadonlyArray<PolicyCheck>
    } => {
      let t = at
      let deferral: DeferralCause | undefined
      // Each round moves to a later opening; a few settle any window and quiet hours that overlap.
      for (let round = 0; round < 4; round++) {
        if (window !== undefined) {
          const opens = nextOpening(window, zones, t)
          if (opens > t) {
            deferral ??= { ruleId: "send_window", reason: "send_window" }
            t = opens
          }
        }
        const screen = policy.screen(subject, t)
        if (screen._tag === "Checks") return { _tag: "Send", at: t, deferral, checks: screen.checks }
        if (screen.reason !== "quiet_hours") return { _tag: "Excluded", ruleId: screen.ruleId, reason: screen.reason }
        deferral ??= { ruleId: screen.ruleId, reason: "quiet_hours" }
        t = Math.max(t + 60_000, screen.retryAt ?? 0)
      }
      return { _tag: "Send", at: t, deferral, checks: [] }
    }

    const dryRun = Effect.fn("CampaignInsight.dryRun")(function*(campaign: Campaign) {
      const template = yield* templateOf(campaign.template)
      const app = yield* appOf(campaign.orgId, campaign.appId)
      const { missing } = yield* audience.resolve(campaign.orgId, campaign.lists)
      const now = clock.now()
      // The start the runner waits for: the stored instant of `startAt`.
      const startTime = yield* recipients.startTime(campaign.id)
      const at = Math.max(now, startTime ?? now)
      const window = campaign.sendWindow === undefined ? undefined : windowMinutes(campaign.sendWindow)
      const document = policies.current().document
      const zonesOf = new Map<string, ReadonlyArray<string>>()
      const tally = dryRunTally(at)

      const consider = (contact: AudienceContact, rendered: Rendered) => {
        if (rendered._tag === "Unsendable") return tally.unsendable(rendered.why)
        if (Result.isFailure(rendered.route)) return tally.noRoute(rendered.route.failure.message)
        const route = rendered.route.success
        const subject: PolicySubject = {
          orgId: campaign.orgId,
          appId: campaign.appId,
          messageClass: campaign.messageClass,
          to: contact.msisdn,
          // The lists' store keeps the country parseRecipient found for the number: what the runner passes on.
          country: contact.country,
          from: campaign.sender,
          text: rendered.text
        }
        // The zones the runner reads the window in (policy/SendWindow.ts): quiet hours' zone, else the tz data's.
        const country = contact.country ?? ""
        let zones = zonesOf.get(country)
        if (zones === undefined) {
          zones = countryZones(contact.country, document)
          zonesOf.set(country, zones)
        }
        const settled = settle(window, subject, zones, at)
        if (settled._tag === "Excluded") return tally.excluded(settled.ruleId, settled.reason)
        tally.send({
          ...settled,
          encoding: rendered.encoding,
          segments: rendered.segments,
          target: targetKey(route.target),
          capacityTps: route.capacityTps
        })
      }

      yield* Stream.runForEachArray(audience.contacts(campaign.orgId, campaign.lists), (contacts) =>
        Effect.forEach(contacts, (contact) => Effect.map(render(template, campaign, contact), (r) => consider(contact, r)), {
          discard: true
        }))

      return tally.result({
        campaignId: campaign.id,
        policyVersion: policy.version(),
        missingLists: missing,
        throttle: campaign.throttle,
        app: Object.keys(app.limits).length > 0 ? app.limits : limits.defaultApp,
        organisation: limits.organisations[campaign.orgId] ?? limits.organisation
      })
    })

    const exclusive = onePerKey()
    return CampaignInsight.of({
      preview: (input, n) => exclusive(input.orgId, preview(input, n)),
      dryRun: (campaign) => exclusive(campaign.orgId, dryRun(campaign))
    })
  })
