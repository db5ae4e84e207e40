/**
 * Loading, empty and error states, the same on every screen; a problem shows its title and detail, and a query's
 * error offers to retry.
 */
import { Alert, Button, Center, Loader, Stack, Text } from "@mantine/core"
import type { UseQueryResult } from "@tanstack/react-query"
import type { ReactNode } from "react"
import { asProblem } from "../api/problem.ts"

export const ProblemAlert = ({ error, title }: { readonly error: unknown; readonly title?: string }) => {
  const problem = asProblem(error)
  if (problem === undefined) return null
  return (
    <Alert color="red" title={title ?? problem.title} role="alert" variant="light">
      {problem.detail}
    </Alert>
  )
}

export const Loading = ({ label = "Loading…" }: { readonly label?: string }) => (
  <Center py="xl" role="status" aria-live="polite">
    <Stack align="center" gap="xs">
      <Loader size="sm" aria-hidden />
      <Text size="sm" c="dimmed">{label}</Text>
    </Stack>
  </Center>
)

export const Empty = ({ children }: { readonly children: ReactNode }) => (
  <Center py="xl">
    <Text c="dimmed" ta="center">{children}</Text>
  </Center>
)

/** Renders a query's data, or its loading or error state. */
export const QueryState = <T,>({ query, children, notFound }: {
  readonly query: UseQueryResult<T>
  readonly children: (data: T) => ReactNode
  /** What a 404 means on this screen ("Campaign not found"). */
  readonly notFound?: string
}) => {
  if (query.isPending) return <Loading />
  if (query.isError) {
    const problem = asProblem(query.error)
    if (problem?.status === 404 && notFound !== undefined) {
      return <Alert color="gray" title={notFound} role="alert">{problem.detail}</Alert>
    }
    return (
      <Stack>
        <ProblemAlert error={query.error} />
        <Button variant="light" w="fit-content" onClick={() => void query.refetch()}>Retry</Button>
      </Stack>
    )
  }
  return <>{children(query.data)}</>
}
