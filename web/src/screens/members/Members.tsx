/**
 * The organisation's members and their roles. Owners and admins invite by email (a single-use link is mailed), see
 * and revoke pending invitations, change roles and remove members; the server's refusals (the last owner, the owner
 * role reserved to owners) are shown as it words them. Everyone else sees the list only.
 */
import { Alert, Badge, Button, Card, Group, Modal, NativeSelect, Stack, Table, Text, TextInput } from "@mantine/core"
import { useDisclosure } from "@mantine/hooks"
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query"
import { useState } from "react"
import { api, unwrap } from "../../api/client.ts"
import { useCan, useMe } from "../../api/session.tsx"
import type { Role } from "../../api/session.tsx"
import type { Ok } from "../../api/types.ts"
import { ConfirmButton } from "../../components/Confirm.tsx"
import { fieldError } from "../../components/Forms.tsx"
import { Page } from "../../components/Page.tsx"
import { Empty, ProblemAlert, QueryState } from "../../components/States.tsx"

type Member = Ok<"/v1/members", "get">[number]
type Invitation = Ok<"/v1/invitations", "get">[number]

/** Every role, least first, with what it may do (docs/security.md, Roles). */
const roleHelp: Record<Role, string> = {
  viewer: "reads apps, members and messages",
  member: "also sends messages and runs campaigns",
  moderator: "also approves campaigns",
  admin: "also manages apps, keys and members, reads the audit log",
  owner: "everything, including the owner role"
}
const roles = Object.keys(roleHelp) as ReadonlyArray<Role>
const roleOptions = roles.map((r) => ({ value: r, label: r }))

const date = (iso: string) => new Date(iso).toLocaleDateString()

const InviteButton = () => {
  const queries = useQueryClient()
  const isOwner = useCan("owner")
  const [opened, { open, close }] = useDisclosure(false)
  const [email, setEmail] = useState("")
  const [role, setRole] = useState<Role>("member")
  const invite = useMutation({
    mutationFn: () => unwrap(api.POST("/v1/members", { body: { email, role } })),
    onSuccess: () => queries.invalidateQueries({ queryKey: ["/v1/invitations"] })
  })
  const start = () => {
    invite.reset()
    setEmail("")
    setRole("member")
    open()
  }
  const fieldLevel = fieldError(invite.error, "email") !== undefined || fieldError(invite.error, "role") !== undefined
  return (
    <>
      <Button onClick={start}>Invite a member</Button>
      <Modal opened={opened} onClose={close} title="Invite a member" centered closeButtonProps={{ "aria-label": "Close" }}>
        {invite.isSuccess
          ? (
            <Stack>
              <Alert color="green" role="status" title="Invitation sent">
                We mailed a link to {invite.data.email}. It works once, until {new Date(invite.data.expiresAt).toLocaleString()}.
              </Alert>
              <Group justify="flex-end"><Button onClick={close}>Done</Button></Group>
            </Stack>
          )
          : (
            <form
              onSubmit={(e) => {
                e.preventDefault()
                invite.mutate()
              }}
            >
              <Stack>
                {invite.isError && !fieldLevel ? <ProblemAlert error={invite.error} title="Could not invite" /> : null}
                <TextInput label="Email" type="email" required autoComplete="off" value={email}
                  onChange={(e) => setEmail(e.currentTarget.value)} error={fieldError(invite.error, "email")} data-autofocus />
                <NativeSelect label="Role" value={role} onChange={(e) => setRole(e.currentTarget.value as Role)}
                  data={isOwner ? roleOptions : roleOptions.filter((r) => r.value !== "owner")}
                  description={roleHelp[role]} error={fieldError(invite.error, "role")} />
                <Group justify="flex-end">
                  <Button variant="default" onClick={close}>Cancel</Button>
                  <Button type="submit" loading={invite.isPending}>Send invitation</Button>
                </Group>
              </Stack>
            </form>
          )}
      </Modal>
    </>
  )
}

