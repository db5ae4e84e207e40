/**
 * The organisation's apps: what sends through the gateway, each with its allow-list, limits and message class.
 * Owners and admins create one here (then land on its page to make a key); everyone sees the list.
 */
import { Anchor, Badge, Button, Card, Modal, Table, Text } from "@mantine/core"
import { useDisclosure } from "@mantine/hooks"
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query"
import { Link, useLocation } from "wouter"
import { api, unwrap } from "../../api/client.ts"
import { useCan } from "../../api/session.tsx"
import { Page } from "../../components/Page.tsx"
import { Empty, QueryState } from "../../components/States.tsx"
import { AppForm } from "./AppForm.tsx"
import type { AppBody } from "./AppForm.tsx"

const NewApp = () => {
  const queries = useQueryClient()
  const [, navigate] = useLocation()
  const [opened, { open, close }] = useDisclosure(false)
  const create = useMutation({
    mutationFn: (body: AppBody) => unwrap(api.POST("/v1/apps", { body })),
    onSuccess: (app) => {
      void queries.invalidateQueries({ queryKey: ["/v1/apps"] })
      queries.setQueryData(["/v1/apps", app.id], app)
      navigate(`/apps/${app.id}`)
    }
  })
  return (
    <>
      <Button onClick={() => {
        create.reset()
        open()
      }}>
        New app
      </Button>
      <Modal opened={opened} onClose={close} title="New app" size="lg" centered closeButtonProps={{ "aria-label": "Close" }}>
        <AppForm submitLabel="Create app" onSubmit={(body) => create.mutate(body)} error={create.error}
          pending={create.isPending} onCancel={close} />
      </Modal>
    </>
  )
}

const Apps = () => {
  const canEdit = useCan("admin")
  const apps = useQuery({ queryKey: ["/v1/apps"], queryFn: () => unwrap(api.GET("/v1/apps")) })
  return (
    <Page title="Apps and API keys" actions={canEdit ? <NewApp /> : undefined}>
      <Text size="sm" c="dimmed">
        An app sends messages with its own API keys: exchange the app id and a key for a token at POST /v1/auth/token.
      </Text>
      <Card withBorder>
        <QueryState query={apps}>
          {(list) =>
            list.length === 0
              ? <Empty>No app yet.{canEdit ? " Create one to get an API key." : ""}</Empty>
              : (
                <Table.ScrollContainer minWidth={560} type="native" tabIndex={0} role="region" aria-label="Apps table">
                  <Table verticalSpacing="xs" highlightOnHover>
                    <Table.Thead>
                      <Table.Tr>
                        <Table.Th>Name</Table.Th>
                        <Table.Th>Status</Table.Th>
                        <Table.Th>Message class</Table.Th>
                        <Table.Th>Allowed addresses</Table.Th>
                        <Table.Th>Created</Table.Th>
                      </Table.Tr>
                    </Table.Thead>
                    <Table.Tbody>
                      {list.map((app) => (
                        <Table.Tr key={app.id}>
                          <Table.Td><Anchor component={Link} href={`/apps/${app.id}`} size="sm">{app.name}</Anchor></Table.Td>
                          <Table.Td>
                            <Badge variant="dot" color={app.active ? "green" : "gray"}>{app.active ? "Active" : "Inactive"}</Badge>
                          </Table.Td>
                          <Table.Td><Text size="sm">{app.messageClass}</Text></Table.Td>
                          <Table.Td>
                            <Text size="sm">{app.allowList.length === 0 ? "Any" : app.allowList.slice(0, 2).join(", ") + (app.allowList.length > 2 ? ` +${app.allowList.length - 2}` : "")}</Text>
                          </Table.Td>
                          <Table.Td><Text size="sm">{new Date(app.createdAt).toLocaleDateString()}</Text></Table.Td>
                        </Table.Tr>
                      ))}
                    </Table.Tbody>
                  </Table>
                </Table.ScrollContainer>
              )}
        </QueryState>
      </Card>
    </Page>
  )
}

export default Apps
