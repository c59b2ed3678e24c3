// Decoded operands (numbers only, no iced objects) and the closures that read and write them.

import type { Cpu } from "./cpu.js";
import * as insnModule from "./insn.js";
import * as mmuModule from "./mmu.js";
import * as vpLayoutModule from "./vp-layout.js";

// Imported bindings as module constants: under tsx (esbuild) every use of an import is a getter call.
const { UnsupportedForm } = insnModule;
const { rd16, rd32, rd64, rd8, wr16, wr32, wr64, wr8 } = mmuModule;
const { GP, SREG_FS, SREG_GS, SEG_BASE, segWord } = vpLayoutModule;

/** Computes an effective address: returns the low word, leaves the high word in c.ahi. */
export type EaFn = (c: Cpu) => number;
export type Reader = (c: Cpu) => number;
export type Writer = (c: Cpu, v: number) => void;

/** A general-purpose register; `slot` is the word index of its low half. */
export interface RegOperand { readonly kind: "reg"; readonly size: number; readonly slot: number; readonly high8: boolean }
export interface MemOperand {
  readonly kind: "mem";
  /** Bytes (0 when the form has no plain size, e.g. LGDT's m16&64). */
  readonly size: number;
  readonly ea: EaFn;
  /** The same address without a segment base (for LEA). */
  readonly offset: EaFn;
}
export interface ImmOperand { readonly kind: "imm"; readonly size: number; readonly lo: number; readonly hi: number }
export interface BranchOperand { readonly kind: "branch"; readonly lo: number; readonly hi: number }
export interface SregOperand { readonly kind: "sreg"; readonly index: number }
export interface CrOperand { readonly kind: "cr"; readonly n: number }
export interface DrOperand { readonly kind: "dr"; readonly n: number }
/** String-instruction operands ([rsi], [rdi]): the family reads the registers itself. */
export interface StringOperand { readonly kind: "string"; readonly size: number }
/** An SSE register XMM0–XMM15 (its words start at XMM + 4n). */
export interface XmmOperand { readonly kind: "xmm"; readonly n: number }
/** An MMX register MM0–MM7: the significand of x87 physical register Rn (words FPR + 3n). */
export interface MmOperand { readonly kind: "mm"; readonly n: number }
/** An x87 stack register ST(i), relative to TOP. */
export interface StOperand { readonly kind: "st"; readonly i: number }
/** Anything the interpreter does not implement (vector registers, x87, …): the instruction is #UD. */
export interface OtherOperand { readonly kind: "other" }
export type Operand = RegOperand | MemOperand | ImmOperand | BranchOperand | SregOperand | CrOperand | DrOperand | StringOperand | XmmOperand | MmOperand | StOperand | OtherOperand;

/** Word index of GPR n's low half. */
export function gprSlot(n: number): number {
  return GP + 2 * n;
}

export function regOperand(n: number, size: number, high8 = false): RegOperand {
  return { kind: "reg", size, slot: gprSlot(n), high8 };
}

// ------------------------------------------------------------------ effective addresses

export interface AddressParts {
  /** GPR numbers, or -1. */
  readonly base: number;
  readonly index: number;
  readonly scale: number;
  /** Displacement (already absolute for RIP-relative forms), as two words. */
  readonly dispLo: number;
  readonly dispHi: number;
  readonly addr32: boolean;
  /** SREG_FS / SREG_GS to add that segment's base, else -1. */
  readonly seg: number;
}

export function buildEa(p: AddressParts, withSegment: boolean): EaFn {
  const inner = p.addr32 ? ea32(p) : ea64(p);
  if (!withSegment || p.seg < 0) return inner;
  const sb = segWord(p.seg, SEG_BASE);
  return (c) => {
    const lo = inner(c);
    const r = c.r;
    const s = (lo >>> 0) + (r[sb] >>> 0);
    c.ahi = (c.ahi + r[sb + 1] + (s > 0xffffffff ? 1 : 0)) | 0;
    return s | 0;
  };
}

function ea64(p: AddressParts): EaFn {
  const DL = p.dispLo | 0;
  const DU = p.dispLo >>> 0;
  const DH = p.dispHi | 0;
  if (p.base < 0 && p.index < 0) {
    return (c) => {
      c.ahi = DH;
      return DL;
    };
  }
  if (p.index < 0) {
    const b = gprSlot(p.base);
    if (DU === 0 && DH === 0) {
      return (c) => {
        const r = c.r;
        c.ahi = r[b + 1];
        return r[b];
      };
    }
    return (c) => {
      const r = c.r;
      const s = (r[b] >>> 0) + DU;
      c.ahi = (r[b + 1] + DH + (s > 0xffffffff ? 1 : 0)) | 0;
      return s | 0;
    };
  }
  const x = gprSlot(p.index);
  const sh = Math.log2(p.scale);
  const rs = 32 - sh;
  if (p.base < 0) {
    return (c) => {
      const r = c.r;
      const xl = r[x];
      const xh = sh === 0 ? r[x + 1] : (r[x + 1] << sh) | (xl >>> rs);
      const s = ((xl << sh) >>> 0) + DU;
      c.ahi = (xh + DH + (s > 0xffffffff ? 1 : 0)) | 0;
      return s | 0;
    };
  }
  const b = gprSlot(p.base);
  return (c) => {
    const r = c.r;
    const xl = r[x];
    const xh = sh === 0 ? r[x + 1] : (r[x + 1] << sh) | (xl >>> rs);
    const s1 = ((xl << sh) >>> 0) + (r[b] >>> 0);
    const h1 = xh + r[b + 1] + (s1 > 0xffffffff ? 1 : 0);
    const s2 = (s1 >>> 0) + DU;
    c.ahi = (h1 + DH + (s2 > 0xffffffff ? 1 : 0)) | 0;
    return s2 | 0;
  };
}

