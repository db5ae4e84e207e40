/**
 * SMPP links (operators): each link's configuration beside its live state — bind, health, rate now and configured,
 * window in use, queue, results — updated every second; enable, disable and rebind.
 */
import { Button, Group, Progress, Stack, Table, Text } from "@mantine/core"
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query"
import { api, unwrap } from "../../api/client.ts"
import { Page } from "../../components/Page.tsx"
import { Empty, ProblemAlert, QueryState } from "../../components/States.tsx"
import { figure, healthColor, useLive } from "./live.ts"
import type { LinkLive } from "./live.ts"
import { Tag } from "../policy/Tag.tsx"

const State = ({ live, enabled }: { readonly live: LinkLive | undefined; readonly enabled: boolean }) => {
  if (!enabled) return <Tag color="gray">Disabled</Tag>
  if (live?.state === undefined) return <Tag color="gray" outline>{live?.unavailable !== undefined ? "Not answering" : "…"}</Tag>
  return <Tag color={healthColor[live.state.health] ?? "gray"}>{live.state.health}</Tag>
}

const Links = () => {
  const queries = useQueryClient()
  const links = useQuery({ queryKey: ["/v1/admin/links"], queryFn: () => unwrap(api.GET("/v1/admin/links")) })
  const live = useLive()
  const act = useMutation({
    mutationFn: ({ id, action }: { readonly id: string; readonly action: "enable" | "disable" | "rebind" }) =>
      action === "rebind"
        ? unwrap(api.POST("/v1/admin/links/{linkId}/rebind", { params: { path: { linkId: id } } }))
        : action === "enable"
        ? unwrap(api.POST("/v1/admin/links/{linkId}/enable", { params: { path: { linkId: id } } }))
        : unwrap(api.POST("/v1/admin/links/{linkId}/disable", { params: { path: { linkId: id } } })),
    onSuccess: () => Promise.all([queries.invalidateQueries({ queryKey: ["/v1/admin/links"] }), queries.invalidateQueries({ queryKey: ["/v1/admin/state"] })])
  })
  const byId = new Map((live.data?.links ?? []).map((l) => [l.linkId, l]))
  return (
    <Page title="Links">
      {act.isError ? <ProblemAlert error={act.error} title="The link did not change" /> : null}
      <QueryState query={links}>
        {(all) =>
          all.length === 0
            ? <Empty>No link is configured.</Empty>
            : (
              <Table.ScrollContainer minWidth={900}>
                <Table striped aria-label="Links and their live state">
                  <Table.Thead>
                    <Table.Tr>
                      <Table.Th>Link</Table.Th>
                      <Table.Th>State</Table.Th>
                      <Table.Th>Rate now / configured</Table.Th>
                      <Table.Th>Window in use</Table.Th>
                      <Table.Th>Queued</Table.Th>
                      <Table.Th>Submitted / errors / timeouts</Table.Th>
                      <Table.Th><span className="visually-hidden">Actions</span></Table.Th>
                    </Table.Tr>
                  </Table.Thead>
                  <Table.Tbody>
                    {all.map((link) => {
                      const l = byId.get(link.id)
                      const s = l?.state
                      const busy = act.isPending && act.variables.id === link.id
                      return (
                        <Table.Tr key={link.id}>
                          <Table.Td>
                            <Text fw={600}>{link.id}</Text>
                            <Text size="xs" c="dimmed">{link.host}:{link.port} · {link.systemId}</Text>
                          </Table.Td>
                          <Table.Td>
                            <Stack gap={2}>
                              <State live={l} enabled={link.enabled} />
                              {s?.lastError !== undefined ? <Text size="xs" c="red.9">{s.lastError}</Text> : null}
                            </Stack>
                          </Table.Td>
                          <Table.Td>{s !== undefined ? `${figure(s.currentTps)} / ${figure(s.tps)} per s` : "—"}</Table.Td>
                          <Table.Td>
                            {s !== undefined
                              ? (
                                <Stack gap={2}>
                                  <Text size="sm">{s.windowInUse} of {s.window}</Text>
                                  <Progress value={s.window > 0 ? (100 * s.windowInUse) / s.window : 0} size="sm" aria-label={`Window of ${link.id} in use`} />
                                </Stack>
                              )
                              : "—"}
                          </Table.Td>
                          <Table.Td>{s?.queued ?? "—"}</Table.Td>
                          <Table.Td>
                            {s !== undefined ? `${figure(s.counters.submitted)} / ${figure(s.counters.submitErrors)} / ${figure(s.counters.timeouts)}` : "—"}
                          </Table.Td>
                          <Table.Td>
                            <Group gap="xs" wrap="nowrap">
                              {link.enabled
                                ? (
                                  <Button size="xs" color="red" variant="light" loading={busy && act.variables.action === "disable"}
                                    onClick={() => act.mutate({ id: link.id, action: "disable" })} aria-label={`Disable ${link.id}`}>
                                    Disable
                                  </Button>
                                )
                                : (
                                  <Button size="xs" variant="light" loading={busy && act.variables.action === "enable"}
                                    onClick={() => act.mutate({ id: link.id, action: "enable" })} aria-label={`Enable ${link.id}`}>
                                    Enable
                                  </Button>
                                )}
                              <Button size="xs" variant="subtle" disabled={!link.enabled} loading={busy && act.variables.action === "rebind"}
                                onClick={() => act.mutate({ id: link.id, action: "rebind" })} aria-label={`Rebind ${link.id}`}>
                                Rebind
                              </Button>
                            </Group>
                          </Table.Td>
                        </Table.Tr>
                      )
                    })}
                  </Table.Tbody>
                </Table>
              </Table.ScrollContainer>
            )}
      </QueryState>
      {live.isError ? <ProblemAlert error={live.error} title="Live state unavailable" /> : null}
    </Page>
  )
}

export default Links
