/**
 * The organisation's live dashboard: what went through in the last 15 minutes and how fast right now, the last hour
 * minute by minute, errors by SMPP status and refusals by reason; operators also see every link and pool. Painted
 * from `/v1/dashboard`, then kept live by its stream (every second) in the same cache entry.
 */
import { Badge, Card, SimpleGrid, Stack, Table, Text } from "@mantine/core"
import { useQuery } from "@tanstack/react-query"
import { api, unwrap } from "../../api/client.ts"
import { ErrorTable, formatCount, formatMs, formatPercent } from "../../components/CampaignHealth.tsx"
import { Page } from "../../components/Page.tsx"
import { QueryState } from "../../components/States.tsx"
import type { DashboardView } from "./live.ts"
import { dashboardKey, useLiveDashboard } from "./live.ts"
import { OperatorPanel } from "./OperatorPanel.tsx"
import { TimeChart } from "./TimeChart.tsx"

const Tile = ({ label, value, hint }: { readonly label: string; readonly value: string; readonly hint: string }) => (
  <Card withBorder padding="sm" role="group" aria-label={label}>
    <Text size="xs" c="dimmed" fw={600} tt="uppercase">{label}</Text>
    <Text fz={28} fw={700} lh={1.3}>{value}</Text>
    <Text size="xs" c="dimmed">{hint}</Text>
  </Card>
)

const perSecond = (n: number) => `${formatCount(n)}/s now`

const Tiles = ({ view }: { readonly view: DashboardView }) => {
  const { totals, receipt, deliveryRate } = view.window
  const final = totals.delivered + totals.undelivered + totals.expired + totals.failed
  return (
    <SimpleGrid cols={{ base: 2, sm: 3, lg: 6 }} spacing="sm">
      <Tile label="Accepted" value={formatCount(totals.accepted)} hint={perSecond(view.rates.accepted)} />
      <Tile label="Submitted" value={formatCount(totals.submitted)} hint={perSecond(view.rates.submitted)} />
      <Tile label="Delivered" value={formatCount(totals.delivered)} hint={perSecond(view.rates.delivered)} />
      <Tile label="Delivery rate" value={formatPercent(deliveryRate)} hint={`${formatCount(final)} reached a final status`} />
      <Tile label="Time to receipt" value={formatMs(receipt.p50Ms)} hint={`median; p95 ${formatMs(receipt.p95Ms)}`} />
      <Tile label="Refused" value={formatCount(totals.refused)} hint={perSecond(view.rates.refused)} />
    </SimpleGrid>
  )
}

const Charts = ({ view }: { readonly view: DashboardView }) => {
  const times = view.series.map((p) => Date.parse(p.at))
  return (
    <SimpleGrid cols={{ base: 1, md: 2 }} spacing="sm">
      <Card withBorder>
        <Text fw={600} mb="xs" component="h2" fz="md">Messages per minute, last hour</Text>
        <TimeChart
          caption="Messages per minute over the last hour: accepted, submitted, delivered, failed and refused"
          times={times}
          lines={[
            { label: "Accepted", colour: "blue", values: view.series.map((p) => p.accepted) },
            { label: "Submitted", colour: "violet", values: view.series.map((p) => p.submitted) },
            { label: "Delivered", colour: "teal", values: view.series.map((p) => p.delivered) },
            { label: "Failed", colour: "red", values: view.series.map((p) => p.failed) },
            { label: "Refused", colour: "orange", values: view.series.map((p) => p.refused) }
          ]}
        />
      </Card>
      <Card withBorder>
        <Text fw={600} mb="xs" component="h2" fz="md">Time to receipt, last hour</Text>
        <TimeChart
          caption="Median and 95th percentile time from acceptance to delivery receipt, per minute over the last hour"
          times={times}
          lines={[
            { label: "Median", colour: "teal", values: view.series.map((p) => p.receiptP50Ms ?? null), format: formatMs, sparse: true },
            { label: "p95", colour: "grape", values: view.series.map((p) => p.receiptP95Ms ?? null), format: formatMs, sparse: true }
          ]}
        />
      </Card>
    </SimpleGrid>
  )
}

const Refusals = ({ refusals }: { readonly refusals: DashboardView["window"]["refusals"] }) =>
  refusals.length === 0
    ? <Text size="sm" c="dimmed">Nothing refused in the last 15 minutes.</Text>
    : (
      <Table.ScrollContainer minWidth={280}>
        <Table striped>
          <Table.Caption className="visually-hidden">Refusals by reason and rule</Table.Caption>
          <Table.Thead>
            <Table.Tr><Table.Th>Reason</Table.Th><Table.Th>Rule</Table.Th><Table.Th ta="right">Count</Table.Th></Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {refusals.map((r) => (
              <Table.Tr key={`${r.reason}|${r.ruleId ?? ""}`}>
                <Table.Td>{r.reason.replaceAll("_", " ")}</Table.Td>
                <Table.Td ff="monospace">{r.ruleId ?? "–"}</Table.Td>
                <Table.Td ta="right">{formatCount(r.count)}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </Table.ScrollContainer>
    )

const Body = ({ view }: { readonly view: DashboardView }) => (
  <Stack gap="md">
    <Tiles view={view} />
    <Charts view={view} />
    <SimpleGrid cols={{ base: 1, md: 2 }} spacing="sm">
      <Card withBorder>
        <Text fw={600} mb="xs" component="h2" fz="md">Errors by SMPP status</Text>
        <ErrorTable errors={view.window.errors} caption="Errors by SMPP status, last 15 minutes" empty="No errors in the last 15 minutes." />
      </Card>
      <Card withBorder>
        <Text fw={600} mb="xs" component="h2" fz="md">Refusals by reason</Text>
        <Refusals refusals={view.window.refusals} />
      </Card>
    </SimpleGrid>
    {view.operator !== undefined ? <OperatorPanel operator={view.operator} /> : null}
  </Stack>
)

const Dashboard = () => {
  const query = useQuery({ queryKey: dashboardKey, queryFn: () => unwrap(api.GET("/v1/dashboard")) })
  useLiveDashboard()
  const at = query.data === undefined ? undefined : new Date(query.data.at)
  return (
    <Page
      title="Dashboard"
      actions={at !== undefined
        ? <Badge variant="dot" color="green" title="Updated every second">Live · {at.toLocaleTimeString()}</Badge>
        : null}
    >
      <Text size="sm" c="dimmed">Totals of the last 15 minutes; rates per second now. Every figure is the whole gateway's, about two seconds behind.</Text>
      <QueryState query={query}>{(view) => <Body view={view} />}</QueryState>
    </Page>
  )
}

export default Dashboard
