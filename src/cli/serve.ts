/**
 * `smsgw serve`: decode the configuration (each bad key printed once) and run the gateway; with `--check`, print the
 * configuration it would run with (secrets hidden) and exit instead.
 */
import { Console, Effect, Layer, Option } from "effect"
import { Command, Flag } from "effect/cli"
import { loadConfigFile } from "../layers/Config.ts"
import { gatewayLayer } from "../layers/Gateway.ts"
import * as Logging from "../observability/Logging.ts"
import { printableConfig } from "./config.ts"

export const serve = Command.make(
  "serve",
  {
    config: Flag.String("config").pipe(
      Flag.withAlias("c"),
      Flag.withDescription("Configuration file (YAML)"),
      Flag.withDefault("config/gateway.yaml")
    ),
    port: Flag.Int("port").pipe(Flag.withDescription("HTTP port, overriding http.port"), Flag.optional),
    check: Flag.Boolean("check").pipe(
      Flag.withDescription("Load and check the configuration (file and environment), print it with secrets hidden, and exit"),
      Flag.withDefault(false)
    )
  },
  Effect.fn(function*({ config: file, port, check }) {
    // Printed once, as the operator needs it (the key and what is wrong); the error itself is not logged again.
    const decoded = yield* loadConfigFile(file).pipe(Effect.tapError((e) => Effect.sync(() => console.error(e.message))))
    const config = Option.isSome(port) ? { ...decoded, http: { ...decoded.http, port: port.value } } : decoded
    if (check) return yield* Console.log(printableConfig(config).trimEnd())
    return yield* Effect.logInfo("starting gateway").pipe(
      Effect.annotateLogs({ config: file, links: config.links.length, storage: config.storage.kind }),
      Effect.andThen(Layer.launch(gatewayLayer(config))),
      Effect.provide(Logging.layer(config.log))
    )
  })
).pipe(Command.withDescription("Run the gateway (embedded mode by default)"))
