/**
 * Live figures over Server-Sent Events. EventSource cannot send the bearer token, so the stream is read with fetch;
 * a dropped stream reconnects after a second, and every event lands in the query cache under its API path.
 */
import { useQueryClient } from "@tanstack/react-query"
import { useEffect } from "react"
import { authedFetch } from "./client.ts"

export const subscribe = (path: string, onData: (data: unknown) => void, signal: AbortSignal): void => {
  const run = async () => {
    while (!signal.aborted) {
      try {
        const response = await authedFetch(new Request(new URL(path, window.location.origin), { headers: { accept: "text/event-stream" }, signal }))
        if (!response.ok || response.body === null) {
          // A refusal (403, 404) will not change by retrying.
          if (response.status >= 400 && response.status < 500) return
        } else {
          const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
          let buffer = ""
          for (;;) {
            const { value, done } = await reader.read()
            if (done) break
            buffer += value
            let end = buffer.indexOf("\n\n")
            while (end >= 0) {
              const event = buffer.slice(0, end)
              buffer = buffer.slice(end + 2)
              const data = event.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n")
              if (data !== "") onData(JSON.parse(data))
              end = buffer.indexOf("\n\n")
            }
          }
          // The server ended the stream (a final state): nothing more will come.
          return
        }
      } catch {
        if (signal.aborted) return
      }
      await new Promise((resolve) => setTimeout(resolve, 1_000))
    }
  }
  void run()
}

/** Subscribes while mounted; each event replaces the cached value of `queryKey` (default: the path's own key). */
export const useLiveQuery = (path: string | undefined, queryKey: ReadonlyArray<unknown>) => {
  const client = useQueryClient()
  const key = JSON.stringify(queryKey)
  useEffect(() => {
    if (path === undefined) return
    const controller = new AbortController()
    subscribe(path, (data) => client.setQueryData(JSON.parse(key) as Array<unknown>, data), controller.signal)
    return () => controller.abort()
  }, [path, key, client])
}
