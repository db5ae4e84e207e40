/**
 * What a campaign will do before it does it, as the editor, the campaign page and the moderator see it: the rendered
 * samples with their encoding and parts (the preview), and the dry run — exclusions per rule, deferrals with when
 * they end, unroutable recipients, parts per encoding and route, and the estimated finish with its bottleneck.
 */
import { Alert, Card, SimpleGrid, Stack, Table, Text } from "@mantine/core"
import { useQuery } from "@tanstack/react-query"
import type { ReactNode } from "react"
import { api, unwrap } from "../../api/client.ts"
import type { Ok } from "../../api/types.ts"
import { QueryState } from "../../components/States.tsx"
import {
  count,
  explainReason,
  finite,
  formatDuration,
  formatNumber,
  formatTime,
  insightRetry,
  Notice,
  ScrollTable,
  Tag
} from "./shared.tsx"

export type Preview = Ok<"/v1/campaigns/{id}/preview", "get">
export type DryRun = Ok<"/v1/campaigns/{id}/dry-run", "get">

const parts = (n: number) => count(n, "part")
const messages = (n: number) => count(n, "msg")

export const encodingLabel = (e: string) => e === "ucs2" ? "UCS-2" : e === "gsm7" ? "GSM-7" : e

const Figure = ({ label, value, detail }: { readonly label: string; readonly value: string; readonly detail?: string | undefined }) => (
  <Stack gap={0}>
    <Text size="xs" c="dimmed">{label}</Text>
    <Text fw={700} size="lg">{value}</Text>
    {detail !== undefined ? <Text size="xs" c="dimmed">{detail}</Text> : null}
  </Stack>
)

/** Totals of a preview: recipients, messages and parts split by encoding, and what cannot be sent. */
export const PreviewTotals = ({ preview }: { readonly preview: Preview }) => {
  const u = preview.unsendable
  const unsendable = u.missingVariable + u.notRepresentable + u.tooLong
  return (
    <Stack gap="xs">
      <SimpleGrid cols={{ base: 2, sm: 4 }}>
        <Figure label="Recipients" value={formatNumber(preview.recipients)} />
        <Figure label="Parts (cost)" value={formatNumber(preview.totals.segments)} detail={count(preview.totals.messages, "message")} />
        <Figure label="GSM-7" value={messages(preview.totals.gsm7.messages)} detail={`${parts(preview.totals.gsm7.segments)}`} />
        <Figure label="UCS-2" value={messages(preview.totals.ucs2.messages)} detail={`${parts(preview.totals.ucs2.segments)}`} />
      </SimpleGrid>
      {unsendable > 0
        ? (
          <Notice color="orange" title={`${formatNumber(unsendable)} recipients cannot be sent this text`}>
            {u.missingVariable > 0 ? <Text size="sm">{formatNumber(u.missingVariable)} lack a variable the template needs (give it a default: {"{{name|default}}"}).</Text> : null}
            {u.notRepresentable > 0 ? <Text size="sm">{formatNumber(u.notRepresentable)} have a character GSM-7 cannot carry (choose automatic or UCS-2).</Text> : null}
            {u.tooLong > 0 ? <Text size="sm">{formatNumber(u.tooLong)} would take more than 255 parts.</Text> : null}
          </Notice>
        )
        : null}
      {preview.missingLists.length > 0
        ? <Alert color="red" variant="light" title="Lists not found">{preview.missingLists.join(", ")}</Alert>
        : null}
    </Stack>
  )
}

