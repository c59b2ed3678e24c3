// What a VM's backend can do (VmInfo.capabilities): each backend derives it from how it behaves.
import type { Arch, BreakpointSize, BreakpointType, StepTrace } from "./types";

/** How a read of guest memory is served while the VM runs. */
export type MemoryReadsWhileRunning =
  /** Every read (GPA or GVA) is served without stopping a VP. */
  | "noPause"
  /** GPA reads inside RAM are served without stopping a VP; GVA reads and reads outside RAM pause the VM briefly. */
  | "noPauseGpaRam"
  /** Every read pauses the VM briefly (it runs on afterwards). */
  | "pauses";

/**
 * What a client needs to know before it tries. A request outside these is refused (with the
 * reason the backend gives), and one inside them is not refused for the capability's sake.
 */
export interface Capabilities {
  /** Hardware slots per VP (DebugState.breakpoints). */
  hardwareSlotsPerVp: number;
  /** The data types a slot takes (EXECUTE with size BYTE always, INVALID never). */
  watchpointTypes: BreakpointType[];
  /** The sizes a data slot takes. */
  watchpointSizes: BreakpointSize[];
  /** Software breakpoints: by GVA for every VP, by GVA for one VP, by GPA. All false: none. */
  softwareBreakpoints: { gva: boolean; perVp: boolean; gpa: boolean };
  /**
   * The VP-state fields SetVpState can change, by their proto names: scalars ("rip",
   * "kernel_gs_base", "sctlr_el1"), arrays whole ("gp", "x"), segment parts as "cs.selector",
   * "cs.base", "cs.limit", "cs.attributes", FP fields as "fp.xmm", "fp.st", "fp.ftw". A field not
   * listed must be sent with its current value (or, for fp, the whole of fp left unset).
   */
  setVpStateFields: string[];
  memoryReadsWhileRunning: MemoryReadsWhileRunning;
  /** VmmCore.step: the largest count and the traces it records. */
  batchedStepping: { maxCount: number; traces: StepTrace[] };
}

const X86_SCALAR_FIELDS = ["gp", "rip", "rflags", "cr0", "cr2", "cr3", "cr4", "cr8", "efer", "kernel_gs_base"];
export const X86_SEGMENT_FIELDS = ["es", "cs", "ss", "ds", "fs", "gs"] as const;
export const SEGMENT_PARTS = ["base", "limit", "selector", "attributes"] as const;
const AARCH64_FIELDS = ["x", "sp_el0", "sp_el1", "pc", "cpsr", "sctlr_el1", "tcr_el1", "ttbr0_el1", "ttbr1_el1"];

/** X86FpState's writable fields as `setVpStateFields` names them (xcr0 is read-only everywhere). */
export const X86_FP_FIELDS = ["fp.xmm", "fp.mxcsr", "fp.st", "fp.fcw", "fp.fsw", "fp.ftw", "fp.fop", "fp.fip", "fp.fdp"] as const;

/** Every field of an architecture's VP state, in proto order, named as `setVpStateFields` names them. */
export function vpStateFieldNames(arch: Arch): string[] {
  if (arch === "aarch64") return [...AARCH64_FIELDS];
  return [...X86_SCALAR_FIELDS, ...X86_SEGMENT_FIELDS.flatMap((seg) => SEGMENT_PARTS.map((part) => `${seg}.${part}`)), ...X86_FP_FIELDS];
}
