/**
 * The signed-in screens: path, the screen (loaded when first visited, so the first load stays small), where it sits
 * in the navigation, and who may open it. Each area adds its routes to this table; the layout and the router read it.
 */
import { lazy } from "react"
import type { ComponentType, LazyExoticComponent } from "react"
import type { Role } from "./api/session.tsx"

export type Section = "Messaging" | "Organisation" | "Operations"

export interface ScreenRoute {
  readonly path: string
  readonly screen: LazyExoticComponent<ComponentType>
  /** Shown in the navigation under `section` when set. */
  readonly nav?: { readonly label: string; readonly section: Section }
  /** The least role that may open it (default viewer). */
  readonly minRole?: Role
  /** Operators only (the gateway's superadmin). */
  readonly superadmin?: boolean
}

export const routes: ReadonlyArray<ScreenRoute> = [
  { path: "/account", screen: lazy(() => import("./screens/account/Account.tsx")) },
  // Organisation
  { path: "/members", screen: lazy(() => import("./screens/members/Members.tsx")), nav: { label: "Members", section: "Organisation" } },
  { path: "/apps", screen: lazy(() => import("./screens/apps/Apps.tsx")), nav: { label: "Apps and API keys", section: "Organisation" } },
  { path: "/apps/:appId", screen: lazy(() => import("./screens/apps/AppDetail.tsx")) },
  {
    path: "/audit",
    screen: lazy(() => import("./screens/audit/Audit.tsx")),
    nav: { label: "Audit log", section: "Organisation" },
    minRole: "admin"
  }
]
