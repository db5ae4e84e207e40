/**
 * The organisation screens as an owner, an invited member and a viewer use them: an app created with a bad allow-list
 * entry (the server's message under the field) then fixed, a key shown once and copied that really sends, revoked so it
 * no longer does; an invitation mailed, accepted by registering in a second browser, a role changed and the last
 * owner's demotion refused; a viewer without editing controls whose forced API calls are refused; the audit log with
 * these actions, filtered by action. Every screen is screenshotted and checked with axe.
 */
import type { APIRequestContext, Page } from "@playwright/test"
import { baseUrl, expect, inspect, newPerson, register, signIn, snap, test, tokenOf, waitForMail } from "./fixtures.ts"
import type { Person } from "./fixtures.ts"

const sendWithKey = async (request: APIRequestContext, appId: string, apiKey: string) => {
  const token = await request.post(`${baseUrl()}/v1/auth/token`, { data: { appId, apiKey } })
  if (token.status() !== 200) return { tokenStatus: token.status(), sendStatus: 0, accessToken: "" }
  const accessToken = ((await token.json()) as { accessToken: string }).accessToken
  const sent = await request.post(`${baseUrl()}/v1/messages`, {
    headers: { authorization: `Bearer ${accessToken}` },
    data: { to: "+4915112345678", from: "ACME", text: "Hello from the organisation test" }
  })
  return { tokenStatus: token.status(), sendStatus: sent.status(), accessToken }
}

const openNav = async (page: Page, label: string) => {
  // Below 768 px the navigation is behind the burger button.
  const burger = page.getByRole("button", { name: "Toggle navigation" })
  if (await burger.isVisible()) await burger.click()
  await page.getByRole("navigation", { name: "Main navigation" }).getByRole("link", { name: label }).click()
}

/** The rows of the audit table (its header row left out). */
const auditRows = (page: Page) => page.getByRole("table").getByRole("row").filter({ hasNot: page.getByRole("columnheader") })

