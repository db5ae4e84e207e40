import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Multi-process tests measure rates and timings: they run alone, after the rest (vitest.cluster.config.ts).
    exclude: ["test/cluster/**", "node_modules/**"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
    maxWorkers: 2
  }
})
