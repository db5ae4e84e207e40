/**
 * The inbound processor: turns what links stored of mobile-originated deliver_sm (storage/InboundStore.ts) into
 * messages routed to apps.
 *
 * - One processor per cluster (a singleton; embedded, a fiber of the process), polling every `pollIntervalMs`.
 * - Concatenated parts (UDH or SAR) wait until every part is stored, or `reassemblyMs` after the first one came: then
 *   the message is made of the parts it has (`missingParts` says how many never came).
 * - Routing by the superadmin's document (domain/Inbound.ts). A message exactly an opt-out keyword puts its sender on
 *   the route's opt-out list (the organisation's blacklist: the contact policy and campaigns honour it), an opt-in
 *   keyword takes it off; the route's confirmation is sent through the pipeline like any message of the app (before
 *   the listing for an opt-out, after the unlisting for an opt-in, so the list does not refuse it), under an
 *   idempotency key made of the stored part's id: processing the same parts again never sends it twice.
 * - The messages, their callbacks (to the app's callback URL, signed like status callbacks; for an app without one that
 *   binds over SMPP, to its receiver binds as deliver_sm) and the deletion of the
 *   parts are one transaction. The list change and the reply come before it and are idempotent, so a crash in
 *   between only repeats them harmlessly.
 */
import { Effect, Layer, Option, Schedule, Schema } from "effect"
import { Singleton } from "effect/cluster"
import type { Submitter } from "../domain/Account.ts"
import { AccountStore } from "../auth/AccountStore.ts"
import { SMPP_CALLBACK_URL } from "../domain/Callback.ts"
import { confirmationOf, decideInbound, inboundCallbackBody } from "../domain/Inbound.ts"
import type { InboundAction, InboundDocument, InboundRoute } from "../domain/Inbound.ts"
import { SubmitMessage } from "../domain/Message.ts"
import { newMessageId } from "../domain/MessageId.ts"
import { InboundMetrics } from "../observability/Metrics.ts"
import { Blacklists } from "../policy/Blacklists.ts"
import { PolicyConfig } from "../policy/PolicyConfig.ts"
import { dataCodingName, decodeShortMessage } from "../smpp/Encoding.ts"
import { InboundStore } from "../storage/InboundStore.ts"
import type { InboundCallback, NewInbound, StoredRaw } from "../storage/InboundStore.ts"
import { Gateway } from "./Gateway.ts"

export interface InboundOptions {
  readonly pollIntervalMs: number
  /** How long the parts of a concatenated message wait for the others. */
  readonly reassemblyMs: number
  /** Most stored parts one pass reads. */
  readonly batchSize: number
}

/** The sender as stored and listed: E.164 with its `+` when it is a number, else as the SMSC wrote it. */
export const senderOf = (source: string): string => (/^\d{7,15}$/.test(source) ? `+${source}` : source)

const decodeSubmit = Schema.decodeUnknownEffect(SubmitMessage)

/** One message's parts in order (a repeated part counted once), its text, and how many parts never came. */
const assemble = (parts: ReadonlyArray<StoredRaw>) => {
  const bySeq = new Map<number, StoredRaw>()
  for (const p of parts) if (!bySeq.has(p.concat?.seq ?? 1)) bySeq.set(p.concat?.seq ?? 1, p)
  const ordered = [...bySeq.entries()].sort((a, b) => a[0] - b[0]).map(([, p]) => p)
  const total = parts[0]?.concat?.total ?? 1
  const text = ordered.map((p) => decodeShortMessage(p.payload, p.dataCoding, (p.esmClass & 0x40) !== 0)).join("")
  return { ordered, text, missing: Math.max(0, total - ordered.length) }
}

const groupKey = (raw: StoredRaw) =>
  raw.concat === undefined ? `id:${raw.id}` : `${raw.linkId}\u0000${raw.source}\u0000${raw.concat.ref}\u0000${raw.concat.total}`

