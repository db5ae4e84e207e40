/**
 * The frame of the signed-out screens: a centred card with the product's name.
 */
import { Center, Paper, Stack, Text, Title } from "@mantine/core"
import type { ReactNode } from "react"
import { useEffect } from "react"

export const AuthFrame = ({ title, children }: { readonly title: string; readonly children: ReactNode }) => {
  useEffect(() => {
    document.title = `${title} · Message Center`
  }, [title])
  return (
    <Center mih="100vh" p="md" component="main">
      <Paper withBorder shadow="sm" p="xl" radius="md" w="100%" maw={420}>
        <Stack gap="md">
          <Text c="dimmed" size="sm" fw={600}>SMS Gateway Proxy · Message Center</Text>
          <Title order={1} size="h2">{title}</Title>
          {children}
        </Stack>
      </Paper>
    </Center>
  )
}

/** The token of a mailed link: in the fragment (never sent to a server, so never in a log), or the query. */
export const mailedToken = (): string => {
  const fromHash = new URLSearchParams(window.location.hash.slice(1)).get("token")
  return fromHash ?? new URLSearchParams(window.location.search).get("token") ?? ""
}
