/**
 * Files by key (blacklists, later CDR exports): S3/MinIO or a local folder.
 */
import type { ListObjectsV2CommandOutput } from "@aws-sdk/client-s3"
import { Context, Effect, Layer, Option, Schema, Stream } from "effect"
import type { Scope } from "effect"
import { createHash, randomUUID } from "node:crypto"
import { createReadStream } from "node:fs"
import * as Fs from "node:fs/promises"
import * as Path from "node:path"

export class ObjectStoreError extends Schema.TaggedError<ObjectStoreError>()("ObjectStoreError", {
  operation: Schema.String,
  /** The object key, or the prefix for `list`. */
  key: Schema.String,
  message: Schema.String
}) {}

export interface StoredObject {
  readonly body: Uint8Array
  readonly etag: string
  /** Epoch milliseconds. */
  readonly lastModified: number
}

export interface ObjectInfo {
  readonly etag: string
  readonly size: number
  readonly lastModified: number
}

/** An object whose body is read as it is consumed: for objects too large to hold twice in memory. */
export interface StreamedObject extends ObjectInfo {
  /**
   * Chunks of the body. S3: run it once (it is the HTTP response), and a pull that waits longer than the store's
   * timeout fails. Local: each run reads the opened file from the start.
   */
  readonly stream: Stream.Stream<Uint8Array, ObjectStoreError>
}

export interface UploadedObject {
  readonly etag: string
  readonly size: number
  /** S3 parts sent (1 for a single PUT; 0 for the local store). */
  readonly parts: number
}

export interface ListedObject {
  readonly key: string
  readonly etag: string
  readonly size: number
}

export interface S3Options {
  readonly endpoint?: string
  readonly region: string
  readonly bucket: string
  readonly accessKeyId?: string
  readonly secretAccessKey?: string
  /** `true` for MinIO and other servers that do not route by virtual host. */
  readonly forcePathStyle?: boolean
  /** Upper bound of every call, retries included (for `upload`: of each part). */
  readonly timeoutMs: number
  /** Part size of `upload` (S3 wants at least 5 MiB for every part but the last); default 8 MiB. */
  readonly partBytes?: number
}

export interface LocalOptions {
  readonly root: string
}

export class ObjectStore extends Context.Service<ObjectStore, {
  get(key: string): Effect.Effect<Option.Option<StoredObject>, ObjectStoreError>
  head(key: string): Effect.Effect<Option.Option<ObjectInfo>, ObjectStoreError>
  put(key: string, body: Uint8Array | string): Effect.Effect<{ readonly etag: string }, ObjectStoreError>
  /**
   * Opens the object; the connection or file stays open until the caller's scope closes, and the stream is only
   * valid inside that scope.
   */
  getStream(key: string): Effect.Effect<Option.Option<StreamedObject>, ObjectStoreError, Scope.Scope>
  /**
   * Writes the object from chunks as they come, never holding it whole: S3 sends parts as they fill (a multipart
   * upload; a body smaller than one part is one PUT), the local store writes a temporary file renamed into place.
   * Either way the object appears only complete, and a failure leaves none (the multipart upload is aborted).
   */
  upload<E>(key: string, body: Stream.Stream<Uint8Array, E>, contentType?: string): Effect.Effect<UploadedObject, ObjectStoreError | E>
  /** Deleting a missing key succeeds. */
  delete(key: string): Effect.Effect<void, ObjectStoreError>
  /**
   * Every object whose key starts with `prefix` (plain string prefix, as in S3), sorted by key. `etags: false` lets
   * the local store skip hashing files it has not hashed yet (their etag is then ""); S3 lists them anyway.
   */
  list(prefix: string, options?: { readonly etags?: boolean }): Effect.Effect<ReadonlyArray<ListedObject>, ObjectStoreError>
}>()("smsgw/storage/ObjectStore") {
  static layerS3(options: S3Options): Layer.Layer<ObjectStore> {
    return Layer.effect(ObjectStore, makeS3(options))
  }

  static layerLocal(options: LocalOptions): Layer.Layer<ObjectStore, ObjectStoreError> {
    return Layer.effect(ObjectStore, makeLocal(options))
  }
}

/**
 * An error S3 answered (the SDK's S3ServiceException), told by its shape: the SDK is loaded only when S3 is configured
 * (about 35 MB of memory and 0.2 s of start-up the embedded mode's local folder does without).
 */
