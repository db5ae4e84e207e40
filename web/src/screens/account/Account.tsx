/**
 * The signed-in user's account: who they are, their organisations and roles (switch from here too), sign out
 * everywhere.
 */
import { Badge, Button, Card, Group, Stack, Table, Text } from "@mantine/core"
import { useMutation } from "@tanstack/react-query"
import { useLocation } from "wouter"
import { useMe, useSession } from "../../api/session.tsx"
import { ProblemAlert } from "../../components/States.tsx"
import { Page } from "../../components/Page.tsx"

const Account = () => {
  const me = useMe()
  const session = useSession()
  const switchTo = useMutation({ mutationFn: (id: string) => session.switchOrganisation(id) })
  const [, navigate] = useLocation()
  const everywhere = useMutation({ mutationFn: () => session.signOutEverywhere().then(() => navigate("/")) })
  return (
    <Page title="Account">
      <Card withBorder>
        <Stack gap={4}>
          <Text fw={600}>{me.user.name}</Text>
          <Text size="sm" c="dimmed">{me.user.email}</Text>
          {me.user.superadmin ? <Badge w="fit-content">Operator</Badge> : null}
        </Stack>
      </Card>
      <Card withBorder>
        <Text fw={600} mb="xs">Organisations</Text>
        {switchTo.isError ? <ProblemAlert error={switchTo.error} /> : null}
        <Table.ScrollContainer minWidth={320}>
          <Table>
            <Table.Thead><Table.Tr><Table.Th>Name</Table.Th><Table.Th>Role</Table.Th><Table.Th><span className="visually-hidden">Action</span></Table.Th></Table.Tr></Table.Thead>
            <Table.Tbody>
              {me.organisations.map((o) => (
                <Table.Tr key={o.id}>
                  <Table.Td>{o.name}</Table.Td>
                  <Table.Td>{o.role}</Table.Td>
                  <Table.Td>
                    {o.id === me.organisation.id
                      ? <Badge variant="light">Current</Badge>
                      : <Button size="xs" variant="light" onClick={() => switchTo.mutate(o.id)} aria-label={`Switch to ${o.name}`}>Switch</Button>}
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Table.ScrollContainer>
      </Card>
      <Group>
        <Button color="red" variant="light" loading={everywhere.isPending} onClick={() => everywhere.mutate()}>Sign out everywhere</Button>
        <Text size="sm" c="dimmed">Ends every session of your account on every device.</Text>
      </Group>
    </Page>
  )
}

export default Account