/** The first rendered messages, each with its number, text, encoding and parts (or why it cannot be sent). */
export const SamplesTable = ({ messages, label = "Rendered samples" }: { readonly messages: Preview["messages"]; readonly label?: string }) => (
  <ScrollTable minWidth={480} label={label}>
    <Table striped aria-label={label} verticalSpacing="xs">
      <Table.Thead>
        <Table.Tr>
          <Table.Th>To</Table.Th>
          <Table.Th>Text</Table.Th>
          <Table.Th>Encoding</Table.Th>
          <Table.Th ta="right">Parts</Table.Th>
        </Table.Tr>
      </Table.Thead>
      <Table.Tbody>
        {messages.map((m) => (
          <Table.Tr key={`${m.listId}-${m.pos}`}>
            <Table.Td><Text size="sm" ff="monospace">{m.to}</Text></Table.Td>
            <Table.Td>
              <Text size="sm" style={{ whiteSpace: "pre-wrap", wordBreak: "break-word" }}>{m.text}</Text>
              {m.problem !== undefined ? <Text size="xs" c="red.9">Not sendable: {m.problem}</Text> : null}
            </Table.Td>
            <Table.Td><Tag color={m.encoding === "ucs2" ? "grape" : "gray"} tt="none">{encodingLabel(m.encoding)}</Tag></Table.Td>
            <Table.Td ta="right">{m.segments}</Table.Td>
          </Table.Tr>
        ))}
      </Table.Tbody>
    </Table>
  </ScrollTable>
)

/** A saved campaign's preview: its first rows rendered and its totals. */
/** `version` (the campaign's updatedAt) keys the answer: an edited campaign is previewed again. */
export const useCampaignPreview = (campaignId: string, version: string, n = 5) =>
  useQuery({
    queryKey: ["/v1/campaigns", campaignId, "preview", n, version],
    queryFn: () => unwrap(api.GET("/v1/campaigns/{id}/preview", { params: { path: { id: campaignId }, query: { n: String(n) } } })),
    staleTime: 60_000,
    ...insightRetry
  })

export const CampaignSamples = ({ campaignId, version, n = 5 }: {
  readonly campaignId: string
  readonly version: string
  readonly n?: number
}) => {
  const preview = useCampaignPreview(campaignId, version, n)
  return (
    <QueryState query={preview}>
      {(p) => (
        <Stack gap="sm">
          <PreviewTotals preview={p} />
          {p.messages.length > 0 ? <SamplesTable messages={p.messages} /> : <Text size="sm" c="dimmed">The audience is empty.</Text>}
        </Stack>
      )}
    </QueryState>
  )
}

const RuleTable = ({ label, headers, rows }: {
  readonly label: string
  readonly headers: ReadonlyArray<string>
  readonly rows: ReadonlyArray<ReadonlyArray<string>>
}) => (
  <ScrollTable minWidth={360} label={label}>
    <Table aria-label={label} verticalSpacing={4}>
      <Table.Thead><Table.Tr>{headers.map((h) => <Table.Th key={h}>{h}</Table.Th>)}</Table.Tr></Table.Thead>
      <Table.Tbody>
        {rows.map((r) => <Table.Tr key={r.join("|")}>{r.map((cell, i) => <Table.Td key={i}>{cell}</Table.Td>)}</Table.Tr>)}
      </Table.Tbody>
    </Table>
  </ScrollTable>
)

const Section = ({ title, children }: { readonly title: string; readonly children: ReactNode }) => (
  <Stack gap={4}>
    <Text fw={600} size="sm" component="h3">{title}</Text>
    {children}
  </Stack>
)

