/**
 * Messages: search the organisation's messages by id, number, client reference, status, app, campaign and time, newest
 * first, a page at a time. The filters live in the address (a search can be bookmarked, shared, and Back returns to
 * it); the pages follow the API's `next` cursor. A bad filter is shown next to its field, as the server names it.
 */
import { Anchor, Button, Collapse, Group, Select, SimpleGrid, Stack, Table, Text, TextInput } from "@mantine/core"
import { useMediaQuery } from "@mantine/hooks"
import { keepPreviousData, useQuery } from "@tanstack/react-query"
import { useState } from "react"
import type { FormEvent } from "react"
import { Link, useLocation, useSearch } from "wouter"
import { api, unwrap } from "../../api/client.ts"
import { fieldError } from "../../components/Forms.tsx"
import { CursorPager } from "../../components/CursorPager.tsx"
import { Page } from "../../components/Page.tsx"
import { Empty, QueryState } from "../../components/States.tsx"
import { localTime, statuses, StatusBadge, useAppNames } from "./labels.tsx"
import type { MessageStatus } from "./labels.tsx"

const filterKeys = ["id", "to", "clientRef", "status", "appId", "campaignId", "since", "until"] as const
type FilterKey = typeof filterKeys[number]
type Filters = Partial<Record<FilterKey, string>>

const pageSize = 50

/** Shown at once on a phone; the others behind "More filters" (a desktop shows all). */
const secondaryKeys: ReadonlyArray<FilterKey> = ["clientRef", "appId", "campaignId", "since", "until"]

const readFilters = (search: string): Filters => {
  const params = new URLSearchParams(search)
  const filters: Filters = {}
  for (const key of filterKeys) {
    const value = params.get(key)?.trim()
    if (value !== undefined && value !== "") filters[key] = value
  }
  return filters
}

const writeFilters = (filters: Filters) => {
  const params = new URLSearchParams()
  for (const key of filterKeys) {
    const value = filters[key]?.trim()
    if (value !== undefined && value !== "") params.set(key, value)
  }
  return params.toString()
}

/** A `datetime-local` value (the reader's zone) as the ISO instant the API takes; an unreadable one as typed. */
const instant = (local: string) => {
  const at = new Date(local)
  return Number.isNaN(at.getTime()) ? local : at.toISOString()
}

const isStatus = (s: string | undefined): s is MessageStatus => statuses.some((x) => x === s)

const useOptions = () => {
  const apps = useQuery({ queryKey: ["/v1/apps"], queryFn: () => unwrap(api.GET("/v1/apps")) })
  const campaigns = useQuery({
    queryKey: ["/v1/campaigns", { limit: 100 }],
    queryFn: () => unwrap(api.GET("/v1/campaigns", { params: { query: { limit: "100" } } }))
  })
  return {
    apps: (apps.data ?? []).map((a) => ({ value: a.id, label: a.name })),
    campaigns: (campaigns.data ?? []).map((c) => ({ value: c.id, label: c.name }))
  }
}

/** Select options that also hold the current value, when it came from the address but is not among them. */
const withValue = (options: ReadonlyArray<{ value: string; label: string }>, value: string | undefined) =>
  value === undefined || options.some((o) => o.value === value) ? [...options] : [{ value, label: value }, ...options]

