/**
 * One app: its id (what integrators send with a key), its settings and status callbacks — edited here by owners and
 * admins, read-only for other roles — activation, deletion, its failing and dead callbacks, and its API keys.
 */
import { Alert, Anchor, Badge, Button, Card, CopyButton, Group, Stack, Table, Text } from "@mantine/core"
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query"
import { Link, useLocation, useParams } from "wouter"
import { api, unwrap } from "../../api/client.ts"
import { useCan } from "../../api/session.tsx"
import { ConfirmButton } from "../../components/Confirm.tsx"
import { Page } from "../../components/Page.tsx"
import { ProblemAlert, QueryState } from "../../components/States.tsx"
import { ApiKeys } from "./ApiKeys.tsx"
import { AppForm } from "./AppForm.tsx"
import type { App, AppBody } from "./AppForm.tsx"
import { CallbackSettings, eventChoices } from "./CallbackSettings.tsx"
import { FailingCallbacks } from "./FailingCallbacks.tsx"
import { SmppAccess } from "./SmppAccess.tsx"

const limitText = (app: App) => {
  const l = app.limits
  const parts = [
    l.perSecond !== undefined ? `${l.perSecond}/s` : undefined,
    l.burst !== undefined ? `burst ${l.burst}` : undefined,
    l.perMinute !== undefined ? `${l.perMinute}/min` : undefined,
    l.perDay !== undefined ? `${l.perDay}/day` : undefined
  ].filter((p) => p !== undefined)
  return parts.length === 0 ? "The gateway's defaults" : parts.join(", ")
}

const Settings = ({ app }: { readonly app: App }) => {
  const queries = useQueryClient()
  const save = useMutation({
    mutationFn: (body: AppBody) => unwrap(api.PATCH("/v1/apps/{appId}", { params: { path: { appId: app.id } }, body })),
    onSuccess: (saved) => {
      queries.setQueryData(["/v1/apps", app.id], saved)
      void queries.invalidateQueries({ queryKey: ["/v1/apps"], exact: true })
    }
  })
  return (
    <Card withBorder component="section" aria-labelledby="settings-heading">
      <Text fw={600} mb="xs" id="settings-heading" component="h2" size="md">Settings</Text>
      {save.isSuccess ? <Alert color="green" role="status" mb="sm" title="Saved" withCloseButton closeButtonLabel="Dismiss" onClose={() => save.reset()} /> : null}
      {/* Keyed by the last save, so the fields show what the server stored. */}
      <AppForm key={app.updatedAt} app={app} submitLabel="Save changes" error={save.error} pending={save.isPending}
        onSubmit={(body) => save.mutate(body)} />
    </Card>
  )
}

const ReadOnly = ({ app }: { readonly app: App }) => (
  <Card withBorder>
    <Table variant="vertical" layout="fixed">
      <Table.Tbody>
        <Table.Tr><Table.Th w={170}>Allowed addresses</Table.Th><Table.Td>{app.allowList.length === 0 ? "Any" : app.allowList.join(", ")}</Table.Td></Table.Tr>
        <Table.Tr><Table.Th>Message class</Table.Th><Table.Td>{app.messageClass}</Table.Td></Table.Tr>
        <Table.Tr><Table.Th>Limits</Table.Th><Table.Td>{limitText(app)}</Table.Td></Table.Tr>
        <Table.Tr><Table.Th>Created</Table.Th><Table.Td>{new Date(app.createdAt).toLocaleString()}</Table.Td></Table.Tr>
        <Table.Tr>
          <Table.Th>Status callbacks</Table.Th>
          <Table.Td style={{ overflowWrap: "anywhere" }}>
            {app.callbackUrl === undefined
              ? "None"
              : <><Text span size="sm" ff="monospace">{app.callbackUrl}</Text> — {eventChoices.find((c) => c.value === app.callbackEvents)?.label.toLowerCase() ?? "the final status only"}</>}
          </Table.Td>
        </Table.Tr>
        {app.callbackSecretPrefix !== undefined
          ? <Table.Tr><Table.Th>Signing secret</Table.Th><Table.Td><Text span size="sm" ff="monospace">{app.callbackSecretPrefix}…</Text></Table.Td></Table.Tr>
          : null}
        <Table.Tr>
          <Table.Th>SMPP access</Table.Th>
          <Table.Td>{app.smppSystemId === undefined ? "None" : <>system_id <Text span size="sm" ff="monospace">{app.smppSystemId}</Text></>}</Table.Td>
        </Table.Tr>
      </Table.Tbody>
    </Table>
    <Text size="sm" c="dimmed" mt="sm">
      Owners and admins change apps and their callbacks, see the callbacks that fail, and manage the keys and SMPP
      access.
    </Text>
  </Card>
)

