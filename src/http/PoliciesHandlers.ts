/**
 * Handlers of the contact-policy and blacklist API.
 */
import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { CurrentPrincipal } from "../auth/Access.ts"
import type { Principal } from "../auth/Access.ts"
import { atLeast } from "../domain/Account.ts"
import type { BlacklistDefinition } from "../domain/Policy.ts"
import { blacklistObject } from "../domain/Policy.ts"
import type { BlacklistStatus } from "../policy/Blacklists.ts"
import { Blacklists } from "../policy/Blacklists.ts"
import { PolicyConfig } from "../policy/PolicyConfig.ts"
import type { PolicyVersion, UnreadablePolicyVersion } from "../policy/PolicyConfig.ts"
import { GatewayApi } from "./Api.ts"
import { ConflictProblem, ForbiddenProblem, NotFoundProblem, UnavailableProblem, ValidationProblem } from "./Problems.ts"

const iso = (ms: number) => new Date(ms).toISOString()

const policyView = (v: PolicyVersion, unreadable: ReadonlyArray<UnreadablePolicyVersion>) => ({
  version: v.version,
  createdAt: iso(v.createdAt),
  ...(v.createdBy !== null ? { createdBy: v.createdBy } : {}),
  ...(v.note !== null ? { note: v.note } : {}),
  ...(unreadable.length > 0 ? { unreadableVersions: unreadable } : {}),
  ...v.document
})

/**
 * A list and its load state. Where its file lives, its ETag and the last load error (which may name the bucket or
 * endpoint of the object store) are the operators' business: an organisation's admins see counts and freshness.
 */
const blacklistView = (definition: BlacklistDefinition, status: BlacklistStatus | undefined, superadmin: boolean) => ({
  name: definition.name,
  ...(superadmin ? { object: blacklistObject(definition) } : {}),
  ...(definition.org !== undefined ? { org: definition.org } : {}),
  ...(superadmin && status?.etag != null ? { etag: status.etag } : {}),
  baseEntries: status?.baseEntries ?? 0,
  added: status?.added ?? 0,
  removed: status?.removed ?? 0,
  ...(status?.loadedAt != null ? { loadedAt: iso(status.loadedAt) } : {}),
  ...(status?.loadMs != null ? { loadMs: status.loadMs } : {}),
  ...(status?.checkedAt != null ? { checkedAt: iso(status.checkedAt) } : {}),
  ...(status?.sizeBytes != null ? { sizeBytes: status.sizeBytes } : {}),
  ...(status !== undefined ? { entries: Math.max(0, status.baseEntries + status.added - status.removed) } : {}),
  invalidLines: status?.invalidLines ?? 0,
  ...(status !== undefined && status.duplicateLines > 0 ? { duplicateLines: status.duplicateLines } : {}),
  ...(superadmin && status?.lastError != null ? { lastError: status.lastError } : {}),
  stale: status?.stale ?? false
})

export const superadmin = Effect.flatMap(CurrentPrincipal, (principal) =>
  principal.superadmin
    ? Effect.succeed(principal)
    : Effect.fail(new ForbiddenProblem({ detail: "the contact policy is managed by superadmins only" })))

/** A global list: superadmins. An organisation's list: also that organisation's owners and admins. */
export const mayManage = (principal: Principal, list: BlacklistDefinition): boolean =>
  principal.superadmin ||
  (list.org !== undefined && principal.kind === "user" && principal.orgId === list.org && principal.role !== null &&
    atLeast(principal.role, "admin"))

export const unavailable = (e: { readonly message: string }) =>
  Effect.logError("policy storage unavailable").pipe(
    Effect.annotateLogs({ error: e.message }),
    Effect.andThen(Effect.fail(new UnavailableProblem({ detail: "storage is unavailable; retry later" })))
  )

