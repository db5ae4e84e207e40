/**
 * A message's page: its status and, when it was refused or ended badly, why (the policy rule, the SMSC's answer, the
 * receipt); its parts (link, SMSC id, status, error, times) and its timeline, each step with what decided it.
 */
import { Alert, Anchor, Card, Code, Group, SimpleGrid, Stack, Table, Text, Timeline, Title } from "@mantine/core"
import { useQuery } from "@tanstack/react-query"
import type { ReactNode } from "react"
import { Link, useParams } from "wouter"
import { api, unwrap } from "../../api/client.ts"
import { Page } from "../../components/Page.tsx"
import { QueryState } from "../../components/States.tsx"
import { commandStatusText, eventTitle, localTime, StatusBadge, useAppNames } from "./labels.tsx"
import type { MessageEvent, MessageView } from "./labels.tsx"

const Field = ({ label, children }: { readonly label: string; readonly children: ReactNode }) => (
  <Stack gap={0}>
    <Text size="xs" c="dimmed" fw={600}>{label}</Text>
    <Text size="sm" component="div" style={{ overflowWrap: "anywhere" }}>{children}</Text>
  </Stack>
)

/** Why the message is where it is, in a sentence, when that needs explaining. */
const Verdict = ({ message }: { readonly message: MessageView }) => {
  const refusal = message.events.find((e) => e.kind === "refused")
  if (message.status === "rejected") {
    const reason = message.reason ?? refusal?.reason ?? "refused"
    const rule = message.ruleId ?? refusal?.ruleId
    return (
      <Alert color="grape" title="Refused: never sent" role="status">
        The gateway refused this message: <strong>{reason}</strong>
        {rule !== undefined ? <> by the contact-policy rule <Code>{rule}</Code></> : null}.
      </Alert>
    )
  }
  if (message.status === "failed" || message.status === "undelivered" || message.status === "expired") {
    const last = [...message.events].reverse().find((e) => e.commandStatus !== undefined || e.reason !== undefined)
    const smpp = last === undefined ? undefined : commandStatusText(last)
    return (
      <Alert color={message.status === "failed" ? "red" : "orange"} title={`Not delivered: ${message.status}`} role="status">
        {message.reason ?? last?.reason ?? "No reason was given."}
        {smpp !== undefined ? <> — the SMSC answered <Code>{smpp}</Code>.</> : null}
      </Alert>
    )
  }
  return null
}

/** "+1.2 s" after the message was created: the timeline's steps are often within one second. */
const after = (from: string, at: string) => {
  const ms = Date.parse(at) - Date.parse(from)
  return ms <= 0 ? undefined : ms < 1000 ? `+${ms} ms` : ms < 120_000 ? `+${(ms / 1000).toFixed(1)} s` : `+${Math.round(ms / 60_000)} min`
}

const EventLine = ({ event, createdAt }: { readonly event: MessageEvent; readonly createdAt: string }) => {
  const smpp = commandStatusText(event)
  const facts = [
    event.part !== undefined ? `part ${event.part}` : undefined,
    event.linkId !== undefined ? `link ${event.linkId}` : undefined
  ].filter((f) => f !== undefined)
  return (
    <Stack gap={2}>
      <Group gap="xs" wrap="wrap">
        <Text size="sm" fw={600}>{eventTitle(event)}</Text>
        <StatusBadge status={event.status} />
        {facts.length > 0 ? <Text size="xs" c="dimmed">{facts.join(" · ")}</Text> : null}
      </Group>
      <Text size="xs" c="dimmed">
        <time dateTime={event.at}>{localTime(event.at)}</time>
        {after(createdAt, event.at) !== undefined ? ` · ${after(createdAt, event.at)}` : null}
      </Text>
      {event.detail !== undefined ? <Text size="sm">{event.detail}</Text> : null}
      {smpp !== undefined ? <Text size="sm">SMPP command_status: <Code>{smpp}</Code></Text> : null}
      {event.ruleId !== undefined
        ? <Text size="sm">Decided by rule <Code>{event.ruleId}</Code>{event.reason !== undefined ? `: ${event.reason}` : ""}</Text>
        : null}
    </Stack>
  )
}

