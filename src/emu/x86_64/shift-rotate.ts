// SHL/SAL SHR SAR ROL ROR RCL RCR by 1, imm8 or CL, at 8/16/32/64 bits.
//
// The count is masked to 5 bits (6 for 64-bit operands); a masked count of 0 changes no flag and
// keeps the value, though a 32-bit register destination is still written (bits 63:32 cleared),
// as hardware does.
// Shifts set CF, SF, ZF, PF and OF (OF is defined for a count of 1; other counts use the same
// formula) and clear AF; rotates change only CF and OF.

import { Mnemonic } from "iced-x86";
import * as arithModule from "./arith.js";
import type { Cpu, OpFn } from "./cpu.js";
import * as flagsModule from "./flags.js";
import * as insnModule from "./insn.js";
import type { Insn, Translator } from "./insn.js";
import * as mmuModule from "./mmu.js";
import * as operandsModule from "./operands.js";
import * as vpLayoutModule from "./vp-layout.js";

// Imported bindings as module constants: under tsx (esbuild) every use of an import is a getter call.
const { setFlags, szp16, szp32, szp64, szp8 } = arithModule;
const { ARITH, CF, OF } = flagsModule;
const { UnsupportedForm } = insnModule;
const { rdw16, rdw32, rdw64, rdw8, wr16, wr32, wr64, wr8 } = mmuModule;
const { reader, regWriter } = operandsModule;
const { GP, RFLAGS } = vpLayoutModule;

const SHL = 0, SHR = 1, SAR = 2, ROL = 3, ROR = 4, RCL = 5, RCR = 6;

function szp(v: number, n: number): number {
  return n === 8 ? szp8(v) : n === 16 ? szp16(v) : szp32(v);
}

/** Shift or rotate an n-bit value (n = 8, 16, 32; zero-extended, signed word for 32) by count 1..31. */
function shift(c: Cpu, kind: number, a: number, count: number, n: number): number {
  const mask = n === 32 ? -1 : (1 << n) - 1;
  const msb = n - 1;
  switch (kind) {
    case SHL: {
      const v = count < 32 ? (a << count) & mask : 0;
      const cf = count <= n ? (a >>> (n - count)) & 1 : 0;
      setFlags(c, ARITH, cf | szp(v, n) | ((((v >>> msb) & 1) ^ cf) << 11));
      return v;
    }
    case SHR: {
      const v = (a & mask) >>> count;
      const cf = (a >>> (count - 1)) & 1;
      setFlags(c, ARITH, cf | szp(v | 0, n) | (((a >>> msb) & 1) << 11));
      return v | 0;
    }
    case SAR: {
      const sa = n === 8 ? (a << 24) >> 24 : n === 16 ? (a << 16) >> 16 : a;
      const v = (sa >> count) & mask;
      const cf = (sa >> (count - 1)) & 1;
      setFlags(c, ARITH, cf | szp(v, n));
      return v;
    }
    case ROL: {
      const k = count % n;
      const v = k === 0 ? a : ((a << k) | ((a & mask) >>> (n - k))) & mask;
      const cf = v & 1;
      setFlags(c, CF | OF, cf | ((((v >>> msb) & 1) ^ cf) << 11));
      return v;
    }
    case ROR: {
      const k = count % n;
      const v = k === 0 ? a : (((a & mask) >>> k) | (a << (n - k))) & mask;
      const cf = (v >>> msb) & 1;
      setFlags(c, CF | OF, cf | ((cf ^ ((v >>> (msb - 1)) & 1)) << 11));
      return v;
    }
    case RCL: {
      const k = count % (n + 1);
      let cf = c.r[RFLAGS] & CF;
      let v = a & mask;
      for (let i = 0; i < k; i++) {
        const out = (v >>> msb) & 1;
        v = ((v << 1) | cf) & mask;
        cf = out;
      }
      if (k !== 0) setFlags(c, CF | OF, cf | ((((v >>> msb) & 1) ^ cf) << 11));
      return v;
    }
    default: {
      const k = count % (n + 1);
      let cf = c.r[RFLAGS] & CF;
      let v = a & mask;
      const of = ((v >>> msb) & 1) ^ cf;
      for (let i = 0; i < k; i++) {
        const out = v & 1;
        v = ((v >>> 1) | (cf << msb)) & mask;
        cf = out;
      }
      if (k !== 0) setFlags(c, CF | OF, cf | (of << 11));
      return v;
    }
  }
}

