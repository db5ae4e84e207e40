/**
 * What every browser test starts from: the gateway's address, a console that must stay free of errors, people
 * registered through the API (each test its own organisation), signing in through the UI, screenshots of every
 * screen under test-results/screens/, an accessibility check (axe: no serious or critical violation), and the mails
 * the gateway sent.
 */
import AxeBuilder from "@axe-core/playwright"
import { expect, test as base } from "@playwright/test"
import type { APIRequestContext, Page } from "@playwright/test"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { operator } from "./operator.ts"

export { expect }

export interface Person {
  readonly name: string
  readonly email: string
  readonly password: string
  readonly organisation: string
}

let counter = 0
/** A person no other test uses: unique email and organisation. */
export const newPerson = (label: string): Person => {
  const id = `${Date.now().toString(36)}${(++counter).toString(36)}${Math.random().toString(36).slice(2, 6)}`
  return {
    name: `${label} ${id}`,
    email: `${label.toLowerCase().replace(/\W+/g, ".")}.${id}@example.test`,
    password: `correct horse ${id} battery`,
    organisation: `${label} Org ${id}`
  }
}

export const baseUrl = (): string => {
  const url = process.env.SMSGW_WEB_BASE_URL
  if (url === undefined) throw new Error("SMSGW_WEB_BASE_URL is not set: run through `npx playwright test` (global setup)")
  return url
}

/** The SMSC simulator's control endpoint (faults, `POST /mo` to play a handset). */
export const simControl = (): string => {
  const url = process.env.SMSGW_WEB_SIM_CONTROL
  if (url === undefined) throw new Error("SMSGW_WEB_SIM_CONTROL is not set: run through `npx playwright test` (global setup)")
  return url
}

/** Registers through the API (the person owns a new organisation). */
export const register = async (request: APIRequestContext, person: Person) => {
  const response = await request.post(`${baseUrl()}/v1/auth/register`, {
    data: { name: person.name, email: person.email, password: person.password, organisation: person.organisation }
  })
  expect(response.status(), await response.text()).toBe(201)
  return (await response.json()) as { user: { id: string }; organisation: { id: string } }
}

/** An access token for API calls a test makes besides the browser (setting up data, forcing a refused call). */
export const tokenOf = async (request: APIRequestContext, person: { readonly email: string; readonly password: string }) => {
  const response = await request.post(`${baseUrl()}/v1/auth/token`, { data: { email: person.email, password: person.password } })
  expect(response.status(), await response.text()).toBe(200)
  return `Bearer ${((await response.json()) as { accessToken: string }).accessToken}`
}

export const operatorPerson = { ...operator, name: "Olga Operator", organisation: "" }

/** Signs in through the sign-in screen, as a person would. */
export const signIn = async (page: Page, person: { readonly email: string; readonly password: string }) => {
  await page.goto(`${baseUrl()}/`)
  await page.getByLabel("Email").fill(person.email)
  await page.getByRole("textbox", { name: "Password", exact: true }).fill(person.password)
  await page.getByRole("button", { name: "Sign in" }).click()
  await expect(page.getByRole("button", { name: /Account menu/ })).toBeVisible()
}

/** A full-page screenshot saved as test-results/screens/<name>.png. */
export const snap = async (page: Page, name: string) => {
  await page.screenshot({ path: join("test-results", "screens", `${name}.png`), fullPage: true })
}

/** What `expectAccessible` reads of the page's animations (Web Animations API). */
interface PageDocument {
  getAnimations(): ReadonlyArray<{
    readonly playState: string
    readonly effect: { getComputedTiming(): { readonly iterations?: number } } | null
  }>
}

