/**
 * Names for the API's bodies, taken from the generated OpenAPI types: `Ok<"/v1/apps", "get">` is what a GET of
 * /v1/apps answers, `Body<"/v1/apps", "post">` what a POST sends.
 */
import type { paths } from "../../generated/api.d.ts"

type Json<C> = C extends { content: { "application/json": infer J } } ? J : never

export type Ok<P extends keyof paths, M extends keyof paths[P]> = paths[P][M] extends { responses: infer R }
  ? R extends { 200: infer A } ? Json<A>
  : R extends { 201: infer A } ? Json<A>
  : R extends { 202: infer A } ? Json<A>
  : never
  : never

export type Body<P extends keyof paths, M extends keyof paths[P]> = paths[P][M] extends { requestBody?: infer B }
  ? Json<NonNullable<B>>
  : never