export const PoliciesHandlers = HttpApiBuilder.group(
  GatewayApi,
  "policies",
  Effect.fn(function*(handlers) {
    const policies = yield* PolicyConfig
    const blacklists = yield* Blacklists

    /** The list as the live policy defines it, if the caller may manage it; 404 otherwise (no existence leak). */
    const manageable = (name: string) =>
      Effect.gen(function*() {
        const principal = yield* CurrentPrincipal
        const current = yield* policies.refresh.pipe(Effect.catchTag("PolicyStoreFailure", unavailable))
        const list = (current.document.blacklists ?? []).find((l) => l.name === name)
        if (list === undefined || !mayManage(principal, list)) {
          return yield* new NotFoundProblem({ detail: `no blacklist ${name}` })
        }
        return { principal, list }
      })

    const statusOf = (name: string) => blacklists.status().find((s) => s.name === name)

    const editEntries = (name: string, numbers: ReadonlyArray<string>, action: "add" | "remove") =>
      Effect.gen(function*() {
        const { principal, list } = yield* manageable(name)
        const result = yield* (action === "add" ? blacklists.addEntries(name, numbers) : blacklists.removeEntries(name, numbers)).pipe(
          Effect.catchTags({
            InvalidField: (e) =>
              Effect.fail(new ValidationProblem({ detail: `${e.field}: ${e.message}`, errors: [{ field: e.field, message: e.message }] })),
            UnknownBlacklist: () => Effect.fail(new NotFoundProblem({ detail: `no blacklist ${name}` })),
            StoreUnavailable: unavailable
          })
        )
        // Who changed which list and how much; never the numbers themselves.
        yield* Effect.logInfo("blacklist entries changed").pipe(
          Effect.annotateLogs({ list: list.name, action, requested: numbers.length, changed: result.changed, userId: principal.userId ?? "" })
        )
        return result
      })

    return handlers
      .handle("getPolicy", () =>
        Effect.andThen(
          superadmin,
          policies.refresh.pipe(
            Effect.map((version) => policyView(version, policies.unreadable())),
            Effect.catchTag("PolicyStoreFailure", unavailable)
          )
        ))
      .handle("putPolicy", ({ payload }) =>
        Effect.gen(function*() {
          const principal = yield* superadmin
          const { expectedVersion, note, ...document } = payload
          const trimmed = note?.trim()
          const version = yield* policies.put(document, {
            expectedVersion,
            actor: principal.userId,
            ...(trimmed !== undefined && trimmed !== "" ? { note: trimmed } : {})
          }).pipe(
            Effect.catchTags({
              PolicyInvalid: (e) =>
                Effect.fail(new ValidationProblem({ detail: e.errors.map((x) => `${x.field}: ${x.message}`).join("; "), errors: e.errors })),
              PolicyConflict: (e) =>
                Effect.fail(new ConflictProblem({ detail: `the policy changed: it is at version ${e.currentVersion}; read it and apply your change again` })),
              PolicyStoreFailure: unavailable
            })
          )
          yield* Effect.logInfo("policy replaced").pipe(Effect.annotateLogs({ version: version.version, userId: principal.userId ?? "" }))
          return policyView(version, policies.unreadable())
        }))
      .handle("listBlacklists", () =>
        Effect.gen(function*() {
          const principal = yield* CurrentPrincipal
          const current = yield* policies.refresh.pipe(Effect.catchTag("PolicyStoreFailure", unavailable))
          return (current.document.blacklists ?? []).filter((l) => mayManage(principal, l)).map((l) =>
            blacklistView(l, statusOf(l.name), principal.superadmin)
          )
        }))
      .handle("addEntries", ({ params, payload }) => editEntries(params.name, payload.numbers, "add"))
      .handle("removeEntries", ({ params, payload }) => editEntries(params.name, payload.numbers, "remove"))
      .handle("reloadBlacklist", ({ params }) =>
        Effect.gen(function*() {
          yield* superadmin
          const { list } = yield* manageable(params.name)
          const statuses = yield* blacklists.reload(params.name).pipe(
            Effect.catchTag("UnknownBlacklist", () => Effect.fail(new NotFoundProblem({ detail: `no blacklist ${params.name}` })))
          )
          return blacklistView(list, statuses.find((s) => s.name === params.name), true)
        }))
  })
)
