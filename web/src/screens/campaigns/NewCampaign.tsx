/**
 * The campaign wizard: audience (pick lists, or create one and upload its CSV with the per-line report), message
 * (app, sender, template with a live preview of the first rendered rows, their encoding and parts), schedule and rate
 * (start time in a time zone, send window in the recipient's time, throttle), then a test send and the submission.
 * The draft is saved when the message step is done and patched by every later step, so the server's problems appear
 * next to the fields of the step that has them. `?id=` reopens a draft or a rejected campaign.
 */
import {
  Alert,
  Anchor,
  Badge,
  Button,
  Card,
  Group,
  Loader,
  MultiSelect,
  NumberInput,
  SegmentedControl,
  Select,
  SimpleGrid,
  Stack,
  Stepper,
  Switch,
  Text,
  Textarea,
  TextInput
} from "@mantine/core"
import { useDebouncedValue, useMediaQuery } from "@mantine/hooks"
import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query"
import { useEffect, useMemo, useState } from "react"
import { Link, useLocation, useSearch } from "wouter"
import { api, unwrap } from "../../api/client.ts"
import { ApiProblem, asProblem } from "../../api/problem.ts"
import type { Body } from "../../api/types.ts"
import { fieldError } from "../../components/Forms.tsx"
import { Page } from "../../components/Page.tsx"
import { Loading, ProblemAlert, QueryState } from "../../components/States.tsx"
import { NewListForm } from "../lists/Lists.tsx"
import { UploadForm } from "../lists/Upload.tsx"
import { PreviewTotals, SamplesTable } from "./Insight.tsx"
import { formatNumber, insightRetry, Notice, StateBadge } from "./shared.tsx"
import type { CampaignView } from "./shared.tsx"
import { TestSend } from "./TestSend.tsx"

type Encoding = "auto" | "gsm7" | "ucs2"
type MessageClass = "promotional" | "transactional"

interface Form {
  readonly lists: ReadonlyArray<string>
  readonly name: string
  readonly appId: string | null
  readonly sender: string
  readonly template: string
  readonly encoding: Encoding
  readonly messageClass: MessageClass
  readonly startMode: "manual" | "at"
  readonly startAt: string
  readonly timeZone: string
  readonly windowOn: boolean
  readonly windowFrom: string
  readonly windowTo: string
  readonly throttle: number | string
}

const localZone = Intl.DateTimeFormat().resolvedOptions().timeZone
const zones = (() => {
  const all = Intl.supportedValuesOf("timeZone")
  return all.includes(localZone) ? all : [localZone, ...all]
})()

const emptyForm: Form = {
  lists: [],
  name: "",
  appId: null,
  sender: "",
  template: "",
  encoding: "auto",
  messageClass: "promotional",
  startMode: "manual",
  startAt: "",
  timeZone: localZone,
  windowOn: false,
  windowFrom: "09:00",
  windowTo: "20:00",
  throttle: ""
}

const fromCampaign = (c: CampaignView): Form => ({
  lists: c.lists,
  name: c.name,
  appId: c.appId,
  sender: c.sender,
  template: c.template,
  encoding: c.encoding as Encoding,
  messageClass: c.messageClass as MessageClass,
  startMode: c.startAt !== undefined ? "at" : "manual",
  startAt: c.startAt?.at.slice(0, 16) ?? "",
  timeZone: c.startAt?.timeZone ?? localZone,
  windowOn: c.sendWindow !== undefined,
  windowFrom: c.sendWindow?.from ?? "09:00",
  windowTo: c.sendWindow?.to ?? "20:00",
  throttle: c.throttle
})

type Patch = Body<"/v1/campaigns/{id}", "patch">

const audienceOf = (f: Form): Patch => ({ lists: [...f.lists] })
const messageOf = (f: Form): Patch => ({
  name: f.name.trim(),
  ...(f.appId !== null ? { appId: f.appId } : {}),
  sender: f.sender.trim(),
  template: f.template,
  encoding: f.encoding,
  messageClass: f.messageClass
})
const scheduleOf = (f: Form): Patch => ({
  startAt: f.startMode === "at" ? { at: f.startAt, timeZone: f.timeZone } : null,
  sendWindow: f.windowOn ? { from: f.windowFrom, to: f.windowTo } : null,
  ...(typeof f.throttle === "number" ? { throttle: f.throttle } : {})
})

