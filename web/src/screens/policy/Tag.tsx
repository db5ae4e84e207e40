/**
 * A small coloured label that stays readable: Mantine's light badge (a pale background of the colour) with the
 * page's text colour on it; the colour's own text shades on its pale background stay below WCAG AA's 4.5:1 for small
 * text (green 9 on green 1 is ~3.9:1). The colour is never the only signal: the label says it.
 */
import { Alert, Badge } from "@mantine/core"
import type { ReactNode } from "react"

export const Tag = ({ color, children, outline = false, size }: {
  readonly color: string
  readonly children: ReactNode
  readonly outline?: boolean
  readonly size?: "xs" | "sm" | "md"
}) => (
  <Badge variant={outline ? "outline" : "light"} color={color} c="var(--mantine-color-text)" {...(size !== undefined ? { size } : {})}>
    {children}
  </Badge>
)

/**
 * An outcome shown as a coloured box (admitted, refused, routed…), read aloud as a status: its title and text in the
 * page's text colour, since the colour's own text shade on its pale background is below AA.
 */
export const Notice = ({ color, title, children }: {
  readonly color: string
  readonly title: ReactNode
  readonly children?: ReactNode
}) => (
  <Alert color={color} title={title} role="status" styles={{ title: { color: "var(--mantine-color-text)" }, message: { color: "var(--mantine-color-text)" } }}>
    {children}
  </Alert>
)
