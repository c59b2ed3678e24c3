// The x87 FPU: 80-bit registers, the stack, control/status/tag words and the instructions gcc emits
// for `long double` (loads, stores, integer conversions, arithmetic, compares, FCMOVcc, control
// and environment instructions). Arithmetic is f80.ts (QEMU's softfloat floatx80 results).
//
// State lives in the register file (vp-layout.ts): FCW, FSW (TOP in bits 11–13), the full tag
// word FTW (two bits per physical register), R0–R7 as three words each.
//
// Behaviour that follows QEMU 7.2 TCG rather than hardware (so lockstep runs agree):
// - C1 is not set on rounding up; FCOM/FUCOM/FTST leave C1 alone; FCOMI/FUCOMI keep OF, SF, AF.
// - FLD m32/m64 round the loaded value to the precision control (PC = 24 bits loses bits of an m64).
// - No DE flag on arithmetic or loads (FXTRACT of a denormal excepted).
// - FPREM1 leaves C0, C3, C1 clear (QEMU's floatx80_modrem reports no quotient for it).
// - FSQRT of a negative operand sets C2 (and clears C3, C1, C0), as QEMU's helper does.
// - FIP, FDP, FOP and the selectors are not tracked: FNSTENV/FNSAVE/FXSAVE store zeros.
// - Masked responses always: the destination gets the masked result even when the exception
//   is unmasked (hardware leaves it unchanged for IE/ZE/DE and biases the exponent for OE/UE).
// Behaviour that follows the SDM where QEMU does not model it:
// - Stack overflow and underflow: IE and SF, C1 = 1 (overflow) or 0 (underflow), the default
//   NaN (real or integer indefinite) as the result. QEMU does not check the tags.
// - An unmasked exception sets ES and B; the next waiting x87 instruction (or FWAIT) raises #MF
//   when CR0.NE = 1 (QEMU raises it at FWAIT only). With CR0.NE = 0 nothing is raised (the
//   legacy FERR#/IGNNE# path is not modelled).
// - FNSTENV and FNSAVE mask all exceptions afterwards (FNSAVE then reinitializes).

import { Mnemonic } from "iced-x86";
import type { Cpu, OpFn } from "./cpu.js";
import * as f80Module from "./f80.js";
import type { F80, FpEnv, Precision } from "./f80.js";
import * as faultModule from "./fault.js";
import * as flagsModule from "./flags.js";
import * as fpGateModule from "./fp-gate.js";
import * as insnModule from "./insn.js";
import type { Insn, Translator } from "./insn.js";
import * as mmuModule from "./mmu.js";
import type { EaFn, MemOperand, Operand } from "./operands.js";
import * as vpLayoutModule from "./vp-layout.js";

// Imported bindings as module constants: under tsx (esbuild) every use of an import is a getter call.
const {
  F80_DEFAULT_NAN, F80_ZERO, FE_IE, add, chs, abs, compare, div, f80, fromF32, fromF64, fromInt, isInf, isInvalidEncoding,
  isNan, isSnan, isZero, modrem, toInt32Saturating, roundToPrecision, mul, roundToInt, scalbn, sqrt, sub, toF32, toF64, toInt, silence, CMP_UNORDERED, FE_DE, FE_ZE,
} = f80Module;
const { fault } = faultModule;
const { CF, PF, ZF } = flagsModule;
const { CR0_NE, VEC_MF, x87Gate, waitGate } = fpGateModule;
const { UnsupportedForm } = insnModule;
const { probeWrite, rd16, rd32, rd64, wr16, wr32, wr64 } = mmuModule;
const { CR0, FCW, FSW, FTW, FOP, FIP, FDP, FPR, RFLAGS, GP } = vpLayoutModule;

const RAX = GP;

// FSW bits
export const SW_SF = 0x40;
export const SW_ES = 0x80;
export const SW_C0 = 0x100;
export const SW_C1 = 0x200;
export const SW_C2 = 0x400;
export const SW_C3 = 0x4000;
export const SW_B = 0x8000;
const SW_CC = SW_C0 | SW_C1 | SW_C2 | SW_C3;
const TOP_MASK = 0x3800;

// Tag values
const TAG_VALID = 0;
const TAG_ZERO = 1;
const TAG_SPECIAL = 2;
const TAG_EMPTY = 3;

// ------------------------------------------------------------------ register file access

export function top(c: Cpu): number {
  return (c.r[FSW] >> 11) & 7;
}

function setTop(c: Cpu, t: number): void {
  const r = c.r;
  r[FSW] = (r[FSW] & ~TOP_MASK) | ((t & 7) << 11);
}

/** Tag class of a value (00 valid, 01 zero, 10 special). */
export function tagOf(v: F80): number {
  if (v.e === 0) return v.m === 0n ? TAG_ZERO : TAG_SPECIAL;
  if (v.e === 0x7fff || (v.m & (1n << 63n)) === 0n) return TAG_SPECIAL;
  return TAG_VALID;
}

export function physTag(c: Cpu, p: number): number {
  return (c.r[FTW] >> (2 * p)) & 3;
}

function setPhysTag(c: Cpu, p: number, t: number): void {
  const r = c.r;
  r[FTW] = (r[FTW] & ~(3 << (2 * p))) | (t << (2 * p));
}