const steps = ["Audience", "Message", "Schedule and rate", "Test and submit"] as const
const stepFields: ReadonlyArray<ReadonlyArray<string>> = [
  ["lists"],
  ["name", "appId", "sender", "template", "encoding", "messageClass"],
  ["startAt", "sendWindow", "throttle"],
  []
]

/** The request field each form field is sent as. */
const serverField: Record<keyof Form, string> = {
  lists: "lists",
  name: "name",
  appId: "appId",
  sender: "sender",
  template: "template",
  encoding: "encoding",
  messageClass: "messageClass",
  startMode: "startAt",
  startAt: "startAt",
  timeZone: "startAt",
  windowOn: "sendWindow",
  windowFrom: "sendWindow",
  windowTo: "sendWindow",
  throttle: "throttle"
}

/** The save's problem without the messages of fields changed since: they may be fixed already. */
const withoutTouched = (error: unknown, touched: ReadonlySet<string>): unknown => {
  if (!(error instanceof ApiProblem) || touched.size === 0) return error
  const errors = error.errors.filter((e) => ![...touched].some((f) => e.field === f || e.field.startsWith(`${f}.`) || e.field.startsWith(`${f}[`)))
  if (errors.length === error.errors.length) return error
  return errors.length === 0 ? null : new ApiProblem(error.status, error.title, error.detail, errors, error.body)
}

/** A problem none of the step's fields can show: above the step's buttons. */
const StepProblem = ({ error, step }: { readonly error: unknown; readonly step: number }) => {
  const problem = asProblem(error)
  if (problem === undefined) return null
  const placed = (stepFields[step] ?? []).some((f) => problem.field(f) !== undefined)
  if (placed) return null
  const elsewhere = problem.errors[0]
  return (
    <Alert color="red" variant="light" title={problem.title} role="alert">
      {elsewhere !== undefined ? `${elsewhere.field}: ${elsewhere.message}` : problem.detail}
    </Alert>
  )
}

const AudienceStep = ({ form, set, error }: {
  readonly form: Form
  readonly set: (patch: Partial<Form>) => void
  readonly error: unknown
}) => {
  const [creating, setCreating] = useState<{ readonly id: string; readonly name: string } | "form" | undefined>(undefined)
  const lists = useQuery({
    queryKey: ["/v1/lists", { limit: 500 }],
    queryFn: () => unwrap(api.GET("/v1/lists", { params: { query: { limit: "500" } } }))
  })
  const chosen = (lists.data ?? []).filter((l) => form.lists.includes(l.id))
  const total = chosen.reduce((n, l) => n + l.contacts, 0)
  return (
    <Stack>
      <QueryState query={lists}>
        {(items) => (
          <MultiSelect
            label="Contact lists"
            description="A number in several lists gets one message, with the first list's variables"
            placeholder={items.length === 0 ? "No lists yet: create one below" : "Choose one or more lists"}
            searchable
            data={items.map((l) => ({ value: l.id, label: `${l.name} (${formatNumber(l.contacts)})` }))}
            value={[...form.lists]}
            onChange={(lists) => set({ lists })}
            error={fieldError(error, "lists")}
          />
        )}
      </QueryState>
      {chosen.length > 0
        ? (
          <Text size="sm">
            {formatNumber(total)} contacts in {chosen.length} {chosen.length === 1 ? "list" : "lists"} (numbers in several lists count once).
          </Text>
        )
        : null}
      <Card withBorder>
        <Text fw={600} mb="xs" component="h2">Or upload a new list</Text>
        {creating === undefined
          ? <Button variant="default" w="fit-content" onClick={() => setCreating("form")}>New list from a CSV file</Button>
          : creating === "form"
          ? <NewListForm onCreated={(l) => setCreating(l)} onCancel={() => setCreating(undefined)} />
          : (
            <Stack gap="xs">
              <Text size="sm">List <b>{creating.name}</b> created. Upload its contacts:</Text>
              <UploadForm
                listId={creating.id}
                submitLabel="Upload and use this list"
                onReport={() => {
                  if (!form.lists.includes(creating.id)) set({ lists: [...form.lists, creating.id] })
                }}
              />
            </Stack>
          )}
      </Card>
    </Stack>
  )
}

