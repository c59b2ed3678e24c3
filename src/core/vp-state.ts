// What a register state written by SetVpState must satisfy: a state the processor itself can be
// in. The rules are the architecture's (x86: the MOV CR/WRMSR faults and the VM-entry checks on
// guest state, Intel SDM vol. 3C "Checks on the Guest State Area"; aarch64: the PSTATE modes).
import { Code, VmmError, hex } from "./errors";
import type { Aarch64VpState, DebuggerVpState, X86VpState } from "./types";
import { isCanonicalX86 } from "./x86/page-walk";
import { MXCSR_RESERVED } from "./x86-fp";

const bit = (n: number) => 1n << BigInt(n);

const CR0_PE = bit(0);
const CR0_NW = bit(29);
const CR0_CD = bit(30);
const CR0_PG = bit(31);
/** CR0 bits any processor implements: PE MP EM TS ET NE WP AM NW CD PG (the rest read as 0 or fault). */
const CR0_DEFINED = CR0_PE | bit(1) | bit(2) | bit(3) | bit(4) | bit(5) | bit(16) | bit(18) | CR0_NW | CR0_CD | CR0_PG;
const CR4_PAE = bit(5);
const CR4_LA57 = bit(12);
const CR4_PCIDE = bit(17);
/** CR4 bits 63:32 are reserved on every processor (the low half's reserved bits vary by model). */
const CR4_UPPER = 0xffff_ffff_0000_0000n;
const EFER_LME = bit(8);
const EFER_LMA = bit(10);
/**
 * EFER bits Intel or AMD define: SCE, LME, LMA, NXE, SVME, LMSLE, FFXSR, TCE, MCOMMIT, INTWB,
 * UAIE, AIBRSE. The others are reserved on both (WRMSR faults).
 */
const EFER_DEFINED = bit(0) | EFER_LME | EFER_LMA | bit(11) | bit(12) | bit(13) | bit(14) | bit(15) | bit(17) | bit(18) | bit(20) | bit(21);
/** Physical addresses have at most 52 bits: CR3 bits 63:52 are reserved. */
const CR3_RESERVED = 0xfff0_0000_0000_0000n;
const RFLAGS_FIXED1 = bit(1);
/** RFLAGS bits 3, 5, 15 and 63:22 are reserved (0). */
const RFLAGS_RESERVED = bit(3) | bit(5) | bit(15) | ~((1n << 22n) - 1n);
const RFLAGS_VM = bit(17);
const ATTR_L = 0x2000;
const ATTR_DB = 0x4000;
const U64 = 0xffff_ffff_ffff_ffffn;

/**
 * Checks a register state against the architecture and returns it, or throws INVALID_ARGUMENT /
 * VP_STATE_INVALID naming the first field (`field` plus the register, e.g. `state.x86_64.cr0`)
 * and the rule it breaks. States the processor can be in pass, whatever mode they select (the
 * backend then runs them as the architecture says, or refuses what it cannot run); states it can
 * never be in are refused: on x86, e.g. CR0.PG without CR0.PE, EFER.LMA other than
 * CR0.PG AND EFER.LME, long mode without CR4.PAE, a non-canonical RIP in 64-bit mode.
 */
export function validateVpState(state: DebuggerVpState, field = "state"): DebuggerVpState {
  if (state.arch === "x86_64") validateX86(state.state, `${field}.x86_64`);
  else validateAarch64(state.state, `${field}.aarch64`);
  return state;
}

