// Maps QEMU's gdbstub registers (by target.xml name) to and from the domain's VP states.
import type { Aarch64VpState, SegmentRegister, X86VpState } from "../core";
import type { SegmentName } from "./x86-segments";

/** gdb names of the x86 general-purpose registers in x86 encoding order (the order of X86VpState.gp). */
export const X86_GP_NAMES = ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"];

/** X86VpState scalar fields and the gdb register behind each (all writable through P on QEMU 7.2). */
export const X86_SCALARS = [
  ["rip", "rip"],
  ["rflags", "eflags"],
  ["cr0", "cr0"],
  ["cr2", "cr2"],
  ["cr3", "cr3"],
  ["cr4", "cr4"],
  ["cr8", "cr8"],
  ["efer", "efer"],
  ["kernelGsBase", "k_gs_base"],
] as const;

function need(regs: ReadonlyMap<string, bigint>, name: string): bigint {
  const v = regs.get(name);
  if (v === undefined) throw new Error(`QEMU's register set has no ${name}`);
  return v;
}

/** X86VpState from the `g`/`p` registers plus the segment descriptors from `info registers`. */
export function x86StateFromQemu(regs: ReadonlyMap<string, bigint>, segs: Record<SegmentName, SegmentRegister>): X86VpState {
  const state = {
    gp: X86_GP_NAMES.map((n) => need(regs, n)),
    es: segs.es,
    cs: segs.cs,
    ss: segs.ss,
    ds: segs.ds,
    // In 64-bit mode the FS/GS bases are the MSRs the gdbstub reports exactly.
    fs: { ...segs.fs, base: regs.get("fs_base") ?? segs.fs.base },
    gs: { ...segs.gs, base: regs.get("gs_base") ?? segs.gs.base },
  } as Partial<X86VpState>;
  for (const [field, name] of X86_SCALARS) (state as Record<string, unknown>)[field] = need(regs, name);
  state.rflags = (state.rflags ?? 0n) | 2n;
  return state as X86VpState;
}

/** aarch64 system registers as QEMU 7.2 names them in org.qemu.gdb.arm.sys.regs. */
export const AARCH64_SYSREGS = {
  sctlrEl1: "SCTLR",
  tcrEl1: "TCR_EL1",
  ttbr0El1: "TTBR0_EL1",
  ttbr1El1: "TTBR1_EL1",
  spEl0: "SP_EL0",
  spEl1: "SP_EL1",
} as const;

/** Which banked stack pointer the `sp` register is, from PSTATE.M: EL1h uses SP_EL1, EL0/EL1t SP_EL0. */
export function currentSpField(cpsr: bigint): "spEl0" | "spEl1" {
  return (cpsr & 0xfn) === 0x5n ? "spEl1" : "spEl0";
}

/**
 * Aarch64VpState from the core registers and the system registers. The live stack pointer is
 * `sp`; QEMU refreshes the banked copy of the current one only on exception-level changes.
 */
export function aarch64StateFromQemu(core: ReadonlyMap<string, bigint>, sys: ReadonlyMap<string, bigint>): Aarch64VpState {
  const cpsr = need(core, "cpsr");
  const state: Aarch64VpState = {
    x: Array.from({ length: 31 }, (_, i) => need(core, `x${i}`)),
    spEl0: need(sys, AARCH64_SYSREGS.spEl0),
    spEl1: need(sys, AARCH64_SYSREGS.spEl1),
    pc: need(core, "pc"),
    cpsr,
    sctlrEl1: need(sys, AARCH64_SYSREGS.sctlrEl1),
    tcrEl1: need(sys, AARCH64_SYSREGS.tcrEl1),
    ttbr0El1: need(sys, AARCH64_SYSREGS.ttbr0El1),
    ttbr1El1: need(sys, AARCH64_SYSREGS.ttbr1El1),
  };
  state[currentSpField(cpsr)] = need(core, "sp");
  return state;
}
