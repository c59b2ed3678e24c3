// FXSAVE/FXRSTOR (and the 64-bit forms), XSAVE/XSAVEOPT/XRSTOR for the x87 (0) and SSE (1)
// components, XGETBV/XSETBV, and what CPUID says about them.
//
// Images follow QEMU 7.2 where the SDM leaves a choice: FXSAVE stores MXCSR_MASK 0xffff, FOP,
// FIP and FDP as zero (they are not tracked), leaves bytes 416–511 and each register slot's
// 6 padding bytes alone, and stores MXCSR and XMM0–15 only when CR4.OSFXSR is set; XSAVE marks
// every requested component in use (XSTATE_BV |= RFBM) and XSAVEOPT saves like XSAVE.
// XSAVEC/XSAVES and XGETBV with ECX = 1 are not implemented (not advertised: #UD / #GP).

import { Mnemonic } from "iced-x86";
import type { Cpu, OpFn } from "./cpu.js";
import * as faultModule from "./fault.js";
import * as fpGateModule from "./fp-gate.js";
import * as insnModule from "./insn.js";
import type { Insn, Translator } from "./insn.js";
import * as mmuModule from "./mmu.js";
import type { MemOperand } from "./operands.js";
import * as vpLayoutModule from "./vp-layout.js";
import * as x87Module from "./x87.js";

// Imported bindings as module constants: under tsx (esbuild) every use of an import is a getter call.
const { gp } = faultModule;
const { CR4_OSFXSR, fxsaveGate, xsaveGate } = fpGateModule;
const { END_STOP, UnsupportedForm } = insnModule;
const { probeWrite, rd16, rd32, rd64, rd8, wr16, wr32, wr64, wr8 } = mmuModule;
const { CR4, FCW, FDP, FIP, FOP, FPR, FSW, FTW, GP, MXCSR, XCR0, XMM, SREG_CS, SEG_SELECTOR, segWord } = vpLayoutModule;
const { fninit, physTag, tagOf, readPhys } = x87Module;

const RAX = GP;
const RCX = GP + 2;
const RDX = GP + 4;

/** MXCSR bits FXRSTOR/XRSTOR/LDMXCSR accept (DAZ included); the rest are reserved (#GP). */
export const MXCSR_MASK = 0xffff;
/** XCR0 bits the interpreter supports: x87 and SSE. */
export const XCR0_SUPPORTED = 0x3;
/** XSAVE area size: the 512-byte legacy region and the 64-byte header. */
export const XSAVE_SIZE = 576;

/** CPUID bits this family implements (OR-ed into leaf 1 by cpuidLeaf): FPU, FXSR; XSAVE. */
export const XSAVE_CPUID = { leaf1Ecx: 1 << 26, leaf1Edx: (1 << 0) | (1 << 24) };

/** CPUID leaf 0xD (XSAVE features and sizes), sub-leaf `sub`: [eax, ebx, ecx, edx]. */
export function xsaveCpuidLeaf(sub: number): [number, number, number, number] {
  switch (sub >>> 0) {
    case 0:
      // Supported XCR0 bits, size for the enabled features (the legacy region and header either way), max size.
      return [XCR0_SUPPORTED, XSAVE_SIZE, XSAVE_SIZE, 0];
    case 1:
      // EAX bit 0: XSAVEOPT.
      return [1, 0, 0, 0];
    default:
      return [0, 0, 0, 0];
  }
}

function memOf(d: Insn): MemOperand {
  const o = d.ops[0];
  if (o === undefined || o.kind !== "mem") throw new UnsupportedForm();
  return o;
}

/** (lo, hi) + n: returns the low word, the high word in c.ahi. */
function at(c: Cpu, lo: number, hi: number, n: number): number {
  const s = (lo >>> 0) + n;
  c.ahi = (hi + (s > 0xffffffff ? 1 : 0)) | 0;
  return s | 0;
}

// ------------------------------------------------------------------ the legacy region pieces

