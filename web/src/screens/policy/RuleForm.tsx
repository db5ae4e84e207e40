/**
 * One rule of the policy being edited: its common fields (id, scope, classes, enabled) and those of its type, each
 * with the server's message for that field (`rules[2].max`) placed next to it. Values are kept as typed (a number
 * field may be empty) and checked by the server only, so what it refuses is what the user sees.
 */
import { ActionIcon, Alert, Checkbox, Fieldset, Grid, Group, NumberInput, Select, Switch, TagsInput, TextInput } from "@mantine/core"
import { asProblem } from "../../api/problem.ts"
import { fieldError } from "../../components/Forms.tsx"
import type { RuleType } from "./model.ts"
import { typeColor, typeLabel } from "./model.ts"
import { Tag } from "./Tag.tsx"

/** A rule while it is edited: the API's fields, loosely typed (an emptied number is ""), plus its countries as text. */
export interface RuleDraft {
  readonly key: number
  readonly id: string
  readonly type: RuleType
  readonly enabled: boolean
  readonly scopeKind: "global" | "org" | "app"
  readonly scopeId: string
  readonly classes: ReadonlyArray<string>
  readonly max: number | string
  readonly window: string
  readonly windowSeconds: number | string
  readonly per: string
  readonly mode: string
  readonly lists: ReadonlyArray<string>
  readonly from: string
  readonly to: string
  readonly countries: string
}

const num = (value: number | string): number | undefined => value === "" ? undefined : Number(value)

/** The rule as the API takes it (empty fields left out: the server names what is missing). */
export const toRule = (d: RuleDraft): Record<string, unknown> => {
  const common = {
    id: d.id,
    ...(d.scopeKind === "global" ? {} : { scope: d.scopeKind === "org" ? { org: d.scopeId } : { app: d.scopeId } }),
    ...(d.classes.length > 0 ? { classes: d.classes } : {}),
    ...(d.enabled ? {} : { enabled: false })
  }
  switch (d.type) {
    case "frequency_cap":
      return {
        ...common,
        type: d.type,
        max: num(d.max),
        window: d.window,
        ...(d.window === "rolling" ? { windowSeconds: num(d.windowSeconds) } : {}),
        ...(d.per !== "all" ? { per: d.per } : {})
      }
    case "dedup":
      return { ...common, type: d.type, windowSeconds: num(d.windowSeconds), mode: d.mode }
    case "blacklist":
      return { ...common, type: d.type, lists: d.lists }
    case "quiet_hours": {
      const countries: Record<string, string> = {}
      for (const pair of d.countries.split(/[,\n]/).map((p) => p.trim()).filter((p) => p !== "")) {
        const [country = "", zone = ""] = pair.split("=").map((x) => x.trim())
        countries[country] = zone
      }
      return { ...common, type: d.type, from: d.from, to: d.to, countries }
    }
  }
}

let nextKey = 1

/** A draft of an API rule. */
export const fromRule = (rule: Record<string, unknown> & { readonly id: string; readonly type: RuleType }): RuleDraft => {
  const scope = rule.scope as undefined | "global" | { org?: string; app?: string }
  const value = <T,>(key: string, fallback: T): T => (rule[key] as T | undefined) ?? fallback
  return {
    key: nextKey++,
    id: rule.id,
    type: rule.type,
    enabled: rule.enabled !== false,
    scopeKind: scope === undefined || scope === "global" ? "global" : scope.org !== undefined ? "org" : "app",
    scopeId: scope === undefined || scope === "global" ? "" : scope.org ?? scope.app ?? "",
    classes: value<ReadonlyArray<string>>("classes", []),
    max: value<number | string>("max", 3),
    window: value("window", "day"),
    windowSeconds: value<number | string>("windowSeconds", rule.type === "dedup" ? 60 : ""),
    per: value("per", "all"),
    mode: value("mode", "reject"),
    lists: value<ReadonlyArray<string>>("lists", []),
    from: value("from", "21:00"),
    to: value("to", "08:00"),
    countries: Object.entries(value<Record<string, string>>("countries", {})).map(([c, z]) => `${c}=${z}`).join(", ")
  }
}

