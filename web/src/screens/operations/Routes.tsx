/**
 * Routing rules (operators): the ordered list (first match wins) and a tester — "which route would this number
 * take" — that marks the matching rule, says why each rule before it did not match, and shows the target's live
 * state (a pool's next pick).
 */
import { Button, Card, Grid, Group, Select, Stack, Table, Text, TextInput, Title } from "@mantine/core"
import { useMutation, useQuery } from "@tanstack/react-query"
import { useState } from "react"
import { api, unwrap } from "../../api/client.ts"
import type { Ok } from "../../api/types.ts"
import { fieldError } from "../../components/Forms.tsx"
import { Page } from "../../components/Page.tsx"
import { Empty, ProblemAlert, QueryState } from "../../components/States.tsx"
import { figure } from "./live.ts"
import { Notice, Tag } from "../policy/Tag.tsx"

type Answer = Ok<"/v1/admin/routes/test", "post">
type Rule = Ok<"/v1/admin/routes", "get">["routes"][number]

const matchText = (rule: Rule) => {
  const m = rule.match
  const parts = [
    m.prefixes !== undefined ? `prefix ${m.prefixes.join(", ")}` : "",
    m.countries !== undefined ? `country ${m.countries.join(", ")}` : "",
    m.appIds !== undefined ? `app ${m.appIds.join(", ")}` : "",
    m.orgIds !== undefined ? `organisation ${m.orgIds.join(", ")}` : "",
    m.senders !== undefined ? `sender ${m.senders.join(", ")}` : "",
    m.messageClasses !== undefined ? `${m.messageClasses.join(", ")}` : ""
  ].filter((p) => p !== "")
  return parts.length === 0 ? "everything" : parts.join(" · ")
}

const targetText = (t: Rule["target"]) => ("pool" in t ? `pool ${t.pool}` : `link ${t.link}`)

const Tester = ({ onAnswer }: { readonly onAnswer: (a: Answer | undefined) => void }) => {
  const [form, setForm] = useState({ to: "", appId: "", from: "", messageClass: "" })
  const test = useMutation({
    mutationFn: () =>
      unwrap(api.POST("/v1/admin/routes/test", {
        body: {
          to: form.to,
          ...(form.appId !== "" ? { appId: form.appId } : {}),
          ...(form.from !== "" ? { from: form.from } : {}),
          ...(form.messageClass === "transactional" || form.messageClass === "promotional" ? { messageClass: form.messageClass } : {})
        }
      })),
    onSuccess: onAnswer,
    onError: () => onAnswer(undefined)
  })
  const set = (key: keyof typeof form) => (e: { currentTarget: { value: string } }) => setForm({ ...form, [key]: e.currentTarget.value })
  const a = test.data
  return (
    <form
      aria-label="Which route would this number take"
      onSubmit={(e) => {
        e.preventDefault()
        test.mutate()
      }}
    >
      <Stack gap="sm">
        <Grid gap="sm">
          <Grid.Col span={{ base: 12, sm: 6 }}>
            <TextInput label="Number" placeholder="+4915112345678" required value={form.to} onChange={set("to")} error={fieldError(test.error, "to")} />
          </Grid.Col>
          <Grid.Col span={{ base: 12, sm: 6 }}>
            <TextInput label="App id" description="Optional" value={form.appId} onChange={set("appId")} error={fieldError(test.error, "appId")} />
          </Grid.Col>
          <Grid.Col span={{ base: 12, sm: 6 }}>
            <TextInput label="Sender" description="Optional" value={form.from} onChange={set("from")} error={fieldError(test.error, "from")} />
          </Grid.Col>
          <Grid.Col span={{ base: 12, sm: 6 }}>
            <Select
              label="Message class"
              data={[{ value: "", label: "The app's (or transactional)" }, { value: "transactional", label: "Transactional" }, { value: "promotional", label: "Promotional" }]}
              value={form.messageClass}
              allowDeselect={false}
              onChange={(v) => setForm({ ...form, messageClass: v ?? "" })}
            />
          </Grid.Col>
        </Grid>
        {test.isError && fieldError(test.error, "to", "appId", "from") === undefined ? <ProblemAlert error={test.error} /> : null}
        <Button type="submit" w="fit-content" loading={test.isPending}>Find the route</Button>
        {a !== undefined
          ? (
            <Notice color={a.routed ? "green" : "red"}
              title={a.routed
                ? `${a.to}${a.country !== undefined ? ` (${a.country})` : ""} goes to ${a.target !== undefined ? targetText(a.target) : "?"}${
                  a.ruleId !== undefined ? ` by rule ${a.ruleId}` : " (the default route)"
                }`
                : `${a.to}: no route`}
            >
              <Stack gap={4}>
                {a.noRoute !== undefined ? <Text size="sm">{a.noRoute}</Text> : null}
                {a.capacityTps !== undefined ? <Text size="sm">Capacity {a.capacityTps} parts per second</Text> : null}
                {a.pool !== undefined
                  ? (
                    <Text size="sm">
                      Pool {a.pool.poolId}: next pick <b>{a.pool.nextPick ?? "none (no member can send)"}</b>
                      {a.pool.state !== undefined
                        ? `; members ${a.pool.state.members.map((m) => `${m.linkId} ${m.state} (weight ${figure(m.effectiveWeight)})`).join(", ")}`
                        : ""}
                    </Text>
                  )
                  : null}
                {a.link !== undefined
                  ? <Text size="sm">Link {a.link.linkId}: {a.link.enabled ? a.link.state?.health ?? a.link.unavailable ?? "?" : "disabled"}</Text>
                  : null}
              </Stack>
            </Notice>
          )
          : null}
      </Stack>
    </form>
  )
}

