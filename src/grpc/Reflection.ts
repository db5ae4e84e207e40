/**
 * gRPC server reflection (grpc.reflection.v1 and its predecessor v1alpha, which older grpcurl and Postman still
 * call): the services this server offers and their file descriptors with every dependency, so tools work without
 * the .proto files. It describes the contract only, no data, and needs no authentication.
 */
import { create, toBinary } from "@bufbuild/protobuf"
import type { DescFile, DescMessage } from "@bufbuild/protobuf"
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt"
import { status as Code } from "@grpc/grpc-js"
import type { handleBidiStreamingCall, UntypedServiceImplementation } from "@grpc/grpc-js"
import type { Calls } from "./Calls.ts"
import { reflectionShuttingDown } from "./Errors.ts"
import { file_grpc_health_v1_health, Health } from "./gen/grpc/health/v1/health_pb.ts"
import { file_grpc_reflection_v1_reflection, ServerReflection, ServerReflectionResponseSchema } from "./gen/grpc/reflection/v1/reflection_pb.ts"
import type { ServerReflectionRequest, ServerReflectionResponse } from "./gen/grpc/reflection/v1/reflection_pb.ts"
import * as V1alpha from "./gen/grpc/reflection/v1alpha/reflection_pb.ts"
import { file_smsgw_v1_messages, MessageService } from "./gen/smsgw/v1/messages_pb.ts"

/** The services a `list_services` names. */
export const servedServices = [MessageService, Health, ServerReflection, V1alpha.ServerReflection].map((s) => s.typeName)

const roots: ReadonlyArray<DescFile> = [
  file_smsgw_v1_messages,
  file_grpc_health_v1_health,
  file_grpc_reflection_v1_reflection,
  V1alpha.file_grpc_reflection_v1alpha_reflection
]

/** Every file reachable from the roots, by name, and the file that declares each fully-qualified name. */
const index = () => {
  const files = new Map<string, DescFile>()
  const symbols = new Map<string, DescFile>()
  const addMessage = (file: DescFile, m: DescMessage) => {
    symbols.set(m.typeName, file)
    for (const f of m.fields) symbols.set(`${m.typeName}.${f.name}`, file)
    for (const e of m.nestedEnums) symbols.set(e.typeName, file)
    for (const n of m.nestedMessages) addMessage(file, n)
  }
  const addFile = (file: DescFile) => {
    if (files.has(file.proto.name)) return
    files.set(file.proto.name, file)
    for (const m of file.messages) addMessage(file, m)
    for (const e of file.enums) symbols.set(e.typeName, file)
    for (const s of file.services) {
      symbols.set(s.typeName, file)
      for (const m of s.methods) symbols.set(`${s.typeName}.${m.name}`, file)
    }
    for (const d of file.dependencies) addFile(d)
  }
  roots.forEach(addFile)
  return { files, symbols }
}

/** A file and, after it, every file it imports (transitively), each once, serialized. */
const withDependencies = (file: DescFile): Array<Uint8Array> => {
  const seen = new Set<string>()
  const out: Array<Uint8Array> = []
  const visit = (f: DescFile) => {
    if (seen.has(f.proto.name)) return
    seen.add(f.proto.name)
    out.push(toBinary(FileDescriptorProtoSchema, f.proto))
    f.dependencies.forEach(visit)
  }
  visit(file)
  return out
}

/** One reflection request's answer (the shape is the same in v1 and v1alpha). */
const answer = (known: ReturnType<typeof index>, request: ServerReflectionRequest): ServerReflectionResponse => {
  const base = { validHost: request.host, originalRequest: request }
  const notFound = (what: string) =>
    create(ServerReflectionResponseSchema, {
      ...base,
      messageResponse: { case: "errorResponse", value: { errorCode: Code.NOT_FOUND, errorMessage: `${what} not found` } }
    })
  const files = (file: DescFile | undefined, what: string) =>
    file === undefined
      ? notFound(what)
      : create(ServerReflectionResponseSchema, {
        ...base,
        messageResponse: { case: "fileDescriptorResponse", value: { fileDescriptorProto: withDependencies(file) } }
      })
  const asked = request.messageRequest
  switch (asked.case) {
    case "listServices":
      return create(ServerReflectionResponseSchema, {
        ...base,
        messageResponse: { case: "listServicesResponse", value: { service: servedServices.map((name) => ({ name })) } }
      })
    case "fileByFilename":
      return files(known.files.get(asked.value), `file ${asked.value}`)
    case "fileContainingSymbol":
      return files(known.symbols.get(asked.value.replace(/^\./, "")), `symbol ${asked.value}`)
    case "fileContainingExtension":
      return notFound(`extension ${asked.value.extensionNumber} of ${asked.value.containingType}`)
    case "allExtensionNumbersOfType":
      return known.symbols.has(asked.value)
        ? create(ServerReflectionResponseSchema, {
          ...base,
          messageResponse: { case: "allExtensionNumbersResponse", value: { baseTypeName: asked.value, extensionNumber: [] } }
        })
        : notFound(`type ${asked.value}`)
    default:
      return create(ServerReflectionResponseSchema, {
        ...base,
        messageResponse: { case: "errorResponse", value: { errorCode: Code.INVALID_ARGUMENT, errorMessage: "empty request" } }
      })
  }
}

/**
 * ServerReflectionInfo: each request answered in order on the same stream. It serves v1 and, under its old name,
 * v1alpha (Definition.ts `servedAs`): their messages are the same on the wire. A stream counts as a call in flight
 * and, since a tool (grpcui) may hold it open indefinitely, ends with UNAVAILABLE as soon as the server drains.
 */
export const makeReflectionService = (calls: Calls, draining: AbortSignal): UntypedServiceImplementation => {
  const known = index()
  const serverReflectionInfo: handleBidiStreamingCall<ServerReflectionRequest, ServerReflectionResponse> = (call) => {
    const done = calls.begin()
    const drain = () => {
      call.emit("error", reflectionShuttingDown)
      finish()
    }
    const finish = () => {
      draining.removeEventListener("abort", drain)
      done()
    }
    if (draining.aborted) return drain()
    draining.addEventListener("abort", drain, { once: true })
    call.on("data", (request: ServerReflectionRequest) => call.write(answer(known, request)))
    call.on("end", () => {
      call.end()
      finish()
    })
    call.on("cancelled", finish)
    call.on("error", () => undefined)
  }
  return { serverReflectionInfo }
}
