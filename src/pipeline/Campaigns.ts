/**
 * The campaign use cases behind the REST API: create and edit (every check a campaign must pass before it is stored),
 * the moderation workflow (submit, approve, reject, the queue, the organisation's settings), start, pause, resume and
 * cancel, the test send, and the campaign's figures and outcomes. Each use case checks the caller's role and
 * organisation (another organisation's campaign is a 404) and writes every state change to the audit log.
 *
 * Roles: a `viewer` reads; a `member` creates campaigns and edits, submits, tests, starts, pauses, resumes and cancels
 * its own; a `moderator`, `admin` or `owner` does all of that on any campaign of the organisation and approves or
 * rejects, never a campaign it created; an `admin` or `owner` changes the moderation settings. App tokens are for
 * sending: campaigns need a user.
 */
import { Cache, Clock, Context, Effect, Layer, Option, RcMap, Result, Schedule, Schema, Semaphore, Stream } from "effect"
import type { Principal } from "../auth/Access.ts"
import { AccountStore, StoreFailure } from "../auth/AccountStore.ts"
import { Forbidden } from "../auth/Errors.ts"
import type { App, Role, Submitter } from "../domain/Account.ts"
import { atLeast } from "../domain/Account.ts"
import type {
  ApprovalRule,
  AutoPause,
  Campaign,
  CampaignAction,
  CampaignSpec,
  CampaignState,
  Canary,
  ModerationSettings,
  SendWindow,
  StartAt
} from "../domain/Campaign.ts"
import type { CampaignNotFound } from "../domain/Campaign.ts"
import { canDo, defaultThrottle, InvalidTransition, isFinalState } from "../domain/Campaign.ts"
import { contentFlags } from "../domain/ContentCheck.ts"
import { InvalidField, StoreUnavailable } from "../domain/Errors.ts"
import { fieldIssues } from "../domain/FieldIssues.ts"
import type { RequestedEncoding } from "../domain/Message.ts"
import { SubmitMessage } from "../domain/Message.ts"
import type { Sender } from "../domain/Msisdn.ts"
import type { MessageClass } from "../domain/Policy.ts"
import type { Template } from "../domain/Template.ts"
import { missingVariable, parseTemplate, renderTemplate } from "../domain/Template.ts"
import { isTimeZone, zonedToEpoch } from "../domain/ZonedTime.ts"
import { chooseEncoding } from "../smpp/Encoding.ts"
import { Audience } from "../storage/Audience.ts"
import type { CampaignFigures, OutcomeQuery, RecipientOutcome } from "../storage/CampaignStats.ts"
import { CampaignStats } from "../storage/CampaignStats.ts"
import type { CampaignFields } from "../storage/CampaignStore.ts"
import { CampaignStore } from "../storage/CampaignStore.ts"
import type { Before } from "../storage/Paging.ts"
import { SenderUse } from "../storage/SenderUse.ts"
import type { SubmitError } from "./Gateway.ts"
import { CampaignControl } from "./CampaignControl.ts"
import { Gateway } from "./Gateway.ts"

/** 400: contacts of the audience lack a variable the template requires (the first few, named). */
export class TemplateVariablesMissing extends Schema.TaggedError<TemplateVariablesMissing>()("TemplateVariablesMissing", {
  rows: Schema.Array(Schema.Struct({
    listId: Schema.String,
    position: Schema.Number,
    msisdn: Schema.String,
    variable: Schema.String
  }))
}) {}

/** 429: the user made the test sends allowed per rolling day in this organisation; the next one passes in `retryAfterSeconds`. */
export class TestSendsExhausted extends Schema.TaggedError<TestSendsExhausted>()("TestSendsExhausted", {
  limit: Schema.Number,
  retryAfterSeconds: Schema.Number
}) {}

/** What the configuration decides of the use cases (`campaigns.*`, layers/Config.ts, where the defaults are). */
export interface CampaignOptions {
  /** Test sends one user may make in one organisation per rolling 24 hours. */
  readonly testSendsPerDay: number
}

/** The window of the test-send quota. */
const testSendWindowMs = 24 * 60 * 60 * 1000

