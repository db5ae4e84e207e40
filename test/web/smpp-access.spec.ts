/**
 * SMPP access as an owner gives it: a system_id chosen on the app's page, the password shown once and then bound with
 * by a real SMPP client (npm `smpp`) against the gateway's SMPP server; a new password makes the old one fail; a
 * system_id another organisation holds is refused at the field; removing the access refuses binds; at 375 px.
 */
import smpp from "smpp"
import type { PDU } from "smpp"
import { baseUrl, expect, inspect, newPerson, register, signIn, snap, test, tokenOf } from "./fixtures.ts"

const smppPort = () => Number(process.env.SMSGW_WEB_SMPP_PORT ?? "0")

/** Binds a transceiver with these credentials; the bind's command_status (0: bound). */
const bindStatus = (systemId: string, password: string) =>
  new Promise<number>((resolve, reject) => {
    const session = new smpp.Session({ host: "127.0.0.1", port: smppPort() })
    session.on("error", reject)
    session.once("connect", () => {
      session.send(new smpp.PDU("bind_transceiver", { system_id: systemId, password, system_type: "", interface_version: 0x34 }), (resp: PDU) => {
        session.destroy()
        resolve(resp.command_status)
      })
    })
  })

test("an owner gives an app SMPP access: the password shown once binds, a new one replaces it, removal refuses binds", async ({ page, request }) => {
  const person = newPerson("Sami")
  await register(request, person)
  const auth = await tokenOf(request, person)
  const made = await request.post(`${baseUrl()}/v1/apps`, { headers: { authorization: auth }, data: { name: "Kannel client", allowList: [] } })
  expect(made.status(), await made.text()).toBe(201)
  const appId = ((await made.json()) as { id: string }).id
  // Another organisation already binds as "taken…".
  const other = newPerson("Tove")
  await register(request, other)
  const otherAuth = await tokenOf(request, other)
  const otherApp = await request.post(`${baseUrl()}/v1/apps`, { headers: { authorization: otherAuth }, data: { name: "Theirs", allowList: [] } })
  const taken = `tk${Math.random().toString(36).slice(2, 10)}`
  const takenSet = await request.put(`${baseUrl()}/v1/apps/${((await otherApp.json()) as { id: string }).id}/smpp`, {
    headers: { authorization: otherAuth },
    data: { systemId: taken }
  })
  expect(takenSet.status(), await takenSet.text()).toBe(200)

  await signIn(page, person)
  await page.goto(`${baseUrl()}/apps/${appId}`)
  const card = page.getByRole("region", { name: "SMPP access" })
  await expect(card).toContainText("No SMPP access yet")

  // A system_id another organisation holds: refused, said at the field.
  await card.getByLabel("system_id").fill(taken)
  await card.getByRole("button", { name: "Give SMPP access" }).click()
  await expect(card.getByText(/already|taken|another app/i)).toBeVisible()

  const systemId = `sa${Math.random().toString(36).slice(2, 10)}`
  await card.getByLabel("system_id").fill(systemId)
  await card.getByRole("button", { name: "Give SMPP access" }).click()
  const dialog = page.getByRole("dialog", { name: "Your SMPP password" })
  await expect(dialog.getByRole("alert")).toContainText("You will not see this password again")
  const password = await dialog.getByLabel("Password").inputValue()
  expect(password).toHaveLength(8)
  await inspect(page, "app-smpp-password-shown-once")
  await dialog.getByRole("button", { name: "I have copied it" }).click()
  await expect(card).toContainText(`Binds as ${systemId}`)
  await page.reload()
  await expect(page.getByText(password)).toHaveCount(0)

  expect(await bindStatus(systemId, password)).toBe(0)
  expect(await bindStatus(systemId, "wrong123")).not.toBe(0)

  // A new password: the old one no longer binds.
  await card.getByRole("button", { name: "New password" }).click()
  await page.getByRole("dialog", { name: "Make a new SMPP password?" }).getByRole("button", { name: "New password" }).click()
  const fresh = await dialog.getByLabel("Password").inputValue()
  expect(fresh).not.toBe(password)
  await dialog.getByRole("button", { name: "I have copied it" }).click()
  expect(await bindStatus(systemId, password)).not.toBe(0)
  expect(await bindStatus(systemId, fresh)).toBe(0)

  await page.setViewportSize({ width: 375, height: 812 })
  await card.scrollIntoViewIfNeeded()
  expect(await page.evaluate("document.documentElement.scrollWidth")).toBeLessThanOrEqual(375)
  await snap(page, "app-smpp-375")
  await page.setViewportSize({ width: 1280, height: 800 })

  await card.getByRole("button", { name: "Remove access" }).click()
  await page.getByRole("dialog", { name: "Remove SMPP access?" }).getByRole("button", { name: "Remove access" }).click()
  await expect(card).toContainText("No SMPP access yet")
  expect(await bindStatus(systemId, fresh)).not.toBe(0)
})
