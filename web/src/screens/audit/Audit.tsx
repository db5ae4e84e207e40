/**
 * The organisation's audit log (owners and admins, as the API requires): newest first, filtered on the server by
 * action, actor (a member or an app), target and a time range, older entries loaded page by page with the API's
 * cursor (the last entry's time and id, so entries of the same millisecond are neither skipped nor repeated). The
 * filters live in the address, so a filtered view can be shared or bookmarked.
 */
import { Button, Card, Code, Group, NativeSelect, SimpleGrid, Stack, Table, Text, TextInput } from "@mantine/core"
import { useInfiniteQuery, useQuery } from "@tanstack/react-query"
import { useState } from "react"
import { useSearchParams } from "wouter"
import { api, unwrap } from "../../api/client.ts"
import type { Ok } from "../../api/types.ts"
import { fieldError } from "../../components/Forms.tsx"
import { Page } from "../../components/Page.tsx"
import { Empty, Loading, ProblemAlert } from "../../components/States.tsx"

type Entry = Ok<"/v1/audit", "get">[number]

const pageSize = 50

/** The filters as the address holds them: `actor` is `user:<id>` or `app:<id>`; times are datetime-local values. */
interface Filters {
  readonly action: string
  readonly actor: string
  readonly target: string
  readonly from: string
  readonly to: string
}

const filterKeys: ReadonlyArray<keyof Filters> = ["action", "actor", "target", "from", "to"]

const filtersOf = (params: URLSearchParams): Filters => ({
  action: params.get("action") ?? "",
  actor: params.get("actor") ?? "",
  target: params.get("target") ?? "",
  from: params.get("from") ?? "",
  to: params.get("to") ?? ""
})

/** A datetime-local value (the browser's time zone) as ISO; `to` takes in the whole minute it names. */
const isoOf = (local: string, endOfMinute: boolean): string | undefined => {
  if (local === "") return undefined
  const at = new Date(local).getTime()
  if (Number.isNaN(at)) return undefined
  return new Date(endOfMinute ? at + 59_999 : at).toISOString()
}

/** The API's query for the filters; empty filters are left out. */
const queryOf = (f: Filters): Record<string, string> => {
  const [kind, id] = f.actor.split(":", 2)
  const since = isoOf(f.from, false)
  const until = isoOf(f.to, true)
  return {
    ...(f.action !== "" ? { action: f.action } : {}),
    ...(kind === "user" && id !== undefined ? { actorUserId: id } : {}),
    ...(kind === "app" && id !== undefined ? { actorAppId: id } : {}),
    ...(f.target.trim() !== "" ? { target: f.target.trim() } : {}),
    ...(since !== undefined ? { since } : {}),
    ...(until !== undefined ? { until } : {})
  }
}

/** Names for ids: members and apps of the organisation; anything else (a removed member, a campaign) stays an id. */
const useNames = () => {
  const members = useQuery({ queryKey: ["/v1/members"], queryFn: () => unwrap(api.GET("/v1/members")) })
  const apps = useQuery({ queryKey: ["/v1/apps"], queryFn: () => unwrap(api.GET("/v1/apps")) })
  const users = new Map((members.data ?? []).map((m) => [m.userId, m.name]))
  const appNames = new Map((apps.data ?? []).map((a) => [a.id, a.name]))
  const target = (t: string | undefined) => {
    if (t === undefined) return "—"
    const [appId, keyId] = t.split("/", 2)
    if (keyId !== undefined && appId !== undefined && appNames.has(appId)) return `${appNames.get(appId)} · key ${keyId}`
    return users.get(t) ?? appNames.get(t) ?? t
  }
  const actor = (e: Entry) =>
    e.actorUserId !== undefined
      ? users.get(e.actorUserId) ?? e.actorUserId
      : e.actorAppId !== undefined
      ? `App ${appNames.get(e.actorAppId) ?? e.actorAppId}`
      : "System"
  const actorOptions = [
    { group: "Members", items: (members.data ?? []).map((m) => ({ value: `user:${m.userId}`, label: m.name })) },
    { group: "Apps", items: (apps.data ?? []).map((a) => ({ value: `app:${a.id}`, label: a.name })) }
  ]
  return { target, actor, actorOptions }
}

