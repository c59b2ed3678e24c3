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

function unflattenSegment(r: readonly bigint[], at: number): SegmentRegister {
  return { base: r[at], limit: Number(r[at + 1]), selector: Number(r[at + 2]), attributes: Number(r[at + 3]) };
}

/**
 * `state` after one instruction that changed `delta` (register numbers as flattenVpState gives
 * them); undefined when the delta names a register the architecture does not have. The numbering
 * has no x86 FP registers, so the result leaves `fp` unset: the instruction may have changed it.
 */
export function applyRegisterDelta(state: DebuggerVpState, delta: RegisterDelta): DebuggerVpState | undefined {
  if (delta.registers.length !== delta.values.length) return undefined;
  const r = flattenVpState(state);
  for (let i = 0; i < delta.registers.length; i++) {
    const n = delta.registers[i];
    if (!Number.isInteger(n) || n < 0 || n >= r.length) return undefined;
    r[n] = delta.values[i];
  }
  if (state.arch === "x86_64") {
    const [es, cs, ss, ds, fs, gs] = SEGMENTS.map((_, k) => unflattenSegment(r, 25 + 4 * k));
    const [rip, rflags, cr0, cr2, cr3, cr4, cr8, efer, kernelGsBase] = r.slice(16, 25);
    const { fp: _unknown, ...rest } = state.state;
    return { arch: "x86_64", state: { ...rest, gp: r.slice(0, 16), rip, rflags, cr0, cr2, cr3, cr4, cr8, efer, kernelGsBase, es, cs, ss, ds, fs, gs } };
  }
  const [spEl0, spEl1, pc, cpsr, sctlrEl1, tcrEl1, ttbr0El1, ttbr1El1] = r.slice(31);
  return { arch: "aarch64", state: { ...state.state, x: r.slice(0, 31), spEl0, spEl1, pc, cpsr, sctlrEl1, tcrEl1, ttbr0El1, ttbr1El1 } };
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
