/**
 * Campaigns as stored: create, read, list, edit, and state transitions checked in the database (an UPDATE that only
 * matches a row in an allowed state, so two nodes or two users racing for one campaign cannot both win), moderation
 * settings and the moderation queue. Every read a user can reach is scoped by organisation. Recipients and their
 * cursor live in CampaignRecipients.
 */
import { Context, Effect, Layer, Option } from "effect"
import { SqlClient } from "effect/sql"
import type { SqlError } from "effect/sql"
import type {
  AutoPause,
  Campaign,
  CampaignAction,
  CampaignState,
  Canary,
  ModerationSettings,
  PauseReason,
  SendWindow,
  StartAt
} from "../domain/Campaign.ts"
import { allowedFrom, CampaignNotFound, defaultModerationSettings, InvalidTransition } from "../domain/Campaign.ts"
import { messageWithCauses, StoreUnavailable } from "../domain/Errors.ts"
import type { RequestedEncoding } from "../domain/Message.ts"
import type { MessageClass } from "../domain/Policy.ts"
import { olderThan } from "./Paging.ts"
import type { Before } from "./Paging.ts"

/** The fields a user sets (resolved: defaults applied), the content check's flags, and `startAt` as epoch ms. */
export interface CampaignFields extends
  Pick<
    Campaign,
    | "name"
    | "appId"
    | "sender"
    | "template"
    | "lists"
    | "messageClass"
    | "encoding"
    | "startAt"
    | "sendWindow"
    | "throttle"
    | "validitySeconds"
    | "canary"
    | "autoPause"
    | "flags"
  >
{
  /** `startAt` as epoch ms (undefined: when started). */
  readonly startTime: number | undefined
}

export interface NewCampaign extends CampaignFields {
  readonly id: string
  readonly orgId: string
  readonly createdBy: string
}

/** What a transition may set besides the state. `null` clears a field. */
export interface TransitionPatch {
  readonly pauseReason?: PauseReason | null
  readonly rejectionReason?: string | null
  readonly approvedBy?: string | null
  readonly submittedBy?: string | null
  readonly submittedAt?: number
  readonly startedAt?: number
  readonly finishedAt?: number
  readonly audience?: number
  /** The W3C traceparent of the request that started it, when traced. */
  readonly trace?: string
}

/** A started campaign as the supervisor sees it. */
export interface ActiveCampaign {
  readonly id: string
  readonly state: CampaignState
  readonly startTime: number | undefined
}

export class CampaignStore extends Context.Service<CampaignStore, {
  readonly create: (campaign: NewCampaign) => Effect.Effect<Campaign, StoreUnavailable>
  /** A campaign of the organisation; another organisation's id is as unknown as a missing one. */
  readonly get: (orgId: string, id: string) => Effect.Effect<Campaign, CampaignNotFound | StoreUnavailable>
  /** Any campaign by id: for its own actor, which has no organisation to ask in. */
  readonly find: (id: string) => Effect.Effect<Option.Option<Campaign>, StoreUnavailable>
  /** Newest first (by creation, then id); `before` pages back from the previous page's last campaign. */
  readonly list: (
    orgId: string,
    options: { readonly state?: CampaignState | undefined; readonly limit: number; readonly before?: Before | undefined }
  ) => Effect.Effect<ReadonlyArray<Campaign>, StoreUnavailable>
  /** Replaces the user's fields, only in a state that allows `edit`; `editors` replaces the list of editors when given. */
  readonly update: (
    orgId: string,
    id: string,
    fields: CampaignFields,
    options?: { readonly editors?: ReadonlyArray<string> | undefined }
  ) => Effect.Effect<Campaign, CampaignNotFound | InvalidTransition | StoreUnavailable>
  /**
   * Moves a campaign to `to` if its state allows `action` (domain/Campaign.ts allowedFrom), atomically. `orgId`
   * undefined: the system (its actor, the supervisor) acting on any campaign.
   */
  readonly transition: (
    id: string,
    action: CampaignAction,
    to: CampaignState,
    options?: { readonly orgId?: string | undefined; readonly patch?: TransitionPatch }
  ) => Effect.Effect<Campaign, CampaignNotFound | InvalidTransition | StoreUnavailable>
  /** Campaigns in `scheduled` or `running`, every organisation's (the supervisor keeps their actors going). */
  readonly active: Effect.Effect<ReadonlyArray<ActiveCampaign>, StoreUnavailable>
  /** Campaigns waiting for approval: oldest submission first. */
  readonly moderationQueue: (orgId: string, limit: number) => Effect.Effect<ReadonlyArray<Campaign>, StoreUnavailable>
  readonly settings: (orgId: string) => Effect.Effect<ModerationSettings, StoreUnavailable>
  readonly setSettings: (orgId: string, settings: ModerationSettings) => Effect.Effect<ModerationSettings, StoreUnavailable>
}>()("smsgw/storage/CampaignStore") {
  static readonly layer = Layer.effect(CampaignStore, Effect.suspend(() => make))
}