const Actions = ({ app }: { readonly app: App }) => {
  const queries = useQueryClient()
  const [, navigate] = useLocation()
  const toggle = useMutation({
    mutationFn: () => unwrap(api.PATCH("/v1/apps/{appId}", { params: { path: { appId: app.id } }, body: { active: !app.active } })),
    onSuccess: (saved) => {
      queries.setQueryData(["/v1/apps", app.id], saved)
      void queries.invalidateQueries({ queryKey: ["/v1/apps"], exact: true })
    }
  })
  const remove = () =>
    unwrap(api.DELETE("/v1/apps/{appId}", { params: { path: { appId: app.id } } })).then(() => {
      queries.removeQueries({ queryKey: ["/v1/apps", app.id] })
      void queries.invalidateQueries({ queryKey: ["/v1/apps"], exact: true })
      navigate("/apps")
    })
  return (
    <>
      <Button variant="default" loading={toggle.isPending} onClick={() => toggle.mutate()}>
        {app.active ? "Deactivate" : "Activate"}
      </Button>
      <ConfirmButton size="sm" title={`Delete ${app.name}?`} confirmLabel="Delete app" onConfirm={remove}
        message="The app and all its keys stop working at once. This cannot be undone.">
        Delete
      </ConfirmButton>
      {toggle.isError ? <ProblemAlert error={toggle.error} /> : null}
    </>
  )
}

const AppDetail = () => {
  const { appId = "" } = useParams<{ appId: string }>()
  const canEdit = useCan("admin")
  const app = useQuery({
    queryKey: ["/v1/apps", appId],
    queryFn: () => unwrap(api.GET("/v1/apps/{appId}", { params: { path: { appId } } }))
  })
  if (!app.isSuccess) {
    return (
      <Page title="App">
        <QueryState query={app} notFound="App not found">{() => null}</QueryState>
        <Anchor component={Link} href="/apps" size="sm">← All apps</Anchor>
      </Page>
    )
  }
  const a = app.data
  return (
    <Page title={a.name} actions={canEdit ? <Actions app={a} /> : undefined}>
      <Anchor component={Link} href="/apps" size="sm">← All apps</Anchor>
      <Group gap="xs">
        <Badge variant="dot" color={a.active ? "green" : "gray"}>{a.active ? "Active" : "Inactive"}</Badge>
        <Text size="sm">App id <Text span ff="monospace">{a.id}</Text></Text>
        <CopyButton value={a.id}>
          {({ copied, copy }) => (
            <Button size="compact-xs" variant="subtle" onClick={copy} aria-label="Copy the app id">{copied ? "Copied" : "Copy"}</Button>
          )}
        </CopyButton>
      </Group>
      {canEdit
        ? (
          <Stack>
            <Settings app={a} />
            <ApiKeys appId={a.id} active={a.active} />
            <SmppAccess app={a} />
            <CallbackSettings app={a} />
            <FailingCallbacks appId={a.id} />
          </Stack>
        )
        : <ReadOnly app={a} />}
    </Page>
  )
}

export default AppDetail
