/**
 * The Message Center's speed budget: the compressed JavaScript a first visit to a screen loads (from Vite's
 * manifest: the entry, the screen's chunk and everything they import), and how long a click takes to show a screen
 * already visited (data in the query cache), measured in Chromium against a real gateway (test/web/global-setup.ts).
 * `npm run bench:web`; results are printed as a Markdown row for bench/RESULTS.md.
 */
import { chromium } from "@playwright/test"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { gzipSync } from "node:zlib"
import globalSetup from "../test/web/global-setup.ts"
import { operator } from "../test/web/operator.ts"

const dist = fileURLToPath(new URL("../web/dist", import.meta.url))

interface Chunk {
  readonly file: string
  readonly imports?: ReadonlyArray<string>
  readonly isEntry?: boolean
  readonly src?: string
}

/** Gzip bytes of the JavaScript a first visit loads: the entry, the screen's own chunk, and their static imports. */
const firstLoadBytes = (screenSource: string | undefined) => {
  const manifest = JSON.parse(readFileSync(join(dist, ".vite", "manifest.json"), "utf8")) as Record<string, Chunk>
  const seen = new Set<string>()
  const visit = (key: string) => {
    if (seen.has(key)) return
    seen.add(key)
    for (const dependency of manifest[key]?.imports ?? []) visit(dependency)
  }
  for (const [key, chunk] of Object.entries(manifest)) if (chunk.isEntry === true) visit(key)
  if (screenSource !== undefined && manifest[screenSource] !== undefined) visit(screenSource)
  let bytes = 0
  for (const key of seen) {
    const file = manifest[key]?.file
    if (file !== undefined && file.endsWith(".js")) bytes += gzipSync(readFileSync(join(dist, file)), { level: 9 }).length
  }
  return bytes
}

const teardown = await globalSetup()
const baseUrl = process.env.SMSGW_WEB_BASE_URL ?? ""
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
})
try {
  const page = await browser.newPage()
  await page.goto(`${baseUrl}/`)
  await page.getByLabel("Email").fill(operator.email)
  await page.getByRole("textbox", { name: "Password", exact: true }).fill(operator.password)
  await page.getByRole("button", { name: "Sign in" }).click()
  await page.getByRole("button", { name: /Account menu/ }).waitFor()
  const links = await page.getByRole("navigation", { name: "Main navigation" }).getByRole("link").all()
  const labels = await Promise.all(links.map((l) => l.textContent()))
  // First pass loads each screen and its data; the second measures clicks answered from the cache.
  for (const label of labels) await page.getByRole("link", { name: label ?? "", exact: true }).click()
  const timings: Array<number> = []
  for (let round = 0; round < 5; round++) {
    for (const label of labels) {
      const before = await page.locator("h1").first().textContent()
      const started = performance.now()
      await page.getByRole("link", { name: label ?? "", exact: true }).click()
      // The new screen has rendered when its heading replaced the old one (and no loader is left).
      await page.waitForFunction(
        `document.querySelector("h1")?.textContent !== ${JSON.stringify(before)} && document.querySelector('[role="status"]') === null`
      )
      timings.push(performance.now() - started)
    }
  }
  timings.sort((a, b) => a - b)
  const p50 = timings[Math.floor(timings.length / 2)] ?? 0
  const p95 = timings[Math.floor(timings.length * 0.95)] ?? 0
  const kb = (bytes: number) => `${(bytes / 1024).toFixed(0)} KB`
  console.log(`| first load JS, dashboard (gzip) | cached screen click p50 / p95 (${timings.length} clicks over ${labels.length} screens) |`)
  console.log(`|---|---|`)
  console.log(`| ${kb(firstLoadBytes("src/screens/dashboard/Dashboard.tsx"))} | ${p50.toFixed(0)} / ${p95.toFixed(0)} ms |`)
} finally {
  await browser.close()
  await teardown()
}
