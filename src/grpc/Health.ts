/**
 * grpc.health.v1.Health: SERVING exactly when the readiness check behind /readyz says ready (storage answers and a
 * link is bound), NOT_SERVING otherwise. It answers for the server ("") and for smsgw.v1.MessageService; any other
 * name is NOT_FOUND (Check) or SERVICE_UNKNOWN (Watch), as the health protocol says. No authentication: load
 * balancers and orchestrators call it.
 */
import { create } from "@bufbuild/protobuf"
import { Code, ConnectError } from "@connectrpc/connect"
import type { ServiceImpl } from "@connectrpc/connect"
import { Effect } from "effect"
import { setTimeout as sleep } from "node:timers/promises"
import { Readiness } from "../pipeline/Readiness.ts"
import { HealthCheckResponse_ServingStatus as ServingStatus, HealthCheckResponseSchema, HealthListResponseSchema } from "./gen/grpc/health/v1/health_pb.ts"
import type { Health } from "./gen/grpc/health/v1/health_pb.ts"
import { MessageService } from "./gen/smsgw/v1/messages_pb.ts"

/** How often a Watch looks at readiness again (each look asks the store and the link actors). */
export const healthWatchIntervalMs = 1000

const services = ["", MessageService.typeName]

export const makeHealthService = Effect.gen(function*() {
  const readiness = yield* Readiness
  const context = yield* Effect.context<never>()
  const runPromise = Effect.runPromiseWith(context)
  const statusNow = (signal: AbortSignal) =>
    runPromise(Effect.map(readiness.check, (r) => r.ready ? ServingStatus.SERVING : ServingStatus.NOT_SERVING), { signal })

  return (draining: AbortSignal): ServiceImpl<typeof Health> => ({
    check: async (request, ctx) => {
      if (!services.includes(request.service)) throw new ConnectError(`unknown service ${request.service}`, Code.NotFound)
      return create(HealthCheckResponseSchema, { status: await statusNow(ctx.signal) })
    },
    list: async (_request, ctx) => {
      const status = await statusNow(ctx.signal)
      return create(HealthListResponseSchema, {
        statuses: Object.fromEntries(services.map((s) => [s, create(HealthCheckResponseSchema, { status })]))
      })
    },
    watch: async function*(request, ctx) {
      const known = services.includes(request.service)
      const signal = AbortSignal.any([ctx.signal, draining])
      let last: ServingStatus | undefined
      for (;;) {
        const status = known ? await statusNow(ctx.signal) : ServingStatus.SERVICE_UNKNOWN
        if (status !== last) {
          last = status
          yield create(HealthCheckResponseSchema, { status })
        }
        try {
          await sleep(healthWatchIntervalMs, undefined, { signal })
        } catch {
          if (ctx.signal.aborted) throw ConnectError.from(ctx.signal.reason)
          // Draining: the last word is NOT_SERVING, so a balancer moves this client elsewhere.
          yield create(HealthCheckResponseSchema, { status: ServingStatus.NOT_SERVING })
          return
        }
      }
    }
  })
})
