/**
 * One test message of a campaign to one number, through the whole pipeline (limits, policy, routing) as the
 * campaign's app: the rendered text, its encoding and parts, then the message's status as it moves, until its
 * receipt. Refusals (policy, no route, the daily quota with when to retry) are shown as the server words them.
 */
import { Alert, Anchor, Button, Group, Stack, Text, TextInput } from "@mantine/core"
import { useMutation, useQuery } from "@tanstack/react-query"
import { useState } from "react"
import { Link } from "wouter"
import { api, unwrap } from "../../api/client.ts"
import { fieldError } from "../../components/Forms.tsx"
import { ProblemAlert } from "../../components/States.tsx"
import { encodingLabel } from "./Insight.tsx"
import { Tag } from "./shared.tsx"

const finalStatuses = ["delivered", "undelivered", "expired", "failed", "rejected"]

const statusColor = (status: string) =>
  status === "delivered" ? "green" : finalStatuses.includes(status) ? "red" : "blue"

const MessageStatus = ({ messageId }: { readonly messageId: string }) => {
  const message = useQuery({
    queryKey: ["/v1/messages", messageId],
    queryFn: () => unwrap(api.GET("/v1/messages/{id}", { params: { path: { id: messageId } } })),
    refetchInterval: (q) => {
      const status = q.state.data?.status
      return status !== undefined && finalStatuses.includes(status) ? false : 1_000
    }
  })
  if (message.data === undefined) return <Text size="sm" c="dimmed">{message.isError ? "status unavailable" : "…"}</Text>
  return (
    <Group gap={6}>
      <Text size="sm">Status:</Text>
      <Tag color={statusColor(message.data.status)} aria-live="polite">{message.data.status}</Tag>
      {message.data.reason !== undefined ? <Text size="sm" c="dimmed">{message.data.reason}</Text> : null}
    </Group>
  )
}

export const TestSend = ({ campaignId }: { readonly campaignId: string }) => {
  const [to, setTo] = useState("")
  const send = useMutation({
    mutationFn: () => unwrap(api.POST("/v1/campaigns/{id}/test", { params: { path: { id: campaignId } }, body: { to: to.trim() } }))
  })
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault()
        send.mutate()
      }}
    >
      <Stack gap="sm">
        <Group align="flex-end" wrap="wrap">
          <TextInput
            label="Test number"
            description="E.164, e.g. +4915112345678; rendered with the first contact's variables"
            type="tel"
            required
            value={to}
            onChange={(e) => setTo(e.currentTarget.value)}
            error={fieldError(send.error, "to")}
            miw={240}
          />
          <Button type="submit" variant="default" loading={send.isPending}>Send a test</Button>
        </Group>
        {send.isError && fieldError(send.error, "to") === undefined ? <ProblemAlert error={send.error} title="The test was not sent" /> : null}
        {send.data !== undefined
          ? (
            <Alert color="blue" variant="light" title={`Test sent to ${send.data.to}`} role="status">
              <Stack gap={4}>
                <Text size="sm" style={{ whiteSpace: "pre-wrap" }}>{send.data.text}</Text>
                <Text size="xs" c="dimmed">
                  {encodingLabel(send.data.encoding)} · {send.data.segments} {send.data.segments === 1 ? "part" : "parts"} · message{" "}
                  <Anchor component={Link} href={`/messages/${send.data.messageId}`} size="xs" c="blue.9">{send.data.messageId}</Anchor>
                </Text>
                <MessageStatus messageId={send.data.messageId} />
              </Stack>
            </Alert>
          )
          : null}
      </Stack>
    </form>
  )
}
