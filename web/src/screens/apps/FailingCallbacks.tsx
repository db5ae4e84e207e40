/**
 * An app's callbacks that were not taken, for owners and admins (what `GET /v1/apps/{id}/callbacks` allows): the
 * failing ones (retried with backoff) and the dead ones (given up on after the retry window), newest first, a page at a
 * time along the API's cursor; read again every 5 s while open and on focus. Replay puts the selected ones, or every
 * dead one after a confirmation, back in the outbox with a fresh retry window; a replayed callback is not listed until
 * it fails again.
 */
import { Alert, Anchor, Button, Card, Checkbox, Group, Stack, Table, Tabs, Text } from "@mantine/core"
import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query"
import { useEffect, useState } from "react"
import { Link } from "wouter"
import { api, unwrap } from "../../api/client.ts"
import type { Body, Ok } from "../../api/types.ts"
import { ConfirmButton } from "../../components/Confirm.tsx"
import { CursorPager } from "../../components/CursorPager.tsx"
import { Empty, ProblemAlert, QueryState } from "../../components/States.tsx"
import { localTime } from "../messages/labels.tsx"

type State = "failing" | "dead"
type Callback = Ok<"/v1/apps/{appId}/callbacks", "get">["items"][number]

const pageSize = 50
const refreshMs = 5_000

const relative = new Intl.RelativeTimeFormat("en", { numeric: "auto" })
const units: ReadonlyArray<readonly [Intl.RelativeTimeFormatUnit, number]> = [
  ["day", 86_400_000],
  ["hour", 3_600_000],
  ["minute", 60_000],
  ["second", 1_000]
]

/** "in 30 seconds", "5 minutes ago": the largest unit that is at least one. */
const fromNow = (iso: string, now: number) => {
  const ms = Date.parse(iso) - now
  const [unit, size] = units.find(([, size]) => Math.abs(ms) >= size) ?? ["second", 1_000]
  return relative.format(Math.round(ms / size), unit)
}

/** The current time, moving every `everyMs`, so relative times stay true while the screen is open. */
const useNow = (everyMs: number) => {
  const [now, setNow] = useState(() => Date.now())
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), everyMs)
    return () => clearInterval(timer)
  }, [everyMs])
  return now
}

const When = ({ iso, now }: { readonly iso: string; readonly now: number }) => (
  <Stack gap={0}>
    <Text size="sm" style={{ whiteSpace: "nowrap" }}>{fromNow(iso, now)}</Text>
    <Text size="xs" c="dimmed" style={{ whiteSpace: "nowrap" }}>{localTime(iso)}</Text>
  </Stack>
)

/**
 * A message id's first 13 characters: a UUIDv7's time to the millisecond (the first 8 alone are shared by every id of
 * the same minute). A part of the link's accessible name, which is the whole id.
 */
/** What a callback is about, for labels: a message's status, or an inbound message. */
const subjectOf = (c: { readonly messageId?: string; readonly inboundId?: string }) =>
  c.messageId !== undefined ? `message ${c.messageId}` : `inbound message ${c.inboundId ?? ""}`

const shortId = (id: string) => id.slice(0, 13)

/** Why the last attempt failed: the gateway's words, with the HTTP status when the answer had one. */
const lastFailure = (c: Callback) =>
  c.lastError ?? (c.lastStatus !== undefined ? `HTTP ${c.lastStatus}` : "—")

const emptyText: Record<State, string> = {
  failing: "Nothing is failing: every callback tried so far was delivered.",
  dead: "No dead callback: none was given up on (or every one was replayed and delivered)."
}