export function readPhys(c: Cpu, p: number): F80 {
  const r = c.r;
  const b = FPR + 3 * p;
  const se = r[b + 2];
  return f80((se >> 15) & 1, se & 0x7fff, (BigInt(r[b + 1] >>> 0) << 32n) | BigInt(r[b] >>> 0));
}

/** Store the value in physical register p and tag it by class. */
export function writePhys(c: Cpu, p: number, v: F80): void {
  const r = c.r;
  const b = FPR + 3 * p;
  r[b] = Number(v.m & 0xffffffffn) | 0;
  r[b + 1] = Number(v.m >> 32n) | 0;
  r[b + 2] = (v.s << 15) | v.e;
  setPhysTag(c, p, tagOf(v));
}

function isEmpty(c: Cpu, i: number): boolean {
  return physTag(c, (top(c) + i) & 7) === TAG_EMPTY;
}

function st(c: Cpu, i: number): F80 {
  return readPhys(c, (top(c) + i) & 7);
}

function setSt(c: Cpu, i: number, v: F80): void {
  writePhys(c, (top(c) + i) & 7, v);
}

function pop(c: Cpu): void {
  const t = top(c);
  setPhysTag(c, t, TAG_EMPTY);
  setTop(c, t + 1);
}

// ------------------------------------------------------------------ exceptions and environment

const env: FpEnv = { rc: 0, pc: 64, flags: 0 };

/** The rounding environment from FCW, flags cleared. */
function fpEnv(c: Cpu): FpEnv {
  const cw = c.r[FCW];
  env.rc = (cw >> 10) & 3;
  const pcBits = (cw >> 8) & 3;
  env.pc = (pcBits === 0 ? 24 : pcBits === 2 ? 53 : 64) as Precision;
  env.flags = 0;
  return env;
}

/** OR exception flags into FSW; an unmasked one sets ES and B. */
export function raise(c: Cpu, flags: number): void {
  if (flags === 0) return;
  const r = c.r;
  let sw = r[FSW] | flags;
  if ((sw & ~r[FCW] & 0x3f) !== 0) sw |= SW_ES | SW_B;
  r[FSW] = sw;
}

/** Stack fault: IE | SF, C1 = 1 for overflow, 0 for underflow. */
function stackFault(c: Cpu, overflow: boolean): void {
  const r = c.r;
  r[FSW] = (r[FSW] & ~SW_C1) | (overflow ? SW_C1 : 0);
  raise(c, FE_IE | SW_SF);
}

/** Gate of a waiting x87 instruction: #NM, then a pending unmasked exception as #MF. */
function waitingGate(c: Cpu): void {
  x87Gate(c);
  pendingMf(c);
}

function pendingMf(c: Cpu): void {
  const r = c.r;
  if ((r[FSW] & SW_ES) !== 0 && (r[CR0] & CR0_NE) !== 0) fault(c, VEC_MF);
}

/** Push v (FLD and friends): stack overflow gives the default NaN. */
function push(c: Cpu, v: F80): void {
  const t = (top(c) - 1) & 7;
  if (physTag(c, t) !== TAG_EMPTY) {
    stackFault(c, true);
    v = F80_DEFAULT_NAN;
  }
  setTop(c, t);
  writePhys(c, t, v);
}

// ------------------------------------------------------------------ memory operands

function memOf(o: Operand | undefined): MemOperand {
  if (o === undefined || o.kind !== "mem") throw new UnsupportedForm();
  return o;
}

/** A reader of a memory operand as an F80 (m32fp, m64fp, m80fp, m16int, m32int, m64int). */
type LoadFn = (c: Cpu, e: FpEnv) => F80;

function floatLoader(m: MemOperand): LoadFn {
  const ea = m.ea;
  switch (m.size) {
    case 4:
      return (c, e) => fromF32(e, rd32(c, ea(c), c.ahi));
    case 8:
      return (c, e) => {
        const lo = rd64(c, ea(c), c.ahi);
        return fromF64(e, lo, c.mhi);
      };
    case 10:
      return (c) => readM80(c, ea);
    default:
      throw new UnsupportedForm();
  }
}

function readM80(c: Cpu, ea: EaFn): F80 {
  const lo = ea(c);
  const hi = c.ahi;
  const mlo = rd64(c, lo, hi);
  const mhi = c.mhi;
  const a2 = addAddr(lo, hi, 8, c);
  const se = rd16(c, a2, c.ahi);
  return f80((se >> 15) & 1, se & 0x7fff, (BigInt(mhi >>> 0) << 32n) | BigInt(mlo >>> 0));
}

/** (lo, hi) + n: returns the low word, the high word in c.ahi. */
function addAddr(lo: number, hi: number, n: number, c: Cpu): number {
  const s = (lo >>> 0) + n;
  c.ahi = (hi + (s > 0xffffffff ? 1 : 0)) | 0;
  return s | 0;
}

function writeM80(c: Cpu, lo: number, hi: number, v: F80): void {
  probeWrite(c, lo, hi, 10);
  wr64(c, lo, hi, Number(v.m & 0xffffffffn) | 0, Number(v.m >> 32n) | 0);
  const a2 = addAddr(lo, hi, 8, c);
  wr16(c, a2, c.ahi, (v.s << 15) | v.e);
}

/**
 * An integer operand. `roundToPc`: the arithmetic and compare forms (FIADD, FICOM, …) convert it
 * at the precision control as QEMU does (an m32int loses bits at PC = 24), the inexact flag of
 * that conversion not reported; FILD converts exactly.
 */
