/**
 * Inbound messages as a campaign manager reads them: an operator routes a short code's keyword to the organisation's
 * app, handsets reply through the SMSC simulator, and the Inbound screen lists the replies newest first with their
 * keyword and the parts that never came; filtered by sender from the keyboard; another organisation sees none of them;
 * the screen at 375 px.
 */
import type { APIRequestContext } from "@playwright/test"
import { baseUrl, expect, inspect, newPerson, operatorPerson, register, signIn, simControl, snap, test, tokenOf } from "./fixtures.ts"

const handset = async (request: APIRequestContext, from: string, to: string, text: string) => {
  const sent = await request.post(`${simControl()}/mo`, { data: { from, to, text } })
  expect(sent.status(), await sent.text()).toBe(202)
}

test("replies routed to the organisation's app are listed with their keyword, filtered by sender; another organisation sees none", async ({ page, request }) => {
  const person = newPerson("Ines")
  await register(request, person)
  const userAuth = await tokenOf(request, person)
  const app = await request.post(`${baseUrl()}/v1/apps`, { headers: { authorization: userAuth }, data: { name: "Replies app", allowList: [] } })
  expect(app.status(), await app.text()).toBe(201)
  const appId = ((await app.json()) as { id: string }).id
  const stranger = newPerson("Udo")
  await register(request, stranger)

  const code = String(10000 + Math.floor(Math.random() * 89999))
  const ops = await tokenOf(request, operatorPerson)
  const routes = await request.put(`${baseUrl()}/v1/admin/inbound/routes`, {
    headers: { authorization: ops },
    data: { routes: [{ id: "web-shop", number: code, keyword: "SHOP", appId }] }
  })
  expect(routes.status(), await routes.text()).toBe(200)

  await handset(request, "4915112340001", code, "SHOP two shirts please")
  await handset(request, "4915112340002", code, "shop: a hat")
  await handset(request, "4915112340003", code, `SHOP ${"and a long list of things to buy ".repeat(6)}`)

  await signIn(page, person)
  await page.getByRole("link", { name: "Inbound" }).click()
  await expect(page.getByRole("heading", { name: "Inbound messages", level: 1 })).toBeVisible()
  const rows = page.getByRole("table", { name: "Inbound messages" }).getByRole("row")
  // A header row and three replies, once the processor has routed them (the screen refreshes by itself).
  await expect(rows).toHaveCount(4, { timeout: 30_000 })
  await expect(page.getByRole("row", { name: /\+4915112340001/ })).toContainText("SHOP two shirts please")
  await expect(page.getByRole("row", { name: /\+4915112340002/ })).toContainText("SHOP")
  await inspect(page, "inbound")

  // By sender, from the keyboard.
  await page.getByLabel("From").focus()
  await page.keyboard.type("+4915112340002")
  await page.keyboard.press("Enter")
  await expect(rows).toHaveCount(2)
  await expect(page.getByRole("row", { name: /\+4915112340002/ })).toContainText("shop: a hat")
  await expect(page).toHaveURL(/from=%2B4915112340002/)

  await page.setViewportSize({ width: 375, height: 812 })
  await page.getByRole("button", { name: "Clear filters" }).click()
  await expect(rows).toHaveCount(4)
  expect(await page.evaluate("document.documentElement.scrollWidth")).toBeLessThanOrEqual(375)
  await snap(page, "inbound-375")

  // Another organisation: nothing of these.
  await page.context().clearCookies()
  await page.evaluate("localStorage.clear()")
  await page.setViewportSize({ width: 1280, height: 800 })
  await signIn(page, stranger)
  await page.getByRole("link", { name: "Inbound" }).click()
  await expect(page.getByText(/No inbound messages yet/)).toBeVisible()
})
