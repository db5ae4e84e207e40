/**
 * Newer / Older over an API's cursor pages (`next`), with where the reader is: "Page 2 · 50 messages". The screen keeps
 * the cursors of the pages seen (the first page has none); this renders the line and moves through them.
 */
import { Button, Group, Text } from "@mantine/core"

export const CursorPager = <C,>({ cursors, next, count, noun, suffix, onMove }: {
  /** The cursors of the pages seen, the current page's last (the first page's is undefined). */
  readonly cursors: ReadonlyArray<C | undefined>
  /** The API's cursor of the page after this one; undefined on the last page. */
  readonly next: C | undefined
  /** Items on this page. */
  readonly count: number
  /** Singular and plural, e.g. ["message", "messages"]. */
  readonly noun: readonly [string, string]
  readonly suffix?: string
  readonly onMove: (cursors: ReadonlyArray<C | undefined>) => void
}) => (
  <Group justify="space-between" gap="xs">
    <Text size="sm" c="dimmed" aria-live="polite">
      Page {cursors.length} · {count} {count === 1 ? noun[0] : noun[1]}{suffix ?? ""}
    </Text>
    <Group gap="xs">
      <Button variant="default" size="xs" disabled={cursors.length === 1} onClick={() => onMove(cursors.slice(0, -1))}>
        Newer
      </Button>
      <Button variant="default" size="xs" disabled={next === undefined} onClick={() => onMove([...cursors, next])}>
        Older
      </Button>
    </Group>
  </Group>
)
