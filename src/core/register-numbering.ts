// The register numbering of batched-step deltas (see REGISTER_COUNT): a VP state as a flat list.
import type { DebuggerVpState, RegisterDelta, SegmentRegister } from "./types";

const SEGMENTS = ["es", "cs", "ss", "ds", "fs", "gs"] as const;

function segment(s: SegmentRegister): bigint[] {
  return [s.base, BigInt(s.limit), BigInt(s.selector), BigInt(s.attributes)];
}

/** The state's fields in proto order, flattened: index i holds register number i. */
export function flattenVpState(state: DebuggerVpState): bigint[] {
  if (state.arch === "x86_64") {
    const s = state.state;
    return [
      ...s.gp,
      s.rip,
      s.rflags,
      s.cr0,
      s.cr2,
      s.cr3,
      s.cr4,
      s.cr8,
      s.efer,
      s.kernelGsBase,
      ...SEGMENTS.flatMap((name) => segment(s[name])),
    ];
  }
  const s = state.state;
  return [...s.x, s.spEl0, s.spEl1, s.pc, s.cpsr, s.sctlrEl1, s.tcrEl1, s.ttbr0El1, s.ttbr1El1];
}

/** The registers whose value differs between two flattened states of one architecture, in number order. */
export function diffRegisters(before: readonly bigint[], after: readonly bigint[]): RegisterDelta {
  if (before.length !== after.length) throw new RangeError(`flattened states differ in length: ${before.length} vs ${after.length}`);
  const delta: RegisterDelta = { registers: [], values: [] };
  for (let i = 0; i < after.length; i++) {
    if (before[i] !== after[i]) {
      delta.registers.push(i);
      delta.values.push(after[i]);
    }
  }
  return delta;
}
