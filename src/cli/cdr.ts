/**
 * `smsgw cdr export --from --to`: writes every final message accepted in a time range as CDR files again, under a
 * prefix of its own (default `cdr-reexport/<run>/…`), for reconciliation against the regular export. It reads the
 * store the configuration names and writes to its object store; the regular export's batches are untouched.
 */
import { Console, Effect, Layer, Option, Runtime, Schema } from "effect"
import { Command, Flag } from "effect/cli"
import { CdrMetrics } from "../observability/Metrics.ts"
import * as CdrExport from "../pipeline/CdrExport.ts"
import { CdrStore } from "../storage/CdrStore.ts"
import { loadConfigFile } from "../layers/Config.ts"
import type { ConfigError } from "../layers/Config.ts"
import { migrate } from "../layers/Migrations.ts"
import { objectStoreLayer } from "../layers/Policy.ts"
import { sqlLayer } from "../layers/Storage.ts"

/** Printed once to stderr (exit 1); not logged again with a stack trace. */
export class CdrCliFailure extends Schema.TaggedError<CdrCliFailure>()("CdrCliFailure", { message: Schema.String }) {
  override readonly [Runtime.errorReported] = false
}

/** A time as the CLI takes it: an ISO 8601 date or date-time (UTC unless it names an offset). */
const parseTime = (flag: string, text: string) =>
  Effect.suspend(() => {
    const ms = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(text) ? `${text}T00:00:00Z` : text)
    return Number.isNaN(ms)
      ? Effect.fail(new CdrCliFailure({ message: `--${flag}: not an ISO 8601 date or date-time: ${text}` }))
      : Effect.succeed(ms)
  })

const exportCommand = Command.make(
  "export",
  {
    config: Flag.String("config").pipe(Flag.withAlias("c"), Flag.withDescription("Configuration file (YAML)"), Flag.withDefault("config/gateway.yaml")),
    from: Flag.String("from").pipe(Flag.withDescription("Messages accepted from this time (ISO 8601, e.g. 2026-12-01 or 2026-12-01T09:00:00Z)")),
    to: Flag.String("to").pipe(Flag.withDescription("…until before this time")),
    prefix: Flag.String("prefix").pipe(Flag.withDescription("Key prefix of the re-export"), Flag.withDefault("cdr-reexport")),
    name: Flag.String("name").pipe(Flag.withDescription("This run's folder under the prefix (default: the current time)"), Flag.optional)
  },
  (flags) => Effect.gen(function*() {
    const config = yield* loadConfigFile(flags.config).pipe(Effect.tapError((e) => Effect.sync(() => console.error(e.message))))
    const from = yield* parseTime("from", flags.from)
    const to = yield* parseTime("to", flags.to)
    if (from >= to) return yield* Effect.fail(new CdrCliFailure({ message: "--from must be before --to" }))
    const name = Option.getOrElse(flags.name, () => new Date().toISOString().replace(/[:.]/g, "").replace(/-/g, ""))
    if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/.test(name)) return yield* Effect.fail(new CdrCliFailure({ message: `--name: letters, digits, - and _ only: ${name}` }))
    if (!/^[A-Za-z0-9][A-Za-z0-9_/-]{0,62}$/.test(flags.prefix) || flags.prefix.includes("//") || flags.prefix.endsWith("/")) {
      return yield* Effect.fail(new CdrCliFailure({ message: `--prefix: letters, digits, -, _ and / between segments only: ${flags.prefix}` }))
    }
    if (flags.prefix === config.cdr.prefix || flags.prefix.startsWith(`${config.cdr.prefix}/`)) {
      return yield* Effect.fail(new CdrCliFailure({ message: `--prefix: outside the regular export's own prefix (${config.cdr.prefix}/)` }))
    }
    const layer = CdrExport.layer({ prefix: config.cdr.prefix, format: config.cdr.format, batchSize: config.cdr.batchSize }).pipe(
      Layer.provide(Layer.mergeAll(CdrStore.layer, objectStoreLayer(config), CdrMetrics.layer)),
      Layer.provide(Layer.effectDiscard(migrate.pipe(Effect.orDie))),
      Layer.provide(sqlLayer(config))
    )
    const summary = yield* Effect.gen(function*() {
      const exporter = yield* CdrExport.CdrExporter
      return yield* exporter.reexport({ from, to, prefix: flags.prefix, name })
    }).pipe(Effect.provide(layer))
    yield* Console.log(`${summary.records} records in ${summary.objects} files under ${flags.prefix}/${name}/`)
    for (const key of summary.keys) yield* Console.log(key)
  }).pipe(
    Effect.catch((error): Effect.Effect<never, ConfigError | CdrCliFailure> => {
      if (error._tag === "ConfigError") return Effect.fail(error)
      const message = error.message
      return Effect.sync(() => console.error(`smsgw cdr export: ${message}`)).pipe(
        Effect.andThen(Effect.fail(new CdrCliFailure({ message })))
      )
    })
  )
).pipe(Command.withDescription("Write the CDRs of messages accepted in [--from, --to) again, under a prefix of their own"))

export const cdrCommand = Command.make("cdr").pipe(
  Command.withDescription("Call detail records"),
  Command.withSubcommands([exportCommand])
)
