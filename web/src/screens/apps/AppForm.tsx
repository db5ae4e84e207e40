/**
 * The fields of an app, for creating one and for editing it: name, the addresses it may send from (one per line),
 * its rate limits and the class of its messages. The server checks them; its messages sit next to their fields
 * (a bad CIDR under the allow-list, a zero limit under that limit).
 */
import { Button, Group, NativeSelect, NumberInput, SimpleGrid, Stack, Text, Textarea, TextInput } from "@mantine/core"
import { useState } from "react"
import type { Body, Ok } from "../../api/types.ts"
import { fieldError } from "../../components/Forms.tsx"
import { ProblemAlert } from "../../components/States.tsx"

export type App = Ok<"/v1/apps/{appId}", "get">
export type AppBody = Body<"/v1/apps", "post">
type MessageClass = NonNullable<AppBody["messageClass"]>
type Limits = NonNullable<AppBody["limits"]>

const limitFields: ReadonlyArray<{ readonly key: keyof Limits; readonly label: string; readonly help: string }> = [
  { key: "perSecond", label: "Messages per second", help: "Sustained rate" },
  { key: "burst", label: "Burst", help: "Extra messages at once above the rate" },
  { key: "perMinute", label: "Messages per minute", help: "" },
  { key: "perDay", label: "Messages per day", help: "" }
]

const classHelp: Record<MessageClass, string> = {
  transactional: "Codes, alerts, receipts: sent at any hour",
  promotional: "Marketing: quiet hours and promotional caps apply"
}

interface Values {
  readonly name: string
  readonly allowList: string
  readonly messageClass: MessageClass
  readonly limits: Partial<Record<keyof Limits, number | string>>
}

const valuesOf = (app?: App): Values => ({
  name: app?.name ?? "",
  allowList: (app?.allowList ?? []).join("\n"),
  messageClass: app?.messageClass ?? "transactional",
  limits: { ...app?.limits }
})

/** The request body: one allow-list entry per non-empty line, only the limits given. */
const bodyOf = (values: Values): Required<Omit<AppBody, "active">> => ({
  name: values.name,
  allowList: values.allowList.split(/\r?\n/).map((line) => line.trim()).filter((line) => line !== ""),
  messageClass: values.messageClass,
  limits: Object.fromEntries(
    Object.entries(values.limits).filter((e): e is [string, number] => typeof e[1] === "number")
  ) as Limits
})

export const AppForm = ({ app, submitLabel, onSubmit, error, pending, onCancel }: {
  readonly app?: App
  readonly submitLabel: string
  readonly onSubmit: (body: Required<Omit<AppBody, "active">>) => void
  readonly error: unknown
  readonly pending: boolean
  readonly onCancel?: () => void
}) => {
  const [values, setValues] = useState<Values>(() => valuesOf(app))
  const fields = ["name", "allowList", "messageClass", "limits"]
  const formLevel = error !== null && error !== undefined && fields.every((f) => fieldError(error, f) === undefined)
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault()
        onSubmit(bodyOf(values))
      }}
    >
      <Stack>
        {formLevel ? <ProblemAlert error={error} title="Not saved" /> : null}
        <TextInput label="Name" required maxLength={200} value={values.name} error={fieldError(error, "name")} data-autofocus
          onChange={(e) => setValues({ ...values, name: e.currentTarget.value })} />
        <Textarea label="Allowed addresses" autosize minRows={3} maxRows={10} value={values.allowList}
          description="IPv4 or IPv6 addresses or CIDR ranges (10.0.0.0/8), one per line. Empty: any address."
          error={fieldError(error, "allowList")} styles={{ input: { fontFamily: "var(--mantine-font-family-monospace)" } }}
          onChange={(e) => setValues({ ...values, allowList: e.currentTarget.value })} />
        <NativeSelect label="Message class" value={values.messageClass} description={classHelp[values.messageClass]}
          data={Object.keys(classHelp)} error={fieldError(error, "messageClass")}
          onChange={(e) => setValues({ ...values, messageClass: e.currentTarget.value as MessageClass })} />
        <div>
          <Text size="sm" fw={500}>Limits</Text>
          <Text size="xs" c="dimmed" mb={4}>Empty: the gateway's defaults for apps.</Text>
          <SimpleGrid cols={{ base: 1, xs: 2 }} spacing="sm">
            {limitFields.map((f) => (
              <NumberInput key={f.key} label={f.label} description={f.help === "" ? undefined : f.help} min={1}
                allowDecimal={false} allowNegative={false} value={values.limits[f.key] ?? ""}
                error={fieldError(error, `limits.${f.key}`)}
                onChange={(v) => setValues({ ...values, limits: { ...values.limits, [f.key]: v === "" ? undefined : v } })} />
            ))}
          </SimpleGrid>
        </div>
        <Group justify="flex-end">
          {onCancel !== undefined ? <Button variant="default" onClick={onCancel}>Cancel</Button> : null}
          <Button type="submit" loading={pending}>{submitLabel}</Button>
        </Group>
      </Stack>
    </form>
  )
}