const isS3Error = (cause: unknown): cause is Error & { readonly $metadata: { readonly httpStatusCode?: number | undefined } } =>
  cause instanceof Error && typeof (cause as { $metadata?: unknown }).$metadata === "object" &&
  typeof (cause as { $fault?: unknown }).$fault === "string"

const describeError = (cause: unknown): string => {
  if (isS3Error(cause)) {
    const status = cause.$metadata.httpStatusCode
    return status === undefined ? `${cause.name}: ${cause.message}` : `${cause.name} (HTTP ${status}): ${cause.message}`
  }
  if (cause instanceof Error) {
    const code = (cause as NodeJS.ErrnoException).code
    return code === undefined ? `${cause.name}: ${cause.message}` : `${code}: ${cause.message}`
  }
  return String(cause)
}

const toBytes = (body: Uint8Array | string): Uint8Array =>
  typeof body === "string" ? new TextEncoder().encode(body) : body

// S3 answers ETags quoted; callers compare them as plain strings.
const unquote = (etag: string | undefined): string => (etag ?? "").replace(/^"(.*)"$/, "$1")

const isNotFound = (cause: unknown, names: ReadonlyArray<string>): boolean =>
  isS3Error(cause) && names.includes(cause.name)

const makeS3 = (options: S3Options) =>
  Effect.gen(function*() {
    const {
      AbortMultipartUploadCommand,
      CompleteMultipartUploadCommand,
      CreateMultipartUploadCommand,
      DeleteObjectCommand,
      GetObjectCommand,
      HeadObjectCommand,
      ListObjectsV2Command,
      PutObjectCommand,
      S3Client,
      UploadPartCommand
    } = yield* Effect.promise(() => import("@aws-sdk/client-s3"))
    const partBytes = options.partBytes ?? 8 * 1024 * 1024
    const client = yield* Effect.acquireRelease(
      Effect.sync(() =>
        new S3Client({
          region: options.region,
          ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
          ...(options.forcePathStyle === undefined ? {} : { forcePathStyle: options.forcePathStyle }),
          ...(options.accessKeyId !== undefined && options.secretAccessKey !== undefined
            ? { credentials: { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey } }
            : {}),
          // Checksums only where S3 demands them: since SDK 3.729 the default CRC headers trip some S3-compatible servers.
          requestChecksumCalculation: "WHEN_REQUIRED",
          responseChecksumValidation: "WHEN_REQUIRED"
        })
      ),
      (client) => Effect.sync(() => client.destroy())
    )
    const bucket = options.bucket

    // Every call is bounded by `timeoutMs`; the abort signal cancels the HTTP request when the fiber is interrupted.
    const call = <A>(operation: string, key: string, run: (signal: AbortSignal) => Promise<A>) =>
      Effect.tryPromise({
        try: run,
        catch: (cause) => new ObjectStoreError({ operation, key, message: describeError(cause) })
      }).pipe(
        Effect.timeoutOrElse({
          duration: options.timeoutMs,
          orElse: () =>
            Effect.fail(
              new ObjectStoreError({ operation, key, message: `timed out after ${options.timeoutMs} ms (bucket ${bucket})` })
            )
        })
      )

    const get = Effect.fn("ObjectStore.get")(function*(key: string) {
      return yield* call("get", key, async (abortSignal) => {
        try {
          const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal })
          const body = out.Body === undefined ? new Uint8Array() : await out.Body.transformToByteArray()
          return Option.some<StoredObject>({
            body,
            etag: unquote(out.ETag),
            lastModified: out.LastModified?.getTime() ?? 0
          })
        } catch (cause) {
          if (isNotFound(cause, ["NoSuchKey"])) return Option.none<StoredObject>()
          throw cause
        }
      })
    })

    const getStream = Effect.fn("ObjectStore.getStream")(function*(key: string) {
      const controller = yield* Effect.acquireRelease(
        Effect.sync(() => new AbortController()),
        (controller) => Effect.sync(() => controller.abort())
      )
      const opened = yield* call("getStream", key, async (signal) => {
        // The body outlives this call: only the scope's controller may cut it, an interrupted open aborts it too.
        signal.addEventListener("abort", () => controller.abort(), { once: true })
        try {
          return Option.some(
            await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: controller.signal })
          )
        } catch (cause) {
          if (isNotFound(cause, ["NoSuchKey"])) return Option.none()
          throw cause
        }
      })
      if (Option.isNone(opened)) return Option.none<StreamedObject>()
      const out = opened.value
      const body = out.Body
      const chunks: AsyncIterable<Uint8Array> = body !== undefined && Symbol.asyncIterator in body
        ? body as AsyncIterable<Uint8Array>
        : (async function*() {})()
      const failed = (message: string) => new ObjectStoreError({ operation: "getStream", key, message })
      const stream = Stream.fromAsyncIterable(chunks, (cause) => failed(describeError(cause))).pipe(
        Stream.map((chunk) => new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)),
        Stream.timeoutOrElse({
          duration: options.timeoutMs,
          orElse: () => Stream.fail(failed(`no data for ${options.timeoutMs} ms`))
        })
      )
      return Option.some<StreamedObject>({
        stream,
        etag: unquote(out.ETag),
        size: out.ContentLength ?? 0,
        lastModified: out.LastModified?.getTime() ?? 0
      })
    })

    // A HEAD has no error body: a 404 cannot tell a missing key from a missing bucket, both read as None.
    const head = Effect.fn("ObjectStore.head")(function*(key: string) {
      return yield* call("head", key, async (abortSignal) => {
        try {
          const out = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }), { abortSignal })
          return Option.some<ObjectInfo>({
            etag: unquote(out.ETag),
            size: out.ContentLength ?? 0,
            lastModified: out.LastModified?.getTime() ?? 0
          })
        } catch (cause) {
          if (isNotFound(cause, ["NotFound", "NoSuchKey"])) return Option.none<ObjectInfo>()
          throw cause
        }
      })
    })

    const put = Effect.fn("ObjectStore.put")(function*(key: string, body: Uint8Array | string) {
      const bytes = toBytes(body)
      const out = yield* call(
        "put",
        key,
        (abortSignal) =>
          client.send(
            new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes, ContentLength: bytes.byteLength }),
            { abortSignal }
          )
      )
      return { etag: unquote(out.ETag) }
    })

    const upload = <E>(key: string, body: Stream.Stream<Uint8Array, E>, contentType?: string) =>
      Effect.gen(function*() {
        let pending: Array<Uint8Array> = []
        let pendingBytes = 0
        let size = 0
        let uploadId: string | undefined
        const parts: Array<{ readonly ETag: string; readonly PartNumber: number }> = []
        const take = () => {
          const bytes = Buffer.concat(pending)
          pending = []
          pendingBytes = 0
          return bytes
        }
        const sendPart = Effect.gen(function*() {
          if (uploadId === undefined) {
            const created = yield* call("upload", key, (abortSignal) =>
              client.send(
                new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ...(contentType !== undefined ? { ContentType: contentType } : {}) }),
                { abortSignal }
              ))
            uploadId = created.UploadId
            if (uploadId === undefined) {
              return yield* new ObjectStoreError({ operation: "upload", key, message: "no upload id in the answer" })
            }
          }
          const id = uploadId
          const bytes = take()
          const PartNumber = parts.length + 1
          const out = yield* call("upload", key, (abortSignal) =>
            client.send(
              new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: id, PartNumber, Body: bytes, ContentLength: bytes.byteLength }),
              { abortSignal }
            ))
          parts.push({ ETag: out.ETag ?? "", PartNumber })
        })
        const abort = Effect.suspend(() => {
          const id = uploadId
          if (id === undefined) return Effect.void
          return call("upload", key, (abortSignal) =>
            client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: id }), { abortSignal })).pipe(Effect.ignore)
        })
        return yield* Effect.gen(function*() {
          yield* Stream.runForEach(body, (chunk) => {
            pending.push(chunk)
            pendingBytes += chunk.byteLength
            size += chunk.byteLength
            return pendingBytes >= partBytes ? sendPart : Effect.void
          })
          if (uploadId === undefined) {
            const bytes = take()
            const out = yield* call("upload", key, (abortSignal) =>
              client.send(
                new PutObjectCommand({
                  Bucket: bucket,
                  Key: key,
                  Body: bytes,
                  ContentLength: bytes.byteLength,
                  ...(contentType !== undefined ? { ContentType: contentType } : {})
                }),
                { abortSignal }
              ))
            return { etag: unquote(out.ETag), size, parts: 1 }
          }
          if (pendingBytes > 0) yield* sendPart
          const id = uploadId
          const done = yield* call("upload", key, (abortSignal) =>
            client.send(
              new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: id, MultipartUpload: { Parts: parts } }),
              { abortSignal }
            ))
          return { etag: unquote(done.ETag), size, parts: parts.length }
        }).pipe(Effect.onError(() => abort))
      }).pipe(Effect.withSpan("ObjectStore.upload"))

    const del = Effect.fn("ObjectStore.delete")(function*(key: string) {
      yield* call("delete", key, (abortSignal) =>
        client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }), { abortSignal }))
    })

    const list = Effect.fn("ObjectStore.list")(function*(prefix: string) {
      return yield* call("list", prefix, async (abortSignal) => {
        const objects: Array<ListedObject> = []
        let token: string | undefined
        do {
          const page: ListObjectsV2CommandOutput = await client.send(
            new ListObjectsV2Command({
              Bucket: bucket,
              Prefix: prefix,
              ...(token === undefined ? {} : { ContinuationToken: token })
            }),
            { abortSignal }
          )
          for (const item of page.Contents ?? []) {
            if (item.Key === undefined) continue
            objects.push({ key: item.Key, etag: unquote(item.ETag), size: item.Size ?? 0 })
          }
          token = page.IsTruncated === true ? page.NextContinuationToken : undefined
        } while (token !== undefined)
        return objects.sort((a, b) => compareKeys(a.key, b.key))
      })
    })

    return ObjectStore.of({ get, getStream, head, put, upload, delete: del, list })
  })