const Messages = () => {
  const search = useSearch()
  const [, navigate] = useLocation()
  const applied = readFilters(search)
  const [form, setForm] = useState<Filters>(applied)
  const [formFor, setFormFor] = useState(search)
  // The address changed (Back, a link): the form shows what is searched.
  if (formFor !== search) {
    setFormFor(search)
    setForm(applied)
  }
  // Cursors of the pages seen for this search: the first page has none.
  const [paging, setPaging] = useState<{ readonly search: string; readonly cursors: ReadonlyArray<string | undefined> }>({ search, cursors: [undefined] })
  const cursors = paging.search === search ? paging.cursors : [undefined]
  const after = cursors[cursors.length - 1]
  const options = useOptions()
  const appName = useAppNames()
  const wide = useMediaQuery("(min-width: 48em)", true)
  const [more, setMore] = useState(() => secondaryKeys.some((k) => applied[k] !== undefined))
  const secondarySet = secondaryKeys.filter((k) => (form[k] ?? "") !== "").length

  const results = useQuery({
    queryKey: ["/v1/messages", applied, after],
    queryFn: () =>
      unwrap(api.GET("/v1/messages", {
        params: {
          query: {
            ...(applied.id !== undefined ? { id: applied.id } : {}),
            ...(applied.to !== undefined ? { to: applied.to } : {}),
            ...(applied.clientRef !== undefined ? { clientRef: applied.clientRef } : {}),
            // An unknown status from a hand-edited address goes as typed: the server names what is wrong with it.
            ...(applied.status !== undefined ? { status: applied.status as MessageStatus } : {}),
            ...(applied.appId !== undefined ? { appId: applied.appId } : {}),
            ...(applied.campaignId !== undefined ? { campaignId: applied.campaignId } : {}),
            ...(applied.since !== undefined ? { since: instant(applied.since) } : {}),
            ...(applied.until !== undefined ? { until: instant(applied.until) } : {}),
            limit: String(pageSize),
            ...(after !== undefined ? { after } : {})
          }
        }
      })),
    placeholderData: keepPreviousData
  })

  const set = (key: FilterKey) => (value: string | null) => setForm((f) => ({ ...f, [key]: value ?? "" }))
  const submit = (event: FormEvent) => {
    event.preventDefault()
    navigate(`/messages${writeFilters(form) === "" ? "" : `?${writeFilters(form)}`}`)
  }
  const problem = (key: string) => fieldError(results.error, `query.${key}`)
  // Called, not rendered as a component: a component made in render would remount its inputs on every keystroke.
  const secondaryFilters = () => (
    <>
            <TextInput label="Client reference" value={form.clientRef ?? ""} onChange={(e) => set("clientRef")(e.currentTarget.value)} error={problem("clientRef")} />
            <Select
              label="App"
              placeholder="Any app"
              clearable
              searchable
              data={withValue(options.apps, form.appId)}
              value={form.appId ?? null}
              onChange={set("appId")}
              error={problem("appId")}
            />
            <Select
              label="Campaign"
              placeholder="Any campaign"
              clearable
              searchable
              data={withValue(options.campaigns, form.campaignId)}
              value={form.campaignId ?? null}
              onChange={set("campaignId")}
              error={problem("campaignId")}
            />
            <TextInput label="From" type="datetime-local" step={1} value={form.since ?? ""} onChange={(e) => set("since")(e.currentTarget.value)} error={problem("since")} />
            <TextInput label="Until" type="datetime-local" step={1} value={form.until ?? ""} onChange={(e) => set("until")(e.currentTarget.value)} error={problem("until")} />
    </>
  )

  return (
    <Page title="Messages">
      <form onSubmit={submit} aria-label="Search messages">
        <Stack gap="sm">
          <SimpleGrid cols={{ base: 1, xs: 2, md: 4 }} spacing="sm">
            <TextInput label="Number" placeholder="+4915112345678" value={form.to ?? ""} onChange={(e) => set("to")(e.currentTarget.value)} error={problem("to")} />
            <TextInput label="Message id" value={form.id ?? ""} onChange={(e) => set("id")(e.currentTarget.value)} error={problem("id")} />
            <Select
              label="Status"
              placeholder="Any status"
              clearable
              data={statuses.map((s) => ({ value: s, label: s }))}
              value={isStatus(form.status) ? form.status : null}
              onChange={set("status")}
              error={problem("status")}
            />
            {wide ? secondaryFilters() : null}
          </SimpleGrid>
          {wide ? null : (
            <>
              <Button variant="subtle" size="xs" w="fit-content" onClick={() => setMore((m) => !m)} aria-expanded={more}>
                {more ? "Fewer filters" : `More filters${secondarySet > 0 ? ` (${secondarySet} set)` : ""}`}
              </Button>
              <Collapse expanded={more}>
                <SimpleGrid cols={{ base: 1, xs: 2 }} spacing="sm">{secondaryFilters()}</SimpleGrid>
              </Collapse>
            </>
          )}
          <Group gap="xs">
            <Button type="submit">Search</Button>
            <Button variant="default" onClick={() => navigate("/messages")} disabled={search === ""}>Clear filters</Button>
          </Group>
        </Stack>
      </form>
      <QueryState query={results}>
        {(page) =>
          page.items.length === 0 && cursors.length === 1
            ? <Empty>{search === "" ? "No messages yet: messages your apps and campaigns send appear here." : "No messages match these filters."}</Empty>
            : (
              <Stack gap="sm" aria-busy={results.isFetching}>
                <Table.ScrollContainer minWidth={320}>
                  <Table striped highlightOnHover verticalSpacing="xs" aria-label="Messages found">
                    <Table.Thead>
                      <Table.Tr>
                        <Table.Th>Message</Table.Th>
                        <Table.Th>To</Table.Th>
                        <Table.Th>Status</Table.Th>
                        <Table.Th visibleFrom="sm">App</Table.Th>
                        <Table.Th visibleFrom="md">Client reference</Table.Th>
                        <Table.Th visibleFrom="md">Reason</Table.Th>
                      </Table.Tr>
                    </Table.Thead>
                    <Table.Tbody>
                      {page.items.map((m) => (
                        <Table.Tr key={m.id}>
                          <Table.Td>
                            <Anchor component={Link} href={`/messages/${m.id}`} aria-label={`Message ${m.id}`} ff="monospace" size="sm">
                              {m.id.slice(0, 8)}
                            </Anchor>
                            <Text size="xs" c="dimmed">{localTime(m.createdAt)}</Text>
                          </Table.Td>
                          <Table.Td><Text size="sm" style={{ whiteSpace: "nowrap" }}>{m.to}</Text></Table.Td>
                          <Table.Td><StatusBadge status={m.status} /></Table.Td>
                          <Table.Td visibleFrom="sm">
                            <Text size="sm">{m.appId === undefined ? "—" : appName(m.appId)}</Text>
                          </Table.Td>
                          <Table.Td visibleFrom="md"><Text size="sm">{m.clientRef ?? "—"}</Text></Table.Td>
                          <Table.Td visibleFrom="md">
                            <Text size="sm">{m.reason === undefined ? "—" : m.ruleId === undefined ? m.reason : `${m.reason} (rule ${m.ruleId})`}</Text>
                          </Table.Td>
                        </Table.Tr>
                      ))}
                    </Table.Tbody>
                  </Table>
                </Table.ScrollContainer>
                <CursorPager cursors={cursors} next={page.next} count={page.items.length} noun={["message", "messages"]}
                  onMove={(moved) => setPaging({ search, cursors: moved })} />
              </Stack>
            )}
      </QueryState>
    </Page>
  )
}

export default Messages
