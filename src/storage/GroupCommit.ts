/**
 * Group commit: callers' writes queued and written together, each caller resuming when its batch is durable.
 */
import { Deferred, Effect, Exit, Queue } from "effect"
import type { Scope } from "effect"

interface Pending<Op, A, E> {
  readonly op: Op
  readonly deferred: Deferred.Deferred<A, E>
}

export interface GroupCommit<Op, A, E> {
  /** Enqueue one operation; completes when the batch holding it has committed (or failed). */
  readonly submit: (op: Op) => Effect.Effect<A, E>
  /** Operations waiting for the next commit. */
  readonly backlog: Effect.Effect<number>
}

/**
 * One writer fiber takes everything queued since its last commit and runs it as one batch, in order:
 * batches grow with load, so durability costs one transaction per batch, not per operation.
 */
export const make = <Op, A, E, R>(options: {
  readonly maxBatch: number
  readonly run: (ops: ReadonlyArray<Op>) => Effect.Effect<ReadonlyArray<A>, E, R>
}): Effect.Effect<GroupCommit<Op, A, E>, never, Scope.Scope | R> =>
  Effect.gen(function*() {
    const queue = yield* Queue.unbounded<Pending<Op, A, E>>()
    const runBatch = (batch: ReadonlyArray<Pending<Op, A, E>>) =>
      options.run(batch.map((p) => p.op)).pipe(
        Effect.exit,
        Effect.flatMap((exit) =>
          Effect.sync(() => {
            if (Exit.isSuccess(exit)) {
              const results = exit.value
              for (const [i, p] of batch.entries()) Deferred.doneUnsafe(p.deferred, Exit.succeed(results[i] as A))
            } else {
              for (const p of batch) Deferred.doneUnsafe(p.deferred, exit as Exit.Exit<never, E>)
            }
          })
        )
      )
    yield* Queue.takeBetween(queue, 1, options.maxBatch).pipe(
      Effect.flatMap(runBatch),
      Effect.forever,
      Effect.forkScoped
    )
    return {
      submit: (op: Op) =>
        Effect.suspend(() => {
          const deferred = Deferred.makeUnsafe<A, E>()
          Queue.offerUnsafe(queue, { op, deferred })
          return Deferred.await(deferred)
        }),
      backlog: Queue.size(queue)
    }
  })
