// Adapts protobuf-es v2 service descriptors to the ts-proto-shaped definitions nice-grpc takes
// (shared by the server and the SDK, which both import it from src/wire).
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { DescMessage, DescMethod, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { DebugService } from "../../gen/vmm/debug/v1/debug_service_pb";
import { VmService } from "../../gen/vmm/debug/v1/vm_service_pb";
import { Health } from "../../gen/grpc/health/v1/health_pb";

/** A message type as nice-grpc's ts-proto support expects it. */
export interface NiceMessageType<Desc extends DescMessage> {
  encode(message: MessageShape<Desc>): { finish(): Uint8Array };
  decode(input: Uint8Array): MessageShape<Desc>;
  fromPartial(object: MessageInitShape<Desc>): MessageShape<Desc>;
}

type IsRequestStream<K> = K extends "client_streaming" | "bidi_streaming" ? true : false;
type IsResponseStream<K> = K extends "server_streaming" | "bidi_streaming" ? true : false;

/** A method in ts-proto shape (nice-grpc keeps `options`, so retry middleware sees idempotency). */
export interface NiceMethodDefinition<M extends GenServiceMethods[string]> {
  name: string;
  requestType: NiceMessageType<M["input"]>;
  requestStream: IsRequestStream<M["methodKind"]>;
  responseType: NiceMessageType<M["output"]>;
  responseStream: IsResponseStream<M["methodKind"]>;
  options: { idempotencyLevel?: "IDEMPOTENT" | "NO_SIDE_EFFECTS" };
}

/** A service in ts-proto shape, keyed by the protobuf-es local method names (`readMemory`). */
export interface NiceServiceDefinition<S extends GenServiceMethods> {
  name: string;
  fullName: string;
  methods: { [K in keyof S]: NiceMethodDefinition<S[K]> };
}

/** Builds the nice-grpc definition of a protobuf-es `GenService` (any service, not only ours). */
export function createServiceDefinition<S extends GenServiceMethods>(service: GenService<S>): NiceServiceDefinition<S> {
  const methods: Record<string, NiceMethodDefinition<GenServiceMethods[string]>> = {};
  for (const method of service.methods) {
    methods[method.localName] = createMethodDefinition(method);
  }
  return { name: service.name, fullName: service.typeName, methods: methods as NiceServiceDefinition<S>["methods"] };
}

function createMethodDefinition(method: DescMethod): NiceMethodDefinition<GenServiceMethods[string]> {
  const options: NiceMethodDefinition<GenServiceMethods[string]>["options"] = {};
  if (method.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS) options.idempotencyLevel = "NO_SIDE_EFFECTS";
  if (method.idempotency === MethodOptions_IdempotencyLevel.IDEMPOTENT) options.idempotencyLevel = "IDEMPOTENT";
  return {
    name: method.name,
    requestType: messageType(method.input),
    requestStream: (method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming") as never,
    responseType: messageType(method.output),
    responseStream: (method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming") as never,
    options,
  };
}

/**
 * Messages one server sends to many clients unchanged (a VM event to every observer): each
 * object is encoded once and its bytes reused. Such messages must never be changed once sent.
 */
const SHARED_MESSAGES = new Set<string>(["vmm.debug.v1.WatchEventsResponse"]);

function messageType<Desc extends DescMessage>(schema: Desc): NiceMessageType<Desc> {
  if (SHARED_MESSAGES.has(schema.typeName)) {
    const encoded = new WeakMap<object, Uint8Array>();
    return {
      encode: (message) => {
        let bytes = encoded.get(message);
        if (!bytes) {
          bytes = toBinary(schema, message);
          encoded.set(message, bytes);
        }
        const out = bytes;
        return { finish: () => out };
      },
      decode: (input) => fromBinary(schema, input),
      fromPartial: (object) => create(schema, object),
    };
  }
  return {
    encode: (message) => {
      const bytes = toBinary(schema, message);
      return { finish: () => bytes };
    },
    decode: (input) => fromBinary(schema, input),
    fromPartial: (object) => create(schema, object),
  };
}

/** vmm.debug.v1.DebugService for nice-grpc. */
export const DebugServiceDefinition = createServiceDefinition(DebugService);
export type DebugServiceDefinition = typeof DebugServiceDefinition;

/** vmm.debug.v1.VmService for nice-grpc. */
export const VmServiceDefinition = createServiceDefinition(VmService);
export type VmServiceDefinition = typeof VmServiceDefinition;

/** grpc.health.v1.Health for nice-grpc (from the vendored health.proto). */
export const HealthServiceDefinition = createServiceDefinition(Health);
export type HealthServiceDefinition = typeof HealthServiceDefinition;
