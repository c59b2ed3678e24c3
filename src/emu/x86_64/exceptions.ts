// Exception and interrupt delivery through the 64-bit IDT: privilege checks, the stack switch
// through the TSS (RSP0–RSP2, IST1–IST7), #DF on a fault during delivery and triple fault.

import type { Cpu } from "./cpu.js";
import * as faultModule from "./fault.js";
import * as flagsModule from "./flags.js";
import * as mmuModule from "./mmu.js";
import * as msrModule from "./msr.js";
import * as segmentsModule from "./segments.js";
import * as stackFaultModule from "./stack-fault.js";
import * as vpLayoutModule from "./vp-layout.js";

// Imported bindings as module constants: under tsx (esbuild) every use of an import is a getter call.
const { GUEST_FAULT, NO_ERROR_CODE, VEC_DF, VEC_GP, VEC_NP, VEC_PF, VEC_SS, VEC_TS, fault } = faultModule;
const { FIXED1, IF, NT, RF, TF, VM } = flagsModule;
const { probeWrite, rd32, wr64 } = mmuModule;
const { vpPlatform } = msrModule;
const { Descriptor, loadCs, loadNullSs, readGateCodeSegment } = segmentsModule;
const { stackAccessAtRip } = stackFaultModule;
const { CR4, GP, IDTR, RFLAGS, RIP, SEG_SELECTOR, SREG_CS, SREG_SS, segWord } = vpLayoutModule;

const RSP = GP + 8;
const CS_SEL = segWord(SREG_CS, SEG_SELECTOR);
const handlerCs = new Descriptor();
const tssOut = new Int32Array(2);

/** Exception classes for double faults (SDM vol. 3, table 6-4). */
const BENIGN = 0;
const CONTRIBUTORY = 1;
const PAGE_FAULT = 2;

function classOf(vector: number): number {
  switch (vector) {
    case 0: case 10: case 11: case 12: case 13: return CONTRIBUTORY;
    case VEC_PF: return PAGE_FAULT;
    default: return BENIGN;
  }
}

/**
 * Deliver the exception pending on the Cpu (c.fvec, c.ferr) with RIP already set to the address
 * to return to. A handler at a lower CPL runs on the stack the TSS names for it (RSPn), a gate
 * with an IST index on that IST stack; INT n, INT3 and INTO (c.fsoft) need a gate DPL ≥ CPL.
 *
 * A fault while delivering follows SDM vol. 3, table 6-5 (its error code has EXT set unless
 * a software interrupt was being delivered): after a contributory exception (#DE,
 * #TS, #NP, #SS, #GP) another contributory one, and after a #PF a contributory one or a #PF,
 * become #DF; any other pair is handled serially (the second is delivered, and the first comes
 * again when the handler returns to the instruction). A fault while delivering a software
 * interrupt is raised at the INT instruction. A fault while delivering #DF is a triple fault:
 * returns false and leaves the registers as they were before the failed delivery.
 *
 * RF in the pushed RFLAGS follows the SDM (vol. 3, 18.3.1.1): 1 for every fault-class exception
 * (c.ftrap false) except a #DB raised by an instruction breakpoint (`instructionBreakpoint`),
 * otherwise RFLAGS.RF as it is (traps, software interrupts: 0 once the instruction completed;
 * 1 when the run loop set it for a trap between REP iterations).
 */
