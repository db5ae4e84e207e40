/**
 * The dashboard's one cache entry (`/v1/dashboard`): painted from the snapshot, then each stream event applied to it —
 * its figures replace the cached ones, its two series points replace (or append to) the points of the same minute, so
 * the hour's chart moves on without a reload.
 */
import { useQueryClient } from "@tanstack/react-query"
import { useCallback } from "react"
import type { Ok } from "../../api/types.ts"
import { useStream } from "../../components/CampaignHealth.tsx"

export type DashboardView = Ok<"/v1/dashboard", "get">

export const dashboardKey = ["/v1/dashboard"] as const

/** The points the snapshot has (an hour's minutes). */
const seriesLength = 60

export const applyEvent = (current: DashboardView | undefined, event: DashboardView): DashboardView => {
  if (current === undefined) return event
  const byMinute = new Map(current.series.map((p) => [p.at, p]))
  for (const p of event.series) byMinute.set(p.at, p)
  const series = [...byMinute.values()].sort((a, b) => a.at.localeCompare(b.at)).slice(-seriesLength)
  return { ...event, series }
}

/** Keeps the cached dashboard live while mounted. */
export const useLiveDashboard = () => {
  const client = useQueryClient()
  const onData = useCallback(
    (data: unknown) => client.setQueryData<DashboardView>(dashboardKey, (current) => applyEvent(current, data as DashboardView)),
    [client]
  )
  useStream("/v1/dashboard/stream", onData)
}