const compareKeys = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b))

/** Files whose etag the local store remembers (by inode, size and mtime) so a poll does not hash them again. */
const maxCachedEtags = 10_000

/** Temporary files of an atomic write live beside their target under this name; no key may use it. */
const TEMP_MARK = ".objectstore-tmp-"

/**
 * A key as a path under `root`: relative, `/`-separated, with no empty, `.` or `..` segment, so it can never leave
 * the folder.
 */
const keyToPath = (root: string, key: string, operation: string): Effect.Effect<string, ObjectStoreError> => {
  const refuse = (why: string) => Effect.fail(new ObjectStoreError({ operation, key, message: `invalid key: ${why}` }))
  if (key.length === 0) return refuse("empty")
  if (key.includes("\0")) return refuse("contains a NUL byte")
  if (key.includes("\\")) return refuse("contains a backslash")
  if (key.startsWith("/") || Path.isAbsolute(key) || /^[A-Za-z]:/.test(key)) return refuse("absolute path")
  const segments = key.split("/")
  for (const segment of segments) {
    if (segment === "..") return refuse("contains '..'")
    if (segment === "" || segment === ".") return refuse("empty or '.' path segment")
    if (segment.startsWith(TEMP_MARK)) return refuse(`segment starts with reserved '${TEMP_MARK}'`)
  }
  const full = Path.join(root, ...segments)
  // Belt and braces: the lexical checks above already keep the path inside root.
  if (!full.startsWith(root + Path.sep)) return refuse("outside the root")
  return Effect.succeed(full)
}

