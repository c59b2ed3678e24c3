// The rich-error codec both ends share: google.rpc.Status with one ErrorInfo (domain vmm.debug),
// carried in the `grpc-status-details-bin` trailer of a failed call, or inline in a message
// (a Session stream's `error`, a ReadMemoryMany range's `error`).
//
// The ErrorInfo is followed by a google.protobuf.Struct with the same reason, domain and
// metadata. Clients read the ErrorInfo; the Struct is there for tools that decode details only
// with the types compiled into them (buf curl prints a detail's JSON under "debug" only for
// those, whatever reflection serves), so that they show the reason instead of base64.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { StructSchema, anyPack, anyUnpack } from "@bufbuild/protobuf/wkt";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb";
import { StatusSchema, type Status as WireStatus } from "../../gen/google/rpc/status_pb";

/** Metadata key of the serialized google.rpc.Status (the gRPC "rich error" convention). */
export const STATUS_DETAILS_KEY = "grpc-status-details-bin";

/** The ErrorInfo domain of every vmm-debug error. */
export const ERROR_DOMAIN = "vmm.debug";

/** A failed call as both ends see it: status code, message, and the ErrorInfo detail. */
export interface ErrorDetails {
  code: number;
  message: string;
  reason?: string;
  domain?: string;
  metadata: Record<string, string>;
}

/** `google.rpc.Status { code, message, details: [Any(ErrorInfo), Any(Struct)] }` as a message. */
export function statusToWire(status: { code: number; message: string; reason: string; metadata: Record<string, string> }): WireStatus {
  const info = create(ErrorInfoSchema, { reason: status.reason, domain: ERROR_DOMAIN, metadata: status.metadata });
  const text = (value: string) => ({ kind: { case: "stringValue" as const, value } });
  const metadata = Object.fromEntries(Object.entries(status.metadata).map(([k, v]) => [k, text(v)]));
  const readable = create(StructSchema, {
    fields: {
      reason: text(status.reason),
      domain: text(ERROR_DOMAIN),
      metadata: { kind: { case: "structValue", value: { fields: metadata } } },
    },
  });
  return create(StatusSchema, {
    code: status.code,
    message: status.message,
    details: [anyPack(ErrorInfoSchema, info), anyPack(StructSchema, readable)],
  });
}

/** The code, message and (first) ErrorInfo of a google.rpc.Status message. */
export function statusFromWire(status: WireStatus): ErrorDetails {
  const details: ErrorDetails = { code: status.code, message: status.message, metadata: {} };
  for (const any of status.details) {
    const info = anyUnpack(any, ErrorInfoSchema);
    if (info) {
      details.reason = info.reason;
      details.domain = info.domain;
      details.metadata = { ...info.metadata };
      break;
    }
  }
  return details;
}

/** Serializes a status for the `grpc-status-details-bin` trailer. */
export function encodeStatusDetails(status: { code: number; message: string; reason: string; metadata: Record<string, string> }): Uint8Array {
  return toBinary(StatusSchema, statusToWire(status));
}

/** Decodes a `grpc-status-details-bin` value; undefined if it is not a google.rpc.Status. */
export function decodeStatusDetails(bytes: Uint8Array): ErrorDetails | undefined {
  try {
    return statusFromWire(fromBinary(StatusSchema, bytes));
  } catch {
    return undefined;
  }
}
