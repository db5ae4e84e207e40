/**
 * The operators' screens as an operator uses them: the contact policy's rule chain, a rule edited with the server's
 * refusal shown next to the field, a message tested, two versions compared; a blacklist filled from a file and
 * searched; a link disabled and enabled, a pool's weight changed, a number's route found. A person who is not an
 * operator reaches none of it, and the API refuses when forced. The gateway is shared with other specs: everything
 * here is scoped to names and an organisation id of this test's own, and removed at the end.
 */
import type { APIRequestContext } from "@playwright/test"
import { baseUrl, expect, inspect, newPerson, operatorPerson, register, signIn, snap, test, tokenOf } from "./fixtures.ts"

const suffix = () => `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`

interface Rule {
  readonly id: string
  readonly [key: string]: unknown
}
interface List {
  readonly name: string
  readonly [key: string]: unknown
}
interface Policy {
  readonly version: number
  readonly rules: ReadonlyArray<Rule>
  readonly blacklists?: ReadonlyArray<List>
}

const readPolicy = async (request: APIRequestContext, authorization: string): Promise<Policy> => {
  const response = await request.get(`${baseUrl()}/v1/policies`, { headers: { authorization } })
  expect(response.status()).toBe(200)
  return (await response.json()) as Policy
}

/** Replaces the policy with `change(current)`, retrying when another spec changed it meanwhile. */
const changePolicy = async (
  request: APIRequestContext,
  authorization: string,
  change: (p: Policy) => { rules: ReadonlyArray<Rule>; blacklists: ReadonlyArray<List> },
  note: string
): Promise<Policy> => {
  for (let attempt = 0; attempt < 5; attempt++) {
    const current = await readPolicy(request, authorization)
    const response = await request.put(`${baseUrl()}/v1/policies`, {
      headers: { authorization },
      data: { ...change(current), expectedVersion: current.version, note }
    })
    if (response.status() === 200) return (await response.json()) as Policy
    expect(response.status(), await response.text()).toBe(409)
  }
  throw new Error("the policy kept changing")
}

