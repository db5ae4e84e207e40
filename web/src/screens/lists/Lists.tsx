/**
 * Audiences: the organisation's contact lists with their contact counts and variables, newest first and paged, and
 * (members and above) a new list, opened at once for its first upload.
 */
import { Anchor, Button, Card, Code, Group, Stack, Table, Text, TextInput } from "@mantine/core"
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query"
import { useState } from "react"
import { Link, useLocation } from "wouter"
import { api, unwrap } from "../../api/client.ts"
import { useCan } from "../../api/session.tsx"
import { fieldError } from "../../components/Forms.tsx"
import { Page } from "../../components/Page.tsx"
import { Empty, ProblemAlert, QueryState } from "../../components/States.tsx"
import { formatNumber, formatTime, Pager, ScrollTable, useNewestFirstPages } from "../campaigns/shared.tsx"

const pageSize = 25

export const NewListForm = ({ onCreated, onCancel }: {
  readonly onCreated: (list: { readonly id: string; readonly name: string }) => void
  readonly onCancel?: () => void
}) => {
  const queries = useQueryClient()
  const [name, setName] = useState("")
  const [country, setCountry] = useState("")
  const create = useMutation({
    mutationFn: () =>
      unwrap(api.POST("/v1/lists", {
        body: { name: name.trim(), ...(country.trim() !== "" ? { defaultCountry: country.trim().toUpperCase() } : {}) }
      })),
    onSuccess: (list) => {
      void queries.invalidateQueries({ queryKey: ["/v1/lists"] })
      onCreated(list)
    }
  })
  const fieldLevel = fieldError(create.error, "name", "defaultCountry") !== undefined
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault()
        create.mutate()
      }}
    >
      <Stack gap="sm">
        {create.isError && !fieldLevel ? <ProblemAlert error={create.error} title="The list was not created" /> : null}
        <Group align="flex-start" grow preventGrowOverflow={false} wrap="wrap">
          <TextInput label="List name" required value={name} onChange={(e) => setName(e.currentTarget.value)}
            error={fieldError(create.error, "name")} miw={200} />
          <TextInput label="Default country" description="ISO code (DE, FR…): completes national numbers" maxLength={2}
            value={country} onChange={(e) => setCountry(e.currentTarget.value)} error={fieldError(create.error, "defaultCountry")} miw={160} />
        </Group>
        <Group>
          <Button type="submit" loading={create.isPending}>Create list</Button>
          {onCancel !== undefined ? <Button variant="default" onClick={onCancel}>Cancel</Button> : null}
        </Group>
      </Stack>
    </form>
  )
}

const Lists = () => {
  const canEdit = useCan("member")
  const [creating, setCreating] = useState(false)
  const [, navigate] = useLocation()
  const pages = useNewestFirstPages()
  const lists = useQuery({
    queryKey: ["/v1/lists", pages.query],
    queryFn: () => unwrap(api.GET("/v1/lists", { params: { query: { limit: String(pageSize), ...pages.query } } }))
  })
  return (
    <Page
      title="Audiences"
      actions={canEdit && !creating ? <Button onClick={() => setCreating(true)}>New list</Button> : undefined}
    >
      {creating
        ? (
          <Card withBorder>
            <Text fw={600} mb="xs">New contact list</Text>
            <NewListForm onCreated={(list) => navigate(`/lists/${list.id}`)} onCancel={() => setCreating(false)} />
          </Card>
        )
        : null}
      <QueryState query={lists}>
        {(items) =>
          items.length === 0 && pages.page === 1
            ? <Empty>No contact lists yet.{canEdit ? " Create one, then upload a CSV file of numbers." : ""}</Empty>
            : (
              <Stack gap="xs">
                <ScrollTable minWidth={560} label="Contact lists">
                  <Table striped highlightOnHover aria-label="Contact lists">
                    <Table.Thead>
                      <Table.Tr>
                        <Table.Th>Name</Table.Th>
                        <Table.Th ta="right">Contacts</Table.Th>
                        <Table.Th>Variables</Table.Th>
                        <Table.Th>Country</Table.Th>
                        <Table.Th>Updated</Table.Th>
                      </Table.Tr>
                    </Table.Thead>
                    <Table.Tbody>
                      {items.map((l) => (
                        <Table.Tr key={l.id}>
                          <Table.Td><Anchor component={Link} href={`/lists/${l.id}`}>{l.name}</Anchor></Table.Td>
                          <Table.Td ta="right">{formatNumber(l.contacts)}</Table.Td>
                          <Table.Td>
                            <Group gap={4}>
                              {l.columns.length === 0 ? <Text size="sm" c="dimmed">none</Text> : null}
                              {l.columns.slice(0, 6).map((c) => <Code key={c}>{c}</Code>)}
                              {l.columns.length > 6 ? <Text size="sm">+{l.columns.length - 6}</Text> : null}
                            </Group>
                          </Table.Td>
                          <Table.Td>{l.defaultCountry ?? "—"}</Table.Td>
                          <Table.Td>{formatTime(l.updatedAt)}</Table.Td>
                        </Table.Tr>
                      ))}
                    </Table.Tbody>
                  </Table>
                </ScrollTable>
                <Pager
                  label="Pages of lists"
                  page={pages.page}
                  hasNext={items.length === pageSize}
                  onPrevious={pages.previous}
                  onNext={() => {
                    const last = items[items.length - 1]
                    if (last !== undefined) pages.next(last)
                  }}
                />
              </Stack>
            )}
      </QueryState>
    </Page>
  )
}

export default Lists