function intLoader(m: MemOperand, roundToPc = false): LoadFn {
  if (roundToPc) {
    const exact = intLoader(m);
    const scratch: FpEnv = { rc: 0, pc: 64, flags: 0 };
    return (c, e) => {
      scratch.rc = e.rc;
      return roundToPrecision(scratch, e.pc, exact(c, e));
    };
  }
  const ea = m.ea;
  switch (m.size) {
    case 2:
      return (c) => fromInt(BigInt((rd16(c, ea(c), c.ahi) << 16) >> 16));
    case 4:
      return (c) => fromInt(BigInt(rd32(c, ea(c), c.ahi) | 0));
    case 8:
      return (c) => {
        const lo = rd64(c, ea(c), c.ahi);
        return fromInt((BigInt(c.mhi | 0) << 32n) | BigInt(lo >>> 0));
      };
    default:
      throw new UnsupportedForm();
  }
}

// ------------------------------------------------------------------ loads

function translateFld(d: Insn): OpFn {
  const o = d.ops[0];
  if (o.kind === "st") {
    const i = o.i;
    return (c) => {
      waitingGate(c);
      if (isEmpty(c, i)) {
        stackFault(c, false);
        push(c, F80_DEFAULT_NAN);
        return;
      }
      push(c, st(c, i));
    };
  }
  const load = floatLoader(memOf(o));
  return (c) => {
    waitingGate(c);
    const e = fpEnv(c);
    const v = load(c, e);
    const f = e.flags;
    push(c, v);
    raise(c, f);
  };
}

function translateFild(d: Insn): OpFn {
  const load = intLoader(memOf(d.ops[0]));
  return (c) => {
    waitingGate(c);
    push(c, load(c, env));
  };
}

const L2T = f80(0, 0x4000, 0xd49a784bcd1b8afen);
const L2T_U = f80(0, 0x4000, 0xd49a784bcd1b8affn);
const L2E = f80(0, 0x3fff, 0xb8aa3b295c17f0bcn);
const L2E_D = f80(0, 0x3fff, 0xb8aa3b295c17f0bbn);
const PI = f80(0, 0x4000, 0xc90fdaa22168c235n);
const PI_D = f80(0, 0x4000, 0xc90fdaa22168c234n);
const LG2 = f80(0, 0x3ffd, 0x9a209a84fbcff799n);
const LG2_D = f80(0, 0x3ffd, 0x9a209a84fbcff798n);
const LN2 = f80(0, 0x3ffe, 0xb17217f7d1cf79acn);
const LN2_D = f80(0, 0x3ffe, 0xb17217f7d1cf79abn);
const ONE = f80(0, 0x3fff, 1n << 63n);

/** A constant load; `down` is the value for RC down/chop, `up` for RC up (QEMU's choices). */
function constOp(near: F80, down: F80, up: F80): Translator {
  return () => (c) => {
    waitingGate(c);
    const rc = (c.r[FCW] >> 10) & 3;
    push(c, rc === 2 ? up : rc === 0 ? near : down);
  };
}

// ------------------------------------------------------------------ stores

function translateFst(d: Insn, popAfter: boolean): OpFn {
  const o = d.ops[0];
  if (o.kind === "st") {
    const i = o.i;
    return (c) => {
      waitingGate(c);
      if (isEmpty(c, 0)) {
        stackFault(c, false);
        setSt(c, i, F80_DEFAULT_NAN);
      } else {
        setSt(c, i, st(c, 0));
      }
      if (popAfter) pop(c);
    };
  }
  const m = memOf(o);
  const ea = m.ea;
  const size = m.size;
  if (size !== 4 && size !== 8 && size !== 10) throw new UnsupportedForm();
  return (c) => {
    waitingGate(c);
    const e = fpEnv(c);
    const empty = isEmpty(c, 0);
    const v = empty ? F80_DEFAULT_NAN : st(c, 0);
    if (empty) e.flags |= FE_IE | SW_SF;
    const lo = ea(c);
    const hi = c.ahi;
    if (size === 4) {
      wr32(c, lo, hi, toF32(e, v));
    } else if (size === 8) {
      const b = toF64(e, v);
      wr64(c, lo, hi, Number(b & 0xffffffffn) | 0, Number(b >> 32n) | 0);
    } else {
      writeM80(c, lo, hi, v);
    }
    if (empty) c.r[FSW] &= ~SW_C1;
    raise(c, e.flags);
    if (popAfter) pop(c);
  };
}

function translateFist(d: Insn, popAfter: boolean, truncate: boolean): OpFn {
  const m = memOf(d.ops[0]);
  const ea = m.ea;
  const size = m.size;
  if (size !== 2 && size !== 4 && size !== 8) throw new UnsupportedForm();
  const bits = (size * 8) as 16 | 32 | 64;
  return (c) => {
    waitingGate(c);
    const e = fpEnv(c);
    let v: bigint;
    const empty = isEmpty(c, 0);
    if (empty) {
      e.flags |= FE_IE | SW_SF;
      v = -(1n << BigInt(bits - 1));
    } else {
      v = toInt(e, st(c, 0), bits, truncate);
    }
    const lo = ea(c);
    const hi = c.ahi;
    if (bits === 16) wr16(c, lo, hi, Number(v) & 0xffff);
    else if (bits === 32) wr32(c, lo, hi, Number(v) | 0);
    else {
      const u = BigInt.asUintN(64, v);
      wr64(c, lo, hi, Number(u & 0xffffffffn) | 0, Number(u >> 32n) | 0);
    }
    if (empty) c.r[FSW] &= ~SW_C1;
    raise(c, e.flags);
    if (popAfter) pop(c);
  };
}

