// The one error type of the domain: a status code, a stable reason, and the offending values.
import { MAX_STEP_COUNT } from "./vmm-core";

/** gRPC status codes (numeric values as on the wire), so the server maps errors 1:1. */
export enum Code {
  Cancelled = 1,
  Unknown = 2,
  InvalidArgument = 3,
  DeadlineExceeded = 4,
  NotFound = 5,
  AlreadyExists = 6,
  PermissionDenied = 7,
  ResourceExhausted = 8,
  FailedPrecondition = 9,
  Aborted = 10,
  OutOfRange = 11,
  Unimplemented = 12,
  Internal = 13,
  Unavailable = 14,
  Unauthenticated = 16,
}

/** Stable machine-readable reasons (google.rpc.ErrorInfo.reason, domain "vmm.debug"). */
export type Reason =
  | "VM_NOT_FOUND"
  | "VM_AMBIGUOUS"
  | "VP_OUT_OF_RANGE"
  | "VM_RUNNING"
  | "VM_POWERED_OFF"
  | "NOT_ATTACHED"
  | "SESSION_CONFLICT"
  | "GPA_UNMAPPED"
  | "GVA_NOT_MAPPED"
  | "GVA_NON_CANONICAL"
  | "BREAKPOINT_MISALIGNED"
  | "BREAKPOINT_INVALID_TYPE"
  | "BREAKPOINT_INVALID_SIZE"
  | "TOO_MANY_BREAKPOINTS"
  | "ARCH_MISMATCH"
  | "READ_TOO_LARGE"
  | "MISSING_FIELD"
  | "INVALID_ARRAY_LENGTH"
  | "INVALID_ENUM"
  | "VALUE_OUT_OF_RANGE"
  | "UNSUPPORTED_REGISTER"
  | "VP_STATE_INVALID"
  | "BACKEND_UNAVAILABLE"
  | "BACKEND_REFUSED"
  | "SOFTWARE_BREAKPOINT_NOT_FOUND"
  | "SOFTWARE_BREAKPOINT_UNSUPPORTED"
  | "SOFTWARE_BREAKPOINT_LIMIT"
  | "CANCELLED"
  | "INTERNAL";

export const ERROR_DOMAIN = "vmm.debug";

/** A domain error: what went wrong, the status code to report, and the offending values. */
export class VmmError extends Error {
  override name = "VmmError";
  constructor(
    readonly code: Code,
    readonly reason: Reason,
    message: string,
    readonly metadata: Record<string, string> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Shorthand constructors for the errors every backend raises the same way. */
export const errors = {
  vpOutOfRange(vp: number, vpCount: number): VmmError {
    return new VmmError(
      Code.InvalidArgument,
      "VP_OUT_OF_RANGE",
      `vp ${vp} is out of range: this VM has ${vpCount} VP(s), numbered 0..${vpCount - 1}`,
      { vp: String(vp), vp_count: String(vpCount) },
    );
  },
  vmRunning(vm: string, what: string): VmmError {
    return new VmmError(
      Code.FailedPrecondition,
      "VM_RUNNING",
      `${what} needs the VM stopped, but VM "${vm}" is running: call Break first`,
      { vm },
    );
  },
  gpaUnmapped(gpa: bigint, length: bigint): VmmError {
    return new VmmError(
      Code.OutOfRange,
      "GPA_UNMAPPED",
      `guest physical range 0x${gpa.toString(16)}+0x${length.toString(16)} is not backed by guest RAM (see the VM's memory_regions)`,
      { gpa: hex(gpa), length: String(length) },
    );
  },
  gvaNotMapped(vp: number, gva: bigint, detail: string): VmmError {
    return new VmmError(
      Code.FailedPrecondition,
      "GVA_NOT_MAPPED",
      `guest virtual address 0x${gva.toString(16)} is not mapped by VP ${vp}'s page tables (${detail})`,
      { vp: String(vp), gva: hex(gva) },
    );
  },
  archMismatch(vmArch: string, got: string): VmmError {
    return new VmmError(
      Code.FailedPrecondition,
      "ARCH_MISMATCH",
      `the VM is ${vmArch} but the request carries ${got} state`,
      { vm_arch: vmArch, request_arch: got },
    );
  },
  backendUnavailable(vm: string, detail: string): VmmError {
    return new VmmError(Code.Unavailable, "BACKEND_UNAVAILABLE", `VM "${vm}" is unavailable: ${detail}`, { vm });
  },
  poweredOff(vm: string): VmmError {
    return new VmmError(
      Code.FailedPrecondition,
      "VM_POWERED_OFF",
      `VM "${vm}" has powered off; it can be inspected but not run`,
      { vm },
    );
  },
};

/** 0x-prefixed lower-case hex of a bigint (for metadata and messages). */
export function hex(value: bigint): string {
  return "0x" + value.toString(16);
}

/** Throws VP_OUT_OF_RANGE unless `vp` is a VP index of a VM with `vpCount` VPs. */
export function checkVp(vp: number, vpCount: number): void {
  if (!Number.isInteger(vp) || vp < 0 || vp >= vpCount) throw errors.vpOutOfRange(vp, vpCount);
}

/**
 * Throws VALUE_OUT_OF_RANGE unless `count` is a batched step's instruction count (1..MAX_STEP_COUNT).
 * The backends own this check (VmmCore.step); callers above them rely on it.
 */
export function checkStepCount(count: number): void {
  if (!Number.isInteger(count) || count < 1 || count > MAX_STEP_COUNT) {
    throw new VmmError(
      Code.InvalidArgument,
      "VALUE_OUT_OF_RANGE",
      `count = ${count} is out of range: a step runs 1..${MAX_STEP_COUNT} instructions`,
      { field: "count", value: String(count), max: String(MAX_STEP_COUNT) },
    );
  }
}
