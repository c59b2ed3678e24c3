// String instructions MOVS STOS LODS CMPS SCAS INS OUTS, with REP / REPE / REPNE.
//
// Each element updates RSI/RDI/RCX before the next, so a fault part-way leaves the registers
// describing the work still to do and RIP at the instruction (as on hardware). Forward REP MOVS
// and REP STOS move whole page spans at once when no data slot is armed.
//
// When the VP steps architecturally (c.repStep: the debugger's single-step, a data slot, a Step
// RPC; or the guest's RFLAGS.TF) a REP instruction runs one iteration per step, as hardware
// traps after each: it sets c.repMore when iterations remain, and the run loop then leaves RIP
// at the instruction (RCX/RSI/RDI describing the rest) instead of moving past it.

import { Mnemonic } from "iced-x86";
import * as arithModule from "./arith.js";
import * as codeCacheModule from "./code-cache.js";
import type { Cpu, OpFn } from "./cpu.js";
import * as flagsModule from "./flags.js";
import * as insnModule from "./insn.js";
import type { Insn, Translator } from "./insn.js";
import * as mmuModule from "./mmu.js";
import * as systemModule from "./system.js";
import * as vpLayoutModule from "./vp-layout.js";

// Imported bindings as module constants: under tsx (esbuild) every use of an import is a getter call.
const { CMP } = arithModule;
const { noteCodeStore } = codeCacheModule;
const { DF, TF, ZF } = flagsModule;
const { END_STOP, UnsupportedForm } = insnModule;
const { ACC_READ, ACC_WRITE, rdN, translate, viewOf, wrN } = mmuModule;
const { portIn, portOut } = systemModule;
const { GP, RFLAGS, SEG_BASE, SREG_FS, SREG_GS, segWord } = vpLayoutModule;

const RAX = GP;
const RCX = GP + 2;
const RDX = GP + 4;
const RSI = GP + 12;
const RDI = GP + 14;

const MOVS = 0, STOS = 1, LODS = 2, CMPS = 3, SCAS = 4, INS = 5, OUTS = 6;

/** Add a signed delta to a 64-bit (or, with addr32, 32-bit) address register. */
function step(c: Cpu, slot: number, delta: number, addr32: boolean): void {
  const r = c.r;
  if (addr32) {
    r[slot] = (r[slot] + delta) | 0;
    r[slot + 1] = 0;
    return;
  }
  const s = (r[slot] >>> 0) + delta;
  r[slot] = s | 0;
  if (s > 0xffffffff) r[slot + 1] = (r[slot + 1] + 1) | 0;
  else if (s < 0) r[slot + 1] = (r[slot + 1] - 1) | 0;
}

/** Source address (segment base added for FS/GS overrides): low word, high in c.ahi. */
function sourceAddress(c: Cpu, seg: number, addr32: boolean): number {
  const r = c.r;
  let lo = r[RSI];
  let hi = addr32 ? 0 : r[RSI + 1];
  if (seg === SREG_FS || seg === SREG_GS) {
    const b = segWord(seg, SEG_BASE);
    const s = (lo >>> 0) + (r[b] >>> 0);
    hi = (hi + r[b + 1] + (s > 0xffffffff ? 1 : 0)) | 0;
    lo = s | 0;
  }
  c.ahi = hi;
  return lo;
}

function accumulator(c: Cpu, n: number): number {
  const v = c.r[RAX];
  return n === 1 ? v & 0xff : n === 2 ? v & 0xffff : v;
}

function setAccumulator(c: Cpu, n: number, lo: number, hi: number): void {
  const r = c.r;
  if (n === 8) {
    r[RAX] = lo;
    r[RAX + 1] = hi;
  } else if (n === 4) {
    r[RAX] = lo;
    r[RAX + 1] = 0;
  } else if (n === 2) {
    r[RAX] = (r[RAX] & ~0xffff) | (lo & 0xffff);
  } else {
    r[RAX] = (r[RAX] & ~0xff) | (lo & 0xff);
  }
}

