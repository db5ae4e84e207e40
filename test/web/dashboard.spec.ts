/**
 * The live dashboard as a person sees it: messages sent through the API move its figures while the page stays open
 * (no reload), at a desktop's width and at 375 px; the links and pools panel is there for the operator only.
 */
import type { APIRequestContext, Page } from "@playwright/test"
import type { Person } from "./fixtures.ts"
import { baseUrl, expect, inspect, newPerson, operatorPerson, register, signIn, test, tokenOf } from "./fixtures.ts"

/** An app of the person's organisation and a token to send as it. */
const appToken = async (request: APIRequestContext, person: Person) => {
  const user = await tokenOf(request, person)
  const app = await request.post(`${baseUrl()}/v1/apps`, { headers: { authorization: user }, data: { name: "dashboard app", allowList: [] } })
  expect(app.status(), await app.text()).toBe(201)
  const appId = ((await app.json()) as { id: string }).id
  const key = await request.post(`${baseUrl()}/v1/apps/${appId}/keys`, { headers: { authorization: user }, data: {} })
  expect(key.status(), await key.text()).toBe(201)
  const apiKey = ((await key.json()) as { key: string }).key
  const token = await request.post(`${baseUrl()}/v1/auth/token`, { data: { appId, apiKey } })
  expect(token.status(), await token.text()).toBe(200)
  return `Bearer ${((await token.json()) as { accessToken: string }).accessToken}`
}

/** A tile's figure: the tile is a group named by its label; the figure is its own line. */
const tile = (page: Page, label: string) => page.getByRole("group", { name: label, exact: true })

test("sent messages move the dashboard's figures without a reload; no operator panel for a member", async ({ page, request }) => {
  const person = newPerson("Dora")
  await register(request, person)
  await signIn(page, person)
  await expect(page.getByRole("heading", { name: "Dashboard", level: 1 })).toBeVisible()
  await expect(tile(page, "Delivered").getByText("0", { exact: true })).toBeVisible()
  await expect(page.getByText("Nothing refused in the last 15 minutes.")).toBeVisible()

  const app = await appToken(request, person)
  for (let i = 0; i < 3; i++) {
    const sent = await request.post(`${baseUrl()}/v1/messages`, {
      headers: { authorization: app },
      data: { to: `+4915112${String(500_000 + i)}`, from: "ACME", text: `dashboard ${i}` }
    })
    expect(sent.status(), await sent.text()).toBe(202)
  }

  // The page is the same one: the stream moves it.
  await expect(tile(page, "Accepted").getByText("3", { exact: true })).toBeVisible({ timeout: 20_000 })
  await expect(tile(page, "Delivered").getByText("3", { exact: true })).toBeVisible({ timeout: 20_000 })
  await expect(tile(page, "Delivery rate")).toContainText("100 %")
  await expect(tile(page, "Time to receipt")).toContainText(/\d+(\.\d)? (ms|s)/)
  await expect(page.getByRole("img", { name: /Messages per minute/ })).toBeVisible()
  await expect(page.getByRole("heading", { name: "Links and pools" })).toHaveCount(0)
  await inspect(page, "dashboard")

  await page.setViewportSize({ width: 375, height: 900 })
  await expect(tile(page, "Delivered").getByText("3", { exact: true })).toBeVisible()
  await inspect(page, "dashboard-375")
})

test("the operator also sees every link with its state, window and queue, and every pool", async ({ page }) => {
  await signIn(page, operatorPerson)
  await expect(page.getByRole("heading", { name: "Dashboard", level: 1 })).toBeVisible()
  await expect(page.getByRole("heading", { name: "Links and pools" })).toBeVisible()
  const demo = page.getByRole("row", { name: /^demo/ })
  await expect(demo).toContainText("bound")
  await expect(demo).toContainText("/ 10")
  await expect(demo).toContainText("/ 200 per s")
  await expect(page.getByText("No pool is configured.")).toBeVisible()
  await inspect(page, "dashboard-operator")
})
