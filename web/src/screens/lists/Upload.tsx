/**
 * A CSV upload into a contact list and the report it answers: rows read, added, duplicates, completed national
 * numbers, and every invalid row with its line and reason. Used by a list's page and by the campaign wizard's
 * audience step. The file is sent as it is (`text/csv`), streamed by the browser; nothing is parsed here.
 */
import { Button, Code, Group, Input, Select, SimpleGrid, Stack, Table, Text, TextInput } from "@mantine/core"
import { useMutation, useQueryClient } from "@tanstack/react-query"
import { useId, useState } from "react"
import { authedFetch } from "../../api/client.ts"
import { toProblem } from "../../api/problem.ts"
import type { Ok } from "../../api/types.ts"
import { fieldError } from "../../components/Forms.tsx"
import { ProblemAlert } from "../../components/States.tsx"
import { formatNumber, Notice, ScrollTable } from "../campaigns/shared.tsx"

export type ImportReport = Ok<"/v1/lists/{id}/contacts/upload", "post">

const delimiters = [
  { value: ",", label: "Comma (,)" },
  { value: ";", label: "Semicolon (;)" },
  { value: "|", label: "Pipe (|)" },
  { value: "\t", label: "Tab" }
]

export const uploadCsv = async (listId: string, file: File, options: { readonly phoneColumn: string; readonly delimiter: string }) => {
  const url = new URL(`/v1/lists/${encodeURIComponent(listId)}/contacts/upload`, window.location.origin)
  if (options.phoneColumn.trim() !== "") url.searchParams.set("phoneColumn", options.phoneColumn.trim())
  if (options.delimiter !== ",") url.searchParams.set("delimiter", options.delimiter)
  const response = await authedFetch(new Request(url, { method: "POST", headers: { "content-type": "text/csv" }, body: file }))
  if (!response.ok) throw await toProblem(response)
  return await response.json() as ImportReport
}

/** The file picker and its options; calls `onReport` with the report once the list took the file. */
export const UploadForm = ({ listId, onReport, submitLabel = "Upload" }: {
  readonly listId: string
  readonly onReport?: (report: ImportReport) => void
  readonly submitLabel?: string
}) => {
  const queries = useQueryClient()
  const inputId = useId()
  const [file, setFile] = useState<File | undefined>(undefined)
  const [phoneColumn, setPhoneColumn] = useState("")
  const [delimiter, setDelimiter] = useState(",")
  const upload = useMutation({
    mutationFn: (f: File) => uploadCsv(listId, f, { phoneColumn, delimiter }),
    onSuccess: (report) => {
      void queries.invalidateQueries({ queryKey: ["/v1/lists"] })
      onReport?.(report)
    }
  })
  const fileProblem = fieldError(upload.error, "body", "header")
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault()
        if (file !== undefined) upload.mutate(file)
      }}
    >
      <Stack gap="sm">
        <Input.Wrapper
          label="CSV file"
          labelProps={{ htmlFor: inputId }}
          description="A header row with a phone column (phone, msisdn, mobile, number or to); every other column becomes a template variable"
          error={fileProblem}
        >
          <input
            id={inputId}
            style={{ display: "block", maxWidth: "100%", marginTop: 4 }}
            type="file"
            accept=".csv,text/csv"
            aria-invalid={fileProblem !== undefined}
            onChange={(e) => {
              setFile(e.currentTarget.files?.[0])
              upload.reset()
            }}
          />
        </Input.Wrapper>
        <SimpleGrid cols={{ base: 1, xs: 2 }}>
          <TextInput
            label="Phone column"
            description="Only if the header names it otherwise"
            value={phoneColumn}
            onChange={(e) => setPhoneColumn(e.currentTarget.value)}
            error={fieldError(upload.error, "phoneColumn")}
          />
          <Select
            label="Separator"
            data={delimiters}
            value={delimiter}
            allowDeselect={false}
            onChange={(v) => setDelimiter(v ?? ",")}
            error={fieldError(upload.error, "delimiter")}
          />
        </SimpleGrid>
        {upload.isError && fileProblem === undefined && fieldError(upload.error, "phoneColumn", "delimiter") === undefined
          ? <ProblemAlert error={upload.error} title="Nothing was imported" />
          : null}
        <Group>
          <Button type="submit" disabled={file === undefined} loading={upload.isPending}>{submitLabel}</Button>
          {file !== undefined ? <Text size="sm" c="dimmed">{file.name} · {formatNumber(Math.ceil(file.size / 1024))} KB</Text> : null}
        </Group>
        {upload.data !== undefined ? <ReportView report={upload.data} /> : null}
      </Stack>
    </form>
  )
}

const Figure = ({ label, value }: { readonly label: string; readonly value: number }) => (
  <Stack gap={0}>
    <Text size="xs" c="dimmed">{label}</Text>
    <Text fw={700} size="lg">{formatNumber(value)}</Text>
  </Stack>
)

/** The upload's report: the counts, the columns found, and the invalid rows by line. */
export const ReportView = ({ report }: { readonly report: ImportReport }) => (
  <Notice
    color={report.invalid > 0 ? "yellow" : "green"}
   
    title={`Imported: ${formatNumber(report.added)} added of ${formatNumber(report.rowsRead)} rows read`}
    role="status"
  >
    <Stack gap="sm">
      <SimpleGrid cols={{ base: 2, xs: 5 }}>
        <Figure label="Rows read" value={report.rowsRead} />
        <Figure label="Added" value={report.added} />
        <Figure label="Duplicates" value={report.duplicates} />
        <Figure label="Completed" value={report.completed} />
        <Figure label="Invalid" value={report.invalid} />
      </SimpleGrid>
      <Group gap={6}>
        {report.phoneColumn !== undefined ? <Text size="sm">Numbers from <b>{report.phoneColumn}</b>.</Text> : null}
        {report.columns.length > 0
          ? (
            <>
              <Text size="sm">Variables:</Text>
              {report.columns.map((c) => <Code key={c}>{`{{${c}}}`}</Code>)}
            </>
          )
          : <Text size="sm">No variable columns.</Text>}
      </Group>
      {report.duplicates > 0
        ? <Text size="sm">Duplicates kept their first occurrence (a number already in the list keeps its place and variables).</Text>
        : null}
      {report.invalidRows.length > 0
        ? (
          <ScrollTable minWidth={320} label="Invalid rows">
            <Table striped aria-label="Invalid rows">
              <Table.Thead>
                <Table.Tr><Table.Th>Line</Table.Th><Table.Th>Value</Table.Th><Table.Th>Reason</Table.Th></Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {report.invalidRows.map((r) => (
                  <Table.Tr key={`${r.line}-${r.value}`}>
                    <Table.Td>{r.line}</Table.Td>
                    <Table.Td><Text size="sm" ff="monospace">{r.value === "" ? "(empty)" : r.value}</Text></Table.Td>
                    <Table.Td>{r.reason}</Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </ScrollTable>
        )
        : null}
      {report.invalid > report.invalidRows.length
        ? <Text size="sm">Showing the first {formatNumber(report.invalidRows.length)} of {formatNumber(report.invalid)} invalid rows.</Text>
        : null}
    </Stack>
  </Notice>
)
