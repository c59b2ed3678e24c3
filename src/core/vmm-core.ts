// The port every VMM backend implements (embedded machine, QEMU): run control, debug state,
// registers and memory of one VM.
import type { Capabilities } from "./capabilities";
import type { ConsoleLog } from "./console-log";
import type { PartialRead } from "./translate";
import type { GvaTranslation } from "./translation";
import type {
  Arch,
  DebugState,
  DebugStopReason,
  DebuggerVpState,
  GuestAddress,
  MemoryRegion,
  RunState,
  SoftwareBreakpoint,
  SoftwareBreakpointAddress,
  StepResult,
  StepTrace,
} from "./types";

/** Most instructions one batched step may run. */
export const MAX_STEP_COUNT = 1_000_000;

export type StopListener = (reason: DebugStopReason) => void;
/** Called once when the backend is lost for good (its process exited, a connection dropped). */
export type GoneListener = (detail: string) => void;

/**
 * Optional capability of a VmmCore: software (execute) breakpoints, any number (up to
 * MAX_SOFTWARE_BREAKPOINTS), checked when a VP fetches an instruction: the VP stops before the
 * instruction runs, with stop `softwareBreakpoint` (through `onStop`, or as a batched step's
 * stop). A backend that patches guest memory to do this must hide the patch from reads and from
 * the guest. The VP that stands on a breakpoint executes that instruction when it next runs or
 * steps, without stopping there again (as RFLAGS.RF does for an execute slot). Bookkeeping (ids,
 * one per address, limit, unknown ids, hit counts, one-shot removal) is `SoftwareBreakpointTable`'s.
 * The backend owns the VP index, VM stopped (VM_RUNNING) and what it cannot place
 * (GPA_UNMAPPED, SOFTWARE_BREAKPOINT_UNSUPPORTED), all checked before anything changes.
 */
export interface SoftwareBreakpoints {
  /** Arms one, or answers the one already at that address (`existing`). VM stopped. */
  insert(address: SoftwareBreakpointAddress, oneShot: boolean): Promise<{ breakpoint: SoftwareBreakpoint; existing: boolean }>;
  /** Removes one (SOFTWARE_BREAKPOINT_NOT_FOUND). VM stopped. */
  remove(id: number): Promise<void>;
  /** Every armed breakpoint with its hit count, in id order. Works while the VM runs. */
  list(): SoftwareBreakpoint[];
  /** Removes every breakpoint (Detach). VM stopped. */
  clear(): Promise<void>;
}

/**
 * One VM as a VMM core exposes it. Methods reject with `VmmError`.
 *
 * Run control is deliberately low level: `resume` lets the VPs go, `halt` stops them, and
 * every stop (a debug event, a guest power-off, a halt) is announced once through `onStop`.
 * Session and stop-reporting rules live in the server, not here.
 *
 * Who checks what — each rule has one owner, and the other layers trust it:
 * - The VMM core (every implementation of this interface): the VP index (`checkVp`), whether
 *   the VM is stopped (VM_RUNNING) or gone (BACKEND_UNAVAILABLE) or powered off, that a
 *   register state's architecture is the VM's (ARCH_MISMATCH), whether the backend can run a
 *   register state the architecture allows (UNSUPPORTED_REGISTER: the embedded machine runs
 *   64-bit long mode only), the step count (`checkStepCount`), and what the machine can map
 *   (GPA_UNMAPPED, GVA_NOT_MAPPED, GVA_NON_CANONICAL), a zero-length access checked as a
 *   one-byte access at the same address (`checkedLength`).
 * - The server's wire conversion (src/server/convert.ts): the shape of a request — missing
 *   fields, array lengths, enum values, DR7 rules (`validateDebugState`), the architecture's
 *   rules for a register state (`validateVpState`, VP_STATE_INVALID), read-length caps.
 * - The server's DebuggerState: the session rules — attached, which session, one Resume at a
 *   time — and the server's executor (src/server/operations.ts) which VM a request names.
 */
