/**
 * The rule chain drawn as a flow: messages enter at the top and meet the rules in evaluation order (blacklists, quiet
 * hours, dedup, caps), each box with what it let through and what it refused; refusals leave to the side, the rest
 * go on to "Admitted". An ordered list, so a screen reader reads the order too. A tested message's path is marked.
 */
import { Box, Group, Paper, Stack, Text } from "@mantine/core"
import type { Ok } from "../../api/types.ts"
import type { Rule } from "./model.ts"
import { scopeText, summary, typeColor, typeLabel } from "./model.ts"
import { Tag } from "./Tag.tsx"

export type Stats = Ok<"/v1/policies/stats", "get">
export type TestResult = Ok<"/v1/policies/test", "post">

const number = new Intl.NumberFormat("en")

const outcomeLabel: Record<TestResult["rules"][number]["outcome"], { readonly text: string; readonly color: string }> = {
  passed: { text: "passed", color: "green" },
  refused: { text: "refused it", color: "red" },
  deferred: { text: "deferred it", color: "orange" },
  not_reached: { text: "not reached", color: "gray" },
  not_applicable: { text: "does not apply", color: "gray" }
}

const Arrow = () => (
  <Box aria-hidden ta="center" c="dimmed" lh={1} fz="lg">↓</Box>
)

const Counter = ({ label, value, color }: { readonly label: string; readonly value: number | undefined; readonly color: string }) => (
  <Stack gap={0} align="flex-end">
    <Text fw={700} c={color} size="lg">{value === undefined ? "–" : number.format(value)}</Text>
    <Text size="xs" c="dimmed">{label}</Text>
  </Stack>
)

export const RuleFlow = ({ rules, stats, trace }: {
  /** The rules in evaluation order. */
  readonly rules: ReadonlyArray<Rule>
  readonly stats: Stats | undefined
  readonly trace?: TestResult | undefined
}) => {
  const counts = new Map((stats?.rules ?? []).map((r) => [r.ruleId, r]))
  const outcomes = new Map((trace?.rules ?? []).map((r) => [r.ruleId, r]))
  return (
    <Stack gap={4} component="ol" aria-label="Rules in the order messages meet them" style={{ listStyle: "none", padding: 0, margin: 0 }}>
      <li>
        <Paper withBorder p="xs" radius="xl" ta="center">
          <Text size="sm" fw={600}>Messages in{stats !== undefined ? `: ${number.format(stats.admitted + stats.refused)}` : ""}</Text>
        </Paper>
        <Arrow />
      </li>
      {rules.map((rule) => {
        const c = counts.get(rule.id)
        const tested = outcomes.get(rule.id)
        const decided = tested?.outcome === "refused" || tested?.outcome === "deferred"
        const off = rule.enabled === false
        return (
          <li key={rule.id} aria-label={`Rule ${rule.id}`}>
            <Group wrap="nowrap" align="stretch" gap="xs">
              <Paper
                withBorder
                p="sm"
                style={{
                  flex: 1,
                  opacity: off ? 0.6 : 1,
                  borderColor: decided ? "var(--mantine-color-red-7)" : tested?.outcome === "passed" ? "var(--mantine-color-green-7)" : undefined,
                  borderWidth: tested !== undefined && tested.outcome !== "not_applicable" && tested.outcome !== "not_reached" ? 2 : undefined
                }}
              >
                <Group justify="space-between" wrap="wrap" gap="xs">
                  <Stack gap={2} style={{ minWidth: 0, flex: 1 }}>
                    <Group gap="xs">
                      <Text fw={700}>{rule.id}</Text>
                      <Tag color={typeColor[rule.type]}>{typeLabel[rule.type]}</Tag>
                      {off ? <Tag color="gray" outline>Disabled</Tag> : null}
                      {tested !== undefined
                        ? <Tag color={outcomeLabel[tested.outcome].color}>Test: {outcomeLabel[tested.outcome].text}</Tag>
                        : null}
                    </Group>
                    <Text size="sm">{summary(rule)}</Text>
                    <Text size="xs" c="dimmed">{scopeText(rule)}{tested?.detail !== undefined ? ` · ${tested.detail}` : ""}</Text>
                  </Stack>
                  <Group gap="lg" wrap="nowrap">
                    <Counter label="let through" value={c?.admitted} color="green.9" />
                    <Counter label="refused" value={c?.refused} color="red.9" />
                  </Group>
                </Group>
              </Paper>
              <Box w={{ base: 0, xs: 120 }} visibleFrom="xs" style={{ alignSelf: "center" }}>
                {c !== undefined && c.refused > 0
                  ? (
                    <Text size="xs" c="red.9" aria-hidden>
                      → {Object.entries(c.byReason).map(([reason, n]) => `${number.format(n)} ${reason}`).join(", ")}
                    </Text>
                  )
                  : null}
              </Box>
            </Group>
            <Arrow />
          </li>
        )
      })}
      <li>
        <Paper withBorder p="xs" radius="xl" ta="center" bg="var(--mantine-color-green-light)">
          <Text size="sm" fw={600}>Admitted{stats !== undefined ? `: ${number.format(stats.admitted)}` : ""}</Text>
        </Paper>
      </li>
    </Stack>
  )
}