/** The processor's loop, until interrupted. */
export const process = (options: InboundOptions) =>
  Effect.gen(function*() {
    const store = yield* InboundStore
    const accounts = yield* AccountStore
    const blacklists = yield* Blacklists
    const policy = yield* PolicyConfig
    const gateway = yield* Gateway
    const metrics = yield* InboundMetrics

    const appOf = (appId: string) =>
      accounts.findAppById(appId).pipe(
        Effect.map((found) => Option.filter(found, (a) => a.active)),
        Effect.orElseSucceed(() => Option.none())
      )

    /** The route's opt-out list when the policy gives it to the app's organisation; undefined otherwise. */
    const listOf = (route: InboundRoute, orgId: string) => {
      if (route.optOutList === undefined) return undefined
      const list = (policy.current().document.blacklists ?? []).find((l) => l.name === route.optOutList)
      return list !== undefined && list.org === orgId ? list.name : undefined
    }

    const reply = (route: InboundRoute, submitter: Submitter, to: string, text: string, key: string) =>
      decodeSubmit({ to, from: route.number, text }).pipe(
        Effect.flatMap((message) => gateway.submit(message, submitter, { idempotencyKey: key })),
        Effect.tap((outcome) =>
          Effect.logInfo("inbound: confirmation sent").pipe(Effect.annotateLogs({ routeId: route.id, messageId: outcome.accepted.id }))
        ),
        Effect.catch((error) =>
          Effect.logWarning("inbound: the confirmation was not sent").pipe(
            Effect.annotateLogs({ routeId: route.id, reason: "_tag" in error ? String(error._tag) : "invalid" })
          )
        )
      )

    const changeList = (list: string, action: InboundAction, number: string) =>
      (action === "opt_out" ? blacklists.addEntries(list, [number]) : blacklists.removeEntries(list, [number])).pipe(
        Effect.as(true),
        Effect.catch((error) =>
          Effect.logWarning("inbound: the opt-out list was not changed").pipe(
            Effect.annotateLogs({ list, action, reason: error._tag }),
            Effect.as(false)
          )
        )
      )

    /** Routes, applies and stores one whole (or timed-out) message; false when another processor had it. */
    const handle = (document: InboundDocument, parts: ReadonlyArray<StoredRaw>) =>
      Effect.gen(function*() {
        const { ordered, text, missing } = assemble(parts)
        const first = ordered[0]
        if (first === undefined) return { done: true, applied: 0 }
        const last = ordered.reduce((a, b) => (b.receivedAt > a.receivedAt ? b : a), first)
        const from = senderOf(first.source)
        const decision = decideInbound(document, first.destination, text)
        const now = Date.now()
        const messages: Array<NewInbound> = []
        const callbacks: Array<InboundCallback> = []
        /** The message as stored for one route's app (or for nobody: unrouted). */
        const stored = (
          target: { readonly orgId: string; readonly appId: string; readonly routeId: string } | undefined,
          action: InboundAction | null
        ): NewInbound => ({
          id: newMessageId(last.receivedAt),
          orgId: target?.orgId ?? null,
          appId: target?.appId ?? null,
          routeId: target?.routeId ?? null,
          linkId: first.linkId,
          from,
          to: first.destination,
          text,
          encoding: dataCodingName(first.dataCoding),
          parts: ordered.length,
          missingParts: missing,
          keyword: target === undefined ? null : decision.keyword ?? null,
          action,
          receivedAt: last.receivedAt
        })
        let applied = 0
        for (const route of decision.routes) {
          const app = yield* appOf(route.appId)
          if (Option.isNone(app)) continue
          const a = app.value
          const submitter: Submitter = { orgId: a.orgId, appId: a.id, appLimits: a.limits, messageClass: a.messageClass }
          let action: InboundAction | null = null
          const list = listOf(route, a.orgId)
          if (decision.action !== undefined && list !== undefined && from.startsWith("+")) {
            const confirmation = confirmationOf(route, decision.action, decision.language)
            const key = `inbound-reply:${first.linkId}:${first.id}:${route.id}`
            if (decision.action === "opt_out" && confirmation !== undefined) yield* reply(route, submitter, from, confirmation, key)
            if (yield* changeList(list, decision.action, from)) {
              action = decision.action
              applied++
              metrics.processed(decision.action)
            }
            if (decision.action === "opt_in" && confirmation !== undefined) yield* reply(route, submitter, from, confirmation, key)
          }
          const message = stored({ orgId: a.orgId, appId: a.id, routeId: route.id }, action)
          const id = message.id
          messages.push(message)
          // Its callback URL; else, for an app that binds over SMPP, its receiver binds (pipeline/SmppFront.ts).
          const url = a.callback?.url ?? (a.smppSystemId !== undefined ? SMPP_CALLBACK_URL : undefined)
          if (url !== undefined) {
            callbacks.push({
              inboundId: id,
              orgId: a.orgId,
              appId: a.id,
              url,
              body: inboundCallbackBody({
                type: "message.received",
                eventId: `evt_${newMessageId(now)}`,
                inboundId: id,
                appId: a.id,
                from,
                to: first.destination,
                text,
                receivedAt: new Date(last.receivedAt).toISOString(),
                parts: ordered.length,
                ...(missing > 0 ? { missingParts: missing } : {}),
                ...(decision.keyword !== undefined ? { keyword: decision.keyword } : {}),
                ...(action !== null ? { action } : {})
              })
            })
          }
        }
        if (messages.length === 0) {
          // Nobody takes it: kept (without an organisation) so an operator can see what arrives where.
          messages.push(stored(undefined, null))
          yield* Effect.logWarning("inbound: a message no route takes").pipe(
            Effect.annotateLogs({ to: first.destination, linkId: first.linkId })
          )
        }
        const done = yield* store.complete({ rawIds: parts.map((p) => p.id), messages, callbacks, now })
        const routed = messages.filter((m) => m.orgId !== null).length
        if (done) metrics.processed(routed === 0 ? "unrouted" : "routed", routed === 0 ? 1 : routed)
        return { done, applied }
      })

    /** One pass: every whole message among the oldest stored parts; answers how many rows it read and used. */
    const pass = Effect.gen(function*() {
      const rows = yield* store.pending(options.batchSize)
      if (rows.length === 0) return { read: 0, used: 0 }
      const document = (yield* store.document).document
      const groups = new Map<string, Array<StoredRaw>>()
      for (const row of rows) {
        const key = groupKey(row)
        const group = groups.get(key)
        if (group === undefined) groups.set(key, [row])
        else group.push(row)
      }
      const now = Date.now()
      let used = 0
      for (const [head, ...others] of groups.values()) {
        if (head === undefined) continue
        const group = [head, ...others]
        let parts: ReadonlyArray<StoredRaw> = group
        if (head.concat !== undefined) {
          const seqs = new Set(group.map((p) => p.concat?.seq))
          if (seqs.size < head.concat.total) parts = yield* store.siblings(head)
          const have = new Set(parts.map((p) => p.concat?.seq)).size
          const oldest = Math.min(...parts.map((p) => p.receivedAt))
          if (have < head.concat.total && now - oldest < options.reassemblyMs) continue
        }
        yield* handle(document, parts)
        used += parts.length
      }
      return { read: rows.length, used }
    })

    const backlog = store.backlog.pipe(
      Effect.map((b) => metrics.waiting(b.waiting, b.oldestAt === undefined ? 0 : Math.max(0, (Date.now() - b.oldestAt) / 1000))),
      Effect.timeout("10 seconds"),
      Effect.ignore,
      Effect.repeat(Schedule.spaced(Math.max(1_000, 20 * options.pollIntervalMs)))
    )
    yield* Effect.forkScoped(backlog)

    let failing = false
    for (;;) {
      const result = yield* Effect.result(pass)
      if (result._tag === "Failure") {
        if (!failing) {
          yield* Effect.logWarning("inbound: the store failed; tried again every interval").pipe(
            Effect.annotateLogs({ error: result.failure.message })
          )
        }
        failing = true
      } else if (failing) {
        failing = false
        yield* Effect.logInfo("inbound: the store answers again")
      }
      // A full batch may hide more: go again at once, unless everything read waits for its siblings.
      const seen = result._tag === "Success" ? result.success : { read: 0, used: 0 }
      if (seen.read < options.batchSize || seen.used === 0) yield* Effect.sleep(options.pollIntervalMs)
    }
  })

/** The processor as a fiber of this process (embedded: the only process). */
export const layer = (options: InboundOptions) => Layer.effectDiscard(Effect.forkScoped(Effect.scoped(process(options))))

/** The processor on one node of the cluster; it moves to a survivor with its runner's shards. */
export const singletonLayer = (options: InboundOptions) => Singleton.make("smsgw/inbound", Effect.scoped(process(options)))