export interface VmmCore {
  readonly id: string;
  readonly arch: Arch;
  readonly vpCount: number;
  /** "emu" or "qemu". */
  readonly backend: string;
  readonly memoryRegions: readonly MemoryRegion[];
  /**
   * The guest's console output (raw bytes with their device), when the backend captures it: the
   * embedded machine's debug console and COM1 UART, a launched QEMU's stdout. The backend appends
   * and ends it (power-off, backend lost); the server's WatchConsole reads it.
   */
  readonly console?: ConsoleLog;
  /** Set when the backend supports software breakpoints (the server refuses them otherwise). */
  readonly softwareBreakpoints?: SoftwareBreakpoints;
  /**
   * What this backend can do now (VmInfo.capabilities), derived from how it behaves: each value
   * holds exactly as far as the requests it answers (a capability not listed is refused).
   */
  capabilities(): Capabilities;
  runState(): RunState;
  /**
   * The status of the guest's power-off through an exit device (isa-debug-exit), or undefined
   * (no such power-off, or a backend without one).
   */
  exitStatus?(): number | undefined;
  /** Let every VP run. No-op when already running; rejects when powered off or gone. */
  resume(): Promise<void>;
  /**
   * Stop every VP; resolves once stopped. If it had to stop a running VM, `onStop` fires (with
   * `break`, or with the debug event that won the race) BEFORE the returned promise resolves:
   * the server relies on that order to route the stop to a waiting Resume.
   */
  halt(): Promise<void>;
  /** Register a listener for every stop. Returns the function that removes it. */
  onStop(listener: StopListener): () => void;
  /** Register a listener for the loss of the backend (runState() is "gone" from then on). */
  onGone(listener: GoneListener): () => void;
  /** Replace one VP's debug state (already validated, exactly four slots). VM stopped (else VM_RUNNING). */
  setDebugState(vp: number, state: DebugState): Promise<void>;
  /**
   * Batched stepping: runs up to `count` (1..MAX_STEP_COUNT) instructions on VP `vp` with every
   * other VP stopped, honouring that VP's debug state, and returns what ran. VM stopped (else
   * VM_RUNNING), and stopped again when this resolves; `onStop` does not fire (the result carries
   * the stop). Execute breakpoints are checked before every instruction but the first (the VP
   * steps off the one it stopped at, as a single step does); a data breakpoint ends the batch
   * after the access (x86) as the architecture reports it; so do triple fault, reset, power-off
   * (runState() follows them). `signal` ends the batch early with stop `break`. The PC trace
   * equals the PCs that as many single steps (single_step + resume) would show one by one.
   */
  step(vp: number, count: number, trace: StepTrace, signal?: AbortSignal): Promise<StepResult>;
  /** One VP's registers. VM stopped. */
  getVpState(vp: number): Promise<DebuggerVpState>;
  /**
   * Replace one VP's registers with a state `validateVpState` accepts. VM stopped; the state's
   * arch matches; a state the backend cannot run exactly as the architecture would is refused
   * (UNSUPPORTED_REGISTER) before anything is written. GVA accesses then translate with the
   * paging mode the new state selects (`x86PagingMode`), the one the VP runs with.
   */
  setVpState(vp: number, state: DebuggerVpState): Promise<void>;
  /**
   * Read guest memory; GVA reads translate through the VP's page tables. Works while running.
   * A zero-length read is checked as a one-byte read at the same address and answers no bytes.
   */
  readMemory(address: GuestAddress, length: number): Promise<Uint8Array>;
  /**
   * As readMemory, but bytes that cannot be read (unmapped GVA pages, non-canonical GVAs, GPAs
   * outside what the machine maps) read as zero and are listed with the error a plain read of
   * them gives, instead of failing the read. A bad request (VP out of range) still rejects, as do
   * VM_RUNNING-type states of the backend (gone). A zero-length read that would fail answers one
   * zero-length unreadable range.
   */
  readMemoryPartial(address: GuestAddress, length: number): Promise<PartialRead>;
  /**
   * Translates `gva` through VP `vp`'s paging registers and page tables with the walk GVA
   * accesses use (`walkX86Detailed`, `walkAarch64Detailed`), every level recorded. VM stopped
   * (else VM_RUNNING); VP index checked (VP_OUT_OF_RANGE). An unmapped address is an answer.
   */
  translateGva(vp: number, gva: bigint): Promise<GvaTranslation>;
  /** Write guest memory, all or nothing; ignores guest write protection. No data: checked as one byte, writes nothing. */
  writeMemory(address: GuestAddress, data: Uint8Array): Promise<void>;
  /** Release everything (threads, processes, sockets). */
  close(): Promise<void>;
}
