import { defineConfig } from "vitest/config"

/** Tests that start several gateway processes: one file at a time, so they do not compete for the two cores. */
export default defineConfig({
  test: {
    include: ["test/cluster/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    pool: "forks",
    fileParallelism: false
  }
})
