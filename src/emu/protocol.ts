// Messages and shared control words between an EmuMachine (server thread) and its VP worker.
import type { StepTrace } from "../core";
import type { SwBreakpointSpec, X86Exit, X86VpDebug } from "./x86_64";
import type { RamRegion } from "./bus";
import type { ConsoleSource } from "./devices";

/** Int32 words of the shared control block. */
export const CTL_STOP_REQUEST = 0; // server sets 1 to ask the run loop to stop
export const CTL_INVALIDATE_SEQ = 1; // count of page numbers ever pushed to the ring
// The step channel: batched steps without a trace go through shared memory instead of messages
// (a message each way costs ~50 us; a lingering worker answers in a few). See worker.ts linger().
export const CTL_STEP_REQ = 2; // server: sequence of the newest step request
export const CTL_STEP_DONE = 3; // worker: sequence of the newest step answered
export const CTL_STEP_VP = 4; // request: VP
export const CTL_STEP_COUNT = 5; // request: instructions
export const CTL_STEP_EXECUTED = 6; // answer: instructions completed
export const CTL_STEP_EXIT = 7; // answer: STEP_EXIT_* below
export const CTL_STEP_SLOT = 8; // answer: the slot of a hwBreakpoint exit, the id of a swBreakpoint exit
export const CTL_STEP_LINGER = 9; // worker: 1 while it waits on the step channel instead of its message port
export const CTL_MAILBOX = 10; // messages posted and not yet taken up (server adds, worker subtracts; ends a linger)
export const CTL_RING = 16; // ring of page numbers whose decoded code must be dropped
export const CTL_RING_SIZE = 256;
export const CTL_WORDS = CTL_RING + CTL_RING_SIZE;

/** How a step-channel batch ended (CTL_STEP_EXIT). */
export const STEP_EXIT = ["budget", "halted", "singleStep", "hwBreakpoint", "swBreakpoint", "tripleFault", "reset", "powerOff", "requested"] as const;

/** Float64 slots of the shared stats buffer. */
export const STATS_RETIRED = 0; // total retired instructions, published at every stop and every 16 turns while running
export const STATS_EXIT_STATUS = 1; // the exit status of the last isa-debug-exit power-off (NaN: none)
export const STATS_WORDS = 2;

/** Why the run loop stopped, before it is mapped to a debugger-facing DebugStopReason. */
export type HaltReason =
  | { kind: "requested" }
  | { kind: "watchdog" }
  | { kind: "vp"; vp: number; exit: X86Exit };

/** Why a batched step of VP `vp` ended early, if it did (running its count or halting is no stop). */
export function stepHalt(vp: number, exit: X86Exit, requested: boolean): HaltReason | undefined {
  if (requested) return { kind: "requested" };
  return exit.kind === "budget" || exit.kind === "halted" ? undefined : { kind: "vp", vp, exit };
}

export interface WorkerInit {
  regions: { gpa: number; size: number; name: string; buffer: SharedArrayBuffer }[];
  regs: SharedArrayBuffer;
  ctl: SharedArrayBuffer;
  vpCount: number;
  /** Instructions each VP runs per turn (deterministic interleaving). */
  quantum: number;
  /** Shared Float64 slots (STATS_*): retired instructions, the power-off exit status. */
  stats: SharedArrayBuffer;
  image: { bytes: Uint8Array; loadGpa: string; entry: string; arch: "x86_64" };
}

export type ToWorker =
  | { type: "run" }
  | { type: "setDebug"; vp: number; debug: X86VpDebug }
  /** Arm a software breakpoint (replacing the one with the same id). */
  | { type: "swInsert"; breakpoint: SwBreakpointSpec }
  | { type: "swRemove"; id: number }
  | { type: "swClear" }
  | { type: "flushTlb"; vp: number }
  | { type: "reset" }
  /** Batched stepping of one VP (the others stay put); answered by "stepped". */
  | { type: "step"; vp: number; count: number; trace: StepTrace }
  /** A request is waiting on the step channel (for a worker that is not lingering on it). */
  | { type: "stepChannel" }
  /** Answered by "consoleSynced": every console message posted before it has been delivered. */
  | { type: "consoleSync" };

export type FromWorker =
  | { type: "stopped"; halt: HaltReason }
  /** A console line; `source` says which device (the 0xE9 debug console or the COM1 UART). */
  | { type: "console"; line: string; source?: ConsoleSource }
  /** Raw console bytes (transferred): `runs` is [device (CONSOLE_DEVICES index), length, …] in order. */
  | { type: "consoleBytes"; data: Uint8Array; runs: number[] }
  | { type: "consoleSynced" }
  | { type: "crashed"; message: string }
  | {
      type: "stepped";
      executed: number;
      /** Why the batch ended before its count (undefined: it ran them all, or the VP halted). */
      halt?: HaltReason;
      /** The VP sits in HLT. */
      halted: boolean;
      /** With a trace: RIP after each instruction, two u32 words (low, high) per entry, transferred. */
      pcs?: ArrayBuffer;
      /**
       * With the registers trace, transferred: the VP's first X86_REGISTER_WORDS words before the
       * batch, then per instruction a count k and k pairs (word index, new value) of those words
       * that the instruction changed.
       */
      changes?: ArrayBuffer;
      /** Words of `changes` in use. */
      changeWords?: number;
    };

export type { RamRegion };