// ------------------------------------------------------------------ arithmetic

type BinFn = (e: FpEnv, a: F80, b: F80) => F80;
const divr: BinFn = (e, a, b) => div(e, b, a);
const subr: BinFn = (e, a, b) => sub(e, b, a);

/** FADD/FSUB/… in all forms: dst ← f(dst, src); P forms pop; I forms take an integer operand. */
function arith(f: BinFn, popAfter: boolean, intOperand: boolean): Translator {
  return (d) => {
    const ops = d.ops;
    if (ops.length === 1) {
      const m = memOf(ops[0]);
      const load = intOperand ? intLoader(m, true) : floatLoader(m);
      return (c) => {
        waitingGate(c);
        const e = fpEnv(c);
        const src = load(c, e);
        if (isEmpty(c, 0)) {
          stackFault(c, false);
          setSt(c, 0, F80_DEFAULT_NAN);
          return;
        }
        const v = f(e, st(c, 0), src);
        setSt(c, 0, v);
        raise(c, e.flags);
      };
    }
    let di = 0;
    let si = 1;
    if (ops.length === 2) {
      const [a, b] = ops;
      if (a.kind !== "st" || b.kind !== "st") throw new UnsupportedForm();
      di = a.i;
      si = b.i;
    } else if (ops.length === 0) {
      di = 1; // FADDP with no operands: ST(1) ← ST(1) op ST(0), pop
      si = 0;
    }
    const D = di;
    const S = si;
    return (c) => {
      waitingGate(c);
      const e = fpEnv(c);
      if (isEmpty(c, D) || isEmpty(c, S)) {
        stackFault(c, false);
        setSt(c, D, F80_DEFAULT_NAN);
      } else {
        setSt(c, D, f(e, st(c, D), st(c, S)));
        raise(c, e.flags);
      }
      if (popAfter) pop(c);
    };
  };
}

/** An operation on ST0 alone: ST0 ← f(ST0). */
function unary(f: (c: Cpu, e: FpEnv, a: F80) => F80): Translator {
  return () => (c) => {
    waitingGate(c);
    const e = fpEnv(c);
    if (isEmpty(c, 0)) {
      stackFault(c, false);
      setSt(c, 0, F80_DEFAULT_NAN);
      return;
    }
    const v = f(c, e, st(c, 0));
    setSt(c, 0, v);
    raise(c, e.flags);
  };
}

const fsqrtOp = unary((c, e, a) => {
  if (a.s === 1) c.r[FSW] = (c.r[FSW] & ~SW_CC) | SW_C2;
  return sqrt(e, a);
});
const frndintOp = unary((_c, e, a) => roundToInt(e, a));
const fchsOp = unary((_c, _e, a) => chs(a));
const fabsOp = unary((_c, _e, a) => abs(a));

/** FSCALE: ST0 ← ST0 · 2^trunc(ST1), QEMU's helper. */
function translateFscale(): OpFn {
  return (c) => {
    waitingGate(c);
    const e = fpEnv(c);
    if (isEmpty(c, 0) || isEmpty(c, 1)) {
      stackFault(c, false);
      setSt(c, 0, F80_DEFAULT_NAN);
      return;
    }
    const a = st(c, 0);
    const b = st(c, 1);
    let r: F80;
    if (isInvalidEncoding(b) || isInvalidEncoding(a)) {
      e.flags |= FE_IE;
      r = F80_DEFAULT_NAN;
    } else if (isNan(b)) {
      if (isSnan(a)) e.flags |= FE_IE;
      r = b;
      if (isSnan(r)) {
        e.flags |= FE_IE;
        r = silence(r);
      }
    } else if (isInf(b) && !isNan(a)) {
      if (b.s) {
        if (isInf(a)) {
          e.flags |= FE_IE;
          r = F80_DEFAULT_NAN;
        } else {
          r = f80(a.s, 0, 0n);
        }
      } else if (isZero(a)) {
        e.flags |= FE_IE;
        r = F80_DEFAULT_NAN;
      } else {
        r = f80(a.s, 0x7fff, 1n << 63n);
      }
    } else {
      r = scalbn(e, a, toInt32Saturating(b));
    }
    setSt(c, 0, r);
    raise(c, e.flags);
  };
}

