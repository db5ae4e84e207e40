/**
 * Signing up, in and out as a person does: register, the session surviving a reload (cookie, no token in storage),
 * a wrong password shown next to the form, switching organisation after an invitation, sign out everywhere, and the
 * page served with a Content-Security-Policy that forbids inline scripts.
 */
import { baseUrl, expect, inspect, newPerson, register, signIn, snap, test, tokenOf, waitForMail } from "./fixtures.ts"

test("register, stay signed in across a reload, sign out", async ({ page }) => {
  const person = newPerson("Rita")
  await page.goto(`${baseUrl()}/`)
  await inspect(page, "sign-in")
  await page.getByRole("link", { name: "Create one" }).click()
  await page.getByLabel("Your name").fill(person.name)
  await page.getByLabel("Email").fill(person.email)
  await page.getByRole("textbox", { name: "Password", exact: true }).fill("short")
  await page.getByLabel("Organisation").fill(person.organisation)
  await page.getByRole("button", { name: "Create account" }).click()
  // The server's field message sits next to the field.
  await expect(page.getByRole("textbox", { name: "Password", exact: true })).toHaveAccessibleDescription(/must be at least 10 characters/)
  await inspect(page, "register-error")
  await page.getByRole("textbox", { name: "Password", exact: true }).fill(person.password)
  await page.getByRole("button", { name: "Create account" }).click()
  await expect(page.getByRole("button", { name: `Account menu of ${person.name}` })).toBeVisible()

  // No token in any storage a script can read; the refresh cookie is HttpOnly and scoped to the session path.
  expect(await page.evaluate("JSON.stringify(localStorage) + JSON.stringify(sessionStorage) + document.cookie")).toBe("{}{}smsgw_session=1")
  const cookies = await page.context().cookies()
  const session = cookies.find((c) => c.name === "smsgw_refresh")
  expect(session).toMatchObject({ httpOnly: true, secure: true, sameSite: "Strict", path: "/v1/auth/session" })

  await page.reload()
  await expect(page.getByRole("button", { name: `Account menu of ${person.name}` })).toBeVisible()
  await page.getByRole("button", { name: /Account menu/ }).click()
  await page.getByRole("menuitem", { name: "Sign out", exact: true }).click()
  await expect(page.getByRole("button", { name: "Sign in" })).toBeVisible()
  await page.reload()
  await expect(page.getByRole("button", { name: "Sign in" })).toBeVisible()
})

test("a wrong password is refused with the server's reason", async ({ page, request }) => {
  const person = newPerson("Wanda")
  await register(request, person)
  await page.goto(`${baseUrl()}/`)
  await page.getByLabel("Email").fill(person.email)
  await page.getByRole("textbox", { name: "Password", exact: true }).fill("not the password at all")
  await page.getByRole("button", { name: "Sign in" }).click()
  await expect(page.getByRole("alert")).toContainText(/wrong|invalid|incorrect/i)
  await snap(page, "sign-in-refused")
})

test("an invited person joins, switches organisation, and signs out everywhere", async ({ page, request, browser }) => {
  const owner = newPerson("Otto")
  const guest = newPerson("Gina")
  await register(request, owner)
  await register(request, guest)
  const ownerAuth = await tokenOf(request, owner)
  const invited = await request.post(`${baseUrl()}/v1/members`, {
    headers: { authorization: ownerAuth },
    data: { email: guest.email, role: "member" }
  })
  expect(invited.ok(), await invited.text()).toBe(true)
  const mail = await waitForMail(guest.email, "")
  const link = /(http\S+\/invitations\/accept#token=\S+)/.exec(mail.text)?.[1]
  expect(link).toBeDefined()

  await signIn(page, guest)
  await page.goto(link ?? "")
  await page.getByRole("button", { name: "Accept the invitation" }).click()
  await expect(page.getByText(`You joined ${owner.organisation}`)).toBeVisible()
  await page.goto(`${baseUrl()}/account`)
  await expect(page.getByRole("row", { name: new RegExp(owner.organisation) })).toContainText("Current")
  await inspect(page, "account")
  await page.getByRole("button", { name: `Switch to ${guest.organisation}` }).click()
  await expect(page.getByRole("row", { name: new RegExp(guest.organisation) })).toContainText("Current")

  // A second browser of the same person; sign out everywhere ends it too.
  const other = await browser.newContext()
  const second = await other.newPage()
  await signIn(second, guest)
  await page.getByRole("button", { name: "Sign out everywhere" }).click()
  await expect(page.getByRole("button", { name: "Sign in" })).toBeVisible()
  await second.reload()
  await expect(second.getByRole("button", { name: "Sign in" })).toBeVisible()
  await other.close()
})

test("the page forbids inline scripts and is usable on a 375 px screen", async ({ page, request }) => {
  const response = await request.get(`${baseUrl()}/campaigns/new`)
  expect(response.status()).toBe(200)
  const csp = response.headers()["content-security-policy"] ?? ""
  expect(csp).toContain("script-src 'self'")
  expect(csp).not.toMatch(/script-src[^;]*unsafe-inline/)
  expect(await response.text()).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/)

  const person = newPerson("Mo")
  await register(request, person)
  await page.setViewportSize({ width: 375, height: 740 })
  await signIn(page, person)
  await page.getByRole("button", { name: "Toggle navigation" }).click()
  await expect(page.getByRole("navigation", { name: "Main navigation" })).toBeVisible()
  await snap(page, "navigation-375px")
  // Keyboard: the menu opens and its items are reachable without a mouse.
  await page.keyboard.press("Escape")
  await page.getByRole("button", { name: /Account menu/ }).focus()
  await page.keyboard.press("Enter")
  await expect(page.getByRole("menuitem", { name: "Sign out", exact: true })).toBeVisible()
})
