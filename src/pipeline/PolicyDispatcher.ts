/**
 * Gathers policy checks per recipient bucket into one actor call (or decides in process when the bucket is here).
 */
import { Context, Deferred, Effect, Layer, Schedule, Schema } from "effect"
import { PolicyBuckets } from "../actors/PolicyBuckets.ts"
import { RecipientPolicy } from "../actors/RecipientPolicyProtocol.ts"
import type { Decision, DecisionRequest } from "../policy/RecipientState.ts"

/** No decision could be had from the recipient's bucket (its node is gone and no other took it over in time). */
export class PolicyUnavailable extends Schema.TaggedError<PolicyUnavailable>()("PolicyUnavailable", {
  message: Schema.String
}) {}

const maxBatch = 500

interface Pending {
  readonly request: DecisionRequest
  readonly done: Deferred.Deferred<Decision, PolicyUnavailable>
}

/**
 * Takes a recipient's decision to the bucket that owns it. A bucket this node owns decides at once, in process (a
 * decision is a few µs; an actor round trip ~50 µs even locally). Requests for buckets elsewhere are gathered for
 * `windowMs` into one actor call per bucket, so a busy bucket costs one round trip per window, not per message.
 */
export class PolicyDispatcher extends Context.Service<PolicyDispatcher, {
  readonly decide: (bucket: number, request: DecisionRequest) => Effect.Effect<Decision, PolicyUnavailable>
}>()("smsgw/pipeline/PolicyDispatcher") {
  static readonly layerWith = (options: { readonly windowMs: number; readonly timeoutMs: number }) =>
    Layer.effect(
      PolicyDispatcher,
      Effect.gen(function*() {
        const buckets = yield* PolicyBuckets
        const clientFor = yield* RecipientPolicy.client
        const scope = yield* Effect.scope
        const waiting = new Map<number, Array<Pending>>()

        // A bucket moving between nodes answers nothing for a few seconds: ask again until the new owner does.
        const remote = (bucket: number, requests: ReadonlyArray<DecisionRequest>) =>
          clientFor(String(bucket)).Decide({ requests }).pipe(
            Effect.timeout("3 seconds"),
            Effect.retry(Schedule.spaced("250 millis")),
            Effect.timeout(options.timeoutMs),
            Effect.mapError((e) => new PolicyUnavailable({ message: `bucket ${bucket}: ${String(e)}` }))
          )

        const flush = (bucket: number) =>
          Effect.suspend(() => {
            const batch = waiting.get(bucket) ?? []
            waiting.delete(bucket)
            if (batch.length === 0) return Effect.void
            return remote(bucket, batch.map((p) => p.request)).pipe(
              Effect.matchCauseEffect({
                onSuccess: (decisions) =>
                  Effect.sync(() =>
                    batch.forEach((p, i) => {
                      const decision = decisions[i]
                      Deferred.doneUnsafe(
                        p.done,
                        decision === undefined
                          ? Effect.fail(new PolicyUnavailable({ message: `bucket ${bucket} answered ${decisions.length} of ${batch.length}` }))
                          : Effect.succeed(decision)
                      )
                    })
                  ),
                onFailure: (cause) =>
                  Effect.logWarning("policy decision failed").pipe(
                    Effect.annotateLogs({ bucket, requests: batch.length, cause: String(cause) }),
                    Effect.andThen(Effect.sync(() => {
                      const failure = Effect.fail(new PolicyUnavailable({ message: `bucket ${bucket} did not answer` }))
                      for (const p of batch) Deferred.doneUnsafe(p.done, failure)
                    }))
                  )
              })
            )
          })

        const viaActor = (bucket: number, request: DecisionRequest) =>
          Effect.suspend(() => {
            const done = Deferred.makeUnsafe<Decision, PolicyUnavailable>()
            let batch = waiting.get(bucket)
            const fresh = batch === undefined
            if (batch === undefined) {
              batch = []
              waiting.set(bucket, batch)
            }
            batch.push({ request, done })
            const start = batch.length >= maxBatch
              ? Effect.forkIn(flush(bucket), scope)
              : fresh
              ? Effect.forkIn(Effect.sleep(options.windowMs).pipe(Effect.andThen(flush(bucket))), scope)
              : Effect.void
            return Effect.andThen(start, Deferred.await(done))
          })

        const decide = (bucket: number, request: DecisionRequest): Effect.Effect<Decision, PolicyUnavailable> => {
          const local = buckets.local(bucket)
          if (local === undefined) return viaActor(bucket, request)
          return local.decide([request]).pipe(
            Effect.flatMap((decisions) => {
              const decision = decisions[0]
              return decision === undefined ? viaActor(bucket, request) : Effect.succeed(decision)
            }),
            // The bucket moved away while this decision waited: its new owner takes it.
            Effect.catchTag("BucketMoved", () => viaActor(bucket, request))
          )
        }

        return PolicyDispatcher.of({ decide })
      })
    )
}
