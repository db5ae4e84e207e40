/**
 * Moderation (moderators and above): the queue of campaigns waiting for approval, oldest submission first, each with
 * its content flags, its text rendered for the first recipients and the dry run (exclusions per rule, deferrals,
 * parts, estimated finish); approve, or reject with a reason the creator reads. The history of decided campaigns,
 * and the settings (which campaigns need approval, keywords and links to flag) that admins change.
 */
import {
  Accordion,
  Alert,
  Anchor,
  Button,
  Card,
  Code,
  Group,
  Modal,
  Radio,
  Stack,
  Table,
  Tabs,
  TagsInput,
  Text,
  Textarea
} from "@mantine/core"
import { useDisclosure } from "@mantine/hooks"
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query"
import { useEffect, useState } from "react"
import { Link } from "wouter"
import { api, unwrap } from "../../api/client.ts"
import { useCan, useMe } from "../../api/session.tsx"
import type { Body } from "../../api/types.ts"
import { fieldError } from "../../components/Forms.tsx"
import { Page } from "../../components/Page.tsx"
import { Empty, ProblemAlert, QueryState } from "../../components/States.tsx"
import { CampaignDryRun, CampaignSamples, useCampaignPreview } from "../campaigns/Insight.tsx"
import { formatTime, Notice, Pager, ScrollTable, StateBadge, Tag, useNewestFirstPages } from "../campaigns/shared.tsx"
import type { CampaignView } from "../campaigns/shared.tsx"

/** No stream announces a submission: the queue is read again on every visit and every five seconds while open. */
const queuePolling = { staleTime: 0, refetchInterval: 5_000 } as const

const useMemberNames = () => {
  const members = useQuery({ queryKey: ["/v1/members"], queryFn: () => unwrap(api.GET("/v1/members")), staleTime: 60_000 })
  return (userId: string | undefined) =>
    userId === undefined ? "—" : members.data === undefined ? "…" : members.data.find((m) => m.userId === userId)?.name ?? "a former member"
}

const RejectButton = ({ campaign, onDone }: { readonly campaign: CampaignView; readonly onDone: () => void }) => {
  const [opened, { open, close }] = useDisclosure(false)
  const [reason, setReason] = useState("")
  const reject = useMutation({
    mutationFn: () => unwrap(api.POST("/v1/campaigns/{id}/reject", { params: { path: { id: campaign.id } }, body: { reason: reason.trim() } })),
    onSuccess: () => {
      close()
      onDone()
    }
  })
  const reasonError = fieldError(reject.error, "reason")
  return (
    <>
      <Button variant="default" c="red.9" onClick={open}>Reject</Button>
      <Modal opened={opened} onClose={close} title={`Reject ${campaign.name}`} centered closeButtonProps={{ "aria-label": "Close" }}>
        <form
          onSubmit={(e) => {
            e.preventDefault()
            reject.mutate()
          }}
        >
          <Stack>
            <Textarea
              label="Reason"
              description="The creator reads it, edits the campaign and submits it again"
              required
              autosize
              minRows={3}
              value={reason}
              onChange={(e) => setReason(e.currentTarget.value)}
              error={reasonError}
              data-autofocus
            />
            {reject.isError && reasonError === undefined ? <ProblemAlert error={reject.error} /> : null}
            <Group justify="flex-end">
              <Button variant="default" onClick={close}>Back</Button>
              <Button type="submit" color="red" loading={reject.isPending} disabled={reason.trim() === ""}>Reject the campaign</Button>
            </Group>
          </Stack>
        </form>
      </Modal>
    </>
  )
}

