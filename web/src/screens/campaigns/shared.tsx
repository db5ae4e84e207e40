/**
 * What the campaign, audience and moderation screens share: campaign states as words and colours, the reasons a
 * recipient was held back or refused in plain language, number and time formats, paging by cursor, a confirmation
 * button, the retry rule for the preview and dry run (one at a time per organisation: a 429 is worth waiting for),
 * and the CSV export.
 */
import { Alert, Badge, Button, Group, Modal, Stack, Table, Text } from "@mantine/core"
import type { AlertProps, BadgeProps } from "@mantine/core"
import { useDisclosure } from "@mantine/hooks"
import { useState } from "react"
import type { ReactNode } from "react"
import { authedFetch } from "../../api/client.ts"
import { asProblem, toProblem } from "../../api/problem.ts"
import { atLeast, useMe } from "../../api/session.tsx"
import type { Ok } from "../../api/types.ts"
import { ProblemAlert } from "../../components/States.tsx"

export type CampaignView = Ok<"/v1/campaigns/{id}", "get">
export type CampaignState = CampaignView["state"]
export type Stats = Ok<"/v1/campaigns/{id}/stats", "get">
export type ListView = Ok<"/v1/lists/{id}", "get">

export const stateLabel: Record<CampaignState, string> = {
  draft: "Draft",
  pending_approval: "Waiting for approval",
  approved: "Approved",
  rejected: "Rejected",
  scheduled: "Scheduled",
  running: "Running",
  paused: "Paused",
  completed: "Completed",
  cancelled: "Cancelled"
}

const stateColor: Record<CampaignState, string> = {
  draft: "gray",
  pending_approval: "yellow",
  approved: "teal",
  rejected: "red",
  scheduled: "cyan",
  running: "blue",
  paused: "orange",
  completed: "green",
  cancelled: "dark"
}

export const campaignStates = Object.keys(stateLabel) as ReadonlyArray<CampaignState>

/**
 * Mantine's light variant writes shade 9 on shade 1: for green, teal, lime, yellow and orange that is below 4.5:1
 * (WCAG AA), so those keep their background and take the body's dark text.
 */
const readableLight = new Set(["dark", "gray", "red", "pink", "grape", "violet", "indigo", "blue", "cyan"])
const textOn = (color: string) => readableLight.has(color) ? {} : { c: "dark.9" }

/** A light badge whose text stays readable whatever its colour. */
export const Tag = ({ color = "blue", ...props }: BadgeProps & { readonly color?: string; readonly children?: ReactNode }) => (
  <Badge variant="light" radius="sm" tt="none" {...props} color={color} {...textOn(color)} />
)

/** A light alert whose title stays readable whatever its colour. */
export const Notice = ({ color = "blue", ...props }: AlertProps & { readonly color?: string; readonly children?: ReactNode }) => (
  <Alert variant="light" {...props} color={color} {...textOn(color)} />
)

/**
 * A table that scrolls sideways on a narrow screen; the scrolling region is named and reachable with the keyboard
 * (arrow keys scroll it), as WCAG asks of a scrollable region.
 */
export const ScrollTable = ({ label, minWidth, children }: { readonly label: string; readonly minWidth: number; readonly children: ReactNode }) => (
  <Table.ScrollContainer minWidth={minWidth} scrollAreaProps={{ viewportProps: { tabIndex: 0, role: "region", "aria-label": label } }}>
    {children}
  </Table.ScrollContainer>
)

/** The state in words (colour is never the only signal). */
export const StateBadge = ({ state }: { readonly state: CampaignState }) => <Tag color={stateColor[state]}>{stateLabel[state]}</Tag>

/** States in which the campaign has an audience and figures worth a progress bar. */
export const startedStates: ReadonlyArray<CampaignState> = ["running", "paused", "completed", "cancelled", "scheduled"]
export const isFinal = (state: CampaignState) => state === "completed" || state === "cancelled"

/** Why the campaign decided what it did about a recipient (or the network about its message), in words. */
const reasonWords: Record<string, string> = {
  blacklisted: "on a blacklist or opted out",
  frequency_cap: "frequency cap reached",
  duplicate: "duplicate of a recent message",
  quiet_hours: "quiet hours in the recipient's time",
  send_window: "outside the campaign's send window",
  no_route: "no route takes this number",
  missing_variable: "a template variable has no value",
  not_representable: "a character GSM-7 cannot carry",
  too_long: "longer than 255 parts"
}

export const explainReason = (reason: string | undefined): string => {
  if (reason === undefined || reason === "") return ""
  const known = reasonWords[reason]
  if (known !== undefined) return known
  if (reason.startsWith("invalid_")) return `invalid ${reason.slice("invalid_".length).replace(/_/g, " ")}`
  return reason.replace(/_/g, " ")
}

export const formatNumber = (n: number) => n.toLocaleString("en")

/** "1 message", "3 messages". */
export const count = (n: number, one: string, many = `${one}s`) => `${formatNumber(n)} ${n === 1 ? one : many}`

export const formatTime = (iso: string | undefined) => iso === undefined ? "—" : new Date(iso).toLocaleString("en-GB", {
  dateStyle: "medium",
  timeStyle: "short"
})

