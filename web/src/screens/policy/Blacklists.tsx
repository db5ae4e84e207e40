/**
 * Blacklists you may manage (operators: all; an organisation's admins: their own): each list's load state (where
 * its numbers come from, how many, when loaded, stale or not), a search of its numbers, and a file upload that lists
 * (or unlists) numbers in one go with a report of what was read.
 */
import { Button, Card, FileInput, Group, Select, Stack, Table, Text, TextInput, Title } from "@mantine/core"
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query"
import { useState } from "react"
import { api, authedFetch, unwrap } from "../../api/client.ts"
import { ApiProblem, toProblem } from "../../api/problem.ts"
import { useMe } from "../../api/session.tsx"
import type { Ok } from "../../api/types.ts"
import { fieldError } from "../../components/Forms.tsx"
import { Page } from "../../components/Page.tsx"
import { Empty, ProblemAlert, QueryState } from "../../components/States.tsx"
import { Notice, Tag } from "./Tag.tsx"

type List = Ok<"/v1/blacklists", "get">[number]
type Upload = Ok<"/v1/blacklists/{name}/entries/upload", "post">

const number = new Intl.NumberFormat("en")
const when = (iso: string | undefined) => (iso === undefined ? "—" : new Date(iso).toLocaleString())

const contentTypeOf = (file: File) =>
  file.type === "text/csv" || file.name.toLowerCase().endsWith(".csv") ? "text/csv" : "text/plain"

/** Streams the file as the request body (the server reads it as it arrives). */
const uploadFile = async (name: string, file: File, mode: "add" | "remove"): Promise<Upload> => {
  const url = new URL(`/v1/blacklists/${encodeURIComponent(name)}/entries/upload?mode=${mode}`, window.location.origin)
  const response = await authedFetch(new Request(url, { method: "POST", headers: { "content-type": contentTypeOf(file) }, body: file }))
  if (!response.ok) throw await toProblem(response)
  return await response.json() as Upload
}

const ListPanel = ({ list }: { readonly list: List }) => {
  const me = useMe()
  const queries = useQueryClient()
  const [q, setQ] = useState("")
  const [search, setSearch] = useState<string | undefined>(undefined)
  const [file, setFile] = useState<File | null>(null)
  const [mode, setMode] = useState<"add" | "remove">("add")
  const found = useQuery({
    queryKey: ["/v1/blacklists/{name}/entries", list.name, search],
    enabled: search !== undefined,
    queryFn: () =>
      unwrap(api.GET("/v1/blacklists/{name}/entries", {
        params: { path: { name: list.name }, query: { limit: "100", ...(search !== undefined && search !== "" ? { q: search } : {}) } }
      }))
  })
  const upload = useMutation({
    mutationFn: () => (file === null ? Promise.reject(new ApiProblem(400, "No file", "Choose a file first", [{ field: "body", message: "choose a file" }], {})) : uploadFile(list.name, file, mode)),
    onSuccess: () => queries.invalidateQueries({ queryKey: ["/v1/blacklists"] })
  })
  const reload = useMutation({
    mutationFn: () => unwrap(api.POST("/v1/blacklists/{name}/reload", { params: { path: { name: list.name } } })),
    onSuccess: () => queries.invalidateQueries({ queryKey: ["/v1/blacklists"] })
  })
  return (
    <Card withBorder>
      <Stack gap="md">
        <Group justify="space-between">
          <Title order={2} size="h4">{list.name}</Title>
          {me.user.superadmin && list.object !== null
            ? <Button size="xs" variant="light" loading={reload.isPending} onClick={() => reload.mutate()}>Check the file now</Button>
            : null}
        </Group>
        {reload.isError ? <ProblemAlert error={reload.error} /> : null}
        <form
          role="search"
          aria-label={`Search ${list.name}`}
          onSubmit={(e) => {
            e.preventDefault()
            setSearch(q.trim())
          }}
        >
          <Group align="flex-end">
            <TextInput label="Number starts with" placeholder="+49151" value={q} onChange={(e) => setQ(e.currentTarget.value)}
              error={fieldError(found.error, "q")} />
            <Button type="submit" variant="light">Search</Button>
          </Group>
        </form>
        {search !== undefined
          ? (
            <QueryState query={found}>
              {(r) =>
                r.entries.length === 0
                  ? <Empty>No number of {list.name} starts with {search === "" ? "anything" : search}.</Empty>
                  : (
                    <Stack gap={4}>
                      <Table aria-label={`Numbers of ${list.name}`}>
                        <Table.Thead><Table.Tr><Table.Th>Number</Table.Th><Table.Th>Source</Table.Th></Table.Tr></Table.Thead>
                        <Table.Tbody>
                          {r.entries.map((e) => (
                            <Table.Tr key={e.number}>
                              <Table.Td>{e.number}</Table.Td>
                              <Table.Td>{e.source === "file" ? "file" : e.source === "added" ? "added through the API" : "unlisted (in the file)"}</Table.Td>
                            </Table.Tr>
                          ))}
                        </Table.Tbody>
                      </Table>
                      {r.more ? <Text size="sm" c="dimmed">More numbers match: type more digits.</Text> : null}
                    </Stack>
                  )}
            </QueryState>
          )
          : null}
        <form
          aria-label={`Upload numbers to ${list.name}`}
          onSubmit={(e) => {
            e.preventDefault()
            upload.mutate()
          }}
        >
          <Group align="flex-end" wrap="wrap">
            <FileInput label="File of numbers" description="One per line, or CSV with the number first" accept=".txt,.csv,text/plain,text/csv"
              value={file} onChange={setFile} clearable clearButtonProps={{ "aria-label": "Clear the file" }} w={260} error={fieldError(upload.error, "body")} />
            <Select label="The numbers are" data={[{ value: "add", label: "Listed" }, { value: "remove", label: "Unlisted" }]} value={mode}
              allowDeselect={false} onChange={(v) => setMode(v === "remove" ? "remove" : "add")} w={140} />
            <Button type="submit" loading={upload.isPending}>Upload</Button>
          </Group>
        </form>
        {upload.isError && fieldError(upload.error, "body") === undefined ? <ProblemAlert error={upload.error} /> : null}
        {upload.data !== undefined
          ? (
            <Notice color="green" title={`${number.format(upload.data.changed)} number(s) ${mode === "add" ? "listed" : "unlisted"}`}>
              {number.format(upload.data.numbers)} distinct numbers in {number.format(upload.data.lines)} lines
              {upload.data.header ? " (a header row skipped)" : ""}, {number.format(upload.data.duplicates)} repeated,
              {" "}{number.format(upload.data.invalid)} not numbers
              {upload.data.invalidLines.length > 0
                ? `: ${upload.data.invalidLines.map((l) => `line ${l.line} "${l.text}"`).join(", ")}`
                : ""}.
            </Notice>
          )
          : null}
      </Stack>
    </Card>
  )
}

