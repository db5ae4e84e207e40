import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option, Stream } from "effect"
import * as Fs from "node:fs/promises"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { ObjectStore, ObjectStoreError } from "../../src/storage/ObjectStore.ts"
import { s3Server } from "../fixtures/S3Server.ts"
import type { S3Server } from "../fixtures/S3Server.ts"

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes)

const s3Options = (server: S3Server, overrides: { bucket?: string; endpoint?: string; timeoutMs?: number } = {}) => ({
  endpoint: overrides.endpoint ?? server.endpoint,
  region: server.region,
  bucket: overrides.bucket ?? server.bucket,
  accessKeyId: server.accessKeyId,
  secretAccessKey: server.secretAccessKey,
  forcePathStyle: true,
  timeoutMs: overrides.timeoutMs ?? 5_000
})

/** Parts of 64 KiB (S3 itself wants 5 MiB; s3rver takes any): a test's few hundred KiB go up as a multipart upload. */
const partBytes = 64 * 1024

const S3Store = Layer.unwrap(Effect.map(s3Server(), (server) => ObjectStore.layerS3({ ...s3Options(server), partBytes })))

const tempDir = Effect.acquireRelease(
  Effect.promise(() => Fs.mkdtemp(Path.join(Os.tmpdir(), "smsgw-objects-"))),
  (dir) => Effect.promise(() => Fs.rm(dir, { recursive: true, force: true }))
)

const LocalStore = Layer.unwrap(Effect.map(tempDir, (root) => ObjectStore.layerLocal({ root })))

/** Each test writes under its own prefix, so the tests of one layer do not see each other's objects. */
const fresh = () => `t-${crypto.randomUUID()}/`

