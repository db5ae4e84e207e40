import reactHooks from "eslint-plugin-react-hooks"
import tseslint from "typescript-eslint"

export default tseslint.config(
  { ignores: ["node_modules", "data", "coverage", ".tmp", "web/dist", "web/generated", "src/grpc/gen", "test-results", "playwright-report", "bench/grpc-libs/gen"] },
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
    // The rules of hooks: a hook called conditionally crashes a screen at run time (React error #310).
    files: ["web/src/**/*.tsx", "web/src/**/*.ts"],
    plugins: { "react-hooks": reactHooks },
    rules: { "react-hooks/rules-of-hooks": "error", "react-hooks/exhaustive-deps": "warn" }
  },
  {
    files: ["bench/**", "scripts/**", "src/cli/**", "test/**"],
    rules: { "no-console": "off" }
  },
  {
    // A test that dereferences a missing value fails, which is what it should do.
    files: ["test/**"],
    rules: { "@typescript-eslint/no-non-null-assertion": "off" }
  }
)
