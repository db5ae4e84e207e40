/**
 * An app's API keys (owners and admins): create one — shown once, in a dialog with a copy button, since the gateway
 * keeps only its hash — list them by prefix with when each was created and last used, and revoke one.
 */
import { Alert, Badge, Button, Card, CopyButton, Group, Modal, Stack, Table, Text, TextInput } from "@mantine/core"
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query"
import { api, unwrap } from "../../api/client.ts"
import type { Ok } from "../../api/types.ts"
import { ConfirmButton } from "../../components/Confirm.tsx"
import { Empty, ProblemAlert, QueryState } from "../../components/States.tsx"

type ApiKey = Ok<"/v1/apps/{appId}/keys", "get">[number]

const when = (iso: string | undefined) => iso === undefined ? "Never" : new Date(iso).toLocaleString()

const ShownOnce = ({ appId, created, onClose }: {
  readonly appId: string
  readonly created: Ok<"/v1/apps/{appId}/keys", "post"> | undefined
  readonly onClose: () => void
}) => (
  <Modal opened={created !== undefined} onClose={onClose} title="Your new API key" size="lg" centered
    closeOnClickOutside={false} closeButtonProps={{ "aria-label": "Close" }}>
    {created === undefined ? null : (
      <Stack>
        <Alert color="yellow" title="Copy it now" role="alert">
          This key will not be shown again: the gateway keeps only a hash of it. If it is lost, revoke it and create
          another.
        </Alert>
        <Group align="flex-end" wrap="nowrap" gap="xs">
          <TextInput label="API key" value={created.key} readOnly style={{ flex: 1 }}
            styles={{ input: { fontFamily: "var(--mantine-font-family-monospace)" } }}
            onFocus={(e) => e.currentTarget.select()} />
          <CopyButton value={created.key}>
            {({ copied, copy }) => (
              <Button variant="light" color={copied ? "green" : "blue"} onClick={copy}>
                {copied ? "Copied" : "Copy the key"}
              </Button>
            )}
          </CopyButton>
        </Group>
        <Text size="sm">
          Use it with the app id <Text span ff="monospace">{appId}</Text>: POST /v1/auth/token with
          {" "}<Text span ff="monospace">{"{ appId, apiKey }"}</Text> gives the app's access token.
        </Text>
        <Group justify="flex-end"><Button onClick={onClose}>I have copied it</Button></Group>
      </Stack>
    )}
  </Modal>
)

export const ApiKeys = ({ appId, active }: { readonly appId: string; readonly active: boolean }) => {
  const queries = useQueryClient()
  const key = ["/v1/apps", appId, "keys"]
  const keys = useQuery({
    queryKey: key,
    queryFn: () => unwrap(api.GET("/v1/apps/{appId}/keys", { params: { path: { appId } } }))
  })
  const create = useMutation({
    mutationFn: () => unwrap(api.POST("/v1/apps/{appId}/keys", { params: { path: { appId } } })),
    onSuccess: () => queries.invalidateQueries({ queryKey: key })
  })
  const revoke = (k: ApiKey) =>
    unwrap(api.DELETE("/v1/apps/{appId}/keys/{keyId}", { params: { path: { appId, keyId: k.id } } }))
      .then(() => queries.invalidateQueries({ queryKey: key }))
  return (
    <Card withBorder component="section" aria-labelledby="keys-heading">
      <Group justify="space-between" mb="xs">
        <Text fw={600} id="keys-heading" component="h2" size="md">API keys</Text>
        <Button size="sm" onClick={() => create.mutate()} loading={create.isPending}>Create a key</Button>
      </Group>
      {active ? null : <Text size="sm" c="dimmed" mb="xs">The app is inactive: its keys get no token until it is activated.</Text>}
      {create.isError ? <ProblemAlert error={create.error} title="No key was created" /> : null}
      <ShownOnce appId={appId} created={create.data} onClose={() => create.reset()} />
      <QueryState query={keys}>
        {(list) =>
          list.length === 0
            ? <Empty>No key yet. Create one to let the app send.</Empty>
            : (
              <Table.ScrollContainer minWidth={520} type="native" tabIndex={0} role="region" aria-label="API keys table">
                <Table verticalSpacing="xs">
                  <Table.Thead>
                    <Table.Tr>
                      <Table.Th>Key</Table.Th>
                      <Table.Th>Created</Table.Th>
                      <Table.Th>Last used</Table.Th>
                      <Table.Th>Status</Table.Th>
                      <Table.Th><span className="visually-hidden">Actions</span></Table.Th>
                    </Table.Tr>
                  </Table.Thead>
                  <Table.Tbody>
                    {list.map((k) => (
                      <Table.Tr key={k.id}>
                        <Table.Td><Text size="sm" ff="monospace">{k.prefix}…</Text></Table.Td>
                        <Table.Td><Text size="sm">{when(k.createdAt)}</Text></Table.Td>
                        <Table.Td><Text size="sm">{when(k.lastUsedAt)}</Text></Table.Td>
                        <Table.Td>
                          {k.revokedAt === undefined
                            ? <Badge variant="dot" color="green">Active</Badge>
                            : <Badge variant="dot" color="gray">Revoked {new Date(k.revokedAt).toLocaleDateString()}</Badge>}
                        </Table.Td>
                        <Table.Td>
                          {k.revokedAt === undefined
                            ? (
                              <ConfirmButton ariaLabel={`Revoke key ${k.prefix}`} title={`Revoke key ${k.prefix}…?`}
                                message="Whatever uses this key is refused from now on: it gets no new token, and the tokens it holds stop working."
                                confirmLabel="Revoke" onConfirm={() => revoke(k)}>
                                Revoke
                              </ConfirmButton>
                            )
                            : null}
                        </Table.Td>
                      </Table.Tr>
                    ))}
                  </Table.Tbody>
                </Table>
              </Table.ScrollContainer>
            )}
      </QueryState>
    </Card>
  )
}