function validateX86(s: X86VpState, field: string): void {
  const refuse = (register: string, value: bigint, rule: string): never => {
    throw new VmmError(
      Code.InvalidArgument,
      "VP_STATE_INVALID",
      `${field}.${register} = ${hex(value)} is a state the processor cannot be in: ${rule}`,
      { field: `${field}.${register}`, value: hex(value), rule },
    );
  };
  const { cr0, cr3, cr4, efer, rflags, rip } = s;
  const pg = (cr0 & CR0_PG) !== 0n;
  const lme = (efer & EFER_LME) !== 0n;
  const lma = (efer & EFER_LMA) !== 0n;

  if ((cr0 & ~CR0_DEFINED & U64) !== 0n) refuse("cr0", cr0, `bits ${hex(cr0 & ~CR0_DEFINED & U64)} are reserved (0)`);
  if (pg && (cr0 & CR0_PE) === 0n) refuse("cr0", cr0, "CR0.PG = 1 needs CR0.PE = 1 (paging only in protected mode)");
  if ((cr0 & CR0_NW) !== 0n && (cr0 & CR0_CD) === 0n) refuse("cr0", cr0, "CR0.NW = 1 needs CR0.CD = 1");
  if ((cr4 & CR4_UPPER) !== 0n) refuse("cr4", cr4, "bits 63:32 are reserved (0)");
  if ((efer & ~EFER_DEFINED & U64) !== 0n) refuse("efer", efer, `bits ${hex(efer & ~EFER_DEFINED & U64)} are reserved (0)`);
  // EFER.LMA is the processor's: it is 1 exactly when CR0.PG and EFER.LME are (SDM vol. 3A, "Initializing IA-32e Mode").
  if (lma && !pg) {
    refuse("cr0", cr0, "CR0.PG = 0 while EFER.LMA = 1: long mode is on exactly while paging is (clear EFER.LMA and EFER.LME with it)");
  }
  if (lma !== (pg && lme)) {
    refuse("efer", efer, `EFER.LMA = ${lma ? 1 : 0} but CR0.PG = ${pg ? 1 : 0} and EFER.LME = ${lme ? 1 : 0}: the processor sets EFER.LMA to CR0.PG AND EFER.LME`);
  }
  if (lma && (cr4 & CR4_PAE) === 0n) refuse("cr4", cr4, "CR4.PAE = 0 while EFER.LMA = 1: long mode needs PAE");
  if (!lma && (cr4 & CR4_PCIDE) !== 0n) refuse("cr4", cr4, "CR4.PCIDE = 1 outside long mode");
  if ((cr3 & CR3_RESERVED) !== 0n) refuse("cr3", cr3, "bits 63:52 are reserved (0)");
  if (!lma && cr3 > 0xffff_ffffn) refuse("cr3", cr3, "outside long mode CR3 has 32 bits");
  if ((rflags & RFLAGS_FIXED1) === 0n) refuse("rflags", rflags, "bit 1 is always 1");
  if ((rflags & RFLAGS_RESERVED & U64) !== 0n) refuse("rflags", rflags, "bits 3, 5, 15 and 63:22 are reserved (0)");
  if ((rflags & RFLAGS_VM) !== 0n && (lma || (cr0 & CR0_PE) === 0n)) {
    refuse("rflags", rflags, "RFLAGS.VM = 1 (virtual-8086 mode) exists only in protected mode outside long mode");
  }
  const l = (s.cs.attributes & ATTR_L) !== 0;
  if (lma && l && (s.cs.attributes & ATTR_DB) !== 0) {
    refuse("cs.attributes", BigInt(s.cs.attributes), "CS.L = 1 with CS.D = 1 is reserved in long mode");
  }
  if (lma && l) {
    const fiveLevel = (cr4 & CR4_LA57) !== 0n;
    if (!isCanonicalX86(rip, fiveLevel)) refuse("rip", rip, `RIP is not canonical for ${fiveLevel ? 5 : 4}-level paging (64-bit mode)`);
  } else if (rip > 0xffff_ffffn) {
    refuse("rip", rip, "outside 64-bit mode (EFER.LMA = 0 or CS.L = 0) RIP has 32 bits");
  }
  if (s.fp && (s.fp.mxcsr & MXCSR_RESERVED) !== 0) {
    refuse("fp.mxcsr", BigInt(s.fp.mxcsr >>> 0), "MXCSR bits 31:16 are reserved (0): LDMXCSR and FXRSTOR fault on them");
  }
}

/** PSTATE.M[3:0] of AArch64: EL0t, EL1t, EL1h, EL2t, EL2h, EL3t, EL3h (the rest are illegal). */
const AARCH64_MODES = new Set([0b0000, 0b0100, 0b0101, 0b1000, 0b1001, 0b1100, 0b1101]);

function validateAarch64(s: Aarch64VpState, field: string): void {
  // M[4] = 1 is AArch32 state, which this register set cannot describe; leave it to the backend.
  const m = Number(s.cpsr & 0x1fn);
  if ((m & 0x10) === 0 && !AARCH64_MODES.has(m)) {
    const rule = `PSTATE.M = 0b${m.toString(2).padStart(5, "0")} is not an AArch64 mode (EL0t, EL1t, EL1h, EL2t, EL2h, EL3t, EL3h)`;
    throw new VmmError(Code.InvalidArgument, "VP_STATE_INVALID", `${field}.cpsr = ${hex(s.cpsr)} is a state the processor cannot be in: ${rule}`, {
      field: `${field}.cpsr`,
      value: hex(s.cpsr),
      rule,
    });
  }
}
