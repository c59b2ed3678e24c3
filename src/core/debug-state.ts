// Validation of hardware breakpoint slots (DR7 rules), shared by every backend.
import { Code, VmmError, hex } from "./errors";
import {
  BreakpointSize,
  BreakpointType,
  type DebugState,
  type HardwareBreakpoint,
  SLOT_COUNT,
  breakpointLength,
} from "./types";

/**
 * Checks a debug state against the DR7 rules and returns it with exactly four slots.
 * Refused: more than four slots, the I/O (INVALID) type, EXECUTE with a size other than
 * BYTE, an address not aligned to the size, a non-canonical address.
 */
export function validateDebugState(state: DebugState): DebugState {
  if (state.breakpoints.length > SLOT_COUNT) {
    throw new VmmError(
      Code.InvalidArgument,
      "TOO_MANY_BREAKPOINTS",
      `${state.breakpoints.length} breakpoint slots given; the hardware has ${SLOT_COUNT} (DR0-DR3)`,
      { count: String(state.breakpoints.length), max: String(SLOT_COUNT) },
    );
  }
  const slots: (HardwareBreakpoint | null)[] = [null, null, null, null];
  state.breakpoints.forEach((bp, slot) => {
    if (bp) slots[slot] = validateBreakpoint(bp, slot);
  });
  return { singleStep: state.singleStep, breakpoints: slots };
}

function validateBreakpoint(bp: HardwareBreakpoint, slot: number): HardwareBreakpoint {
  const meta = { slot: String(slot), address: hex(bp.address), type: String(bp.type), size: String(bp.size) };
  if (!(bp.type in BreakpointType)) {
    throw new VmmError(Code.InvalidArgument, "INVALID_ENUM", `slot ${slot}: unknown breakpoint type ${bp.type}`, meta);
  }
  if (!(bp.size in BreakpointSize)) {
    throw new VmmError(Code.InvalidArgument, "INVALID_ENUM", `slot ${slot}: unknown breakpoint size ${bp.size}`, meta);
  }
  if (bp.type === BreakpointType.Invalid) {
    throw new VmmError(
      Code.InvalidArgument,
      "BREAKPOINT_INVALID_TYPE",
      `slot ${slot}: breakpoint type INVALID (DR7 R/W=10b, I/O breakpoints) is not supported; use EXECUTE, WRITE or READ_OR_WRITE`,
      meta,
    );
  }
  if (bp.type === BreakpointType.Execute && bp.size !== BreakpointSize.Byte) {
    throw new VmmError(
      Code.InvalidArgument,
      "BREAKPOINT_INVALID_SIZE",
      `slot ${slot}: an EXECUTE breakpoint must have size BYTE (DR7 LEN=00b)`,
      meta,
    );
  }
  if (bp.address < 0n || bp.address > 0xffff_ffff_ffff_ffffn) {
    throw new VmmError(Code.InvalidArgument, "VALUE_OUT_OF_RANGE", `slot ${slot}: address is not a u64`, meta);
  }
  const length = BigInt(breakpointLength(bp.size));
  if (bp.address % length !== 0n) {
    throw new VmmError(
      Code.InvalidArgument,
      "BREAKPOINT_MISALIGNED",
      `slot ${slot}: address ${hex(bp.address)} is not aligned to the breakpoint size (${length} bytes)`,
      { ...meta, alignment: String(length) },
    );
  }
  return { address: bp.address, type: bp.type, size: bp.size };
}
