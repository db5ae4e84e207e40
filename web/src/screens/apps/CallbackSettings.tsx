/**
 * An app's status callbacks (docs/callbacks.md), for owners and admins: the URL and which moves are posted, saved with
 * the app's PATCH (the server's message under the field it names); the signing secret, shown once — when the first URL
 * made it, or after a rotation with the day the previous one still signs — and otherwise only by its prefix; removing
 * the URL. The secret never enters the query cache: only the dialog that shows it holds it.
 */
import { Alert, Button, Card, CopyButton, Group, Modal, Radio, Stack, Text, TextInput } from "@mantine/core"
import { useMutation, useQueryClient } from "@tanstack/react-query"
import { useState } from "react"
import { api, unwrap } from "../../api/client.ts"
import type { Body } from "../../api/types.ts"
import { ConfirmButton } from "../../components/Confirm.tsx"
import { fieldError } from "../../components/Forms.tsx"
import { ProblemAlert } from "../../components/States.tsx"
import type { App } from "./AppForm.tsx"

export type CallbackEvents = NonNullable<Body<"/v1/apps/{appId}", "patch">["callbackEvents"]>

export const eventChoices: ReadonlyArray<{ readonly value: CallbackEvents; readonly label: string; readonly description: string }> = [
  {
    value: "final",
    label: "The final status only",
    description: "One callback when the message ends: delivered, undelivered, expired or failed."
  },
  {
    value: "all",
    label: "Every status change",
    description: "Queued (waiting for another try) and submitted too, then the final status."
  }
]

/** A secret to show once: the first one (made with the first URL) or a rotated one. */
interface Shown {
  readonly secret: string
  readonly rotated: boolean
  readonly previousValidUntil?: string
}

const SecretShownOnce = ({ shown, onClose }: { readonly shown: Shown | undefined; readonly onClose: () => void }) => (
  <Modal opened={shown !== undefined} onClose={onClose} size="lg" centered closeOnClickOutside={false}
    title={shown?.rotated === true ? "Your new signing secret" : "Your callback signing secret"}
    closeButtonProps={{ "aria-label": "Close" }}>
    {shown === undefined ? null : (
      <Stack>
        <Alert color="yellow" title="Copy it now" role="alert">
          You will not see this secret again: the Message Center and the API show only its first characters from now on.
          Keep it with your receiver, which checks each callback's Smsgw-Signature header with it.
        </Alert>
        <Group align="flex-end" wrap="nowrap" gap="xs">
          <TextInput label="Signing secret" value={shown.secret} readOnly style={{ flex: 1 }}
            styles={{ input: { fontFamily: "var(--mantine-font-family-monospace)" } }}
            onFocus={(e) => e.currentTarget.select()} />
          <CopyButton value={shown.secret}>
            {({ copied, copy }) => (
              <Button variant="light" color={copied ? "green" : "blue"} onClick={copy}>
                {copied ? "Copied" : "Copy the secret"}
              </Button>
            )}
          </CopyButton>
        </Group>
        {shown.rotated
          ? (
            <Text size="sm">
              {shown.previousValidUntil !== undefined
                ? <>The previous secret still signs every callback until {new Date(shown.previousValidUntil).toLocaleString()} (24 hours): </>
                : <>For the next 24 hours the previous secret still signs too: </>}
              each callback carries a signature for both, so deploy the new secret to your receivers before then and
              none is refused.
            </Text>
          )
          : <Text size="sm">Callbacks are signed with it from now on. If it is lost, rotate it and deploy the new one.</Text>}
        <Group justify="flex-end"><Button onClick={onClose}>I have copied it</Button></Group>
      </Stack>
    )}
  </Modal>
)

/** The app as the cache keeps it: without a secret an answer may carry. */
const withoutSecret = (answer: App): App => {
  const { callbackSecret: _secret, ...app } = answer
  return app
}

