// The SDK's public types: the domain of the debug interface, bigint for every u64.
import type { VmmDebugError } from "./errors";

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
  /**
   * The x87/SSE registers. getVpState always fills it; setVpState without it leaves the VP's FP
   * state unchanged, with it writes the whole FP state.
   */
  fp?: X86FpState;
}

/** x87, SSE and MXCSR registers of an x86-64 VP (proto X86FpState). */
export interface X86FpState {
  /** XMM0–XMM15: exactly 16 values of 16 bytes, little-endian. */
  xmm: Uint8Array[];
  /** MXCSR (bits 31:16 reserved, refused). */
  mxcsr: number;
  /**
   * ST(0)–ST(7) in stack order: exactly 8 values of 10 bytes, the 80-bit value little-endian
   * (significand with its integer bit at bit 63, then sign << 15 | exponent). See x87ToNumber/x87FromNumber.
   */
  st: Uint8Array[];
  /** x87 control word. */
  fcw: number;
  /** x87 status word, TOP in bits 13:11 (ST(i) is physical register (TOP + i) & 7). */
  fsw: number;
  /** Full tag word by physical register R0–R7, two bits each: 0 valid, 1 zero, 2 special, 3 empty. */
  ftw: number;
  /** Last x87 opcode (11 bits); 0 on QEMU. */
  fop: number;
  /** Last x87 instruction address; 0 on QEMU. */
  fip: bigint;
  /** Last x87 operand address; 0 on QEMU. */
  fdp: bigint;
  /** XCR0, read-only; undefined when the backend cannot read it (QEMU). Send it unset or unchanged. */
  xcr0?: bigint;
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
  /**
   * The guest powered the VM off; `exitStatus` when it did so through an exit device (the
   * embedded machine's isa-debug-exit at port 0xF4: a write of v gives (v << 1) | 1).
   */
  | { kind: "powerOff"; exitStatus?: number }
  | { kind: "reset" }
  | { kind: "tripleFault"; vp: number }
  | { kind: "singleStep"; vp: number }
  | { kind: "hwBreakpoint"; vp: number; breakpoint: HardwareBreakpoint }
  | { kind: "watchdog" }
  /** VP `vp` stopped before the instruction at virtual address `address` (its PC): software breakpoint `id`. */
  | { kind: "softwareBreakpoint"; vp: number; address: bigint; id: number };

/**
 * Where a software breakpoint stands: a virtual address as every VP fetches it (or only VP `vp`,
 * when given — unlike a GuestAddress, whose `vp` defaults to 0), or a physical address.
 */
export type SoftwareBreakpointAddress = { gva: bigint; vp?: number } | { gpa: bigint };

/** One armed software breakpoint. Ids and hit counts are numbers (they count inserts and stops). */
export interface SoftwareBreakpoint {
  id: number;
  address: SoftwareBreakpointAddress;
  /** Removed when it fires ("run to here"). */
  oneShot: boolean;
  /** Stops it caused. */
  hitCount: number;
}

/** Options of Session.insertSoftwareBreakpoint(). */
export interface InsertSoftwareBreakpointOptions extends CallOptions {
  /** Remove the breakpoint when it fires ("run to here"). Default false. */
  oneShot?: boolean;
}

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
  /** What the VM's backend can do; absent from a server that predates them. */
  capabilities?: Capabilities;
  /** The exit status of the guest's power-off through an exit device, while it stays powered off. */
  exitStatus?: number;
}

/**
 * What a VM's backend can do, so a client knows before it tries: a request outside these is
 * refused, and none inside them is refused for want of the capability.
 */
