/**
 * grpc-js service definitions from the protobuf-es descriptors of src/grpc/gen: one set of generated types for the
 * project, and protobuf-es as the codec (bench/RESULTS.md "gRPC library choice": the codec costs the same as
 * protobuf.js; the transport is what differs). Messages a handler answers must come from `create(Schema, …)`.
 */
import { fromBinary, toBinary } from "@bufbuild/protobuf"
import type { DescMessage, DescMethod, DescService, MessageShape } from "@bufbuild/protobuf"
import type { MethodDefinition, ServiceDefinition } from "@grpc/grpc-js"

const codec = <Desc extends DescMessage>(desc: Desc) => ({
  decode: (bytes: Buffer): MessageShape<Desc> => fromBinary(desc, bytes),
  encode: (message: MessageShape<Desc>): Buffer => {
    const bytes = toBinary(desc, message)
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  }
})

const methodDefinition = (serviceName: string, method: DescMethod): MethodDefinition<unknown, unknown> => {
  const input = codec(method.input)
  const output = codec(method.output)
  return {
    path: `/${serviceName}/${method.name}`,
    requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
    responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
    requestSerialize: input.encode as (m: unknown) => Buffer,
    requestDeserialize: input.decode,
    responseSerialize: output.encode as (m: unknown) => Buffer,
    responseDeserialize: output.decode,
    originalName: method.localName
  }
}

/**
 * The definition of `service`, its methods keyed by their local names (`sendMessage`). `servedAs` serves the same
 * messages under another service name: grpc.reflection.v1alpha is v1 under its old package, identical on the wire.
 */
export const serviceDefinition = (service: DescService, servedAs: string = service.typeName): ServiceDefinition =>
  Object.fromEntries(service.methods.map((m) => [m.localName, methodDefinition(servedAs, m)]))
