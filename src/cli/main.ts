/**
 * The `smsgw` command: serve, smsc-sim, admin, config, cdr.
 */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Effect, Layer, Logger } from "effect"
import { Command } from "effect/cli"
import { adminCommand } from "./admin.ts"
import { cdrCommand } from "./cdr.ts"
import { configCommand } from "./config.ts"
import { serve } from "./serve.ts"
import { smscSim } from "./smsc-sim.ts"
import { productVersion } from "../layers/Version.ts"

const smsgw = Command.make("smsgw").pipe(
  Command.withDescription("SMS Gateway Proxy: REST in, SMPP v3.4 out"),
  Command.withSubcommands([serve, smscSim, adminCommand, configCommand, cdrCommand])
)

smsgw.pipe(
  Command.run({ version: productVersion }),
  Effect.provide(Layer.mergeAll(NodeServices.layer, Logger.layer([Logger.consoleLogFmt]))),
  NodeRuntime.runMain
)
