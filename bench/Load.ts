/**
 * The benches' load driver, one home for how requests are paced: closed loop (a fixed number of requests in flight,
 * each sent when the previous one answered) or open loop (a fixed rate, whatever the answers do). The gateway's run
 * (bench/run.ts) and the Kannel peer (bench/kannel.ts) both drive their load through it.
 */

import http from "node:http"

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export interface LoadShape {
  /** Messages in all. */
  readonly messages: number
  /** Messages per request (1 unless a batch API is measured). */
  readonly batchSize: number
  /** Closed loop: messages in flight (requests in flight = concurrency / batchSize). */
  readonly concurrency: number
  /** Messages per second offered; 0: closed loop. */
  readonly rate: number
}

/**
 * Sends `messages` through `request(i, count, since)`: message `i` and the `count - 1` after it in one request whose
 * latency counts from `since`. Open loop: request k is due at start + k × interval whatever the answers do, and its
 * latency counts from then, so a stall shows in the latency of every request it delayed (no coordinated omission).
 * Answers when every request has answered.
 */
export const driveLoad = async (
  shape: LoadShape,
  request: (i: number, count: number, since: number) => Promise<void>
): Promise<void> => {
  const { messages, batchSize, concurrency, rate } = shape
  let next = 0
  const started = performance.now()
  if (rate > 0) {
    const interval = (1000 * batchSize) / rate
    const pending = new Set<Promise<void>>()
    let k = 0
    while (next < messages) {
      const now = performance.now()
      while (next < messages && started + k * interval <= now) {
        const i = next
        const count = Math.min(batchSize, messages - i)
        next += count
        const due = started + k * interval
        k++
        const p: Promise<void> = request(i, count, due).finally(() => pending.delete(p))
        pending.add(p)
      }
      if (next < messages) await sleep(Math.max(0, started + k * interval - performance.now()))
    }
    await Promise.all(pending)
    return
  }
  const worker = async () => {
    while (next < messages) {
      const i = next
      const count = Math.min(batchSize, messages - i)
      next += count
      await request(i, count, performance.now())
    }
  }
  // Batches: fewer requests in flight carry as many messages (concurrency counts messages in flight).
  await Promise.all(Array.from({ length: Math.max(1, Math.round(concurrency / batchSize)) }, worker))
}

/** One HTTP request on a keep-alive agent; answers its status and body (30 s timeout). */
export const request = (agent: http.Agent, port: number, method: string, path: string, body?: string, token?: string) =>
  new Promise<{ status: number; body: string }>((resolve, reject) => {
    const headers: Record<string, string | number> = body ? { "content-type": "application/json", "content-length": Buffer.byteLength(body) } : {}
    if (token !== undefined) headers.authorization = `Bearer ${token}`
    const req = http.request({ agent, host: "127.0.0.1", port, method, path, headers }, (res) => {
      let data = ""
      res.setEncoding("utf8")
      res.on("data", (c: string) => (data += c))
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: data }))
    })
    req.setTimeout(30_000, () => req.destroy(new Error("request timeout")))
    req.on("error", reject)
    if (body) req.write(body)
    req.end()
  })

/** The message the load sends as number `i`. */
export const benchMessage = (i: number) => ({
  to: `+49151${String(10_000_000 + (i % 9_000_000)).padStart(8, "0")}`,
  from: "BENCH",
  text: `Bench message ${i} with a little text in it`
})