const Review = ({ campaign, nameOf }: { readonly campaign: CampaignView; readonly nameOf: (id: string | undefined) => string }) => {
  const me = useMe()
  const queries = useQueryClient()
  const samples = useCampaignPreview(campaign.id, campaign.updatedAt)
  const done = () => {
    void queries.invalidateQueries({ queryKey: ["/v1/moderation/queue"] })
    void queries.invalidateQueries({ queryKey: ["/v1/campaigns"] })
  }
  const approve = useMutation({
    mutationFn: () => unwrap(api.POST("/v1/campaigns/{id}/approve", { params: { path: { id: campaign.id } } })),
    onSuccess: done
  })
  const own = campaign.createdBy === me.user.id
  return (
    <Stack>
      <Group gap="lg" wrap="wrap">
        <Text size="sm">By <b>{nameOf(campaign.createdBy)}</b>{own ? " (you)" : ""}</Text>
        <Text size="sm">Submitted {formatTime(campaign.submittedAt)}</Text>
        <Text size="sm">From <b>{campaign.sender}</b> · {campaign.messageClass} · {campaign.throttle}/s</Text>
        <Text size="sm">
          {campaign.startAt !== undefined ? `Starts ${campaign.startAt.at.replace("T", " ")} (${campaign.startAt.timeZone})` : "Starts when started"}
          {campaign.sendWindow !== undefined ? ` · window ${campaign.sendWindow.from}–${campaign.sendWindow.to}` : ""}
        </Text>
      </Group>
      <Code block style={{ whiteSpace: "pre-wrap" }}>{campaign.template}</Code>
      <Group gap={6}>
        <Text size="sm" fw={500}>Content flags:</Text>
        {campaign.flags.length === 0 ? <Text size="sm" c="dimmed">none</Text> : null}
        {campaign.flags.map((f) => <Tag key={f} color="yellow" tt="none">⚑ {f}</Tag>)}
      </Group>
      <Card withBorder>
        <Text fw={600} mb="xs" component="h3">Rendered samples</Text>
        <CampaignSamples campaignId={campaign.id} version={campaign.updatedAt} />
      </Card>
      <Card withBorder>
        <Text fw={600} mb="xs" component="h3">Dry run</Text>
        {/* One insight at a time per organisation: the dry run waits for the samples. */}
        <CampaignDryRun campaignId={campaign.id} version={campaign.updatedAt} enabled={!samples.isPending} />
      </Card>
      {approve.isError ? <ProblemAlert error={approve.error} title="Not approved" /> : null}
      <Group>
        <Button onClick={() => approve.mutate()} loading={approve.isPending} disabled={own}>Approve</Button>
        <RejectButton campaign={campaign} onDone={done} />
        <Anchor component={Link} href={`/campaigns/${campaign.id}`} size="sm">Open the campaign</Anchor>
        {own ? <Text size="sm" c="dimmed">Another moderator decides on a campaign you created.</Text> : null}
      </Group>
    </Stack>
  )
}

const Queue = () => {
  const nameOf = useMemberNames()
  const [open, setOpen] = useState<string | null>(null)
  const queue = useQuery({
    queryKey: ["/v1/moderation/queue"],
    queryFn: () => unwrap(api.GET("/v1/moderation/queue", { params: { query: { limit: "100" } } })),
    ...queuePolling
  })
  const first = queue.data?.[0]?.id
  useEffect(() => {
    if (open === null && first !== undefined) setOpen(first)
  }, [open, first])
  return (
    <QueryState query={queue}>
      {(items) =>
        items.length === 0
          ? <Empty>Nothing waits for approval.</Empty>
          : (
            <Accordion variant="separated" value={open} onChange={setOpen}>
              {items.map((c) => (
                <Accordion.Item key={c.id} value={c.id}>
                  <Accordion.Control>
                    <Group gap="sm" wrap="wrap">
                      <Text fw={600}>{c.name}</Text>
                      <Text size="sm" c="dimmed">by {nameOf(c.createdBy)} · {formatTime(c.submittedAt)}</Text>
                      {c.flags.length > 0 ? <Tag color="yellow">{c.flags.length} {c.flags.length === 1 ? "flag" : "flags"}</Tag> : null}
                    </Group>
                  </Accordion.Control>
                  <Accordion.Panel>{open === c.id ? <Review campaign={c} nameOf={nameOf} /> : null}</Accordion.Panel>
                </Accordion.Item>
              ))}
            </Accordion>
          )}
    </QueryState>
  )
}

const decided = (c: CampaignView) => c.state === "rejected" || (c.submittedAt !== undefined && c.state !== "draft" && c.state !== "pending_approval")

const History = () => {
  const nameOf = useMemberNames()
  const pages = useNewestFirstPages()
  const campaigns = useQuery({
    queryKey: ["/v1/campaigns", { history: true, ...pages.query }],
    queryFn: () => unwrap(api.GET("/v1/campaigns", { params: { query: { limit: "100", ...pages.query } } }))
  })
  return (
    <QueryState query={campaigns}>
      {(all) => {
        const items = all.filter(decided)
        return (
          <Stack gap="xs">
            {items.length === 0
              ? <Empty>No decision yet{pages.page > 1 ? " on this page" : ""}.</Empty>
              : (
                <ScrollTable minWidth={600} label="Decided campaigns">
                  <Table striped aria-label="Decided campaigns" verticalSpacing="xs">
                    <Table.Thead>
                      <Table.Tr>
                        <Table.Th>Campaign</Table.Th>
                        <Table.Th>Decision</Table.Th>
                        <Table.Th>Now</Table.Th>
                        <Table.Th>Submitted</Table.Th>
                      </Table.Tr>
                    </Table.Thead>
                    <Table.Tbody>
                      {items.map((c) => (
                        <Table.Tr key={c.id}>
                          <Table.Td>
                            <Anchor component={Link} href={`/campaigns/${c.id}`}>{c.name}</Anchor>
                            <Text size="xs" c="dimmed">by {nameOf(c.createdBy)}</Text>
                          </Table.Td>
                          <Table.Td>
                            {c.state === "rejected"
                              ? <Group gap={6}><Tag color="red">Rejected</Tag><Text size="sm">{c.rejectionReason}</Text></Group>
                              : c.approvedBy !== undefined
                              ? <Group gap={6}><Tag color="green">Approved</Tag><Text size="sm">by {nameOf(c.approvedBy)}</Text></Group>
                              : c.state === "cancelled"
                              ? <Tag color="gray">Withdrawn</Tag>
                              : <Group gap={6}><Tag color="teal">Approved</Tag><Text size="sm">automatically (the approval rule)</Text></Group>}
                          </Table.Td>
                          <Table.Td><StateBadge state={c.state} /></Table.Td>
                          <Table.Td>{formatTime(c.submittedAt)}</Table.Td>
                        </Table.Tr>
                      ))}
                    </Table.Tbody>
                  </Table>
                </ScrollTable>
              )}
            <Pager
              label="Pages of decided campaigns"
              page={pages.page}
              hasNext={all.length === 100}
              onPrevious={pages.previous}
              onNext={() => {
                const last = all[all.length - 1]
                if (last !== undefined) pages.next(last)
              }}
            />
          </Stack>
        )
      }}
    </QueryState>
  )
}

