import tseslint from "typescript-eslint"

export default tseslint.config(
  { ignores: ["node_modules", "data", "coverage", ".tmp", "web/dist", "web/generated", "test-results", "playwright-report"] },
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/no-non-null-assertion": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/consistent-type-imports": "error",
      "no-console": ["error", { allow: ["error"] }]
    }
  },
  {
    files: ["bench/**", "src/cli/**", "test/**"],
    rules: { "no-console": "off" }
  },
  {
    // A test that dereferences a missing value fails, which is what it should do.
    files: ["test/**"],
    rules: { "@typescript-eslint/no-non-null-assertion": "off" }
  }
)
