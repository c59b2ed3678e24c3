// Domain types, the VmmCore port, errors and architecture helpers shared by every backend.
export type {
  Aarch64VpState,
  Arch,
  DebugState,
  DebugStopReason,
  DebuggerVpState,
  GuestAddress,
  HardwareBreakpoint,
  MemoryRegion,
  RunState,
  RegisterDelta,
  SegmentRegister,
  SoftwareBreakpoint,
  SoftwareBreakpointAddress,
  StepResult,
  StepTrace,
  X86FpState,
  X86VpState,
} from "./types";
export * as x86Fp from "./x86-fp";
export { BreakpointSize, BreakpointType, REGISTER_COUNT, SLOT_COUNT, breakpointLength, emptyDebugState } from "./types";
export { Code, ERROR_DOMAIN, VmmError, checkStepCount, checkVp, errors, hex } from "./errors";
export type { Reason } from "./errors";
export type { GoneListener, SoftwareBreakpoints, StopListener, VmmCore } from "./vmm-core";
export type { Capabilities, MemoryReadsWhileRunning } from "./capabilities";
export { SEGMENT_PARTS, X86_SEGMENT_FIELDS, vpStateFieldNames } from "./capabilities";
export {
  MAX_SOFTWARE_BREAKPOINTS,
  SoftwareBreakpointTable,
  describeSoftwareBreakpointAddress,
  softwareBreakpointNotFound,
} from "./software-breakpoints";
export type { SoftwareBreakpointInsert } from "./software-breakpoints";
export { MAX_STEP_COUNT } from "./vmm-core";
export { validateDebugState } from "./debug-state";
export { validateVpState } from "./vp-state";
export { checkedLength } from "./memory-access";
export { applyRegisterDelta, diffRegisters, flattenVpState } from "./register-numbering";
export { PartialReadBuilder, translateRange, translateRangePartial } from "./translate";
export type { GpaPiece, PageTranslation, PartialRead, ReadPiece, UnreadablePiece } from "./translate";
export { summarizeTranslation } from "./translation";
export type { GvaTranslation, TranslationFault, WalkDecision, WalkStep } from "./translation";
export { isCanonicalX86, walkX86, walkX86Detailed, x86PagingMode } from "./x86/page-walk";
export type { X86PagingMode, X86PagingRegs, X86WalkResult } from "./x86/page-walk";
export { walkAarch64, walkAarch64Detailed } from "./aarch64/page-walk";
export type { Aarch64PagingRegs, Aarch64WalkResult } from "./aarch64/page-walk";
export * from "./elf-core";
export { ConsoleLog } from "./console-log";
export type { ConsoleEndReason, ConsoleItem, ConsoleLogOptions, ConsoleSource, ConsoleSubscribeOptions } from "./console-log";