const Blacklists = () => {
  const lists = useQuery({ queryKey: ["/v1/blacklists"], queryFn: () => unwrap(api.GET("/v1/blacklists")) })
  const [chosen, setChosen] = useState<string | undefined>(undefined)
  return (
    <Page title="Blacklists">
      <QueryState query={lists}>
        {(all) => {
          if (all.length === 0) return <Empty>No blacklist you may manage. Operators define lists in the contact policy.</Empty>
          const selected = all.find((l) => l.name === (chosen ?? all[0]?.name))
          return (
            <Stack gap="md">
              <Table.ScrollContainer minWidth={720}>
                <Table striped aria-label="Blacklists and their load state">
                  <Table.Thead>
                    <Table.Tr>
                      <Table.Th>List</Table.Th>
                      <Table.Th>Numbers from</Table.Th>
                      <Table.Th>Entries</Table.Th>
                      <Table.Th>File / added / removed</Table.Th>
                      <Table.Th>Loaded</Table.Th>
                      <Table.Th>State</Table.Th>
                      <Table.Th><span className="visually-hidden">Open</span></Table.Th>
                    </Table.Tr>
                  </Table.Thead>
                  <Table.Tbody>
                    {all.map((l) => (
                      <Table.Tr key={l.name}>
                        <Table.Td>{l.name}{l.org !== undefined ? <Text size="xs" c="dimmed">organisation {l.org}</Text> : null}</Table.Td>
                        <Table.Td>{l.object === null ? "API entries only" : l.object ?? "its file"}</Table.Td>
                        <Table.Td>{l.entries !== undefined ? number.format(l.entries) : "—"}</Table.Td>
                        <Table.Td>{number.format(l.baseEntries)} / {number.format(l.added)} / {number.format(l.removed)}</Table.Td>
                        <Table.Td>{when(l.loadedAt)}{typeof l.loadMs === "number" ? <Text size="xs" c="dimmed">in {Math.round(l.loadMs)} ms</Text> : null}</Table.Td>
                        <Table.Td>
                          {l.stale ? <Tag color="red">Stale</Tag> : <Tag color="green">Current</Tag>}
                          {l.lastError !== undefined ? <Text size="xs" c="red.9">{l.lastError}</Text> : null}
                        </Table.Td>
                        <Table.Td>
                          <Button size="xs" variant={selected?.name === l.name ? "filled" : "light"} onClick={() => setChosen(l.name)}
                            aria-label={`Open ${l.name}`} aria-pressed={selected?.name === l.name}>
                            Open
                          </Button>
                        </Table.Td>
                      </Table.Tr>
                    ))}
                  </Table.Tbody>
                </Table>
              </Table.ScrollContainer>
              {selected !== undefined ? <ListPanel key={selected.name} list={selected} /> : null}
            </Stack>
          )
        }}
      </QueryState>
    </Page>
  )
}

export default Blacklists