const MemberRows = ({ members }: { readonly members: ReadonlyArray<Member> }) => {
  const me = useMe()
  const canEdit = useCan("admin")
  const isOwner = useCan("owner")
  const queries = useQueryClient()
  const [refusal, setRefusal] = useState<{ readonly who: string; readonly error: unknown }>()
  const changeRole = useMutation({
    mutationFn: (v: { readonly member: Member; readonly role: Role }) =>
      unwrap(api.PATCH("/v1/members/{userId}", { params: { path: { userId: v.member.userId } }, body: { role: v.role } })),
    onMutate: () => setRefusal(undefined),
    onError: (error, v) => setRefusal({ who: v.member.name, error }),
    onSettled: () => queries.invalidateQueries({ queryKey: ["/v1/members"] })
  })
  const remove = (member: Member) =>
    unwrap(api.DELETE("/v1/members/{userId}", { params: { path: { userId: member.userId } } }))
      .then(() => queries.invalidateQueries({ queryKey: ["/v1/members"] }))
  return (
    <Stack gap="xs">
      {refusal !== undefined ? <ProblemAlert error={refusal.error} title={`Could not change the role of ${refusal.who}`} /> : null}
      <Table.ScrollContainer minWidth={560} type="native" tabIndex={0} role="region" aria-label="Members table">
        <Table verticalSpacing="xs" highlightOnHover>
          <Table.Thead>
            <Table.Tr>
              <Table.Th>Name</Table.Th>
              <Table.Th>Email</Table.Th>
              <Table.Th>Role</Table.Th>
              <Table.Th>Joined</Table.Th>
              {canEdit ? <Table.Th><span className="visually-hidden">Actions</span></Table.Th> : null}
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {members.map((m) => {
              const self = m.userId === me.user.id
              // Only an owner may change or remove an owner; the server says so too.
              const locked = m.role === "owner" && !isOwner
              return (
                <Table.Tr key={m.userId}>
                  <Table.Td>
                    <Group gap={6} wrap="nowrap">
                      <Text size="sm">{m.name}</Text>
                      {self ? <Badge size="xs" variant="light">You</Badge> : null}
                      {m.registered ? null : <Badge size="xs" variant="dot" color="gray">Not registered</Badge>}
                    </Group>
                  </Table.Td>
                  <Table.Td><Text size="sm">{m.email}</Text></Table.Td>
                  <Table.Td>
                    {canEdit && !locked
                      ? (
                        <NativeSelect size="xs" aria-label={`Role of ${m.name}`} value={m.role} w={130}
                          disabled={changeRole.isPending && changeRole.variables?.member.userId === m.userId}
                          data={isOwner ? roleOptions : roleOptions.filter((r) => r.value !== "owner")}
                          onChange={(e) => changeRole.mutate({ member: m, role: e.currentTarget.value as Role })} />
                      )
                      : <Text size="sm">{m.role}</Text>}
                  </Table.Td>
                  <Table.Td><Text size="sm">{date(m.createdAt)}</Text></Table.Td>
                  {canEdit
                    ? (
                      <Table.Td>
                        {locked ? null : (
                          <ConfirmButton ariaLabel={`Remove ${m.name}`} title={self ? "Leave this organisation?" : `Remove ${m.name}?`}
                            message={self
                              ? `You lose access to ${me.organisation.name} at once.`
                              : `${m.name} loses access to ${me.organisation.name} at once; their sessions here end.`}
                            confirmLabel="Remove" onConfirm={() => remove(m)}>
                            Remove
                          </ConfirmButton>
                        )}
                      </Table.Td>
                    )
                    : null}
                </Table.Tr>
              )
            })}
          </Table.Tbody>
        </Table>
      </Table.ScrollContainer>
    </Stack>
  )
}

const Invitations = () => {
  const queries = useQueryClient()
  const isOwner = useCan("owner")
  const invitations = useQuery({ queryKey: ["/v1/invitations"], queryFn: () => unwrap(api.GET("/v1/invitations")) })
  const revoke = (i: Invitation) =>
    unwrap(api.DELETE("/v1/invitations/{invitationId}", { params: { path: { invitationId: i.id } } }))
      .then(() => queries.invalidateQueries({ queryKey: ["/v1/invitations"] }))
  return (
    <Card withBorder component="section" aria-labelledby="invitations-heading">
      <Text fw={600} mb="xs" id="invitations-heading" component="h2" size="md">Pending invitations</Text>
      <QueryState query={invitations}>
        {(list) =>
          list.length === 0
            ? <Empty>No invitation is waiting.</Empty>
            : (
              <Table.ScrollContainer minWidth={480} type="native" tabIndex={0} role="region" aria-label="Invitations table">
                <Table verticalSpacing="xs">
                  <Table.Thead>
                    <Table.Tr>
                      <Table.Th>Email</Table.Th>
                      <Table.Th>Role</Table.Th>
                      <Table.Th>Expires</Table.Th>
                      <Table.Th><span className="visually-hidden">Actions</span></Table.Th>
                    </Table.Tr>
                  </Table.Thead>
                  <Table.Tbody>
                    {list.map((i) => (
                      <Table.Tr key={i.id}>
                        <Table.Td><Text size="sm">{i.email}</Text></Table.Td>
                        <Table.Td><Text size="sm">{i.role}</Text></Table.Td>
                        <Table.Td><Text size="sm">{new Date(i.expiresAt).toLocaleString()}</Text></Table.Td>
                        <Table.Td>
                          {i.role === "owner" && !isOwner ? null : (
                            <ConfirmButton ariaLabel={`Revoke the invitation of ${i.email}`} title={`Revoke the invitation of ${i.email}?`}
                              message="The link mailed to them stops working. You can invite them again later."
                              confirmLabel="Revoke" onConfirm={() => revoke(i)}>
                              Revoke
                            </ConfirmButton>
                          )}
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

const Members = () => {
  const canEdit = useCan("admin")
  const members = useQuery({ queryKey: ["/v1/members"], queryFn: () => unwrap(api.GET("/v1/members")) })
  return (
    <Page title="Members" actions={canEdit ? <InviteButton /> : undefined}>
      {canEdit ? null : <Text size="sm" c="dimmed">Owners and admins manage members; your role can see them.</Text>}
      <Card withBorder>
        <QueryState query={members}>
          {(list) => list.length === 0 ? <Empty>No members.</Empty> : <MemberRows members={list} />}
        </QueryState>
      </Card>
      {canEdit ? <Invitations /> : null}
    </Page>
  )
}

export default Members