test("the operator edits a rule and sees the server's refusal next to the field, tests a message and compares versions", async ({ page, request }) => {
  // A long journey (four policy versions, a test message, a comparison): ~50 s on a 2-core machine, as long as the
  // campaign journeys, which have the same bound.
  test.setTimeout(120_000)
  const auth = await tokenOf(request, operatorPerson)
  const id = suffix()
  const org = `org_web_${id}`
  const list = `web-dnd-${id}`
  const listRule = `web-list-${id}`
  const capRule = `web-cap-${id}`
  const mine = (p: Policy) => ({
    rules: p.rules.filter((r) => r.id !== listRule && r.id !== capRule),
    blacklists: (p.blacklists ?? []).filter((l) => l.name !== list)
  })
  const setUp = await changePolicy(request, auth, (p) => ({
    rules: [...mine(p).rules, { id: listRule, scope: { org }, type: "blacklist", lists: [list] }, {
      id: capRule,
      scope: { org },
      type: "frequency_cap",
      max: 3,
      window: "day"
    }],
    blacklists: [...mine(p).blacklists, { name: list, org, object: null }]
  }), "web test: rules of its own organisation")
  const added = await request.post(`${baseUrl()}/v1/blacklists/${list}/entries`, {
    headers: { authorization: auth },
    data: { numbers: ["+4915112340001"] }
  })
  expect(added.status()).toBe(200)

  try {
    await signIn(page, operatorPerson)
    const nav = page.getByRole("navigation", { name: "Main navigation" })
    await nav.getByRole("link", { name: "Contact policy" }).click()
    await expect(page.getByRole("heading", { name: "Contact policy", level: 1 })).toBeVisible()
    const flow = page.getByRole("list", { name: "Rules in the order messages meet them" })
    await expect(flow.getByRole("listitem", { name: `Rule ${capRule}` })).toContainText("At most 3 per day")
    await expect(flow.getByRole("listitem", { name: `Rule ${listRule}` })).toContainText("let through")
    await inspect(page, "policy-flow")
    // On a phone: the flow and the tester one above the other, nothing cut off.
    await page.setViewportSize({ width: 375, height: 800 })
    await expect(flow.getByRole("listitem", { name: `Rule ${capRule}` })).toBeInViewport({ ratio: 0.5 })
    await inspect(page, "policy-flow-375")
    await page.setViewportSize({ width: 1280, height: 720 })

    // Test this message: the organisation's list refuses the number; the flow marks the rule that decided.
    const tester = page.getByRole("form", { name: "Test this message" })
    await tester.getByLabel("To").fill("+4915112340001")
    await tester.getByLabel("Text").fill("Hello")
    await tester.getByLabel("Organisation id").fill(org)
    await tester.getByRole("button", { name: "Test", exact: true }).click()
    await expect(tester.getByRole("status")).toContainText(`Refused by ${listRule} (blacklisted)`)
    await expect(flow.getByRole("listitem", { name: `Rule ${listRule}` })).toContainText("Test: refused it")
    await expect(flow.getByRole("listitem", { name: `Rule ${capRule}` })).toContainText("Test: not reached")
    await inspect(page, "policy-test")

    // Edit: a cap of 0 is refused by the server, its message next to the field; 2 is saved as a new version.
    await page.getByRole("link", { name: "Edit rules" }).click()
    const rule = page.getByRole("group", { name: `Rule ${capRule}` })
    const max = rule.getByLabel("Max messages")
    await max.fill("0")
    await page.getByRole("button", { name: `Save as version ${setUp.version + 1}` }).click()
    await expect(max).toHaveAccessibleDescription(/1 and 10000|between|greater/i)
    await expect(page.getByRole("alert").first()).toContainText("not saved")
    await inspect(page, "policy-edit-refused")
    await max.fill("2")
    await page.getByLabel("What is this change for?").fill("lower the web test's cap")
    await page.getByRole("button", { name: `Save as version ${setUp.version + 1}` }).click()
    await expect(page.getByRole("heading", { name: "Contact policy", level: 1 })).toBeVisible()
    await expect(flow.getByRole("listitem", { name: `Rule ${capRule}` })).toContainText("At most 2 per day")

    // Versions: the two compared, the change named field by field.
    await page.getByRole("link", { name: "Versions" }).click()
    await expect(page.getByRole("cell", { name: "lower the web test's cap" })).toBeVisible()
    await page.getByRole("radio", { name: `Compare from version ${setUp.version}`, exact: true }).check()
    await page.getByRole("radio", { name: `Compare to version ${setUp.version + 1}`, exact: true }).check()
    const diff = page.getByRole("region", { name: `Changes from version ${setUp.version} to version ${setUp.version + 1}` })
    await expect(diff).toContainText(`Rule ${capRule}`)
    await expect(diff.getByRole("listitem").filter({ hasText: "max" }).last()).toContainText("3 → 2")
    await inspect(page, "policy-versions")

    // Blacklists: numbers from a file, then found by their start.
    await nav.getByRole("link", { name: "Blacklists" }).click()
    await page.getByRole("button", { name: `Open ${list}` }).click()
    const chooser = page.waitForEvent("filechooser")
    await page.getByLabel("File of numbers").click()
    await (await chooser).setFiles({
      name: "optouts.csv",
      mimeType: "text/csv",
      buffer: Buffer.from("phone,name\n+4915112340002,Ann\n+4915112340003,Bob\nnot a phone,x\n")
    })
    await page.getByRole("button", { name: "Upload" }).click()
    await expect(page.getByRole("status").filter({ hasText: "listed" })).toContainText("2 number(s) listed")
    await expect(page.getByRole("status").filter({ hasText: "listed" })).toContainText('line 4 "not a phone,x"')
    await page.getByLabel("Number starts with").fill("+49151123400")
    await page.getByRole("button", { name: "Search" }).click()
    const numbers = page.getByRole("table", { name: `Numbers of ${list}` })
    await expect(numbers.getByRole("row")).toHaveCount(4)
    await expect(numbers).toContainText("+4915112340003")
    await inspect(page, "blacklists")
  } finally {
    await changePolicy(request, auth, mine, "web test: its rules removed")
  }
})

