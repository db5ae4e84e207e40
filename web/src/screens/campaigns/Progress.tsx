/**
 * A campaign's progress as one bar: delivered, sent and waiting for a receipt, not sent (excluded, refused, failed),
 * against its audience; the figures in words beside it, so colour is never the only signal.
 */
import { Group, Progress, Stack, Text } from "@mantine/core"
import { formatNumber } from "./shared.tsx"
import type { Stats } from "./shared.tsx"

export const progressOf = (s: Stats) => {
  const audience = Math.max(s.audience, 1)
  const delivered = s.messages.delivered
  const notSent = s.recipients.excluded + s.recipients.refused + s.recipients.failed
  const processed = s.recipients.submitted + notSent
  const inFlight = Math.max(s.recipients.submitted - delivered, 0)
  const pct = (n: number) => Math.min(100, (n / audience) * 100)
  return { processed, delivered, notSent, inFlight, pct, processedPct: Math.round(pct(processed)) }
}

export const CampaignProgressBar = ({ stats, name, size = "lg" }: {
  readonly stats: Stats
  readonly name: string
  readonly size?: "sm" | "md" | "lg" | "xl"
}) => {
  const p = progressOf(stats)
  return (
    <Stack gap={4}>
      <Progress.Root size={size}>
        <Progress.Section value={p.pct(p.delivered)} color="green" aria-label={`${name}: delivered`} />
        <Progress.Section value={p.pct(p.inFlight)} color="blue" aria-label={`${name}: sent, waiting for a receipt or not delivered`} />
        <Progress.Section value={p.pct(p.notSent)} color="orange" aria-label={`${name}: not sent`} />
      </Progress.Root>
      <Group gap="xs" wrap="wrap">
        <Text size="xs">{p.processedPct} % of {formatNumber(stats.audience)} processed</Text>
        <Text size="xs" c="dimmed">· {formatNumber(p.delivered)} delivered</Text>
        {p.notSent > 0 ? <Text size="xs" c="dimmed">· {formatNumber(p.notSent)} not sent</Text> : null}
      </Group>
    </Stack>
  )
}
