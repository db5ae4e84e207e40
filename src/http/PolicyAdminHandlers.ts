/**
 * Handlers of the policy history, counters, dry runs and blacklist search and upload (PolicyAdminApi.ts).
 */
import { Effect, Schedule, Stream } from "effect"
import { HttpIncomingMessage } from "effect/http"
import { HttpApiBuilder } from "effect/http-api"
import { CurrentPrincipal } from "../auth/Access.ts"
import { AccountStore } from "../auth/AccountStore.ts"
import { parseRecipient } from "../domain/Msisdn.ts"
import type { MessageClass, PolicyDocument } from "../domain/Policy.ts"
import { ContactPolicy } from "../pipeline/ContactPolicy.ts"
import type { PolicyTestResult } from "../pipeline/ContactPolicy.ts"
import { Blacklists } from "../policy/Blacklists.ts"
import { uploadParser, UploadTooManyNumbers } from "../policy/BlacklistUpload.ts"
import type { UploadReport } from "../policy/BlacklistUpload.ts"
import { PolicyClock } from "../policy/PolicyClock.ts"
import { PolicyConfig, validatePolicy } from "../policy/PolicyConfig.ts"
import type { StoredPolicyVersion } from "../policy/PolicyConfig.ts"
import { evaluationOrder } from "../policy/PolicyEngine.ts"
import { RuleCounts } from "../policy/RuleCounts.ts"
import { GatewayApi } from "./Api.ts"
import { MAX_UPLOAD_NUMBERS } from "./PolicyAdminApi.ts"
import { mayManage, superadmin, unavailable } from "./PoliciesHandlers.ts"
import { invalidField, NotFoundProblem, PayloadTooLargeProblem, ValidationProblem } from "./Problems.ts"
import { setResponseHeader } from "./ResponseHeaders.ts"

const iso = (ms: number) => new Date(ms).toISOString()
const MINUTE = 60_000
/** An SSE stream of the counters ends after this long: the client reconnects (and is authenticated again). */
const streamLifetime = "1 hour"


const notFound = (name: string) => new NotFoundProblem({ detail: `no blacklist ${name}` })

/** The body as read, failing once it passes `maxBytes` (a body without a declared length). */
const capBytes = (body: Stream.Stream<Uint8Array, unknown>, maxBytes: number | undefined) =>
  Stream.suspend(() => {
    let total = 0
    return body.pipe(
      Stream.orDie,
      Stream.mapArrayEffect((chunks) => {
        for (const chunk of chunks) total += chunk.length
        return maxBytes !== undefined && total > maxBytes
          ? setResponseHeader("connection", "close").pipe(
            Effect.andThen(Effect.fail(new PayloadTooLargeProblem({ detail: `the body exceeds ${maxBytes} bytes`, maxBytes })))
          )
          : Effect.succeed(chunks)
      })
    )
  })

/** The dry run's answer as the API shows it. */
const testView = (result: PolicyTestResult, subject: {
  readonly to: string
  readonly country: string | undefined
  readonly orgId: string
  readonly appId: string
  readonly messageClass: MessageClass
}, at: number) => ({
  ...(result.policyVersion !== undefined ? { policyVersion: result.policyVersion } : {}),
  evaluatedAt: iso(at),
  to: `+${subject.to}`,
  ...(subject.country !== undefined ? { country: subject.country } : {}),
  ...(subject.orgId !== "" ? { orgId: subject.orgId } : {}),
  ...(subject.appId !== "" ? { appId: subject.appId } : {}),
  messageClass: subject.messageClass,
  decision: result.decision,
  ...(result.ruleId !== undefined ? { ruleId: result.ruleId } : {}),
  ...(result.reason !== undefined ? { reason: result.reason } : {}),
  ...(result.retryAt !== undefined
    ? { retryAt: iso(result.retryAt), retryAfterSeconds: Math.max(0, Math.ceil((result.retryAt - at) / 1000)) }
    : {}),
  ...(result.firstMessageId !== undefined ? { firstMessageId: result.firstMessageId } : {}),
  rules: result.rules,
  unloadedLists: result.unloadedLists
})

