/**
 * The Message Center's files (web/dist, built by web/build.ts) served at `/` on the API's own port: same origin, so
 * the session cookie and the API need no CORS. Files are read once at start; hashed assets are cached forever, the
 * page itself never; brotli or gzip copies made at build are sent as they are. Any other GET outside the API's
 * prefixes is a screen of the application (client-side routing) and gets the page. Every answer carries a
 * Content-Security-Policy without inline scripts.
 */
import { Effect } from "effect"
import { HttpServerResponse } from "effect/http"
import type { HttpServerRequest } from "effect/http"
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { extname, join, relative, sep } from "node:path"
import { fileURLToPath } from "node:url"

/** Where `npm start` builds the application. */
export const defaultWebRoot = fileURLToPath(new URL("../../web/dist", import.meta.url))

/** Paths that belong to the API and the gateway's own endpoints: never answered with the application's page. */
const reserved = /^\/(v1|healthz|readyz|metrics|docs|openapi\.json|rpc)(\/|$)/

const pathOf = (url: string): string | undefined => {
  try {
    return decodeURIComponent(url.split("?", 1)[0] ?? "/")
  } catch {
    return undefined
  }
}

/** A path the application may answer (a file or a screen), as opposed to one of the API's. */
export const isWebPath = (url: string): boolean => {
  const path = pathOf(url)
  return path !== undefined && !reserved.test(path)
}

export const contentSecurityPolicy = [
  "default-src 'self'",
  "script-src 'self'",
  // Mantine sets CSS variables and positions with style attributes and one style element: styles only, never scripts.
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'"
].join("; ")

const securityHeaders = {
  "content-security-policy": contentSecurityPolicy,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "cross-origin-opener-policy": "same-origin"
}

const types: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".json": "application/json",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".txt": "text/plain; charset=utf-8",
  ".woff2": "font/woff2"
}

interface WebFile {
  readonly type: string
  readonly body: Uint8Array
  readonly br: Uint8Array | undefined
  readonly gzip: Uint8Array | undefined
  /** Hashed names under /assets never change: cached for a year. */
  readonly immutable: boolean
}

/** Dot-files and dot-folders (the build's manifest, its sources hash) are the build's own, never served. */
const filesUnder = (dir: string): Array<string> =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.name.startsWith(".") ? [] : e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)]
  )

const readOptional = (path: string) => existsSync(path) ? readFileSync(path) : undefined

/** The built files by URL path; empty when the application was not built. */
export const loadWebFiles = (root: string): ReadonlyMap<string, WebFile> => {
  const files = new Map<string, WebFile>()
  if (!existsSync(join(root, "index.html"))) return files
  for (const path of filesUnder(root)) {
    const ext = extname(path)
    if (ext === ".br" || ext === ".gz") continue
    const url = `/${relative(root, path).split(sep).join("/")}`
    files.set(url, {
      type: types[ext] ?? "application/octet-stream",
      body: readFileSync(path),
      br: readOptional(`${path}.br`),
      gzip: readOptional(`${path}.gz`),
      immutable: url.startsWith("/assets/")
    })
  }
  return files
}

const notBuilt = HttpServerResponse.text(
  "The Message Center is not built. `npm start` builds it; or run `node web/build.ts`.\n",
  { status: 503, headers: securityHeaders }
)

const send = (file: WebFile, acceptEncoding: string, head: boolean) => {
  const encoding = file.br !== undefined && /\bbr\b/.test(acceptEncoding)
    ? "br"
    : file.gzip !== undefined && /\bgzip\b/.test(acceptEncoding)
    ? "gzip"
    : undefined
  const body = encoding === "br" ? file.br : encoding === "gzip" ? file.gzip : file.body
  const headers: Record<string, string> = {
    ...securityHeaders,
    "cache-control": file.immutable ? "public, max-age=31536000, immutable" : "no-cache",
    vary: "accept-encoding",
    ...(encoding !== undefined ? { "content-encoding": encoding } : {})
  }
  return HttpServerResponse.uint8Array(head ? new Uint8Array(0) : body ?? file.body, { contentType: file.type, headers })
}

/**
 * The handler of every GET the API does not serve: a built file, the page for a screen's path, or `undefined` for
 * paths under the API's prefixes and files that do not exist (the caller answers those 404 as problems).
 */
export const webApp = (root: string) => {
  const files = loadWebFiles(root)
  const index = files.get("/index.html")
  return (request: HttpServerRequest.HttpServerRequest) =>
    Effect.sync(() => {
      const path = pathOf(request.url)
      if (path === undefined || reserved.test(path)) return undefined
      const head = request.method === "HEAD"
      const acceptEncoding = request.headers["accept-encoding"] ?? ""
      const file = files.get(path)
      if (file !== undefined && path !== "/index.html") return send(file, acceptEncoding, head)
      // A missing file (a stale hashed asset, a typo) is a 404, not the page: a script tag must never receive HTML.
      if (extname(path) !== "") return undefined
      return index === undefined ? notBuilt : send(index, acceptEncoding, head)
    })
}
