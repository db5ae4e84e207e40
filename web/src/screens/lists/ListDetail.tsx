/**
 * One contact list: its figures, a CSV upload with the per-line report (members and above), the contacts in upload
 * order, paged, each removable, and deleting the list (refused while a campaign not finished uses it: the answer
 * names the campaigns).
 */
import { ActionIcon, Anchor, Card, Code, Group, List, SimpleGrid, Stack, Table, Text, Tooltip } from "@mantine/core"
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query"
import { Link, useLocation, useParams } from "wouter"
import { api, unwrap } from "../../api/client.ts"
import { asProblem } from "../../api/problem.ts"
import { useCan } from "../../api/session.tsx"
import { Page } from "../../components/Page.tsx"
import { Empty, ProblemAlert, QueryState } from "../../components/States.tsx"
import { ConfirmButton, formatNumber, formatTime, Pager, ScrollTable, useAfterPages } from "../campaigns/shared.tsx"
import type { ListView } from "../campaigns/shared.tsx"
import { UploadForm } from "./Upload.tsx"

const pageSize = 50

const Contacts = ({ list }: { readonly list: ListView }) => {
  const canEdit = useCan("member")
  const queries = useQueryClient()
  const pages = useAfterPages()
  const contacts = useQuery({
    queryKey: ["/v1/lists", list.id, "contacts", pages.after],
    queryFn: () =>
      unwrap(api.GET("/v1/lists/{id}/contacts", {
        params: { path: { id: list.id }, query: { limit: String(pageSize), ...(pages.after !== undefined ? { after: String(pages.after) } : {}) } }
      }))
  })
  const remove = useMutation({
    mutationFn: (msisdn: string) =>
      unwrap(api.DELETE("/v1/lists/{id}/contacts/{msisdn}", { params: { path: { id: list.id, msisdn: msisdn.replace(/^\+/, "") } } })),
    onSuccess: () => queries.invalidateQueries({ queryKey: ["/v1/lists"] })
  })
  return (
    <Card withBorder>
      <Text fw={600} mb="xs" component="h2">Contacts</Text>
      {remove.isError ? <ProblemAlert error={remove.error} title="The contact was not removed" /> : null}
      <QueryState query={contacts}>
        {(page) =>
          page.contacts.length === 0 && pages.page === 1
            ? <Empty>No contacts yet.{canEdit ? " Upload a CSV file above." : ""}</Empty>
            : (
              <Stack gap="xs">
                <ScrollTable minWidth={480} label="Contacts">
                  <Table striped aria-label="Contacts">
                    <Table.Thead>
                      <Table.Tr>
                        <Table.Th>#</Table.Th>
                        <Table.Th>Number</Table.Th>
                        <Table.Th>Country</Table.Th>
                        <Table.Th>Variables</Table.Th>
                        {canEdit ? <Table.Th><span className="visually-hidden">Actions</span></Table.Th> : null}
                      </Table.Tr>
                    </Table.Thead>
                    <Table.Tbody>
                      {page.contacts.map((c) => (
                        <Table.Tr key={c.msisdn}>
                          <Table.Td>{c.pos}</Table.Td>
                          <Table.Td><Text size="sm" ff="monospace">{c.msisdn}</Text></Table.Td>
                          <Table.Td>{c.country ?? "—"}</Table.Td>
                          <Table.Td>
                            <Text size="sm">
                              {Object.entries(c.vars).map(([k, v]) => `${k}: ${v}`).join(" · ") || "—"}
                            </Text>
                          </Table.Td>
                          {canEdit
                            ? (
                              <Table.Td>
                                <Tooltip label="Remove from the list">
                                  <ActionIcon
                                    variant="subtle"
                                    color="red"
                                    aria-label={`Remove ${c.msisdn}`}
                                    loading={remove.isPending && remove.variables === c.msisdn}
                                    onClick={() => remove.mutate(c.msisdn)}
                                  >
                                    ✕
                                  </ActionIcon>
                                </Tooltip>
                              </Table.Td>
                            )
                            : null}
                        </Table.Tr>
                      ))}
                    </Table.Tbody>
                  </Table>
                </ScrollTable>
                <Pager
                  label="Pages of contacts"
                  page={pages.page}
                  hasNext={page.next !== undefined}
                  onPrevious={pages.previous}
                  onNext={() => {
                    if (page.next !== undefined) pages.next(page.next)
                  }}
                />
              </Stack>
            )}
      </QueryState>
    </Card>
  )
}