type Settings = Body<"/v1/moderation/settings", "put">

const approvalRules: ReadonlyArray<{ readonly value: Settings["approval"]; readonly label: string; readonly description: string }> = [
  { value: "members", label: "Members' campaigns", description: "A campaign created or submitted by a member waits for a moderator (the default)" },
  { value: "all", label: "Every campaign", description: "Even an owner's campaign needs another moderator, admin or owner" },
  { value: "promotional", label: "Promotional campaigns", description: "Only campaigns of the promotional class wait" },
  { value: "none", label: "None", description: "Submitted campaigns are approved at once" }
]

const SettingsForm = ({ settings }: { readonly settings: Settings }) => {
  const canEdit = useCan("admin")
  const queries = useQueryClient()
  const [form, setForm] = useState<Settings>(settings)
  const save = useMutation({
    mutationFn: () => unwrap(api.PUT("/v1/moderation/settings", { body: form })),
    onSuccess: (saved) => queries.setQueryData(["/v1/moderation/settings"], saved)
  })
  const fieldLevel = ["approval", "keywords", "urls"].some((f) => fieldError(save.error, f) !== undefined)
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault()
        save.mutate()
      }}
    >
      <Stack maw={720}>
        {!canEdit ? <Alert color="gray" variant="light">Admins and owners change these settings.</Alert> : null}
        <Radio.Group
          label="Which campaigns need approval"
          value={form.approval}
          onChange={(v) => setForm({ ...form, approval: v as Settings["approval"] })}
          error={fieldError(save.error, "approval")}
        >
          <Stack gap="xs" mt="xs">
            {approvalRules.map((r) => <Radio key={r.value} value={r.value} label={r.label} description={r.description} disabled={!canEdit} />)}
          </Stack>
        </Radio.Group>
        <TagsInput
          label="Keywords to flag"
          description="Whole words or phrases, any case; press Enter after each"
          value={[...form.keywords]}
          onChange={(keywords) => setForm({ ...form, keywords })}
          disabled={!canEdit}
          error={fieldError(save.error, "keywords")}
          clearable
        />
        <TagsInput
          label="Links to flag"
          description="Domains (with their subdomains) or URL prefixes, e.g. bit.ly"
          value={[...form.urls]}
          onChange={(urls) => setForm({ ...form, urls })}
          disabled={!canEdit}
          error={fieldError(save.error, "urls")}
          clearable
        />
        {save.isError && !fieldLevel ? <ProblemAlert error={save.error} title="Not saved" /> : null}
        {save.isSuccess ? <Notice color="green" role="status">Settings saved.</Notice> : null}
        {canEdit ? <Button type="submit" w="fit-content" loading={save.isPending}>Save settings</Button> : null}
      </Stack>
    </form>
  )
}

const SettingsTab = () => {
  const settings = useQuery({ queryKey: ["/v1/moderation/settings"], queryFn: () => unwrap(api.GET("/v1/moderation/settings")) })
  return <QueryState query={settings}>{(s) => <SettingsForm settings={s} />}</QueryState>
}

const Moderation = () => {
  const queue = useQuery({
    queryKey: ["/v1/moderation/queue"],
    queryFn: () => unwrap(api.GET("/v1/moderation/queue", { params: { query: { limit: "100" } } })),
    ...queuePolling
  })
  return (
    <Page title="Moderation">
      <Tabs defaultValue="queue" keepMounted={false}>
        <Tabs.List>
          <Tabs.Tab value="queue">Queue{queue.data !== undefined ? ` (${queue.data.length})` : ""}</Tabs.Tab>
          <Tabs.Tab value="history">History</Tabs.Tab>
          <Tabs.Tab value="settings">Settings</Tabs.Tab>
        </Tabs.List>
        <Tabs.Panel value="queue" pt="md"><Queue /></Tabs.Panel>
        <Tabs.Panel value="history" pt="md"><History /></Tabs.Panel>
        <Tabs.Panel value="settings" pt="md"><SettingsTab /></Tabs.Panel>
      </Tabs>
    </Page>
  )
}

export default Moderation
