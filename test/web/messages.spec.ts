/**
 * Messages as a person uses them: messages sent through the API with an app's key are found in the search screen by
 * number (written any way a submit reads it) and by id; a bad number is named next to its field; the message's page
 * shows `delivered`, its parts and its timeline; another organisation's message is "not found"; the screens at 375 px.
 */
import type { APIRequestContext } from "@playwright/test"
import { appWithToken, baseUrl, expect, inspect, newPerson, register, signIn, snap, test, tokenOf } from "./fixtures.ts"
import type { Person } from "./fixtures.ts"

const send = async (request: APIRequestContext, auth: string, body: Record<string, string>) => {
  const sent = await request.post(`${baseUrl()}/v1/messages`, { headers: { authorization: auth }, data: { from: "ACME", ...body } })
  expect(sent.status(), await sent.text()).toBe(202)
  return ((await sent.json()) as { id: string }).id
}

const delivered = async (request: APIRequestContext, auth: string, id: string) => {
  await expect.poll(async () => {
    const view = await request.get(`${baseUrl()}/v1/messages/${id}`, { headers: { authorization: auth } })
    return ((await view.json()) as { status?: string }).status
  }, { message: `message ${id} delivered`, timeout: 15_000 }).toBe("delivered")
}

/** A person with an organisation, an app named `appName`, and the messages they sent through it. */
const sender = async (request: APIRequestContext, person: Person, appName: string, messages: ReadonlyArray<Record<string, string>>) => {
  await register(request, person)
  const userAuth = await tokenOf(request, person)
  const auth = (await appWithToken(request, userAuth, appName)).appAuth
  const ids: Array<string> = []
  for (const m of messages) ids.push(await send(request, auth, m))
  for (const id of ids) await delivered(request, auth, id)
  return ids
}

test("find a sent message by number and by id, read its parts and timeline; another organisation's message is not found", async ({ page, request }) => {
  const person = newPerson("Mona")
  const [first = "", second = ""] = await sender(request, person, "Shop backend", [
    { to: "+4915112345601", text: "Your code is 4711", clientRef: "order-4711" },
    { to: "+4915112345602", text: "Your parcel is on its way" }
  ])
  const [foreign = ""] = await sender(request, newPerson("Oskar"), "Other backend", [{ to: "+4915112345601", text: "Not yours" }])

  await signIn(page, person)
  await page.getByRole("link", { name: "Messages" }).click()
  await expect(page.getByRole("heading", { name: "Messages", level: 1 })).toBeVisible()
  const found = page.getByRole("table", { name: "Messages found" }).getByRole("link", { name: /^Message / })
  await expect(found).toHaveCount(2)
  await expect(page.getByRole("link", { name: `Message ${foreign}` })).toHaveCount(0)
  await inspect(page, "messages")

  // By number, written as a person might: the same number as submitted.
  await page.getByLabel("Number").fill("+49 151 1234 5601")
  await page.getByRole("button", { name: "Search" }).click()
  await expect(found).toHaveCount(1)
  await expect(page.getByRole("link", { name: `Message ${first}` })).toBeVisible()
  await expect(page.getByRole("row", { name: new RegExp(first.slice(0, 8)) })).toContainText("delivered")

  // A number that is none: the server's reason next to the field.
  await page.getByLabel("Number").fill("12ab")
  await page.getByRole("button", { name: "Search" }).click()
  await expect(page.getByLabel("Number")).toHaveAccessibleDescription(/valid phone number/)
  await inspect(page, "messages-invalid-number")

  // Nothing matches: the empty state says so.
  await page.getByRole("button", { name: "Clear filters" }).click()
  await page.getByLabel("Client reference").fill("no such order")
  await page.getByRole("button", { name: "Search" }).click()
  await expect(page.getByText("No messages match these filters.")).toBeVisible()

  // By id, then open it.
  await page.getByRole("button", { name: "Clear filters" }).click()
  await page.getByLabel("Message id").fill(second)
  await page.getByRole("button", { name: "Search" }).click()
  await expect(found).toHaveCount(1)
  await page.getByRole("link", { name: `Message ${second}` }).click()

  await expect(page.getByRole("heading", { name: "Message", level: 1 })).toBeVisible()
  await expect(page.getByText(second)).toBeVisible()
  await expect(page.getByText("+4915112345602")).toBeVisible()
  await expect(page.getByText("Your parcel is on its way")).toBeVisible()
  const parts = page.getByRole("table", { name: "Parts" })
  await expect(parts.getByRole("row")).toHaveCount(2)
  await expect(parts.getByRole("row").nth(1)).toContainText("delivered")
  await expect(parts.getByRole("row").nth(1)).toContainText("demo")
  const timeline = page.getByLabel("Timeline")
  await expect(timeline.getByText("Accepted", { exact: true })).toBeVisible()
  await expect(timeline.getByText("Submitted to the SMSC")).toBeVisible()
  await expect(timeline.getByText("Delivery receipt")).toBeVisible()
  await expect(timeline.getByText("part 1 · link demo").first()).toBeVisible()
  await inspect(page, "message")

  // Phone width: nothing wider than the screen; the search screen too.
  await page.setViewportSize({ width: 375, height: 812 })
  await expect(page.getByText("Delivery receipt")).toBeVisible()
  expect(await page.evaluate("document.documentElement.scrollWidth")).toBeLessThanOrEqual(375)
  await snap(page, "message-375")
  await page.getByRole("link", { name: "Back to messages" }).click()
  await expect(found).toHaveCount(2)
  expect(await page.evaluate("document.documentElement.scrollWidth")).toBeLessThanOrEqual(375)
  await inspect(page, "messages-375")
  // On a phone the rarer filters wait behind a button.
  await expect(page.getByLabel("Client reference")).toBeHidden()
  await page.getByRole("button", { name: "More filters" }).click()
  await expect(page.getByLabel("Client reference")).toBeVisible()
  await page.setViewportSize({ width: 1280, height: 800 })

  // Another organisation's message, even by its address: not found.
  await page.goto(`${baseUrl()}/messages/${foreign}`)
  await expect(page.getByRole("alert")).toContainText("Message not found")
  await inspect(page, "message-not-found")
})
