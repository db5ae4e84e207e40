/**
 * One campaign: its state (and why it is paused or was rejected), live figures over Server-Sent Events (progress,
 * recipients by decision, messages by status, delivery rate, time to receipt, parts), the reasons behind every
 * recipient not sent, the actions its state and the user's role allow (edit, submit, start, pause, resume, cancel
 * with confirmation), the CSV export, its recipients one by one with what decided each, and what it will send.
 */
import {
  Alert,
  Anchor,
  Button,
  Card,
  Code,
  Group,
  Select,
  SimpleGrid,
  Stack,
  Table,
  Tabs,
  Text
} from "@mantine/core"
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query"
import { useEffect, useState } from "react"
import { Link, useParams } from "wouter"
import { api, unwrap } from "../../api/client.ts"
import { useLiveQuery } from "../../api/sse.ts"
import { useCan, useMe } from "../../api/session.tsx"
import { Page } from "../../components/Page.tsx"
import { Empty, Loading, ProblemAlert, QueryState } from "../../components/States.tsx"
import { CampaignDryRun, CampaignSamples } from "./Insight.tsx"
import { CampaignProgressBar } from "./Progress.tsx"
import {
  ConfirmButton,
  count,
  downloadExport,
  explainReason,
  finite,
  formatDuration,
  formatNumber,
  formatPercent,
  formatTime,
  isFinal,
  Notice,
  Pager,
  ScrollTable,
  StateBadge,
  Tag,
  useAfterPages,
  useMayManage
} from "./shared.tsx"
import type { CampaignView, Stats } from "./shared.tsx"
import { TestSend } from "./TestSend.tsx"
import { CampaignHealth } from "../../components/CampaignHealth.tsx"

const seconds = (ms: number | string | undefined) => {
  const n = finite(ms)
  return n === undefined ? "—" : `${(n / 1000).toFixed(1)} s`
}

const pauseWords = { user: "Paused by a person", canary: "Paused after its canary", auto: "Paused automatically" } as const

const Figure = ({ label, value, detail }: { readonly label: string; readonly value: string; readonly detail?: string | undefined }) => (
  <Card withBorder padding="sm" role="group" aria-label={label}>
    <Text size="xs" c="dimmed">{label}</Text>
    <Text fw={700} size="xl">{value}</Text>
    {detail !== undefined ? <Text size="xs" c="dimmed">{detail}</Text> : null}
  </Card>
)

const LiveFigures = ({ stats, name }: { readonly stats: Stats; readonly name: string }) => {
  const r = stats.recipients
  const m = stats.messages
  return (
    <Stack gap="sm">
      <CampaignProgressBar stats={stats} name={name} size="xl" />
      <SimpleGrid cols={{ base: 2, sm: 3, md: 6 }} spacing="xs">
        <Figure label="Audience" value={formatNumber(stats.audience)} detail={`${formatNumber(r.pending)} pending`} />
        <Figure label="Submitted" value={formatNumber(stats.submitted)} detail={count(stats.parts, "part")} />
        <Figure label="Delivered" value={formatNumber(m.delivered)} detail={`${formatNumber(m.inFlight)} in flight`} />
        <Figure label="Delivery rate" value={formatPercent(stats.deliveryRate)} />
        <Figure
          label="Time to receipt"
          value={seconds(stats.receipt.medianMs)}
          detail={finite(stats.receipt.p95Ms) !== undefined ? `median; p95 ${seconds(stats.receipt.p95Ms)}` : "median"}
        />
        <Figure label="Deferred" value={formatNumber(r.deferred)} detail="window or quiet hours" />
      </SimpleGrid>
      <SimpleGrid cols={{ base: 2, sm: 3, md: 6 }} spacing="xs">
        <Figure label="Excluded" value={formatNumber(r.excluded)} detail="blacklist, opt-out" />
        <Figure label="Refused" value={formatNumber(r.refused)} detail="caps, duplicates" />
        <Figure label="Failed to send" value={formatNumber(r.failed)} detail="no route, text" />
        <Figure label="Undelivered" value={formatNumber(m.undelivered)} />
        <Figure label="Expired" value={formatNumber(m.expired)} />
        <Figure label="Rejected by network" value={formatNumber(m.rejected + m.failed)} />
      </SimpleGrid>
      <Text size="xs" c="dimmed">Figures of {formatTime(stats.at)}{isFinal(stats.state) ? "" : ", live"}.</Text>
    </Stack>
  )
}

