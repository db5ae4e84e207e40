#!/usr/bin/env -S node --disable-warning=ExperimentalWarning
// The project's runtime is the pinned node@24 in node_modules/.bin; it runs TypeScript sources directly.
import "../src/cli/main.ts"
