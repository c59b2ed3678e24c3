// Messages and shared control words between an EmuMachine (server thread) and its VP worker.
import type { X86Exit, X86VpDebug } from "./x86_64";
import type { RamRegion } from "./bus";

/** Int32 words of the shared control block. */
export const CTL_STOP_REQUEST = 0; // server sets 1 to ask the run loop to stop
export const CTL_INVALIDATE_SEQ = 1; // count of page numbers ever pushed to the ring
export const CTL_RING = 16; // ring of page numbers whose decoded code must be dropped
export const CTL_RING_SIZE = 256;
export const CTL_WORDS = CTL_RING + CTL_RING_SIZE;

/** Why the run loop stopped, before it is mapped to a debugger-facing DebugStopReason. */
export type HaltReason =
  | { kind: "requested" }
  | { kind: "watchdog" }
  | { kind: "vp"; vp: number; exit: X86Exit };

export interface WorkerInit {
  regions: { gpa: number; size: number; name: string; buffer: SharedArrayBuffer }[];
  regs: SharedArrayBuffer;
  ctl: SharedArrayBuffer;
  vpCount: number;
  /** Instructions each VP runs per turn (deterministic interleaving). */
  quantum: number;
  /** Shared Float64 slot: total retired instructions, published at every stop. */
  stats: SharedArrayBuffer;
  image: { bytes: Uint8Array; loadGpa: string; entry: string; arch: "x86_64" };
}

export type ToWorker =
  | { type: "run" }
  | { type: "setDebug"; vp: number; debug: X86VpDebug }
  | { type: "flushTlb"; vp: number }
  | { type: "reset" };

export type FromWorker =
  | { type: "stopped"; halt: HaltReason }
  | { type: "console"; line: string }
  | { type: "crashed"; message: string };

export type { RamRegion };
