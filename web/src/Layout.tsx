/**
 * The signed-in frame: navigation by section (only what the user's role may open), the organisation switcher, the
 * account menu (sign out, sign out everywhere), collapsing into a burger menu below 768 px.
 */
import { AppShell, Burger, Group, Menu, NavLink, ScrollArea, Select, Text, UnstyledButton } from "@mantine/core"
import { useDisclosure } from "@mantine/hooks"
import type { ReactNode } from "react"
import { Link, useLocation } from "wouter"
import { atLeast, useMe, useSession } from "./api/session.tsx"
import { routes } from "./routes.tsx"
import type { Section } from "./routes.tsx"

const sections: ReadonlyArray<Section> = ["Messaging", "Organisation", "Operations"]

export const Layout = ({ children }: { readonly children: ReactNode }) => {
  const [opened, { toggle, close }] = useDisclosure()
  const me = useMe()
  const session = useSession()
  const [location, navigate] = useLocation()
  const visible = routes.filter((r) =>
    r.nav !== undefined && (r.superadmin !== true || me.user.superadmin) && atLeast(me.role, r.minRole ?? "viewer")
  )

  return (
    <AppShell header={{ height: 56 }} navbar={{ width: 232, breakpoint: "sm", collapsed: { mobile: !opened } }} padding="md">
      <AppShell.Header>
        <Group h="100%" px="md" justify="space-between" wrap="nowrap">
          <Group gap="sm" wrap="nowrap">
            <Burger opened={opened} onClick={toggle} hiddenFrom="sm" size="sm" aria-label="Toggle navigation" />
            <Text component={Link} href="/" fw={700} size="lg">Message Center</Text>
          </Group>
          <Group gap="sm" wrap="nowrap">
            {me.organisations.length > 1
              ? (
                <Select
                  aria-label="Organisation"
                  size="xs"
                  w={180}
                  visibleFrom="xs"
                  allowDeselect={false}
                  data={me.organisations.map((o) => ({ value: o.id, label: o.name }))}
                  value={me.organisation.id}
                  onChange={(id) => {
                    if (id !== null && id !== me.organisation.id) void session.switchOrganisation(id).then(() => navigate("/"))
                  }}
                />
              )
              : <Text size="sm" visibleFrom="xs" c="dimmed">{me.organisation.name}</Text>}
            <Menu position="bottom-end" withinPortal>
              <Menu.Target>
                <UnstyledButton aria-label={`Account menu of ${me.user.name}`}>
                  <Text size="sm" fw={500}>{me.user.name}</Text>
                </UnstyledButton>
              </Menu.Target>
              <Menu.Dropdown>
                <Menu.Label>{me.user.email} · {me.role}</Menu.Label>
                <Menu.Item component={Link} href="/account">Account and organisations</Menu.Item>
                <Menu.Item onClick={() => void session.signOut().then(() => navigate("/"))}>Sign out</Menu.Item>
                <Menu.Item color="red" onClick={() => void session.signOutEverywhere().then(() => navigate("/"))}>
                  Sign out everywhere
                </Menu.Item>
              </Menu.Dropdown>
            </Menu>
          </Group>
        </Group>
      </AppShell.Header>
      <AppShell.Navbar p="xs" aria-label="Main navigation">
        <ScrollArea>
          {sections.map((section) => {
            const items = visible.filter((r) => r.nav?.section === section)
            if (items.length === 0) return null
            return (
              <div key={section}>
                <Text size="xs" fw={700} c="dimmed" tt="uppercase" px="sm" pt="sm" pb={4}>{section}</Text>
                {items.map((r) => (
                  <NavLink
                    key={r.path}
                    component={Link}
                    href={r.path}
                    label={r.nav?.label}
                    active={location === r.path || location.startsWith(`${r.path}/`)}
                    aria-current={location === r.path ? "page" : undefined}
                    onClick={close}
                  />
                ))}
              </div>
            )
          })}
        </ScrollArea>
      </AppShell.Navbar>
      <AppShell.Main>{children}</AppShell.Main>
    </AppShell>
  )
}