export type CampaignError =
  | InvalidField
  | TemplateVariablesMissing
  | Forbidden
  | CampaignNotFound
  | InvalidTransition
  | StoreUnavailable

/** An edit: the fields given replace the campaign's; `null` clears an optional one. */
export interface CampaignPatch {
  readonly name?: string | undefined
  readonly appId?: string | undefined
  readonly sender?: Sender | undefined
  readonly template?: string | undefined
  readonly lists?: ReadonlyArray<string> | undefined
  readonly messageClass?: MessageClass | undefined
  readonly encoding?: RequestedEncoding | undefined
  readonly startAt?: StartAt | null | undefined
  readonly sendWindow?: SendWindow | null | undefined
  readonly throttle?: number | undefined
  readonly validitySeconds?: number | null | undefined
  readonly canary?: Canary | null | undefined
  readonly autoPause?: AutoPause | null | undefined
}

export interface TestSend {
  readonly to: string
  /** The variables to render with; absent: the first contact's. */
  readonly vars?: Readonly<Record<string, string>> | undefined
}

export interface TestSent {
  readonly messageId: string
  readonly to: string
  readonly text: string
  readonly segments: number
  readonly encoding: "gsm7" | "ucs2"
}

/** A campaign and its figures, as statistics answer. */
export interface CampaignStatistics {
  readonly campaign: Campaign
  readonly figures: CampaignFigures
  readonly at: number
}

/** How many contacts lacking a variable a refused creation names. */
const missingRowsShown = 5

/** How long statistics streams share a campaign's counts, and its receipt percentiles (a sort of every delivered message). */
const countsShared = "1 second"
const receiptsShared = "10 seconds"

/** How long one statistics stream lasts at most; a client (EventSource) reconnects for more. */
const streamLifetime = "1 hour"

export class Campaigns extends Context.Service<Campaigns, {
  readonly create: (p: Principal, spec: CampaignSpec, ip: string) => Effect.Effect<Campaign, CampaignError>
  readonly list: (
    p: Principal,
    options: { readonly state?: CampaignState | undefined; readonly limit: number; readonly before?: Before | undefined }
  ) => Effect.Effect<ReadonlyArray<Campaign>, CampaignError>
  readonly get: (p: Principal, id: string) => Effect.Effect<Campaign, CampaignError>
  readonly edit: (p: Principal, id: string, patch: CampaignPatch, ip: string) => Effect.Effect<Campaign, CampaignError>
  /** To `pending_approval` when the organisation's rule asks for approval, else straight to `approved`. */
  readonly submit: (p: Principal, id: string, ip: string) => Effect.Effect<Campaign, CampaignError>
  readonly approve: (p: Principal, id: string, ip: string) => Effect.Effect<Campaign, CampaignError>
  readonly reject: (p: Principal, id: string, reason: string, ip: string) => Effect.Effect<Campaign, CampaignError>
  readonly start: (p: Principal, id: string, ip: string) => Effect.Effect<Campaign, CampaignError>
  readonly pause: (p: Principal, id: string, ip: string) => Effect.Effect<Campaign, CampaignError>
  readonly resume: (p: Principal, id: string, ip: string) => Effect.Effect<Campaign, CampaignError>
  readonly cancel: (p: Principal, id: string, ip: string) => Effect.Effect<Campaign, CampaignError>
  /** One message of the campaign to one number: at most `testSendsPerDay` per user and organisation (TestSendsExhausted). */
  readonly test: (p: Principal, id: string, input: TestSend, ip: string) => Effect.Effect<TestSent, CampaignError | TestSendsExhausted | SubmitError>
  readonly statistics: (p: Principal, id: string) => Effect.Effect<CampaignStatistics, CampaignError>
  /** Statistics every second until the campaign is final (then one last time), at most an hour. */
  readonly statisticsStream: (p: Principal, id: string) => Effect.Effect<Stream.Stream<CampaignStatistics, StoreUnavailable>, CampaignError>
  readonly outcomes: (p: Principal, id: string, query: OutcomeQuery) => Effect.Effect<ReadonlyArray<RecipientOutcome>, CampaignError>
  readonly exportCsv: (p: Principal, id: string, ip: string) => Effect.Effect<Stream.Stream<string, StoreUnavailable>, CampaignError>
  /** Campaigns waiting for approval, oldest submission first (moderators, admins, owners). */
  readonly queue: (p: Principal, limit: number) => Effect.Effect<ReadonlyArray<Campaign>, CampaignError>
  readonly settings: (p: Principal) => Effect.Effect<ModerationSettings, CampaignError>
  readonly setSettings: (p: Principal, settings: ModerationSettings, ip: string) => Effect.Effect<ModerationSettings, CampaignError>
}>()("smsgw/pipeline/Campaigns") {
  static readonly layer = (options: CampaignOptions) => Layer.effect(Campaigns, Effect.suspend(() => make(options)))
}