/** FXTRACT: ST0 ← exponent, push significand (QEMU's helper). */
function translateFxtract(): OpFn {
  return (c) => {
    waitingGate(c);
    const e = fpEnv(c);
    if (isEmpty(c, 0)) {
      stackFault(c, false);
      setSt(c, 0, F80_DEFAULT_NAN);
      push(c, F80_DEFAULT_NAN);
      return;
    }
    const a = st(c, 0);
    if (isZero(a)) {
      e.flags |= FE_ZE;
      setSt(c, 0, f80(1, 0x7fff, 1n << 63n));
      push(c, a);
    } else if (isInvalidEncoding(a)) {
      e.flags |= FE_IE;
      setSt(c, 0, F80_DEFAULT_NAN);
      push(c, F80_DEFAULT_NAN);
    } else if (isNan(a)) {
      let q = a;
      if (isSnan(a)) {
        e.flags |= FE_IE;
        q = silence(a);
      }
      setSt(c, 0, q);
      push(c, q);
    } else if (isInf(a)) {
      setSt(c, 0, F80_INF_POS);
      push(c, a);
    } else {
      let m = a.m;
      let exp: number;
      if (a.e === 0) {
        let shift = 0;
        while ((m & (1n << 63n)) === 0n) {
          m <<= 1n;
          shift++;
        }
        exp = 1 - 16383 - shift;
        e.flags |= FE_DE;
      } else {
        exp = a.e - 16383;
      }
      setSt(c, 0, fromInt(BigInt(exp)));
      push(c, f80(a.s, 16383, m));
    }
    raise(c, e.flags);
  };
}
const F80_INF_POS = f80(0, 0x7fff, 1n << 63n);

/** FPREM (mod) / FPREM1: QEMU's helper_fprem_common (partial remainder when the exponents differ by 64 or more). */
function translateFprem(mod: boolean): OpFn {
  return (c) => {
    waitingGate(c);
    const e = fpEnv(c);
    if (isEmpty(c, 0) || isEmpty(c, 1)) {
      stackFault(c, false);
      setSt(c, 0, F80_DEFAULT_NAN);
      return;
    }
    const a = st(c, 0);
    const b = st(c, 1);
    const r = c.r;
    r[FSW] &= ~SW_CC;
    let res: F80;
    if (isZero(a) || isZero(b) || a.e === 0x7fff || b.e === 0x7fff || isInvalidEncoding(a) || isInvalidEncoding(b)) {
      res = modrem(e, a, b, mod).r;
    } else {
      const exp0 = a.e === 0 ? 1 - clz64(a.m) : a.e;
      const exp1 = b.e === 0 ? 1 - clz64(b.m) : b.e;
      const expdiff = exp0 - exp1;
      if (expdiff < 64) {
        const { r: rem, q: q0 } = modrem(e, a, b, mod);
        // QEMU 7.2 passes no quotient pointer for FPREM1: C0, C3, C1 stay 0 (hardware gives q2, q1, q0).
        const q = mod ? q0 : 0;
        res = rem;
        r[FSW] |= ((q & 4) ? SW_C0 : 0) | ((q & 2) ? SW_C3 : 0) | ((q & 1) ? SW_C1 : 0);
      } else {
        const n = 32 + (expdiff % 32);
        const b2 = scalbn(e, b, expdiff - n, e.pc);
        res = modrem(e, a, b2, true).r;
        r[FSW] |= SW_C2;
      }
    }
    setSt(c, 0, res);
    raise(c, e.flags);
  };
}

function clz64(m: bigint): number {
  if (m === 0n) return 64;
  return 64 - m.toString(2).length;
}

function translateFxch(d: Insn): OpFn {
  const o = d.ops.length === 2 ? d.ops[1] : d.ops[0];
  const i = o !== undefined && o.kind === "st" ? o.i : 1;
  return (c) => {
    waitingGate(c);
    const t = top(c);
    const p0 = t;
    const pi = (t + i) & 7;
    if (physTag(c, p0) === TAG_EMPTY || physTag(c, pi) === TAG_EMPTY) {
      stackFault(c, false);
      if (physTag(c, p0) === TAG_EMPTY) writePhys(c, p0, F80_DEFAULT_NAN);
      if (physTag(c, pi) === TAG_EMPTY) writePhys(c, pi, F80_DEFAULT_NAN);
    }
    const a = readPhys(c, p0);
    const b = readPhys(c, pi);
    writePhys(c, p0, b);
    writePhys(c, pi, a);
  };
}

// ------------------------------------------------------------------ compares

const FCOM_CC = [SW_C0, SW_C3, 0, SW_C3 | SW_C2 | SW_C0]; // less, equal, greater, unordered

/** FCOM/FUCOM/FICOM with `pops` pops: compares ST0 with ST(i) or a memory operand. */
function fcom(quiet: boolean, pops: number, intOperand: boolean): Translator {
  return (d) => {
    const ops = d.ops;
    let load: LoadFn | null = null;
    let si = 1;
    if (ops.length === 1 && ops[0].kind === "mem") {
      load = intOperand ? intLoader(ops[0], true) : floatLoader(ops[0]);
    } else if (ops.length === 2 && ops[1].kind === "st") {
      si = ops[1].i;
    } else if (ops.length === 1 && ops[0].kind === "st") {
      si = ops[0].i;
    } else if (ops.length !== 0) {
      throw new UnsupportedForm();
    }
    const L = load;
    const S = si;
    return (c) => {
      waitingGate(c);
      const e = fpEnv(c);
      const b = L !== null ? L(c, e) : null;
      let rel: number;
      if (isEmpty(c, 0) || (b === null && isEmpty(c, S))) {
        stackFault(c, false);
        rel = CMP_UNORDERED;
      } else {
        rel = compare(e, st(c, 0), b ?? st(c, S), quiet);
      }
      const r = c.r;
      r[FSW] = (r[FSW] & ~(SW_C0 | SW_C2 | SW_C3)) | FCOM_CC[rel + 1];
      raise(c, e.flags);
      for (let k = 0; k < pops; k++) pop(c);
    };
  };
}

