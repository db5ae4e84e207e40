/**
 * The Message Center's browser tests: Debian's Chromium (Playwright's own download is unreachable here) with the flags
 * that keep it off the network, against one real gateway process with its simulator (test/web/global-setup.ts).
 */
import { defineConfig } from "@playwright/test"

export default defineConfig({
  testDir: "test/web",
  testMatch: "**/*.spec.ts",
  outputDir: "test-results/playwright",
  globalSetup: "./test/web/global-setup.ts",
  timeout: 60_000,
  expect: { timeout: 10_000 },
  workers: 2,
  fullyParallel: false,
  forbidOnly: true,
  reporter: [["list"]],
  use: {
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync"
      ]
    },
    trace: "retain-on-failure",
    screenshot: "only-on-failure"
  }
})
