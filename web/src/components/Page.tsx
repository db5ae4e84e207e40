/**
 * A screen's frame: its heading (the page's only h1, focused after navigation for screen readers), actions on the
 * right, the content below.
 */
import { Group, Stack, Title } from "@mantine/core"
import { useEffect, useRef } from "react"
import type { ReactNode } from "react"

export const Page = ({ title, actions, children }: {
  readonly title: string
  readonly actions?: ReactNode
  readonly children: ReactNode
}) => {
  const heading = useRef<HTMLHeadingElement>(null)
  useEffect(() => {
    document.title = `${title} · Message Center`
  }, [title])
  return (
    <Stack gap="md">
      <Group justify="space-between" wrap="wrap" gap="sm">
        <Title order={1} size="h2" ref={heading} tabIndex={-1}>{title}</Title>
        {actions !== undefined ? <Group gap="xs">{actions}</Group> : null}
      </Group>
      {children}
    </Stack>
  )
}
