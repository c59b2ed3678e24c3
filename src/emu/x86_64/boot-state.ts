// The emulator's boot state: 64-bit long mode with paging already on, as the machine starts VPs.

import {
  CR0, CR2, CR3, CR4, CR8, EFER, GP, HALTED, IDTR, INT_SHADOW, PKRU, KERNEL_GS_BASE, RFLAGS, RIP, SEG_ATTRIBUTES, SEG_BASE, SEG_LIMIT,
  SEG_SELECTOR, SREG_CS, VP_WORDS, segWord, XMM, MXCSR, MXCSR_RESET, GUEST_DR6, GUEST_DR_LO, GUEST_DR_HI, FPR, FPR_WORDS, FCW, FCW_RESET, FTW, XCR0,
} from "./vp-layout.js";

/** CR0 = PE | MP | ET | NE | WP | PG. */
export const BOOT_CR0 = 0x80010033;
/** CR4 = PAE. */
export const BOOT_CR4 = 0x20;
/** EFER = LME | LMA | NXE. */
export const BOOT_EFER = 0xd00;
export const BOOT_CODE_SELECTOR = 0x08;
export const BOOT_DATA_SELECTOR = 0x10;
/** 64-bit code: type B (execute/read, accessed), S, P, L, G. */
export const BOOT_CODE_ATTRIBUTES = 0xa09b;
/** Data: type 3 (read/write, accessed), S, P, DB, G. */
export const BOOT_DATA_ATTRIBUTES = 0xc093;

/**
 * Put VP `vpIndex` into the boot state: long mode on, CR3 = bootPml4Gpa, flat CS 0x08 and data
 * segments 0x10, RIP = entry, RDI = vpIndex, other GPRs 0, RFLAGS 0x2, no IDT (IDTR limit 0:
 * any exception triple-faults until the guest loads one), not halted. GDTR is left as the
 * caller wrote it (the machine places a GDT with those selectors and sets GDTR first).
 */
export function x86BootState(regs: Uint32Array, vpIndex: number, entryLo: number, entryHi: number, bootPml4Gpa: number): void {
  const b = vpIndex * VP_WORDS;
  if (!Number.isInteger(vpIndex) || vpIndex < 0 || b + VP_WORDS > regs.length) {
    throw new RangeError(`VP index ${vpIndex} is outside the register file (${regs.length} words)`);
  }
  const w = (i: number, v: number) => {
    regs[b + i] = v >>> 0;
  };
  for (let i = 0; i < 32; i++) w(GP + i, 0);
  w(GP + 2 * 7, vpIndex);
  w(RIP, entryLo);
  w(RIP + 1, entryHi);
  w(RFLAGS, 2);
  w(RFLAGS + 1, 0);
  w(CR0, BOOT_CR0);
  w(CR0 + 1, 0);
  w(CR2, 0);
  w(CR2 + 1, 0);
  w(CR3, bootPml4Gpa % 4294967296);
  w(CR3 + 1, Math.floor(bootPml4Gpa / 4294967296));
  w(CR4, BOOT_CR4);
  w(CR4 + 1, 0);
  w(CR8, 0);
  w(CR8 + 1, 0);
  w(EFER, BOOT_EFER);
  w(EFER + 1, 0);
  w(KERNEL_GS_BASE, 0);
  w(KERNEL_GS_BASE + 1, 0);
  for (let s = 0; s < 6; s++) {
    const code = s === SREG_CS;
    w(segWord(s, SEG_BASE), 0);
    w(segWord(s, SEG_BASE) + 1, 0);
    w(segWord(s, SEG_LIMIT), 0xffffffff);
    w(segWord(s, SEG_SELECTOR), code ? BOOT_CODE_SELECTOR : BOOT_DATA_SELECTOR);
    w(segWord(s, SEG_ATTRIBUTES), code ? BOOT_CODE_ATTRIBUTES : BOOT_DATA_ATTRIBUTES);
  }
  w(IDTR, 0);
  w(IDTR + 1, 0);
  w(IDTR + 2, 0);
  w(HALTED, 0);
  w(INT_SHADOW, 0);
  w(PKRU, 0);
  // The guest's DR6, DR7 and DR0–DR3.
  for (let i = GUEST_DR6; i <= GUEST_DR_LO + 3; i++) w(i, 0);
  for (let i = 0; i < 4; i++) w(GUEST_DR_HI + i, 0);
  resetFpState(regs, vpIndex);
}

/** x87/SSE/XSAVE state at reset (and INIT): MXCSR 0x1f80, FCW 0x037f, all x87 registers empty, XCR0 = 1. */
export function resetFpState(regs: Uint32Array, vpIndex: number): void {
  const b = vpIndex * VP_WORDS;
  regs.fill(0, b + XMM, b + FPR + 8 * FPR_WORDS);
  regs[b + MXCSR] = MXCSR_RESET;
  regs[b + FCW] = FCW_RESET;
  regs[b + FTW] = 0xffff;
  regs[b + XCR0] = 1;
}
