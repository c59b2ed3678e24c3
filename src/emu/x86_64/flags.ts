// RFLAGS bits, the parity table and condition-code evaluation shared by all families.

export const CF = 0x1;
export const PF = 0x4;
export const AF = 0x10;
export const ZF = 0x40;
export const SF = 0x80;
export const TF = 0x100;
export const IF = 0x200;
export const DF = 0x400;
export const OF = 0x800;
export const IOPL = 0x3000;
export const NT = 0x4000;
export const RF = 0x10000;
export const VM = 0x20000;
export const AC = 0x40000;
export const VIF = 0x80000;
export const VIP = 0x100000;
export const ID = 0x200000;
/** Bit 1 of RFLAGS reads as 1. */
export const FIXED1 = 0x2;
/** The six status flags written by arithmetic. */
export const ARITH = CF | PF | AF | ZF | SF | OF;
/** Flags POPFQ/IRETQ may change at CPL 0 (VM, VIF and VIP stay as they are). */
export const POPF_MASK = ARITH | TF | IF | DF | IOPL | NT | AC | ID;

/** PF for a result byte: PF is set when the low byte has an even number of one bits. */
export const PARITY: Uint8Array = (() => {
  const t = new Uint8Array(256);
  for (let i = 0; i < 256; i++) {
    let n = 0;
    for (let b = i; b !== 0; b >>= 1) n += b & 1;
    t[i] = n & 1 ? 0 : PF;
  }
  return t;
})();

/**
 * Condition codes in x86 encoding order (o no b ae e ne be a s ns p np l ge le g), evaluated by
 * table: index cc * 32 + the five condition-relevant flags packed by `ccIndex`.
 */
const CC_TABLE: Uint8Array = (() => {
  const t = new Uint8Array(16 * 32);
  for (let cc = 0; cc < 16; cc++) {
    for (let k = 0; k < 32; k++) {
      const cf = k & 1, pf = (k >> 1) & 1, zf = (k >> 2) & 1, sf = (k >> 3) & 1, of = (k >> 4) & 1;
      let v: number;
      switch (cc >> 1) {
        case 0: v = of; break;
        case 1: v = cf; break;
        case 2: v = zf; break;
        case 3: v = cf | zf; break;
        case 4: v = sf; break;
        case 5: v = pf; break;
        case 6: v = sf ^ of; break;
        default: v = zf | (sf ^ of); break;
      }
      t[cc * 32 + k] = (cc & 1 ? v ^ 1 : v);
    }
  }
  return t;
})();

/** True when condition `cc` (0..15, x86 encoding) holds for RFLAGS value `f`. */
export function testCc(cc32: number, f: number): boolean {
  // cc32 is cc * 32, precomputed at decode time.
  return CC_TABLE[cc32 + ((f & 1) | ((f >> 1) & 2) | ((f >> 4) & 12) | ((f >> 7) & 16))] !== 0;
}