/** Whether a submitted campaign waits for a moderator, by the organisation's rule. */
export const needsApproval = (
  rule: ApprovalRule,
  campaign: { readonly messageClass: MessageClass },
  roles: { readonly creator: Role | undefined; readonly submitter: Role }
): boolean => {
  switch (rule) {
    case "all":
      return true
    case "none":
      return false
    case "promotional":
      return campaign.messageClass === "promotional"
    case "members":
      // A campaign created or submitted by a member (or by someone no longer in the organisation) waits.
      return roles.creator === undefined || !atLeast(roles.creator, "moderator") || !atLeast(roles.submitter, "moderator")
  }
}

/** What the stored campaign's user fields are, as an edit starts from them. */
const fieldsOf = (c: Campaign) => ({
  name: c.name,
  appId: c.appId,
  sender: c.sender,
  template: c.template,
  lists: c.lists,
  messageClass: c.messageClass,
  encoding: c.encoding,
  startAt: c.startAt,
  sendWindow: c.sendWindow,
  throttle: c.throttle as number | undefined,
  validitySeconds: c.validitySeconds,
  canary: c.canary,
  autoPause: c.autoPause
})

type Draft = ReturnType<typeof fieldsOf>

const orUndefined = <A>(v: A | null | undefined, current: A | undefined): A | undefined => v === null ? undefined : v === undefined ? current : v

const controlAudit = { start: "started", pause: "paused", resume: "resumed", cancel: "cancelled" } as const

const invalid = (field: string, message: string) => Effect.fail(new InvalidField({ field, message }))