/** The 409 of a list a campaign still needs names those campaigns. */
const InUse = ({ error }: { readonly error: unknown }) => {
  const problem = asProblem(error)
  const campaigns = problem?.body["campaigns"]
  if (problem?.status !== 409 || !Array.isArray(campaigns)) return null
  return (
    <List size="sm">
      {campaigns.map((c: unknown) => (
        <List.Item key={String(c)}><Anchor component={Link} href={`/campaigns/${String(c)}`}>{String(c)}</Anchor></List.Item>
      ))}
    </List>
  )
}

const ListDetail = () => {
  const { id = "" } = useParams<{ id: string }>()
  const canEdit = useCan("member")
  const queries = useQueryClient()
  const [, navigate] = useLocation()
  const list = useQuery({
    queryKey: ["/v1/lists", id],
    queryFn: () => unwrap(api.GET("/v1/lists/{id}", { params: { path: { id } } }))
  })
  const remove = useMutation({
    mutationFn: () => unwrap(api.DELETE("/v1/lists/{id}", { params: { path: { id } } })),
    onSuccess: () => {
      queries.removeQueries({ queryKey: ["/v1/lists", id] })
      void queries.invalidateQueries({ queryKey: ["/v1/lists"] })
      navigate("/lists")
    }
  })
  return (
    <Page
      title={list.data?.name ?? "Contact list"}
      actions={canEdit && list.data !== undefined
        ? (
          <ConfirmButton
            label="Delete list"
            title={`Delete ${list.data.name}?`}
            confirmLabel="Delete the list and its contacts"
            onConfirm={() => remove.mutateAsync()}
            pending={remove.isPending}
            error={remove.error}
          >
            <Text size="sm">Its {formatNumber(list.data.contacts)} contacts are deleted with it. Campaigns not finished yet keep it.</Text>
            <InUse error={remove.error} />
          </ConfirmButton>
        )
        : undefined}
    >
      <Anchor component={Link} href="/lists" size="sm">← All lists</Anchor>
      <QueryState query={list} notFound="List not found">
        {(l) => (
          <Stack>
            <Card withBorder>
              <SimpleGrid cols={{ base: 2, sm: 4 }}>
                <Stack gap={0}><Text size="xs" c="dimmed">Contacts</Text><Text fw={700} size="lg">{formatNumber(l.contacts)}</Text></Stack>
                <Stack gap={0}><Text size="xs" c="dimmed">Default country</Text><Text fw={500}>{l.defaultCountry ?? "none"}</Text></Stack>
                <Stack gap={0}><Text size="xs" c="dimmed">Created</Text><Text fw={500}>{formatTime(l.createdAt)}</Text></Stack>
                <Stack gap={0}><Text size="xs" c="dimmed">Updated</Text><Text fw={500}>{formatTime(l.updatedAt)}</Text></Stack>
              </SimpleGrid>
              <Group gap={4} mt="sm">
                <Text size="sm">Template variables:</Text>
                {l.columns.length === 0 ? <Text size="sm" c="dimmed">none yet</Text> : null}
                {l.columns.map((c) => <Code key={c}>{`{{${c}}}`}</Code>)}
              </Group>
            </Card>
            {canEdit
              ? (
                <Card withBorder>
                  <Text fw={600} mb="xs" component="h2">Upload contacts</Text>
                  <UploadForm listId={l.id} />
                </Card>
              )
              : null}
            <Contacts list={l} />
          </Stack>
        )}
      </QueryState>
    </Page>
  )
}

export default ListDetail