const FCOMI_FLAGS = [CF, ZF, 0, ZF | PF | CF];

function fcomi(quiet: boolean, popAfter: boolean): Translator {
  return (d) => {
    const o = d.ops[1];
    if (o === undefined || o.kind !== "st") throw new UnsupportedForm();
    const S = o.i;
    return (c) => {
      waitingGate(c);
      const e = fpEnv(c);
      let rel: number;
      if (isEmpty(c, 0) || isEmpty(c, S)) {
        stackFault(c, false);
        rel = CMP_UNORDERED;
      } else {
        rel = compare(e, st(c, 0), st(c, S), quiet);
      }
      const r = c.r;
      r[RFLAGS] = (r[RFLAGS] & ~(ZF | PF | CF)) | FCOMI_FLAGS[rel + 1];
      raise(c, e.flags);
      if (popAfter) pop(c);
    };
  };
}

function translateFtst(): OpFn {
  return (c) => {
    waitingGate(c);
    const e = fpEnv(c);
    let rel: number;
    if (isEmpty(c, 0)) {
      stackFault(c, false);
      rel = CMP_UNORDERED;
    } else {
      rel = compare(e, st(c, 0), F80_ZERO, false);
    }
    const r = c.r;
    r[FSW] = (r[FSW] & ~(SW_C0 | SW_C2 | SW_C3)) | FCOM_CC[rel + 1];
    raise(c, e.flags);
  };
}

function translateFxam(): OpFn {
  return (c) => {
    waitingGate(c);
    const r = c.r;
    const a = st(c, 0);
    let sw = r[FSW] & ~SW_CC;
    if (a.s) sw |= SW_C1;
    if (isEmpty(c, 0)) {
      r[FSW] = sw | SW_C3 | SW_C0;
      return;
    }
    if (a.e === 0x7fff) {
      if (a.m === 1n << 63n) sw |= SW_C2 | SW_C0;
      else if ((a.m & (1n << 63n)) !== 0n) sw |= SW_C0;
    } else if (a.e === 0) {
      sw |= a.m === 0n ? SW_C3 : SW_C3 | SW_C2;
    } else if ((a.m & (1n << 63n)) !== 0n) {
      sw |= SW_C2;
    }
    r[FSW] = sw;
  };
}

/** FCMOVcc: ST0 ← ST(i) when the condition holds on RFLAGS. */
function fcmov(test: (f: number) => boolean): Translator {
  return (d) => {
    const o = d.ops[1];
    if (o === undefined || o.kind !== "st") throw new UnsupportedForm();
    const S = o.i;
    return (c) => {
      waitingGate(c);
      if (isEmpty(c, 0) || isEmpty(c, S)) {
        stackFault(c, false);
        setSt(c, 0, F80_DEFAULT_NAN);
        return;
      }
      if (test(c.r[RFLAGS])) setSt(c, 0, st(c, S));
    };
  };
}

// ------------------------------------------------------------------ control

function swValue(c: Cpu): number {
  return c.r[FSW] & 0xffff;
}

function translateFnstsw(d: Insn): OpFn {
  const o = d.ops[0];
  if (o.kind === "reg") {
    return (c) => {
      x87Gate(c);
      const r = c.r;
      r[RAX] = (r[RAX] & ~0xffff) | swValue(c);
    };
  }
  const ea = memOf(o).ea;
  return (c) => {
    x87Gate(c);
    wr16(c, ea(c), c.ahi, swValue(c));
  };
}

function translateFnstcw(d: Insn): OpFn {
  const ea = memOf(d.ops[0]).ea;
  return (c) => {
    x87Gate(c);
    wr16(c, ea(c), c.ahi, c.r[FCW] & 0xffff);
  };
}

/** Recompute ES and B from the flags and the masks (FLDCW, FLDENV, FRSTOR). */
function refreshEs(c: Cpu): void {
  const r = c.r;
  if ((r[FSW] & ~r[FCW] & 0x3f) !== 0) r[FSW] |= SW_ES | SW_B;
  else r[FSW] &= ~(SW_ES | SW_B);
}

function translateFldcw(d: Insn): OpFn {
  const ea = memOf(d.ops[0]).ea;
  return (c) => {
    waitingGate(c);
    const v = rd16(c, ea(c), c.ahi);
    c.r[FCW] = v & 0xffff;
    refreshEs(c);
  };
}

/** FNINIT state (also XRSTOR's x87 init). */
export function fninit(c: Cpu): void {
  const r = c.r;
  r[FCW] = 0x37f;
  r[FSW] = 0;
  r[FTW] = 0xffff;
  r[FOP] = 0;
  r[FIP] = 0;
  r[FIP + 1] = 0;
  r[FDP] = 0;
  r[FDP + 1] = 0;
}

function translateFfree(popAfter: boolean): Translator {
  return (d) => {
    const o = d.ops[0];
    if (o === undefined || o.kind !== "st") throw new UnsupportedForm();
    const i = o.i;
    return (c) => {
      waitingGate(c);
      setPhysTag(c, (top(c) + i) & 7, TAG_EMPTY);
      if (popAfter) pop(c);
    };
  };
}

function stackStep(delta: number): Translator {
  return () => (c) => {
    waitingGate(c);
    const r = c.r;
    r[FSW] &= ~SW_CC;
    setTop(c, top(c) + delta);
  };
}

