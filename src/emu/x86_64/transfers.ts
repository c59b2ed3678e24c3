// Far transfers and the instructions that change the privilege level: far JMP/CALL, RETF, IRETQ,
// SYSCALL and SYSRET (SDM vol. 2; the checks on the segments they load are in segments.ts).

import { Code, Mnemonic } from "iced-x86";
import type { Cpu, OpFn } from "./cpu.js";
import * as faultModule from "./fault.js";
import * as flagsModule from "./flags.js";
import * as guestDebugModule from "./guest-debug.js";
import * as insnModule from "./insn.js";
import type { Insn, Translator } from "./insn.js";
import * as mmuModule from "./mmu.js";
import * as msrModule from "./msr.js";
import * as privilegeModule from "./privilege.js";
import * as segmentsModule from "./segments.js";
import * as vpLayoutModule from "./vp-layout.js";

// Imported bindings as module constants: under tsx (esbuild) every use of an import is a getter call.
const { gp, ud } = faultModule;
const { FIXED1, IF, IOPL, POPF_MASK, RF } = flagsModule;
const { marks } = guestDebugModule;
const { END_JUMP, UnsupportedForm } = insnModule;
const { isCanonical: canonical, probeWrite, rd16, rd32, rd64, wr64 } = mmuModule;
const { vpPlatform } = msrModule;
const { cpl, requireCpl0 } = privilegeModule;
const { Descriptor, cplChanged, loadCs, loadSs, nullifyOuterSegments, readCodeSegment, readReturnCodeSegment, readStackSegment } = segmentsModule;
const { EFER, GP, RFLAGS, RIP, SEG_ATTRIBUTES, SEG_BASE, SEG_LIMIT, SEG_SELECTOR, SREG_CS, SREG_SS, segWord } = vpLayoutModule;

const RCX = GP + 2;
const RSP = GP + 8;

// ------------------------------------------------------------------ far JMP, CALL, RET, IRETQ

const farCs = new Descriptor();
const farSs = new Descriptor();

/** JMP m16:64 / m16:32. */
export function farJmp(d: Insn): OpFn {
  const m = d.ops[0];
  if (m.kind !== "mem") throw new UnsupportedForm();
  d.end = END_JUMP;
  const ea = m.ea;
  const wide = d.code === Code.Jmp_m1664;
  return (c) => {
    const lo = ea(c);
    const hi = c.ahi;
    let tl: number;
    let th: number;
    let sel: number;
    if (wide) {
      tl = rd64(c, lo, hi);
      th = c.mhi;
      sel = rd16(c, (lo + 8) | 0, (lo >>> 0) + 8 > 0xffffffff ? (hi + 1) | 0 : hi);
    } else {
      tl = rd32(c, lo, hi);
      th = 0;
      sel = rd16(c, (lo + 4) | 0, (lo >>> 0) + 4 > 0xffffffff ? (hi + 1) | 0 : hi);
    }
    readCodeSegment(c, sel, farCs);
    if (!canonical(c, th)) gp(c, 0);
    loadCs(c, sel, farCs, cpl(c));
    const r = c.r;
    r[RIP] = tl;
    r[RIP + 1] = th;
  };
}

/** CALL m16:64. */
export function farCall(d: Insn): OpFn {
  const m = d.ops[0];
  if (m.kind !== "mem" || d.code !== Code.Call_m1664) throw new UnsupportedForm();
  d.end = END_JUMP;
  const ea = m.ea;
  const nl = d.nextLo;
  const nh = d.nextHi;
  return (c) => {
    const lo = ea(c);
    const hi = c.ahi;
    const tl = rd64(c, lo, hi);
    const th = c.mhi;
    const sel = rd16(c, (lo + 8) | 0, (lo >>> 0) + 8 > 0xffffffff ? (hi + 1) | 0 : hi);
    readCodeSegment(c, sel, farCs);
    if (!canonical(c, th)) gp(c, 0);
    const r = c.r;
    const sl = r[RSP];
    const frameLo = (sl - 16) | 0;
    const frameHi = (sl >>> 0) < 16 ? (r[RSP + 1] - 1) | 0 : r[RSP + 1];
    probeWrite(c, frameLo, frameHi, 16);
    const csSel = r[segWord(SREG_CS, SEG_SELECTOR)] & 0xffff;
    const midLo = (sl - 8) | 0;
    const midHi = (sl >>> 0) < 8 ? (r[RSP + 1] - 1) | 0 : r[RSP + 1];
    wr64(c, midLo, midHi, csSel, 0);
    wr64(c, frameLo, frameHi, nl, nh);
    r[RSP] = frameLo;
    r[RSP + 1] = frameHi;
    loadCs(c, sel, farCs, cpl(c));
    r[RIP] = tl;
    r[RIP + 1] = th;
  };
}

