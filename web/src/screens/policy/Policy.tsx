/**
 * The contact policy (operators): the live rule chain as a flow with each rule's counters, live over SSE, for a
 * chosen window; "test this message" beside it, marking the tested message's path in the flow.
 */
import { Button, Card, Grid, Group, SegmentedControl, Stack, Text, Title } from "@mantine/core"
import { useQuery } from "@tanstack/react-query"
import { useState } from "react"
import { Link } from "wouter"
import { api, unwrap } from "../../api/client.ts"
import { useLiveQuery } from "../../api/sse.ts"
import { Page } from "../../components/Page.tsx"
import { Empty, QueryState } from "../../components/States.tsx"
import type { Rule } from "./model.ts"
import { RuleFlow } from "./RuleFlow.tsx"
import type { Stats, TestResult } from "./RuleFlow.tsx"
import { TestMessage } from "./TestMessage.tsx"
import { Tag } from "./Tag.tsx"

const windows = [{ value: "60", label: "Last hour" }, { value: "1440", label: "24 hours" }, { value: "10080", label: "7 days" }]

/** The rules in the order the counters' answer gives (evaluation order), else as the document lists them. */
const ordered = (rules: ReadonlyArray<Rule>, stats: Stats | undefined): ReadonlyArray<Rule> => {
  if (stats === undefined) return rules
  const position = new Map(stats.rules.flatMap((r) => r.position !== undefined ? [[r.ruleId, r.position] as const] : []))
  return [...rules].sort((a, b) => (position.get(a.id) ?? 0) - (position.get(b.id) ?? 0))
}

const PolicyScreen = () => {
  const [minutes, setMinutes] = useState("60")
  const [trace, setTrace] = useState<TestResult | undefined>(undefined)
  const policy = useQuery({ queryKey: ["/v1/policies"], queryFn: () => unwrap(api.GET("/v1/policies")) })
  const statsKey = ["/v1/policies/stats", minutes]
  const stats = useQuery({
    queryKey: statsKey,
    queryFn: () => unwrap(api.GET("/v1/policies/stats", { params: { query: { minutes } } }))
  })
  useLiveQuery(`/v1/policies/stats/stream?minutes=${minutes}`, statsKey)
  return (
    <Page
      title="Contact policy"
      actions={
        <>
          <Button component={Link} href="/policy/edit">Edit rules</Button>
          <Button component={Link} href="/policy/versions" variant="light">Versions</Button>
          <Button component={Link} href="/policy/blacklists" variant="light">Blacklists</Button>
        </>
      }
    >
      <QueryState query={policy}>
        {(p) => (
          <Grid gap="lg">
            <Grid.Col span={{ base: 12, md: 7 }}>
              <Stack gap="sm">
                <Group justify="space-between" wrap="wrap">
                  <Group gap="xs">
                    <Title order={2} size="h4">Rule chain</Title>
                    <Tag color="blue">Version {p.version}</Tag>
                  </Group>
                  <SegmentedControl aria-label="Counters over" size="xs" data={windows} value={minutes} onChange={setMinutes} />
                </Group>
                <Text size="sm" c="dimmed">
                  Messages meet the rules from top to bottom; the first refusal decides. Counters are the whole deployment's,
                  updated every second.
                </Text>
                {p.rules.length === 0
                  ? <Empty>No rules: every message is admitted.</Empty>
                  : <RuleFlow rules={ordered(p.rules, stats.data)} stats={stats.data} trace={trace} />}
              </Stack>
            </Grid.Col>
            <Grid.Col span={{ base: 12, md: 5 }}>
              <Card withBorder>
                <Title order={2} size="h4" mb="xs">Test this message</Title>
                <TestMessage onResult={setTrace} />
              </Card>
            </Grid.Col>
          </Grid>
        )}
      </QueryState>
    </Page>
  )
}

export default PolicyScreen