// ------------------------------------------------------------------ environment and state images

/** Tag word as stored by FNSTENV/FNSAVE: recomputed from the registers (empty stays empty). */
export function fullTagWord(c: Cpu): number {
  let w = 0;
  for (let p = 7; p >= 0; p--) {
    w <<= 2;
    w |= physTag(c, p) === TAG_EMPTY ? TAG_EMPTY : tagOf(readPhys(c, p));
  }
  return w;
}

/** Load a tag word: 11 stays empty, anything else is recomputed from the register contents. */
export function loadTagWord(c: Cpu, w: number): void {
  let t = 0;
  for (let p = 0; p < 8; p++) {
    const tag = (w >> (2 * p)) & 3;
    t |= (tag === TAG_EMPTY ? TAG_EMPTY : tagOf(readPhys(c, p))) << (2 * p);
  }
  c.r[FTW] = t;
}

/** Store the 14- or 28-byte environment at (lo, hi). */
function storeEnv(c: Cpu, lo: number, hi: number, size32: boolean): void {
  const r = c.r;
  const fields = [r[FCW] & 0xffff, swValue(c), fullTagWord(c), 0, 0, 0, 0];
  const step = size32 ? 4 : 2;
  probeWrite(c, lo, hi, 7 * step);
  for (let k = 0; k < 7; k++) {
    const a = addAddr(lo, hi, k * step, c);
    if (size32) wr32(c, a, c.ahi, fields[k]);
    else wr16(c, a, c.ahi, fields[k]);
  }
}

/** Read the environment (FCW, FSW, FTW) without changing state; apply with applyEnv. */
function readEnv(c: Cpu, lo: number, hi: number, size32: boolean): [number, number, number] {
  const step = size32 ? 4 : 2;
  const cw = rd16(c, lo, hi);
  const a1 = addAddr(lo, hi, step, c);
  const sw = rd16(c, a1, c.ahi);
  const a2 = addAddr(lo, hi, 2 * step, c);
  const tw = rd16(c, a2, c.ahi);
  return [cw, sw, tw];
}

function applyEnv(c: Cpu, cw: number, sw: number, tw: number): void {
  const r = c.r;
  r[FCW] = cw & 0xffff;
  r[FSW] = sw & 0xffff;
  loadTagWord(c, tw);
  refreshEs(c);
}

function translateFnstenv(d: Insn): OpFn {
  const m = memOf(d.ops[0]);
  const ea = m.ea;
  const size32 = m.size === 28;
  return (c) => {
    x87Gate(c);
    const lo = ea(c);
    storeEnv(c, lo, c.ahi, size32);
    c.r[FCW] |= 0x3f;
  };
}

function translateFldenv(d: Insn): OpFn {
  const m = memOf(d.ops[0]);
  const ea = m.ea;
  const size32 = m.size === 28;
  return (c) => {
    x87Gate(c);
    const lo = ea(c);
    const [cw, sw, tw] = readEnv(c, lo, c.ahi, size32);
    applyEnv(c, cw, sw, tw);
  };
}

function translateFnsave(d: Insn): OpFn {
  const m = memOf(d.ops[0]);
  const ea = m.ea;
  const size32 = m.size === 108;
  const envSize = size32 ? 28 : 14;
  return (c) => {
    x87Gate(c);
    const lo = ea(c);
    const hi = c.ahi;
    probeWrite(c, lo, hi, envSize + 80);
    storeEnv(c, lo, hi, size32);
    for (let i = 0; i < 8; i++) {
      const a = addAddr(lo, hi, envSize + 10 * i, c);
      writeM80(c, a, c.ahi, st(c, i));
    }
    fninit(c);
  };
}

function translateFrstor(d: Insn): OpFn {
  const m = memOf(d.ops[0]);
  const ea = m.ea;
  const size32 = m.size === 108;
  const envSize = size32 ? 28 : 14;
  return (c) => {
    x87Gate(c);
    const lo = ea(c);
    const hi = c.ahi;
    const [cw, sw, tw] = readEnv(c, lo, hi, size32);
    const regs: F80[] = [];
    for (let i = 0; i < 8; i++) {
      const a = addAddr(lo, hi, envSize + 10 * i, c);
      const ahi = c.ahi;
      regs.push(readM80(c, () => (c.ahi = ahi, a)));
    }
    const r = c.r;
    r[FSW] = sw & 0xffff;
    const t = top(c);
    for (let i = 0; i < 8; i++) {
      const p = (t + i) & 7;
      const b = FPR + 3 * p;
      const v = regs[i];
      r[b] = Number(v.m & 0xffffffffn) | 0;
      r[b + 1] = Number(v.m >> 32n) | 0;
      r[b + 2] = (v.s << 15) | v.e;
    }
    applyEnv(c, cw, sw, tw);
  };
}

const fwaitOp: OpFn = (c) => {
  waitGate(c);
  pendingMf(c);
};

// ------------------------------------------------------------------ the table

const simple = (op: OpFn): Translator => () => op;

