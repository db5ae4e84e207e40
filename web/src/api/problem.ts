/**
 * Problems (RFC 9457, problem+json) as the application sees them: a detail to show, and field messages to place
 * next to their fields. Field names from the server are paths (`name`, `query.before`, `rules[2].max`).
 */
export interface FieldMessage {
  readonly field: string
  readonly message: string
}

export class ApiProblem extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
    readonly errors: ReadonlyArray<FieldMessage>,
    readonly body: Record<string, unknown>
  ) {
    super(detail)
  }

  static from(status: number, body: unknown): ApiProblem {
    const record = typeof body === "object" && body !== null ? body as Record<string, unknown> : {}
    const errors = Array.isArray(record["errors"])
      ? (record["errors"] as Array<unknown>).flatMap((e) =>
        typeof e === "object" && e !== null && typeof (e as FieldMessage).field === "string"
          ? [{ field: (e as FieldMessage).field, message: String((e as FieldMessage).message) }]
          : []
      )
      : []
    const title = typeof record["title"] === "string" ? record["title"] : status === 0 ? "Network error" : `Error ${status}`
    const detail = typeof record["detail"] === "string" ? record["detail"] : title
    return new ApiProblem(status, title, detail, errors, record)
  }

  /** The message for a field, matching its path exactly or by its last part (`payload.name` for `name`). */
  field(...names: ReadonlyArray<string>): string | undefined {
    const found = this.errors.find((e) =>
      names.some((name) => e.field === name || e.field.endsWith(`.${name}`) || e.field.startsWith(`${name}.`) || e.field.startsWith(`${name}[`))
    )
    return found?.message
  }
}

export const toProblem = async (response: Response): Promise<ApiProblem> => {
  let body: unknown
  try {
    body = await response.json()
  } catch {
    body = undefined
  }
  return ApiProblem.from(response.status, body)
}

export const asProblem = (error: unknown): ApiProblem | undefined =>
  error instanceof ApiProblem ? error : error instanceof Error ? new ApiProblem(0, "Network error", error.message, [], {}) : undefined