function ea32(p: AddressParts): EaFn {
  const D = p.dispLo | 0;
  const b = p.base < 0 ? -1 : gprSlot(p.base);
  const x = p.index < 0 ? -1 : gprSlot(p.index);
  const sh = Math.log2(p.scale);
  return (c) => {
    const r = c.r;
    let a = D;
    if (b >= 0) a = (a + r[b]) | 0;
    if (x >= 0) a = (a + (r[x] << sh)) | 0;
    c.ahi = 0;
    return a;
  };
}

// ------------------------------------------------------------------ generic readers and writers (sizes 1, 2, 4)

/** Reads an operand of size 1, 2 or 4 (zero-extended for 1 and 2, a signed word for 4). */
export function reader(op: Operand): Reader {
  switch (op.kind) {
    case "reg": {
      const s = op.slot;
      if (op.size === 1) return op.high8 ? (c) => (c.r[s] >> 8) & 0xff : (c) => c.r[s] & 0xff;
      if (op.size === 2) return (c) => c.r[s] & 0xffff;
      return (c) => c.r[s];
    }
    case "imm": {
      const v = op.size === 1 ? op.lo & 0xff : op.size === 2 ? op.lo & 0xffff : op.lo | 0;
      return () => v;
    }
    case "mem": {
      const ea = op.ea;
      if (op.size === 1) return (c) => rd8(c, ea(c), c.ahi);
      if (op.size === 2) return (c) => rd16(c, ea(c), c.ahi);
      return (c) => rd32(c, ea(c), c.ahi);
    }
    default:
      throw new UnsupportedForm(`no reader for a ${op.kind} operand`);
  }
}

/** Writes a register of size 1, 2 or 4 (a 32-bit write clears the high half, like hardware). */
export function regWriter(op: RegOperand): Writer {
  const s = op.slot;
  if (op.size === 1) {
    return op.high8
      ? (c, v) => {
        const r = c.r;
        r[s] = (r[s] & ~0xff00) | ((v & 0xff) << 8);
      }
      : (c, v) => {
        const r = c.r;
        r[s] = (r[s] & ~0xff) | (v & 0xff);
      };
  }
  if (op.size === 2) {
    return (c, v) => {
      const r = c.r;
      r[s] = (r[s] & ~0xffff) | (v & 0xffff);
    };
  }
  return (c, v) => {
    const r = c.r;
    r[s] = v;
    r[s + 1] = 0;
  };
}

/** Writes a register or memory operand of size 1, 2 or 4. */
export function writer(op: Operand): Writer {
  if (op.kind === "reg") return regWriter(op);
  if (op.kind === "mem") {
    const ea = op.ea;
    if (op.size === 1) return (c, v) => wr8(c, ea(c), c.ahi, v & 0xff);
    if (op.size === 2) return (c, v) => wr16(c, ea(c), c.ahi, v & 0xffff);
    return (c, v) => wr32(c, ea(c), c.ahi, v);
  }
  throw new UnsupportedForm(`no writer for a ${op.kind} operand`);
}

/** Reads a 64-bit operand: returns the low word, the high word goes to c.mhi. */
export function reader64(op: Operand): Reader {
  switch (op.kind) {
    case "reg": {
      const s = op.slot;
      return (c) => {
        c.mhi = c.r[s + 1];
        return c.r[s];
      };
    }
    case "imm": {
      const lo = op.lo | 0;
      const hi = op.hi | 0;
      return (c) => {
        c.mhi = hi;
        return lo;
      };
    }
    case "mem": {
      const ea = op.ea;
      return (c) => rd64(c, ea(c), c.ahi);
    }
    default:
      throw new UnsupportedForm(`no 64-bit reader for a ${op.kind} operand`);
  }
}

/** Writes a 64-bit register or memory operand from (lo, hi). */
export type Writer64 = (c: Cpu, lo: number, hi: number) => void;
export function writer64(op: Operand): Writer64 {
  if (op.kind === "reg") {
    const s = op.slot;
    return (c, lo, hi) => {
      const r = c.r;
      r[s] = lo;
      r[s + 1] = hi;
    };
  }
  if (op.kind === "mem") {
    const ea = op.ea;
    return (c, lo, hi) => wr64(c, ea(c), c.ahi, lo, hi);
  }
  throw new UnsupportedForm(`no 64-bit writer for a ${op.kind} operand`);
}

/** Mask of an operand size's bits within a word (size 1, 2, 4). */
export function sizeMask(size: number): number {
  return size === 1 ? 0xff : size === 2 ? 0xffff : -1;
}

/** Sign-extend a size-1/2/4 value to a signed word. */
export function signExtend(v: number, size: number): number {
  return size === 1 ? (v << 24) >> 24 : size === 2 ? (v << 16) >> 16 : v | 0;
}

export { SREG_FS, SREG_GS };