/** Abridged tag byte: bit p set when physical register p is not empty. */
function abridgedTag(c: Cpu): number {
  let t = 0;
  for (let p = 0; p < 8; p++) if (physTag(c, p) !== 3) t |= 1 << p;
  return t;
}

/** x87 state: bytes 0–23 and the registers at 32 + 16 i (ST order). */
function saveX87(c: Cpu, lo: number, hi: number, rexW: boolean): void {
  const r = c.r;
  wr16(c, at(c, lo, hi, 0), c.ahi, r[FCW] & 0xffff);
  wr16(c, at(c, lo, hi, 2), c.ahi, r[FSW] & 0xffff);
  wr8(c, at(c, lo, hi, 4), c.ahi, abridgedTag(c));
  wr8(c, at(c, lo, hi, 5), c.ahi, 0);
  wr16(c, at(c, lo, hi, 6), c.ahi, r[FOP] & 0x7ff);
  if (rexW) {
    wr64(c, at(c, lo, hi, 8), c.ahi, r[FIP], r[FIP + 1]);
    wr64(c, at(c, lo, hi, 16), c.ahi, r[FDP], r[FDP + 1]);
  } else {
    wr64(c, at(c, lo, hi, 8), c.ahi, r[FIP], 0);
    wr64(c, at(c, lo, hi, 16), c.ahi, r[FDP], 0);
  }
  const top = (r[FSW] >> 11) & 7;
  for (let i = 0; i < 8; i++) {
    const b = FPR + 3 * ((top + i) & 7);
    const a = at(c, lo, hi, 32 + 16 * i);
    const ahi = c.ahi;
    wr64(c, a, ahi, r[b], r[b + 1]);
    wr16(c, at(c, a, ahi, 8), c.ahi, r[b + 2] & 0xffff);
  }
}

interface X87Image { fcw: number; fsw: number; ftw: number; fop: number; fipLo: number; fipHi: number; fdpLo: number; fdpHi: number; regs: number[] }

function readX87(c: Cpu, lo: number, hi: number, rexW: boolean): X87Image {
  const fcw = rd16(c, at(c, lo, hi, 0), c.ahi);
  const fsw = rd16(c, at(c, lo, hi, 2), c.ahi);
  const ftw = rd8(c, at(c, lo, hi, 4), c.ahi);
  const fop = rd16(c, at(c, lo, hi, 6), c.ahi) & 0x7ff;
  const fipLo = rd64(c, at(c, lo, hi, 8), c.ahi);
  const fipHi = rexW ? c.mhi : 0;
  const fdpLo = rd64(c, at(c, lo, hi, 16), c.ahi);
  const fdpHi = rexW ? c.mhi : 0;
  const regs: number[] = [];
  for (let i = 0; i < 8; i++) {
    const a = at(c, lo, hi, 32 + 16 * i);
    const ahi = c.ahi;
    regs.push(rd64(c, a, ahi), c.mhi, rd16(c, at(c, a, ahi, 8), c.ahi));
  }
  return { fcw, fsw, ftw, fop, fipLo, fipHi, fdpLo, fdpHi, regs };
}

function applyX87(c: Cpu, x: X87Image): void {
  const r = c.r;
  r[FCW] = x.fcw;
  r[FSW] = x.fsw;
  r[FOP] = x.fop;
  r[FIP] = x.fipLo;
  r[FIP + 1] = x.fipHi;
  r[FDP] = x.fdpLo;
  r[FDP + 1] = x.fdpHi;
  const top = (x.fsw >> 11) & 7;
  for (let i = 0; i < 8; i++) {
    const b = FPR + 3 * ((top + i) & 7);
    r[b] = x.regs[3 * i];
    r[b + 1] = x.regs[3 * i + 1];
    r[b + 2] = x.regs[3 * i + 2] & 0xffff;
  }
  let ftw = 0;
  for (let p = 0; p < 8; p++) {
    const tag = (x.ftw >> p) & 1 ? tagOf(readPhys(c, p)) : 3;
    ftw |= tag << (2 * p);
  }
  r[FTW] = ftw;
}