export const CallbackSettings = ({ app }: { readonly app: App }) => {
  const queries = useQueryClient()
  const [url, setUrl] = useState(app.callbackUrl ?? "")
  const [events, setEvents] = useState<CallbackEvents>(app.callbackEvents ?? "final")
  const [shown, setShown] = useState<Shown | undefined>(undefined)
  const stored = (answer: App) => {
    const saved = withoutSecret(answer)
    queries.setQueryData(["/v1/apps", app.id], saved)
    void queries.invalidateQueries({ queryKey: ["/v1/apps"], exact: true })
    return saved
  }
  const save = useMutation({
    mutationFn: (body: Body<"/v1/apps/{appId}", "patch">) =>
      unwrap(api.PATCH("/v1/apps/{appId}", { params: { path: { appId: app.id } }, body })),
    onSuccess: (answer) => {
      const saved = stored(answer)
      setUrl(saved.callbackUrl ?? "")
      setEvents(saved.callbackEvents ?? "final")
      if (answer.callbackSecret !== undefined) setShown({ secret: answer.callbackSecret, rotated: false })
    }
  })
  const rotate = () =>
    unwrap(api.POST("/v1/apps/{appId}/callback-secret", { params: { path: { appId: app.id } } })).then((rotated) => {
      queries.setQueryData(["/v1/apps", app.id], { ...app, callbackSecretPrefix: rotated.prefix })
      void queries.invalidateQueries({ queryKey: ["/v1/apps", app.id], exact: true })
      setShown({ secret: rotated.secret, rotated: true, ...(rotated.previousValidUntil !== undefined ? { previousValidUntil: rotated.previousValidUntil } : {}) })
    })
  const remove = () =>
    unwrap(api.PATCH("/v1/apps/{appId}", { params: { path: { appId: app.id } }, body: { callbackUrl: null } })).then((answer) => {
      stored(answer)
      save.reset()
      setUrl("")
    })
  const urlError = fieldError(save.error, "callbackUrl")
  const eventsError = fieldError(save.error, "callbackEvents")
  const changed = url.trim() !== (app.callbackUrl ?? "") || events !== (app.callbackEvents ?? "final")
  return (
    <Card withBorder component="section" aria-labelledby="callbacks-heading">
      <Text fw={600} mb={4} id="callbacks-heading" component="h2" size="md">Status callbacks</Text>
      <Text size="sm" c="dimmed" mb="sm">
        The gateway POSTs a signed JSON body to this URL whenever one of the app's messages changes status, retrying
        for 24 hours. A change applies to messages accepted after it.
      </Text>
      {save.isSuccess && shown === undefined
        ? <Alert color="green" role="status" mb="sm" title="Saved" withCloseButton closeButtonLabel="Dismiss" onClose={() => save.reset()} />
        : null}
      <form
        onSubmit={(e) => {
          e.preventDefault()
          save.mutate({ callbackUrl: url.trim(), callbackEvents: events })
        }}
      >
        <Stack>
          {save.isError && urlError === undefined && eventsError === undefined
            ? <ProblemAlert error={save.error} title="Not saved" />
            : null}
          <TextInput label="Callback URL" placeholder="https://example.com/sms/status" inputMode="url" autoComplete="off"
            description="An absolute http or https address, without credentials or fragment."
            value={url} error={urlError} styles={{ input: { fontFamily: "var(--mantine-font-family-monospace)" } }}
            onChange={(e) => setUrl(e.currentTarget.value)} />
          <Radio.Group label="Which changes are posted" value={events} error={eventsError}
            onChange={(v) => setEvents(v === "all" ? "all" : "final")}>
            <Stack gap="xs" mt="xs">
              {eventChoices.map((c) => <Radio key={c.value} value={c.value} label={c.label} description={c.description} />)}
            </Stack>
          </Radio.Group>
          <Group justify="space-between" gap="sm">
            <Text size="sm" aria-live="polite">
              {app.callbackSecretPrefix !== undefined
                ? <>Signing secret <Text span ff="monospace">{app.callbackSecretPrefix}…</Text></>
                : "No signing secret yet: saving the first URL makes one, shown once."}
            </Text>
            <Group gap="xs">
              {app.callbackSecretPrefix !== undefined
                ? (
                  <ConfirmButton size="sm" variant="default" color="gray" title="Rotate the signing secret?" confirmLabel="Rotate secret"
                    onConfirm={rotate}
                    message="A new secret is made and shown once. For 24 hours callbacks carry a signature with each secret, so your receivers can move to the new one; then the old one stops signing.">
                    Rotate secret
                  </ConfirmButton>
                )
                : null}
              {app.callbackUrl !== undefined
                ? (
                  <ConfirmButton size="sm" variant="default" color="gray" title="Remove the callback URL?" confirmLabel="Remove URL"
                    onConfirm={remove}
                    message="Messages accepted from now on are not followed by callbacks. Messages accepted before keep their URL, and failing callbacks are still retried. The signing secret is kept for a URL set later.">
                    Remove URL
                  </ConfirmButton>
                )
                : null}
              <Button type="submit" loading={save.isPending} disabled={!changed && app.callbackUrl !== undefined}>
                Save callback settings
              </Button>
            </Group>
          </Group>
        </Stack>
      </form>
      <SecretShownOnce shown={shown} onClose={() => setShown(undefined)} />
    </Card>
  )
}
