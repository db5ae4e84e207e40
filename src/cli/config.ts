/**
 * `smsgw config print`: the configuration this process would run with (the file, the environment's overrides and
 * every default filled in), as YAML with secrets hidden. For checking a deployment before or after starting it.
 */
import { Console, Effect } from "effect"
import { Command, Flag } from "effect/cli"
import { stringify } from "yaml"
import { loadConfigFile, redactSecrets } from "../layers/Config.ts"
import type { EffectiveConfig } from "../layers/Config.ts"
import { linkDefaults } from "../routing/Links.ts"

/**
 * The effective configuration as YAML, secrets replaced by "***". Links show their settings' defaults too (kept
 * unset in the database, applied where used), as a link seeded from this file would run.
 */
export const printableConfig = (config: EffectiveConfig): string => {
  const redacted = redactSecrets(config)
  return stringify({ ...redacted, links: redacted.links.map((link) => ({ ...link, ...linkDefaults(link) })) })
}

const print = Command.make(
  "print",
  {
    config: Flag.String("config").pipe(
      Flag.withAlias("c"),
      Flag.withDescription("Configuration file (YAML)"),
      Flag.withDefault("config/gateway.yaml")
    )
  },
  Effect.fn(function*({ config: file }) {
    // A bad file is reported as `serve` reports it: each bad key once, exit 1.
    const config = yield* loadConfigFile(file).pipe(Effect.tapError((e) => Effect.sync(() => console.error(e.message))))
    yield* Console.log(printableConfig(config).trimEnd())
  })
).pipe(Command.withDescription("Print the effective configuration (defaults filled in, secrets hidden) as YAML"))

export const configCommand = Command.make("config").pipe(
  Command.withDescription("The gateway's configuration"),
  Command.withSubcommands([print])
)