const suite = (name: string, layer: Layer.Layer<ObjectStore, ObjectStoreError>) =>
  describe(`ObjectStore on ${name}`, () => {
    it.layer(layer, { timeout: 20_000 })((it) => {
      it.effect("put then get returns the bytes, the same etag and a recent lastModified", () =>
        Effect.gen(function*() {
          const store = yield* ObjectStore
          const key = `${fresh()}lists/dnd.txt`
          const before = Date.now() - 2_000
          const { etag } = yield* store.put(key, "+4915112345678\n# comment\n")
          expect(etag.length).toBeGreaterThan(0)
          const got = Option.getOrThrow(yield* store.get(key))
          expect(text(got.body)).toBe("+4915112345678\n# comment\n")
          expect(got.etag).toBe(etag)
          expect(got.lastModified).toBeGreaterThanOrEqual(before)
          expect(got.lastModified).toBeLessThanOrEqual(Date.now() + 2_000)
        }))

      it.effect("an upload from a stream of chunks lands whole: in parts on S3, one file locally; small ones in one request", () =>
        Effect.gen(function*() {
          const store = yield* ObjectStore
          const key = `${fresh()}cdr/big.csv.gz`
          const chunks = Array.from({ length: 40 }, (_, c) => Uint8Array.from({ length: 10_000 }, (_, i) => (i * 7 + c) % 256))
          const uploaded = yield* store.upload(key, Stream.fromIterable(chunks), "application/gzip")
          expect(uploaded.size).toBe(400_000)
          // A part goes when it holds at least partBytes: 7 chunks of 10,000 bytes each, so 6 parts for 40 chunks.
          expect(uploaded.parts).toBe(name.startsWith("s3rver") ? Math.ceil(40 / Math.ceil(partBytes / 10_000)) : 0)
          const got = Option.getOrThrow(yield* store.get(key))
          expect(Buffer.from(got.body).equals(Buffer.concat(chunks))).toBe(true)
          const small = yield* store.upload(`${fresh()}small.gz`, Stream.make(Uint8Array.of(1, 2, 3)))
          expect(small).toMatchObject({ size: 3, parts: name.startsWith("s3rver") ? 1 : 0 })
        }))

      it.effect("an upload whose stream fails half-way leaves no object (nor a previous one's replacement)", () =>
        Effect.gen(function*() {
          const store = yield* ObjectStore
          const prefix = fresh()
          const key = `${prefix}cdr/cut.csv.gz`
          yield* store.put(key, "the old content")
          const body = Stream.fromIterable(Array.from({ length: 20 }, () => new Uint8Array(10_000))).pipe(
            Stream.concat(Stream.fail("the database went away"))
          )
          const failed = yield* Effect.flip(store.upload(key, body))
          expect(failed).toBe("the database went away")
          expect(text(Option.getOrThrow(yield* store.get(key)).body)).toBe("the old content")
          expect((yield* store.list(prefix)).map((o) => o.key)).toEqual([key])
        }))

      it.effect("a listing without etags names the same objects and sizes; the local store then hashes nothing", () =>
        Effect.gen(function*() {
          const store = yield* ObjectStore
          const prefix = fresh()
          yield* store.put(`${prefix}a.gz`, "first")
          yield* store.put(`${prefix}b.gz`, "second one")
          const full = yield* store.list(prefix)
          const bare = yield* store.list(prefix, { etags: false })
          expect(bare.map((o) => [o.key, o.size])).toEqual(full.map((o) => [o.key, o.size]))
          expect(full.every((o) => o.etag !== "")).toBe(true)
          expect(bare.every((o) => o.etag === "")).toBe(!name.startsWith("s3rver"))
        }))

      it.effect("binary bodies round-trip byte for byte", () =>
        Effect.gen(function*() {
          const store = yield* ObjectStore
          const key = `${fresh()}blob.bin`
          const body = Uint8Array.from({ length: 70_000 }, (_, i) => (i * 31) % 256)
          yield* store.put(key, body)
          const got = Option.getOrThrow(yield* store.get(key))
          expect(got.body).toEqual(body)
        }))

      it.effect("head gives etag and size without the body", () =>
        Effect.gen(function*() {
          const store = yield* ObjectStore
          const key = `${fresh()}a.txt`
          const { etag } = yield* store.put(key, "héllo")
          const info = Option.getOrThrow(yield* store.head(key))
          expect(info.etag).toBe(etag)
          expect(info.size).toBe(6)
          expect(info.lastModified).toBeGreaterThan(0)
        }))

      it.effect("the etag changes when the content changes, and only then", () =>
        Effect.gen(function*() {
          const store = yield* ObjectStore
          const key = `${fresh()}list.txt`
          const first = yield* store.put(key, "+4915112345678\n")
          const same = yield* store.put(key, "+4915112345678\n")
          const changed = yield* store.put(key, "+4915112345679\n")
          expect(same.etag).toBe(first.etag)
          expect(changed.etag).not.toBe(first.etag)
          expect(Option.getOrThrow(yield* store.head(key)).etag).toBe(changed.etag)
          expect(text(Option.getOrThrow(yield* store.get(key)).body)).toBe("+4915112345679\n")
        }))

      it.effect("list returns the objects under a prefix, sorted, with etag and size", () =>
        Effect.gen(function*() {
          const store = yield* ObjectStore
          const base = fresh()
          const a = yield* store.put(`${base}lists/global.txt`, "1\n")
          const b = yield* store.put(`${base}lists/org/acme.txt`, "22\n")
          yield* store.put(`${base}exports/cdr.csv`, "x")
          yield* store.put(`${base}listing.txt`, "y")
          expect(yield* store.list(`${base}lists/`)).toEqual([
            { key: `${base}lists/global.txt`, etag: a.etag, size: 2 },
            { key: `${base}lists/org/acme.txt`, etag: b.etag, size: 3 }
          ])
          // A prefix is a string prefix, not a folder.
          expect((yield* store.list(`${base}list`)).map((o) => o.key)).toEqual([
            `${base}listing.txt`,
            `${base}lists/global.txt`,
            `${base}lists/org/acme.txt`
          ])
          expect(yield* store.list(`${base}nothing/`)).toEqual([])
        }))

      it.effect("delete removes the object; deleting a missing key succeeds", () =>
        Effect.gen(function*() {
          const store = yield* ObjectStore
          const base = fresh()
          yield* store.put(`${base}gone.txt`, "bye")
          yield* store.put(`${base}kept.txt`, "stay")
          yield* store.delete(`${base}gone.txt`)
          expect(yield* store.get(`${base}gone.txt`)).toEqual(Option.none())
          expect(yield* store.head(`${base}gone.txt`)).toEqual(Option.none())
          expect((yield* store.list(base)).map((o) => o.key)).toEqual([`${base}kept.txt`])
          yield* store.delete(`${base}gone.txt`)
        }))

      it.effect("a stream left early or never read is released with its scope", () =>
        Effect.gen(function*() {
          const store = yield* ObjectStore
          const key = `${fresh()}big.bin`
          yield* store.put(key, new Uint8Array(1_000_000).fill(7))
          for (let i = 0; i < 20; i++) {
            yield* Effect.scoped(store.getStream(key))
            const first = yield* Effect.scoped(Effect.flatMap(
              store.getStream(key),
              (opened) => Stream.runCollect(Stream.take(Option.getOrThrow(opened).stream, 1))
            ))
            expect(first[0]?.[0]).toBe(7)
          }
          // Still answers: nothing was left hanging.
          expect(Option.getOrThrow(yield* store.head(key)).size).toBe(1_000_000)
        }))

      it.effect("a missing key is None for get, getStream and head", () =>
        Effect.gen(function*() {
          const store = yield* ObjectStore
          const key = `${fresh()}missing.txt`
          expect(yield* store.get(key)).toEqual(Option.none())
          expect(yield* Effect.scoped(store.getStream(key))).toEqual(Option.none())
          expect(yield* store.head(key)).toEqual(Option.none())
        }))

      it.effect("getStream streams a large body in chunks with the object's etag and size", () =>
        Effect.gen(function*() {
          const store = yield* ObjectStore
          const key = `${fresh()}lists/big.txt`
          const lines = Array.from({ length: 50_000 }, (_, i) => `+49151${String(i).padStart(8, "0")}`).join("\n")
          const { etag } = yield* store.put(key, lines)
          const { chunks, info } = yield* Effect.scoped(Effect.gen(function*() {
            const opened = Option.getOrThrow(yield* store.getStream(key))
            const chunks = yield* Stream.runCollect(opened.stream)
            return { chunks, info: opened }
          }))
          expect(info.etag).toBe(etag)
          expect(info.size).toBe(lines.length)
          expect(chunks.length).toBeGreaterThan(1)
          expect(Buffer.concat(chunks).toString("utf8")).toBe(lines)
        }))
    })
  })