type Int = number | string | bigint

interface Row {
  readonly id: string
  readonly org_id: string
  readonly name: string
  readonly app_id: string
  readonly sender: string
  readonly template: string
  readonly lists: string
  readonly message_class: string
  readonly encoding: string
  readonly start_at: string | null
  readonly start_time: Int | null
  readonly send_window: string | null
  readonly throttle: Int
  readonly validity_seconds: Int | null
  readonly canary: string | null
  readonly auto_pause: string | null
  readonly state: string
  readonly pause_reason: string | null
  readonly rejection_reason: string | null
  readonly flags: string
  readonly created_by: string
  readonly editors: string
  readonly submitted_by: string | null
  readonly approved_by: string | null
  readonly audience: Int
  readonly created_at: Int
  readonly updated_at: Int
  readonly submitted_at: Int | null
  readonly started_at: Int | null
  readonly trace?: string | null
  readonly finished_at: Int | null
}

const num = (v: Int): number => Number(v)
const opt = (v: Int | null): number | undefined => v === null ? undefined : Number(v)
const json = <A>(v: string | null): A | undefined => v === null ? undefined : JSON.parse(v) as A
const toJson = (v: unknown): string | null => v === undefined || v === null ? null : JSON.stringify(v)

/** Columns are written only by this module, from decoded values: reading them back trusts their shape. */
export const campaignOf = (r: Row): Campaign => ({
  id: r.id,
  orgId: r.org_id,
  name: r.name,
  appId: r.app_id,
  sender: r.sender,
  template: r.template,
  lists: JSON.parse(r.lists) as ReadonlyArray<string>,
  messageClass: r.message_class as MessageClass,
  encoding: r.encoding as RequestedEncoding,
  startAt: json<StartAt>(r.start_at),
  sendWindow: json<SendWindow>(r.send_window),
  throttle: num(r.throttle),
  validitySeconds: opt(r.validity_seconds),
  canary: json<Canary>(r.canary),
  autoPause: json<AutoPause>(r.auto_pause),
  state: r.state as CampaignState,
  pauseReason: json<PauseReason>(r.pause_reason),
  rejectionReason: r.rejection_reason ?? undefined,
  flags: JSON.parse(r.flags) as ReadonlyArray<string>,
  createdBy: r.created_by,
  editors: JSON.parse(r.editors) as ReadonlyArray<string>,
  submittedBy: r.submitted_by ?? undefined,
  approvedBy: r.approved_by ?? undefined,
  createdAt: num(r.created_at),
  updatedAt: num(r.updated_at),
  submittedAt: opt(r.submitted_at),
  startedAt: opt(r.started_at),
  finishedAt: opt(r.finished_at),
  audience: num(r.audience),
  ...(r.trace !== undefined && r.trace !== null ? { trace: r.trace } : {})
})