export interface Capabilities {
  /** Hardware slots per VP (DebugState.breakpoints). */
  hardwareSlotsPerVp: number;
  /** The data types a slot takes ("execute" with size 1 is always taken). */
  watchpointTypes: Exclude<BreakpointType, "execute">[];
  /** The sizes a data slot takes. */
  watchpointSizes: BreakpointSize[];
  /** Software breakpoints by GVA for every VP, by GVA for one VP, by GPA (all false: none). */
  softwareBreakpoints: { gva: boolean; perVp: boolean; gpa: boolean };
  /**
   * The VP-state fields setVpState can change, by proto field name: "rip", "kernel_gs_base",
   * "gp" and "x" as a whole, segment parts as "cs.selector", "cs.base" … A field not listed must
   * keep its current value (else UNSUPPORTED_REGISTER).
   */
  setVpStateFields: string[];
  /**
   * How reads are served while the VM runs: "noPause" every read without stopping a VP,
   * "noPauseGpaRam" only GPA reads inside RAM (the others pause the VM briefly), "pauses" every
   * read pauses the VM briefly.
   */
  memoryReadsWhileRunning: "noPause" | "noPauseGpaRam" | "pauses";
  /** Session.step(): the largest count and the traces it records. */
  batchedStepping: { maxCount: number; traces: StepTrace[] };
}

/** Options every SDK call accepts. */
export interface CallOptions {
  /** Cancels the call (the error is CANCELLED). */
  signal?: AbortSignal;
  /** Gives up after this many milliseconds (the error is DEADLINE_EXCEEDED); the server sees a cancel. */
  deadlineMs?: number;
}

/** How a Session talks to the server: one bidirectional Session stream (default), or unary calls. */
export type Transport = "stream" | "unary";

/** Options of VmmDebugClient.attach(). */
export interface AttachOptions extends CallOptions {
  /**
   * "stream" (default): one Session stream is the session (pipelined operations, pushed stops;
   * the session ends when the stream does). "unary": one RPC per operation, with a lease.
   */
  transport?: Transport;
  /**
   * Admin only: end the session that holds the VM, whoever attached it, and attach in its place
   * (its holder's calls fail with SESSION_ENDED; the event feed says DETACH_CAUSE_FORCED).
   */
  takeOver?: boolean;
}

/** A stop as a Session reports it: why, its number in the VM's event feed, and the VP it concerns. */
export interface SessionStop {
  reason: DebugStopReason;
  /** The stop's sequence number in the VM's event feed (watchEvents). */
  sequence: bigint;
  /** Unset for a VM-wide stop (break, power-off, reset, watchdog). */
  vp?: number;
}

/** What a batched step records per instruction. */
export type StepTrace = "none" | "pc" | "registers";

/** Options of a batched Session.step(). */
export interface StepOptions extends CallOptions {
  /** Instructions to run, 1..1,000,000. */
  count: number;
  /** What to record. Default "none". */
  trace?: StepTrace;
}

/**
 * The registers one instruction changed: `registers[i]` now holds `values[i]`. Register numbers
 * flatten the VP state in field order. x86-64: 0-15 gp (RAX…R15), 16 rip, 17 rflags, 18 cr0,
 * 19 cr2, 20 cr3, 21 cr4, 22 cr8, 23 efer, 24 kernelGsBase, then es cs ss ds fs gs with four
 * numbers each (base, limit, selector, attributes): es 25-28 … gs 45-48. aarch64: 0-30 x0-x30,
 * 31 spEl0, 32 spEl1, 33 pc, 34 cpsr, 35 sctlrEl1, 36 tcrEl1, 37 ttbr0El1, 38 ttbr1El1.
 */
export interface RegisterDelta {
  registers: number[];
  values: bigint[];
}

/** What a batched step ran. */
export interface StepResult {
  /** Instructions completed (`count` unless `stop` is set or the VP halted). */
  executed: number;
  /** The stop that ended the batch early, if one did. */
  stop?: DebugStopReason;
  /** The VP executed HLT and waits for an interrupt; stepping it further executes nothing. */
  halted: boolean;
  /** With trace "pc" or "registers": the PC after each executed instruction (else empty). */
  pcs: BigUint64Array;
  /** With trace "registers": what each executed instruction changed (else empty). */
  deltas: RegisterDelta[];
}

/** One range of a scatter/gather read. */
export interface MemoryRange {
  address: GuestAddress;
  length: number;
}

/** One range's outcome: its bytes, or why it could not be read (the error ReadMemory would give). */
export type ReadManyResult = { data: Uint8Array } | { error: VmmDebugError };

/** One VP's registers, as getVpStates() returns them. */
export interface VpStateEntry {
  vp: number;
  state: DebuggerVpState;
}