function saveMxcsr(c: Cpu, lo: number, hi: number): void {
  wr32(c, at(c, lo, hi, 24), c.ahi, c.r[MXCSR]);
  wr32(c, at(c, lo, hi, 28), c.ahi, MXCSR_MASK);
}

function saveXmm(c: Cpu, lo: number, hi: number): void {
  const r = c.r;
  for (let n = 0; n < 16; n++) {
    const b = XMM + 4 * n;
    const a = at(c, lo, hi, 160 + 16 * n);
    const ahi = c.ahi;
    wr64(c, a, ahi, r[b], r[b + 1]);
    wr64(c, at(c, a, ahi, 8), c.ahi, r[b + 2], r[b + 3]);
  }
}

function readXmm(c: Cpu, lo: number, hi: number): number[] {
  const w: number[] = [];
  for (let n = 0; n < 16; n++) {
    const a = at(c, lo, hi, 160 + 16 * n);
    const ahi = c.ahi;
    w.push(rd64(c, a, ahi), c.mhi);
    w.push(rd64(c, at(c, a, ahi, 8), c.ahi), c.mhi);
  }
  return w;
}

function applyXmm(c: Cpu, w: number[] | null): void {
  const r = c.r;
  for (let k = 0; k < 64; k++) r[XMM + k] = w === null ? 0 : w[k];
}

// ------------------------------------------------------------------ FXSAVE / FXRSTOR

function translateFxsave(rexW: boolean): Translator {
  return (d) => {
    const ea = memOf(d).ea;
    return (c) => {
      fxsaveGate(c);
      const lo = ea(c);
      const hi = c.ahi;
      if ((lo & 15) !== 0) gp(c);
      probeWrite(c, lo, hi, 416);
      saveX87(c, lo, hi, rexW);
      if ((c.r[CR4] & CR4_OSFXSR) !== 0) {
        saveMxcsr(c, lo, hi);
        saveXmm(c, lo, hi);
      }
    };
  };
}

function translateFxrstor(rexW: boolean): Translator {
  return (d) => {
    const ea = memOf(d).ea;
    return (c) => {
      fxsaveGate(c);
      const lo = ea(c);
      const hi = c.ahi;
      if ((lo & 15) !== 0) gp(c);
      const x = readX87(c, lo, hi, rexW);
      const sse = (c.r[CR4] & CR4_OSFXSR) !== 0;
      let mxcsr = 0;
      let xmm: number[] | null = null;
      if (sse) {
        mxcsr = rd32(c, at(c, lo, hi, 24), c.ahi);
        if ((mxcsr & ~MXCSR_MASK) !== 0) gp(c);
        xmm = readXmm(c, lo, hi);
      }
      applyX87(c, x);
      if (sse) {
        c.r[MXCSR] = mxcsr;
        applyXmm(c, xmm);
      }
    };
  };
}

// ------------------------------------------------------------------ XSAVE / XRSTOR

function rfbmOf(c: Cpu): number {
  const r = c.r;
  // EDX:EAX & XCR0; only bits 0–1 can be set in XCR0.
  return r[RAX] & r[XCR0] & XCR0_SUPPORTED;
}

function translateXsave(rexW: boolean): Translator {
  return (d) => {
    const ea = memOf(d).ea;
    return (c) => {
      xsaveGate(c, true);
      const lo = ea(c);
      const hi = c.ahi;
      if ((lo & 63) !== 0) gp(c);
      const rfbm = rfbmOf(c);
      probeWrite(c, lo, hi, XSAVE_SIZE);
      if (rfbm & 1) saveX87(c, lo, hi, rexW);
      if (rfbm & 2) {
        saveMxcsr(c, lo, hi);
        saveXmm(c, lo, hi);
      }
      // XSTATE_BV: every saved component is reported in use; other bits keep their value.
      const bvAddr = at(c, lo, hi, 512);
      const bvHi = c.ahi;
      const bv = rd8(c, bvAddr, bvHi);
      wr8(c, bvAddr, bvHi, bv | rfbm);
    };
  };
}

