/**
 * The live state of links and pools (GET /v1/admin/state), kept current by its SSE stream every second: one cache
 * entry the links, pools and routes screens share.
 */
import { useQuery } from "@tanstack/react-query"
import { api, unwrap } from "../../api/client.ts"
import { useLiveQuery } from "../../api/sse.ts"
import type { Ok } from "../../api/types.ts"

export type Live = Ok<"/v1/admin/state", "get">
export type LinkLive = Live["links"][number]
export type PoolLive = Live["pools"][number]

const key = ["/v1/admin/state"]

export const useLive = () => {
  useLiveQuery("/v1/admin/state/stream", key)
  return useQuery({ queryKey: key, queryFn: () => unwrap(api.GET("/v1/admin/state")) })
}

export const healthColor: Record<string, string> = {
  bound: "green",
  throttled: "orange",
  degraded: "yellow",
  unbound: "red",
  disabled: "gray"
}

const format = new Intl.NumberFormat("en", { maximumFractionDigits: 2 })

/** A number as the API sends it (a non-finite one comes as its name). */
export const figure = (value: number | string): string => (typeof value === "number" ? format.format(value) : value)