/** 64-bit shift or rotate of (lo, hi) by count 1..63: returns lo, hi in c.rhi. */
function shift64(c: Cpu, kind: number, lo: number, hi: number, count: number): number {
  let rl: number;
  let rh: number;
  switch (kind) {
    case SHL: {
      if (count < 32) {
        rh = (hi << count) | (lo >>> (32 - count));
        rl = lo << count;
      } else {
        rh = lo << (count - 32);
        rl = 0;
      }
      const cf = count <= 32 ? (hi >>> (32 - count)) & 1 : (lo >>> (64 - count)) & 1;
      setFlags(c, ARITH, cf | szp64(rl, rh) | ((((rh >>> 31) & 1) ^ cf) << 11));
      break;
    }
    case SHR:
    case SAR: {
      const arith = kind === SAR;
      if (count < 32) {
        rl = (lo >>> count) | (hi << (32 - count));
        rh = arith ? hi >> count : hi >>> count;
      } else {
        rl = arith ? hi >> (count - 32) : hi >>> (count - 32);
        rh = arith ? hi >> 31 : 0;
      }
      rl |= 0;
      rh |= 0;
      const b = count - 1;
      const cf = b < 32 ? (lo >>> b) & 1 : (hi >>> (b - 32)) & 1;
      setFlags(c, ARITH, cf | szp64(rl, rh) | (arith ? 0 : ((hi >>> 31) << 11)));
      break;
    }
    case ROL:
    case ROR: {
      const k = kind === ROL ? count : 64 - count;
      if (k === 32) {
        rl = hi;
        rh = lo;
      } else if (k < 32) {
        rh = (hi << k) | (lo >>> (32 - k));
        rl = (lo << k) | (hi >>> (32 - k));
      } else {
        const j = k - 32;
        rh = (lo << j) | (hi >>> (32 - j));
        rl = (hi << j) | (lo >>> (32 - j));
      }
      if (kind === ROL) {
        const cf = rl & 1;
        setFlags(c, CF | OF, cf | ((((rh >>> 31) & 1) ^ cf) << 11));
      } else {
        const cf = (rh >>> 31) & 1;
        setFlags(c, CF | OF, cf | ((cf ^ ((rh >>> 30) & 1)) << 11));
      }
      break;
    }
    case RCL: {
      let cf = c.r[RFLAGS] & CF;
      rl = lo;
      rh = hi;
      for (let i = 0; i < count; i++) {
        const out = rh >>> 31;
        rh = (rh << 1) | (rl >>> 31);
        rl = (rl << 1) | cf;
        cf = out;
      }
      setFlags(c, CF | OF, cf | (((rh >>> 31) ^ cf) << 11));
      break;
    }
    default: {
      let cf = c.r[RFLAGS] & CF;
      const of = (hi >>> 31) ^ cf;
      rl = lo;
      rh = hi;
      for (let i = 0; i < count; i++) {
        const out = rl & 1;
        rl = (rl >>> 1) | (rh << 31);
        rh = (rh >>> 1) | (cf << 31);
        cf = out;
      }
      setFlags(c, CF | OF, cf | (of << 11));
      break;
    }
  }
  c.rhi = rh | 0;
  return rl | 0;
}

const RCX = GP + 2;

function translateShift(d: Insn, kind: number): OpFn {
  const [dst, cnt] = d.ops;
  if ((dst.kind !== "reg" && dst.kind !== "mem") || cnt === undefined) throw new UnsupportedForm();
  const n = dst.size * 8;
  const cmask = n === 64 ? 63 : 31;
  const fixed = cnt.kind === "imm" ? cnt.lo & cmask : -1;
  if (cnt.kind !== "imm" && !(cnt.kind === "reg" && cnt.slot === RCX && cnt.size === 1)) throw new UnsupportedForm();
  if (fixed === 0) {
    if (dst.kind === "reg" && n === 32) {
      const s = dst.slot;
      return (c) => {
        c.r[s + 1] = 0;
      };
    }
    return () => {};
  }
  if (n === 64) {
    if (dst.kind === "reg") {
      const s = dst.slot;
      return (c) => {
        const k = fixed >= 0 ? fixed : c.r[RCX] & 63;
        if (k === 0) return;
        const r = c.r;
        r[s] = shift64(c, kind, r[s], r[s + 1], k);
        r[s + 1] = c.rhi;
      };
    }
    const ea = dst.ea;
    return (c) => {
      const k = fixed >= 0 ? fixed : c.r[RCX] & 63;
      if (k === 0) return;
      const lo = ea(c);
      const hi = c.ahi;
      const vl = rdw64(c, lo, hi);
      const v = shift64(c, kind, vl, c.mhi, k);
      wr64(c, lo, hi, v, c.rhi);
    };
  }
  if (dst.kind === "reg") {
    const rd = reader(dst);
    const wr = regWriter(dst);
    return (c) => {
      const k = fixed >= 0 ? fixed : c.r[RCX] & 31;
      wr(c, k === 0 ? rd(c) : shift(c, kind, rd(c), k, n));
    };
  }
  const ea = dst.ea;
  const rdw = n === 8 ? rdw8 : n === 16 ? rdw16 : rdw32;
  const wrm = n === 8 ? wr8 : n === 16 ? wr16 : wr32;
  return (c) => {
    const k = fixed >= 0 ? fixed : c.r[RCX] & 31;
    if (k === 0) return;
    const lo = ea(c);
    const hi = c.ahi;
    wrm(c, lo, hi, shift(c, kind, rdw(c, lo, hi), k, n));
  };
}

