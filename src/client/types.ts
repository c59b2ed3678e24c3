// The SDK's public types: the domain of the debug interface, bigint for every u64.

export type Arch = "x86_64" | "aarch64";

/** An x86 segment register, hidden part included. */
export interface SegmentRegister {
  base: bigint;
  limit: number;
  selector: number;
  /** Access bits packed as type | S<<4 | DPL<<5 | P<<7 | AVL<<12 | L<<13 | DB<<14 | G<<15. */
  attributes: number;
}

/** x86-64 registers; `gp` is RAX RCX RDX RBX RSP RBP RSI RDI R8–R15 (exactly 16). */
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
}

/** aarch64 registers; `x` is X0–X30 (exactly 31). */
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

/** One VP's registers, tagged with the architecture. */
export type DebuggerVpState = { arch: "x86_64"; state: X86VpState } | { arch: "aarch64"; state: Aarch64VpState };

/** A guest virtual address as VP `vp` (default 0) translates it, or a guest physical address. */
export type GuestAddress = { gva: bigint; vp?: number } | { gpa: bigint };

/** What a hardware slot watches: instruction fetch, data writes, or data reads and writes. */
export type BreakpointType = "execute" | "write" | "readWrite";

/** Bytes a hardware slot watches; the address must be aligned to it. Execute breakpoints are 1. */
export type BreakpointSize = 1 | 2 | 4 | 8;

export interface HardwareBreakpoint {
  address: bigint;
  type: BreakpointType;
  size: BreakpointSize;
}

/** A data watchpoint (a HardwareBreakpoint that is not "execute"). */
export interface Watchpoint {
  address: bigint;
  type: "write" | "readWrite";
  size: BreakpointSize;
}

/** A VP's single-step flag and hardware slots (slot i is DRi; null is a free slot). */
export interface DebugState {
  singleStep: boolean;
  breakpoints: (HardwareBreakpoint | null)[];
}

/** Why the VM stopped. */
export type DebugStopReason =
  | { kind: "break" }
  | { kind: "powerOff" }
  | { kind: "reset" }
  | { kind: "tripleFault"; vp: number }
  | { kind: "singleStep"; vp: number }
  | { kind: "hwBreakpoint"; vp: number; breakpoint: HardwareBreakpoint }
  | { kind: "watchdog" };

export interface MemoryRegion {
  gpa: bigint;
  size: bigint;
  name: string;
}

export type RunState = "running" | "stopped" | "poweredOff" | "gone";

/** The session controlling a VM. */
export interface Attachment {
  /** The holder's peer address as the server sees it. */
  holder: string;
  attachedAt: Date;
  leaseExpiresAt: Date;
}

export interface VmInfo {
  id: string;
  arch: Arch;
  vpCount: number;
  memoryRegions: MemoryRegion[];
  runState: RunState;
  /** "emu" or "qemu". */
  backend: string;
  /** Absent when no debugger is attached. */
  attached?: Attachment;
}

/** Options every SDK call accepts. */
export interface CallOptions {
  /** Cancels the call (the error is CANCELLED). */
  signal?: AbortSignal;
  /** Gives up after this many milliseconds (the error is DEADLINE_EXCEEDED); the server sees a cancel. */
  deadlineMs?: number;
}
