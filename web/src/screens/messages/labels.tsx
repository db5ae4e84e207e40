/**
 * How the Messages screens name and colour what the API says of a message: its status (a badge whose text carries the
 * meaning, the colour only repeats it), each timeline event's kind, and times in the reader's own zone.
 */
import { Badge } from "@mantine/core"
import { useQuery } from "@tanstack/react-query"
import { api, unwrap } from "../../api/client.ts"
import type { Ok } from "../../api/types.ts"

export type MessageView = Ok<"/v1/messages/{id}", "get">
export type MessagePage = Ok<"/v1/messages", "get">
export type MessageSummary = MessagePage["items"][number]
export type MessageStatus = MessageView["status"]
export type MessageEvent = MessageView["events"][number]

export const statuses: ReadonlyArray<MessageStatus> = [
  "accepted",
  "queued",
  "submitted",
  "delivered",
  "undelivered",
  "expired",
  "failed",
  "rejected"
]

/** Filled badges, white text on shades of at least 4.5:1 (Mantine's green and orange 9 are below it). */
const colours: Record<MessageStatus, string> = {
  accepted: "gray.7",
  queued: "gray.7",
  submitted: "blue.9",
  delivered: "#237a36",
  undelivered: "#b8400c",
  expired: "#b8400c",
  failed: "red.9",
  rejected: "grape.9"
}

export const StatusBadge = ({ status }: { readonly status: MessageStatus }) => (
  <Badge color={colours[status]} variant="filled" tt="none" miw="max-content">{status}</Badge>
)

type Kind = NonNullable<MessageEvent["kind"]>

const kinds: Record<Kind, string> = {
  accepted: "Accepted",
  refused: "Refused",
  submitted: "Submitted to the SMSC",
  retry: "Retry",
  failed: "Failed",
  receipt: "Delivery receipt",
  expired: "Expired",
  unknown_outcome: "Outcome unknown",
  resent: "Resent",
  recovered: "Recovered"
}

/** An event's title: its kind, or its status for events recorded before kinds were. */
export const eventTitle = (event: MessageEvent) => event.kind !== undefined ? kinds[event.kind] : event.status

/** A time in the reader's zone, to the second (times in the API are UTC). */
export const localTime = (iso: string) =>
  new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" })

/** The SMPP command_status as the spec writes it: name and hex code. */
export const commandStatusText = (event: MessageEvent) =>
  event.commandStatus === undefined
    ? undefined
    : `${event.commandStatusName ?? "command_status"} (0x${event.commandStatus.toString(16).padStart(2, "0")})`

/** The organisation's apps by id, for showing names where the API gives ids (the id while they load, or if unknown). */
export const useAppNames = () => {
  const apps = useQuery({ queryKey: ["/v1/apps"], queryFn: () => unwrap(api.GET("/v1/apps")) })
  return (id: string) => apps.data?.find((a) => a.id === id)?.name ?? id
}