/** SHLD/SHRD dst, src, count: shift dst, filling from src. */
function translateDoubleShift(d: Insn, left: boolean): OpFn {
  const [dst, src, cnt] = d.ops;
  if ((dst.kind !== "reg" && dst.kind !== "mem") || src.kind !== "reg") throw new UnsupportedForm();
  const n = dst.size * 8;
  if (n === 8) throw new UnsupportedForm();
  const cmask = n === 64 ? 63 : 31;
  const fixed = cnt.kind === "imm" ? cnt.lo & cmask : -1;
  const s = src.slot;
  const ea = dst.kind === "mem" ? dst.ea : null;
  const dslot = dst.kind === "reg" ? dst.slot : -1;
  const size = dst.size;
  return (c) => {
    const k = fixed >= 0 ? fixed : c.r[RCX] & cmask;
    const r = c.r;
    if (k === 0) {
      if (dslot >= 0 && size === 4) r[dslot + 1] = 0;
      return;
    }
    let lo = 0;
    let hi = 0;
    let al: number;
    let ah = 0;
    if (ea !== null) {
      lo = ea(c);
      hi = c.ahi;
      al = size === 8 ? rdw64(c, lo, hi) : size === 4 ? rdw32(c, lo, hi) : rdw16(c, lo, hi);
      ah = c.mhi;
    } else {
      al = r[dslot];
      ah = r[dslot + 1];
    }
    // Work on a 128-bit string: dst:src (SHLD) or src:dst (SHRD), as four words.
    let rl: number;
    let rh = 0;
    let cf: number;
    let msbBefore: number;
    if (size === 8) {
      const w = left ? [r[s], r[s + 1], al, ah] : [al, ah, r[s], r[s + 1]];
      // Little-endian words w[0] (lowest) … w[3].
      msbBefore = ah >>> 31;
      const shifted = left ? shl128(w, k) : shr128(w, k);
      if (left) {
        rl = shifted[2];
        rh = shifted[3];
        cf = bitOf128(w, 128 - k);
      } else {
        rl = shifted[0];
        rh = shifted[1];
        cf = bitOf128(w, k - 1);
      }
    } else {
      const mask = n === 32 ? -1 : 0xffff;
      const a = al & mask;
      const b = r[s] & mask;
      msbBefore = (a >>> (n - 1)) & 1;
      if (k > n) {
        // Undefined for 16-bit counts above 16: keep the value, like a count of 0.
        return;
      }
      if (left) {
        rl = n === 32 ? ((a << k) | (k === 32 ? 0 : b >>> (32 - k))) | 0 : ((a << k) | (b >>> (16 - k))) & 0xffff;
        cf = (a >>> (n - k)) & 1;
      } else {
        rl = n === 32 ? ((a >>> k) | (b << (32 - k))) | 0 : ((a >>> k) | (b << (16 - k))) & 0xffff;
        cf = (a >>> (k - 1)) & 1;
      }
    }
    const msbAfter = size === 8 ? rh >>> 31 : (rl >>> (n - 1)) & 1;
    const z = size === 8 ? szp64(rl, rh) : n === 32 ? szp32(rl) : szp16(rl);
    setFlags(c, ARITH, cf | z | ((msbAfter ^ msbBefore) << 11));
    if (ea !== null) {
      if (size === 8) wr64(c, lo, hi, rl, rh);
      else if (size === 4) wr32(c, lo, hi, rl);
      else wr16(c, lo, hi, rl);
    } else if (size === 8) {
      r[dslot] = rl;
      r[dslot + 1] = rh;
    } else if (size === 4) {
      r[dslot] = rl;
      r[dslot + 1] = 0;
    } else {
      r[dslot] = (r[dslot] & ~0xffff) | rl;
    }
  };
}

function bitOf128(w: number[], i: number): number {
  return (w[i >> 5] >>> (i & 31)) & 1;
}

function shl128(w: number[], k: number): number[] {
  const out = [0, 0, 0, 0];
  for (let i = 0; i < 128; i++) {
    const src = i - k;
    if (src >= 0 && bitOf128(w, src)) out[i >> 5] |= 1 << (i & 31);
  }
  return out;
}

function shr128(w: number[], k: number): number[] {
  const out = [0, 0, 0, 0];
  for (let i = 0; i < 128; i++) {
    const src = i + k;
    if (src < 128 && bitOf128(w, src)) out[i >> 5] |= 1 << (i & 31);
  }
  return out;
}

export const shiftRotateTranslators: [Mnemonic, Translator][] = [
  [Mnemonic.Shl, (d) => translateShift(d, SHL)],
  [Mnemonic.Sal, (d) => translateShift(d, SHL)],
  [Mnemonic.Shr, (d) => translateShift(d, SHR)],
  [Mnemonic.Sar, (d) => translateShift(d, SAR)],
  [Mnemonic.Rol, (d) => translateShift(d, ROL)],
  [Mnemonic.Ror, (d) => translateShift(d, ROR)],
  [Mnemonic.Rcl, (d) => translateShift(d, RCL)],
  [Mnemonic.Rcr, (d) => translateShift(d, RCR)],
  [Mnemonic.Shld, (d) => translateDoubleShift(d, true)],
  [Mnemonic.Shrd, (d) => translateDoubleShift(d, false)],
];
