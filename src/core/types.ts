// Domain types of the debug interface, named after OpenVMM's Rust types; every u64 is a bigint.

/** An x86 segment register, hidden part included (`virt::x86::SegmentRegister`). */
export interface SegmentRegister {
  base: bigint;
  limit: number;
  selector: number;
  /** OpenVMM packing: type | S<<4 | DPL<<5 | P<<7 | AVL<<12 | L<<13 | DB<<14 | G<<15. */
  attributes: number;
}

/** x86-64 VP registers (`debug_rpc::X86VpState`); `gp` is RAX RCX RDX RBX RSP RBP RSI RDI R8–R15. */
export interface X86VpState {
  gp: bigint[];
  rip: bigint;
  rflags: bigint;
  cr0: bigint;
  cr2: bigint;
  cr3: bigint;
  cr4: bigint;
  cr8: bigint;
  efer: bigint;
  kernelGsBase: bigint;
  es: SegmentRegister;
  cs: SegmentRegister;
  ss: SegmentRegister;
  ds: SegmentRegister;
  fs: SegmentRegister;
  gs: SegmentRegister;
  /**
   * Beyond OpenVMM: the x87/SSE state (proto `X86FpState fp = 17`). Backends always fill it on
   * read; a state given to setVpState without it leaves the VP's FP state unchanged.
   */
  fp?: X86FpState;
}

/**
 * The x87 and SSE registers of an x86-64 VP (proto `X86FpState`). Validated shape (convert.ts,
 * validateVpState): 16 × 16-byte `xmm`, 8 × 10-byte `st`, 16-bit words, MXCSR bits 31:16 clear.
 */
export interface X86FpState {
  /** XMM0–XMM15, 16 bytes each, little-endian. */
  xmm: Uint8Array[];
  mxcsr: number;
  /** ST(0)–ST(7) in stack order, 10 bytes each (significand LE, then sign<<15|exponent LE). ST(i) = R((TOP+i) & 7). */
  st: Uint8Array[];
  fcw: number;
  /** With TOP in bits 13:11. */
  fsw: number;
  /** Full tag word, two bits per physical register R0–R7 (0 valid, 1 zero, 2 special, 3 empty). */
  ftw: number;
  /** Last x87 opcode (11 bits). */
  fop: number;
  fip: bigint;
  fdp: bigint;
  /** Read-only (XSETBV); undefined when the backend cannot read it. On write: undefined or the current value. */
  xcr0?: bigint;
}

/** aarch64 VP registers (`debug_rpc::Aarch64VpState`). */
export interface Aarch64VpState {
  x: bigint[];
  spEl0: bigint;
  spEl1: bigint;
  pc: bigint;
  cpsr: bigint;
  sctlrEl1: bigint;
  tcrEl1: bigint;
  ttbr0El1: bigint;
  ttbr1El1: bigint;
}

export type Arch = "x86_64" | "aarch64";

/** `debug_rpc::DebuggerVpState`. */
export type DebuggerVpState =
  | { arch: "x86_64"; state: X86VpState }
  | { arch: "aarch64"; state: Aarch64VpState };

/** `debug_rpc::GuestAddress`. */
export type GuestAddress = { kind: "gva"; vp: number; gva: bigint } | { kind: "gpa"; gpa: bigint };

/** DR7 R/W encodings (`virt::x86::BreakpointType`). */
export enum BreakpointType {
  Execute = 0,
  Invalid = 1,
  Write = 2,
  ReadOrWrite = 3,
}

/** DR7 LEN encodings (`virt::x86::BreakpointSize`): note QWord = 2, DWord = 3. */
export enum BreakpointSize {
  Byte = 0,
  Word = 1,
  QWord = 2,
  DWord = 3,
}

/** `virt::x86::HardwareBreakpoint`. */
export interface HardwareBreakpoint {
  address: bigint;
  type: BreakpointType;
  size: BreakpointSize;
}

/** `debug_rpc::DebugState`: slot i is DRi; null is a disabled slot. Always 4 slots. */
export interface DebugState {
  singleStep: boolean;
  breakpoints: (HardwareBreakpoint | null)[];
}

