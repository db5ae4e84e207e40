/**
 * Virtual pools (operators): each pool's members with their configured weight (editable, applied live) and the
 * weight the pool gives them now (configured × health × share of their rate), their state and rate, and which
 * member the pool would pick next.
 */
import { Button, Card, Group, NumberInput, Stack, Table, Text, Title } from "@mantine/core"
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query"
import { useState } from "react"
import { api, unwrap } from "../../api/client.ts"
import type { Ok } from "../../api/types.ts"
import { fieldError } from "../../components/Forms.tsx"
import { Page } from "../../components/Page.tsx"
import { Empty, ProblemAlert, QueryState } from "../../components/States.tsx"
import { figure, healthColor, useLive } from "./live.ts"
import type { PoolLive } from "./live.ts"
import { Tag } from "../policy/Tag.tsx"

type Pool = Ok<"/v1/admin/pools", "get">[number]

const PoolCard = ({ pool, live }: { readonly pool: Pool; readonly live: PoolLive | undefined }) => {
  const queries = useQueryClient()
  const [weights, setWeights] = useState<Record<string, number | string>>({})
  const save = useMutation({
    mutationFn: () =>
      unwrap(api.PATCH("/v1/admin/pools/{poolId}/weights", {
        params: { path: { poolId: pool.id } },
        body: { weights: Object.fromEntries(Object.entries(weights).map(([k, v]) => [k, v === "" ? 0 : Number(v)])) }
      })),
    onSuccess: async () => {
      setWeights({})
      await Promise.all([queries.invalidateQueries({ queryKey: ["/v1/admin/pools"] }), queries.invalidateQueries({ queryKey: ["/v1/admin/state"] })])
    }
  })
  const members = new Map((live?.state?.members ?? []).map((m) => [m.linkId, m]))
  const changed = Object.keys(weights).length > 0
  return (
    <Card withBorder>
      <Stack gap="sm">
        <Group justify="space-between">
          <Title order={2} size="h4">{pool.id}</Title>
          {live?.nextPick !== undefined ? <Text size="sm">Next pick: <b>{live.nextPick}</b></Text> : <Text size="sm" c="dimmed">No member can be picked</Text>}
        </Group>
        {save.isError && Object.keys(weights).every((k) => fieldError(save.error, `weights.${k}`) === undefined)
          ? <ProblemAlert error={save.error} title="Weights not changed" />
          : null}
        <Table.ScrollContainer minWidth={560}>
          <Table aria-label={`Members of ${pool.id}`}>
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Link</Table.Th>
                <Table.Th>Weight</Table.Th>
                <Table.Th>Effective weight</Table.Th>
                <Table.Th>State</Table.Th>
                <Table.Th>Rate now</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {pool.members.map((member) => {
                const m = members.get(member.link)
                return (
                  <Table.Tr key={member.link}>
                    <Table.Td>{member.link}</Table.Td>
                    <Table.Td>
                      <NumberInput
                        aria-label={`Weight of ${member.link} in ${pool.id}`}
                        w={110}
                        size="xs"
                        value={weights[member.link] ?? member.weight ?? m?.configuredWeight ?? ""}
                        placeholder="link's TPS"
                        onChange={(v) => setWeights({ ...weights, [member.link]: v })}
                        error={fieldError(save.error, `weights.${member.link}`)}
                      />
                    </Table.Td>
                    <Table.Td>{m !== undefined ? figure(m.effectiveWeight) : "—"}</Table.Td>
                    <Table.Td>{m !== undefined ? <Tag color={healthColor[m.state] ?? "gray"}>{m.state}</Tag> : "—"}</Table.Td>
                    <Table.Td>{m !== undefined ? `${figure(m.currentTps)} per s` : "—"}</Table.Td>
                  </Table.Tr>
                )
              })}
            </Table.Tbody>
          </Table>
        </Table.ScrollContainer>
        <Group>
          <Button size="sm" disabled={!changed} loading={save.isPending} onClick={() => save.mutate()}>Save weights of {pool.id}</Button>
          {changed ? <Button size="sm" variant="subtle" onClick={() => setWeights({})}>Undo</Button> : null}
        </Group>
      </Stack>
    </Card>
  )
}

const Pools = () => {
  const pools = useQuery({ queryKey: ["/v1/admin/pools"], queryFn: () => unwrap(api.GET("/v1/admin/pools")) })
  const live = useLive()
  const byId = new Map((live.data?.pools ?? []).map((p) => [p.poolId, p]))
  return (
    <Page title="Pools">
      <QueryState query={pools}>
        {(all) =>
          all.length === 0
            ? <Empty>No pool is configured: routes send to links directly.</Empty>
            : <Stack gap="md">{all.map((p) => <PoolCard key={p.id} pool={p} live={byId.get(p.id)} />)}</Stack>}
      </QueryState>
    </Page>
  )
}

export default Pools