const fieldColumns = (f: CampaignFields) => ({
  name: f.name,
  app_id: f.appId,
  sender: f.sender,
  template: f.template,
  lists: JSON.stringify(f.lists),
  message_class: f.messageClass,
  encoding: f.encoding,
  start_at: toJson(f.startAt),
  start_time: f.startTime ?? null,
  send_window: toJson(f.sendWindow),
  throttle: f.throttle,
  validity_seconds: f.validitySeconds ?? null,
  canary: toJson(f.canary),
  auto_pause: toJson(f.autoPause),
  flags: JSON.stringify(f.flags)
})

const failed = (error: SqlError.SqlError) => new StoreUnavailable({ message: messageWithCauses(error), cause: error })

const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  const find = (id: string) =>
    sql<Row>`SELECT * FROM campaigns WHERE id = ${id}`.pipe(
      Effect.map((rows) => rows[0] === undefined ? Option.none<Campaign>() : Option.some(campaignOf(rows[0]))),
      Effect.mapError(failed)
    )

  const get = (orgId: string, id: string) =>
    sql<Row>`SELECT * FROM campaigns WHERE id = ${id} AND org_id = ${orgId}`.pipe(
      Effect.mapError(failed),
      Effect.flatMap((rows) => rows[0] === undefined ? Effect.fail(new CampaignNotFound({ id })) : Effect.succeed(campaignOf(rows[0])))
    )

  const create = (c: NewCampaign) =>
    Effect.gen(function*() {
      const now = Date.now()
      yield* sql`INSERT INTO campaigns ${sql.insert({
        id: c.id,
        org_id: c.orgId,
        ...fieldColumns(c),
        state: "draft",
        created_by: c.createdBy,
        audience: 0,
        cursor_pos: 0,
        version: 0,
        created_at: now,
        updated_at: now
      })}`.pipe(Effect.mapError(failed))
      return yield* get(c.orgId, c.id).pipe(Effect.catchTag("CampaignNotFound", Effect.die))
    })

  const list = (orgId: string, options: { readonly state?: CampaignState | undefined; readonly limit: number; readonly before?: Before | undefined }) =>
    sql<Row>`SELECT * FROM campaigns WHERE org_id = ${orgId}
      ${options.state !== undefined ? sql`AND state = ${options.state}` : sql``}
      ${olderThan(sql, options.before)}
      ORDER BY created_at DESC, id DESC LIMIT ${options.limit}`.pipe(
      Effect.map((rows) => rows.map(campaignOf)),
      Effect.mapError(failed)
    )

  /** After an UPDATE matched nothing: the campaign is not there, or its state does not allow the action. */
  const refused = (
    id: string,
    action: CampaignAction,
    orgId: string | undefined
  ): Effect.Effect<never, CampaignNotFound | InvalidTransition | StoreUnavailable> =>
    (orgId === undefined ? find(id) : get(orgId, id).pipe(Effect.map(Option.some))).pipe(
      Effect.flatMap((found): Effect.Effect<never, CampaignNotFound | InvalidTransition> =>
        Option.isNone(found)
          ? Effect.fail(new CampaignNotFound({ id }))
          : Effect.fail(new InvalidTransition({ id, action, state: found.value.state }))
      )
    )

  const update = (orgId: string, id: string, fields: CampaignFields, options: { readonly editors?: ReadonlyArray<string> | undefined } = {}) =>
    Effect.gen(function*() {
      const editors = options.editors !== undefined ? { editors: JSON.stringify(options.editors) } : {}
      const rows = yield* sql`UPDATE campaigns SET ${sql.update({ ...fieldColumns(fields), ...editors, updated_at: Date.now() })},
        version = version + 1
        WHERE id = ${id} AND org_id = ${orgId} AND state IN ${sql.in(allowedFrom.edit)} RETURNING id`.pipe(Effect.mapError(failed))
      if (rows.length === 0) return yield* refused(id, "edit", orgId)
      return yield* get(orgId, id)
    })

  const transition = (
    id: string,
    action: CampaignAction,
    to: CampaignState,
    options: { readonly orgId?: string | undefined; readonly patch?: TransitionPatch } = {}
  ) =>
    Effect.gen(function*() {
      const patch = options.patch ?? {}
      const set: Record<string, unknown> = { state: to, updated_at: Date.now() }
      if (patch.pauseReason !== undefined) set.pause_reason = toJson(patch.pauseReason)
      if (patch.rejectionReason !== undefined) set.rejection_reason = patch.rejectionReason
      if (patch.approvedBy !== undefined) set.approved_by = patch.approvedBy
      if (patch.submittedBy !== undefined) set.submitted_by = patch.submittedBy
      if (patch.submittedAt !== undefined) set.submitted_at = patch.submittedAt
      if (patch.startedAt !== undefined) set.started_at = patch.startedAt
      if (patch.trace !== undefined) set.trace = patch.trace
      if (patch.finishedAt !== undefined) set.finished_at = patch.finishedAt
      if (patch.audience !== undefined) set.audience = patch.audience
      const orgId = options.orgId
      const rows = yield* sql`UPDATE campaigns SET ${sql.update(set)}, version = version + 1
        WHERE id = ${id} ${orgId !== undefined ? sql`AND org_id = ${orgId}` : sql``}
        AND state IN ${sql.in(allowedFrom[action])} RETURNING id`.pipe(Effect.mapError(failed))
      if (rows.length === 0) return yield* refused(id, action, orgId)
      const found = yield* find(id)
      if (Option.isNone(found)) return yield* new CampaignNotFound({ id })
      return found.value
    })

  const active = sql<{ readonly id: string; readonly state: string; readonly start_time: Int | null }>`
    SELECT id, state, start_time FROM campaigns WHERE state IN ('scheduled', 'running')`.pipe(
    Effect.map((rows) => rows.map((r): ActiveCampaign => ({ id: r.id, state: r.state as CampaignState, startTime: opt(r.start_time) }))),
    Effect.mapError(failed)
  )

  const moderationQueue = (orgId: string, limit: number) =>
    sql<Row>`SELECT * FROM campaigns WHERE org_id = ${orgId} AND state = 'pending_approval'
      ORDER BY submitted_at ASC, id ASC LIMIT ${limit}`.pipe(
      Effect.map((rows) => rows.map(campaignOf)),
      Effect.mapError(failed)
    )

  const settings = (orgId: string) =>
    sql<{ readonly approval: string; readonly keywords: string; readonly urls: string }>`
      SELECT approval, keywords, urls FROM moderation_settings WHERE org_id = ${orgId}`.pipe(
      Effect.map((rows): ModerationSettings => {
        const r = rows[0]
        if (r === undefined) return defaultModerationSettings
        return {
          approval: r.approval as ModerationSettings["approval"],
          keywords: JSON.parse(r.keywords) as ReadonlyArray<string>,
          urls: JSON.parse(r.urls) as ReadonlyArray<string>
        }
      }),
      Effect.mapError(failed)
    )

  const setSettings = (orgId: string, s: ModerationSettings) =>
    sql`INSERT INTO moderation_settings ${sql.insert({
      org_id: orgId,
      approval: s.approval,
      keywords: JSON.stringify(s.keywords),
      urls: JSON.stringify(s.urls),
      updated_at: Date.now()
    })} ON CONFLICT (org_id) DO UPDATE SET approval = excluded.approval, keywords = excluded.keywords,
      urls = excluded.urls, updated_at = excluded.updated_at`.pipe(
      Effect.as(s),
      Effect.mapError(failed)
    )

  return CampaignStore.of({ create, get, find, list, update, transition, active, moderationQueue, settings, setSettings })
})
