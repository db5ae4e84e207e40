/**
 * `smsgw smsc-sim`: the SMSC simulator as a process, with its HTTP fault-control endpoint.
 */
import { Effect, Option } from "effect"
import { Command, Flag } from "effect/cli"
import * as Simulator from "../smpp/Simulator.ts"
import { serveControl } from "../smpp/SimulatorControl.ts"

export const smscSim = Command.make(
  "smsc-sim",
  {
    port: Flag.Int("port").pipe(Flag.withDescription("SMPP port"), Flag.withDefault(2775)),
    host: Flag.String("host").pipe(Flag.withDescription("Address to listen on"), Flag.withDefault("127.0.0.1")),
    systemId: Flag.String("system-id").pipe(Flag.withDescription("Require this system_id"), Flag.optional),
    password: Flag.String("password").pipe(Flag.withDescription("Require this password"), Flag.optional),
    receiptDelayMs: Flag.Int("receipt-delay-ms").pipe(Flag.withDescription("Delay before each delivery receipt"), Flag.withDefault(200)),
    receiptState: Flag.Literals("receipt-state", ["DELIVRD", "UNDELIV", "EXPIRED", "REJECTD"]).pipe(
      Flag.withDescription("Final state every receipt reports"),
      Flag.withDefault("DELIVRD")
    ),
    receiptTlvs: Flag.Boolean("receipt-tlvs").pipe(
      Flag.withDescription("Also send receipted_message_id and message_state TLVs"),
      Flag.withDefault(false)
    ),
    controlPort: Flag.Int("control-port").pipe(
      Flag.withDescription("HTTP port for fault injection: POST/DELETE /faults, POST /drop, GET /stats"),
      Flag.optional
    )
  },
  Effect.fn(function*(flags) {
    const sim = yield* Simulator.start({
      port: flags.port,
      host: flags.host,
      ...(Option.isSome(flags.systemId) ? { systemId: flags.systemId.value } : {}),
      ...(Option.isSome(flags.password) ? { password: flags.password.value } : {}),
      receiptDelayMs: flags.receiptDelayMs,
      receiptState: flags.receiptState,
      receiptTlvs: flags.receiptTlvs
    })
    yield* Effect.logInfo("SMSC simulator listening").pipe(Effect.annotateLogs({ host: flags.host, port: sim.port }))
    if (Option.isSome(flags.controlPort)) {
      const control = yield* serveControl(sim, flags.controlPort.value)
      yield* Effect.logInfo("simulator control listening").pipe(Effect.annotateLogs({ port: control.port }))
    }
    return yield* Effect.never
  }, Effect.scoped)
).pipe(Command.withDescription("Run the SMSC simulator: a real SMPP server for tests, demos and benchmarks"))
