// The SDK's one error class, the decoding of google.rpc.Status details, and the client middleware
// that turns every failed call (with its trailer) into a VmmDebugError.
import { ClientError, Status, type CallOptions as NiceCallOptions, type ClientMiddleware, type Metadata } from "nice-grpc";
import { STATUS_DETAILS_KEY, decodeStatusDetails, type ErrorDetails } from "../wire";

/**
 * Every SDK call fails with this: the gRPC status `code` (number) and `codeName`, the stable
 * `reason` and `metadata` of the server's ErrorInfo, the server's `rawMessage`, and `cause`.
 */
export class VmmDebugError extends Error {
  override name = "VmmDebugError";
  readonly code: Status;
  readonly reason: string | undefined;
  readonly metadata: Record<string, string>;
  readonly rawMessage: string;

  constructor(
    code: Status,
    message: string,
    options: { reason?: string; metadata?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(`[${codeName(code)}${options.reason ? ` ${options.reason}` : ""}] ${message}`, { cause: options.cause });
    this.code = code;
    this.reason = options.reason;
    this.metadata = options.metadata ?? {};
    this.rawMessage = message;
  }

  /** "FAILED_PRECONDITION" etc. */
  get codeName(): string {
    return codeName(this.code);
  }

  /** The error a message carries inline (a Session stream's `error`, a ReadMemoryMany range's). */
  static fromDetails(details: ErrorDetails): VmmDebugError {
    return new VmmDebugError(details.code, details.message, { reason: details.reason, metadata: details.metadata });
  }

  /**
   * Turns any thrown value into a VmmDebugError: a gRPC error keeps its code (and, given the call's
   * trailer, the ErrorInfo reason and metadata), an abort is CANCELLED, a platform error is mapped
   * by its errno code, anything else is UNKNOWN.
   */
  static from(thrown: unknown, trailer?: Metadata): VmmDebugError {
    if (thrown instanceof VmmDebugError) return thrown;
    if (thrown instanceof ClientError) {
      const bytes = trailer?.get(STATUS_DETAILS_KEY);
      const details = bytes instanceof Uint8Array ? decodeStatusDetails(bytes) : undefined;
      return new VmmDebugError(thrown.code, thrown.details, {
        reason: details?.reason,
        metadata: details?.metadata,
        cause: thrown,
      });
    }
    // nice-grpc rejects with an AbortError; it may be a DOMException from another realm, so go by name.
    if ((thrown as { name?: unknown } | null)?.name === "AbortError") {
      return cancelledError(thrown);
    }
    const platform = platformStatus(thrown);
    if (platform !== undefined) {
      return new VmmDebugError(platform, thrown instanceof Error ? thrown.message : String(thrown), { cause: thrown });
    }
    return new VmmDebugError(Status.UNKNOWN, thrown instanceof Error ? thrown.message : String(thrown), { cause: thrown });
  }
}

/** The one mapping of platform (errno) errors to status codes. */
function platformStatus(thrown: unknown): Status | undefined {
  const code = (thrown as { code?: unknown } | null)?.code;
  switch (code) {
    case "ECONNREFUSED":
    case "ECONNRESET":
    case "EPIPE":
    case "ENOTFOUND":
    case "EHOSTUNREACH":
    case "ENETUNREACH":
    case "EAI_AGAIN":
      return Status.UNAVAILABLE;
    case "ETIMEDOUT":
      return Status.DEADLINE_EXCEEDED;
    default:
      return undefined;
  }
}

/** @internal An aborted call. */
export function cancelledError(cause?: unknown): VmmDebugError {
  return new VmmDebugError(Status.CANCELLED, "the call was cancelled", { reason: "CANCELLED", cause });
}

/** @internal A call whose `deadlineMs` passed. */
export function deadlineError(deadlineMs: number | undefined, cause?: unknown): VmmDebugError {
  return new VmmDebugError(Status.DEADLINE_EXCEEDED, `no answer within the ${deadlineMs} ms deadline`, { cause });
}

function codeName(code: number): string {
  return Status[code] ?? `CODE_${code}`;
}

/** Call options the SDK's clients accept on top of nice-grpc's. */
export interface DeadlineOptions {
  /** Abort the call after this many milliseconds (DEADLINE_EXCEEDED). */
  deadlineMs?: number;
}

/**
 * Client middleware: applies `deadlineMs`, captures the trailer, and rethrows any failure as a
 * VmmDebugError carrying the server's ErrorInfo.
 */
export const vmmDebugClientMiddleware: ClientMiddleware<DeadlineOptions> = async function* (call, options) {
  const { deadlineMs, signal: outer, onTrailer, ...rest } = options;
  const controller = new AbortController();
  const abortFromOuter = () => controller.abort();
  if (outer?.aborted) controller.abort();
  else outer?.addEventListener("abort", abortFromOuter, { once: true });
  let deadlineHit = false;
  const timer =
    deadlineMs === undefined
      ? undefined
      : setTimeout(() => {
          deadlineHit = true;
          controller.abort();
        }, deadlineMs);
  let trailer: Metadata | undefined;
  const next: NiceCallOptions = {
    ...rest,
    signal: controller.signal,
    onTrailer: (t: Metadata) => {
      trailer = t;
      onTrailer?.(t);
    },
  };
  try {
    return yield* call.next(call.request, next);
  } catch (thrown) {
    if (deadlineHit) {
      throw deadlineError(deadlineMs, thrown);
    }
    throw VmmDebugError.from(thrown, trailer);
  } finally {
    if (timer) clearTimeout(timer);
    outer?.removeEventListener("abort", abortFromOuter);
  }
};