export const x87Translators: [Mnemonic, Translator][] = [
  [Mnemonic.Fld, translateFld],
  [Mnemonic.Fild, translateFild],
  [Mnemonic.Fld1, constOp(ONE, ONE, ONE)],
  [Mnemonic.Fldz, constOp(F80_ZERO, F80_ZERO, F80_ZERO)],
  [Mnemonic.Fldpi, constOp(PI, PI_D, PI)],
  [Mnemonic.Fldl2e, constOp(L2E, L2E_D, L2E)],
  [Mnemonic.Fldln2, constOp(LN2, LN2_D, LN2)],
  [Mnemonic.Fldl2t, constOp(L2T, L2T, L2T_U)],
  [Mnemonic.Fldlg2, constOp(LG2, LG2_D, LG2)],
  [Mnemonic.Fst, (d) => translateFst(d, false)],
  [Mnemonic.Fstp, (d) => translateFst(d, true)],
  [Mnemonic.Fist, (d) => translateFist(d, false, false)],
  [Mnemonic.Fistp, (d) => translateFist(d, true, false)],
  [Mnemonic.Fisttp, (d) => translateFist(d, true, true)],
  [Mnemonic.Fadd, arith(add, false, false)],
  [Mnemonic.Faddp, arith(add, true, false)],
  [Mnemonic.Fiadd, arith(add, false, true)],
  [Mnemonic.Fsub, arith(sub, false, false)],
  [Mnemonic.Fsubp, arith(sub, true, false)],
  [Mnemonic.Fisub, arith(sub, false, true)],
  [Mnemonic.Fsubr, arith(subr, false, false)],
  [Mnemonic.Fsubrp, arith(subr, true, false)],
  [Mnemonic.Fisubr, arith(subr, false, true)],
  [Mnemonic.Fmul, arith(mul, false, false)],
  [Mnemonic.Fmulp, arith(mul, true, false)],
  [Mnemonic.Fimul, arith(mul, false, true)],
  [Mnemonic.Fdiv, arith(div, false, false)],
  [Mnemonic.Fdivp, arith(div, true, false)],
  [Mnemonic.Fidiv, arith(div, false, true)],
  [Mnemonic.Fdivr, arith(divr, false, false)],
  [Mnemonic.Fdivrp, arith(divr, true, false)],
  [Mnemonic.Fidivr, arith(divr, false, true)],
  [Mnemonic.Fchs, fchsOp],
  [Mnemonic.Fabs, fabsOp],
  [Mnemonic.Fsqrt, fsqrtOp],
  [Mnemonic.Frndint, frndintOp],
  [Mnemonic.Fscale, translateFscale],
  [Mnemonic.Fxtract, translateFxtract],
  [Mnemonic.Fprem, () => translateFprem(true)],
  [Mnemonic.Fprem1, () => translateFprem(false)],
  [Mnemonic.Fxch, translateFxch],
  [Mnemonic.Fcom, fcom(false, 0, false)],
  [Mnemonic.Fcomp, fcom(false, 1, false)],
  [Mnemonic.Fcompp, fcom(false, 2, false)],
  [Mnemonic.Fucom, fcom(true, 0, false)],
  [Mnemonic.Fucomp, fcom(true, 1, false)],
  [Mnemonic.Fucompp, fcom(true, 2, false)],
  [Mnemonic.Ficom, fcom(false, 0, true)],
  [Mnemonic.Ficomp, fcom(false, 1, true)],
  [Mnemonic.Fcomi, fcomi(false, false)],
  [Mnemonic.Fcomip, fcomi(false, true)],
  [Mnemonic.Fucomi, fcomi(true, false)],
  [Mnemonic.Fucomip, fcomi(true, true)],
  [Mnemonic.Ftst, translateFtst],
  [Mnemonic.Fxam, translateFxam],
  [Mnemonic.Fcmovb, fcmov((f) => (f & CF) !== 0)],
  [Mnemonic.Fcmove, fcmov((f) => (f & ZF) !== 0)],
  [Mnemonic.Fcmovbe, fcmov((f) => (f & (CF | ZF)) !== 0)],
  [Mnemonic.Fcmovu, fcmov((f) => (f & PF) !== 0)],
  [Mnemonic.Fcmovnb, fcmov((f) => (f & CF) === 0)],
  [Mnemonic.Fcmovne, fcmov((f) => (f & ZF) === 0)],
  [Mnemonic.Fcmovnbe, fcmov((f) => (f & (CF | ZF)) === 0)],
  [Mnemonic.Fcmovnu, fcmov((f) => (f & PF) === 0)],
  [Mnemonic.Fnstsw, translateFnstsw],
  [Mnemonic.Fnstcw, translateFnstcw],
  [Mnemonic.Fldcw, translateFldcw],
  [Mnemonic.Fninit, simple((c) => {
    x87Gate(c);
    fninit(c);
  })],
  [Mnemonic.Fnclex, simple((c) => {
    x87Gate(c);
    c.r[FSW] &= 0x7f00;
  })],
  [Mnemonic.Ffree, translateFfree(false)],
  [Mnemonic.Ffreep, translateFfree(true)],
  [Mnemonic.Fincstp, stackStep(1)],
  [Mnemonic.Fdecstp, stackStep(-1)],
  [Mnemonic.Fnstenv, translateFnstenv],
  [Mnemonic.Fldenv, translateFldenv],
  [Mnemonic.Fnsave, translateFnsave],
  [Mnemonic.Frstor, translateFrstor],
  [Mnemonic.Wait, simple(fwaitOp)],
  [Mnemonic.Fnop, simple((c) => waitingGate(c))],
];

