/**
 * The operators' part of the dashboard (superadmin): every link with its state, send rate against its allowed and
 * configured rate, window and queue, and every pool with its members' weights as the pool actor sees them.
 */
import { Card, Group, Stack, Table, Text } from "@mantine/core"
import { formatCount, formatMs, LinkStateBadge, ThrottledBadge } from "../../components/CampaignHealth.tsx"
import type { DashboardView } from "./live.ts"

type Operator = NonNullable<DashboardView["operator"]>

const LinksTable = ({ links }: { readonly links: Operator["links"] }) => (
  <Table.ScrollContainer minWidth={760}>
    <Table striped>
      <Table.Caption className="visually-hidden">Links: state, rate, window and queue</Table.Caption>
      <Table.Thead>
        <Table.Tr>
          <Table.Th>Link</Table.Th>
          <Table.Th>State</Table.Th>
          <Table.Th ta="right">Sending</Table.Th>
          <Table.Th ta="right">Allowed / configured</Table.Th>
          <Table.Th ta="right">Window</Table.Th>
          <Table.Th ta="right">Queue</Table.Th>
          <Table.Th ta="right">Receipt p50 · p95</Table.Th>
          <Table.Th>Errors (15 min)</Table.Th>
        </Table.Tr>
      </Table.Thead>
      <Table.Tbody>
        {links.map((l) => (
          <Table.Tr key={l.linkId}>
            <Table.Th scope="row">{l.linkId}</Table.Th>
            <Table.Td>
              <Group gap={4} wrap="nowrap">
                <LinkStateBadge state={l.state} />
                {l.throttled && l.state !== "throttled" ? <ThrottledBadge /> : null}
              </Group>
            </Table.Td>
            <Table.Td ta="right">{formatCount(l.figures.rates.submitted)}/s</Table.Td>
            <Table.Td ta="right">{formatCount(l.currentTps)} / {formatCount(l.tps)} per s</Table.Td>
            <Table.Td ta="right">{l.windowInUse} / {l.window}</Table.Td>
            <Table.Td ta="right">{formatCount(l.queued)}</Table.Td>
            <Table.Td ta="right">{formatMs(l.figures.receipt.p50Ms)} · {formatMs(l.figures.receipt.p95Ms)}</Table.Td>
            <Table.Td>
              {l.figures.errors.length === 0
                ? "none"
                : l.figures.errors.slice(0, 3).map((e) => `${e.status} × ${formatCount(e.count)}`).join(", ")}
              {l.lastError !== undefined && l.lastError !== "" ? <Text size="xs" c="dimmed">last: {l.lastError}</Text> : null}
            </Table.Td>
          </Table.Tr>
        ))}
      </Table.Tbody>
    </Table>
  </Table.ScrollContainer>
)

const PoolsTable = ({ pools }: { readonly pools: Operator["pools"] }) => (
  <Table.ScrollContainer minWidth={520}>
    <Table striped>
      <Table.Caption className="visually-hidden">Pools and their members' weights</Table.Caption>
      <Table.Thead>
        <Table.Tr>
          <Table.Th>Pool</Table.Th>
          <Table.Th>Member</Table.Th>
          <Table.Th>State</Table.Th>
          <Table.Th ta="right">Weight (effective / configured)</Table.Th>
          <Table.Th ta="right">Current rate</Table.Th>
        </Table.Tr>
      </Table.Thead>
      <Table.Tbody>
        {pools.flatMap((p) =>
          p.members.map((m, i) => (
            <Table.Tr key={`${p.poolId}|${m.linkId}`}>
              {i === 0 ? <Table.Th scope="rowgroup" rowSpan={p.members.length}>{p.poolId}</Table.Th> : null}
              <Table.Td>{m.linkId}</Table.Td>
              <Table.Td><LinkStateBadge state={m.state} /></Table.Td>
              <Table.Td ta="right">{formatCount(m.effectiveWeight)} / {formatCount(m.configuredWeight)}</Table.Td>
              <Table.Td ta="right">{formatCount(m.currentTps)}/s</Table.Td>
            </Table.Tr>
          ))
        )}
      </Table.Tbody>
    </Table>
  </Table.ScrollContainer>
)

export const OperatorPanel = ({ operator }: { readonly operator: Operator }) => (
  <Stack gap="md" component="section" aria-labelledby="operator-heading">
    <Text id="operator-heading" component="h2" fw={700} fz="lg">Links and pools</Text>
    <Card withBorder>
      <Text fw={600} mb="xs" component="h3" fz="md">Links</Text>
      {operator.links.length === 0 ? <Text size="sm" c="dimmed">No link is configured.</Text> : <LinksTable links={operator.links} />}
    </Card>
    <Card withBorder>
      <Text fw={600} mb="xs" component="h3" fz="md">Pools</Text>
      {operator.pools.length === 0 ? <Text size="sm" c="dimmed">No pool is configured.</Text> : <PoolsTable pools={operator.pools} />}
    </Card>
  </Stack>
)