/** One element of `kind`. */
function element(c: Cpu, kind: number, n: number, seg: number, addr32: boolean): void {
  const r = c.r;
  const delta = r[RFLAGS] & DF ? -n : n;
  const dlo = r[RDI];
  const dhi = addr32 ? 0 : r[RDI + 1];
  switch (kind) {
    case MOVS: {
      const slo = sourceAddress(c, seg, addr32);
      const v = rdN(c, slo, c.ahi, n);
      wrN(c, dlo, dhi, n, v, c.mhi);
      step(c, RSI, delta, addr32);
      step(c, RDI, delta, addr32);
      return;
    }
    case STOS:
      wrN(c, dlo, dhi, n, r[RAX], r[RAX + 1]);
      step(c, RDI, delta, addr32);
      return;
    case LODS: {
      const slo = sourceAddress(c, seg, addr32);
      const v = rdN(c, slo, c.ahi, n);
      setAccumulator(c, n, v, c.mhi);
      step(c, RSI, delta, addr32);
      return;
    }
    case CMPS: {
      const slo = sourceAddress(c, seg, addr32);
      const a = rdN(c, slo, c.ahi, n);
      const ah = c.mhi;
      const b = rdN(c, dlo, dhi, n);
      compare(c, n, a, ah, b, c.mhi);
      step(c, RSI, delta, addr32);
      step(c, RDI, delta, addr32);
      return;
    }
    case SCAS: {
      const b = rdN(c, dlo, dhi, n);
      compare(c, n, accumulator(c, n), r[RAX + 1], b, c.mhi);
      step(c, RDI, delta, addr32);
      return;
    }
    case INS: {
      // Probe the destination first so a faulting INS does not consume device input.
      translate(c, dlo, dhi, ACC_WRITE);
      const v = portIn(c, r[RDX] & 0xffff, n);
      wrN(c, dlo, dhi, n, v, 0);
      step(c, RDI, delta, addr32);
      return;
    }
    default: {
      const slo = sourceAddress(c, seg, addr32);
      const v = rdN(c, slo, c.ahi, n);
      portOut(c, r[RDX] & 0xffff, n, v);
      step(c, RSI, delta, addr32);
    }
  }
}

function compare(c: Cpu, n: number, a: number, ah: number, b: number, bh: number): void {
  if (n === 8) CMP.op64(c, a, ah, b, bh);
  else if (n === 4) CMP.op32(c, a, b);
  else if (n === 2) CMP.op16(c, a, b);
  else CMP.op8(c, a, b);
}

function counterZero(c: Cpu, addr32: boolean): boolean {
  const r = c.r;
  return addr32 ? r[RCX] === 0 : (r[RCX] | r[RCX + 1]) === 0;
}

function decrementCounter(c: Cpu, addr32: boolean): void {
  const r = c.r;
  if (addr32) {
    r[RCX] = (r[RCX] - 1) | 0;
    r[RCX + 1] = 0;
    return;
  }
  if (r[RCX] === 0) r[RCX + 1] = (r[RCX + 1] - 1) | 0;
  r[RCX] = (r[RCX] - 1) | 0;
}

/** Elements left in RCX, capped (it only sizes a span). */
function counterValue(c: Cpu, addr32: boolean): number {
  const r = c.r;
  if (!addr32 && r[RCX + 1] !== 0) return 0x7fffffff;
  return Math.min(r[RCX] >>> 0, 0x7fffffff);
}

/**
 * Forward REP STOS / REP MOVS over whole spans of one page (both pages for MOVS): returns the
 * number of elements done, 0 when the next element needs the per-element path.
 */
function bulk(c: Cpu, kind: number, n: number, seg: number, addr32: boolean): number {
  const r = c.r;
  const dlo = r[RDI];
  const dhi = addr32 ? 0 : r[RDI + 1];
  const doff = dlo & 0xfff;
  let k = Math.min(counterValue(c, addr32), Math.floor((4096 - doff) / n));
  let slo = 0;
  let shi = 0;
  if (kind === MOVS) {
    slo = sourceAddress(c, seg, addr32);
    shi = c.ahi;
    k = Math.min(k, Math.floor((4096 - (slo & 0xfff)) / n));
  }
  if (addr32) k = Math.min(k, Math.floor((0x100000000 - (dlo >>> 0)) / n), kind === MOVS ? Math.floor((0x100000000 - (r[RSI] >>> 0)) / n) : k);
  if (k < 2) return 0;
  const len = k * n;
  let src: DataView | null = null;
  let soff = 0;
  let sgpa = 0;
  if (kind === MOVS) {
    sgpa = translate(c, slo, shi, ACC_READ);
    const sr = c.bus.regionAt(sgpa);
    if (sr === undefined) return 0;
    src = viewOf(sr);
    soff = sgpa - sr.gpa;
  }
  const dgpa = translate(c, dlo, dhi, ACC_WRITE);
  const dr = c.bus.regionAt(dgpa);
  if (dr === undefined) return 0;
  const dst = viewOf(dr);
  const doffr = dgpa - dr.gpa;
  if (src !== null) {
    // Overlap where the destination is above the source: element order matters, go one by one.
    if (sgpa < dgpa && dgpa < sgpa + len) return 0;
    new Uint8Array(dst.buffer, dst.byteOffset, dst.byteLength).set(new Uint8Array(src.buffer, src.byteOffset + soff, len), doffr);
  } else if (n === 1) {
    new Uint8Array(dst.buffer, dst.byteOffset + doffr, len).fill(r[RAX] & 0xff);
  } else {
    const lo = r[RAX];
    const hi = r[RAX + 1];
    for (let i = 0; i < k; i++) {
      const p = doffr + i * n;
      if (n === 2) dst.setUint16(p, lo & 0xffff, true);
      else if (n === 4) dst.setInt32(p, lo, true);
      else {
        dst.setInt32(p, lo, true);
        dst.setInt32(p + 4, hi, true);
      }
    }
  }
  noteCodeStore(c, dgpa, len);
  if (kind === MOVS) step(c, RSI, len, addr32);
  step(c, RDI, len, addr32);
  if (addr32) {
    r[RCX] = (r[RCX] - k) | 0;
    r[RCX + 1] = 0;
  } else {
    const s = (r[RCX] >>> 0) - k;
    r[RCX] = s | 0;
    if (s < 0) r[RCX + 1] = (r[RCX + 1] - 1) | 0;
  }
  return k;
}

