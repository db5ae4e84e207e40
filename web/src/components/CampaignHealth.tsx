/**
 * A campaign's delivery health, for its page: the links and pools its messages use, with the campaign's own rate,
 * time to receipt and errors by SMPP status on each, and each link's state, so a slow campaign explains itself. Live
 * from `/v1/campaigns/{id}/health/stream` into the query cache. Also the small pieces the dashboard shares with it:
 * live streams that come back, link-state badges, error lists, number formats.
 */
import { Alert, Badge, Card, Group, SimpleGrid, Stack, Table, Text } from "@mantine/core"
import { useQuery, useQueryClient } from "@tanstack/react-query"
import { useCallback, useEffect } from "react"
import { api, unwrap } from "../api/client.ts"
import { subscribe } from "../api/sse.ts"
import type { Ok } from "../api/types.ts"
import { Empty, QueryState } from "./States.tsx"

export type CampaignHealthView = Ok<"/v1/campaigns/{id}/health", "get">
type LinkFigures = CampaignHealthView["links"][number]["figures"]
type ErrorCount = LinkFigures["errors"][number]
export type LinkState = CampaignHealthView["links"][number]["state"]

/** A stream that went quiet this long (ended after its hour, or by a failure) is opened again. */
const quietMs = 5_000

/**
 * Subscribes to a Server-Sent Events path while mounted, handing each event to `onData`; a stream that ends (the
 * server closes it after an hour) or goes quiet is opened again, so a screen left open stays live.
 */
export const useStream = (path: string, onData: (data: unknown) => void) => {
  useEffect(() => {
    const outer = new AbortController()
    let current = new AbortController()
    let last = Date.now()
    const open = () => {
      current = new AbortController()
      const signal = AbortSignal.any([outer.signal, current.signal])
      subscribe(path, (data) => {
        last = Date.now()
        onData(data)
      }, signal)
    }
    open()
    const watchdog = setInterval(() => {
      if (Date.now() - last < quietMs) return
      current.abort()
      last = Date.now()
      open()
    }, 1_000)
    return () => {
      clearInterval(watchdog)
      outer.abort()
    }
  }, [path, onData])
}

const number = new Intl.NumberFormat("en", { maximumFractionDigits: 1 })

/** 1,234 · 12.5 */
export const formatCount = (n: number) => number.format(n)

/** 850 ms · 2.1 s · 3.5 min; a dash when unknown. */
export const formatMs = (ms: number | undefined) =>
  ms === undefined ? "–" : ms < 1000 ? `${Math.round(ms)} ms` : ms < 60_000 ? `${number.format(ms / 1000)} s` : `${number.format(ms / 60_000)} min`

export const formatPercent = (ratio: number | undefined) => ratio === undefined ? "–" : `${number.format(ratio * 100)} %`

const stateColour: Record<LinkState, string> = {
  bound: "green",
  throttled: "yellow",
  degraded: "orange",
  unbound: "red",
  disabled: "gray",
  unknown: "gray"
}

/** The text colour of badges: the tinted ones' own colours are below 4.5:1 on their tint (WCAG AA). */
const badgeText = "var(--mantine-color-text)"

/** The state in words and colour (never colour alone). */
export const LinkStateBadge = ({ state }: { readonly state: LinkState }) => (
  <Badge color={stateColour[state]} variant="light" c={badgeText}>{state}</Badge>
)

/** Marks a link sending below its configured rate after throttling answers. */
export const ThrottledBadge = () => <Badge color="yellow" variant="outline" c={badgeText}>throttled</Badge>

const kindLabel: Record<ErrorCount["kind"], string> = {
  failed: "refused for good",
  retried: "retried",
  undelivered: "undelivered",
  expired: "expired"
}