suite("s3rver (S3 layer)", S3Store)
suite("a local folder", LocalStore)

/** A loopback port nothing listens on: taken, then released. */
const closedPort = Effect.promise(() =>
  new Promise<number>((resolve) => {
    const server = Net.createServer()
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as Net.AddressInfo).port
      server.close(() => resolve(port))
    })
  })
)

/** A server that accepts connections and never answers: a hung S3 endpoint. */
const silentServer = Effect.acquireRelease(
  Effect.promise(() =>
    new Promise<{ server: Net.Server; sockets: Set<Net.Socket> }>((resolve) => {
      const sockets = new Set<Net.Socket>()
      const server = Net.createServer((socket) => {
        sockets.add(socket)
        socket.on("close", () => sockets.delete(socket))
      })
      server.listen(0, "127.0.0.1", () => resolve({ server, sockets }))
    })
  ),
  ({ server, sockets }) =>
    Effect.promise(() =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      })
    )
).pipe(Effect.map(({ server }) => server))

describe("ObjectStore S3 layer errors", () => {
  it.live("a bucket that does not exist is a typed error naming the operation and key", () =>
    Effect.gen(function*() {
      const server = yield* s3Server()
      const wrong = yield* Effect.gen(function*() {
        const store = yield* ObjectStore
        return [
          yield* Effect.flip(store.get("a.txt")),
          yield* Effect.flip(store.put("a.txt", "x")),
          yield* Effect.flip(store.list("lists/")),
          yield* Effect.flip(store.delete("a.txt")),
          yield* Effect.flip(Effect.scoped(store.getStream("a.txt")))
        ] as const
      }).pipe(Effect.provide(ObjectStore.layerS3(s3Options(server, { bucket: "no-such-bucket" }))))
      for (const error of wrong) {
        expect(error).toBeInstanceOf(ObjectStoreError)
        expect(error.message).toContain("NoSuchBucket")
      }
      expect(wrong.map((e) => [e.operation, e.key])).toEqual([
        ["get", "a.txt"],
        ["put", "a.txt"],
        ["list", "lists/"],
        ["delete", "a.txt"],
        ["getStream", "a.txt"]
      ])
      // Credentials never end up in an error.
      expect(wrong.every((e) => !e.message.includes(server.secretAccessKey))).toBe(true)
    }), { timeout: 20_000 })

  it.live("an unreachable endpoint is a typed error", () =>
    Effect.gen(function*() {
      const server = yield* s3Server()
      const port = yield* closedPort
      const store = yield* ObjectStore.pipe(
        Effect.provide(ObjectStore.layerS3(s3Options(server, { endpoint: `http://127.0.0.1:${port}`, timeoutMs: 2_000 })))
      )
      const started = Date.now()
      const error = yield* Effect.flip(store.get("a.txt"))
      expect(error._tag).toBe("ObjectStoreError")
      expect(error.operation).toBe("get")
      expect(Date.now() - started).toBeLessThan(3_000)
    }), { timeout: 20_000 })

  it.live("an endpoint that never answers fails within the timeout", () =>
    Effect.gen(function*() {
      const server = yield* s3Server()
      const hung = yield* silentServer
      const port = (hung.address() as Net.AddressInfo).port
      const timeoutMs = 500
      const store = yield* ObjectStore.pipe(
        Effect.provide(ObjectStore.layerS3(s3Options(server, { endpoint: `http://127.0.0.1:${port}`, timeoutMs })))
      )
      const started = Date.now()
      const error = yield* Effect.flip(store.head("lists/global.txt"))
      const elapsed = Date.now() - started
      expect(error).toBeInstanceOf(ObjectStoreError)
      expect(error.operation).toBe("head")
      expect(error.key).toBe("lists/global.txt")
      expect(error.message).toContain("timed out after 500 ms")
      expect(elapsed).toBeGreaterThanOrEqual(timeoutMs - 50)
      expect(elapsed).toBeLessThan(timeoutMs + 1_000)
    }), { timeout: 20_000 })
})