const Reasons = ({ stats }: { readonly stats: Stats }) =>
  stats.reasons.length === 0
    ? <Text size="sm" c="dimmed">Every recipient so far was sent, or is waiting for its turn.</Text>
    : (
      <ScrollTable minWidth={420} label="Why recipients were not sent">
        <Table striped aria-label="Why recipients were not sent" verticalSpacing={4}>
          <Table.Thead>
            <Table.Tr><Table.Th>Outcome</Table.Th><Table.Th>Why</Table.Th><Table.Th>Rule</Table.Th><Table.Th ta="right">Recipients</Table.Th></Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {stats.reasons.map((r) => (
              <Table.Tr key={`${r.state}|${r.reason}|${r.ruleId ?? ""}`}>
                <Table.Td>{r.state === "message" ? "network" : r.state}</Table.Td>
                <Table.Td>{explainReason(r.reason)} <Text span size="xs" c="dimmed">({r.reason})</Text></Table.Td>
                <Table.Td>{r.ruleId ?? "—"}</Table.Td>
                <Table.Td ta="right">{formatNumber(r.count)}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </ScrollTable>
    )

const outcomeFilters = [
  { value: "all", label: "All recipients" },
  { group: "What the campaign decided", items: [
    { value: "state:pending", label: "Pending" },
    { value: "state:deferred", label: "Deferred" },
    { value: "state:submitted", label: "Submitted" },
    { value: "state:excluded", label: "Excluded" },
    { value: "state:refused", label: "Refused" },
    { value: "state:failed", label: "Failed" }
  ] },
  { group: "What the network answered", items: [
    { value: "status:delivered", label: "Delivered" },
    { value: "status:submitted", label: "Waiting for a receipt" },
    { value: "status:undelivered", label: "Undelivered" },
    { value: "status:expired", label: "Expired" },
    { value: "status:rejected", label: "Rejected" },
    { value: "status:failed", label: "Failed" }
  ] }
]

type RecipientState = "pending" | "deferred" | "submitted" | "excluded" | "refused" | "failed"
type MessageStatus = "accepted" | "rejected" | "queued" | "submitted" | "delivered" | "undelivered" | "expired" | "failed"

const Recipients = ({ campaign, live }: { readonly campaign: CampaignView; readonly live: boolean }) => {
  const [filter, setFilter] = useState("all")
  const pages = useAfterPages()
  const [kind, value] = filter.split(":") as [string, string | undefined]
  const query = { limit: "25", ...(pages.after !== undefined ? { after: String(pages.after) } : {}) }
  const outcomes = useQuery({
    queryKey: ["/v1/campaigns", campaign.id, "outcomes", filter, pages.after],
    queryFn: () =>
      kind === "status"
        ? unwrap(api.GET("/v1/campaigns/{id}/messages", {
          params: { path: { id: campaign.id }, query: { ...query, status: value as MessageStatus } }
        }))
        : unwrap(api.GET("/v1/campaigns/{id}/recipients", {
          params: { path: { id: campaign.id }, query: { ...query, ...(kind === "state" ? { state: value as RecipientState } : {}) } }
        })),
    refetchInterval: live ? 3_000 : false
  })
  return (
    <Stack gap="xs">
      <Select
        label="Show"
        w={260}
        allowDeselect={false}
        data={outcomeFilters}
        value={filter}
        onChange={(v) => {
          setFilter(v ?? "all")
          pages.reset()
        }}
      />
      <QueryState query={outcomes}>
        {(page) =>
          page.items.length === 0
            ? <Empty>{campaign.audience === 0 ? "Recipients are listed once the campaign starts." : "No recipient here."}</Empty>
            : (
              <Stack gap="xs">
                <ScrollTable minWidth={640} label="Recipients and their outcome">
                  <Table striped aria-label="Recipients and their outcome" verticalSpacing={4}>
                    <Table.Thead>
                      <Table.Tr>
                        <Table.Th>#</Table.Th>
                        <Table.Th>Number</Table.Th>
                        <Table.Th>Decision</Table.Th>
                        <Table.Th>Why</Table.Th>
                        <Table.Th>Message</Table.Th>
                        <Table.Th>Updated</Table.Th>
                      </Table.Tr>
                    </Table.Thead>
                    <Table.Tbody>
                      {page.items.map((o) => (
                        <Table.Tr key={o.position}>
                          <Table.Td>{o.position + 1}</Table.Td>
                          <Table.Td><Text size="sm" ff="monospace">{o.msisdn}</Text></Table.Td>
                          <Table.Td><Tag color={o.state === "submitted" ? "blue" : o.state === "pending" ? "gray" : o.state === "deferred" ? "cyan" : "orange"}>{o.state}</Tag></Table.Td>
                          <Table.Td>
                            <Text size="sm">
                              {explainReason(o.reason)}
                              {o.ruleId !== undefined ? ` (rule ${o.ruleId})` : ""}
                              {o.nextAt !== undefined ? ` — next try ${formatTime(o.nextAt)}` : ""}
                              {o.reason === undefined && o.messageReason === undefined ? "—" : ""}
                            </Text>
                          </Table.Td>
                          <Table.Td>
                            {o.messageId !== undefined
                              ? (
                                <Stack gap={0}>
                                  <Group gap={4}>
                                    <Tag color={o.status === "delivered" ? "green" : o.status === "submitted" || o.status === "accepted" || o.status === "queued" ? "blue" : "red"}>
                                      {o.status ?? "sent"}
                                    </Tag>
                                    {o.segments !== undefined ? <Text size="xs" c="dimmed">{o.segments} {o.segments === 1 ? "part" : "parts"}</Text> : null}
                                  </Group>
                                  {o.messageReason !== undefined ? <Text size="xs">{explainReason(o.messageReason)}</Text> : null}
                                  <Anchor component={Link} href={`/messages/${o.messageId}`} size="xs">message</Anchor>
                                </Stack>
                              )
                              : <Text size="sm" c="dimmed">—</Text>}
                          </Table.Td>
                          <Table.Td><Text size="xs">{formatTime(o.updatedAt)}</Text></Table.Td>
                        </Table.Tr>
                      ))}
                    </Table.Tbody>
                  </Table>
                </ScrollTable>
                <Pager
                  label="Pages of recipients"
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
    </Stack>
  )
}

const Details = ({ campaign }: { readonly campaign: CampaignView }) => {
  const lists = useQuery({
    queryKey: ["/v1/lists", { limit: 500 }],
    queryFn: () => unwrap(api.GET("/v1/lists", { params: { query: { limit: "500" } } }))
  })
  const nameOf = (id: string) => lists.data?.find((l) => l.id === id)?.name ?? id
  return (
    <SimpleGrid cols={{ base: 1, sm: 2 }} spacing="xs">
      <Text size="sm">Sender <b>{campaign.sender}</b> · {campaign.messageClass} · encoding {campaign.encoding}</Text>
      <Text size="sm">App <Code>{campaign.appId}</Code></Text>
      <Text size="sm">
        Lists:{" "}
        {campaign.lists.map((id, i) => (
          <span key={id}>{i > 0 ? ", " : ""}<Anchor component={Link} href={`/lists/${id}`}>{nameOf(id)}</Anchor></span>
        ))}
      </Text>
      <Text size="sm">
        {campaign.startAt !== undefined ? `Starts ${campaign.startAt.at.replace("T", " ")} (${campaign.startAt.timeZone})` : "Starts when started"}
        {campaign.startedAt !== undefined ? ` · started ${formatTime(campaign.startedAt)}` : ""}
        {campaign.finishedAt !== undefined ? ` · finished ${formatTime(campaign.finishedAt)}` : ""}
      </Text>
      <Text size="sm">
        {campaign.sendWindow !== undefined ? `Send window ${campaign.sendWindow.from}–${campaign.sendWindow.to} (recipient's time)` : "No send window"}
        {` · throttle ${campaign.throttle}/s`}
        {campaign.validitySeconds !== undefined ? ` · valid ${formatDuration(campaign.validitySeconds)}` : ""}
      </Text>
      <Text size="sm">
        {campaign.canary !== undefined ? `Canary: ${campaign.canary.count !== undefined ? count(campaign.canary.count, "message") : `${campaign.canary.percent ?? 0} %`}` : "No canary"}
        {campaign.submittedAt !== undefined ? ` · submitted ${formatTime(campaign.submittedAt)}` : ""}
      </Text>
      <Stack gap={2} style={{ gridColumn: "1 / -1" }}>
        <Text size="sm" fw={500}>Text</Text>
        <Code block style={{ whiteSpace: "pre-wrap" }}>{campaign.template}</Code>
      </Stack>
      {campaign.flags.length > 0
        ? (
          <Group gap={4} style={{ gridColumn: "1 / -1" }}>
            <Text size="sm">Content flags:</Text>
            {campaign.flags.map((f) => <Tag key={f} color="yellow" tt="none">{f}</Tag>)}
          </Group>
        )
        : null}
    </SimpleGrid>
  )
}

const Actions = ({ campaign }: { readonly campaign: CampaignView }) => {
  const queries = useQueryClient()
  const mayManage = useMayManage()(campaign)
  const act = useMutation({
    mutationFn: (action: "submit" | "start" | "pause" | "resume" | "cancel") =>
      unwrap(api.POST(`/v1/campaigns/{id}/${action}`, { params: { path: { id: campaign.id } } })),
    onSuccess: (c) => {
      queries.setQueryData(["/v1/campaigns", c.id], c)
      void queries.invalidateQueries({ queryKey: ["/v1/campaigns", c.id, "stats"] })
      void queries.invalidateQueries({ queryKey: ["/v1/campaigns"], exact: true })
    }
  })
  const exporting = useMutation({ mutationFn: () => downloadExport(campaign) })
  const s = campaign.state
  const button = (action: "submit" | "start" | "pause" | "resume", label: string, variant = "filled") => (
    <Button variant={variant} loading={act.isPending && act.variables === action} onClick={() => act.mutate(action)}>{label}</Button>
  )
  return (
    <Stack gap="xs" align="flex-end">
      <Group gap="xs">
        <Button variant="default" loading={exporting.isPending} onClick={() => exporting.mutate()}>Export CSV</Button>
        {mayManage && (s === "draft" || s === "rejected")
          ? <Button variant="default" component={Link} href={`/campaigns/new?id=${campaign.id}`}>Edit</Button>
          : null}
        {mayManage && (s === "draft" || s === "rejected") ? button("submit", "Submit for approval") : null}
        {mayManage && s === "approved" ? button("start", campaign.startAt !== undefined ? "Start (scheduled)" : "Start") : null}
        {mayManage && (s === "running" || s === "scheduled") ? button("pause", "Pause", "default") : null}
        {mayManage && s === "paused" ? button("resume", "Resume") : null}
        {mayManage && !isFinal(s)
          ? (
            <ConfirmButton
              label="Cancel campaign"
              title={`Cancel ${campaign.name}?`}
              confirmLabel="Cancel the campaign"
              onConfirm={() => act.mutateAsync("cancel")}
              pending={act.isPending && act.variables === "cancel"}
              error={act.variables === "cancel" ? act.error : null}
            >
              <Text size="sm">
                Nothing more is sent once this is confirmed; messages already accepted still go out. A cancelled campaign cannot be
                started again.
              </Text>
            </ConfirmButton>
          )
          : null}
      </Group>
      {act.isError && act.variables !== "cancel" ? <ProblemAlert error={act.error} title="Not done" /> : null}
      {exporting.isError ? <ProblemAlert error={exporting.error} title="No export" /> : null}
    </Stack>
  )
}

const Campaign = () => {
  const { id = "" } = useParams<{ id: string }>()
  const me = useMe()
  const isModerator = useCan("moderator")
  const mayManage = useMayManage()
  const members = useQuery({ queryKey: ["/v1/members"], queryFn: () => unwrap(api.GET("/v1/members")), staleTime: 60_000 })
  const nameOf = (userId: string) =>
    members.data === undefined ? "…" : members.data.find((m) => m.userId === userId)?.name ?? "a former member"
  const queries = useQueryClient()
  const campaign = useQuery({
    queryKey: ["/v1/campaigns", id],
    queryFn: () => unwrap(api.GET("/v1/campaigns/{id}", { params: { path: { id } } }))
  })
  const state = campaign.data?.state
  const stats = useQuery({
    queryKey: ["/v1/campaigns", id, "stats"],
    queryFn: () => unwrap(api.GET("/v1/campaigns/{id}/stats", { params: { path: { id } } })),
    enabled: campaign.data !== undefined
  })
  // Every second while the campaign may still change: running, or finished with receipts still to come (a completed
  // campaign's last messages are delivered after it completes). The stream ends by itself when neither is left.
  const awaitingReceipts = (stats.data?.messages.inFlight ?? 0) > 0
  const live = state !== undefined && (!isFinal(state) || awaitingReceipts)
  useLiveQuery(live ? `/v1/campaigns/${encodeURIComponent(id)}/stats/stream` : undefined, ["/v1/campaigns", id, "stats"])
  const liveState = stats.data?.state
  useEffect(() => {
    // The stream says the state moved (approved by a moderator, started at its time, completed): read the campaign again.
    if (liveState !== undefined && state !== undefined && liveState !== state) {
      void queries.invalidateQueries({ queryKey: ["/v1/campaigns", id], exact: true })
    }
  }, [liveState, state, id, queries])

  const c = campaign.data
  return (
    <Page title={c?.name ?? "Campaign"} actions={c !== undefined ? <Actions campaign={c} /> : undefined}>
      <Anchor component={Link} href="/campaigns" size="sm">← All campaigns</Anchor>
      <QueryState query={campaign} notFound="Campaign not found">
        {(c) => (
          <Stack>
            <Group gap="sm">
              <StateBadge state={c.state} />
              <Text size="sm" c="dimmed">Created {formatTime(c.createdAt)} by {c.createdBy === me.user.id ? "you" : nameOf(c.createdBy)}</Text>
              {isModerator && c.state === "pending_approval" && c.createdBy !== me.user.id
                ? <Anchor component={Link} href="/moderation" size="sm">Review it in the moderation queue</Anchor>
                : null}
            </Group>
            {c.pauseReason !== undefined
              ? (
                <Notice color="orange" title={pauseWords[c.pauseReason.kind]} role="status">
                  {c.pauseReason.detail !== "" ? c.pauseReason.detail : "Resume it to continue."}
                </Notice>
              )
              : null}
            {c.rejectionReason !== undefined
              ? <Alert color="red" variant="light" title="Rejected by a moderator" role="status">{c.rejectionReason}</Alert>
              : null}
            {c.state === "pending_approval" ? <Notice color="yellow" role="status">Waiting for a moderator's approval.</Notice> : null}
            {c.state === "approved"
              ? <Notice color="teal" role="status">Approved{c.approvedBy !== undefined ? "" : " automatically"}: start it to send.</Notice>
              : null}

            <Card withBorder>
              <Text fw={600} mb="xs" component="h2">Progress</Text>
              {stats.data !== undefined && c.startedAt === undefined && stats.data.audience === 0
                ? <Text size="sm" c="dimmed">Not started: its figures appear here, live, once it runs. The samples and the dry run below say what it will send.</Text>
                : stats.data !== undefined
                ? <LiveFigures stats={stats.data} name={c.name} />
                : stats.isError ? <ProblemAlert error={stats.error} /> : <Loading label="Loading the figures…" />}
            </Card>

            {/* The links and pools this campaign uses, beside its progress: a slow campaign explains itself. */}
            <CampaignHealth campaignId={c.id} />

            {c.startedAt !== undefined || (stats.data?.audience ?? 0) > 0
              ? (
                <Card withBorder>
                  <Text fw={600} mb="xs" component="h2">Why recipients were not sent</Text>
                  {stats.data !== undefined ? <Reasons stats={stats.data} /> : <Loading />}
                </Card>
              )
              : null}

            <Tabs defaultValue={c.audience > 0 || c.startedAt !== undefined ? "recipients" : "preview"} keepMounted={false}>
              <Tabs.List>
                <Tabs.Tab value="recipients">Recipients</Tabs.Tab>
                <Tabs.Tab value="preview">Samples</Tabs.Tab>
                <Tabs.Tab value="details">Details</Tabs.Tab>
                {!isFinal(c.state) && c.state !== "running" ? <Tabs.Tab value="dry-run">Dry run</Tabs.Tab> : null}
                {mayManage(c) && ["draft", "rejected", "pending_approval", "approved"].includes(c.state)
                  ? <Tabs.Tab value="test">Test send</Tabs.Tab>
                  : null}
              </Tabs.List>
              <Tabs.Panel value="recipients" pt="sm">
                <Recipients campaign={c} live={!isFinal(c.state) && c.startedAt !== undefined} />
              </Tabs.Panel>
              <Tabs.Panel value="preview" pt="sm"><CampaignSamples campaignId={c.id} version={c.updatedAt} /></Tabs.Panel>
              <Tabs.Panel value="details" pt="sm"><Details campaign={c} /></Tabs.Panel>
              <Tabs.Panel value="dry-run" pt="sm"><CampaignDryRun campaignId={c.id} version={c.updatedAt} /></Tabs.Panel>
              <Tabs.Panel value="test" pt="sm"><TestSend campaignId={c.id} /></Tabs.Panel>
            </Tabs>
          </Stack>
        )}
      </QueryState>
    </Page>
  )
}

export default Campaign
