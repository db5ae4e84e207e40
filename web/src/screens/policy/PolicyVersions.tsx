/**
 * The policy's history: every version with who saved it, when and why, newest first; any two compared (the diff is
 * computed here from the two documents: rules matched by id, each change field by field); an old version restored
 * as a new one.
 */
import { Button, Card, Group, List, Radio, Stack, Table, Text, Title } from "@mantine/core"
import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from "@tanstack/react-query"
import { useState } from "react"
import { api, unwrap } from "../../api/client.ts"
import { Page } from "../../components/Page.tsx"
import { Empty, Loading, ProblemAlert, QueryState } from "../../components/States.tsx"
import type { Change, PolicyDocument } from "./model.ts"
import { diffPolicies } from "./model.ts"
import { Tag } from "./Tag.tsx"

const versionQuery = (version: number) => ({
  queryKey: ["/v1/policies/versions", version],
  queryFn: () => unwrap(api.GET("/v1/policies/versions/{version}", { params: { path: { version: String(version) } } })),
  staleTime: Infinity
})

const ChangeItem = ({ change }: { readonly change: Change }) => {
  const what = change.what === "rule" ? "Rule" : "Blacklist"
  switch (change.kind) {
    case "added":
      return <List.Item><Tag color="green">added</Tag>{" "}{what} <b>{change.id}</b>: {change.text}</List.Item>
    case "removed":
      return <List.Item><Tag color="red">removed</Tag>{" "}{what} <b>{change.id}</b>: {change.text}</List.Item>
    case "moved":
      return <List.Item><Tag color="gray">moved</Tag>{" "}{what} <b>{change.id}</b>: place {change.from} → {change.to}</List.Item>
    case "changed":
      return (
        <List.Item>
          <Tag color="blue">changed</Tag>{" "}{what} <b>{change.id}</b>
          <List size="sm" withPadding>
            {change.fields.map((f) => (
              <List.Item key={f.field}>
                <code>{f.field}</code>: <del>{f.before}</del> → <ins>{f.after}</ins>
              </List.Item>
            ))}
          </List>
        </List.Item>
      )
  }
}

const Diff = ({ from, to }: { readonly from: number; readonly to: number }) => {
  const a = useQuery(versionQuery(from))
  const b = useQuery(versionQuery(to))
  if (a.isPending || b.isPending) return <Loading label="Reading both versions…" />
  if (a.isError || b.isError) return <ProblemAlert error={a.error ?? b.error} />
  const docA = a.data.document as PolicyDocument | undefined
  const docB = b.data.document as PolicyDocument | undefined
  if (docA === undefined || docB === undefined) return <Text c="red.9">One of the versions does not decode: {a.data.error ?? b.data.error}</Text>
  const changes = diffPolicies(docA, docB)
  return (
    <Stack gap="xs" aria-label={`Changes from version ${from} to version ${to}`} role="region">
      <Text fw={600}>From version {from} to version {to}: {changes.length === 0 ? "no change" : `${changes.length} change(s)`}</Text>
      {changes.length > 0 ? <List spacing="xs">{changes.map((c, i) => <ChangeItem key={i} change={c} />)}</List> : null}
    </Stack>
  )
}

const PolicyVersions = () => {
  const queries = useQueryClient()
  const versions = useInfiniteQuery({
    queryKey: ["/v1/policies/versions"],
    initialPageParam: undefined as number | undefined,
    queryFn: ({ pageParam }) =>
      unwrap(api.GET("/v1/policies/versions", { params: { query: { limit: "50", ...(pageParam !== undefined ? { before: String(pageParam) } : {}) } } })),
    getNextPageParam: (page) => page.next
  })
  const [picked, setPicked] = useState<{ a?: number; b?: number }>({})
  const restore = useMutation({
    mutationFn: async (version: number) => {
      const old = await queries.fetchQuery(versionQuery(version))
      const current = await unwrap(api.GET("/v1/policies"))
      const document = old.document
      if (document === undefined) throw new Error(`version ${version} does not decode`)
      return unwrap(api.PUT("/v1/policies", {
        body: { ...document, expectedVersion: current.version, note: `restore version ${version}` }
      }))
    },
    onSuccess: async (saved) => {
      queries.setQueryData(["/v1/policies"], saved)
      await queries.invalidateQueries({ queryKey: ["/v1/policies/versions"] })
    }
  })
  return (
    <Page title="Policy versions">
      <QueryState query={versions}>
        {(data) => {
          const all = data.pages.flatMap((p) => p.versions)
          if (all.length === 0) return <Empty>No version stored.</Empty>
          const newest = all[0]?.version
          const a = picked.a ?? all[1]?.version ?? newest
          const b = picked.b ?? newest
          return (
            <Stack gap="md">
              {restore.isError ? <ProblemAlert error={restore.error} title="Not restored" /> : null}
              <Card withBorder>
                <Title order={2} size="h4" mb="xs">Compare</Title>
                {a !== undefined && b !== undefined ? <Diff from={Math.min(a, b)} to={Math.max(a, b)} /> : null}
              </Card>
              <Table.ScrollContainer minWidth={640}>
                <Table striped>
                  <Table.Thead>
                    <Table.Tr>
                      <Table.Th>Version</Table.Th>
                      <Table.Th>Saved</Table.Th>
                      <Table.Th>By</Table.Th>
                      <Table.Th>Why</Table.Th>
                      <Table.Th>Rules</Table.Th>
                      <Table.Th>Compare A</Table.Th>
                      <Table.Th>Compare B</Table.Th>
                      <Table.Th><span className="visually-hidden">Actions</span></Table.Th>
                    </Table.Tr>
                  </Table.Thead>
                  <Table.Tbody>
                    {all.map((v) => (
                      <Table.Tr key={v.version}>
                        <Table.Td>
                          <Group gap={6}>{v.version}{v.live ? <Tag size="sm" color="blue">Live</Tag> : null}{v.error !== undefined ? <Tag size="sm" color="red">Unreadable</Tag> : null}</Group>
                        </Table.Td>
                        <Table.Td>{new Date(v.createdAt).toLocaleString()}</Table.Td>
                        <Table.Td>{v.createdByEmail ?? v.createdBy ?? "—"}</Table.Td>
                        <Table.Td>{v.note ?? "—"}</Table.Td>
                        <Table.Td>{v.rules ?? "—"}</Table.Td>
                        <Table.Td>
                          <Radio name="compare-a" aria-label={`Compare from version ${v.version}`} checked={a === v.version}
                            onChange={() => setPicked({ ...picked, a: v.version })} />
                        </Table.Td>
                        <Table.Td>
                          <Radio name="compare-b" aria-label={`Compare to version ${v.version}`} checked={b === v.version}
                            onChange={() => setPicked({ ...picked, b: v.version })} />
                        </Table.Td>
                        <Table.Td>
                          {!v.live && v.error === undefined
                            ? (
                              <Button size="xs" variant="light" loading={restore.isPending && restore.variables === v.version}
                                onClick={() => restore.mutate(v.version)} aria-label={`Restore version ${v.version}`}>
                                Restore
                              </Button>
                            )
                            : null}
                        </Table.Td>
                      </Table.Tr>
                    ))}
                  </Table.Tbody>
                </Table>
              </Table.ScrollContainer>
              {versions.hasNextPage
                ? <Button variant="light" w="fit-content" loading={versions.isFetchingNextPage} onClick={() => void versions.fetchNextPage()}>Older versions</Button>
                : null}
            </Stack>
          )
        }}
      </QueryState>
    </Page>
  )
}

export default PolicyVersions