test("the operator disables and enables a link, changes a pool's weight and finds a number's route", async ({ page, request }) => {
  const auth = await tokenOf(request, operatorPerson)
  const id = suffix()
  const link = `web-${id}`
  const pool = `web-pool-${id}`
  // A link of this test's own (nothing listens on its port: it stays unbound), in no route: other specs' traffic is
  // not affected.
  const created = await request.post(`${baseUrl()}/v1/admin/links`, {
    headers: { authorization: auth },
    data: { id: link, host: "127.0.0.1", port: 9, systemId: "web", password: "web", tps: 10 }
  })
  expect(created.status(), await created.text()).toBe(201)
  const pooled = await request.post(`${baseUrl()}/v1/admin/pools`, {
    headers: { authorization: auth },
    data: { id: pool, members: [{ link, weight: 2 }] }
  })
  expect(pooled.status(), await pooled.text()).toBe(201)
  try {
    await signIn(page, operatorPerson)
    const nav = page.getByRole("navigation", { name: "Main navigation" })
    await nav.getByRole("link", { name: "Links" }).click()
    const links = page.getByRole("table", { name: "Links and their live state" })
    const row = links.getByRole("row").filter({ hasText: link })
    await expect(links.getByRole("row").filter({ hasText: "demo" }).first()).toContainText("bound")
    await row.getByRole("button", { name: `Disable ${link}` }).click()
    await expect(row.getByRole("button", { name: `Enable ${link}` })).toBeVisible()
    await expect(row).toContainText("Disabled")
    await inspect(page, "operations-links")
    await row.getByRole("button", { name: `Enable ${link}` }).click()
    await expect(row.getByRole("button", { name: `Disable ${link}` })).toBeVisible()
    await expect(row).toContainText(/unbound|Not answering|…/)

    await nav.getByRole("link", { name: "Pools" }).click()
    const weight = page.getByLabel(`Weight of ${link} in ${pool}`)
    await expect(weight).toHaveValue("2")
    await weight.fill("5")
    await page.getByRole("button", { name: `Save weights of ${pool}` }).click()
    await expect(page.getByRole("button", { name: `Save weights of ${pool}` })).toBeDisabled()
    const saved = await request.get(`${baseUrl()}/v1/admin/pools/${pool}`, { headers: { authorization: auth } })
    expect(await saved.json()).toMatchObject({ members: [{ link, weight: 5 }] })
    await inspect(page, "operations-pools")

    await nav.getByRole("link", { name: "Routes" }).click()
    const tester = page.getByRole("form", { name: "Which route would this number take" })
    await tester.getByLabel("Number").fill("+49 151 1234 5678")
    await tester.getByRole("button", { name: "Find the route" }).click()
    await expect(tester.getByRole("status")).toContainText("+4915112345678 (DE) goes to")
    await inspect(page, "operations-routes")
  } finally {
    await request.delete(`${baseUrl()}/v1/admin/pools/${pool}`, { headers: { authorization: auth } })
    await request.delete(`${baseUrl()}/v1/admin/links/${link}`, { headers: { authorization: auth } })
  }
})

test("a person who is not an operator cannot reach these screens, and the API refuses when forced", async ({ page, request }) => {
  const person = newPerson("Nora")
  await register(request, person)
  await signIn(page, person)
  const nav = page.getByRole("navigation", { name: "Main navigation" })
  await expect(nav.getByRole("link", { name: "Contact policy" })).toHaveCount(0)
  await expect(nav.getByRole("link", { name: "Links" })).toHaveCount(0)
  for (const path of ["/policy", "/policy/edit", "/policy/versions", "/operations/links", "/operations/pools", "/operations/routes"]) {
    await page.goto(`${baseUrl()}${path}`)
    await expect(page.getByRole("alert")).toContainText("Not allowed")
  }
  await snap(page, "operations-forbidden")
  // An owner manages the blacklists of their own organisation only: here, none.
  await page.goto(`${baseUrl()}/policy/blacklists`)
  await expect(page.getByText("No blacklist you may manage")).toBeVisible()

  const authorization = await tokenOf(request, person)
  const refused = [
    await request.get(`${baseUrl()}/v1/policies`, { headers: { authorization } }),
    await request.get(`${baseUrl()}/v1/policies/stats`, { headers: { authorization } }),
    await request.get(`${baseUrl()}/v1/policies/versions`, { headers: { authorization } }),
    await request.post(`${baseUrl()}/v1/policies/test`, { headers: { authorization }, data: { to: "+4915112345678", text: "hi" } }),
    await request.put(`${baseUrl()}/v1/policies`, { headers: { authorization }, data: { rules: [] } }),
    await request.get(`${baseUrl()}/v1/admin/state`, { headers: { authorization } }),
    await request.post(`${baseUrl()}/v1/admin/links/demo/disable`, { headers: { authorization } }),
    await request.post(`${baseUrl()}/v1/admin/links/demo/rebind`, { headers: { authorization } }),
    await request.patch(`${baseUrl()}/v1/admin/pools/any/weights`, { headers: { authorization }, data: { weights: { demo: 1 } } }),
    await request.post(`${baseUrl()}/v1/admin/routes/test`, { headers: { authorization }, data: { to: "+4915112345678" } })
  ]
  expect(refused.map((r) => r.status())).toEqual(refused.map(() => 403))
})
