/**
 * Stage 4 of the pipeline: blacklists and quiet hours here, caps and dedup by the recipients' bucket actors.
 */
import { Context, Duration, Effect, Layer, Stream } from "effect"
import type { PolicyDocument, PolicyRule, RejectionReason } from "../domain/Policy.ts"
import { blacklistObject } from "../domain/Policy.ts"
import { PolicyMetrics } from "../observability/PolicyMetrics.ts"
import { Blacklists } from "../policy/Blacklists.ts"
import { PolicyClock } from "../policy/PolicyClock.ts"
import { PolicyConfig } from "../policy/PolicyConfig.ts"
import type { PolicyVersion } from "../policy/PolicyConfig.ts"
import { bucketOf, compilePolicy, evaluationOrder, notApplicable } from "../policy/PolicyEngine.ts"
import type { CompiledPolicy, PolicySubject, Screen } from "../policy/PolicyEngine.ts"
import { RuleCounts } from "../policy/RuleCounts.ts"
import { PolicyDispatcher } from "./PolicyDispatcher.ts"
import type { PolicyUnavailable } from "./PolicyDispatcher.ts"

export type PolicyVerdict =
  /** `undo` gives back what the admission counted, for a message that is not accepted after all (store failure). */
  | { readonly _tag: "Admit"; readonly undo: () => Effect.Effect<void> }
  | { readonly _tag: "Reject"; readonly ruleId: string; readonly reason: RejectionReason; readonly retryAfterMs?: number }
  /** Dedup in `return_first` mode: the same message was accepted before, under `firstId`. */
  | { readonly _tag: "Duplicate"; readonly ruleId: string; readonly firstId: string }

/** What one rule did with a tested message, in the order the message met the rules. */
export interface RuleTrace {
  readonly ruleId: string
  readonly type: PolicyRule["type"]
  /**
   * passed: looked at it and let it through; refused / deferred: decided it; not_reached: an earlier rule decided;
   * not_applicable: does not look at this message (`detail` says why).
   */
  readonly outcome: "passed" | "refused" | "deferred" | "not_reached" | "not_applicable"
  readonly detail?: string
}

/** The answer of a dry run of the policy: the decision, the rule that took it, and what every rule did. */
export interface PolicyTestResult {
  /** The live version tested, or undefined for a draft document. */
  readonly policyVersion: number | undefined
  /** defer: quiet hours, the message may go at `retryAt` (a campaign waits; an API call is refused with retryAfter). */
  readonly decision: "admit" | "refuse" | "defer"
  readonly ruleId?: string
  readonly reason?: RejectionReason
  /** Dedup in return_first mode: the API would answer 202 with this earlier message's id, sending nothing. */
  readonly firstMessageId?: string
  readonly retryAt?: number
  readonly rules: ReadonlyArray<RuleTrace>
  /** Lists a draft names that this node has not loaded: tested as empty. */
  readonly unloadedLists: ReadonlyArray<string>
}

const nothingToUndo = () => Effect.void
const admit: PolicyVerdict = { _tag: "Admit", undo: nothingToUndo }
const undoTimeout = Duration.seconds(5)

/**
 * Stage 4 of the pipeline: the contact policy. Blacklists and quiet hours are decided here from the compiled
 * document; frequency caps and dedup by the recipient's bucket actor, the only writer of that recipient's counters
 * anywhere in the cluster, so a cap holds exactly however many nodes take requests.
 */
