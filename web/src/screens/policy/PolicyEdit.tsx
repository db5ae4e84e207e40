/**
 * Editing the contact policy: its rules (in document order; the server evaluates them by kind) and the blacklists
 * they name, saved as a new version on top of the one read (409 if someone changed it meanwhile). The server's
 * validation is shown next to each field; the draft can be tested with a message before it is saved.
 */
import { ActionIcon, Alert, Button, Card, Fieldset, Grid, Group, Select, Stack, Text, TextInput, Title } from "@mantine/core"
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query"
import { useState } from "react"
import { Link, useLocation } from "wouter"
import { api, unwrap } from "../../api/client.ts"
import { asProblem } from "../../api/problem.ts"
import { fieldError } from "../../components/Forms.tsx"
import { Page } from "../../components/Page.tsx"
import { Empty, ProblemAlert, QueryState } from "../../components/States.tsx"
import type { BlacklistDefinition, PolicyDocument, PolicyView, RuleType } from "./model.ts"
import { typeLabel } from "./model.ts"
import { fromRule, newRule, RuleForm, toRule } from "./RuleForm.tsx"
import type { RuleDraft } from "./RuleForm.tsx"
import { TestMessage } from "./TestMessage.tsx"

interface ListDraft {
  readonly key: number
  readonly name: string
  readonly org: string
  readonly file: "api" | "default" | "custom"
  readonly object: string
}

let listKey = 1
const fromList = (l: BlacklistDefinition): ListDraft => ({
  key: listKey++,
  name: l.name,
  org: l.org ?? "",
  file: l.object === null ? "api" : l.object === undefined ? "default" : "custom",
  object: typeof l.object === "string" ? l.object : ""
})
const toList = (l: ListDraft): BlacklistDefinition => ({
  name: l.name,
  ...(l.org !== "" ? { org: l.org } : {}),
  ...(l.file === "api" ? { object: null } : l.file === "custom" ? { object: l.object } : {})
})