/** `debug_rpc::DebugStopReason`. */
export type DebugStopReason =
  | { kind: "break" }
  /** `exitStatus`: the status the guest gave through an exit device (isa-debug-exit: (v << 1) | 1). */
  | { kind: "powerOff"; exitStatus?: number }
  | { kind: "reset" }
  | { kind: "tripleFault"; vp: number }
  | { kind: "singleStep"; vp: number }
  | { kind: "hwBreakpoint"; vp: number; breakpoint: HardwareBreakpoint }
  | { kind: "watchdog" }
  /**
   * Beyond OpenVMM: VP `vp` stopped before the instruction at virtual address `address` (its PC)
   * because software breakpoint `id` matched the fetch.
   */
  | { kind: "softwareBreakpoint"; vp: number; address: bigint; id: number };

/**
 * Where a software breakpoint stands: an instruction's virtual address as every VP (no `vp`) or
 * one VP fetches it, or its physical address.
 */
export type SoftwareBreakpointAddress = { kind: "gva"; gva: bigint; vp?: number } | { kind: "gpa"; gpa: bigint };

/**
 * One armed software breakpoint. `id` and `hitCount` are numbers: ids count inserts and hits
 * count stops, both far below 2^53 in any server's life.
 */
export interface SoftwareBreakpoint {
  id: number;
  address: SoftwareBreakpointAddress;
  /** Removed when it fires. */
  oneShot: boolean;
  hitCount: number;
}

/** What a batched step records per instruction. */
export type StepTrace = "none" | "pc" | "registers";

/**
 * The registers one instruction changed: `registers[i]` (a register number, see
 * `REGISTER_COUNT`) now holds `values[i]`.
 */
export interface RegisterDelta {
  registers: number[];
  values: bigint[];
}

/** What a batched step did (`VmmCore.step`). */
export interface StepResult {
  /** Instructions the VP completed (a delivered exception counts as one, as a single step does). */
  executed: number;
  /** The stop that ended the batch before `count` (breakpoint, watchpoint, triple fault, power-off, reset, break). */
  stop?: DebugStopReason;
  /** The VP executed HLT and waits for an interrupt: stepping it further executes nothing. */
  halted?: boolean;
  /** With trace "pc" or "registers": the PC after each executed instruction (length `executed`). */
  pcs?: BigUint64Array;
  /** With trace "registers": what each executed instruction changed (length `executed`). */
  deltas?: RegisterDelta[];
}

/**
 * Register numbers of a RegisterDelta: the fields of the architecture's VP state in proto order,
 * flattened. x86-64: 0-15 gp (RAX…R15), 16 rip, 17 rflags, 18 cr0, 19 cr2, 20 cr3, 21 cr4,
 * 22 cr8, 23 efer, 24 kernel_gs_base, then es cs ss ds fs gs as 4 numbers each (base, limit,
 * selector, attributes): es = 25-28 … gs = 45-48. aarch64: 0-30 x0-x30, 31 sp_el0, 32 sp_el1,
 * 33 pc, 34 cpsr, 35 sctlr_el1, 36 tcr_el1, 37 ttbr0_el1, 38 ttbr1_el1.
 */
export const REGISTER_COUNT = { x86_64: 49, aarch64: 39 } as const;

/** A range of guest RAM. */
export interface MemoryRegion {
  gpa: bigint;
  size: bigint;
  name: string;
}

/** Run state of a VM as a VMM core sees it. */
export type RunState = "running" | "stopped" | "poweredOff" | "gone";

export const SLOT_COUNT = 4;

/** Bytes a breakpoint of `size` watches. */
export function breakpointLength(size: BreakpointSize): 1 | 2 | 4 | 8 {
  switch (size) {
    case BreakpointSize.Byte:
      return 1;
    case BreakpointSize.Word:
      return 2;
    case BreakpointSize.DWord:
      return 4;
    case BreakpointSize.QWord:
      return 8;
  }
}

/** A debug state with single-step off and every slot disabled. */
export function emptyDebugState(): DebugState {
  return { singleStep: false, breakpoints: [null, null, null, null] };
}
