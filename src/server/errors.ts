// Server-side errors: reasons beyond the core's, and the one mapping of thrown values to statuses.
import { randomBytes } from "node:crypto";
import { ServerError, Status, type CallContext, type ServerMiddleware } from "nice-grpc";
import { Code, VmmError, type Reason } from "../core";
import { STATUS_DETAILS_KEY, encodeStatusDetails } from "../wire";
import type { Logger } from "./logger";

/**
 * Reasons only the server raises, on top of the core's `Reason` union:
 * - RESUME_IN_PROGRESS: a second Resume while one is waiting for a stop (FAILED_PRECONDITION).
 * - SESSION_ENDED: a waiting Resume whose session was detached or lapsed (ABORTED).
 * - SERVER_SHUTTING_DOWN: a call while the server closes (UNAVAILABLE).
 * - SESSION_VM_MISMATCH: `vm` names another VM than the session's (INVALID_ARGUMENT).
 * - SESSION_MISMATCH: a stream operation carries another session's id, or a unary Resume names a
 *   stream's session (INVALID_ARGUMENT / FAILED_PRECONDITION).
 * - STREAM_PROTOCOL: a Session message out of place (INVALID_ARGUMENT).
 * - STREAM_OVERFLOW: a Session stream's client stopped reading (RESOURCE_EXHAUSTED).
 * - CONSOLE_UNAVAILABLE: WatchConsole of a VM whose backend does not capture its console
 *   (FAILED_PRECONDITION).
 * - CALL_LIMIT, STREAM_LIMIT, RATE_LIMIT: the calling principal has as many calls or streams in
 *   flight as it may, or is over its rate (RESOURCE_EXHAUSTED; see auth/limits.ts).
 */
export type ServerReason =
  | Reason
  | "RESUME_IN_PROGRESS"
  | "SESSION_ENDED"
  | "SERVER_SHUTTING_DOWN"
  | "SESSION_VM_MISMATCH"
  | "SESSION_MISMATCH"
  | "STREAM_PROTOCOL"
  | "STREAM_OVERFLOW"
  | "CALL_LIMIT"
  | "STREAM_LIMIT"
  | "RATE_LIMIT"
  | "CONSOLE_UNAVAILABLE"
  | AuthReason;

/**
 * Who may call (auth/):
 * - TOKEN_REQUIRED, TOKEN_INVALID, TOKEN_REVOKED, CERTIFICATE_REQUIRED, PRINCIPAL_MISMATCH: the
 *   caller is not authenticated (UNAUTHENTICATED).
 * - ROLE_REQUIRED: the caller's role does not allow the call (PERMISSION_DENIED).
 * - SESSION_NOT_YOURS: the session id belongs to another principal (PERMISSION_DENIED).
 */
export type AuthReason =
  | "TOKEN_REQUIRED"
  | "TOKEN_INVALID"
  | "TOKEN_REVOKED"
  | "CERTIFICATE_REQUIRED"
  | "PRINCIPAL_MISMATCH"
  | "ROLE_REQUIRED"
  | "SESSION_NOT_YOURS";

/** A `VmmError` that may carry a server-only reason (the core's class, so one mapping serves both). */
export function serverError(
  code: Code,
  reason: ServerReason,
  message: string,
  metadata: Record<string, string> = {},
): VmmError {
  // VmmError types `reason` as the core's union; at run time it is the string the client sees.
  return new VmmError(code, reason as Reason, message, metadata);
}

/**
 * Errors echo what the client sent (a VM name, a session id). Clipped, so a 1 MiB name cannot make
 * the status too large to send in trailers (the call would hang until its deadline).
 */
const MAX_MESSAGE = 2048;
const MAX_METADATA_VALUE = 256;

export function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length - max} more characters)`;
}

/** What a failed call reports: status code, message, and the ErrorInfo detail. */
export interface ErrorStatus {
  code: Status;
  message: string;
  reason: string;
  metadata: Record<string, string>;
}

/**
 * The one place thrown values become statuses: a VmmError keeps its code and reason, a nice-grpc
 * ServerError its code, an abort is CANCELLED; anything else is INTERNAL with a generic message
 * (`unexpected` tells the caller to log it — internals never reach the client).
 */
export function toErrorStatus(thrown: unknown): ErrorStatus & { unexpected?: { incident: string } } {
  if (thrown instanceof VmmError) {
    const metadata = Object.fromEntries(Object.entries(thrown.metadata).map(([k, v]) => [k, clip(v, MAX_METADATA_VALUE)]));
    return { code: thrown.code as number as Status, message: clip(thrown.message, MAX_MESSAGE), reason: thrown.reason, metadata };
  }
  if (thrown instanceof ServerError) {
    return { code: thrown.code, message: thrown.details, reason: Status[thrown.code] ?? "UNKNOWN", metadata: {} };
  }
  if (isAbortError(thrown)) {
    return { code: Status.CANCELLED, message: "the call was cancelled", reason: "CANCELLED", metadata: {} };
  }
  const incident = randomBytes(4).toString("hex");
  return {
    code: Status.INTERNAL,
    message: `internal error in the vmm-debug server (incident ${incident}; the server log has the details)`,
    reason: "INTERNAL",
    metadata: { incident },
    unexpected: { incident },
  };
}

/**
 * Server middleware: whatever a handler throws leaves as a gRPC status whose trailer carries the
 * google.rpc.Status detail; unexpected errors are logged with an incident id.
 */
export function createErrorMiddleware(logger: Logger): ServerMiddleware {
  return async function* errorMiddleware(call, context: CallContext) {
    try {
      return yield* call.next(call.request, context);
    } catch (thrown) {
      const status = toErrorStatus(thrown);
      if (status.unexpected) {
        logger.warn("unexpected error in a handler", {
          rpc: call.method.path,
          peer: context.peer,
          incident: status.unexpected.incident,
          error: thrown instanceof Error ? (thrown.stack ?? thrown.message) : String(thrown),
        });
      }
      context.trailer.set(STATUS_DETAILS_KEY, encodeStatusDetails(status));
      throw new ServerError(status.code, status.message);
    }
  };
}

export function isAbortError(thrown: unknown): boolean {
  // Aborts may be DOMExceptions (not always `instanceof Error` across realms): go by name.
  return typeof thrown === "object" && thrown !== null && (thrown as { name?: unknown }).name === "AbortError";
}

/** Status name as gRPC spells it ("FAILED_PRECONDITION"). */
export function statusName(code: number): string {
  return Status[code] ?? `CODE_${code}`;
}
