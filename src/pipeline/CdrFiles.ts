/**
 * An organisation's CDR files in the object store: listed by hour of acceptance, opened one at a time. Each key is
 * built from the caller's own organisation, so no listing or download can reach another's.
 */
import { Context, Effect, Layer, Option } from "effect"
import type { Scope } from "effect"
import { cdrDayFolder, cdrObjectKey, hourLabel, hourMs, isCdrFileName, parseCdrObjectKey } from "../domain/Cdr.ts"
import type { CdrFormat } from "../domain/Cdr.ts"
import { ObjectStore } from "../storage/ObjectStore.ts"
import type { ObjectStoreError, StreamedObject } from "../storage/ObjectStore.ts"

export interface CdrFile {
  /** The hour its messages were accepted in, UTC: "2026-12-03T14". */
  readonly hour: string
  readonly name: string
  readonly size: number
}

/** The most days one listing may span: a listing reads one folder per day. */
export const maxListDays = 31

const dayMs = 24 * hourMs

export class CdrFiles extends Context.Service<CdrFiles, {
  /** Files of hours in [from, to) (epoch ms), oldest first. */
  readonly list: (organisation: string, from: number, to: number) => Effect.Effect<ReadonlyArray<CdrFile>, ObjectStoreError>
  /** A file's size; None when there is none by that hour and name. */
  readonly find: (organisation: string, hour: number, name: string) => Effect.Effect<Option.Option<{ readonly size: number }>, ObjectStoreError>
  /** One file, open until the scope closes; None when there is none by that hour and name. */
  readonly open: (
    organisation: string,
    hour: number,
    name: string
  ) => Effect.Effect<Option.Option<StreamedObject>, ObjectStoreError, Scope.Scope>
}>()("smsgw/pipeline/CdrFiles") {
  static readonly layer = (options: { readonly prefix: string }) =>
    Layer.effect(
      CdrFiles,
      Effect.gen(function*() {
        const objects = yield* ObjectStore
        const list = (organisation: string, from: number, to: number) =>
          Effect.gen(function*() {
            const files: Array<CdrFile> = []
            // One folder per day (`…/yyyy/mm/dd/`), never the organisation's whole history.
            for (let day = Math.floor(from / dayMs) * dayMs; day < to; day += dayMs) {
              for (const o of yield* objects.list(`${cdrDayFolder(options.prefix, organisation, day / hourMs)}/`, { etags: false })) {
                const parsed = parseCdrObjectKey(options.prefix, organisation, o.key)
                if (parsed === undefined || parsed.hour * hourMs < from || parsed.hour * hourMs >= to) continue
                files.push({ hour: hourLabel(parsed.hour), name: parsed.name, size: o.size })
              }
            }
            return files
          })
        const keyOf = (organisation: string, hour: number, name: string): string | undefined => {
          if (!isCdrFileName(name)) return undefined
          const [run, format] = name.split(".") as [string, CdrFormat]
          return cdrObjectKey(options.prefix, organisation, hour, run, format)
        }
        const find = (organisation: string, hour: number, name: string) =>
          Effect.suspend(() => {
            const key = keyOf(organisation, hour, name)
            return key === undefined ? Effect.succeedNone : objects.head(key).pipe(Effect.map(Option.map((o) => ({ size: o.size }))))
          })
        const open = (organisation: string, hour: number, name: string) =>
          Effect.suspend(() => {
            const key = keyOf(organisation, hour, name)
            return key === undefined ? Effect.succeed(Option.none<StreamedObject>()) : objects.getStream(key)
          })
        return CdrFiles.of({ list, find, open })
      })
    )
}
