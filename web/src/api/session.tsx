/**
 * The browser session: on load the refresh cookie is traded for an access token (kept in memory only), then the
 * profile (`/v1/me`) says who is signed in, in which organisation, with which role. Sign-in, organisation switch,
 * sign-out and sign-out everywhere go through here; the query cache is emptied whenever the identity changes.
 */
import { useQueryClient } from "@tanstack/react-query"
import { createContext, useCallback, useContext, useEffect, useMemo, useState } from "react"
import type { ReactNode } from "react"
import { api, onSessionEnded, refreshAccessToken, setAccessToken, unwrap } from "./client.ts"
import { toProblem } from "./problem.ts"
import type { Ok } from "./types.ts"

export type Me = Ok<"/v1/me", "get">
export type Role = Me["role"]

const rank: Record<Role, number> = { viewer: 0, member: 1, moderator: 2, admin: 3, owner: 4 }
export const atLeast = (role: Role, minimum: Role) => rank[role] >= rank[minimum]

type State =
  | { readonly status: "loading" }
  | { readonly status: "signed-out" }
  | { readonly status: "signed-in"; readonly me: Me }

interface Session {
  readonly state: State
  readonly signIn: (email: string, password: string) => Promise<void>
  readonly switchOrganisation: (organisationId: string) => Promise<void>
  readonly signOut: () => Promise<void>
  readonly signOutEverywhere: () => Promise<void>
  readonly reload: () => Promise<void>
}

const SessionContext = createContext<Session | undefined>(undefined)

const loadMe = () => unwrap(api.GET("/v1/me"))

export const SessionProvider = ({ children }: { readonly children: ReactNode }) => {
  const [state, setState] = useState<State>({ status: "loading" })
  const queries = useQueryClient()

  const enter = useCallback(async () => {
    queries.clear()
    setState({ status: "signed-in", me: await loadMe() })
  }, [queries])

  const leave = useCallback(() => {
    setAccessToken(undefined)
    queries.clear()
    setState({ status: "signed-out" })
  }, [queries])

  useEffect(() => {
    onSessionEnded(leave)
    let cancelled = false
    void refreshAccessToken().then(async (ok) => {
      if (cancelled) return
      if (!ok) return setState({ status: "signed-out" })
      try {
        await enter()
      } catch {
        leave()
      }
    })
    return () => {
      cancelled = true
    }
  }, [enter, leave])

  const signIn = useCallback(async (email: string, password: string) => {
    const response = await fetch("/v1/auth/session", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email, password }),
      credentials: "same-origin"
    })
    if (!response.ok) throw await toProblem(response)
    setAccessToken(((await response.json()) as { accessToken: string }).accessToken)
    await enter()
  }, [enter])

  const switchOrganisation = useCallback(async (organisationId: string) => {
    await refreshAccessToken(organisationId)
    await enter()
  }, [enter])

  const signOut = useCallback(async () => {
    await fetch("/v1/auth/session", { method: "DELETE", credentials: "same-origin" })
    leave()
  }, [leave])

  const signOutEverywhere = useCallback(async () => {
    await unwrap(api.POST("/v1/me/sign-out-everywhere"))
    leave()
  }, [leave])

  const value = useMemo(
    () => ({ state, signIn, switchOrganisation, signOut, signOutEverywhere, reload: enter }),
    [state, signIn, switchOrganisation, signOut, signOutEverywhere, enter]
  )
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>
}

export const useSession = (): Session => {
  const session = useContext(SessionContext)
  if (session === undefined) throw new Error("useSession outside SessionProvider")
  return session
}

/** The signed-in user's profile; screens behind the sign-in gate only. */
export const useMe = (): Me => {
  const { state } = useSession()
  if (state.status !== "signed-in") throw new Error("useMe while not signed in")
  return state.me
}

/** Whether the signed-in user may do what needs `minimum` in the current organisation. */
export const useCan = (minimum: Role): boolean => atLeast(useMe().role, minimum)