/** Why a debugger session ended. */
export type DetachCause = "requested" | "leaseExpired" | "streamClosed" | "serverShutdown" | "streamOverflow" | "backendLost" | "forced";

/** What happened to a VM. */
export type VmEventBody =
  | { kind: "attached"; holder: string; stream: boolean }
  | { kind: "detached"; cause: DetachCause }
  | { kind: "resumed" }
  | { kind: "stopped"; reason: DebugStopReason }
  | { kind: "stepped"; vp: number; executed: number; stop?: DebugStopReason }
  | { kind: "debugStateChanged"; vp: number }
  | { kind: "poweredOff" }
  | { kind: "reset" }
  | { kind: "backendLost"; detail: string }
  /** Events this observer will not see (they left the server's ring); `nextSequence` comes next. */
  | { kind: "gap"; nextSequence: bigint };

/** One event of a VM's feed. */
export interface VmEvent {
  /** Per-VM sequence number, from 1 up; 0 on a gap. */
  sequence: bigint;
  /** When it happened (for a gap: when it was received). */
  time: Date;
  vm: string;
  event: VmEventBody;
}

/** Options of VmmDebugClient.watchEvents(). */
export interface WatchEventsOptions {
  /** Unset: only events from now on. Set: every event the server still holds after it first (0: all). */
  afterSequence?: bigint;
  /** Ends the feed (the iterator finishes without an error). */
  signal?: AbortSignal;
  /** Reconnection attempts in a row after UNAVAILABLE before the iterator fails. Default 10. */
  maxRetries?: number;
  /**
   * Called each time the server has subscribed the feed (the first call and every reconnection):
   * every event published from then on reaches this iterator. Without `afterSequence`, this is
   * when "from now on" begins.
   */
  onSubscribed?: () => void;
  /** Called before each reconnection attempt, with the failure and the wait before the attempt. */
  onRetry?: (error: VmmDebugError, attempt: number, delayMs: number) => void;
}

/** What one paging-structure entry decided (WalkDecision). */
export type WalkDecision = "table" | "page" | "notPresent" | "reserved";

/** One level of a page walk, from the top down. */
export interface WalkLevel {
  /** As the architecture numbers it: x86 5 (PML5E) down to 1 (PTE); aarch64 0 to 3. */
  level: number;
  /** PML5E, PML4E, PDPTE, PDE, PTE; L0..L3 on aarch64. */
  name: string;
  /** Guest-physical address of the entry. */
  entryGpa: bigint;
  /** The entry's value. */
  entry: bigint;
  decision: WalkDecision;
}

/** Why a translation failed (TranslationFault). */
export type TranslationFault = "nonCanonical" | "notPresent" | "reserved" | "tableOutsideRam" | "unsupported";

/** A TranslateGva answer: the walk, and where it led. */
export interface Translation {
  gva: bigint;
  /** "off", "32-bit", "pae", "4-level", "5-level"; aarch64 "4k-ttbr0", "4k-ttbr1" or "off". */
  pagingMode: string;
  /** Physical address of the first table (0 with paging off). */
  rootGpa: bigint;
  levels: WalkLevel[];
  mapped: boolean;
  /** Set when mapped. */
  gpa?: bigint;
  /** Set when mapped: 4096, 2 MiB, 1 GiB, 4 MiB. */
  pageSize?: bigint;
  writable: boolean;
  user: boolean;
  executable: boolean;
  /** Set when not mapped. */
  fault?: TranslationFault;
  /** Set when not mapped: the level whose entry ended the walk (0 for a non-canonical address). */
  faultLevel?: number;
  /** Set when not mapped: the reason in words. */
  faultDetail?: string;
}

/** Bytes a partial read could not read (read as zero), with the error reading them gives. */
export interface UnreadableRange {
  /** Offset from the start of the read. */
  offset: number;
  length: number;
  /** The ErrorInfo reason: GVA_NOT_MAPPED, GPA_UNMAPPED, GVA_NON_CANONICAL. */
  reason: string;
  metadata: Record<string, string>;
}

/** A partial read's answer: every byte (unreadable ones zero) and the unreadable ranges, in order. */
export interface PartialRead {
  data: Uint8Array;
  unreadable: UnreadableRange[];
}
