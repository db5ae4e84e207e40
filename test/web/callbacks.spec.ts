/**
 * An app's status callbacks as an owner and a viewer use them, against a real receiver on 127.0.0.1 (the web tests'
 * gateway allows loopback callbacks and gives a failing one a 45 s window; test/web/global-setup.ts): a bad URL named
 * under its field; the first URL's signing secret shown once, copied, signing what the receiver gets, and gone after
 * a reload; a message whose callback the receiver refuses (503) listed with its error until it is replayed and
 * delivered, and the list says everything was delivered; the secret rotated behind a confirmation; the URL removed.
 * Then dead callbacks replayed with the keyboard alone at 375 px, one selected and the rest with "Replay all dead";
 * and a viewer who sees the settings read-only, no failing callbacks, and whose forced API calls are refused.
 */
import type { APIRequestContext, Locator, Page } from "@playwright/test"
import { Effect, Exit, Scope } from "effect"
import { verifySignature } from "../../src/domain/Callback.ts"
import { startReceiver } from "../fixtures/Callbacks.ts"
import type { Received } from "../fixtures/Callbacks.ts"
import { appWithToken, baseUrl, expect, inspect, joinOrganisation, newPerson, register, signIn, snap, test, tokenOf } from "./fixtures.ts"

/** A receiver answering 503 until told otherwise; what it answered with 200 is kept apart. */
const openReceiver = async () => {
  let status = 503
  const taken: Array<Received> = []
  const scope = Effect.runSync(Scope.make())
  const receiver = await Effect.runPromise(
    startReceiver((request, response) => {
      if (status === 200) taken.push(request)
      response.statusCode = status
      response.end(status === 200 ? "ok" : "down")
    }).pipe(Scope.provide(scope))
  )
  return {
    url: receiver.url,
    requests: receiver.requests,
    taken,
    answer: (next: 200 | 503) => {
      status = next
    },
    close: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

const send = async (request: APIRequestContext, appAuth: string, text: string) => {
  const sent = await request.post(`${baseUrl()}/v1/messages`, {
    headers: { authorization: appAuth },
    data: { to: "+4915112345678", from: "ACME", text }
  })
  expect(sent.status(), await sent.text()).toBe(202)
  return ((await sent.json()) as { id: string }).id
}

const table = (page: Page, state: "Failing" | "Dead") => page.getByRole("region", { name: `${state} callbacks table` })

const nowSeconds = () => Math.floor(Date.now() / 1000)

/** Whether the keyboard's focus is on `target` now. */
const focused = (target: Locator) => expect(target).toBeFocused({ timeout: 200 }).then(() => true, () => false)

test("an owner sets a callback URL, keeps the secret shown once, replays a refused callback delivered, rotates and removes", async ({ page, request }) => {
  // A receiver, a message to its receipt, the callback's failure and replay, a rotation: ~35 s alone on a 2-core
  // machine, 90 s beside another spec.
  test.setTimeout(120_000)
  const receiver = await openReceiver()
  try {
    const owner = newPerson("Cleo")
    await register(request, owner)
    const { appId, appAuth } = await appWithToken(request, await tokenOf(request, owner), "Shop")
    await page.context().grantPermissions(["clipboard-read", "clipboard-write"], { origin: baseUrl() })
    await signIn(page, owner)
    await page.goto(`${baseUrl()}/apps/${appId}`)
    await expect(page.getByRole("heading", { level: 1, name: "Shop" })).toBeVisible()
    const settings = page.getByRole("region", { name: "Status callbacks" })
    await expect(settings.getByText("No signing secret yet")).toBeVisible()
    await expect(page.getByText("Nothing is failing: every callback tried so far was delivered.")).toBeVisible()

    // The server's word on a bad URL, under the field.
    await settings.getByLabel("Callback URL").fill("ftp://shop.example.com/sms")
    await settings.getByRole("button", { name: "Save callback settings" }).click()
    await expect(settings.getByLabel("Callback URL")).toHaveAccessibleDescription(/must be an http or https URL/)
    await inspect(page, "app-callbacks-url-error")

    // The first URL makes the secret: shown once, copied.
    const url = `${receiver.url}/sms/status`
    await settings.getByLabel("Callback URL").fill(url)
    await settings.getByRole("radio", { name: "The final status only" }).check()
    await settings.getByRole("button", { name: "Save callback settings" }).click()
    const shown = page.getByRole("dialog", { name: "Your callback signing secret" })
    await expect(shown.getByText("You will not see this secret again")).toBeVisible()
    const secret = await shown.getByLabel("Signing secret").inputValue()
    expect(secret).toMatch(/^whsec_/)
    await shown.getByRole("button", { name: "Copy the secret" }).click()
    await expect(shown.getByRole("button", { name: "Copied", exact: true })).toBeVisible()
    expect(await page.evaluate("navigator.clipboard.readText()")).toBe(secret)
    await inspect(page, "app-callback-secret-shown-once")
    await shown.getByRole("button", { name: "I have copied it" }).click()
    await expect(shown).toBeHidden()
    await expect(settings.getByText(`${secret.slice(0, 12)}…`)).toBeVisible()
    expect(await page.content()).not.toContain(secret)
    // Not on a reload either: only the prefix.
    await page.reload()
    await expect(settings.getByLabel("Callback URL")).toHaveValue(url)
    await expect(settings.getByText(`${secret.slice(0, 12)}…`)).toBeVisible()
    expect(await page.content()).not.toContain(secret)

    // The receiver refuses the message's callback: it is listed, failing, with why.
    const messageId = await send(request, appAuth, "Your order has shipped")
    const failing = table(page, "Failing")
    await expect(failing.getByRole("row").filter({ hasText: "HTTP 503" })).toHaveCount(1, { timeout: 20_000 })
    const row = failing.getByRole("row").filter({ hasText: "HTTP 503" })
    await expect(row.getByRole("link", { name: `Message ${messageId}` })).toBeVisible()
    await expect(row).toContainText(url)
    await expect(row).toContainText("reports delivered")
    await expect(row).toContainText(/in \d+ seconds|in 1 minute/)
    await inspect(page, "app-callbacks-failing")
    // What the receiver got was signed with the secret shown once.
    const refused = receiver.requests[0]
    expect(refused?.path).toBe("/sms/status")
    expect(verifySignature(secret, String(refused?.headers["smsgw-signature"]), refused?.body ?? "", nowSeconds())).toBe(true)

    // The receiver is back; the owner replays the selected callback, and it is delivered.
    receiver.answer(200)
    await row.getByRole("checkbox", { name: `Select the callback of message ${messageId}` }).check()
    await page.getByRole("button", { name: "Replay 1 selected" }).click()
    await expect(page.getByRole("status").filter({ hasText: "1 callback replayed" })).toBeVisible()
    await expect(page.getByText("Nothing is failing: every callback tried so far was delivered.")).toBeVisible()
    await expect.poll(() => receiver.taken.length, { message: "the replayed callback delivered" }).toBe(1)
    expect(JSON.parse(receiver.taken[0]?.body ?? "{}")).toMatchObject({ messageId, status: "delivered" })
    await inspect(page, "app-callbacks-replayed")

    // Rotation: confirmed first, the new secret shown once with the day the old one still signs.
    await settings.getByRole("button", { name: "Rotate secret" }).click()
    const confirm = page.getByRole("dialog", { name: "Rotate the signing secret?" })
    await expect(confirm).toContainText("For 24 hours")
    await inspect(page, "app-callback-rotate-confirm")
    await confirm.getByRole("button", { name: "Rotate secret" }).click()
    const rotated = page.getByRole("dialog", { name: "Your new signing secret" })
    await expect(rotated.getByText("The previous secret still signs every callback until")).toBeVisible()
    const next = await rotated.getByLabel("Signing secret").inputValue()
    expect(next).toMatch(/^whsec_/)
    expect(next).not.toBe(secret)
    // The same dialog as the first secret's: a picture only.
    await snap(page, "app-callback-secret-rotated")
    await rotated.getByRole("button", { name: "I have copied it" }).click()
    await expect(settings.getByText(`${next.slice(0, 12)}…`)).toBeVisible()
    expect(await page.content()).not.toContain(next)

    // Every move from now on, then no URL at all.
    await settings.getByRole("radio", { name: "Every status change" }).check()
    await settings.getByRole("button", { name: "Save callback settings" }).click()
    await expect(settings.getByRole("status").filter({ hasText: "Saved" })).toBeVisible()
    await page.reload()
    await expect(settings.getByRole("radio", { name: "Every status change" })).toBeChecked()
    await settings.getByRole("button", { name: "Remove URL" }).click()
    await page.getByRole("dialog", { name: "Remove the callback URL?" }).getByRole("button", { name: "Remove URL" }).click()
    await expect(settings.getByRole("button", { name: "Remove URL" })).toHaveCount(0)
    await expect(settings.getByLabel("Callback URL")).toHaveValue("")
    const after = await request.get(`${baseUrl()}/v1/apps/${appId}`, { headers: { authorization: await tokenOf(request, owner) } })
    expect(((await after.json()) as { callbackUrl?: string }).callbackUrl).toBeUndefined()
  } finally {
    await receiver.close()
  }
})

test("dead callbacks are replayed with the keyboard alone at 375 px", async ({ page, request }) => {
  // Two callbacks must outlive their 45 s retry window before they are dead.
  test.setTimeout(120_000)
  const receiver = await openReceiver()
  try {
    const owner = newPerson("Kit")
    await register(request, owner)
    const userAuth = await tokenOf(request, owner)
    const { appId, appAuth } = await appWithToken(request, userAuth, "Keyboard shop")
    const set = await request.patch(`${baseUrl()}/v1/apps/${appId}`, {
      headers: { authorization: userAuth },
      data: { callbackUrl: `${receiver.url}/hooks`, callbackEvents: "final" }
    })
    expect(set.status(), await set.text()).toBe(200)
    const first = await send(request, appAuth, "first")
    const second = await send(request, appAuth, "second")

    await page.setViewportSize({ width: 375, height: 740 })
    await signIn(page, owner)
    await page.goto(`${baseUrl()}/apps/${appId}`)
    const failing = table(page, "Failing")
    await expect(failing.getByRole("row").filter({ hasText: "HTTP 503" })).toHaveCount(2, { timeout: 20_000 })
    // Nothing wider than the screen: the table scrolls inside its own region.
    expect(await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")).toBe(true)
    await inspect(page, "app-callbacks-375px")
    // A row leads to its message's page, and Back to the list.
    await failing.getByRole("link", { name: `Message ${first}` }).click()
    await expect(page.getByRole("heading", { level: 1, name: "Message" })).toBeVisible()
    await expect(page.getByText(first, { exact: true })).toBeVisible()
    await page.goBack()
    await expect(failing.getByRole("row").filter({ hasText: "HTTP 503" })).toHaveCount(2)

    // To the dead tab from the failing one, with the arrow key.
    await page.getByRole("tab", { name: "Failing" }).focus()
    await page.keyboard.press("ArrowRight")
    await expect(page.getByRole("tab", { name: "Dead" })).toHaveAttribute("aria-selected", "true")
    const dead = table(page, "Dead")
    await expect(dead.getByRole("row").filter({ hasText: "HTTP 503" })).toHaveCount(2, { timeout: 75_000 })
    await expect(dead).toContainText(/seconds? ago|1 minute ago/)
    await inspect(page, "app-callbacks-dead-375px")
    receiver.answer(200)

    // One selected with the space bar, replayed from its button.
    await dead.getByRole("checkbox", { name: `Select the callback of message ${first}` }).focus()
    await page.keyboard.press("Space")
    await expect(dead.getByRole("checkbox", { name: `Select the callback of message ${first}` })).toBeChecked()
    const replaySelected = page.getByRole("button", { name: "Replay 1 selected" })
    for (let i = 0; i < 6; i++) {
      await page.keyboard.press("Shift+Tab")
      if (await focused(replaySelected)) break
    }
    await expect(replaySelected).toBeFocused()
    await page.keyboard.press("Enter")
    await expect(page.getByRole("status").filter({ hasText: "1 callback replayed" })).toBeVisible()
    await expect(dead.getByRole("row").filter({ hasText: "HTTP 503" })).toHaveCount(1)

    // The rest with "Replay all dead", confirmed in its dialog.
    await page.getByRole("button", { name: "Replay all dead" }).focus()
    await page.keyboard.press("Enter")
    const confirm = page.getByRole("dialog", { name: "Replay every dead callback?" })
    await expect(confirm).toBeVisible()
    const replayAll = confirm.getByRole("button", { name: "Replay all dead" })
    for (let i = 0; i < 4; i++) {
      if (await focused(replayAll)) break
      await page.keyboard.press("Tab")
    }
    await expect(replayAll).toBeFocused()
    await inspect(page, "app-callbacks-replay-all-confirm-375px")
    await page.keyboard.press("Enter")
    await expect(confirm).toBeHidden()
    await expect(page.getByText("No dead callback: none was given up on")).toBeVisible()
    await expect.poll(() => receiver.taken.map((r) => (JSON.parse(r.body) as { messageId: string }).messageId).sort(), {
      message: "both replayed callbacks delivered"
    }).toEqual([first, second].sort())
    await inspect(page, "app-callbacks-dead-empty-375px")
  } finally {
    await receiver.close()
  }
})

test("a viewer reads the callback settings without controls and sees no failing callbacks; the API refuses them", async ({ page, request }) => {
  // A mailed invitation and two sessions.
  test.setTimeout(120_000)
  const owner = newPerson("Olga")
  const viewer = newPerson("Vic")
  await register(request, owner)
  const ownerAuth = await tokenOf(request, owner)
  const { appId } = await appWithToken(request, ownerAuth, "Read only shop")
  const set = await request.patch(`${baseUrl()}/v1/apps/${appId}`, {
    headers: { authorization: ownerAuth },
    data: { callbackUrl: "https://shop.example.com/sms/status", callbackEvents: "all" }
  })
  expect(set.status(), await set.text()).toBe(200)
  const prefix = ((await set.json()) as { callbackSecretPrefix: string }).callbackSecretPrefix
  await joinOrganisation(request, ownerAuth, viewer, "viewer")

  await signIn(page, viewer)
  await page.goto(`${baseUrl()}/apps/${appId}`)
  await expect(page.getByRole("heading", { level: 1, name: "Read only shop" })).toBeVisible()
  await expect(page.getByRole("row", { name: /Status callbacks/ })).toContainText("https://shop.example.com/sms/status")
  await expect(page.getByRole("row", { name: /Status callbacks/ })).toContainText("every status change")
  await expect(page.getByRole("row", { name: /Signing secret/ })).toContainText(`${prefix}…`)
  await expect(page.getByLabel("Callback URL")).toHaveCount(0)
  await expect(page.getByRole("button", { name: /Save callback settings|Rotate secret|Remove URL|Replay/ })).toHaveCount(0)
  await expect(page.getByRole("heading", { name: "Failing and dead callbacks" })).toHaveCount(0)
  await inspect(page, "app-callbacks-viewer")

  // Forced through the API, the same refusals.
  const viewerAuth = await tokenOf(request, viewer)
  const headers = { authorization: viewerAuth }
  expect((await request.patch(`${baseUrl()}/v1/apps/${appId}`, { headers, data: { callbackUrl: null } })).status()).toBe(403)
  expect((await request.post(`${baseUrl()}/v1/apps/${appId}/callback-secret`, { headers })).status()).toBe(403)
  expect((await request.get(`${baseUrl()}/v1/apps/${appId}/callbacks`, { headers })).status()).toBe(403)
  expect((await request.post(`${baseUrl()}/v1/apps/${appId}/callbacks/replay`, { headers, data: { all: true } })).status()).toBe(403)
})