function translateXrstor(rexW: boolean): Translator {
  return (d) => {
    const ea = memOf(d).ea;
    return (c) => {
      xsaveGate(c, true);
      const lo = ea(c);
      const hi = c.ahi;
      if ((lo & 63) !== 0) gp(c);
      const rfbm = rfbmOf(c);
      const bvLo = rd64(c, at(c, lo, hi, 512), c.ahi);
      const bvHi = c.mhi;
      const compLo = rd64(c, at(c, lo, hi, 520), c.ahi);
      const compHi = c.mhi;
      const resLo = rd64(c, at(c, lo, hi, 528), c.ahi);
      const resHi = c.mhi;
      // Standard form only: XCOMP_BV and the next 8 bytes must be 0, XSTATE_BV within XCR0.
      if ((compLo | compHi | resLo | resHi) !== 0) gp(c);
      if (bvHi !== 0 || (bvLo & ~c.r[XCR0]) !== 0) gp(c);
      let x: X87Image | null = null;
      let xmm: number[] | null = null;
      let mxcsr = -1;
      if (rfbm & 1 && bvLo & 1) x = readX87(c, lo, hi, rexW);
      if (rfbm & 2) {
        mxcsr = rd32(c, at(c, lo, hi, 24), c.ahi);
        if ((mxcsr & ~MXCSR_MASK) !== 0) gp(c);
        if (bvLo & 2) xmm = readXmm(c, lo, hi);
      }
      if (rfbm & 1) {
        if (x !== null) applyX87(c, x);
        else {
          // Initial configuration: FNINIT state and zeroed registers.
          fninit(c);
          c.r.fill(0, FPR, FPR + 24);
        }
      }
      if (rfbm & 2) {
        c.r[MXCSR] = mxcsr;
        applyXmm(c, xmm);
      }
    };
  };
}

function cpl(c: Cpu): number {
  return c.r[segWord(SREG_CS, SEG_SELECTOR)] & 3;
}

const xgetbvOp: OpFn = (c) => {
  xsaveGate(c, false);
  const r = c.r;
  if (r[RCX] !== 0) gp(c);
  r[RAX] = r[XCR0];
  r[RAX + 1] = 0;
  r[RDX] = r[XCR0 + 1];
  r[RDX + 1] = 0;
};

const xsetbvOp: OpFn = (c) => {
  xsaveGate(c, false);
  const r = c.r;
  if (cpl(c) !== 0 || r[RCX] !== 0) gp(c);
  const lo = r[RAX];
  const hi = r[RDX];
  if (hi !== 0 || (lo & ~XCR0_SUPPORTED) !== 0 || (lo & 1) === 0) gp(c);
  r[XCR0] = lo;
  r[XCR0 + 1] = 0;
};

export const xsaveTranslators: [Mnemonic, Translator][] = [
  [Mnemonic.Fxsave, translateFxsave(false)],
  [Mnemonic.Fxsave64, translateFxsave(true)],
  [Mnemonic.Fxrstor, translateFxrstor(false)],
  [Mnemonic.Fxrstor64, translateFxrstor(true)],
  [Mnemonic.Xsave, translateXsave(false)],
  [Mnemonic.Xsave64, translateXsave(true)],
  [Mnemonic.Xsaveopt, translateXsave(false)],
  [Mnemonic.Xsaveopt64, translateXsave(true)],
  [Mnemonic.Xrstor, translateXrstor(false)],
  [Mnemonic.Xrstor64, translateXrstor(true)],
  [Mnemonic.Xgetbv, () => xgetbvOp],
  [Mnemonic.Xsetbv, (d) => {
    d.end = END_STOP;
    return xsetbvOp;
  }],
];