/** Address (lo, hi) + k; low word returned, high word in `out[0]`. */
export function offset(lo: number, hi: number, k: number, out: Int32Array): number {
  const s = (lo >>> 0) + k;
  out[0] = s > 0xffffffff ? (hi + 1) | 0 : hi;
  return s | 0;
}
const hiOut = new Int32Array(1);

/**
 * RETF / RETFQ [imm16]: pop RIP and CS (4 or 8 bytes each), then release imm16 bytes. A return to
 * an outer privilege level (CS.RPL > CPL) also pops RSP and SS, releases imm16 bytes of the outer
 * stack, and nulls DS, ES, FS and GS where their DPL is below the new CPL.
 */
function translateRetf(d: Insn): OpFn {
  const wide = d.code === Code.Retfq || d.code === Code.Retfq_imm16;
  if (!wide && d.code !== Code.Retfd && d.code !== Code.Retfd_imm16) throw new UnsupportedForm();
  d.end = END_JUMP;
  const imm = d.ops.length > 0 && d.ops[0].kind === "imm" ? d.ops[0].lo & 0xffff : 0;
  const n = wide ? 8 : 4;
  return (c) => {
    const r = c.r;
    const sl = r[RSP];
    const sh = r[RSP + 1];
    let tl: number;
    let th = 0;
    if (wide) {
      tl = rd64(c, sl, sh);
      th = c.mhi;
    } else {
      tl = rd32(c, sl, sh);
    }
    const cl = offset(sl, sh, n, hiOut);
    const sel = rd16(c, cl, hiOut[0]);
    const oldCpl = cpl(c);
    readReturnCodeSegment(c, sel, farCs);
    const newCpl = sel & 3;
    if (newCpl === oldCpl) {
      if (!canonical(c, th)) gp(c, 0);
      const nl = offset(sl, sh, 2 * n + imm, hiOut);
      r[RSP] = nl;
      r[RSP + 1] = hiOut[0];
      loadCs(c, sel, farCs, newCpl);
      r[RIP] = tl;
      r[RIP + 1] = th;
      return;
    }
    // The outer stack pointer and SS follow the released bytes.
    let a = offset(sl, sh, 2 * n + imm, hiOut);
    let spl: number;
    let sph = 0;
    if (wide) {
      spl = rd64(c, a, hiOut[0]);
      sph = c.mhi;
    } else {
      spl = rd32(c, a, hiOut[0]);
    }
    a = offset(sl, sh, 3 * n + imm, hiOut);
    const ss = rd16(c, a, hiOut[0]);
    readStackSegment(c, ss, farSs, newCpl);
    if (!canonical(c, th)) gp(c, 0);
    loadCs(c, sel, farCs, newCpl);
    loadSs(c, ss, farSs);
    const nl = offset(spl, sph, imm, hiOut);
    r[RSP] = nl;
    r[RSP + 1] = hiOut[0];
    r[RIP] = tl;
    r[RIP + 1] = th;
    nullifyOuterSegments(c, newCpl);
  };
}

/**
 * IRETQ: pop RIP, CS, RFLAGS, RSP, SS, all checked before anything changes (SDM, IRET, 64-bit
 * mode). The return may go to the same or an outer privilege level (CS.RPL ≥ CPL); to an outer
 * one DS, ES, FS and GS whose DPL is below the new CPL become null. RFLAGS: IOPL changes only at
 * CPL 0, IF only at CPL ≤ IOPL; NT set is #GP(0) (no task returns in 64-bit mode).
 */
const iretqOp: OpFn = (c) => {
  const r = c.r;
  if ((r[RFLAGS] & 0x4000) !== 0) gp(c, 0);
  const sl = r[RSP];
  const sh = r[RSP + 1];
  const ripLo = rd64(c, sl, sh);
  const ripHi = c.mhi;
  let a = offset(sl, sh, 8, hiOut);
  const cs = rd16(c, a, hiOut[0]);
  a = offset(sl, sh, 16, hiOut);
  const flags = rd32(c, a, hiOut[0]);
  a = offset(sl, sh, 24, hiOut);
  const rspLo = rd64(c, a, hiOut[0]);
  const rspHi = c.mhi;
  a = offset(sl, sh, 32, hiOut);
  const ss = rd16(c, a, hiOut[0]);
  const oldCpl = cpl(c);
  readReturnCodeSegment(c, cs, farCs);
  const newCpl = cs & 3;
  readStackSegment(c, ss, farSs, newCpl);
  if (!canonical(c, ripHi)) gp(c, 0);
  let mask = POPF_MASK | RF;
  if (oldCpl !== 0) mask &= ~IOPL;
  if (oldCpl > ((r[RFLAGS] & IOPL) >>> 12)) mask &= ~IF;
  loadCs(c, cs, farCs, newCpl);
  loadSs(c, ss, farSs);
  r[RFLAGS] = (r[RFLAGS] & ~mask) | (flags & mask) | FIXED1;
  r[RSP] = rspLo;
  r[RSP + 1] = rspHi;
  r[RIP] = ripLo;
  r[RIP + 1] = ripHi;
  if (newCpl > oldCpl) nullifyOuterSegments(c, newCpl);
};