function translateString(d: Insn, kind: number): OpFn {
  const sized = d.ops.find((o) => o.kind === "string");
  if (sized === undefined || sized.kind !== "string") throw new UnsupportedForm();
  const n = sized.size;
  const seg = d.seg;
  const addr32 = d.addr32;
  const conditional = kind === CMPS || kind === SCAS;
  if (!d.rep && !d.repne) return (c) => element(c, kind, n, seg, addr32);
  // REPNE on MOVS/STOS/LODS/INS/OUTS behaves as REP.
  const stopWhenZf = conditional ? (d.repne ? ZF : 0) : -1;
  const canBulk = kind === MOVS || kind === STOS;
  return (c) => {
    if (c.repStep || (c.r[RFLAGS] & TF) !== 0) {
      // One iteration (none for RCX = 0); more to come unless the count or the condition ends it.
      if (counterZero(c, addr32)) return;
      element(c, kind, n, seg, addr32);
      decrementCounter(c, addr32);
      if (stopWhenZf >= 0 && (c.r[RFLAGS] & ZF) === stopWhenZf) return;
      if (!counterZero(c, addr32)) c.repMore = true;
      return;
    }
    while (!counterZero(c, addr32)) {
      if (canBulk && !c.watching && (c.r[RFLAGS] & DF) === 0 && bulk(c, kind, n, seg, addr32) > 0) continue;
      element(c, kind, n, seg, addr32);
      decrementCounter(c, addr32);
      if (stopWhenZf >= 0 && (c.r[RFLAGS] & ZF) === stopWhenZf) break;
    }
  };
}

const table: [Mnemonic, number][] = [
  [Mnemonic.Movsb, MOVS], [Mnemonic.Movsw, MOVS], [Mnemonic.Movsd, MOVS], [Mnemonic.Movsq, MOVS],
  [Mnemonic.Stosb, STOS], [Mnemonic.Stosw, STOS], [Mnemonic.Stosd, STOS], [Mnemonic.Stosq, STOS],
  [Mnemonic.Lodsb, LODS], [Mnemonic.Lodsw, LODS], [Mnemonic.Lodsd, LODS], [Mnemonic.Lodsq, LODS],
  [Mnemonic.Cmpsb, CMPS], [Mnemonic.Cmpsw, CMPS], [Mnemonic.Cmpsd, CMPS], [Mnemonic.Cmpsq, CMPS],
  [Mnemonic.Scasb, SCAS], [Mnemonic.Scasw, SCAS], [Mnemonic.Scasd, SCAS], [Mnemonic.Scasq, SCAS],
  [Mnemonic.Insb, INS], [Mnemonic.Insw, INS], [Mnemonic.Insd, INS],
  [Mnemonic.Outsb, OUTS], [Mnemonic.Outsw, OUTS], [Mnemonic.Outsd, OUTS],
];

export const repTranslators: [Mnemonic, Translator][] = table.map(([m, kind]): [Mnemonic, Translator] => [m, (d) => {
  const op = translateString(d, kind);
  // Port I/O may ask the machine to stop: end the block after it.
  if (kind === INS || kind === OUTS) d.end = END_STOP;
  return op;
}]);