describe("ObjectStore local layer keys", () => {
  it.live("keys that would leave the folder are refused, and nothing is written outside it", () =>
    Effect.gen(function*() {
      const parent = yield* tempDir
      const root = Path.join(parent, "root")
      const store = yield* ObjectStore.pipe(Effect.provide(ObjectStore.layerLocal({ root })))
      const refused = ["../escape.txt", "a/../../escape.txt", "..", "/etc/passwd", "a//b", "./a", "a\\..\\b", ""]
      for (const key of refused) {
        const error = yield* Effect.flip(store.put(key, "x"))
        expect(error).toBeInstanceOf(ObjectStoreError)
        expect(error.key).toBe(key)
        expect(error.message).toMatch(/^invalid key/)
        expect((yield* Effect.flip(store.get(key))).message).toMatch(/^invalid key/)
        expect((yield* Effect.flip(store.head(key))).message).toMatch(/^invalid key/)
        expect((yield* Effect.flip(store.delete(key))).message).toMatch(/^invalid key/)
      }
      expect((yield* Effect.flip(store.list("../"))).message).toMatch(/^invalid key/)
      expect(yield* Effect.promise(() => Fs.readdir(parent))).toEqual(["root"])
    }))

  it.live("files are plain files under the root; a file edited by hand gets a new etag", () =>
    Effect.gen(function*() {
      const root = yield* tempDir
      const store = yield* ObjectStore.pipe(Effect.provide(ObjectStore.layerLocal({ root })))
      const { etag } = yield* store.put("lists/global.txt", "+4915112345678\n")
      const onDisk = yield* Effect.promise(() => Fs.readFile(Path.join(root, "lists", "global.txt"), "utf8"))
      expect(onDisk).toBe("+4915112345678\n")
      yield* Effect.promise(() => Fs.writeFile(Path.join(root, "lists", "global.txt"), "+4915112345679\n"))
      const info = Option.getOrThrow(yield* store.head("lists/global.txt"))
      expect(info.etag).not.toBe(etag)
      expect(info.etag).toMatch(/^[0-9a-f]{64}$/)
      expect(yield* store.list("")).toEqual([{ key: "lists/global.txt", etag: info.etag, size: 15 }])
    }))
})