export function deliverException(c: Cpu, instructionBreakpoint = false): boolean {
  let vector = c.fvec;
  let err = c.ferr;
  let soft = c.fsoft;
  c.fsoft = 0;
  if (c.ncan) {
    c.ncan = false;
    if (vector === VEC_GP && stackAccessAtRip(c)) vector = VEC_SS;
  }
  const hit = c.dataHit;
  let pushRf = !c.ftrap && !instructionBreakpoint ? RF : 0;
  // Each round delivers a new exception; the table's rules reach #DF or a delivery in a few.
  for (let round = 0; ; round++) {
    try {
      enter(c, vector, err, pushRf, soft);
      c.dataHit = hit;
      return true;
    } catch (e) {
      if (e !== GUEST_FAULT) throw e;
      c.dataHit = hit;
      if (vector === VEC_DF || round > 8) return false;
      // The fault met while delivering (a non-canonical address there is a stack push: #SS).
      let second = c.fvec;
      let secondErr = c.ferr;
      // Its error code has EXT (bit 0) set when the event being delivered came from outside the
      // program (an exception or an external interrupt, not INT n).
      if (soft === 0 && secondErr !== NO_ERROR_CODE && second !== VEC_PF) secondErr |= 1;
      if (c.ncan) {
        c.ncan = false;
        if (second === VEC_GP) second = VEC_SS;
      }
      if (soft !== 0) {
        // A software interrupt whose delivery faults raises that fault at the INT instruction.
        const r = c.r;
        const back = (r[RIP] >>> 0) < soft;
        r[RIP] = (r[RIP] - soft) | 0;
        if (back) r[RIP + 1] = (r[RIP + 1] - 1) | 0;
        soft = 0;
      } else {
        const first = classOf(vector);
        const next = classOf(second);
        if ((first === CONTRIBUTORY && next === CONTRIBUTORY) || (first === PAGE_FAULT && next !== BENIGN)) {
          second = VEC_DF;
        }
      }
      vector = second;
      err = second === VEC_DF ? 0 : secondErr;
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
  c.fsoft = 0;
  c.ncan = false;
  return deliverException(c);
}

/**
 * Read the 64-bit stack pointer at `offset` in the TSS (RSPn at 4 + 8n, ISTn at 0x24 + 8(n − 1))
 * into tssOut; #TS(TR selector) when TR does not cover it. An implicit supervisor access.
 */
function tssStack(c: Cpu, offset: number): void {
  const p = vpPlatform(c);
  if ((p.trSelector & 0xfffc) === 0 || offset + 7 > (p.trLimit >>> 0)) fault(c, VEC_TS, p.trSelector & 0xfffc);
  const s = (p.trBaseLo >>> 0) + offset;
  const lo = s | 0;
  const hi = s > 0xffffffff ? (p.trBaseHi + 1) | 0 : p.trBaseHi;
  tssOut[0] = rd32(c, lo, hi);
  tssOut[1] = rd32(c, (lo + 4) | 0, (lo >>> 0) + 4 > 0xffffffff ? (hi + 1) | 0 : hi);
}

function enter(c: Cpu, vector: number, err: number, pushRf: number, soft: number): void {
  const r = c.r;
  const cpl = r[CS_SEL] & 3;
  // Everything up to the frame is an implicit supervisor access (the IDT, GDT and TSS).
  const sys = c.sys;
  c.sys = cpl === 3;
  let newCpl: number;
  let targetLo: number;
  let targetHi: number;
  let sel: number;
  let type: number;
  let stackLo = r[RSP];
  let stackHi = r[RSP + 1];
  try {
    // The gate: 16 bytes at IDTR.base + 16 * vector.
    const idtErr = vector * 8 + 2;
    if (vector * 16 + 15 > (r[IDTR + 2] & 0xffff)) fault(c, VEC_GP, idtErr);
    const s = (r[IDTR] >>> 0) + vector * 16;
    const glo = s | 0;
    const ghi = s > 0xffffffff ? (r[IDTR + 1] + 1) | 0 : r[IDTR + 1];
    const w0 = rd32(c, glo, ghi);
    const w1 = rd32(c, (glo + 4) | 0, ghi);
    const w2 = rd32(c, (glo + 8) | 0, ghi);
    type = (w1 >>> 8) & 0x1f;
    // 64-bit interrupt (0xE) or trap (0xF) gate, S = 0.
    if (type !== 0xe && type !== 0xf) fault(c, VEC_GP, idtErr);
    if (soft !== 0 && ((w1 >>> 13) & 3) < cpl) fault(c, VEC_GP, idtErr);
    if ((w1 & 0x8000) === 0) fault(c, VEC_NP, idtErr);
    sel = w0 >>> 16;
    targetLo = (w0 & 0xffff) | (w1 & 0xffff0000);
    targetHi = w2;
    newCpl = readGateCodeSegment(c, sel, handlerCs);
    const top = r[CR4] & 0x1000 ? targetHi >> 24 : targetHi >> 15;
    if (top !== 0 && top !== -1) fault(c, VEC_GP, 0);
    // The stack: IST n when the gate names one, else RSPn of the new CPL when it is lower.
    const ist = w1 & 7;
    if (ist !== 0 || newCpl < cpl) {
      tssStack(c, ist !== 0 ? 0x24 + 8 * (ist - 1) : 4 + 8 * newCpl);
      stackLo = tssOut[0];
      stackHi = tssOut[1];
      const t = r[CR4] & 0x1000 ? stackHi >> 24 : stackHi >> 15;
      if (t !== 0 && t !== -1) fault(c, VEC_SS, 0);
    }
    // The frame is pushed with the handler's privilege.
    c.sys = cpl === 3 && newCpl !== 3;

    // The frame: aligned to 16, SS RSP RFLAGS CS RIP [error code].
    const hasErr = err !== NO_ERROR_CODE;
    const n = hasErr ? 6 : 5;
    const alignedLo = stackLo & ~0xf;
    const frameLo = (alignedLo - 8 * n) | 0;
    const frameHi = (alignedLo >>> 0) < 8 * n ? (stackHi - 1) | 0 : stackHi;
    // Check every slot first, top down like the pushes, so a fault reports the address the CPU
    // would and leaves no partial frame.
    for (let i = n - 1; i >= 0; i--) {
      const s2 = (frameLo >>> 0) + 8 * i;
      probeWrite(c, s2 | 0, s2 > 0xffffffff ? (frameHi + 1) | 0 : frameHi, 8);
    }
    const words = [r[segWord(SREG_SS, SEG_SELECTOR)] & 0xffff, 0, r[RSP], r[RSP + 1], r[RFLAGS] | FIXED1 | pushRf, 0,
      r[CS_SEL] & 0xffff, 0, r[RIP], r[RIP + 1]];
    if (hasErr) words.push(err, 0);
    for (let i = 0; i < n; i++) {
      const off = 8 * (n - 1 - i);
      const s2 = (frameLo >>> 0) + off;
      wr64(c, s2 | 0, s2 > 0xffffffff ? (frameHi + 1) | 0 : frameHi, words[2 * i], words[2 * i + 1]);
    }
    stackLo = frameLo;
    stackHi = frameHi;
  } finally {
    c.sys = sys;
  }
  r[RSP] = stackLo;
  r[RSP + 1] = stackHi;
  if (newCpl < cpl) loadNullSs(c, newCpl);
  loadCs(c, sel, handlerCs, newCpl);
  r[RFLAGS] &= ~(TF | NT | RF | VM | (type === 0xe ? IF : 0));
  r[RIP] = targetLo;
  r[RIP + 1] = targetHi;
}