const useAvailableVariables = (listIds: ReadonlyArray<string>) => {
  const lists = useQuery({
    queryKey: ["/v1/lists", { limit: 500 }],
    queryFn: () => unwrap(api.GET("/v1/lists", { params: { query: { limit: "500" } } }))
  })
  return useMemo(
    () => [...new Set((lists.data ?? []).filter((l) => listIds.includes(l.id)).flatMap((l) => l.columns))],
    [lists.data, listIds]
  )
}

const LivePreview = ({ form }: { readonly form: Form }) => {
  const ready = form.template.trim() !== "" && form.sender.trim() !== "" && form.lists.length > 0
  const body = JSON.stringify({
    template: form.template,
    lists: form.lists,
    sender: form.sender.trim(),
    encoding: form.encoding,
    messageClass: form.messageClass,
    ...(form.appId !== null ? { appId: form.appId } : {})
  })
  const [debounced] = useDebouncedValue(body, 500)
  const preview = useQuery({
    queryKey: ["/v1/campaigns/preview", debounced],
    queryFn: () =>
      unwrap(api.POST("/v1/campaigns/preview", {
        params: { query: { n: "5" } },
        body: JSON.parse(debounced) as Body<"/v1/campaigns/preview", "post">
      })),
    enabled: ready,
    placeholderData: keepPreviousData,
    staleTime: 30_000,
    ...insightRetry
  })
  return (
    <Card withBorder>
      <Group justify="space-between" mb="xs">
        <Text fw={600} component="h2">Live preview</Text>
        {preview.isFetching ? <Loader size="xs" aria-label="Updating the preview" /> : null}
      </Group>
      {!ready
        ? <Text size="sm" c="dimmed">Write the text and the sender to see the first messages as recipients will get them.</Text>
        : preview.isError
        ? <ProblemAlert error={preview.error} title="No preview" />
        : preview.data === undefined
        ? <Loading label="Rendering…" />
        : (
          <Stack gap="sm">
            <PreviewTotals preview={preview.data} />
            <SamplesTable messages={preview.data.messages} label="Preview of the first messages" />
          </Stack>
        )}
    </Card>
  )
}

const MessageStep = ({ form, set, error }: {
  readonly form: Form
  readonly set: (patch: Partial<Form>) => void
  readonly error: unknown
}) => {
  const apps = useQuery({ queryKey: ["/v1/apps"], queryFn: () => unwrap(api.GET("/v1/apps")) })
  const variables = useAvailableVariables(form.lists)
  const active = (apps.data ?? []).filter((a) => a.active || a.id === form.appId)
  useEffect(() => {
    const only = active[0]
    if (form.appId === null && active.length === 1 && only !== undefined) set({ appId: only.id })
  }, [active, form.appId, set])
  return (
    <Stack>
      <SimpleGrid cols={{ base: 1, sm: 2 }}>
        <TextInput label="Campaign name" required value={form.name} onChange={(e) => set({ name: e.currentTarget.value })}
          error={fieldError(error, "name")} />
        <Select
          label="App"
          description="Its limits and message class apply"
          required
          placeholder={apps.isPending ? "Loading…" : active.length === 0 ? "No active app: an admin creates one" : "Choose an app"}
          data={active.map((a) => ({ value: a.id, label: `${a.name} (${a.messageClass})` }))}
          value={form.appId}
          onChange={(appId) => set({ appId })}
          error={fieldError(error, "appId") ?? (apps.isError ? asProblem(apps.error)?.detail : undefined)}
        />
        <TextInput label="Sender" description="Up to 11 letters and digits, a short code or a number" required value={form.sender}
          onChange={(e) => set({ sender: e.currentTarget.value })} error={fieldError(error, "sender")} />
        <Group grow align="flex-start">
          <Select
            label="Message class"
            allowDeselect={false}
            data={[{ value: "promotional", label: "Promotional" }, { value: "transactional", label: "Transactional" }]}
            value={form.messageClass}
            onChange={(v) => set({ messageClass: (v ?? "promotional") as MessageClass })}
            error={fieldError(error, "messageClass")}
          />
          <Select
            label="Encoding"
            allowDeselect={false}
            data={[
              { value: "auto", label: "Automatic" },
              { value: "gsm7", label: "GSM-7 only" },
              { value: "ucs2", label: "UCS-2" }
            ]}
            value={form.encoding}
            onChange={(v) => set({ encoding: (v ?? "auto") as Encoding })}
            error={fieldError(error, "encoding")}
          />
        </Group>
      </SimpleGrid>
      <Textarea
        label="Text"
        description="{{variable}} takes the contact's column; {{variable|default}} when it may be empty"
        required
        autosize
        minRows={3}
        maxRows={10}
        value={form.template}
        onChange={(e) => set({ template: e.currentTarget.value })}
        error={fieldError(error, "template")}
      />
      <Group gap={6} justify="space-between">
        <Group gap={6}>
          {variables.length > 0 ? <Text size="xs">Insert:</Text> : null}
          {variables.map((v) => (
            <Button key={v} size="compact-xs" variant="default" onClick={() => set({ template: `${form.template}{{${v}}}` })}
              aria-label={`Insert the variable ${v}`}>
              {`{{${v}}}`}
            </Button>
          ))}
        </Group>
        <Text size="xs" c="dimmed">{form.template.length} characters in the template</Text>
      </Group>
      <LivePreview form={form} />
    </Stack>
  )
}

