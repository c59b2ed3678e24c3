// Privilege levels of the embedded x86-64 machine: the CPL, the checks of privileged
// instructions, IOPL and the TSS I/O permission bitmap, and implicit supervisor accesses
// (descriptor tables and the TSS) made while the guest runs at CPL 3.
//
// The CPL is CS.RPL (64-bit mode keeps CS.RPL, CS.DPL and SS.DPL equal outside conforming code).
// Accesses are user accesses (page U/S checks, see mmu.ts) at CPL 3 unless `c.sys` says the
// access is an implicit supervisor one (SDM vol. 3, 4.6.1).

import type { Cpu } from "./cpu.js";
import * as faultModule from "./fault.js";
import * as flagsModule from "./flags.js";
import * as vpLayoutModule from "./vp-layout.js";

// Imported bindings as module constants: under tsx (esbuild) every use of an import is a getter call.
const { gp } = faultModule;
const { IOPL } = flagsModule;
const { CR4, RFLAGS, SEG_SELECTOR, SREG_CS, segWord } = vpLayoutModule;

const CS_SEL = segWord(SREG_CS, SEG_SELECTOR);

/** The current privilege level (CS.RPL). */
export function cpl(c: Cpu): number {
  return c.r[CS_SEL] & 3;
}

/** #GP(0) unless the guest runs at CPL 0 (MOV CR/DR, LGDT, HLT, WRMSR …). */
export function requireCpl0(c: Cpu): void {
  if ((c.r[CS_SEL] & 3) !== 0) gp(c, 0);
}

/** CR4.UMIP: SGDT, SIDT, SLDT, SMSW and STR are #GP(0) above CPL 0. */
export const CR4_UMIP = 0x800;

export function umipCheck(c: Cpu): void {
  if ((c.r[CR4] & CR4_UMIP) !== 0 && (c.r[CS_SEL] & 3) !== 0) gp(c, 0);
}

/** CLI/STI at CPL > IOPL are #GP(0) (64-bit mode has no virtual-interrupt extensions). */
export function requireIopl(c: Cpu): void {
  const r = c.r;
  if ((r[CS_SEL] & 3) > ((r[RFLAGS] & IOPL) >>> 12)) gp(c, 0);
}

/**
 * Run `fn` with the accesses it makes treated as supervisor accesses (descriptor-table and TSS
 * reads, the accessed and busy bits): at CPL 3 they are implicit supervisor accesses, which the
 * page U/S bit does not restrict and which do not fill the TLB (mmu.ts).
 */
export function supervisor<T>(c: Cpu, fn: () => T): T {
  if ((c.r[CS_SEL] & 3) !== 3 || c.sys) return fn();
  c.sys = true;
  try {
    return fn();
  } finally {
    c.sys = false;
  }
}
