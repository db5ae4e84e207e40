/**
 * An app's SMPP access (docs/smpp-server.md), for owners and admins: the system_id a client ESME (Kannel, an SMPP
 * library) binds with, chosen here; the password the gateway generates, shown once — when the credentials are made or
 * after a new password — and never again; removing the access. The password never enters the query cache.
 */
import { Alert, Button, Card, CopyButton, Group, Modal, Stack, Text, TextInput } from "@mantine/core"
import { useMutation, useQueryClient } from "@tanstack/react-query"
import { useState } from "react"
import { api, unwrap } from "../../api/client.ts"
import { ConfirmButton } from "../../components/Confirm.tsx"
import { fieldError } from "../../components/Forms.tsx"
import { ProblemAlert } from "../../components/States.tsx"
import type { App } from "./AppForm.tsx"

interface Shown {
  readonly systemId: string
  readonly password: string
}

const PasswordShownOnce = ({ shown, onClose }: { readonly shown: Shown | undefined; readonly onClose: () => void }) => (
  <Modal opened={shown !== undefined} onClose={onClose} size="lg" centered closeOnClickOutside={false}
    title="Your SMPP password" closeButtonProps={{ "aria-label": "Close" }}>
    {shown === undefined ? null : (
      <Stack>
        <Alert color="yellow" title="Copy it now" role="alert">
          You will not see this password again. Put it in your SMPP client's configuration with the system_id below; if
          it is lost, make a new one.
        </Alert>
        <TextInput label="system_id" value={shown.systemId} readOnly styles={{ input: { fontFamily: "var(--mantine-font-family-monospace)" } }} />
        <Group align="flex-end" wrap="nowrap" gap="xs">
          <TextInput label="Password" value={shown.password} readOnly style={{ flex: 1 }}
            styles={{ input: { fontFamily: "var(--mantine-font-family-monospace)" } }}
            onFocus={(e) => e.currentTarget.select()} />
          <CopyButton value={shown.password}>
            {({ copied, copy }) => (
              <Button variant="light" color={copied ? "green" : "blue"} onClick={copy}>{copied ? "Copied" : "Copy the password"}</Button>
            )}
          </CopyButton>
        </Group>
        <Group justify="flex-end"><Button onClick={onClose}>I have copied it</Button></Group>
      </Stack>
    )}
  </Modal>
)

export const SmppAccess = ({ app }: { readonly app: App }) => {
  const queries = useQueryClient()
  const [systemId, setSystemId] = useState(app.smppSystemId ?? "")
  const [shown, setShown] = useState<Shown | undefined>(undefined)
  const refresh = (smppSystemId: string | undefined) => {
    const { smppSystemId: _old, ...rest } = app
    queries.setQueryData(["/v1/apps", app.id], smppSystemId === undefined ? rest : { ...rest, smppSystemId })
    void queries.invalidateQueries({ queryKey: ["/v1/apps", app.id], exact: true })
  }
  const save = useMutation({
    mutationFn: (id: string) => unwrap(api.PUT("/v1/apps/{appId}/smpp", { params: { path: { appId: app.id } }, body: { systemId: id } })),
    onSuccess: (made) => {
      refresh(made.systemId)
      setSystemId(made.systemId)
      setShown({ systemId: made.systemId, password: made.password })
    }
  })
  const newPassword = () =>
    unwrap(api.POST("/v1/apps/{appId}/smpp/password", { params: { path: { appId: app.id } } })).then((made) =>
      setShown({ systemId: made.systemId, password: made.password })
    )
  const remove = () =>
    unwrap(api.DELETE("/v1/apps/{appId}/smpp", { params: { path: { appId: app.id } } })).then(() => {
      refresh(undefined)
      save.reset()
      setSystemId("")
    })
  const idError = fieldError(save.error, "systemId")
  const has = app.smppSystemId !== undefined
  return (
    <Card withBorder component="section" aria-labelledby="smpp-heading">
      <Text fw={600} mb={4} id="smpp-heading" component="h2" size="md">SMPP access</Text>
      <Text size="sm" c="dimmed" mb="sm">
        Software that speaks SMPP (Kannel, an SMPP library) binds to the gateway with a system_id and password and sends
        through this app, with its limits, allow-list and policy; receipts and replies come back as deliver_sm.
      </Text>
      <form
        onSubmit={(e) => {
          e.preventDefault()
          save.mutate(systemId.trim())
        }}
      >
        <Stack>
          {save.isError && idError === undefined ? <ProblemAlert error={save.error} title="Not saved" /> : null}
          <TextInput label="system_id" placeholder="acme01" autoComplete="off" maxLength={15}
            description="1–15 characters: letters, digits, dot, dash, underscore; unique in the gateway."
            value={systemId} error={idError} styles={{ input: { fontFamily: "var(--mantine-font-family-monospace)" } }}
            onChange={(e) => setSystemId(e.currentTarget.value)} />
          <Group justify="space-between" gap="sm">
            <Text size="sm" aria-live="polite">
              {has ? <>Binds as <Text span ff="monospace">{app.smppSystemId}</Text></> : "No SMPP access yet: saving a system_id makes a password, shown once."}
            </Text>
            <Group gap="xs">
              {has
                ? (
                  <ConfirmButton size="sm" variant="default" color="gray" title="Make a new SMPP password?" confirmLabel="New password"
                    onConfirm={newPassword}
                    message="A new password is made and shown once. New binds with the old one are refused from now on; binds already open stay until they close.">
                    New password
                  </ConfirmButton>
                )
                : null}
              {has
                ? (
                  <ConfirmButton size="sm" variant="default" color="gray" title="Remove SMPP access?" confirmLabel="Remove access"
                    onConfirm={remove}
                    message="New binds with this system_id are refused. Receipts waiting for a bind are kept until they expire.">
                    Remove access
                  </ConfirmButton>
                )
                : null}
              <Button type="submit" loading={save.isPending} disabled={systemId.trim() === "" || systemId.trim() === (app.smppSystemId ?? "")}>
                {has ? "Change system_id" : "Give SMPP access"}
              </Button>
            </Group>
          </Group>
        </Stack>
      </form>
      <PasswordShownOnce shown={shown} onClose={() => setShown(undefined)} />
    </Card>
  )
}
