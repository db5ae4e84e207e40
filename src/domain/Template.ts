/**
 * Message templates: text with `{{variable}}` and `{{variable|default}}` placeholders, parsed once and rendered per
 * recipient from the contact's columns. A placeholder without a default whose variable a contact lacks (or has empty)
 * is missing: campaigns refuse such rows at creation, naming them.
 */

/** One piece of a parsed template: literal text, or a variable with an optional default. */
export type TemplatePart =
  | { readonly _tag: "Text"; readonly text: string }
  | { readonly _tag: "Var"; readonly name: string; readonly fallback: string | undefined }

export interface Template {
  readonly source: string
  readonly parts: ReadonlyArray<TemplatePart>
  /** Variables named by the template, in order of first use. */
  readonly variables: ReadonlyArray<string>
  /** Variables with no default: a contact must have them. */
  readonly required: ReadonlyArray<string>
}

export interface TemplateError {
  /** Offset in the source where the problem is. */
  readonly index: number
  readonly message: string
}

/** Variable names: a letter or underscore, then letters, digits, `_`, `-` or `.` (CSV headers as users write them). */
export const variableName = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/

/** Variables are matched case-insensitively against CSV columns: `{{FirstName}}` finds a `firstname` column. */
export const normaliseVariable = (name: string): string => name.trim().toLowerCase()

/** Parses `source`; an unclosed `{{`, an empty or malformed name is an error with its offset. */
export const parseTemplate = (source: string): { readonly template: Template } | { readonly error: TemplateError } => {
  const parts: Array<TemplatePart> = []
  const variables: Array<string> = []
  const required: Array<string> = []
  let at = 0
  while (at < source.length) {
    const open = source.indexOf("{{", at)
    if (open === -1) {
      parts.push({ _tag: "Text", text: source.slice(at) })
      break
    }
    if (open > at) parts.push({ _tag: "Text", text: source.slice(at, open) })
    const close = source.indexOf("}}", open + 2)
    if (close === -1) return { error: { index: open, message: "a \"{{\" is not closed by \"}}\"" } }
    const inner = source.slice(open + 2, close)
    const bar = inner.indexOf("|")
    const rawName = bar === -1 ? inner : inner.slice(0, bar)
    const name = normaliseVariable(rawName)
    if (!variableName.test(name)) {
      return { error: { index: open, message: `"{{${inner}}}" does not name a variable (letters, digits, _ . -)` } }
    }
    const fallback = bar === -1 ? undefined : inner.slice(bar + 1)
    parts.push({ _tag: "Var", name, fallback })
    if (!variables.includes(name)) variables.push(name)
    if (fallback === undefined && !required.includes(name)) required.push(name)
    at = close + 2
  }
  // A variable used once with a default and once without is required.
  return { template: { source, parts, variables, required } }
}

/** The first required variable a contact lacks (absent or empty), if any. */
export const missingVariable = (template: Template, vars: Readonly<Record<string, string>>): string | undefined => {
  for (const name of template.required) {
    const value = vars[name]
    if (value === undefined || value === "") return name
  }
  return undefined
}

/**
 * The text for one contact. `vars` keys are normalised (lower case); an empty value takes the default. A missing
 * required variable renders as empty: callers check `missingVariable` first.
 */
export const renderTemplate = (template: Template, vars: Readonly<Record<string, string>>): string => {
  let out = ""
  for (const part of template.parts) {
    if (part._tag === "Text") {
      out += part.text
    } else {
      const value = vars[part.name]
      out += value === undefined || value === "" ? (part.fallback ?? "") : value
    }
  }
  return out
}