const Routes = () => {
  const routes = useQuery({ queryKey: ["/v1/admin/routes"], queryFn: () => unwrap(api.GET("/v1/admin/routes")) })
  const [answer, setAnswer] = useState<Answer | undefined>(undefined)
  const trace = new Map((answer?.rules ?? []).map((r) => [r.ruleId, r]))
  return (
    <Page title="Routes">
      <Grid gap="lg">
        <Grid.Col span={{ base: 12, lg: 7 }}>
          <QueryState query={routes}>
            {(r) =>
              r.routes.length === 0
                ? <Empty>No routing rules: the first enabled link takes every message.</Empty>
                : (
                  <Table.ScrollContainer minWidth={560}>
                    <Table striped aria-label="Routing rules, first match wins">
                      <Table.Thead>
                        <Table.Tr>
                          <Table.Th>#</Table.Th>
                          <Table.Th>Rule</Table.Th>
                          <Table.Th>Matches</Table.Th>
                          <Table.Th>Sends to</Table.Th>
                          {answer !== undefined ? <Table.Th>Tested number</Table.Th> : null}
                        </Table.Tr>
                      </Table.Thead>
                      <Table.Tbody>
                        {r.routes.map((rule, i) => {
                          const t = trace.get(rule.id)
                          return (
                            <Table.Tr key={rule.id} {...(t?.outcome === "matched" ? { "aria-current": "true", bg: "var(--mantine-color-green-light)" } : {})}>
                              <Table.Td>{i + 1}</Table.Td>
                              <Table.Td>{rule.id}</Table.Td>
                              <Table.Td>{matchText(rule)}</Table.Td>
                              <Table.Td>{targetText(rule.target)}</Table.Td>
                              {answer !== undefined
                                ? (
                                  <Table.Td>
                                    {t === undefined ? null : t.outcome === "matched"
                                      ? <Tag color="green">Matched</Tag>
                                      : t.outcome === "no_match"
                                      ? <Text size="xs">{t.detail}</Text>
                                      : <Text size="xs" c="dimmed">not reached</Text>}
                                  </Table.Td>
                                )
                                : null}
                            </Table.Tr>
                          )
                        })}
                      </Table.Tbody>
                    </Table>
                  </Table.ScrollContainer>
                )}
          </QueryState>
        </Grid.Col>
        <Grid.Col span={{ base: 12, lg: 5 }}>
          <Card withBorder>
            <Group mb="xs"><Title order={2} size="h4">Which route would this number take?</Title></Group>
            <Tester onAnswer={setAnswer} />
          </Card>
        </Grid.Col>
      </Grid>
    </Page>
  )
}

export default Routes