test("an owner creates an app, fixes its allow-list, makes a key shown once that sends, and revokes it", async ({ page, request }) => {
  // Fifty renames and the audit log's two pages: 42-51 s alone, and past 60 s once beside callbacks.spec.ts's journeys.
  test.setTimeout(120_000)
  const owner = newPerson("Olive")
  await register(request, owner)
  await page.context().grantPermissions(["clipboard-read", "clipboard-write"], { origin: baseUrl() })
  await signIn(page, owner)
  await openNav(page, "Apps and API keys")
  await expect(page.getByText("No app yet")).toBeVisible()
  await inspect(page, "apps-empty")

  await page.getByRole("button", { name: "New app" }).click()
  const dialog = page.getByRole("dialog", { name: "New app" })
  await dialog.getByLabel("Name").fill("Billing")
  await dialog.getByLabel("Allowed addresses").fill("127.0.0.1\n10.0.0.300/8")
  await dialog.getByLabel("Message class").selectOption("promotional")
  await dialog.getByLabel("Messages per second").fill("50")
  await dialog.getByRole("button", { name: "Create app" }).click()
  // The server's message sits under the allow-list, naming the bad entry.
  await expect(dialog.getByLabel("Allowed addresses")).toHaveAccessibleDescription(/10\.0\.0\.300\/8/)
  await inspect(page, "app-new-allowlist-error")
  await dialog.getByLabel("Allowed addresses").fill("127.0.0.1\n10.0.0.0/8")
  await dialog.getByRole("button", { name: "Create app" }).click()
  await expect(page.getByRole("heading", { level: 1, name: "Billing" })).toBeVisible()
  const appId = /\/apps\/([^/?#]+)/.exec(page.url())?.[1] ?? ""
  expect(appId).not.toBe("")
  await expect(page.getByText("No key yet")).toBeVisible()
  await inspect(page, "app-detail")

  // Edit: the name changes, the fields keep what the server stored.
  await page.getByLabel("Name").fill("Billing EU")
  await page.getByRole("button", { name: "Save changes" }).click()
  await expect(page.getByRole("heading", { level: 1, name: "Billing EU" })).toBeVisible()
  await expect(page.getByLabel("Allowed addresses")).toHaveValue("127.0.0.1\n10.0.0.0/8")
  await expect(page.getByLabel("Messages per second")).toHaveValue("50")

  await page.getByRole("button", { name: "Create a key" }).click()
  const shown = page.getByRole("dialog", { name: "Your new API key" })
  await expect(shown.getByText("This key will not be shown again")).toBeVisible()
  const apiKey = await shown.getByLabel("API key").inputValue()
  expect(apiKey.length).toBeGreaterThan(20)
  await shown.getByRole("button", { name: "Copy the key" }).click()
  await expect(shown.getByRole("button", { name: "Copied", exact: true })).toBeVisible()
  expect(await page.evaluate("navigator.clipboard.readText()")).toBe(apiKey)
  await inspect(page, "api-key-shown-once")
  await shown.getByRole("button", { name: "I have copied it" }).click()
  await expect(shown).toBeHidden()
  // Once: the page no longer holds the key, only its prefix.
  expect(await page.content()).not.toContain(apiKey)
  const keyRow = page.getByRole("row").filter({ hasText: "Active" })
  await expect(keyRow).toHaveCount(1)

  // The key works: an app token, then a message accepted.
  const used = await sendWithKey(request, appId, apiKey)
  expect([used.tokenStatus, used.sendStatus]).toEqual([200, 202])

  const prefix = ((await keyRow.getByRole("cell").first().textContent()) ?? "").replace("…", "")
  await page.getByRole("button", { name: `Revoke key ${prefix}` }).click()
  const confirm = page.getByRole("dialog", { name: /Revoke key/ })
  await inspect(page, "api-key-revoke-confirm")
  await confirm.getByRole("button", { name: "Revoke" }).click()
  await expect(page.getByRole("row").filter({ hasText: prefix })).toContainText("Revoked")
  await snap(page, "app-detail-key-revoked")

  // Refused after: no new token, and the token it had stops working.
  expect((await sendWithKey(request, appId, apiKey)).tokenStatus).toBe(401)
  const old = await request.post(`${baseUrl()}/v1/messages`, {
    headers: { authorization: `Bearer ${used.accessToken}` },
    data: { to: "+4915112345678", from: "ACME", text: "after revocation" }
  })
  expect(old.status()).toBe(401)

  await openNav(page, "Apps and API keys")
  await expect(page.getByRole("row", { name: /Billing EU/ })).toContainText("promotional")
  await inspect(page, "apps")

  // Enough entries for a second page of the audit log (50 a page): renames through the API.
  const auth = await tokenOf(request, owner)
  for (let i = 0; i < 50; i++) {
    const renamed = await request.patch(`${baseUrl()}/v1/apps/${appId}`, { headers: { authorization: auth }, data: { name: `Billing EU ${i}` } })
    expect(renamed.status()).toBe(200)
  }
  const logged = await request.get(`${baseUrl()}/v1/audit?limit=1000`, { headers: { authorization: auth } })
  const total = ((await logged.json()) as Array<unknown>).length
  expect(total).toBeGreaterThan(50)

  // The audit log holds what was done here, pages back without gaps, and filters by action.
  await openNav(page, "Audit log")
  await expect(auditRows(page)).toHaveCount(50)
  await page.getByRole("button", { name: "Load older entries" }).click()
  await expect(auditRows(page)).toHaveCount(total)
  await expect(page.getByText("That is the oldest entry.")).toBeVisible()
  await expect(auditRows(page).first()).toBeVisible()
  for (const action of ["app.created", "app.updated", "api_key.created", "api_key.revoked"]) {
    await expect(page.getByRole("table").getByText(action, { exact: true }).first()).toBeVisible()
  }
  await page.getByLabel("Action").selectOption("api_key.revoked")
  await page.getByRole("button", { name: "Apply filters" }).click()
  await expect(auditRows(page)).toHaveCount(1)
  await expect(auditRows(page).first()).toContainText(/Billing EU( 49)? · key/)
  expect(page.url()).toContain("action=api_key.revoked")
})

test("an invited member joins through the mailed link, changes role, is limited as a viewer, and it is all audited", async ({ page, request, browser }) => {
  // Two browsers, a mail, three roles and the audit log: ~57 s on a 2-core machine, at the edge of the default 60 s.
  test.setTimeout(120_000)
  const owner = newPerson("Oscar")
  const invitee: Person = newPerson("Ines")
  await register(request, owner)
  await signIn(page, owner)
  await openNav(page, "Members")
  await expect(page.getByRole("row", { name: new RegExp(owner.name) })).toContainText("You")
  await expect(page.getByText("No invitation is waiting")).toBeVisible()
  await inspect(page, "members")

  await page.getByRole("button", { name: "Invite a member" }).click()
  const inviteDialog = page.getByRole("dialog", { name: "Invite a member" })
  await inviteDialog.getByLabel("Email").fill(invitee.email)
  await inviteDialog.getByLabel("Role").selectOption("member")
  await inspect(page, "members-invite")
  await inviteDialog.getByRole("button", { name: "Send invitation" }).click()
  await expect(inviteDialog.getByText("Invitation sent")).toBeVisible()
  await inviteDialog.getByRole("button", { name: "Done" }).click()
  await expect(page.getByRole("row", { name: new RegExp(invitee.email) })).toContainText("member")
  await inspect(page, "members-invitation-pending")

  // The invitee registers through the link in a browser of their own.
  const mail = await waitForMail(invitee.email, "Invitation")
  const link = /(http\S+\/invitations\/accept#token=\S+)/.exec(mail.text)?.[1] ?? ""
  expect(link).not.toBe("")
  const other = await browser.newContext()
  const second = await other.newPage()
  await second.goto(link)
  await second.getByLabel("Your name").fill(invitee.name)
  await second.getByLabel("Email").fill(invitee.email)
  await second.getByRole("textbox", { name: "Password", exact: true }).fill(invitee.password)
  await second.getByRole("button", { name: "Create account and join" }).click()
  await expect(second.getByRole("button", { name: `Account menu of ${invitee.name}` })).toBeVisible()

  await page.reload()
  await expect(page.getByRole("row", { name: new RegExp(invitee.name) })).toBeVisible()
  await expect(page.getByText("No invitation is waiting")).toBeVisible()
  const inviteeRole = page.getByLabel(`Role of ${invitee.name}`, { exact: true })
  await expect(inviteeRole).toHaveValue("member")
  await inviteeRole.selectOption("viewer")
  await expect(inviteeRole).toBeEnabled()
  await page.reload()
  await expect(page.getByLabel(`Role of ${invitee.name}`, { exact: true })).toHaveValue("viewer")

  // The server's refusal, as it words it: the last owner stays an owner.
  await page.getByLabel(`Role of ${owner.name}`, { exact: true }).selectOption("admin")
  await expect(page.getByRole("alert")).toContainText(/at least one owner/)
  await expect(page.getByLabel(`Role of ${owner.name}`, { exact: true })).toHaveValue("owner")
  await inspect(page, "members-last-owner-refused")

  // As a viewer (a new session carries the new role): the lists without editing controls.
  await second.reload()
  await openNav(second, "Members")
  await expect(second.getByRole("row", { name: new RegExp(owner.name) })).toBeVisible()
  await expect(second.getByRole("button", { name: "Invite a member" })).toHaveCount(0)
  await expect(second.getByRole("combobox", { name: /Role of/ })).toHaveCount(0)
  await expect(second.getByRole("button", { name: /Remove/ })).toHaveCount(0)
  await inspect(second, "members-viewer")
  await openNav(second, "Apps and API keys")
  await expect(second.getByText("No app yet.")).toBeVisible()
  await expect(second.getByRole("button", { name: "New app" })).toHaveCount(0)
  await expect(second.getByRole("navigation", { name: "Main navigation" }).getByRole("link", { name: "Audit log" })).toHaveCount(0)
  await second.goto(`${baseUrl()}/audit`)
  await expect(second.getByRole("alert")).toContainText("Not allowed")
  // Forced through the API, the same refusals.
  const viewerAuth = await tokenOf(request, invitee)
  const forcedApp = await request.post(`${baseUrl()}/v1/apps`, { headers: { authorization: viewerAuth }, data: { name: "sneaky" } })
  expect(forcedApp.status()).toBe(403)
  const forcedInvite = await request.post(`${baseUrl()}/v1/members`, {
    headers: { authorization: viewerAuth },
    data: { email: newPerson("Sneaky").email, role: "admin" }
  })
  expect(forcedInvite.status()).toBe(403)
  expect((await request.get(`${baseUrl()}/v1/audit`, { headers: { authorization: viewerAuth } })).status()).toBe(403)
  await other.close()

  // Removal, confirmed first.
  await page.getByRole("button", { name: `Remove ${invitee.name}` }).click()
  const removal = page.getByRole("dialog", { name: `Remove ${invitee.name}?` })
  await removal.getByRole("button", { name: "Remove" }).click()
  await expect(page.getByRole("row", { name: new RegExp(invitee.name) })).toHaveCount(0)

  // The audit log shows each step, and filters by action.
  await openNav(page, "Audit log")
  for (const action of ["member.invited", "member.joined", "member.role_changed", "member.removed"]) {
    await expect(page.getByRole("table").getByText(action, { exact: true }).first()).toBeVisible()
  }
  await inspect(page, "audit")
  await page.getByLabel("Action").selectOption("member.role_changed")
  await page.getByRole("button", { name: "Apply filters" }).click()
  await expect(auditRows(page)).toHaveCount(1)
  await expect(auditRows(page).first()).toContainText("member->viewer")
  await expect(auditRows(page).first()).toContainText(owner.name)
  await inspect(page, "audit-filtered")
  // An empty result says so.
  await page.getByLabel("Target").fill("nothing-has-this-id")
  await page.getByRole("button", { name: "Apply filters" }).click()
  await expect(page.getByText("No entry matches these filters.")).toBeVisible()
  await page.getByRole("button", { name: "Clear" }).click()
  await expect(auditRows(page).first()).toBeVisible()
  expect(await auditRows(page).count()).toBeGreaterThan(4)
})

test("the organisation screens work from the keyboard and at 375 px", async ({ page, request }) => {
  const owner = newPerson("Kira")
  await register(request, owner)
  await page.setViewportSize({ width: 375, height: 740 })
  await signIn(page, owner)
  await openNav(page, "Apps and API keys")
  await page.getByRole("button", { name: "New app" }).focus()
  await page.keyboard.press("Enter")
  await expect(page.getByRole("dialog", { name: "New app" }).getByLabel("Name")).toBeFocused()
  await page.keyboard.type("Keyboard app")
  await page.keyboard.press("Enter")
  await expect(page.getByRole("heading", { level: 1, name: "Keyboard app" })).toBeVisible()
  await page.getByRole("button", { name: "Create a key" }).focus()
  await page.keyboard.press("Enter")
  await expect(page.getByRole("dialog", { name: "Your new API key" })).toBeVisible()
  await page.keyboard.press("Escape")
  await expect(page.getByRole("dialog", { name: "Your new API key" })).toBeHidden()
  await page.getByRole("button", { name: "Deactivate" }).click()
  await expect(page.getByRole("button", { name: "Activate" })).toBeVisible()
  await expect(page.getByText("The app is inactive")).toBeVisible()
  // Nothing wider than the screen: tables scroll inside their own region.
  const fits = () => page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
  expect(await fits()).toBe(true)
  await inspect(page, "app-detail-375px")
  await page.getByRole("button", { name: "Delete" }).click()
  await page.getByRole("dialog", { name: "Delete Keyboard app?" }).getByRole("button", { name: "Delete app" }).click()
  await expect(page.getByRole("heading", { level: 1, name: "Apps and API keys" })).toBeVisible()
  await expect(page.getByText("No app yet")).toBeVisible()
  for (const [label, name] of [["Members", "members-375px"], ["Audit log", "audit-375px"]] as const) {
    await openNav(page, label)
    await expect(page.getByRole("heading", { level: 1, name: label })).toBeVisible()
    await expect(page.getByRole("table").first()).toBeVisible()
    expect(await fits()).toBe(true)
    await inspect(page, name)
  }
})
