/**
 * Form helpers: a mutation's problem split into the messages placed next to their fields and the rest shown above
 * the form.
 */
import { asProblem } from "../api/problem.ts"

/** The message for a field from a failed mutation, for a Mantine input's `error` prop. */
export const fieldError = (error: unknown, ...fields: ReadonlyArray<string>): string | undefined =>
  asProblem(error)?.field(...fields)

/** True when the problem has nothing to place next to one of `fields`: show it above the form instead. */
export const isFormLevel = (error: unknown, fields: ReadonlyArray<string>): boolean => {
  const problem = asProblem(error)
  if (problem === undefined) return false
  return problem.errors.length === 0 || problem.errors.some((e) => fields.every((f) => problem.field(f) === undefined || !e.field.includes(f)))
}