// ------------------------------------------------------------------ SYSCALL, SYSRET

const EFER_SCE = 0x1;
const R11 = GP + 22;
/** CS and SS as SYSCALL and SYSRET load them: flat, 4 GiB limit; 64-bit code (L) and writable data (B). */
const SYS_CS = 0xa09b;
const SYS_SS = 0xc093;
const DPL3 = 0x60;

function loadFlat(c: Cpu, sreg: number, sel: number, attributes: number): void {
  const r = c.r;
  r[segWord(sreg, SEG_BASE)] = 0;
  r[segWord(sreg, SEG_BASE) + 1] = 0;
  r[segWord(sreg, SEG_LIMIT)] = -1;
  r[segWord(sreg, SEG_SELECTOR)] = sel;
  r[segWord(sreg, SEG_ATTRIBUTES)] = attributes;
}

/**
 * SYSCALL (64-bit mode; SDM, SYSCALL): #UD unless EFER.SCE. RCX gets the next RIP, R11 RFLAGS
 * (RF clear); RFLAGS loses the IA32_FMASK bits and RF; CS = STAR[47:32] & ~3 and SS = that + 8,
 * flat at CPL 0, without reading the GDT; RIP = LSTAR.
 */
function translateSyscall(d: Insn): OpFn {
  d.end = END_JUMP;
  const nl = d.nextLo;
  const nh = d.nextHi;
  return (c) => {
    const r = c.r;
    if ((r[EFER] & EFER_SCE) === 0) ud(c);
    const p = vpPlatform(c);
    const flags = r[RFLAGS] & ~RF;
    r[RCX] = nl;
    r[RCX + 1] = nh;
    r[R11] = flags;
    r[R11 + 1] = 0;
    r[RFLAGS] = (flags & ~p.sfmask) | FIXED1;
    const sel = (p.starHi & 0xffff) & 0xfffc;
    const wasUser = cpl(c) === 3;
    loadFlat(c, SREG_CS, sel, SYS_CS);
    cplChanged(c, wasUser, false);
    loadFlat(c, SREG_SS, (sel + 8) & 0xffff, SYS_SS);
    r[RIP] = p.lstarLo;
    r[RIP + 1] = p.lstarHi;
    marks.tfAtEnd = true;
  };
}

/**
 * SYSRET with REX.W (64-bit mode; SDM, SYSRET): #UD unless EFER.SCE, #GP(0) above CPL 0 or for a
 * non-canonical RCX. RIP = RCX, RFLAGS = R11 (RF, VM cleared); CS = STAR[63:48] + 16 and SS =
 * STAR[63:48] + 8, RPL 3, flat at CPL 3. SYSRET to compatibility mode (no REX.W) is #UD: the
 * machine runs 64-bit code only.
 */
function translateSysret(d: Insn): OpFn {
  d.end = END_JUMP;
  if (d.code !== Code.Sysretq) return (c) => ud(c);
  return (c) => {
    const r = c.r;
    if ((r[EFER] & EFER_SCE) === 0) ud(c);
    requireCpl0(c);
    if (!canonical(c, r[RCX + 1])) gp(c, 0);
    const p = vpPlatform(c);
    const base = (p.starHi >>> 16) & 0xffff;
    r[RFLAGS] = (r[R11] & 0x3c7fd7) | FIXED1;
    r[RIP] = r[RCX];
    r[RIP + 1] = r[RCX + 1];
    loadFlat(c, SREG_SS, ((base + 8) & 0xffff) | 3, SYS_SS | DPL3);
    loadFlat(c, SREG_CS, ((base + 16) & 0xfffc) | 3, SYS_CS | DPL3);
    cplChanged(c, false, true);
    marks.tfAtEnd = true;
  };
}

export const transferTranslators: [Mnemonic, Translator][] = [
  [Mnemonic.Iretq, (d) => {
    d.end = END_JUMP;
    return iretqOp;
  }],
  [Mnemonic.Retf, translateRetf],
  [Mnemonic.Syscall, translateSyscall],
  [Mnemonic.Sysret, translateSysret],
  [Mnemonic.Sysretq, translateSysret],
];
