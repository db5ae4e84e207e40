import { it, expect } from "vitest"
import { run } from "../../.tmp/wexp/main.ts"
it("worker", async () => { const r = await run(); console.log(JSON.stringify(r)); expect(r).toBeDefined() })