const Editor = ({ policy }: { readonly policy: PolicyView }) => {
  const [rules, setRules] = useState<ReadonlyArray<RuleDraft>>(() => policy.rules.map((r) => fromRule(r)))
  const [lists, setLists] = useState<ReadonlyArray<ListDraft>>(() => (policy.blacklists ?? []).map(fromList))
  const [note, setNote] = useState("")
  const [adding, setAdding] = useState<RuleType>("frequency_cap")
  const [testing, setTesting] = useState(false)
  const queries = useQueryClient()
  const [, navigate] = useLocation()

  const document: PolicyDocument = {
    rules: rules.map(toRule) as unknown as PolicyDocument["rules"],
    blacklists: lists.map(toList)
  }
  const save = useMutation({
    mutationFn: () =>
      unwrap(api.PUT("/v1/policies", {
        body: {
          rules: [...document.rules],
          blacklists: [...(document.blacklists ?? [])],
          expectedVersion: policy.version,
          ...(note.trim() !== "" ? { note: note.trim() } : {})
        }
      })),
    onSuccess: async (saved) => {
      queries.setQueryData(["/v1/policies"], saved)
      await queries.invalidateQueries({ queryKey: ["/v1/policies/versions"] })
      navigate("/policy")
    }
  })

  const update = (i: number, patch: Partial<RuleDraft>) => setRules(rules.map((r, j) => (j === i ? { ...r, ...patch } : r)))
  const move = (i: number, by: -1 | 1) => {
    const next = [...rules]
    const [rule] = next.splice(i, 1)
    if (rule !== undefined) next.splice(i + by, 0, rule)
    setRules(next)
  }
  const updateList = (i: number, patch: Partial<ListDraft>) => setLists(lists.map((l, j) => (j === i ? { ...l, ...patch } : l)))
  const problem = asProblem(save.error)
  // A conflict, a storage failure, or problems of the document as a whole: above the form.
  const formLevel = problem !== undefined && (problem.errors.length === 0 || problem.errors.some((e) => !/^(rules|blacklists)\[\d+\]/.test(e.field)))

  return (
    <Stack gap="md">
      <Text size="sm" c="dimmed">
        Editing version {policy.version}. Saving makes version {policy.version + 1}, live on every node within a second.
      </Text>
      {formLevel ? <ProblemAlert error={save.error} title="The policy was not saved" /> : null}
      {problem !== undefined && !formLevel
        ? <Alert color="red" role="alert" title="The policy was not saved">{problem.errors.length} field(s) need a change: see below.</Alert>
        : null}
      <Title order={2} size="h4">Rules</Title>
      {rules.length === 0 ? <Empty>No rules: every message would be admitted.</Empty> : null}
      {rules.map((rule, i) => (
        <RuleForm
          key={rule.key}
          draft={rule}
          index={i}
          count={rules.length}
          error={save.error}
          listNames={lists.map((l) => l.name)}
          onChange={(patch) => update(i, patch)}
          onMove={(by) => move(i, by)}
          onRemove={() => setRules(rules.filter((_, j) => j !== i))}
        />
      ))}
      <Group align="flex-end">
        <Select
          label="New rule of type"
          data={(Object.keys(typeLabel) as Array<RuleType>).map((t) => ({ value: t, label: typeLabel[t] }))}
          value={adding}
          allowDeselect={false}
          onChange={(v) => setAdding((v ?? "frequency_cap") as RuleType)}
        />
        <Button variant="light" onClick={() => setRules([...rules, newRule(adding, `${adding.replace("_", "-")}-${rules.length + 1}`)])}>Add rule</Button>
      </Group>

      <Title order={2} size="h4">Blacklists</Title>
      {lists.map((list, i) => (
        <Fieldset key={list.key} legend={`Blacklist ${list.name === "" ? `#${i + 1}` : list.name}`}>
          <Grid gap="sm" align="flex-end">
            <Grid.Col span={{ base: 12, sm: 3 }}>
              <TextInput label="Name" required value={list.name} onChange={(e) => updateList(i, { name: e.currentTarget.value })}
                error={fieldError(save.error, `blacklists[${i}].name`)} />
            </Grid.Col>
            <Grid.Col span={{ base: 12, sm: 3 }}>
              <TextInput label="Organisation id" description="Empty: global" value={list.org} onChange={(e) => updateList(i, { org: e.currentTarget.value })}
                error={fieldError(save.error, `blacklists[${i}].org`)} />
            </Grid.Col>
            <Grid.Col span={{ base: 12, sm: 3 }}>
              <Select
                label="Numbers from"
                data={[{ value: "api", label: "API entries only" }, { value: "default", label: "Default file" }, { value: "custom", label: "A file key" }]}
                value={list.file}
                allowDeselect={false}
                onChange={(v) => updateList(i, { file: (v ?? "api") as ListDraft["file"] })}
              />
            </Grid.Col>
            <Grid.Col span={{ base: 10, sm: 2 }}>
              {list.file === "custom"
                ? <TextInput label="File key" value={list.object} onChange={(e) => updateList(i, { object: e.currentTarget.value })}
                  error={fieldError(save.error, `blacklists[${i}].object`)} />
                : null}
            </Grid.Col>
            <Grid.Col span={{ base: 2, sm: 1 }}>
              <ActionIcon variant="subtle" color="red" aria-label={`Remove blacklist ${list.name}`} onClick={() => setLists(lists.filter((_, j) => j !== i))}>✕</ActionIcon>
            </Grid.Col>
          </Grid>
        </Fieldset>
      ))}
      <Button variant="light" w="fit-content" onClick={() => setLists([...lists, { key: listKey++, name: "", org: "", file: "api", object: "" }])}>
        Add blacklist
      </Button>

      <Card withBorder>
        <Stack gap="sm">
          <TextInput label="What is this change for?" description="Kept with the version in its history" value={note}
            onChange={(e) => setNote(e.currentTarget.value)} error={fieldError(save.error, "note")} />
          <Group>
            <Button onClick={() => save.mutate()} loading={save.isPending}>Save as version {policy.version + 1}</Button>
            <Button variant="light" onClick={() => setTesting(!testing)} aria-expanded={testing}>Test the draft with a message</Button>
            <Button variant="subtle" component={Link} href="/policy">Cancel</Button>
          </Group>
        </Stack>
      </Card>
      {testing
        ? (
          <Card withBorder>
            <Title order={2} size="h4" mb="xs">Test the draft</Title>
            <TestMessage draft={document} />
          </Card>
        )
        : null}
    </Stack>
  )
}

const PolicyEdit = () => {
  const policy = useQuery({ queryKey: ["/v1/policies"], queryFn: () => unwrap(api.GET("/v1/policies")) })
  return (
    <Page title="Edit the contact policy">
      <QueryState query={policy}>{(p) => <Editor key={p.version} policy={p} />}</QueryState>
    </Page>
  )
}

export default PolicyEdit