const Rows = ({ items, state, selected, onSelect, now }: {
  readonly items: ReadonlyArray<Callback>
  readonly state: State
  readonly selected: ReadonlySet<string>
  readonly onSelect: (ids: ReadonlyArray<string>, on: boolean) => void
  readonly now: number
}) => {
  const all = items.length > 0 && items.every((c) => selected.has(c.id))
  const some = items.some((c) => selected.has(c.id))
  return (
    <Table.ScrollContainer minWidth={860} type="native" tabIndex={0} role="region" aria-label={`${state === "failing" ? "Failing" : "Dead"} callbacks table`}>
      <Table verticalSpacing="xs" striped>
        <Table.Thead>
          <Table.Tr>
            <Table.Th w={40}>
              <Checkbox aria-label="Select every callback on this page" checked={all} indeterminate={some && !all}
                onChange={(e) => onSelect(items.map((c) => c.id), e.currentTarget.checked)} />
            </Table.Th>
            <Table.Th>Message</Table.Th>
            <Table.Th>URL</Table.Th>
            <Table.Th ta="right">Attempts</Table.Th>
            <Table.Th>Last error</Table.Th>
            <Table.Th>{state === "failing" ? "Next attempt" : "Given up"}</Table.Th>
            <Table.Th>Queued</Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {items.map((c) => (
            <Table.Tr key={c.id}>
              <Table.Td>
                <Checkbox aria-label={`Select the callback of ${subjectOf(c)}`} checked={selected.has(c.id)}
                  onChange={(e) => onSelect([c.id], e.currentTarget.checked)} />
              </Table.Td>
              <Table.Td>
                {c.messageId !== undefined
                  ? (
                    <Anchor component={Link} href={`/messages/${c.messageId}`} aria-label={`Message ${c.messageId}`} ff="monospace" size="sm"
                      style={{ whiteSpace: "nowrap" }}>
                      {shortId(c.messageId)}
                    </Anchor>
                  )
                  : (
                    <Anchor component={Link} href={`/inbound`} aria-label={`Inbound message ${c.inboundId ?? ""}`} ff="monospace" size="sm"
                      style={{ whiteSpace: "nowrap" }}>
                      {shortId(c.inboundId ?? "")}
                    </Anchor>
                  )}
                {c.status === "" ? null : <Text size="xs" c="dimmed" style={{ whiteSpace: "nowrap" }}>{c.status === "received" ? "an inbound message" : `reports ${c.status}`}</Text>}
              </Table.Td>
              <Table.Td><Text size="sm" ff="monospace" style={{ wordBreak: "break-all" }} maw={240}>{c.url}</Text></Table.Td>
              <Table.Td ta="right"><Text size="sm">{c.attempts}</Text></Table.Td>
              <Table.Td><Text size="sm" style={{ wordBreak: "break-word" }} maw={260}>{lastFailure(c)}</Text></Table.Td>
              <Table.Td>
                {state === "failing"
                  ? (c.nextAttemptAt !== undefined ? <When iso={c.nextAttemptAt} now={now} /> : "—")
                  : (c.deadAt !== undefined ? <When iso={c.deadAt} now={now} /> : "—")}
              </Table.Td>
              <Table.Td><When iso={c.queuedAt} now={now} /></Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
    </Table.ScrollContainer>
  )
}

const List = ({ appId, state }: { readonly appId: string; readonly state: State }) => {
  const queries = useQueryClient()
  const now = useNow(refreshMs)
  // Cursors of the pages seen: the first page has none.
  const [cursors, setCursors] = useState<ReadonlyArray<string | undefined>>([undefined])
  const [selected, setSelected] = useState<ReadonlySet<string>>(new Set())
  const cursor = cursors[cursors.length - 1]
  const page = useQuery({
    queryKey: ["/v1/apps", appId, "callbacks", { state, cursor }],
    queryFn: () =>
      unwrap(api.GET("/v1/apps/{appId}/callbacks", {
        params: { path: { appId }, query: { state, limit: String(pageSize), ...(cursor !== undefined ? { cursor } : {}) } }
      })),
    staleTime: 0,
    refetchInterval: refreshMs,
    refetchOnWindowFocus: "always",
    placeholderData: keepPreviousData
  })
  const replay = useMutation({
    mutationFn: (body: Body<"/v1/apps/{appId}/callbacks/replay", "post">) =>
      unwrap(api.POST("/v1/apps/{appId}/callbacks/replay", { params: { path: { appId } }, body })),
    onSuccess: () => {
      setSelected(new Set())
      setCursors([undefined])
      return queries.invalidateQueries({ queryKey: ["/v1/apps", appId, "callbacks"] })
    }
  })
  const shown = page.data?.items ?? []
  // Only what is on the page now can be replayed: a row that left it (delivered, dead) is no longer selected.
  const chosen = shown.filter((c) => selected.has(c.id)).map((c) => c.id)
  const select = (ids: ReadonlyArray<string>, on: boolean) => {
    const next = new Set(selected)
    for (const id of ids) {
      if (on) next.add(id)
      else next.delete(id)
    }
    setSelected(next)
  }
  const requeued = replay.data?.requeued
  return (
    <Stack gap="sm">
      {requeued !== undefined
        ? (
          <Alert color="green" role="status" withCloseButton closeButtonLabel="Dismiss" onClose={() => replay.reset()}
            title={`${requeued} ${requeued === 1 ? "callback" : "callbacks"} replayed`}>
            {requeued === 0
              ? "None was waiting any more: they were delivered or replayed already."
              : "Posted again at once, in order per message, with a fresh 24-hour retry window. A replayed callback shows here again only if it fails."}
          </Alert>
        )
        : null}
      {/* "Replay all dead" shows its refusal in its own dialog. */}
      {replay.isError && replay.variables !== undefined && "ids" in replay.variables
        ? <ProblemAlert error={replay.error} title="Nothing was replayed" />
        : null}
      <QueryState query={page} notFound="App not found">
        {(data) =>
          data.items.length === 0 && cursors.length === 1
            ? <Empty>{emptyText[state]}</Empty>
            : (
              <Stack gap="sm" aria-busy={page.isFetching}>
                <Group gap="xs">
                  <Button size="sm" disabled={chosen.length === 0} loading={replay.isPending && replay.variables !== undefined && "ids" in replay.variables}
                    onClick={() => replay.mutate({ ids: chosen })}>
                    {chosen.length === 0 ? "Replay selected" : `Replay ${chosen.length} selected`}
                  </Button>
                  {state === "dead"
                    ? (
                      <ConfirmButton size="sm" variant="default" color="gray" title="Replay every dead callback?" confirmLabel="Replay all dead"
                        onConfirm={() => replay.mutateAsync({ all: true })}
                        message="Every dead callback of this app, on every page, is posted again at once with a fresh 24-hour retry window. Your receiver may see callbacks it refused a day ago; it can drop repeats by their Smsgw-Event-Id.">
                        Replay all dead
                      </ConfirmButton>
                    )
                    : null}
                </Group>
                <Rows items={data.items} state={state} selected={selected} onSelect={select} now={now} />
                <CursorPager cursors={cursors} next={data.next} count={data.items.length} noun={["callback", "callbacks"]}
                  suffix=", newest first" onMove={setCursors} />
              </Stack>
            )}
      </QueryState>
    </Stack>
  )
}

export const FailingCallbacks = ({ appId }: { readonly appId: string }) => (
  <Card withBorder component="section" aria-labelledby="failing-callbacks-heading">
    <Text fw={600} mb={4} id="failing-callbacks-heading" component="h2" size="md">Failing and dead callbacks</Text>
    <Text size="sm" c="dimmed" mb="sm">
      Callbacks your receiver did not take with a 2xx. Failing ones are retried with a growing pause for 24 hours after
      their status change; then they are dead, kept here until replayed. Delivered ones are not listed.
    </Text>
    <Tabs defaultValue="failing" keepMounted={false}>
      <Tabs.List>
        <Tabs.Tab value="failing">Failing</Tabs.Tab>
        <Tabs.Tab value="dead">Dead</Tabs.Tab>
      </Tabs.List>
      <Tabs.Panel value="failing" pt="md"><List appId={appId} state="failing" /></Tabs.Panel>
      <Tabs.Panel value="dead" pt="md"><List appId={appId} state="dead" /></Tabs.Panel>
    </Tabs>
  </Card>
)