const isMissing = (cause: unknown): boolean => {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code
  return code === "ENOENT" || code === "ENOTDIR" || code === "EISDIR"
}

const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex")

// Streamed, so hashing a large list never holds it whole in memory.
const sha256File = async (path: string): Promise<string> => {
  const hash = createHash("sha256")
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer)
  return hash.digest("hex")
}

/**
 * The local-folder layer. ETag = hex SHA-256 of the content, so it changes exactly when the content does (also for
 * files edited by hand); it is cached per file by (inode, size, mtime in ns) so a poll does not re-read a large
 * unchanged file.
 */
const makeLocal = (options: LocalOptions) =>
  Effect.gen(function*() {
    const root = Path.resolve(options.root)
    yield* Effect.tryPromise({
      try: () => Fs.mkdir(root, { recursive: true }),
      catch: (cause) => new ObjectStoreError({ operation: "open", key: "", message: describeError(cause) })
    })
    // Bounded: CDR files add an entry each; the oldest entries go first (a Map keeps insertion order).
    const etagCache = new Map<string, { readonly stamp: string; readonly etag: string }>()
    const etags = {
      get: (path: string) => etagCache.get(path),
      delete: (path: string) => etagCache.delete(path),
      set: (path: string, entry: { readonly stamp: string; readonly etag: string }) => {
        etagCache.delete(path)
        etagCache.set(path, entry)
        if (etagCache.size > maxCachedEtags) {
          const oldest = etagCache.keys().next()
          if (oldest.done !== true) etagCache.delete(oldest.value)
        }
      }
    }

    const attempt = <A>(operation: string, key: string, run: () => Promise<A>) =>
      Effect.tryPromise({
        try: run,
        catch: (cause) => new ObjectStoreError({ operation, key, message: describeError(cause) })
      })

    const stampOf = (stat: { ino: bigint; size: bigint; mtimeNs: bigint }) => `${stat.ino}:${stat.size}:${stat.mtimeNs}`

    // The stat and the read are not atomic; writes go through rename, so a file's content never changes under a
    // given inode unless edited in place by hand.
    const etagOf = async (path: string, stat: { ino: bigint; size: bigint; mtimeNs: bigint }, body?: Uint8Array) => {
      const stamp = stampOf(stat)
      const cached = etags.get(path)
      if (cached !== undefined && cached.stamp === stamp) return cached.etag
      const etag = body === undefined ? await sha256File(path) : sha256(body)
      etags.set(path, { stamp, etag })
      return etag
    }

    const statFile = async (path: string) => {
      try {
        const stat = await Fs.stat(path, { bigint: true })
        return stat.isFile() ? stat : undefined
      } catch (cause) {
        if (isMissing(cause)) return undefined
        throw cause
      }
    }

    const get = Effect.fn("ObjectStore.get")(function*(key: string) {
      const path = yield* keyToPath(root, key, "get")
      return yield* attempt("get", key, async () => {
        const stat = await statFile(path)
        if (stat === undefined) return Option.none<StoredObject>()
        let body: Uint8Array
        try {
          const buffer = await Fs.readFile(path)
          body = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength)
        } catch (cause) {
          if (isMissing(cause)) return Option.none<StoredObject>()
          throw cause
        }
        const etag = sha256(body)
        etags.set(path, { stamp: stampOf(stat), etag })
        return Option.some<StoredObject>({ body, etag, lastModified: Number(stat.mtimeMs) })
      })
    })

    const getStream = Effect.fn("ObjectStore.getStream")(function*(key: string) {
      const path = yield* keyToPath(root, key, "getStream")
      const handle = yield* Effect.acquireRelease(
        attempt("getStream", key, async () => {
          try {
            return await Fs.open(path, "r")
          } catch (cause) {
            if (isMissing(cause)) return undefined
            throw cause
          }
        }),
        (handle) => Effect.promise(() => handle?.close() ?? Promise.resolve())
      )
      if (handle === undefined) return Option.none<StreamedObject>()
      const stat = yield* attempt("getStream", key, () => handle.stat({ bigint: true }))
      if (!stat.isFile()) return Option.none<StreamedObject>()
      // The etag of the open file itself (by its stamp), not of whatever the path names by now.
      const etag = yield* attempt("getStream", key, async () => {
        const cached = etags.get(path)
        if (cached !== undefined && cached.stamp === stampOf(stat)) return cached.etag
        const hash = createHash("sha256")
        for await (const chunk of handle.createReadStream({ start: 0, autoClose: false })) hash.update(chunk as Buffer)
        return hash.digest("hex")
      })
      // Each run reads the open file from the start.
      const stream = Stream.suspend(() =>
        Stream.fromAsyncIterable(
          handle.createReadStream({ start: 0, autoClose: false }) as AsyncIterable<Buffer>,
          (cause) => new ObjectStoreError({ operation: "getStream", key, message: describeError(cause) })
        )
      ).pipe(Stream.map((chunk) => new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)))
      return Option.some<StreamedObject>({
        stream,
        etag,
        size: Number(stat.size),
        lastModified: Number(stat.mtimeMs)
      })
    })

    const head = Effect.fn("ObjectStore.head")(function*(key: string) {
      const path = yield* keyToPath(root, key, "head")
      return yield* attempt("head", key, async () => {
        const stat = await statFile(path)
        if (stat === undefined) return Option.none<ObjectInfo>()
        return Option.some<ObjectInfo>({
          etag: await etagOf(path, stat),
          size: Number(stat.size),
          lastModified: Number(stat.mtimeMs)
        })
      })
    })

    // Write to a temporary file beside the target, then rename: readers see the old object or the new one, whole.
    const put = Effect.fn("ObjectStore.put")(function*(key: string, body: Uint8Array | string) {
      const path = yield* keyToPath(root, key, "put")
      const bytes = toBytes(body)
      return yield* attempt("put", key, async () => {
        await Fs.mkdir(Path.dirname(path), { recursive: true })
        const temp = Path.join(Path.dirname(path), `${TEMP_MARK}${randomUUID()}`)
        try {
          await Fs.writeFile(temp, bytes)
          await Fs.rename(temp, path)
        } catch (cause) {
          await Fs.rm(temp, { force: true })
          throw cause
        }
        const stat = await Fs.stat(path, { bigint: true })
        return { etag: await etagOf(path, stat, bytes) }
      })
    })

    // Chunks appended to a temporary file beside the target, hashed as they go, then renamed into place.
    const upload = <E>(key: string, body: Stream.Stream<Uint8Array, E>) =>
      Effect.gen(function*() {
        const path = yield* keyToPath(root, key, "upload")
        const temp = Path.join(Path.dirname(path), `${TEMP_MARK}${randomUUID()}`)
        const hash = createHash("sha256")
        let size = 0
        const handle = yield* Effect.acquireRelease(
          attempt("upload", key, async () => {
            await Fs.mkdir(Path.dirname(path), { recursive: true })
            return Fs.open(temp, "w")
          }),
          (handle) => Effect.promise(() => handle.close().catch(() => undefined))
        )
        yield* Effect.gen(function*() {
          yield* Stream.runForEach(body, (chunk) => {
            hash.update(chunk)
            size += chunk.byteLength
            return attempt("upload", key, () => handle.write(chunk))
          })
          yield* attempt("upload", key, async () => {
            await handle.sync()
            await Fs.rename(temp, path)
          })
        }).pipe(Effect.onError(() => Effect.promise(() => Fs.rm(temp, { force: true }))))
        const etag = hash.digest("hex")
        const stat = yield* attempt("upload", key, () => Fs.stat(path, { bigint: true }))
        etags.set(path, { stamp: stampOf(stat), etag })
        return { etag, size, parts: 0 }
      }).pipe(Effect.scoped, Effect.withSpan("ObjectStore.upload"))

    const del = Effect.fn("ObjectStore.delete")(function*(key: string) {
      const path = yield* keyToPath(root, key, "delete")
      yield* attempt("delete", key, async () => {
        etags.delete(path)
        try {
          await Fs.unlink(path)
        } catch (cause) {
          if (!isMissing(cause)) throw cause
        }
      })
    })

    const list = Effect.fn("ObjectStore.list")(function*(prefix: string, options?: { readonly etags?: boolean }) {
      const withEtags = options?.etags !== false
      // Only the folders the prefix can reach are walked: "lists/gl" walks `lists/`.
      const slash = prefix.lastIndexOf("/")
      const base = slash < 0 ? "" : prefix.slice(0, slash)
      const start = base === "" ? root : yield* keyToPath(root, base, "list")
      return yield* attempt("list", prefix, async () => {
        const objects: Array<ListedObject> = []
        let entries: Array<string>
        try {
          entries = await Fs.readdir(start, { recursive: true })
        } catch (cause) {
          if (isMissing(cause)) return objects
          throw cause
        }
        for (const entry of entries) {
          const relative = entry.split(Path.sep).join("/")
          const key = base === "" ? relative : `${base}/${relative}`
          if (!key.startsWith(prefix) || relative.split("/").some((s) => s.startsWith(TEMP_MARK))) continue
          const path = Path.join(start, entry)
          const stat = await statFile(path)
          if (stat === undefined) continue
          objects.push({ key, etag: withEtags ? await etagOf(path, stat) : "", size: Number(stat.size) })
        }
        return objects.sort((a, b) => compareKeys(a.key, b.key))
      })
    })

    return ObjectStore.of({ get, getStream, head, put, upload, delete: del, list })
  })
