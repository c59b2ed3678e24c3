// Exception delivery through the 64-bit IDT, with #DF on a fault during delivery and triple fault.

import type { Cpu } from "./cpu.js";
import * as faultModule from "./fault.js";
import * as flagsModule from "./flags.js";
import * as mmuModule from "./mmu.js";
import * as segmentsModule from "./segments.js";
import * as vpLayoutModule from "./vp-layout.js";

// Imported bindings as module constants: under tsx (esbuild) every use of an import is a getter call.
const { GUEST_FAULT, NO_ERROR_CODE, VEC_DF, VEC_GP, VEC_NP, fault } = faultModule;
const { FIXED1, IF, NT, RF, TF, VM } = flagsModule;
const { probeWrite, rd32, wr64 } = mmuModule;
const { Descriptor, loadCs, readCodeSegment } = segmentsModule;
const { CR4, GP, IDTR, RFLAGS, RIP, SEG_SELECTOR, SREG_CS, SREG_SS, segWord } = vpLayoutModule;

const RSP = GP + 8;
const handlerCs = new Descriptor();

/**
 * Deliver the exception pending on the Cpu (c.fvec, c.ferr) with RIP already set to the address
 * to return to. A fault while delivering becomes #DF; a fault while delivering #DF is a triple
 * fault: returns false and leaves the registers as they were before the failed delivery.
 * IST stack switching is not implemented (there is no TR to find the TSS): handlers run on the
 * current stack.
 *
 * RF in the pushed RFLAGS follows the SDM (vol. 3, 18.3.1.1): 1 for every fault-class exception
 * (c.ftrap false) except a #DB raised by an instruction breakpoint (`instructionBreakpoint`),
 * otherwise RFLAGS.RF as it is (traps, software interrupts: 0 once the instruction completed;
 * 1 when the run loop set it for a trap between REP iterations).
 */
export function deliverException(c: Cpu, instructionBreakpoint = false): boolean {
  let vector = c.fvec;
  let err = c.ferr;
  const hit = c.dataHit;
  let pushRf = !c.ftrap && !instructionBreakpoint ? RF : 0;
  for (;;) {
    try {
      enter(c, vector, err, pushRf);
      c.dataHit = hit;
      return true;
    } catch (e) {
      if (e !== GUEST_FAULT) throw e;
      c.dataHit = hit;
      if (vector === VEC_DF) return false;
      vector = VEC_DF;
      err = 0;
      pushRf = RF;
    }
  }
}

/**
 * Deliver external interrupt `vector` (from the local APIC) at an instruction boundary: RIP is
 * where execution goes on, and no error code is pushed. As deliverException, returns false on a
 * triple fault with the registers unchanged. The caller checked RFLAGS.IF and the interrupt
 * shadows.
 */
export function deliverExternalInterrupt(c: Cpu, vector: number): boolean {
  c.fvec = vector;
  c.ferr = NO_ERROR_CODE;
  c.ftrap = true;
  return deliverException(c);
}

function enter(c: Cpu, vector: number, err: number, pushRf: number): void {
  const r = c.r;
  // The gate: 16 bytes at IDTR.base + 16 * vector.
  const idtErr = vector * 8 + 2;
  if (vector * 16 + 15 > (r[IDTR + 2] & 0xffff)) fault(c, VEC_GP, idtErr);
  const s = (r[IDTR] >>> 0) + vector * 16;
  const glo = s | 0;
  const ghi = s > 0xffffffff ? (r[IDTR + 1] + 1) | 0 : r[IDTR + 1];
  const w0 = rd32(c, glo, ghi);
  const w1 = rd32(c, (glo + 4) | 0, ghi);
  const w2 = rd32(c, (glo + 8) | 0, ghi);
  const type = (w1 >>> 8) & 0x1f;
  // 64-bit interrupt (0xE) or trap (0xF) gate, S = 0.
  if (type !== 0xe && type !== 0xf) fault(c, VEC_GP, idtErr);
  if ((w1 & 0x8000) === 0) fault(c, VEC_NP, idtErr);
  const sel = w0 >>> 16;
  const targetLo = (w0 & 0xffff) | (w1 & 0xffff0000);
  const targetHi = w2;
  readCodeSegment(c, sel, handlerCs);
  const top = r[CR4] & 0x1000 ? targetHi >> 24 : targetHi >> 15;
  if (top !== 0 && top !== -1) fault(c, VEC_GP, 0);

  // The frame: aligned to 16, SS RSP RFLAGS CS RIP [error code].
  const hasErr = err !== NO_ERROR_CODE;
  const n = hasErr ? 6 : 5;
  const oldLo = r[RSP];
  const oldHi = r[RSP + 1];
  const alignedLo = oldLo & ~0xf;
  const frameLo = (alignedLo - 8 * n) | 0;
  const frameHi = (alignedLo >>> 0) < 8 * n ? (oldHi - 1) | 0 : oldHi;
  // Check every slot first, top down like the pushes, so a fault reports the address the CPU
  // would and leaves no partial frame.
  for (let i = n - 1; i >= 0; i--) {
    const s2 = (frameLo >>> 0) + 8 * i;
    probeWrite(c, s2 | 0, s2 > 0xffffffff ? (frameHi + 1) | 0 : frameHi, 8);
  }
  const words = [r[segWord(SREG_SS, SEG_SELECTOR)] & 0xffff, 0, oldLo, oldHi, r[RFLAGS] | FIXED1 | pushRf, 0,
    r[segWord(SREG_CS, SEG_SELECTOR)] & 0xffff, 0, r[RIP], r[RIP + 1]];
  if (hasErr) words.push(err, 0);
  for (let i = 0; i < n; i++) {
    const off = 8 * (n - 1 - i);
    const s2 = (frameLo >>> 0) + off;
    wr64(c, s2 | 0, s2 > 0xffffffff ? (frameHi + 1) | 0 : frameHi, words[2 * i], words[2 * i + 1]);
  }
  r[RSP] = frameLo;
  r[RSP + 1] = frameHi;
  loadCs(c, sel, handlerCs);
  r[RFLAGS] &= ~(TF | NT | RF | VM | (type === 0xe ? IF : 0));
  r[RIP] = targetLo;
  r[RIP + 1] = targetHi;
}