/** The dry run as the approver reads it. */
export const DryRunView = ({ dryRun: d }: { readonly dryRun: DryRun }) => {
  const u = d.unsendable
  const unsendable = u.missingVariable + u.notRepresentable + u.tooLong
  return (
    <Stack gap="sm">
      <Text size="xs" c="dimmed">
        Judged at {formatTime(d.evaluatedAt)} against contact policy version {d.policyVersion}; nothing was sent or counted.
      </Text>
      <SimpleGrid cols={{ base: 2, sm: 3, md: 6 }}>
        <Figure label="Recipients" value={formatNumber(d.recipients)} />
        <Figure label="Will be sent" value={formatNumber(d.toSend)} />
        <Figure label="Excluded" value={formatNumber(d.excluded.total)} />
        <Figure label="Deferred" value={formatNumber(d.deferred.total)} />
        <Figure label="No route" value={formatNumber(d.noRoute.total)} />
        <Figure label="Unsendable" value={formatNumber(unsendable)} />
      </SimpleGrid>
      <Card withBorder padding="sm">
        <SimpleGrid cols={{ base: 1, sm: 3 }}>
          <Figure label="Parts to send" value={formatNumber(d.parts.segments)} detail={count(d.parts.messages, "message")} />
          <Figure label="GSM-7" value={`${messages(d.parts.gsm7.messages)} · ${parts(d.parts.gsm7.segments)}`} />
          <Figure label="UCS-2" value={`${messages(d.parts.ucs2.messages)} · ${parts(d.parts.ucs2.segments)}`} />
        </SimpleGrid>
      </Card>
      <Card withBorder padding="sm">
        <SimpleGrid cols={{ base: 1, sm: 3 }}>
          <Figure label="Starts" value={formatTime(d.estimate.startAt)} />
          <Figure
            label="Estimated finish"
            value={d.estimate.finishAt !== undefined ? formatTime(d.estimate.finishAt) : "never: no capacity"}
            detail={finite(d.estimate.durationSeconds) !== undefined ? `in ${formatDuration(d.estimate.durationSeconds)}` : undefined}
          />
          <Figure label="Bottleneck" value={d.estimate.bottleneck} />
        </SimpleGrid>
      </Card>
      {d.excluded.byRule.length > 0
        ? (
          <Section title="Excluded (will not get the message)">
            <RuleTable label="Exclusions per rule" headers={["Rule", "Why", "Recipients"]}
              rows={d.excluded.byRule.map((r) => [r.ruleId, explainReason(r.reason), formatNumber(r.recipients)])} />
          </Section>
        )
        : <Text size="sm">No recipient is excluded by a blacklist or opt-out.</Text>}
      {d.deferred.byRule.length > 0
        ? (
          <Section title="Deferred (sent later, not dropped)">
            <RuleTable label="Deferrals per rule" headers={["Rule", "Why", "Recipients", "From", "Until"]}
              rows={d.deferred.byRule.map((r) => [r.ruleId, explainReason(r.reason), formatNumber(r.recipients), formatTime(r.firstUntil), formatTime(r.lastUntil)])} />
          </Section>
        )
        : null}
      {d.noRoute.byReason.length > 0
        ? (
          <Section title="Without a route">
            <RuleTable label="Recipients without a route" headers={["Why", "Recipients"]}
              rows={d.noRoute.byReason.map((r) => [explainReason(r.reason), formatNumber(r.recipients)])} />
          </Section>
        )
        : null}
      {d.decidedAtSendTime.length > 0
        ? (
          <Section title="Decided when sending (depend on each recipient's counters then)">
            <RuleTable label="Rules decided at send time" headers={["Rule", "Kind", "Applies to"]}
              rows={d.decidedAtSendTime.map((r) => [r.ruleId, explainReason(r.kind), `${formatNumber(r.recipients)} recipients`])} />
          </Section>
        )
        : null}
      {d.routes.length > 0
        ? (
          <Section title="Routes">
            <RuleTable label="Parts per route" headers={["Link or pool", "Messages", "Parts", "Capacity"]}
              rows={d.routes.map((r) => [r.target, formatNumber(r.messages), formatNumber(r.segments), `${formatNumber(finite(r.capacityTps) ?? 0)} parts/s`])} />
          </Section>
        )
        : null}
      <Section title="Limits">
        <RuleTable label="Time each limit alone would take" headers={["Limit", "Rate", "Alone it takes"]}
          rows={d.estimate.limits.map((l) => [l.name, l.detail, finite(l.seconds) !== undefined ? formatDuration(l.seconds) : "never"])} />
      </Section>
      {d.missingLists.length > 0
        ? <Alert color="red" variant="light" title="Lists not found">{d.missingLists.join(", ")}</Alert>
        : null}
    </Stack>
  )
}

/** A saved campaign's dry run, loaded when shown. */
export const CampaignDryRun = ({ campaignId, version, enabled = true }: {
  readonly campaignId: string
  readonly version: string
  readonly enabled?: boolean
}) => {
  const dryRun = useQuery({
    queryKey: ["/v1/campaigns", campaignId, "dry-run", version],
    queryFn: () => unwrap(api.GET("/v1/campaigns/{id}/dry-run", { params: { path: { id: campaignId } } })),
    staleTime: 30_000,
    enabled,
    ...insightRetry
  })
  if (!enabled) return <Text size="sm" c="dimmed">The dry run follows the samples…</Text>
  return <QueryState query={dryRun}>{(d) => <DryRunView dryRun={d} />}</QueryState>
}
