/**
 * Inbound: what handsets sent to the organisation's numbers — replies, keywords, STOP and START — newest first, a page
 * at a time, filtered by sender and app. The filters live in the address, as on the Messages screen; opt-outs and
 * opt-ins stand out, so a campaign manager sees at a glance who left and who came back.
 */
import { Badge, Button, Group, Select, SimpleGrid, Stack, Table, Text, TextInput } from "@mantine/core"
import { keepPreviousData, useQuery } from "@tanstack/react-query"
import { useState } from "react"
import type { FormEvent } from "react"
import { useLocation, useSearch } from "wouter"
import { api, unwrap } from "../../api/client.ts"
import { fieldError } from "../../components/Forms.tsx"
import { CursorPager } from "../../components/CursorPager.tsx"
import { Page } from "../../components/Page.tsx"
import { Empty, QueryState } from "../../components/States.tsx"
import { localTime, useAppNames } from "../messages/labels.tsx"

const pageSize = 50

interface Filters {
  readonly from?: string
  readonly appId?: string
}

const readFilters = (search: string): Filters => {
  const params = new URLSearchParams(search)
  const from = params.get("from")?.trim()
  const appId = params.get("appId")?.trim()
  return { ...(from ? { from } : {}), ...(appId ? { appId } : {}) }
}

const writeFilters = (filters: Filters) => {
  const params = new URLSearchParams()
  if (filters.from?.trim()) params.set("from", filters.from.trim())
  if (filters.appId?.trim()) params.set("appId", filters.appId.trim())
  return params.toString()
}

const ActionBadge = ({ action }: { readonly action: "opt_out" | "opt_in" | null }) =>
  action === "opt_out"
    ? <Badge color="red" variant="light">Opted out</Badge>
    : action === "opt_in"
    ? <Badge color="teal" variant="light">Opted in</Badge>
    : null

const Inbound = () => {
  const search = useSearch()
  const [, navigate] = useLocation()
  const applied = readFilters(search)
  const [form, setForm] = useState<Filters>(applied)
  const [formFor, setFormFor] = useState(search)
  if (formFor !== search) {
    setFormFor(search)
    setForm(applied)
  }
  const [paging, setPaging] = useState<{ readonly search: string; readonly cursors: ReadonlyArray<string | undefined> }>({ search, cursors: [undefined] })
  const cursors = paging.search === search ? paging.cursors : [undefined]
  const cursor = cursors[cursors.length - 1]
  const appName = useAppNames()
  const apps = useQuery({ queryKey: ["/v1/apps"], queryFn: () => unwrap(api.GET("/v1/apps")) })

  const results = useQuery({
    queryKey: ["/v1/inbound", applied, cursor],
    queryFn: () =>
      unwrap(api.GET("/v1/inbound", {
        params: {
          query: {
            ...(applied.from !== undefined ? { from: applied.from } : {}),
            ...(applied.appId !== undefined ? { appId: applied.appId } : {}),
            limit: String(pageSize),
            ...(cursor !== undefined ? { cursor } : {})
          }
        }
      })),
    placeholderData: keepPreviousData,
    refetchInterval: 15_000
  })

  const submit = (event: FormEvent) => {
    event.preventDefault()
    const query = writeFilters(form)
    navigate(`/inbound${query === "" ? "" : `?${query}`}`)
  }
  const problem = (key: string) => fieldError(results.error, `query.${key}`)

  return (
    <Page title="Inbound messages">
      <form onSubmit={submit} aria-label="Filter inbound messages">
        <Stack gap="sm">
          <SimpleGrid cols={{ base: 1, xs: 2, md: 3 }} spacing="sm">
            <TextInput
              label="From"
              placeholder="+4915112345678"
              value={form.from ?? ""}
              onChange={(e) => {
                const from = e.currentTarget.value
                setForm((f) => ({ ...f, from }))
              }}
              error={problem("from")}
            />
            <Select
              label="App"
              placeholder="Any app"
              clearable
              data={(apps.data ?? []).map((a) => ({ value: a.id, label: a.name }))}
              value={form.appId ?? null}
              onChange={(appId) => setForm((f) => ({ ...f, ...(appId === null ? { appId: "" } : { appId }) }))}
              error={problem("appId")}
            />
          </SimpleGrid>
          <Group gap="xs">
            <Button type="submit">Search</Button>
            <Button variant="default" onClick={() => navigate("/inbound")} disabled={search === ""}>Clear filters</Button>
          </Group>
        </Stack>
      </form>
      <QueryState query={results}>
        {(page) =>
          page.items.length === 0 && cursors.length === 1
            ? (
              <Empty>
                {search === ""
                  ? "No inbound messages yet: replies to your numbers appear here once an operator routes a number or keyword to one of your apps."
                  : "No inbound messages match these filters."}
              </Empty>
            )
            : (
              <Stack gap="sm" aria-busy={results.isFetching}>
                <Table.ScrollContainer minWidth={320}>
                  <Table striped verticalSpacing="xs" aria-label="Inbound messages">
                    <Table.Thead>
                      <Table.Tr>
                        <Table.Th>From</Table.Th>
                        <Table.Th>Text</Table.Th>
                        <Table.Th visibleFrom="sm">To</Table.Th>
                        <Table.Th visibleFrom="md">App</Table.Th>
                      </Table.Tr>
                    </Table.Thead>
                    <Table.Tbody>
                      {page.items.map((m) => (
                        <Table.Tr key={m.id}>
                          <Table.Td>
                            <Text size="sm" style={{ whiteSpace: "nowrap" }}>{m.from}</Text>
                            <Text size="xs" c="dimmed">{localTime(m.receivedAt)}</Text>
                          </Table.Td>
                          <Table.Td miw={150}>
                            <Group gap={6} wrap="wrap">
                              <Text size="sm" style={{ overflowWrap: "anywhere" }}>{m.text}</Text>
                              <ActionBadge action={m.action} />
                              {m.keyword !== null ? <Badge variant="outline" size="sm">{m.keyword}</Badge> : null}
                              {m.missingParts > 0
                                ? <Badge color="yellow" variant="light" size="sm">{`${m.missingParts} of ${m.parts + m.missingParts} parts missing`}</Badge>
                                : null}
                            </Group>
                          </Table.Td>
                          <Table.Td visibleFrom="sm"><Text size="sm">{m.to}</Text></Table.Td>
                          <Table.Td visibleFrom="md"><Text size="sm">{m.appId === null ? "—" : appName(m.appId)}</Text></Table.Td>
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

export default Inbound
