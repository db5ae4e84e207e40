/**
 * grpc.health.v1.Health: SERVING exactly when the readiness check behind /readyz says ready (storage answers and a
 * link is bound), NOT_SERVING otherwise. It answers for the server ("") and for smsgw.v1.MessageService; any other
 * name is NOT_FOUND (Check) or SERVICE_UNKNOWN (Watch), as the health protocol says. No authentication: load
 * balancers and orchestrators call it.
 *
 * Invariant: however many callers (Check, List, any number of Watch streams), readiness is computed at most once per
 * `healthWatchIntervalMs`: every caller shares the last answer while it is that fresh, and the check in progress.
 */
import { create } from "@bufbuild/protobuf"
import { status as Code } from "@grpc/grpc-js"
import type { handleServerStreamingCall, handleUnaryCall, UntypedServiceImplementation } from "@grpc/grpc-js"
import { Effect } from "effect"
import { setTimeout as sleep } from "node:timers/promises"
import { Readiness } from "../pipeline/Readiness.ts"
import type { Calls } from "./Calls.ts"
import { cancelSignal } from "./Calls.ts"
import { HealthCheckResponse_ServingStatus as ServingStatus, HealthCheckResponseSchema, HealthListResponseSchema } from "./gen/grpc/health/v1/health_pb.ts"
import type { HealthCheckRequest, HealthCheckResponse, HealthListRequest, HealthListResponse } from "./gen/grpc/health/v1/health_pb.ts"
import { MessageService } from "./gen/smsgw/v1/messages_pb.ts"

/** How often a Watch looks at readiness again, and how long one answer serves every caller. */
export const healthWatchIntervalMs = 1000

/**
 * The readiness answer shared by every health caller: a new check starts only when the last one started at least
 * `maxAgeMs` ago. The check itself is never cancelled by a caller going away (it is bounded by Readiness' own
 * timeouts); a caller stops waiting for it when its signal aborts. `checks` counts the checks run.
 */
export class SharedStatus {
  private last: { readonly at: number; readonly status: Promise<ServingStatus> } | undefined
  private count = 0
  private readonly check: () => Promise<ServingStatus>
  private readonly maxAgeMs: number
  private readonly now: () => number
  constructor(check: () => Promise<ServingStatus>, maxAgeMs: number, now: () => number = Date.now) {
    this.check = check
    this.maxAgeMs = maxAgeMs
    this.now = now
  }
  get checks(): number {
    return this.count
  }
  current(signal: AbortSignal): Promise<ServingStatus> {
    const now = this.now()
    if (this.last === undefined || now - this.last.at >= this.maxAgeMs) {
      this.count++
      // A failed check is NOT_SERVING for its interval, not an error for every caller.
      this.last = { at: now, status: this.check().catch(() => ServingStatus.NOT_SERVING) }
    }
    const status = this.last.status
    return new Promise((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason)
      const stop = () => reject(signal.reason)
      signal.addEventListener("abort", stop, { once: true })
      void status.then((s) => {
        signal.removeEventListener("abort", stop)
        resolve(s)
      })
    })
  }
}

const services = ["", MessageService.typeName]

export const makeHealthService = Effect.gen(function*() {
  const readiness = yield* Readiness
  const context = yield* Effect.context<never>()
  const runPromise = Effect.runPromiseWith(context)
  const shared = new SharedStatus(
    () => runPromise(Effect.map(readiness.check, (r) => r.ready ? ServingStatus.SERVING : ServingStatus.NOT_SERVING)),
    healthWatchIntervalMs
  )
  const statusNow = (signal: AbortSignal) => shared.current(signal)

  const implementation = (calls: Calls, draining: AbortSignal): UntypedServiceImplementation => {
    const check: handleUnaryCall<HealthCheckRequest, HealthCheckResponse> = (call, callback) => {
      if (!services.includes(call.request.service)) {
        return callback({ code: Code.NOT_FOUND, details: `unknown service ${call.request.service}` })
      }
      const done = calls.begin()
      statusNow(cancelSignal(call)).then(
        (status) => callback(null, create(HealthCheckResponseSchema, { status })),
        () => callback({ code: Code.CANCELLED, details: "cancelled" })
      ).finally(done)
    }
    const list: handleUnaryCall<HealthListRequest, HealthListResponse> = (call, callback) => {
      const done = calls.begin()
      statusNow(cancelSignal(call)).then(
        (status) =>
          callback(null, create(HealthListResponseSchema, {
            statuses: Object.fromEntries(services.map((s) => [s, create(HealthCheckResponseSchema, { status })]))
          })),
        () => callback({ code: Code.CANCELLED, details: "cancelled" })
      ).finally(done)
    }
    const watch: handleServerStreamingCall<HealthCheckRequest, HealthCheckResponse> = (call) => {
      const done = calls.begin()
      const cancelled = cancelSignal(call)
      const signal = AbortSignal.any([cancelled, draining])
      const known = services.includes(call.request.service)
      const loop = async () => {
        let last: ServingStatus | undefined
        for (;;) {
          const status = known ? await statusNow(cancelled).catch(() => undefined) : ServingStatus.SERVICE_UNKNOWN
          if (cancelled.aborted || status === undefined) return
          if (status !== last) {
            last = status
            call.write(create(HealthCheckResponseSchema, { status }))
          }
          const woke = await sleep(healthWatchIntervalMs, undefined, { signal }).then(() => true, () => false)
          if (cancelled.aborted) return
          if (!woke) {
            // Draining: the last word is NOT_SERVING, so a balancer moves this client elsewhere.
            call.write(create(HealthCheckResponseSchema, { status: ServingStatus.NOT_SERVING }))
            return void call.end()
          }
        }
      }
      void loop().finally(done)
    }
    return { check, list, watch }
  }
  return { implementation, readinessChecks: () => shared.checks }
})
