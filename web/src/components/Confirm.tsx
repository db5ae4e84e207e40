/**
 * A button whose action is asked again in a dialog first (remove, revoke, delete). The dialog stays open while the
 * action runs and shows the server's refusal if there is one; it closes when the action succeeded.
 */
import { Button, Group, Modal, Stack, Text } from "@mantine/core"
import type { ButtonProps } from "@mantine/core"
import { useDisclosure } from "@mantine/hooks"
import { useMutation } from "@tanstack/react-query"
import type { ReactNode } from "react"
import { ProblemAlert } from "./States.tsx"

export const ConfirmButton = ({ children, title, message, confirmLabel, onConfirm, ariaLabel, ...button }: {
  /** The button's text. */
  readonly children: ReactNode
  /** The dialog's title, a question ("Revoke key ab12…?"). */
  readonly title: string
  /** What will happen, said plainly. */
  readonly message: ReactNode
  readonly confirmLabel: string
  readonly onConfirm: () => Promise<unknown>
  /** The button's accessible name when its text alone is ambiguous (one per row). */
  readonly ariaLabel?: string
} & Omit<ButtonProps, "children">) => {
  const [opened, { open, close }] = useDisclosure(false)
  const action = useMutation({ mutationFn: onConfirm, onSuccess: close })
  return (
    <>
      <Button color="red" variant="light" size="xs" {...button} aria-label={ariaLabel} onClick={() => {
        action.reset()
        open()
      }}>
        {children}
      </Button>
      <Modal opened={opened} onClose={close} title={title} centered closeButtonProps={{ "aria-label": "Close" }}>
        <Stack>
          <Text size="sm">{message}</Text>
          {action.isError ? <ProblemAlert error={action.error} /> : null}
          <Group justify="flex-end">
            <Button variant="default" onClick={close}>Cancel</Button>
            <Button color="red" loading={action.isPending} onClick={() => action.mutate()}>{confirmLabel}</Button>
          </Group>
        </Stack>
      </Modal>
    </>
  )
}
