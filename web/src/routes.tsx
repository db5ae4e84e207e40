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
  { path: "/dashboard", screen: lazy(() => import("./screens/dashboard/Dashboard.tsx")), nav: { label: "Dashboard", section: "Messaging" } },
  { path: "/messages", screen: lazy(() => import("./screens/messages/Messages.tsx")), nav: { label: "Messages", section: "Messaging" } },
  { path: "/messages/:id", screen: lazy(() => import("./screens/messages/Message.tsx")) },
  { path: "/inbound", screen: lazy(() => import("./screens/inbound/Inbound.tsx")), nav: { label: "Inbound", section: "Messaging" } },
  { path: "/account", screen: lazy(() => import("./screens/account/Account.tsx")) },
  {
    path: "/policy",
    screen: lazy(() => import("./screens/policy/Policy.tsx")),
    nav: { label: "Contact policy", section: "Operations" },
    superadmin: true
  },
  { path: "/policy/edit", screen: lazy(() => import("./screens/policy/PolicyEdit.tsx")), superadmin: true },
  { path: "/policy/versions", screen: lazy(() => import("./screens/policy/PolicyVersions.tsx")), superadmin: true },
  {
    path: "/policy/blacklists",
    screen: lazy(() => import("./screens/policy/Blacklists.tsx")),
    nav: { label: "Blacklists", section: "Organisation" },
    minRole: "admin"
  },
  {
    path: "/operations/links",
    screen: lazy(() => import("./screens/operations/Links.tsx")),
    nav: { label: "Links", section: "Operations" },
    superadmin: true
  },
  {
    path: "/operations/pools",
    screen: lazy(() => import("./screens/operations/Pools.tsx")),
    nav: { label: "Pools", section: "Operations" },
    superadmin: true
  },
  {
    path: "/operations/routes",
    screen: lazy(() => import("./screens/operations/Routes.tsx")),
    nav: { label: "Routes", section: "Operations" },
    superadmin: true
  },
  // Messaging: campaigns, audiences, moderation. /campaigns/new before /campaigns/:id (the first match wins).
  { path: "/campaigns", screen: lazy(() => import("./screens/campaigns/Campaigns.tsx")), nav: { label: "Campaigns", section: "Messaging" } },
  { path: "/campaigns/new", screen: lazy(() => import("./screens/campaigns/NewCampaign.tsx")), minRole: "member" },
  { path: "/campaigns/:id", screen: lazy(() => import("./screens/campaigns/Campaign.tsx")) },
  { path: "/lists", screen: lazy(() => import("./screens/lists/Lists.tsx")), nav: { label: "Audiences", section: "Messaging" } },
  { path: "/lists/:id", screen: lazy(() => import("./screens/lists/ListDetail.tsx")) },
  {
    path: "/moderation",
    screen: lazy(() => import("./screens/moderation/Moderation.tsx")),
    nav: { label: "Moderation", section: "Messaging" },
    minRole: "moderator"
  },
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