const MessageScreen = () => {
  const { id = "" } = useParams<{ id: string }>()
  const message = useQuery({
    queryKey: ["/v1/messages", id],
    queryFn: () => unwrap(api.GET("/v1/messages/{id}", { params: { path: { id } } }))
  })
  const appName = useAppNames()
  return (
    <Page
      title="Message"
      actions={<Anchor component={Link} href="/messages" size="sm">Back to messages</Anchor>}
    >
      <QueryState query={message} notFound="Message not found">
        {(m) => (
          <Stack gap="md">
            <Card withBorder>
              <Stack gap="sm">
                <Group gap="sm" wrap="wrap">
                  <StatusBadge status={m.status} />
                  <Text size="sm" ff="monospace" style={{ overflowWrap: "anywhere" }}>{m.id}</Text>
                </Group>
                <Verdict message={m} />
                <SimpleGrid cols={{ base: 2, md: 4 }} spacing="sm">
                  <Field label="To">{m.to}</Field>
                  <Field label="From">{m.from}</Field>
                  <Field label="Created">{localTime(m.createdAt)}</Field>
                  <Field label="Last change">{localTime(m.updatedAt)}</Field>
                  <Field label="Parts">{m.segments} · {m.encoding === "ucs2" ? "UCS-2" : "GSM-7"}</Field>
                  <Field label="Class">{m.messageClass ?? "—"}</Field>
                  <Field label="App">{m.appId === undefined ? "—" : appName(m.appId)}</Field>
                  <Field label="Campaign">
                    {m.campaignId === undefined ? "—" : <Anchor component={Link} href={`/messages?campaignId=${encodeURIComponent(m.campaignId)}`}>{m.campaignId}</Anchor>}
                  </Field>
                  <Field label="Client reference">{m.clientRef ?? "—"}</Field>
                </SimpleGrid>
                {m.text !== undefined
                  ? <Field label="Text"><Text size="sm" style={{ whiteSpace: "pre-wrap" }}>{m.text}</Text></Field>
                  : null}
              </Stack>
            </Card>
            <Card withBorder>
              <Title order={2} size="h4" mb="xs">Parts</Title>
              <Table.ScrollContainer minWidth={320}>
                <Table verticalSpacing="xs" aria-label="Parts">
                  <Table.Thead>
                    <Table.Tr>
                      <Table.Th>Part</Table.Th>
                      <Table.Th>Status</Table.Th>
                      <Table.Th>Link</Table.Th>
                      <Table.Th visibleFrom="xs">SMSC id</Table.Th>
                      <Table.Th>Error</Table.Th>
                      <Table.Th visibleFrom="sm">Submitted</Table.Th>
                      <Table.Th visibleFrom="sm">Done</Table.Th>
                    </Table.Tr>
                  </Table.Thead>
                  <Table.Tbody>
                    {m.parts.map((p) => (
                      <Table.Tr key={p.seq}>
                        <Table.Td>{p.seq}</Table.Td>
                        <Table.Td><StatusBadge status={p.status} /></Table.Td>
                        <Table.Td>{p.linkId ?? "—"}</Table.Td>
                        <Table.Td visibleFrom="xs"><Text size="sm" ff="monospace">{p.smscMessageId ?? "—"}</Text></Table.Td>
                        <Table.Td>{p.error ?? "—"}</Table.Td>
                        <Table.Td visibleFrom="sm">{p.submittedAt !== undefined ? localTime(p.submittedAt) : "—"}</Table.Td>
                        <Table.Td visibleFrom="sm">{p.doneAt !== undefined ? localTime(p.doneAt) : "—"}</Table.Td>
                      </Table.Tr>
                    ))}
                  </Table.Tbody>
                </Table>
              </Table.ScrollContainer>
            </Card>
            <Card withBorder>
              <Title order={2} size="h4" mb="sm">Timeline</Title>
              <Timeline active={m.events.length - 1} bulletSize={14} lineWidth={2} aria-label="Timeline">
                {m.events.map((e, i) => <Timeline.Item key={`${e.at}-${i}`}><EventLine event={e} createdAt={m.createdAt} /></Timeline.Item>)}
              </Timeline>
            </Card>
          </Stack>
        )}
      </QueryState>
    </Page>
  )
}

export default MessageScreen
