/**
 * "Test this message": a recipient, sender, text and class (and whose message it is) through the policy as a dry run
 * on the server — the live version, or a draft being edited — answered with the rule that decides and what every
 * rule did. Nothing is counted or sent.
 */
import { Button, Grid, Group, List, Select, Stack, Text, Textarea, TextInput } from "@mantine/core"
import { useMutation } from "@tanstack/react-query"
import { useState } from "react"
import { api, unwrap } from "../../api/client.ts"
import { fieldError } from "../../components/Forms.tsx"
import { ProblemAlert } from "../../components/States.tsx"
import type { PolicyDocument } from "./model.ts"
import type { TestResult } from "./RuleFlow.tsx"
import { Notice, Tag } from "./Tag.tsx"

const fields = ["to", "from", "text", "messageClass", "appId", "orgId", "at"]

const decisionText = (r: TestResult) =>
  r.decision === "admit"
    ? "Admitted"
    : r.decision === "defer"
    ? `Deferred by ${r.ruleId ?? "?"} (${r.reason ?? ""}) until ${r.retryAt !== undefined ? new Date(r.retryAt).toLocaleString() : "?"}`
    : `Refused by ${r.ruleId ?? "?"} (${r.reason ?? ""})`

export const TestMessage = ({ draft, onResult }: {
  /** Test this document instead of the live policy. */
  readonly draft?: PolicyDocument
  readonly onResult?: (result: TestResult | undefined) => void
}) => {
  const [form, setForm] = useState({ to: "", from: "", text: "", messageClass: "", appId: "", orgId: "", at: "" })
  const test = useMutation({
    mutationFn: () =>
      unwrap(api.POST("/v1/policies/test", {
        body: {
          to: form.to,
          text: form.text,
          ...(form.from !== "" ? { from: form.from } : {}),
          ...(form.messageClass === "transactional" || form.messageClass === "promotional" ? { messageClass: form.messageClass } : {}),
          ...(form.appId !== "" ? { appId: form.appId } : {}),
          ...(form.orgId !== "" ? { orgId: form.orgId } : {}),
          ...(form.at !== "" ? { at: new Date(form.at).toISOString() } : {}),
          ...(draft !== undefined ? { policy: { rules: [...draft.rules], ...(draft.blacklists !== undefined ? { blacklists: [...draft.blacklists] } : {}) } } : {})
        }
      })),
    onSuccess: (result) => onResult?.(result),
    onError: () => onResult?.(undefined)
  })
  const set = (key: keyof typeof form) => (e: { currentTarget: { value: string } }) => setForm({ ...form, [key]: e.currentTarget.value })
  const result = test.data
  const fieldLevel = fields.some((f) => fieldError(test.error, f) !== undefined)
  return (
    <form
      aria-label="Test this message"
      onSubmit={(e) => {
        e.preventDefault()
        test.mutate()
      }}
    >
      <Stack gap="sm">
        <Grid gap="sm">
          <Grid.Col span={{ base: 12, sm: 6 }}>
            <TextInput label="To" placeholder="+4915112345678" required value={form.to} onChange={set("to")} error={fieldError(test.error, "to")} />
          </Grid.Col>
          <Grid.Col span={{ base: 12, sm: 6 }}>
            <TextInput label="From" placeholder="Sender" value={form.from} onChange={set("from")} error={fieldError(test.error, "from")} />
          </Grid.Col>
          <Grid.Col span={12}>
            <Textarea label="Text" required autosize minRows={2} value={form.text} onChange={set("text")} error={fieldError(test.error, "text")} />
          </Grid.Col>
          <Grid.Col span={{ base: 12, sm: 4 }}>
            <Select
              label="Message class"
              data={[{ value: "", label: "The app's (or transactional)" }, { value: "transactional", label: "Transactional" }, {
                value: "promotional",
                label: "Promotional"
              }]}
              value={form.messageClass}
              allowDeselect={false}
              onChange={(v) => setForm({ ...form, messageClass: v ?? "" })}
              error={fieldError(test.error, "messageClass")}
            />
          </Grid.Col>
          <Grid.Col span={{ base: 12, sm: 4 }}>
            <TextInput label="App id" description="Its organisation and class apply" value={form.appId} onChange={set("appId")}
              error={fieldError(test.error, "appId")} />
          </Grid.Col>
          <Grid.Col span={{ base: 12, sm: 4 }}>
            <TextInput label="Organisation id" description="Without an app" value={form.orgId} onChange={set("orgId")}
              error={fieldError(test.error, "orgId")} />
          </Grid.Col>
          <Grid.Col span={{ base: 12, sm: 6 }}>
            <TextInput label="At" type="datetime-local" description="Decide as of this time (default now)" value={form.at} onChange={set("at")}
              error={fieldError(test.error, "at")} />
          </Grid.Col>
        </Grid>
        {test.isError && !fieldLevel ? <ProblemAlert error={test.error} title="The test could not run" /> : null}
        <Group>
          <Button type="submit" loading={test.isPending}>{draft !== undefined ? "Test with the draft" : "Test"}</Button>
          <Text size="sm" c="dimmed">A dry run: nothing is counted or sent.</Text>
        </Group>
        {result !== undefined
          ? (
            <Notice color={result.decision === "admit" ? "green" : result.decision === "defer" ? "orange" : "red"} title={decisionText(result)}>
              <Stack gap={4}>
                <Text size="sm">
                  {result.to}{result.country !== undefined ? ` (${result.country})` : ""} · {result.messageClass}
                  {result.policyVersion !== undefined ? ` · policy version ${result.policyVersion}` : " · draft"}
                </Text>
                {result.firstMessageId !== undefined ? <Text size="sm">The same message was accepted as {result.firstMessageId}.</Text> : null}
                {result.unloadedLists.length > 0 ? <Text size="sm">Not loaded, tested as empty: {result.unloadedLists.join(", ")}</Text> : null}
                <List size="sm" aria-label="What each rule did">
                  {result.rules.map((r) => (
                    <List.Item key={r.ruleId}>
                      <Group gap={6}>
                        <Text size="sm" fw={600}>{r.ruleId}</Text>
                        <Tag size="sm" color={r.outcome === "refused" ? "red" : r.outcome === "passed" ? "green" : "gray"}>
                          {r.outcome.replace("_", " ")}
                        </Tag>
                        {r.detail !== undefined ? <Text size="xs" c="dimmed">{r.detail}</Text> : null}
                      </Group>
                    </List.Item>
                  ))}
                </List>
              </Stack>
            </Notice>
          )
          : null}
      </Stack>
    </form>
  )
}