const make = (options: CampaignOptions) => Effect.gen(function*() {
  const store = yield* CampaignStore
  const accounts = yield* AccountStore
  const audience = yield* Audience
  const senders = yield* SenderUse
  const stats = yield* CampaignStats
  const gateway = yield* Gateway
  // Start, pause, resume, cancel: the stored state moves, then the campaign's actor is told (pause and cancel answer
  // once nothing more is submitted).
  const control = yield* CampaignControl

  const infraAccounts = <A, E>(effect: Effect.Effect<A, E | StoreFailure>): Effect.Effect<A, Exclude<E, StoreFailure> | StoreUnavailable> =>
    Effect.catchIf(
      effect,
      (e): e is StoreFailure => e instanceof StoreFailure,
      (e) => Effect.fail(new StoreUnavailable({ message: `account storage is unavailable: ${e.message}` }))
    ) as Effect.Effect<A, Exclude<E, StoreFailure> | StoreUnavailable>

  const audit = (p: Principal, action: string, target: string, ip: string, detail?: string) =>
    accounts.audit({
      orgId: p.orgId,
      actorUserId: p.userId,
      actorAppId: p.appId,
      action,
      target,
      ip,
      detail: detail ?? null
    }).pipe(
      Effect.catch((e) => Effect.logError("audit entry not written").pipe(Effect.annotateLogs({ action, target, error: e.message })))
    )

  /** The signed-in user's id and role, if the role is at least `minimum`. */
  const requireUser = (p: Principal, minimum: Role) =>
    p.kind !== "user" || p.userId === null || p.role === null
      ? Effect.fail(new Forbidden({ message: "campaigns need a user token, not an app token" }))
      : !atLeast(p.role, minimum)
      ? Effect.fail(new Forbidden({ message: `this needs the ${minimum} role or higher` }))
      : Effect.succeed({ userId: p.userId, role: p.role })

  /** A campaign the caller may change: a member's own, or any for moderators and above. */
  const owned = (p: Principal, id: string) =>
    Effect.gen(function*() {
      const user = yield* requireUser(p, "member")
      const campaign = yield* store.get(p.orgId, id)
      if (!atLeast(user.role, "moderator") && campaign.createdBy !== user.userId) {
        return yield* new Forbidden({ message: "members act on the campaigns they created only" })
      }
      return { user, campaign }
    })

  const requireState = (c: Campaign, action: CampaignAction) =>
    canDo(action, c.state) ? Effect.void : Effect.fail(new InvalidTransition({ id: c.id, action, state: c.state }))

  const activeApp = (orgId: string, appId: string) =>
    infraAccounts(accounts.getApp(orgId, appId)).pipe(
      Effect.catchTag("NotFound", () => invalid("appId", `${appId} is not an app of your organisation`)),
      Effect.flatMap((app) => app.active ? Effect.succeed(app) : invalid("appId", `app ${appId} is disabled`))
    )

  const parsed = (source: string): Effect.Effect<Template, InvalidField> => {
    const result = parseTemplate(source)
    return "error" in result
      ? invalid("template", `at offset ${result.error.index}: ${result.error.message}`)
      : Effect.succeed(result.template)
  }

  /**
   * The first contacts of the audience (as the campaign will send: each number once) that lack a required variable,
   * found by the database (storage/Audience.ts), the audience never read into the process.
   */
  const missingVariables = (orgId: string, lists: ReadonlyArray<string>, template: Template) =>
    template.required.length === 0
      ? Effect.succeed([])
      : audience.missingVariables(orgId, lists, template.required, missingRowsShown).pipe(
        Effect.map((rows) => rows.map((r) => ({ listId: r.listId, position: r.pos, msisdn: r.msisdn, variable: r.variable })))
      )

  /** With `encoding: "gsm7"`, the template's own characters (text and defaults; not the contacts') must be GSM 03.38. */
  const gsm7Only = (source: string, template: Template) => {
    const refuse = (where: string, character: string) =>
      invalid("template", `character ${JSON.stringify(character)} ${where} is not in GSM 03.38; use encoding "ucs2" or "auto"`)
    // Placeholders masked with spaces, so an offset in the masked text is an offset in the source.
    const text = chooseEncoding(source.replace(/\{\{[^}]*\}\}/g, (m) => " ".repeat(m.length)), "gsm7")
    if (Result.isFailure(text)) return refuse(`at offset ${text.failure.index}`, text.failure.character)
    for (const part of template.parts) {
      if (part._tag !== "Var" || part.fallback === undefined) continue
      const fallback = chooseEncoding(part.fallback, "gsm7")
      if (Result.isFailure(fallback)) return refuse(`in the default of {{${part.name}}}`, fallback.failure.character)
    }
    return Effect.void
  }

  /** Every check of a campaign's fields, in the order a user fixes them; the fields as stored. */
  const validate = (p: Principal, d: Draft, now: number) =>
    Effect.gen(function*() {
      const app: App = yield* activeApp(p.orgId, d.appId)
      const messageClass = d.messageClass
      if (app.messageClass === "promotional" && messageClass === "transactional") {
        yield* invalid("messageClass", "the app sends promotional messages; an organisation admin can change the app's messageClass")
      }
      const perSecond = app.limits.perSecond
      if (d.throttle !== undefined && perSecond !== undefined && d.throttle > perSecond) {
        yield* invalid("throttle", `${d.throttle} messages per second is above the app's limit of ${perSecond}`)
      }
      const throttle = d.throttle ?? Math.min(defaultThrottle, perSecond ?? defaultThrottle)
      const template = yield* parsed(d.template)
      if (d.encoding === "gsm7") yield* gsm7Only(d.template, template)
      const resolved = yield* audience.resolve(p.orgId, d.lists)
      const unknown = d.lists.findIndex((id) => resolved.missing.includes(id))
      if (unknown !== -1) yield* invalid(`lists[${unknown}]`, `no list ${d.lists[unknown]} in your organisation`)
      const lists = resolved.found
      let startTime: number | undefined
      if (d.startAt !== undefined) {
        if (!isTimeZone(d.startAt.timeZone)) yield* invalid("startAt.timeZone", `${d.startAt.timeZone} is not an IANA time zone`)
        startTime = zonedToEpoch(d.startAt.at, d.startAt.timeZone)
        if (startTime === undefined) return yield* invalid("startAt.at", `${d.startAt.at} is not a date and time`)
        if (startTime <= now) yield* invalid("startAt.at", `${d.startAt.at} in ${d.startAt.timeZone} is in the past`)
      }
      const missing = yield* missingVariables(p.orgId, lists, template)
      if (missing.length > 0) return yield* new TemplateVariablesMissing({ rows: missing })
      const fields: CampaignFields = {
        name: d.name.trim(),
        appId: d.appId,
        sender: d.sender,
        template: d.template,
        lists,
        messageClass,
        encoding: d.encoding,
        startAt: d.startAt,
        startTime,
        sendWindow: d.sendWindow,
        throttle,
        validitySeconds: d.validitySeconds,
        canary: d.canary,
        autoPause: d.autoPause,
        flags: []
      }
      if (fields.name === "") yield* invalid("name", "must not be empty")
      return fields
    })

  const create = Effect.fn("Campaigns.create")(function*(p: Principal, spec: CampaignSpec, ip: string) {
    const user = yield* requireUser(p, "member")
    const fields = yield* validate(p, {
      name: spec.name,
      appId: spec.appId,
      sender: spec.sender.given,
      template: spec.template,
      lists: spec.lists,
      // Bulk sends are promotional unless they say otherwise (quiet hours and promotional caps apply).
      messageClass: spec.messageClass ?? "promotional",
      encoding: spec.encoding ?? "auto",
      startAt: spec.startAt,
      sendWindow: spec.sendWindow,
      throttle: spec.throttle,
      validitySeconds: spec.validitySeconds,
      canary: spec.canary,
      autoPause: spec.autoPause
    }, Date.now())
    const campaign = yield* store.create({ ...fields, id: `cmp_${crypto.randomUUID().replace(/-/g, "").slice(0, 16)}`, orgId: p.orgId, createdBy: user.userId })
    yield* audit(p, "campaign.created", campaign.id, ip, `name=${campaign.name}`)
    return campaign
  })

  const edit = Effect.fn("Campaigns.edit")(function*(p: Principal, id: string, patch: CampaignPatch, ip: string) {
    const { campaign, user } = yield* owned(p, id)
    yield* requireState(campaign, "edit")
    const current = fieldsOf(campaign)
    const fields = yield* validate(p, {
      name: patch.name ?? current.name,
      appId: patch.appId ?? current.appId,
      sender: patch.sender?.given ?? current.sender,
      template: patch.template ?? current.template,
      lists: patch.lists ?? current.lists,
      messageClass: patch.messageClass ?? current.messageClass,
      encoding: patch.encoding ?? current.encoding,
      startAt: orUndefined(patch.startAt, current.startAt),
      sendWindow: orUndefined(patch.sendWindow, current.sendWindow),
      throttle: patch.throttle ?? current.throttle,
      validitySeconds: orUndefined(patch.validitySeconds, current.validitySeconds),
      canary: orUndefined(patch.canary, current.canary),
      autoPause: orUndefined(patch.autoPause, current.autoPause)
    }, Date.now())
    // Whoever changed it is one of its authors: they do not approve it (see approve).
    const editors = campaign.createdBy === user.userId || campaign.editors.includes(user.userId)
      ? undefined
      : [...campaign.editors, user.userId]
    const updated = yield* store.update(p.orgId, id, fields, { editors })
    yield* audit(p, "campaign.edited", id, ip, Object.keys(patch).sort().join(","))
    return updated
  })

  const submit = Effect.fn("Campaigns.submit")(function*(p: Principal, id: string, ip: string) {
    const { user, campaign } = yield* owned(p, id)
    yield* requireState(campaign, "submit")
    // The checks again: lists and contacts may have changed since the campaign was written.
    const fields = yield* validate(p, fieldsOf(campaign), Date.now())
    const settings = yield* store.settings(p.orgId)
    const senderUsed = yield* senders.usedBefore(p.orgId, campaign.sender, campaign.id)
    const flags = contentFlags({ template: campaign.template, sender: campaign.sender, senderUsed }, settings)
    yield* store.update(p.orgId, id, { ...fields, flags })
    const creator = campaign.createdBy === user.userId
      ? Option.some(user.role)
      : yield* infraAccounts(accounts.getMember(p.orgId, campaign.createdBy)).pipe(Effect.map(Option.map((m) => m.role)))
    const waits = needsApproval(settings.approval, campaign, { creator: Option.getOrUndefined(creator), submitter: user.role })
    const now = Date.now()
    const submitted = yield* store.transition(id, "submit", waits ? "pending_approval" : "approved", {
      orgId: p.orgId,
      patch: { submittedAt: now, submittedBy: user.userId, rejectionReason: null, approvedBy: waits ? null : user.userId }
    })
    const flagged = flags.length === 0 ? "" : ` flags=${flags.length}`
    yield* audit(p, "campaign.submitted", id, ip, `rule=${settings.approval}${flagged}`)
    if (!waits) yield* audit(p, "campaign.auto_approved", id, ip, `rule=${settings.approval}: no approval needed`)
    return submitted
  })

  const decide = (p: Principal, id: string) =>
    Effect.gen(function*() {
      const user = yield* requireUser(p, "moderator")
      const campaign = yield* store.get(p.orgId, id)
      if (campaign.createdBy === user.userId) {
        return yield* new Forbidden({ message: "nobody approves or rejects a campaign they created" })
      }
      return { user, campaign }
    })

  const approve = Effect.fn("Campaigns.approve")(function*(p: Principal, id: string, ip: string) {
    const { campaign, user } = yield* decide(p, id)
    // A moderator who rewrote or submitted someone's campaign would otherwise approve their own text: under the "all"
    // rule, the second pair of eyes would be the same pair.
    if (campaign.editors.includes(user.userId) || campaign.submittedBy === user.userId) {
      return yield* new Forbidden({ message: "nobody approves a campaign they edited or submitted" })
    }
    const approved = yield* store.transition(id, "approve", "approved", { orgId: p.orgId, patch: { approvedBy: user.userId } })
    yield* audit(p, "campaign.approved", id, ip)
    return approved
  })

  const reject = Effect.fn("Campaigns.reject")(function*(p: Principal, id: string, reason: string, ip: string) {
    const trimmed = reason.trim()
    if (trimmed === "") return yield* invalid("reason", "say why, for the campaign's creator")
    yield* decide(p, id)
    const rejected = yield* store.transition(id, "reject", "rejected", { orgId: p.orgId, patch: { rejectionReason: trimmed, approvedBy: null } })
    yield* audit(p, "campaign.rejected", id, ip, trimmed.slice(0, 500))
    return rejected
  })

  const controlled = (action: "start" | "pause" | "resume" | "cancel") =>
    Effect.fn(`Campaigns.${action}`)(function*(p: Principal, id: string, ip: string) {
      const { campaign, user } = yield* owned(p, id)
      yield* requireState(campaign, action)
      const moderator = atLeast(user.role, "moderator")
      // A moderator's pause of someone's campaign is a moderation decision: its member does not undo it.
      const pausedBy = campaign.pauseReason?.kind === "user" ? campaign.pauseReason.by : undefined
      if (action === "resume" && !moderator && pausedBy !== undefined && pausedBy !== user.userId) {
        return yield* new Forbidden({ message: "a moderator paused this campaign; a moderator, admin or owner resumes it" })
      }
      const changed = action === "pause"
        ? yield* control.pause(campaign.id, {
          orgId: p.orgId,
          userId: user.userId,
          detail: moderator && campaign.createdBy !== user.userId ? `paused by a ${user.role}` : "paused by a user"
        })
        : yield* control[action](campaign.id, { orgId: p.orgId })
      yield* audit(p, `campaign.${controlAudit[action]}`, id, ip, `${campaign.state}->${changed.state}`)
      return changed
    })

  const firstContact = (orgId: string, lists: ReadonlyArray<string>) =>
    audience.contacts(orgId, lists, { pageSize: 1 }).pipe(Stream.take(1), Stream.runHead, Effect.map(Option.getOrUndefined))

  // Test sends carry text no moderator approved: each user has a few per rolling day in each organisation, counted
  // from the audit log (an entry per send that went through; refused ones do not count).
  const withinTestQuota = Effect.fnUntraced(function*(p: Principal, userId: string) {
    const now = yield* Clock.currentTimeMillis
    const times = yield* infraAccounts(accounts.auditTimes({
      orgId: p.orgId,
      actorUserId: userId,
      action: "campaign.test_sent",
      since: now - testSendWindowMs + 1,
      limit: options.testSendsPerDay
    }))
    const oldest = times[options.testSendsPerDay - 1]
    if (oldest === undefined) return
    // The oldest of the newest `limit` sends leaves the window then, and with it fewer than `limit` remain.
    return yield* new TestSendsExhausted({
      limit: options.testSendsPerDay,
      retryAfterSeconds: Math.max(1, Math.ceil((oldest + testSendWindowMs - now) / 1000))
    })
  })

  // One test send of a user in an organisation at a time on this node, from the quota's check to its audit entry:
  // requests sent together cannot all pass the check before any is counted (nodes of a cluster each still let one by).
  const testLocks = yield* RcMap.make({ lookup: (_key: string) => Semaphore.make(1), idleTimeToLive: "1 minute" })
  const oneTestAtATime = <A, E, R>(key: string, effect: Effect.Effect<A, E, R>) =>
    Effect.scoped(Effect.flatMap(RcMap.get(testLocks, key), (lock) => lock.withPermit(effect)))

  const test = Effect.fn("Campaigns.test")(function*(p: Principal, id: string, input: TestSend, ip: string) {
    const { campaign, user } = yield* owned(p, id)
    yield* requireState(campaign, "test")
    const app = yield* activeApp(p.orgId, campaign.appId)
    const template = yield* parsed(campaign.template)
    const vars = input.vars !== undefined
      ? Object.fromEntries(Object.entries(input.vars).map(([k, v]) => [k.trim().toLowerCase(), v]))
      : (yield* firstContact(p.orgId, campaign.lists))?.vars ?? {}
    const lacking = missingVariable(template, vars)
    if (lacking !== undefined) {
      return yield* invalid(input.vars !== undefined ? "vars" : "template", `no value for {{${lacking}}}${input.vars !== undefined ? "" : " in the first contact"}`)
    }
    const text = renderTemplate(template, vars)
    const message = yield* Schema.decodeUnknownEffect(SubmitMessage)({
      to: input.to,
      from: campaign.sender,
      text,
      encoding: campaign.encoding,
      messageClass: campaign.messageClass,
      ...(campaign.validitySeconds !== undefined ? { validitySeconds: campaign.validitySeconds } : {})
    }).pipe(Effect.mapError((e) => {
      const issue = fieldIssues(e.issue)[0]
      return new InvalidField({ field: issue?.field ?? "to", message: issue?.message ?? "is not valid" })
    }))
    const submitter: Submitter = { orgId: app.orgId, appId: app.id, appLimits: app.limits, messageClass: app.messageClass }
    const outcome = yield* oneTestAtATime(
      `${p.orgId} ${user.userId}`,
      Effect.gen(function*() {
        yield* withinTestQuota(p, user.userId)
        const outcome = yield* gateway.submit(message, submitter)
        yield* audit(p, "campaign.test_sent", id, ip, `message=${outcome.accepted.id}`)
        return outcome
      })
    )
    const sent: TestSent = {
      messageId: outcome.accepted.id,
      to: `+${message.to.msisdn.replace(/^\+/, "")}`,
      text,
      segments: outcome.accepted.segments,
      encoding: outcome.accepted.encoding
    }
    return sent
  })

  const readable = (p: Principal, id: string) => requireUser(p, "viewer").pipe(Effect.andThen(store.get(p.orgId, id)))

  const statisticsOf = (campaign: Campaign) =>
    stats.figures(campaign.id).pipe(Effect.map((figures): CampaignStatistics => ({ campaign, figures, at: Date.now() })))

  const statistics = (p: Principal, id: string) => Effect.flatMap(readable(p, id), statisticsOf)

  // Every statistics stream of a campaign on this node reads the same counts (at most once a second) and receipt
  // percentiles (once every ten seconds): on a million recipients the counts take about half a second, and each
  // dashboard counting for itself would multiply that (on SQLite, on the connection the message path shares).
  const noReceipt: CampaignFigures["receipt"] = { count: 0, medianMs: undefined, p95Ms: undefined }
  const sharedCounts = yield* Cache.make({ capacity: 10_000, timeToLive: countsShared, lookup: (id: string) => stats.counts(id, noReceipt) })
  const sharedReceipts = yield* Cache.make({ capacity: 10_000, timeToLive: receiptsShared, lookup: (id: string) => stats.receiptTimes(id) })

  // An event every second; the last is the one that shows a final state with no message awaiting its receipt (a
  // campaign completes once everything is sent: its last receipts come after), with figures read afresh.
  const statisticsStream = (p: Principal, id: string) =>
    Effect.map(readable(p, id), (first) => {
      const current = Effect.gen(function*() {
        const campaign = Option.getOrElse(yield* store.find(first.id), () => first)
        const final = isFinalState(campaign.state)
        const receipt = final ? yield* stats.receiptTimes(campaign.id) : yield* Cache.get(sharedReceipts, campaign.id)
        const counts = final ? yield* stats.counts(campaign.id, receipt) : yield* Cache.get(sharedCounts, campaign.id)
        return { campaign, figures: { ...counts, receipt }, at: Date.now() } satisfies CampaignStatistics
      })
      return Stream.fromEffectSchedule(current, Schedule.spaced("1 second")).pipe(
        Stream.takeUntil((s) => isFinalState(s.campaign.state) && s.figures.messages.inFlight === 0),
        Stream.interruptWhen(Effect.sleep(streamLifetime))
      )
    })

  const outcomes = (p: Principal, id: string, query: OutcomeQuery) =>
    Effect.flatMap(readable(p, id), (c) => stats.outcomes(c.id, query))

  // Numbers leave the gateway: who took them is in the audit log.
  const exportCsv = (p: Principal, id: string, ip: string) =>
    Effect.flatMap(readable(p, id), (c) => audit(p, "campaign.exported", c.id, ip).pipe(Effect.as(stats.exportCsv(c.id))))

  const queue = (p: Principal, limit: number) => requireUser(p, "moderator").pipe(Effect.andThen(store.moderationQueue(p.orgId, limit)))

  const setSettings = Effect.fn("Campaigns.setSettings")(function*(p: Principal, settings: ModerationSettings, ip: string) {
    yield* requireUser(p, "admin")
    const clean: ModerationSettings = {
      approval: settings.approval,
      keywords: Array.from(new Set(settings.keywords.map((k) => k.trim()).filter((k) => k !== ""))),
      urls: Array.from(new Set(settings.urls.map((u) => u.trim()).filter((u) => u !== "")))
    }
    const saved = yield* store.setSettings(p.orgId, clean)
    yield* audit(p, "moderation.settings_changed", p.orgId, ip, `approval=${clean.approval} keywords=${clean.keywords.length} urls=${clean.urls.length}`)
    return saved
  })

  return Campaigns.of({
    create,
    list: (p, options) => requireUser(p, "viewer").pipe(Effect.andThen(store.list(p.orgId, options))),
    get: readable,
    edit,
    submit,
    approve,
    reject,
    start: controlled("start"),
    pause: controlled("pause"),
    resume: controlled("resume"),
    cancel: controlled("cancel"),
    test,
    statistics,
    statisticsStream,
    outcomes,
    exportCsv,
    queue,
    settings: (p) => requireUser(p, "viewer").pipe(Effect.andThen(store.settings(p.orgId))),
    setSettings
  })
})