/** axe-core on the current screen: no serious or critical violation (WCAG 2.1 A/AA rules). */
export const expectAccessible = async (page: Page) => {
  // Judged as the person sees it once the screen is still: a dialog fading in or a button's pressed state measured
  // mid-transition reads as low contrast (seen in CI). Endless animations (loaders) are not waited for.
  await page.waitForFunction(() => {
    // This runs in the page (the test's own types have no DOM); a function, not a string: the page's CSP forbids eval.
    const doc = (globalThis as unknown as { readonly document: PageDocument }).document
    return doc.getAnimations().every((a) => a.playState !== "running" || a.effect?.getComputedTiming().iterations === Infinity)
  })
  const results = await new AxeBuilder({ page }).withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]).analyze()
  const serious = results.violations.filter((v) => v.impact === "serious" || v.impact === "critical")
  expect(serious.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join(", ")})`)).toEqual([])
}

/** Screenshot and accessibility check of the screen as it is now. */
export const inspect = async (page: Page, name: string) => {
  await snap(page, name)
  await expectAccessible(page)
}

interface Mail {
  readonly to: string
  readonly subject: string
  readonly text: string
}

const decode = (raw: string): Mail => {
  const [head = "", ...rest] = raw.split(/\r?\n\r?\n/)
  let body = rest.join("\n\n")
  if (/content-transfer-encoding:\s*quoted-printable/i.test(head)) {
    body = body.replace(/=\r?\n/g, "").replace(/=([0-9A-F]{2})/gi, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)))
    body = Buffer.from(body, "latin1").toString("utf8")
  } else if (/content-transfer-encoding:\s*base64/i.test(head)) {
    body = Buffer.from(body.replace(/\s+/g, ""), "base64").toString("utf8")
  }
  const header = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, "im").exec(head)?.[1]?.trim() ?? ""
  return { to: header("To"), subject: header("Subject"), text: body }
}

/** The first mail to `to` whose subject contains `subject`, waiting for it. */
export const waitForMail = async (to: string, subject: string): Promise<Mail> => {
  const dir = process.env.SMSGW_WEB_MAIL_DIR ?? ""
  let found: Mail | undefined
  await expect.poll(() => {
    found = readdirSync(dir).map((f) => decode(readFileSync(join(dir, f), "utf8")))
      .find((m) => m.to.includes(to) && m.subject.includes(subject))
    return found !== undefined
  }, { message: `a mail to ${to} about "${subject}"`, timeout: 15_000 }).toBe(true)
  return found as Mail
}

/**
 * Chromium logs every refused request (4xx) as a console error; the screens show those refusals to the user, which
 * is what the tests check. Anything else in the console (script errors, React warnings, 5xx) fails the test.
 */
const refusal = /^Failed to load resource: the server responded with a status of 4\d\d/

/** Every test: console errors and uncaught page errors fail it. */
/** A new app of the person's organisation and the token its backend sends with (an API key exchanged). */
export const appWithToken = async (request: APIRequestContext, userAuth: string, name: string) => {
  const app = await request.post(`${baseUrl()}/v1/apps`, { headers: { authorization: userAuth }, data: { name, allowList: [] } })
  expect(app.status(), await app.text()).toBe(201)
  const appId = ((await app.json()) as { id: string }).id
  const key = await request.post(`${baseUrl()}/v1/apps/${appId}/keys`, { headers: { authorization: userAuth }, data: {} })
  expect(key.status(), await key.text()).toBe(201)
  const token = await request.post(`${baseUrl()}/v1/auth/token`, { data: { appId, apiKey: ((await key.json()) as { key: string }).key } })
  expect(token.status(), await token.text()).toBe(200)
  return { appId, appAuth: `Bearer ${((await token.json()) as { accessToken: string }).accessToken}` }
}

/** Invites `person` into the organisation of `auth` with `role`; they register with the mailed token. */
export const joinOrganisation = async (request: APIRequestContext, auth: string, person: Person, role: string) => {
  const invited = await request.post(`${baseUrl()}/v1/members`, { headers: { authorization: auth }, data: { email: person.email, role } })
  expect(invited.status(), await invited.text()).toBe(202)
  const mail = await waitForMail(person.email, "")
  const invitationToken = /#token=([^\s"<>]+)/.exec(mail.text)?.[1]
  expect(invitationToken, mail.text).toBeDefined()
  const registered = await request.post(`${baseUrl()}/v1/auth/register`, {
    data: { name: person.name, email: person.email, password: person.password, invitationToken }
  })
  expect(registered.status(), await registered.text()).toBe(201)
}

export const test = base.extend<{ consoleErrors: Array<string> }>({
  consoleErrors: [async ({ page }, use) => {
    const errors: Array<string> = []
    page.on("console", (message) => {
      if (message.type() === "error" && !refusal.test(message.text())) errors.push(message.text())
    })
    page.on("pageerror", (error) => errors.push(error.message))
    await use(errors)
    expect(errors, "console errors").toEqual([])
  }, { auto: true }]
})