/** Errors by SMPP status, most frequent first. */
export const ErrorTable = ({ errors, caption, empty }: {
  readonly errors: ReadonlyArray<ErrorCount>
  readonly caption: string
  readonly empty: string
}) =>
  errors.length === 0
    ? <Text size="sm" c="dimmed">{empty}</Text>
    : (
      <Table.ScrollContainer minWidth={280}>
        <Table striped>
          <Table.Caption className="visually-hidden">{caption}</Table.Caption>
          <Table.Thead>
            <Table.Tr><Table.Th>SMPP status</Table.Th><Table.Th>What happened</Table.Th><Table.Th ta="right">Count</Table.Th></Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {errors.map((e) => (
              <Table.Tr key={`${e.kind}|${e.status}`}>
                <Table.Td ff="monospace">{e.status}</Table.Td>
                <Table.Td>{kindLabel[e.kind]}</Table.Td>
                <Table.Td ta="right">{formatCount(e.count)}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </Table.ScrollContainer>
    )

const healthKey = (campaignId: string) => ["/v1/campaigns", campaignId, "health"] as const

/** One line on why the campaign goes at the pace it does. */
const diagnosis = (health: CampaignHealthView): string | undefined => {
  const throttled = health.links.filter((l) => l.throttled || l.state === "throttled").map((l) => l.linkId)
  const down = health.links.filter((l) => l.state === "unbound" || l.state === "disabled" || l.state === "degraded").map((l) => l.linkId)
  if (down.length > 0) return `Link ${down.join(", ")} is not sending normally: messages wait or move to other pool members.`
  if (throttled.length > 0) return `Link ${throttled.join(", ")} is throttled by the operator's SMSC: it sends below its configured rate for now.`
  const retried = health.window.errors.filter((e) => e.kind === "retried").reduce((n, e) => n + e.count, 0)
  if (retried > 0) return `${formatCount(retried)} submits were answered with a transient error and sent again.`
  return undefined
}

const LinkRow = ({ link }: { readonly link: CampaignHealthView["links"][number] }) => {
  const f = link.figures
  const top = f.errors[0]
  return (
    <Table.Tr>
      <Table.Th scope="row">{link.linkId}</Table.Th>
      <Table.Td>
        <Group gap={4} wrap="nowrap">
          <LinkStateBadge state={link.state} />
          {link.throttled && link.state !== "throttled" ? <ThrottledBadge /> : null}
        </Group>
      </Table.Td>
      <Table.Td ta="right">{formatCount(f.rates.submitted)}/s</Table.Td>
      <Table.Td ta="right">{formatCount(f.totals.submitted)}</Table.Td>
      <Table.Td ta="right">{formatCount(f.totals.delivered)}</Table.Td>
      <Table.Td ta="right">{formatMs(f.receipt.p50Ms)} · {formatMs(f.receipt.p95Ms)}</Table.Td>
      <Table.Td>{top === undefined ? "none" : `${top.status} × ${formatCount(top.count)}`}</Table.Td>
    </Table.Tr>
  )
}

const HealthBody = ({ health }: { readonly health: CampaignHealthView }) => {
  const why = diagnosis(health)
  return (
    <Stack gap="sm">
      <SimpleGrid cols={{ base: 2, sm: 4 }} spacing="xs">
        <Fig label="Sending now" value={`${formatCount(health.rates.submitted)}/s`} hint={`throttle ${formatCount(health.throttle)}/s`} />
        <Fig label="Delivered (15 min)" value={formatCount(health.window.totals.delivered)} hint={`of ${formatCount(health.window.totals.submitted)} submitted`} />
        <Fig label="Time to receipt" value={formatMs(health.window.receipt.p50Ms)} hint={`p95 ${formatMs(health.window.receipt.p95Ms)}`} />
        <Fig label="Delivery rate" value={formatPercent(health.window.deliveryRate)} hint="of final statuses, 15 min" />
      </SimpleGrid>
      {why !== undefined ? <Alert color="yellow" variant="light" title="Why it is slower">{why}</Alert> : null}
      {health.links.length === 0
        ? <Empty>No message of this campaign went to a link in the last hour.</Empty>
        : (
          <Table.ScrollContainer minWidth={640}>
            <Table>
              <Table.Caption className="visually-hidden">Links the campaign's messages use</Table.Caption>
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>Link</Table.Th>
                  <Table.Th>State</Table.Th>
                  <Table.Th ta="right">Rate</Table.Th>
                  <Table.Th ta="right">Submitted</Table.Th>
                  <Table.Th ta="right">Delivered</Table.Th>
                  <Table.Th ta="right">Receipt p50 · p95</Table.Th>
                  <Table.Th>Most frequent error</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {health.links.map((l) => <LinkRow key={l.linkId} link={l} />)}
              </Table.Tbody>
            </Table>
          </Table.ScrollContainer>
        )}
      {health.pools.map((pool) => (
        <Stack key={pool.poolId} gap={4}>
          <Text size="sm" fw={600}>Pool {pool.poolId}</Text>
          <Group gap="xs">
            {pool.members.map((m) => (
              <Badge key={m.linkId} variant="outline" color={stateColour[m.state]} c={badgeText} tt="none">
                {m.linkId}: {m.state}, weight {formatCount(m.effectiveWeight)}/{formatCount(m.configuredWeight)}, {formatCount(m.submitted)} sent
              </Badge>
            ))}
          </Group>
        </Stack>
      ))}
      <ErrorTable errors={health.window.errors} caption="The campaign's errors by SMPP status" empty="No errors in the last 15 minutes." />
    </Stack>
  )
}

const Fig = ({ label, value, hint }: { readonly label: string; readonly value: string; readonly hint: string }) => (
  <Card withBorder padding="xs" role="group" aria-label={label}>
    <Text size="xs" c="dimmed">{label}</Text>
    <Text fz="lg" fw={700}>{value}</Text>
    <Text size="xs" c="dimmed">{hint}</Text>
  </Card>
)

/** The campaign's link and pool health, live. Embed it on the campaign's page. */
export const CampaignHealth = ({ campaignId }: { readonly campaignId: string }) => {
  const client = useQueryClient()
  const query = useQuery({
    queryKey: healthKey(campaignId),
    queryFn: () => unwrap(api.GET("/v1/campaigns/{id}/health", { params: { path: { id: campaignId } } }))
  })
  // Each event is the whole view: it replaces the cached one.
  const onData = useCallback((data: unknown) => client.setQueryData(healthKey(campaignId), data), [client, campaignId])
  useStream(`/v1/campaigns/${encodeURIComponent(campaignId)}/health/stream`, onData)
  return (
    <Card withBorder component="section" aria-label="Delivery health">
      <Text fw={600} mb="xs">Delivery health</Text>
      <QueryState query={query} notFound="Campaign not found">{(health) => <HealthBody health={health} />}</QueryState>
    </Card>
  )
}
