// Segment descriptors from the GDT: checked loads of CS (far transfers, IRETQ, exceptions) and
// of data segments, with attributes packed the OpenVMM way (see vp-layout.ts).

import type { Cpu } from "./cpu.js";
import * as faultModule from "./fault.js";
import * as mmuModule from "./mmu.js";
import * as vpLayoutModule from "./vp-layout.js";

// Imported bindings as module constants: under tsx (esbuild) every use of an import is a getter call.
const { VEC_GP, VEC_NP, VEC_SS, fault } = faultModule;
const { rd32, wr32 } = mmuModule;
const { GDTR, SEG_ATTRIBUTES, SEG_BASE, SEG_LIMIT, SEG_SELECTOR, SREG_CS, SREG_FS, SREG_GS, SREG_SS, segWord } = vpLayoutModule;

/** A descriptor as loaded into a segment register. */
export class Descriptor {
  base = 0;
  limit = 0;
  attributes = 0;
}

const ATTR_S = 0x10;
const ATTR_P = 0x80;
const ATTR_L = 0x2000;
const ATTR_DB = 0x4000;
const ATTR_G = 0x8000;

/**
 * Read the GDT descriptor for `sel` into `out` and set its accessed bit (in memory too, as the
 * CPU does). These are system accesses: they do not count for data breakpoints.
 */
function readDescriptor(c: Cpu, sel: number, out: Descriptor): void {
  const err = sel & 0xfffc;
  if (sel & 4) fault(c, VEC_GP, err); // no LDT support
  const r = c.r;
  const idx = sel & 0xfff8;
  if (idx + 7 > (r[GDTR + 2] & 0xffff)) fault(c, VEC_GP, err);
  const s = (r[GDTR] >>> 0) + idx;
  const lo = s | 0;
  const hi = s > 0xffffffff ? (r[GDTR + 1] + 1) | 0 : r[GDTR + 1];
  const hit = c.dataHit;
  const dlo = rd32(c, lo, hi);
  const hlo = (lo + 4) | 0;
  const hhi = (lo >>> 0) + 4 > 0xffffffff ? (hi + 1) | 0 : hi;
  let dhi = rd32(c, hlo, hhi);
  if ((dhi & 0x1000) !== 0 && (dhi & 0x100) === 0) {
    dhi |= 0x100;
    wr32(c, hlo, hhi, dhi);
  }
  c.dataHit = hit;
  out.attributes = (dhi >>> 8) & 0xf0ff;
  out.base = ((dlo >>> 16) | ((dhi & 0xff) << 16) | (dhi & 0xff000000)) | 0;
  const limit = (dlo & 0xffff) | (dhi & 0xf0000);
  out.limit = out.attributes & ATTR_G ? ((limit << 12) | 0xfff) : limit;
}

function writeSegment(c: Cpu, sreg: number, sel: number, d: Descriptor): void {
  const r = c.r;
  r[segWord(sreg, SEG_BASE)] = d.base;
  r[segWord(sreg, SEG_BASE) + 1] = 0;
  r[segWord(sreg, SEG_LIMIT)] = d.limit;
  r[segWord(sreg, SEG_SELECTOR)] = sel & 0xffff;
  r[segWord(sreg, SEG_ATTRIBUTES)] = d.attributes;
}

const scratch = new Descriptor();

/** MOV/POP to DS, ES, SS, FS or GS. */
export function loadDataSegment(c: Cpu, sreg: number, sel: number): void {
  sel &= 0xffff;
  const r = c.r;
  if (sreg === SREG_CS) fault(c, 6);
  if ((sel & 0xfffc) === 0) {
    // A null selector is allowed in 64-bit mode (SS only with RPL 0 at CPL 0).
    if (sreg === SREG_SS && (sel & 3) !== 0) fault(c, VEC_GP, 0);
    r[segWord(sreg, SEG_SELECTOR)] = sel;
    r[segWord(sreg, SEG_ATTRIBUTES)] = 0;
    if (sreg !== SREG_FS && sreg !== SREG_GS) {
      r[segWord(sreg, SEG_BASE)] = 0;
      r[segWord(sreg, SEG_BASE) + 1] = 0;
      r[segWord(sreg, SEG_LIMIT)] = 0;
    }
    return;
  }
  const d = scratch;
  readDescriptor(c, sel, d);
  const a = d.attributes;
  const type = a & 0xf;
  const err = sel & 0xfffc;
  if ((a & ATTR_S) === 0) fault(c, VEC_GP, err);
  if (sreg === SREG_SS) {
    // Writable data, DPL = RPL = CPL = 0.
    if ((type & 0xa) !== 0x2 || (a & 0x60) !== 0 || (sel & 3) !== 0) fault(c, VEC_GP, err);
    if ((a & ATTR_P) === 0) fault(c, VEC_SS, err);
  } else {
    // Data, or readable code.
    if ((type & 0xa) === 0x8) fault(c, VEC_GP, err);
    if ((a & ATTR_P) === 0) fault(c, VEC_NP, err);
  }
  writeSegment(c, sreg, sel, d);
}

/**
 * Check that `sel` names a present 64-bit code segment the CPL-0 guest may run in, and read it
 * into `out` without loading it (callers load it once nothing else can fault).
 */
export function readCodeSegment(c: Cpu, sel: number, out: Descriptor): void {
  sel &= 0xffff;
  if ((sel & 0xfffc) === 0) fault(c, VEC_GP, 0);
  readDescriptor(c, sel, out);
  const a = out.attributes;
  const err = sel & 0xfffc;
  // Compatibility mode (L=0) and user mode (RPL/DPL 3) are not supported: #GP.
  if ((a & ATTR_S) === 0 || (a & 0x8) === 0 || (a & ATTR_L) === 0 || (a & ATTR_DB) !== 0 || (sel & 3) !== 0) {
    fault(c, VEC_GP, err);
  }
  if ((a & 0x4) === 0 && (a & 0x60) !== 0) fault(c, VEC_GP, err);
  if ((a & ATTR_P) === 0) fault(c, VEC_NP, err);
}

/** Read the SS descriptor for an IRETQ (a null selector is allowed at CPL 0). */
export function readStackSegment(c: Cpu, sel: number, out: Descriptor): void {
  sel &= 0xffff;
  if ((sel & 0xfffc) === 0) {
    if ((sel & 3) !== 0) fault(c, VEC_GP, 0);
    out.base = 0;
    out.limit = 0;
    out.attributes = 0;
    return;
  }
  readDescriptor(c, sel, out);
  const a = out.attributes;
  const err = sel & 0xfffc;
  if ((a & ATTR_S) === 0 || (a & 0xa) !== 0x2 || (a & 0x60) !== 0 || (sel & 3) !== 0) fault(c, VEC_GP, err);
  if ((a & ATTR_P) === 0) fault(c, VEC_SS, err);
}

export function loadCs(c: Cpu, sel: number, d: Descriptor): void {
  writeSegment(c, SREG_CS, sel & 0xfffc, d);
}

export function loadSs(c: Cpu, sel: number, d: Descriptor): void {
  writeSegment(c, SREG_SS, sel, d);
}