export class ContactPolicy extends Context.Service<ContactPolicy, {
  readonly check: (subject: PolicySubject, messageId: string) => Effect.Effect<PolicyVerdict, PolicyUnavailable>
  readonly version: () => number
  /**
   * The stateless part of `check` at `at` (epoch ms), with nothing counted, recorded or measured: blacklists and quiet
   * hours decided, the stateful checks (caps, dedup) only named. For dry runs.
   */
  readonly screen: (subject: PolicySubject, at: number) => Screen
  /**
   * A dry run of the whole policy for one message at `at`: blacklists and quiet hours decided here, caps and dedup by
   * the recipient's bucket from its counters as they are, with nothing counted, remembered or measured. With
   * `document`, that draft is tested instead of the live version (its caps read the counters of the rules' ids).
   */
  readonly test: (
    subject: PolicySubject,
    at: number,
    document?: PolicyDocument
  ) => Effect.Effect<PolicyTestResult, PolicyUnavailable>
}>()("smsgw/pipeline/ContactPolicy") {
  static readonly layer = (options: { readonly buckets: number }) =>
    Layer.effect(
      ContactPolicy,
      Effect.gen(function*() {
        const config = yield* PolicyConfig
        const blacklists = yield* Blacklists
        const dispatcher = yield* PolicyDispatcher
        const metrics = yield* PolicyMetrics
        const counts = yield* RuleCounts
        const clock = yield* PolicyClock

        const compile = (version: PolicyVersion) =>
          compilePolicy(version.version, version.document, blacklists.has)

        let compiled: CompiledPolicy = compile(config.current())
        let document: PolicyDocument = config.current().document
        const apply = (version: PolicyVersion) =>
          Effect.gen(function*() {
            if (version.version < compiled.version) return
            compiled = compile(version)
            document = version.document
            yield* blacklists.configure((version.document.blacklists ?? []).map((l) => ({ name: l.name, object: blacklistObject(l) })))
            yield* Effect.logInfo("policy applied").pipe(Effect.annotateLogs({ version: version.version }))
          })
        yield* apply(config.current())
        yield* config.changes.pipe(Stream.runForEach(apply), Effect.forkScoped)

        const rejected = (ruleId: string, reason: RejectionReason, now: number, retryAt?: number): PolicyVerdict => {
          metrics.decision(ruleId, reason)
          counts.refused(ruleId, reason, Date.now())
          return retryAt === undefined
            ? { _tag: "Reject", ruleId, reason }
            : { _tag: "Reject", ruleId, reason, retryAfterMs: Math.max(0, retryAt - now) }
        }

        const check = (subject: PolicySubject, messageId: string): Effect.Effect<PolicyVerdict, PolicyUnavailable> => {
          const now = clock.now()
          const screen = compiled.screen(subject, now)
          if (screen._tag === "Reject") return Effect.succeed(rejected(screen.ruleId, screen.reason, now, screen.retryAt))
          if (screen.checks.length === 0) {
            metrics.decision("", "admitted")
            counts.admitted(screen.applied, Date.now())
            return Effect.succeed(admit)
          }
          const bucket = bucketOf(subject.to, options.buckets)
          const request = { recipient: subject.to, now, messageId, checks: screen.checks }
          return dispatcher.decide(bucket, request).pipe(
            Effect.map((decision): PolicyVerdict => {
              switch (decision._tag) {
                case "Admit":
                  metrics.decision("", "admitted")
                  counts.admitted(screen.applied, Date.now())
                  return {
                    _tag: "Admit",
                    // Built only when needed: almost every admission is accepted.
                    undo: () => dispatcher.decide(bucket, { ...request, release: true }).pipe(
                      Effect.timeout(undoTimeout),
                      Effect.catchCause((cause) =>
                        Effect.logWarning("policy admission not given back; the recipient's counts include a message not accepted").pipe(
                          Effect.annotateLogs({ bucket, cause: String(cause) })
                        )
                      ),
                      Effect.asVoid
                    )
                  }
                case "Reject":
                  return rejected(decision.ruleId, decision.reason, now, decision.retryAt)
                case "Duplicate":
                  metrics.decision(decision.ruleId, "duplicate_returned")
                  counts.refused(decision.ruleId, "duplicate_returned", Date.now())
                  return decision
              }
            })
          )
        }

        /** What every rule of `doc` did, given the rule that decided (if any) and the rules that looked at it. */
        const traceOf = (doc: PolicyDocument, subject: PolicySubject, applied: ReadonlySet<string>, decider?: { id: string; deferred: boolean }) => {
          let decided = false
          return evaluationOrder(doc.rules).map((rule): RuleTrace => {
            const why = notApplicable(rule, subject)
            if (why !== undefined || !applied.has(rule.id)) {
              return { ruleId: rule.id, type: rule.type, outcome: "not_applicable", detail: why ?? "does not look at this message" }
            }
            if (decided) return { ruleId: rule.id, type: rule.type, outcome: "not_reached" }
            if (decider !== undefined && decider.id === rule.id) {
              decided = true
              return { ruleId: rule.id, type: rule.type, outcome: decider.deferred ? "deferred" : "refused" }
            }
            return { ruleId: rule.id, type: rule.type, outcome: "passed" }
          })
        }

        const test = (subject: PolicySubject, at: number, draft?: PolicyDocument) =>
          Effect.gen(function*() {
            const doc = draft ?? document
            const policy = draft === undefined ? compiled : compilePolicy(0, draft, blacklists.has)
            const loaded = new Set(blacklists.status().map((s) => s.name))
            const unloadedLists = draft === undefined
              ? []
              : (draft.blacklists ?? []).map((l) => l.name).filter((name) => !loaded.has(name))
            const base = { policyVersion: draft === undefined ? compiled.version : undefined, unloadedLists }
            // Every applicable rule, for the trace: the screen at a moment it refuses nothing would name them, so
            // they are taken from the subject directly (the same test the compiled policy makes).
            const applied = new Set(doc.rules.filter((r) => notApplicable(r, subject) === undefined).map((r) => r.id))
            const screen = policy.screen(subject, at)
            if (screen._tag === "Reject") {
              const deferred = screen.reason === "quiet_hours"
              return {
                ...base,
                decision: deferred ? "defer" : "refuse",
                ruleId: screen.ruleId,
                reason: screen.reason,
                ...(screen.retryAt !== undefined ? { retryAt: screen.retryAt } : {}),
                rules: traceOf(doc, subject, applied, { id: screen.ruleId, deferred })
              } satisfies PolicyTestResult
            }
            if (screen.checks.length === 0) {
              return { ...base, decision: "admit", rules: traceOf(doc, subject, applied) } satisfies PolicyTestResult
            }
            const request = { recipient: subject.to, now: at, messageId: `probe-${crypto.randomUUID()}`, checks: screen.checks, probe: true }
            const decision = yield* dispatcher.decide(bucketOf(subject.to, options.buckets), request)
            switch (decision._tag) {
              case "Admit":
                return { ...base, decision: "admit", rules: traceOf(doc, subject, applied) } satisfies PolicyTestResult
              case "Reject":
                return {
                  ...base,
                  decision: "refuse",
                  ruleId: decision.ruleId,
                  reason: decision.reason,
                  retryAt: decision.retryAt,
                  rules: traceOf(doc, subject, applied, { id: decision.ruleId, deferred: false })
                } satisfies PolicyTestResult
              case "Duplicate":
                return {
                  ...base,
                  decision: "refuse",
                  ruleId: decision.ruleId,
                  reason: "duplicate",
                  firstMessageId: decision.firstId,
                  rules: traceOf(doc, subject, applied, { id: decision.ruleId, deferred: false })
                } satisfies PolicyTestResult
            }
          })

        return ContactPolicy.of({
          check,
          version: () => compiled.version,
          screen: (subject, at) => compiled.screen(subject, at),
          test
        })
      })
    )
}