const ScheduleStep = ({ form, set, error, appLimit }: {
  readonly form: Form
  readonly set: (patch: Partial<Form>) => void
  readonly error: unknown
  readonly appLimit: number | undefined
}) => (
  <Stack>
    <Stack gap={4}>
      <Text size="sm" fw={500} id="start-mode-label">Start</Text>
      <SegmentedControl
        aria-labelledby="start-mode-label"
        w="fit-content"
        data={[{ value: "manual", label: "When started after approval" }, { value: "at", label: "At a set time" }]}
        value={form.startMode}
        onChange={(v) => set({ startMode: v as Form["startMode"] })}
      />
    </Stack>
    {form.startMode === "at"
      ? (
        <SimpleGrid cols={{ base: 1, sm: 2 }}>
          <TextInput
            label="Start at"
            type="datetime-local"
            description="Local time in the zone beside; after approval, Start schedules it"
            required
            value={form.startAt}
            onChange={(e) => set({ startAt: e.currentTarget.value })}
            error={fieldError(error, "startAt.at") ?? fieldError(error, "startAt")}
          />
          <Select
            label="Time zone"
            searchable
            allowDeselect={false}
            data={zones}
            value={form.timeZone}
            onChange={(v) => set({ timeZone: v ?? localZone })}
            error={fieldError(error, "startAt.timeZone")}
          />
        </SimpleGrid>
      )
      : null}
    <Switch
      label="Only send within a window of the recipient's local time"
      description="Recipients outside it are deferred to its opening, never dropped"
      checked={form.windowOn}
      onChange={(e) => set({ windowOn: e.currentTarget.checked })}
    />
    {form.windowOn
      ? (
        <SimpleGrid cols={{ base: 2, sm: 4 }}>
          <TextInput label="From" type="time" required value={form.windowFrom} onChange={(e) => set({ windowFrom: e.currentTarget.value })}
            error={fieldError(error, "sendWindow.from") ?? fieldError(error, "sendWindow")} />
          <TextInput label="To" type="time" required value={form.windowTo} onChange={(e) => set({ windowTo: e.currentTarget.value })}
            error={fieldError(error, "sendWindow.to")} description={form.windowFrom > form.windowTo ? "crosses midnight" : undefined} />
        </SimpleGrid>
      )
      : null}
    <NumberInput
      label="Throttle (messages per second)"
      description={appLimit !== undefined ? `At most the app's limit of ${appLimit} per second` : "At most the app's own limit"}
      min={1}
      max={10_000}
      allowDecimal={false}
      w={280}
      value={form.throttle}
      onChange={(v) => set({ throttle: v })}
      error={fieldError(error, "throttle")}
    />
  </Stack>
)

