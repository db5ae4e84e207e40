/**
 * Entry point: Mantine (one styling system, light and dark from the system setting), the query cache every screen
 * reads the API through, the session, the router.
 */
import "@mantine/core/styles.css"
import "./styles.css"
import { createTheme, MantineProvider } from "@mantine/core"
import { QueryClient, QueryClientProvider } from "@tanstack/react-query"
import { StrictMode } from "react"
import { createRoot } from "react-dom/client"
import { asProblem } from "./api/problem.ts"
import { SessionProvider } from "./api/session.tsx"
import { App } from "./App.tsx"

const theme = createTheme({
  primaryColor: "blue",
  primaryShade: { light: 8, dark: 5 },
  defaultRadius: "md",
  focusRing: "always"
})

const queries = new QueryClient({
  defaultOptions: {
    queries: {
      staleTime: 10_000,
      // A refusal (4xx) will not change on retry; a network blip or a 503 may.
      retry: (count, error) => {
        const status = asProblem(error)?.status ?? 0
        return count < 2 && (status === 0 || status >= 500)
      }
    }
  }
})

const root = document.getElementById("root")
if (root !== null) {
  createRoot(root).render(
    <StrictMode>
      <MantineProvider theme={theme} defaultColorScheme="auto">
        <QueryClientProvider client={queries}>
          <SessionProvider>
            <App />
          </SessionProvider>
        </QueryClientProvider>
      </MantineProvider>
    </StrictMode>
  )
}