export const formatDuration = (value: number | string | undefined): string => {
  const seconds = finite(value)
  if (seconds === undefined) return "—"
  if (seconds < 1) return "under 1 s"
  if (seconds < 60) return `${Math.round(seconds)} s`
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`
  const hours = Math.floor(seconds / 3600)
  const minutes = Math.round((seconds % 3600) / 60)
  return hours < 48 ? `${hours} h ${minutes} min` : `${Math.round(hours / 24)} days`
}

/** A number the OpenAPI types allow as "Infinity" or "NaN" too (Schema.Number's encoding); those read as absent. */
export const finite = (x: number | string | undefined): number | undefined => {
  const n = typeof x === "string" ? Number(x) : x
  return n === undefined || !Number.isFinite(n) ? undefined : n
}

export const formatPercent = (ratio: number | string | undefined) => {
  const r = finite(ratio)
  return r === undefined ? "—" : `${(r * 100).toFixed(1)} %`
}

/** Who may change a campaign: its creator (member and above), or a moderator, admin or owner on any of them. */
export const useMayManage = () => {
  const me = useMe()
  return (campaign: { readonly createdBy: string }) =>
    atLeast(me.role, "moderator") || (atLeast(me.role, "member") && campaign.createdBy === me.user.id)
}

/**
 * The preview and the dry run run one at a time per organisation and answer 429 meanwhile: wait and ask again (a
 * refusal of another kind will not change).
 */
export const insightRetry = {
  retry: (count: number, error: Error) => {
    const status = asProblem(error)?.status ?? 0
    return count < 8 && (status === 429 || status === 0 || status >= 500)
  },
  retryDelay: (_count: number, error: Error) => {
    const seconds = asProblem(error)?.body["retryAfterSeconds"]
    return typeof seconds === "number" ? Math.min(seconds, 5) * 1000 : 2000
  }
} as const

/** Newest-first pages (lists, campaigns): the next page starts after the last item's `createdAt` and `id`. */
export const useNewestFirstPages = () => {
  const [stack, setStack] = useState<ReadonlyArray<{ readonly before: string; readonly beforeId: string }>>([])
  const cursor = stack[stack.length - 1]
  return {
    query: cursor === undefined ? {} : { before: cursor.before, beforeId: cursor.beforeId },
    page: stack.length + 1,
    next: (last: { readonly createdAt: string; readonly id: string }) => setStack([...stack, { before: last.createdAt, beforeId: last.id }]),
    previous: () => setStack(stack.slice(0, -1)),
    reset: () => setStack([])
  }
}

/** Pages in a fixed order whose answer names the `after` of the next page (contacts, recipients). */
export const useAfterPages = () => {
  const [stack, setStack] = useState<ReadonlyArray<number>>([])
  return {
    after: stack[stack.length - 1],
    page: stack.length + 1,
    next: (after: number) => setStack([...stack, after]),
    previous: () => setStack(stack.slice(0, -1)),
    reset: () => setStack([])
  }
}

export const Pager = ({ page, hasNext, onNext, onPrevious, label }: {
  readonly page: number
  readonly hasNext: boolean
  readonly onNext: () => void
  readonly onPrevious: () => void
  readonly label: string
}) => page === 1 && !hasNext ? null : (
  <Group justify="flex-end" gap="xs" role="navigation" aria-label={label}>
    <Button size="xs" variant="default" disabled={page === 1} onClick={onPrevious}>Previous</Button>
    <Text size="sm" aria-live="polite">Page {page}</Text>
    <Button size="xs" variant="default" disabled={!hasNext} onClick={onNext}>Next</Button>
  </Group>
)

/** A button that asks before it acts; the action's problem is shown in the dialog. */
export const ConfirmButton = ({ label, title, children, confirmLabel, color = "red", onConfirm, pending, error, ...rest }: {
  readonly label: string
  readonly title: string
  readonly children: ReactNode
  readonly confirmLabel: string
  readonly color?: string
  readonly onConfirm: () => Promise<unknown>
  readonly pending: boolean
  readonly error: unknown
  readonly size?: string
  readonly "aria-label"?: string
}) => {
  const [opened, { open, close }] = useDisclosure(false)
  return (
    <>
      <Button variant="default" c={`${color}.9`} size={rest.size ?? "sm"} onClick={open} aria-label={rest["aria-label"]}>
        {label}
      </Button>
      <Modal opened={opened} onClose={close} title={title} centered closeButtonProps={{ "aria-label": "Close" }}>
        <Stack>
          {children}
          {error !== null && error !== undefined ? <ProblemAlert error={error} /> : null}
          <Group justify="flex-end">
            <Button variant="default" onClick={close}>Keep it</Button>
            <Button color={color} loading={pending} onClick={() => void onConfirm().then(close, () => undefined)}>{confirmLabel}</Button>
          </Group>
        </Stack>
      </Modal>
    </>
  )
}

/** Downloads the campaign's recipients as CSV: the export needs the bearer token, so it is fetched, then saved. */
export const downloadExport = async (campaign: { readonly id: string; readonly name: string }) => {
  const response = await authedFetch(new Request(new URL(`/v1/campaigns/${encodeURIComponent(campaign.id)}/export`, window.location.origin)))
  if (!response.ok) throw await toProblem(response)
  const blob = await response.blob()
  const url = URL.createObjectURL(blob)
  const anchor = document.createElement("a")
  anchor.href = url
  anchor.download = `${campaign.name.replace(/[^\w.-]+/g, "-").replace(/^-+|-+$/g, "") || "campaign"}-${campaign.id}.csv`
  document.body.append(anchor)
  anchor.click()
  anchor.remove()
  setTimeout(() => URL.revokeObjectURL(url), 10_000)
}
