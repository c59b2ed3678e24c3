// Segment descriptors from the GDT: checked loads of CS (far transfers, IRETQ, exceptions) and
// of data segments, with the privilege checks of protected mode (CPL 0–3), and attributes
// packed the OpenVMM way (see vp-layout.ts).

import type { Cpu } from "./cpu.js";
import * as faultModule from "./fault.js";
import * as mmuModule from "./mmu.js";
import * as vpLayoutModule from "./vp-layout.js";

// Imported bindings as module constants: under tsx (esbuild) every use of an import is a getter call.
const { VEC_GP, VEC_NP, VEC_SS, fault } = faultModule;
const { rd32, wr32 } = mmuModule;
const { CR4, GDTR, SEG_ATTRIBUTES, SEG_BASE, SEG_LIMIT, SEG_SELECTOR, SREG_CS, SREG_DS, SREG_ES, SREG_FS, SREG_GS, SREG_SS, segWord } = vpLayoutModule;

const CS_SEL = segWord(SREG_CS, SEG_SELECTOR);

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
const CR4_SMEP = 0x100000;
const CR4_SMAP = 0x200000;

/**
 * Read the GDT descriptor for `sel` into `out` and set its accessed bit (in memory too, as the
 * CPU does). These are system accesses: they do not count for data breakpoints, and at CPL 3
 * they are implicit supervisor accesses (privilege.ts).
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
  const sys = c.sys;
  c.sys = (r[CS_SEL] & 3) === 3;
  let dlo: number;
  let dhi: number;
  try {
    dlo = rd32(c, lo, hi);
    const hlo = (lo + 4) | 0;
    const hhi = (lo >>> 0) + 4 > 0xffffffff ? (hi + 1) | 0 : hi;
    dhi = rd32(c, hlo, hhi);
    if ((dhi & 0x1000) !== 0 && (dhi & 0x100) === 0) {
      dhi |= 0x100;
      wr32(c, hlo, hhi, dhi);
    }
  } finally {
    c.sys = sys;
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

/** DPL of descriptor attributes (OpenVMM packing). */
function dplOf(attributes: number): number {
  return (attributes >>> 5) & 3;
}

/**
 * MOV/POP to DS, ES, SS, FS or GS, with the protected-mode checks of the SDM (MOV—Move): a data
 * segment or non-conforming code needs DPL ≥ max(CPL, RPL); SS needs RPL = DPL = CPL and a
 * writable data segment. A null selector is allowed in 64-bit mode, for SS only with RPL = CPL
 * below CPL 3.
 */