export const PolicyAdminHandlers = HttpApiBuilder.group(
  GatewayApi,
  "policyAdmin",
  Effect.fn(function*(handlers) {
    const policies = yield* PolicyConfig
    const blacklists = yield* Blacklists
    const contactPolicy = yield* ContactPolicy
    const counts = yield* RuleCounts
    const accounts = yield* AccountStore
    const clock = yield* PolicyClock

    /** Writers' emails, looked up once per answer (a handful of operators write the policy). */
    const emailsOf = (versions: ReadonlyArray<StoredPolicyVersion>) =>
      Effect.gen(function*() {
        const ids = [...new Set(versions.map((v) => v.createdBy).filter((id): id is string => id !== null && id !== "config"))]
        const found = yield* Effect.forEach(ids, (id) =>
          accounts.getUser(id).pipe(
            Effect.map((user) => [id, user.email] as const),
            Effect.orElseSucceed(() => [id, undefined] as const)
          ), { concurrency: 4 })
        return new Map(found)
      })

    const who = (v: StoredPolicyVersion, emails: ReadonlyMap<string, string | undefined>) => {
      const email = v.createdBy === null ? undefined : emails.get(v.createdBy)
      return {
        ...(v.createdBy !== null ? { createdBy: v.createdBy } : {}),
        ...(email !== undefined ? { createdByEmail: email } : {}),
        ...(v.note !== null ? { note: v.note } : {})
      }
    }

    const statsNow = (minutes: number) =>
      Effect.gen(function*() {
        const live = yield* policies.refresh.pipe(Effect.catchTag("PolicyStoreFailure", unavailable))
        const until = Date.now()
        const since = Math.floor((until - minutes * MINUTE) / MINUTE) * MINUTE
        const totals = yield* counts.totals(since).pipe(Effect.catchTag("RuleCountsUnavailable", unavailable))
        const byRule = new Map<string, { admitted: number; refused: number; byReason: Record<string, number> }>()
        for (const t of totals) {
          const entry = byRule.get(t.ruleId) ?? { admitted: 0, refused: 0, byReason: {} }
          if (t.result === "admitted") entry.admitted += t.count
          else {
            entry.refused += t.count
            entry.byReason[t.result] = (entry.byReason[t.result] ?? 0) + t.count
          }
          byRule.set(t.ruleId, entry)
        }
        const empty = { admitted: 0, refused: 0, byReason: {} }
        const ordered = evaluationOrder(live.document.rules)
        const inPolicy = new Set(ordered.map((r) => r.id))
        const all = byRule.get("") ?? empty
        return {
          policyVersion: live.version,
          since: iso(since),
          until: iso(until),
          admitted: all.admitted,
          refused: all.refused,
          rules: [
            ...ordered.map((rule, position) => ({
              ruleId: rule.id,
              type: rule.type,
              enabled: rule.enabled !== false,
              position,
              ...(byRule.get(rule.id) ?? empty)
            })),
            ...[...byRule.entries()].filter(([id]) => id !== "" && !inPolicy.has(id)).sort(([a], [b]) => a < b ? -1 : 1)
              .map(([ruleId, c]) => ({ ruleId, ...c }))
          ]
        }
      })

    /** The list as the live policy defines it, if the caller may manage it; 404 otherwise (no existence leak). */
    const manageable = (name: string) =>
      Effect.gen(function*() {
        const principal = yield* CurrentPrincipal
        const current = yield* policies.refresh.pipe(Effect.catchTag("PolicyStoreFailure", unavailable))
        const list = (current.document.blacklists ?? []).find((l) => l.name === name)
        if (list === undefined || !mayManage(principal, list)) return yield* notFound(name)
        return { principal, list }
      })

    return handlers
      .handle("listVersions", ({ query }) =>
        Effect.gen(function*() {
          yield* superadmin
          const limit = query.limit ?? 50
          const live = policies.current().version
          const versions = yield* policies.history({ before: query.before, limit }).pipe(
            Effect.catchTag("PolicyStoreFailure", unavailable)
          )
          const emails = yield* emailsOf(versions)
          const last = versions.at(-1)
          return {
            versions: versions.map((v) => ({
              version: v.version,
              createdAt: iso(v.createdAt),
              ...who(v, emails),
              live: v.version === live,
              ...(v.document !== undefined ? { rules: v.document.rules.length, blacklists: v.document.blacklists?.length ?? 0 } : {}),
              ...(v.error !== undefined ? { error: v.error } : {})
            })),
            ...(versions.length === limit && last !== undefined && last.version > 1 ? { next: last.version } : {})
          }
        }))
      .handle("getVersion", ({ params }) =>
        Effect.gen(function*() {
          yield* superadmin
          const v = yield* policies.stored(params.version).pipe(Effect.catchTag("PolicyStoreFailure", unavailable))
          if (v === undefined) return yield* new NotFoundProblem({ detail: `no policy version ${params.version}` })
          const emails = yield* emailsOf([v])
          return {
            version: v.version,
            createdAt: iso(v.createdAt),
            ...who(v, emails),
            live: v.version === policies.current().version,
            ...(v.document !== undefined ? { document: v.document } : {}),
            ...(v.error !== undefined ? { error: v.error } : {})
          }
        }))
      .handle("stats", ({ query }) => Effect.andThen(superadmin, statsNow(query.minutes ?? 60)))
      .handle("statsStream", ({ query }) =>
        Effect.gen(function*() {
          yield* superadmin
          const minutes = query.minutes ?? 60
          return Stream.fromEffectSchedule(statsNow(minutes), Schedule.spaced("1 second")).pipe(
            Stream.interruptWhen(Effect.sleep(streamLifetime)),
            // A storage failure mid-stream ends it; the client reconnects.
            Stream.catch(() => Stream.empty)
          )
        }))
      .handle("test", ({ payload }) =>
        Effect.gen(function*() {
          yield* superadmin
          const recipient = parseRecipient(payload.to)
          if (recipient === undefined) return yield* invalidField("to", "must be a valid phone number in E.164 format, e.g. +4915112345678")
          let orgId = payload.orgId ?? ""
          let messageClass: MessageClass = payload.messageClass ?? "transactional"
          if (payload.appId !== undefined) {
            const app = yield* accounts.findAppById(payload.appId).pipe(Effect.catchTag("StoreFailure", unavailable))
            if (app._tag === "None") return yield* invalidField("appId", `no app ${payload.appId}`)
            if (payload.orgId !== undefined && payload.orgId !== app.value.orgId) {
              return yield* invalidField("orgId", `app ${payload.appId} belongs to another organisation`)
            }
            orgId = app.value.orgId
            messageClass = payload.messageClass ?? app.value.messageClass
          }
          let at = clock.now()
          if (payload.at !== undefined) {
            at = Date.parse(payload.at)
            if (Number.isNaN(at)) return yield* invalidField("at", "must be an ISO date-time")
          }
          let draft: PolicyDocument | undefined
          if (payload.policy !== undefined) {
            draft = yield* validatePolicy(payload.policy).pipe(
              Effect.mapError((e) => {
                const errors = e.errors.map((x) => ({ field: `policy.${x.field}`, message: x.message }))
                return new ValidationProblem({ detail: errors.map((x) => `${x.field}: ${x.message}`).join("; "), errors })
              })
            )
          }
          const subject = {
            orgId,
            appId: payload.appId ?? "",
            messageClass,
            to: recipient.msisdn,
            country: recipient.country,
            from: payload.from ?? "",
            text: payload.text
          }
          const result = yield* contactPolicy.test(subject, at, draft).pipe(
            Effect.catchTag("PolicyUnavailable", unavailable)
          )
          return testView(result, subject, at)
        }))
      .handle("searchEntries", ({ params, query }) =>
        Effect.gen(function*() {
          yield* manageable(params.name)
          const digits = (query.q ?? "").replace(/[\s-]/g, "").replace(/^\+/, "")
          if (!/^[0-9]*$/.test(digits) || digits.length > 15 || digits.startsWith("0")) {
            return yield* invalidField("query.q", "must be the start of an E.164 number: an optional +, then up to 15 digits, not starting with 0")
          }
          return yield* blacklists.search(params.name, digits, query.limit ?? 50).pipe(
            Effect.catchTag("UnknownBlacklist", () => Effect.fail(notFound(params.name)))
          )
        }))
      .handle("uploadEntries", ({ params, payload, query }) =>
        Effect.gen(function*() {
          const { principal, list } = yield* manageable(params.name)
          const max = yield* HttpIncomingMessage.MaxBodySize
          const parser = uploadParser({ maxNumbers: MAX_UPLOAD_NUMBERS })
          yield* Stream.runForEachArray(capBytes(payload, max === undefined ? undefined : Number(max)), (chunks) => {
            for (const chunk of chunks) {
              const failed = parser.push(chunk)
              if (failed !== undefined) {
                return Effect.fail(invalidField("body", `more than ${failed.maxNumbers.toLocaleString("en")} numbers: put a list this large in the list's file`))
              }
            }
            return Effect.void
          })
          const ended = parser.end()
          if (ended instanceof UploadTooManyNumbers) {
            return yield* invalidField("body", `more than ${ended.maxNumbers.toLocaleString("en")} numbers: put a list this large in the list's file`)
          }
          const report: UploadReport = ended
          if (report.values.length === 0) return yield* invalidField("body", "no number found in the file")
          // A file mostly not made of numbers is the wrong file (as the list loader judges its own files).
          if (report.invalid > report.values.length + report.duplicates) {
            const first = report.invalidLines[0]?.line ?? 0
            return yield* invalidField("body", `${report.invalid} of ${report.lines} lines are not numbers (first at line ${first}): nothing changed`)
          }
          const numbers = report.values.map((v) => `+${v}`)
          const mode = query.mode ?? "add"
          const result = yield* (mode === "add" ? blacklists.addEntries(list.name, numbers) : blacklists.removeEntries(list.name, numbers)).pipe(
            Effect.catchTags({
              InvalidField: (e) => Effect.fail(invalidField("body", e.message)),
              UnknownBlacklist: () => Effect.fail(notFound(list.name)),
              StoreUnavailable: unavailable
            })
          )
          // Who changed which list and how much; never the numbers themselves.
          yield* Effect.logInfo("blacklist entries uploaded").pipe(
            Effect.annotateLogs({ list: list.name, mode, numbers: numbers.length, changed: result.changed, userId: principal.userId ?? "" })
          )
          return {
            lines: report.lines,
            numbers: numbers.length,
            changed: result.changed,
            duplicates: report.duplicates,
            invalid: report.invalid,
            invalidLines: report.invalidLines,
            header: report.header
          }
        }))
  })
)
