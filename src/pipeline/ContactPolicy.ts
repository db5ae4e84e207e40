/**
 * Stage 3 of the pipeline: blacklists and quiet hours here, caps and dedup by the recipients' bucket actors.
 */
import { Context, Duration, Effect, Layer, Stream } from "effect"
import type { RejectionReason } from "../domain/Policy.ts"
import { blacklistObject } from "../domain/Policy.ts"
import { PolicyMetrics } from "../observability/PolicyMetrics.ts"
import { Blacklists } from "../policy/Blacklists.ts"
import { PolicyClock } from "../policy/PolicyClock.ts"
import { PolicyConfig } from "../policy/PolicyConfig.ts"
import type { PolicyVersion } from "../policy/PolicyConfig.ts"
import { bucketOf, compilePolicy } from "../policy/PolicyEngine.ts"
import type { CompiledPolicy, PolicySubject, Screen } from "../policy/PolicyEngine.ts"
import { PolicyDispatcher } from "./PolicyDispatcher.ts"
import type { PolicyUnavailable } from "./PolicyDispatcher.ts"

export type PolicyVerdict =
  /** `undo` gives back what the admission counted, for a message that is not accepted after all (store failure). */
  | { readonly _tag: "Admit"; readonly undo: () => Effect.Effect<void> }
  | { readonly _tag: "Reject"; readonly ruleId: string; readonly reason: RejectionReason; readonly retryAfterMs?: number }
  /** Dedup in `return_first` mode: the same message was accepted before, under `firstId`. */
  | { readonly _tag: "Duplicate"; readonly ruleId: string; readonly firstId: string }

const nothingToUndo = () => Effect.void
const admit: PolicyVerdict = { _tag: "Admit", undo: nothingToUndo }
const undoTimeout = Duration.seconds(5)

/**
 * Stage 3 of the pipeline: the contact policy. Blacklists and quiet hours are decided here from the compiled
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
}>()("smsgw/pipeline/ContactPolicy") {
  static readonly layer = (options: { readonly buckets: number }) =>
    Layer.effect(
      ContactPolicy,
      Effect.gen(function*() {
        const config = yield* PolicyConfig
        const blacklists = yield* Blacklists
        const dispatcher = yield* PolicyDispatcher
        const metrics = yield* PolicyMetrics
        const clock = yield* PolicyClock

        const compile = (version: PolicyVersion) =>
          compilePolicy(version.version, version.document, blacklists.has)

        let compiled: CompiledPolicy = compile(config.current())
        const apply = (version: PolicyVersion) =>
          Effect.gen(function*() {
            if (version.version < compiled.version) return
            compiled = compile(version)
            yield* blacklists.configure((version.document.blacklists ?? []).map((l) => ({ name: l.name, object: blacklistObject(l) })))
            yield* Effect.logInfo("policy applied").pipe(Effect.annotateLogs({ version: version.version }))
          })
        yield* apply(config.current())
        yield* config.changes.pipe(Stream.runForEach(apply), Effect.forkScoped)

        const rejected = (ruleId: string, reason: RejectionReason, now: number, retryAt?: number): PolicyVerdict => {
          metrics.decision(ruleId, reason)
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
            return Effect.succeed(admit)
          }
          const bucket = bucketOf(subject.to, options.buckets)
          const request = { recipient: subject.to, now, messageId, checks: screen.checks }
          return dispatcher.decide(bucket, request).pipe(
            Effect.map((decision): PolicyVerdict => {
              switch (decision._tag) {
                case "Admit":
                  metrics.decision("", "admitted")
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
                  return decision
              }
            })
          )
        }

        return ContactPolicy.of({ check, version: () => compiled.version, screen: (subject, at) => compiled.screen(subject, at) })
      })
    )
}