export function loadDataSegment(c: Cpu, sreg: number, sel: number): void {
  sel &= 0xffff;
  const r = c.r;
  if (sreg === SREG_CS) fault(c, 6);
  const cpl = r[CS_SEL] & 3;
  if ((sel & 0xfffc) === 0) {
    if (sreg === SREG_SS && ((sel & 3) !== cpl || cpl === 3)) fault(c, VEC_GP, 0);
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
  const rpl = sel & 3;
  const dpl = dplOf(a);
  if ((a & ATTR_S) === 0) fault(c, VEC_GP, err);
  if (sreg === SREG_SS) {
    // Writable data, RPL = DPL = CPL.
    if ((type & 0xa) !== 0x2 || dpl !== cpl || rpl !== cpl) fault(c, VEC_GP, err);
    if ((a & ATTR_P) === 0) fault(c, VEC_SS, err);
  } else {
    // Data, or readable code; data and non-conforming code need DPL ≥ max(CPL, RPL).
    if ((type & 0xa) === 0x8) fault(c, VEC_GP, err);
    if ((type & 0xc) !== 0xc && (dpl < cpl || dpl < rpl)) fault(c, VEC_GP, err);
    if ((a & ATTR_P) === 0) fault(c, VEC_NP, err);
  }
  writeSegment(c, sreg, sel, d);
}

/** Code segments the machine runs: present 64-bit code (L = 1, D = 0); compatibility mode is not implemented. */
function checkCode(c: Cpu, sel: number, a: number): void {
  const err = sel & 0xfffc;
  if ((a & ATTR_S) === 0 || (a & 0x8) === 0 || (a & ATTR_L) === 0 || (a & ATTR_DB) !== 0) fault(c, VEC_GP, err);
}

/**
 * Check that `sel` names a code segment a far JMP or CALL at the current CPL may go to
 * directly (no call gates): non-conforming with RPL ≤ CPL and DPL = CPL, or conforming with
 * DPL ≤ CPL. Reads it into `out` without loading it (callers load it, with RPL = CPL, once
 * nothing else can fault).
 */
export function readCodeSegment(c: Cpu, sel: number, out: Descriptor): void {
  sel &= 0xffff;
  if ((sel & 0xfffc) === 0) fault(c, VEC_GP, 0);
  readDescriptor(c, sel, out);
  const a = out.attributes;
  const err = sel & 0xfffc;
  checkCode(c, sel, a);
  const cpl = c.r[CS_SEL] & 3;
  const dpl = dplOf(a);
  if ((a & 0x4) !== 0 ? dpl > cpl : (dpl !== cpl || (sel & 3) > cpl)) fault(c, VEC_GP, err);
  if ((a & ATTR_P) === 0) fault(c, VEC_NP, err);
}

/**
 * The code segment an IRETQ or far RET returns to (SDM, IRET and RET): RPL ≥ CPL, and DPL = RPL
 * (non-conforming) or DPL ≤ RPL (conforming). The new CPL is the selector's RPL.
 */
export function readReturnCodeSegment(c: Cpu, sel: number, out: Descriptor): void {
  sel &= 0xffff;
  if ((sel & 0xfffc) === 0) fault(c, VEC_GP, 0);
  const err = sel & 0xfffc;
  const rpl = sel & 3;
  if (rpl < (c.r[CS_SEL] & 3)) fault(c, VEC_GP, err);
  readDescriptor(c, sel, out);
  const a = out.attributes;
  checkCode(c, sel, a);
  const dpl = dplOf(a);
  if ((a & 0x4) !== 0 ? dpl > rpl : dpl !== rpl) fault(c, VEC_GP, err);
  if ((a & ATTR_P) === 0) fault(c, VEC_NP, err);
}

/**
 * The code segment of an interrupt or trap gate: DPL ≤ CPL (#GP(selector) otherwise). Returns
 * the CPL the handler runs at (the DPL for non-conforming code, the CPL for conforming).
 */
export function readGateCodeSegment(c: Cpu, sel: number, out: Descriptor): number {
  sel &= 0xffff;
  if ((sel & 0xfffc) === 0) fault(c, VEC_GP, 0);
  readDescriptor(c, sel, out);
  const a = out.attributes;
  const err = sel & 0xfffc;
  checkCode(c, sel, a);
  const cpl = c.r[CS_SEL] & 3;
  const dpl = dplOf(a);
  if (dpl > cpl) fault(c, VEC_GP, err);
  if ((a & ATTR_P) === 0) fault(c, VEC_NP, err);
  return (a & 0x4) !== 0 ? cpl : dpl;
}

/**
 * Read the SS an IRETQ or far RET to privilege `newCpl` loads: writable data with RPL = DPL =
 * the new CPL; a null selector is allowed (64-bit mode) when the new CPL is not 3 and RPL = CPL.
 */
export function readStackSegment(c: Cpu, sel: number, out: Descriptor, newCpl = 0): void {
  sel &= 0xffff;
  if ((sel & 0xfffc) === 0) {
    if (newCpl === 3 || (sel & 3) !== newCpl) fault(c, VEC_GP, 0);
    out.base = 0;
    out.limit = 0;
    out.attributes = 0;
    return;
  }
  const err = sel & 0xfffc;
  if ((sel & 3) !== newCpl) fault(c, VEC_GP, err);
  readDescriptor(c, sel, out);
  const a = out.attributes;
  if ((a & ATTR_S) === 0 || (a & 0xa) !== 0x2 || dplOf(a) !== newCpl) fault(c, VEC_GP, err);
  if ((a & ATTR_P) === 0) fault(c, VEC_SS, err);
}

/** Load CS with `sel`'s index at privilege `newCpl` (the selector's RPL becomes the CPL); see cplChanged. */
export function loadCs(c: Cpu, sel: number, d: Descriptor, newCpl = 0): void {
  const wasUser = (c.r[CS_SEL] & 3) === 3;
  writeSegment(c, SREG_CS, (sel & 0xfffc) | newCpl, d);
  cplChanged(c, wasUser, newCpl === 3);
}

/**
 * The TLB after a CPL change: entries filled at CPL 0–2 may allow what CPL 3 may not, so entering
 * CPL 3 drops them; entries filled at CPL 3 allow a supervisor everything unless CR4.SMEP or
 * CR4.SMAP restrict user pages, so leaving CPL 3 drops them only then.
 */
export function cplChanged(c: Cpu, wasUser: boolean, isUser: boolean): void {
  if (wasUser === isUser) return;
  if (isUser || (c.r[CR4] & (CR4_SMEP | CR4_SMAP)) !== 0) c.flushTlb();
}

export function loadSs(c: Cpu, sel: number, d: Descriptor): void {
  writeSegment(c, SREG_SS, sel, d);
}

/** SS after an interrupt or SYSCALL changed the CPL to `newCpl` < 3: a null selector with RPL = the new CPL. */
export function loadNullSs(c: Cpu, newCpl: number): void {
  const r = c.r;
  r[segWord(SREG_SS, SEG_SELECTOR)] = newCpl;
  r[segWord(SREG_SS, SEG_ATTRIBUTES)] = 0;
}

/**
 * After a return to an outer privilege level (IRETQ, far RET): DS, ES, FS and GS holding a data
 * or non-conforming code segment whose DPL is below the new CPL become null (SDM, IRET). The FS
 * and GS bases stay as they are, as on Intel processors in 64-bit mode.
 */
export function nullifyOuterSegments(c: Cpu, newCpl: number): void {
  const r = c.r;
  for (const sreg of OUTER_CHECKED) {
    const sw = segWord(sreg, SEG_SELECTOR);
    if ((r[sw] & 0xfffc) === 0) continue;
    const a = r[segWord(sreg, SEG_ATTRIBUTES)];
    const conformingCode = (a & 0xc) === 0xc && (a & ATTR_S) !== 0;
    if (!conformingCode && dplOf(a) < newCpl) {
      r[sw] = 0;
      r[segWord(sreg, SEG_ATTRIBUTES)] = 0;
      if (sreg !== SREG_FS && sreg !== SREG_GS) {
        r[segWord(sreg, SEG_BASE)] = 0;
        r[segWord(sreg, SEG_BASE) + 1] = 0;
        r[segWord(sreg, SEG_LIMIT)] = 0;
      }
    }
  }
}

const OUTER_CHECKED = [SREG_ES, SREG_DS, SREG_FS, SREG_GS];