export const newRule = (type: RuleType, id: string): RuleDraft => fromRule({ id, type })

const known = ["id", "scope", "classes", "enabled", "type", "max", "window", "windowSeconds", "per", "mode", "lists", "from", "to", "countries"]

export const RuleForm = ({ draft, index, count, error, listNames, onChange, onMove, onRemove }: {
  readonly draft: RuleDraft
  readonly index: number
  readonly count: number
  readonly error: unknown
  readonly listNames: ReadonlyArray<string>
  readonly onChange: (patch: Partial<RuleDraft>) => void
  readonly onMove: (by: -1 | 1) => void
  readonly onRemove: () => void
}) => {
  const at = `rules[${index}]`
  const err = (field: string) => fieldError(error, `${at}.${field}`)
  const name = draft.id === "" ? `#${index + 1}` : draft.id
  // Problems of this rule that no field below shows (a whole rule refused).
  const other = (asProblem(error)?.errors ?? []).filter((e) =>
    (e.field === at || e.field.startsWith(`${at}.`) || e.field.startsWith(`${at}[`)) &&
    !known.some((k) => e.field === `${at}.${k}` || e.field.startsWith(`${at}.${k}.`) || e.field.startsWith(`${at}.${k}[`))
  )
  return (
    <Fieldset
      legend={
        <Group gap="xs">
          <span>Rule {name}</span>
          <Tag color={typeColor[draft.type]}>{typeLabel[draft.type]}</Tag>
        </Group>
      }
      aria-label={`Rule ${name}`}
    >
      {other.length > 0
        ? <Alert color="red" mb="sm" role="alert">{other.map((e) => `${e.field}: ${e.message}`).join("; ")}</Alert>
        : null}
      <Grid gap="sm">
        <Grid.Col span={{ base: 12, sm: 4 }}>
          <TextInput label="Rule id" required value={draft.id} onChange={(e) => onChange({ id: e.currentTarget.value })} error={err("id")} />
        </Grid.Col>
        <Grid.Col span={{ base: 12, sm: 4 }}>
          <Select
            label="Applies to"
            data={[{ value: "global", label: "Everyone" }, { value: "org", label: "One organisation" }, { value: "app", label: "One app" }]}
            value={draft.scopeKind}
            allowDeselect={false}
            onChange={(v) => onChange({ scopeKind: (v ?? "global") as RuleDraft["scopeKind"] })}
            error={err("scope")}
          />
        </Grid.Col>
        <Grid.Col span={{ base: 12, sm: 4 }}>
          {draft.scopeKind !== "global"
            ? (
              <TextInput
                label={draft.scopeKind === "org" ? "Organisation id" : "App id"}
                value={draft.scopeId}
                onChange={(e) => onChange({ scopeId: e.currentTarget.value })}
                error={err(`scope.${draft.scopeKind}`) ?? err("scope")}
              />
            )
            : null}
        </Grid.Col>
        <Grid.Col span={{ base: 12, sm: 8 }}>
          <Checkbox.Group
            label="Message classes"
            description="None ticked: both"
            value={[...draft.classes]}
            onChange={(v) => onChange({ classes: v })}
            error={err("classes")}
          >
            <Group mt={4}>
              <Checkbox value="transactional" label="Transactional" />
              <Checkbox value="promotional" label="Promotional" />
            </Group>
          </Checkbox.Group>
        </Grid.Col>
        <Grid.Col span={{ base: 12, sm: 4 }}>
          <Switch label="Enabled" mt="lg" checked={draft.enabled} onChange={(e) => onChange({ enabled: e.currentTarget.checked })} />
        </Grid.Col>
        {draft.type === "frequency_cap"
          ? (
            <>
              <Grid.Col span={{ base: 6, sm: 3 }}>
                <NumberInput label="Max messages" allowDecimal={false} value={draft.max} onChange={(v) => onChange({ max: v })} error={err("max")} />
              </Grid.Col>
              <Grid.Col span={{ base: 6, sm: 3 }}>
                <Select
                  label="Window"
                  data={["minute", "hour", "day", "rolling"]}
                  value={draft.window}
                  allowDeselect={false}
                  onChange={(v) => onChange({ window: v ?? "day" })}
                  error={err("window")}
                />
              </Grid.Col>
              {draft.window === "rolling"
                ? (
                  <Grid.Col span={{ base: 6, sm: 3 }}>
                    <NumberInput label="Window seconds" allowDecimal={false} value={draft.windowSeconds}
                      onChange={(v) => onChange({ windowSeconds: v })} error={err("windowSeconds")} />
                  </Grid.Col>
                )
                : null}
              <Grid.Col span={{ base: 6, sm: 3 }}>
                <Select
                  label="Counted"
                  data={[{ value: "all", label: "All senders together" }, { value: "organisation", label: "Per organisation" }, { value: "app", label: "Per app" }]}
                  value={draft.per}
                  allowDeselect={false}
                  onChange={(v) => onChange({ per: v ?? "all" })}
                  error={err("per")}
                />
              </Grid.Col>
            </>
          )
          : null}
        {draft.type === "dedup"
          ? (
            <>
              <Grid.Col span={{ base: 6, sm: 4 }}>
                <NumberInput label="Window seconds" allowDecimal={false} value={draft.windowSeconds}
                  onChange={(v) => onChange({ windowSeconds: v })} error={err("windowSeconds")} />
              </Grid.Col>
              <Grid.Col span={{ base: 6, sm: 4 }}>
                <Select
                  label="A duplicate is"
                  data={[{ value: "reject", label: "Refused" }, { value: "return_first", label: "Answered with the first" }]}
                  value={draft.mode}
                  allowDeselect={false}
                  onChange={(v) => onChange({ mode: v ?? "reject" })}
                  error={err("mode")}
                />
              </Grid.Col>
            </>
          )
          : null}
        {draft.type === "blacklist"
          ? (
            <Grid.Col span={12}>
              <TagsInput label="Lists" description={`Known: ${listNames.join(", ") || "none"}`} data={[...listNames]} value={[...draft.lists]}
                onChange={(v) => onChange({ lists: v })} error={err("lists")} />
            </Grid.Col>
          )
          : null}
        {draft.type === "quiet_hours"
          ? (
            <>
              <Grid.Col span={{ base: 6, sm: 3 }}>
                <TextInput label="From" placeholder="21:00" value={draft.from} onChange={(e) => onChange({ from: e.currentTarget.value })} error={err("from")} />
              </Grid.Col>
              <Grid.Col span={{ base: 6, sm: 3 }}>
                <TextInput label="To" placeholder="08:00" value={draft.to} onChange={(e) => onChange({ to: e.currentTarget.value })} error={err("to")} />
              </Grid.Col>
              <Grid.Col span={{ base: 12, sm: 6 }}>
                <TextInput label="Countries and time zones" placeholder="DE=Europe/Berlin, FR=Europe/Paris" value={draft.countries}
                  onChange={(e) => onChange({ countries: e.currentTarget.value })} error={err("countries")} />
              </Grid.Col>
            </>
          )
          : null}
      </Grid>
      <Group justify="flex-end" gap="xs" mt="sm">
        <ActionIcon variant="subtle" aria-label={`Move rule ${name} up`} disabled={index === 0} onClick={() => onMove(-1)}>↑</ActionIcon>
        <ActionIcon variant="subtle" aria-label={`Move rule ${name} down`} disabled={index === count - 1} onClick={() => onMove(1)}>↓</ActionIcon>
        <ActionIcon variant="subtle" color="red" aria-label={`Remove rule ${name}`} onClick={onRemove}>✕</ActionIcon>
      </Group>
    </Fieldset>
  )
}
