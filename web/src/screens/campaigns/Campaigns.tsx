/**
 * Campaigns: the organisation's campaigns newest first, paged, filtered by state, each with its state and (once it
 * started) a progress bar from its statistics, refreshed every few seconds while it runs.
 */
import { Anchor, Button, Group, Select, Stack, Table, Text } from "@mantine/core"
import { useQuery } from "@tanstack/react-query"
import { useState } from "react"
import { Link } from "wouter"
import { api, unwrap } from "../../api/client.ts"
import { useCan } from "../../api/session.tsx"
import { Page } from "../../components/Page.tsx"
import { Empty, QueryState } from "../../components/States.tsx"
import { CampaignProgressBar } from "./Progress.tsx"
import {
  campaignStates,
  formatNumber,
  formatTime,
  isFinal,
  Pager,
  ScrollTable,
  startedStates,
  StateBadge,
  stateLabel,
  useNewestFirstPages
} from "./shared.tsx"
import type { CampaignState, CampaignView } from "./shared.tsx"

const pageSize = 25

const RowProgress = ({ campaign }: { readonly campaign: CampaignView }) => {
  const started = startedStates.includes(campaign.state) && campaign.startedAt !== undefined
  const stats = useQuery({
    queryKey: ["/v1/campaigns", campaign.id, "stats"],
    queryFn: () => unwrap(api.GET("/v1/campaigns/{id}/stats", { params: { path: { id: campaign.id } } })),
    enabled: started,
    staleTime: 5_000,
    refetchInterval: isFinal(campaign.state) ? false : 5_000
  })
  if (!started) return <Text size="sm" c="dimmed">not started</Text>
  if (stats.data === undefined) return <Text size="sm" c="dimmed">{stats.isError ? "figures unavailable" : "…"}</Text>
  return <CampaignProgressBar stats={stats.data} name={campaign.name} size="md" />
}

const Campaigns = () => {
  const canCreate = useCan("member")
  const [state, setState] = useState<CampaignState | undefined>(undefined)
  const pages = useNewestFirstPages()
  const campaigns = useQuery({
    queryKey: ["/v1/campaigns", { state, ...pages.query }],
    queryFn: () =>
      unwrap(api.GET("/v1/campaigns", {
        params: { query: { limit: String(pageSize), ...(state !== undefined ? { state } : {}), ...pages.query } }
      })),
    refetchInterval: 10_000
  })
  return (
    <Page
      title="Campaigns"
      actions={canCreate ? <Button component={Link} href="/campaigns/new">New campaign</Button> : undefined}
    >
      <Group>
        <Select
          label="State"
          placeholder="All states"
          clearable
          w={220}
          data={campaignStates.map((s) => ({ value: s, label: stateLabel[s] }))}
          value={state ?? null}
          onChange={(v) => {
            setState((v ?? undefined) as CampaignState | undefined)
            pages.reset()
          }}
        />
      </Group>
      <QueryState query={campaigns}>
        {(items) =>
          items.length === 0 && pages.page === 1
            ? (
              <Empty>
                {state === undefined ? "No campaigns yet." : `No campaign is ${stateLabel[state].toLowerCase()}.`}
                {canCreate && state === undefined ? " Create one from a contact list." : ""}
              </Empty>
            )
            : (
              <Stack gap="xs">
                <ScrollTable minWidth={640} label="Campaigns">
                  <Table striped highlightOnHover aria-label="Campaigns" verticalSpacing="sm">
                    <Table.Thead>
                      <Table.Tr>
                        <Table.Th>Name</Table.Th>
                        <Table.Th>State</Table.Th>
                        <Table.Th w="35%">Progress</Table.Th>
                        <Table.Th ta="right">Audience</Table.Th>
                        <Table.Th>Created</Table.Th>
                      </Table.Tr>
                    </Table.Thead>
                    <Table.Tbody>
                      {items.map((c) => (
                        <Table.Tr key={c.id}>
                          <Table.Td>
                            <Anchor component={Link} href={`/campaigns/${c.id}`} fw={500}>{c.name}</Anchor>
                            <Text size="xs" c="dimmed">{c.sender} · {c.messageClass}</Text>
                          </Table.Td>
                          <Table.Td><StateBadge state={c.state} /></Table.Td>
                          <Table.Td><RowProgress campaign={c} /></Table.Td>
                          <Table.Td ta="right">{c.audience > 0 ? formatNumber(c.audience) : "—"}</Table.Td>
                          <Table.Td>{formatTime(c.createdAt)}</Table.Td>
                        </Table.Tr>
                      ))}
                    </Table.Tbody>
                  </Table>
                </ScrollTable>
                <Pager
                  label="Pages of campaigns"
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

export default Campaigns