const FilterForm = ({ applied, onApply, error, actorOptions }: {
  readonly applied: Filters
  readonly onApply: (f: Filters) => void
  readonly error: unknown
  readonly actorOptions: ReturnType<typeof useNames>["actorOptions"]
}) => {
  const [draft, setDraft] = useState<Filters>(applied)
  const actions = useQuery({ queryKey: ["/v1/audit/actions"], queryFn: () => unwrap(api.GET("/v1/audit/actions")) })
  const set = (key: keyof Filters) => (e: { currentTarget: { value: string } }) => setDraft({ ...draft, [key]: e.currentTarget.value })
  const actionChoices = [...new Set([...(actions.data ?? []), ...(applied.action !== "" ? [applied.action] : [])])].sort()
  return (
    <Card withBorder component="form" aria-label="Filters" onSubmit={(e) => {
      e.preventDefault()
      onApply(draft)
    }}>
      <SimpleGrid cols={{ base: 1, xs: 2, md: 5 }} spacing="sm">
        <NativeSelect label="Action" value={draft.action} onChange={set("action")}
          data={[{ value: "", label: "Any action" }, ...actionChoices.map((a) => ({ value: a, label: a }))]}
          error={fieldError(error, "action")} />
        <NativeSelect label="Actor" value={draft.actor} onChange={set("actor")}
          data={[{ value: "", label: "Anyone" }, ...actorOptions.filter((g) => g.items.length > 0)]} />
        <TextInput label="Target" placeholder="a user, app or campaign id" value={draft.target} onChange={set("target")}
          error={fieldError(error, "target")} />
        <TextInput label="From" type="datetime-local" value={draft.from} onChange={set("from")} error={fieldError(error, "since")} />
        <TextInput label="To" type="datetime-local" value={draft.to} onChange={set("to")} error={fieldError(error, "until")} />
      </SimpleGrid>
      <Group mt="sm" gap="xs">
        <Button type="submit">Apply filters</Button>
        <Button variant="default" onClick={() => {
          const none = { action: "", actor: "", target: "", from: "", to: "" }
          setDraft(none)
          onApply(none)
        }}>
          Clear
        </Button>
      </Group>
    </Card>
  )
}

const Audit = () => {
  const [params, setParams] = useSearchParams()
  const filters = filtersOf(params)
  const query = queryOf(filters)
  const names = useNames()
  const log = useInfiniteQuery({
    queryKey: ["/v1/audit", query],
    initialPageParam: undefined as { readonly before: string; readonly beforeId: string } | undefined,
    queryFn: ({ pageParam }) =>
      unwrap(api.GET("/v1/audit", { params: { query: { ...query, limit: String(pageSize), ...pageParam } } })),
    getNextPageParam: (page) => {
      const last = page.at(-1)
      return page.length < pageSize || last === undefined ? undefined : { before: last.at, beforeId: last.id }
    }
  })
  const entries = log.data?.pages.flat() ?? []
  const filtered = Object.keys(query).length > 0
  const apply = (f: Filters) =>
    setParams(new URLSearchParams(filterKeys.flatMap((k) => f[k] === "" ? [] : [[k, f[k]]])))
  return (
    <Page title="Audit log">
      <FilterForm key={params.toString()} applied={filters} onApply={apply} error={log.error}
        actorOptions={names.actorOptions} />
      <Card withBorder>
        {log.isPending
          ? <Loading />
          : log.isError && entries.length === 0
          ? (
            <Stack>
              <ProblemAlert error={log.error} />
              <Button variant="light" w="fit-content" onClick={() => void log.refetch()}>Retry</Button>
            </Stack>
          )
          : entries.length === 0
          ? <Empty>{filtered ? "No entry matches these filters." : "The audit log is empty."}</Empty>
          : (
            <Stack gap="sm">
              <Text size="sm" c="dimmed" aria-live="polite">
                {entries.length} {entries.length === 1 ? "entry" : "entries"}{log.hasNextPage ? " so far" : ""}, newest first
                {filtered ? ", filtered" : ""}
              </Text>
              <Table.ScrollContainer minWidth={720} type="native" tabIndex={0} role="region" aria-label="Audit entries table">
                <Table verticalSpacing="xs" striped>
                  <Table.Thead>
                    <Table.Tr>
                      <Table.Th>Time</Table.Th>
                      <Table.Th>Action</Table.Th>
                      <Table.Th>Actor</Table.Th>
                      <Table.Th>Target</Table.Th>
                      <Table.Th>Detail</Table.Th>
                      <Table.Th>Address</Table.Th>
                    </Table.Tr>
                  </Table.Thead>
                  <Table.Tbody>
                    {entries.map((e) => (
                      <Table.Tr key={e.id}>
                        <Table.Td><Text size="sm" style={{ whiteSpace: "nowrap" }}>{new Date(e.at).toLocaleString()}</Text></Table.Td>
                        <Table.Td><Code>{e.action}</Code></Table.Td>
                        <Table.Td><Text size="sm">{names.actor(e)}</Text></Table.Td>
                        <Table.Td><Text size="sm" title={e.target}>{names.target(e.target)}</Text></Table.Td>
                        <Table.Td><Text size="sm" style={{ wordBreak: "break-word" }}>{e.detail ?? ""}</Text></Table.Td>
                        <Table.Td><Text size="sm" ff="monospace">{e.ip ?? ""}</Text></Table.Td>
                      </Table.Tr>
                    ))}
                  </Table.Tbody>
                </Table>
              </Table.ScrollContainer>
              {log.isFetchNextPageError ? <ProblemAlert error={log.error} title="Older entries could not be loaded" /> : null}
              {log.hasNextPage
                ? (
                  <Button variant="light" w="fit-content" loading={log.isFetchingNextPage} onClick={() => void log.fetchNextPage()}>
                    Load older entries
                  </Button>
                )
                : <Text size="sm" c="dimmed">That is the oldest entry{filtered ? " matching the filters" : ""}.</Text>}
            </Stack>
          )}
      </Card>
    </Page>
  )
}

export default Audit