const Summary = ({ campaign }: { readonly campaign: CampaignView }) => (
  <Card withBorder>
    <Group justify="space-between" mb="xs">
      <Text fw={600} component="h2">{campaign.name}</Text>
      <StateBadge state={campaign.state} />
    </Group>
    <SimpleGrid cols={{ base: 1, sm: 2 }} spacing="xs">
      <Text size="sm">From <b>{campaign.sender}</b> · {campaign.messageClass} · {campaign.encoding}</Text>
      <Text size="sm">{campaign.lists.length} {campaign.lists.length === 1 ? "list" : "lists"}</Text>
      <Text size="sm">
        {campaign.startAt !== undefined ? `Starts ${campaign.startAt.at.replace("T", " ")} (${campaign.startAt.timeZone})` : "Starts when started after approval"}
      </Text>
      <Text size="sm">
        {campaign.sendWindow !== undefined ? `Window ${campaign.sendWindow.from}–${campaign.sendWindow.to} recipient's time` : "No send window"} · {campaign.throttle}/s
      </Text>
    </SimpleGrid>
    <Text size="sm" mt="xs" style={{ whiteSpace: "pre-wrap" }} ff="monospace">{campaign.template}</Text>
  </Card>
)

const NewCampaign = () => {
  const search = new URLSearchParams(useSearch())
  const openId = search.get("id") ?? undefined
  const [, navigate] = useLocation()
  const queries = useQueryClient()
  const [step, setStep] = useState(0)
  const [form, setForm] = useState<Form>(emptyForm)
  const [draftId, setDraftId] = useState<string | undefined>(undefined)
  const [stepError, setStepError] = useState<string | undefined>(undefined)
  // Below 480 px the steps show their numbers only, and the current one is named above them.
  const narrow = useMediaQuery("(max-width: 30em)") ?? false
  // Fields changed since the last save: their old problems are no longer shown.
  const [touched, setTouched] = useState<ReadonlySet<string>>(new Set())
  const set = useMemo(() => (patch: Partial<Form>) => {
    setForm((f) => ({ ...f, ...patch }))
    setTouched((t) => new Set([...t, ...Object.keys(patch).map((k) => serverField[k as keyof Form])]))
  }, [])

  const existing = useQuery({
    queryKey: ["/v1/campaigns", openId],
    queryFn: () => unwrap(api.GET("/v1/campaigns/{id}", { params: { path: { id: openId ?? "" } } })),
    enabled: openId !== undefined && openId !== draftId
  })
  useEffect(() => {
    if (existing.data !== undefined && draftId !== existing.data.id) {
      setDraftId(existing.data.id)
      setForm(fromCampaign(existing.data))
      setStep(0)
    }
  }, [existing.data, draftId])

  const apps = useQuery({ queryKey: ["/v1/apps"], queryFn: () => unwrap(api.GET("/v1/apps")) })
  const appLimit = apps.data?.find((a) => a.id === form.appId)?.limits.perSecond

  const campaign = useQuery({
    queryKey: ["/v1/campaigns", draftId],
    queryFn: () => unwrap(api.GET("/v1/campaigns/{id}", { params: { path: { id: draftId ?? "" } } })),
    enabled: draftId !== undefined
  })

  const save = useMutation({
    mutationFn: async (s: number): Promise<CampaignView> => {
      if (draftId === undefined) {
        if (form.appId === null) throw new Error("Choose the app that sends the campaign")
        return await unwrap(api.POST("/v1/campaigns", {
          body: { ...audienceOf(form), ...messageOf(form), appId: form.appId } as Body<"/v1/campaigns", "post">
        }))
      }
      const body = s === 0 ? audienceOf(form) : s === 1 ? messageOf(form) : scheduleOf(form)
      return await unwrap(api.PATCH("/v1/campaigns/{id}", { params: { path: { id: draftId } }, body }))
    },
    onSuccess: (saved) => {
      queries.setQueryData(["/v1/campaigns", saved.id], saved)
      void queries.invalidateQueries({ queryKey: ["/v1/campaigns"], exact: true })
      if (draftId === undefined) {
        setDraftId(saved.id)
        setForm((f) => ({ ...f, throttle: saved.throttle }))
        navigate(`/campaigns/new?id=${saved.id}`, { replace: true })
      }
      setStep((s) => s + 1)
    }
  })

  const submit = useMutation({
    mutationFn: () => unwrap(api.POST("/v1/campaigns/{id}/submit", { params: { path: { id: draftId ?? "" } } })),
    onSuccess: (c) => {
      queries.setQueryData(["/v1/campaigns", c.id], c)
      void queries.invalidateQueries({ queryKey: ["/v1/campaigns"], exact: true })
      navigate(`/campaigns/${c.id}`)
    }
  })

  const next = () => {
    setStepError(undefined)
    setTouched(new Set())
    save.reset()
    if (step === 0 && form.lists.length === 0) return setStepError("Choose at least one list, or upload a new one")
    if (step === 0 && draftId === undefined) return setStep(1)
    if (step === 1 && form.appId === null) return setStepError("Choose the app that sends the campaign")
    save.mutate(step)
  }

  if (openId !== undefined && openId !== draftId) {
    return (
      <Page title="Edit campaign">
        <QueryState query={existing} notFound="Campaign not found">{() => <Loading />}</QueryState>
      </Page>
    )
  }
  const editable = campaign.data === undefined || campaign.data.state === "draft" || campaign.data.state === "rejected"
  if (!editable && campaign.data !== undefined) {
    return (
      <Page title="Edit campaign">
        <Notice color="yellow" title="This campaign can no longer be edited" role="alert">
          It is {campaign.data.state.replace("_", " ")}: only drafts and rejected campaigns are edited.{" "}
          <Anchor component={Link} href={`/campaigns/${campaign.data.id}`} c="blue.9">Open the campaign</Anchor>
        </Notice>
      </Page>
    )
  }

  const error = withoutTouched(save.error, touched)
  const stepLabel = (i: number, description: string) =>
    narrow ? { "aria-label": `${i + 1}: ${steps[i] ?? ""}` } : { label: steps[i], description }
  return (
    <Page title={draftId === undefined ? "New campaign" : `Edit ${form.name || "campaign"}`}>
      {campaign.data?.rejectionReason !== undefined
        ? <Alert color="red" variant="light" title="Rejected by a moderator">{campaign.data.rejectionReason}</Alert>
        : null}
      {narrow ? <Text size="sm" fw={600}>Step {step + 1} of {steps.length}: {steps[step]}</Text> : null}
      <Stepper
        active={step}
        onStepClick={(s) => {
          if (s < step) {
            save.reset()
            setStep(s)
          }
        }}
        allowNextStepsSelect={false}
        size="sm"
        wrap
      >
        <Stepper.Step {...stepLabel(0, "Who gets it")}>
          <AudienceStep form={form} set={set} error={error} />
        </Stepper.Step>
        <Stepper.Step {...stepLabel(1, "What they read")}>
          <MessageStep form={form} set={set} error={error} />
        </Stepper.Step>
        <Stepper.Step {...stepLabel(2, "When and how fast")}>
          <ScheduleStep form={form} set={set} error={error} appLimit={appLimit} />
        </Stepper.Step>
        <Stepper.Step {...stepLabel(3, "Before approval")}>
          <Stack>
            {campaign.data !== undefined ? <Summary campaign={campaign.data} /> : <Loading />}
            {draftId !== undefined
              ? (
                <Card withBorder>
                  <Text fw={600} mb="xs" component="h2">Test send</Text>
                  <TestSend campaignId={draftId} />
                </Card>
              )
              : null}
            {submit.isError ? <ProblemAlert error={submit.error} title="Not submitted" /> : null}
          </Stack>
        </Stepper.Step>
      </Stepper>
      {stepError !== undefined ? <Alert color="red" variant="light" role="alert">{stepError}</Alert> : null}
      {error instanceof ApiProblem
        ? <StepProblem error={error} step={step} />
        : error instanceof Error ? <Alert color="red" variant="light" role="alert">{error.message}</Alert> : null}
      <Group justify="space-between">
        <Group>
          {step > 0 ? <Button variant="default" onClick={() => setStep(step - 1)}>Back</Button> : null}
          {draftId !== undefined ? <Badge variant="outline" color="gray">Draft saved</Badge> : null}
        </Group>
        <Group>
          {step < 3
            ? <Button onClick={next} loading={save.isPending}>{step === 1 && draftId === undefined ? "Save draft and continue" : "Continue"}</Button>
            : (
              <>
                <Button variant="default" component={Link} href={`/campaigns/${draftId ?? ""}`}>Keep as draft</Button>
                <Button onClick={() => submit.mutate()} loading={submit.isPending}>Submit for approval</Button>
              </>
            )}
        </Group>
      </Group>
    </Page>
  )
}

export default NewCampaign
