/**
 * Schema issues as an operator or integrator reads them: each bad field named by its dotted path, as the request or
 * the configuration file spells it (`links[0].port`, `routes[2].match.countries[0]`), with what is wrong with it.
 * The one formatter behind the configuration file, the API's validation problems, routing and policy documents.
 */
import { SchemaIssue } from "effect"

export type IssuePath = ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined

export interface FieldIssue {
  readonly field: string
  readonly message: string
}

/** `["links", 0, "port"]` → `links[0].port`, appended to `prefix` when one is given. */
export const fieldPath = (path: IssuePath, prefix = ""): string =>
  (path ?? []).reduce<string>((acc, segment) => {
    const key = typeof segment === "object" && segment !== null ? segment.key : segment
    return typeof key === "number" ? `${acc}[${key}]` : acc === "" ? String(key) : `${acc}.${String(key)}`
  }, prefix)

const formatter = SchemaIssue.makeFormatterStandardSchemaV1()

/** Every issue of a decoding failure, the document itself named `root`. */
export const fieldIssues = (issue: SchemaIssue.Issue, options: { readonly prefix?: string; readonly root?: string } = {}) =>
  formatter(issue).issues.map((i): FieldIssue => ({
    field: fieldPath(i.path, options.prefix) || (options.root ?? "(root)"),
    message: i.message
  }))
