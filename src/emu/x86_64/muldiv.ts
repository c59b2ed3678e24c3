// MUL IMUL DIV IDIV, with 64×64→128 multiply and 128/64 divide on 32-bit words (no bigint).
//
// CF = OF report a product that does not fit its low half. SF, ZF and PF follow the low half of
// the result and AF is cleared (all four are architecturally undefined after a multiply).
// Division leaves the flags unchanged (undefined) and raises #DE on a zero divisor or a
// quotient that does not fit.

import { Mnemonic } from "iced-x86";
import * as arithModule from "./arith.js";
import type { Cpu, OpFn } from "./cpu.js";
import * as faultModule from "./fault.js";
import * as flagsModule from "./flags.js";
import * as insnModule from "./insn.js";
import type { Insn, Translator } from "./insn.js";
import * as operandsModule from "./operands.js";
import * as vpLayoutModule from "./vp-layout.js";

// Imported bindings as module constants: under tsx (esbuild) every use of an import is a getter call.
const { setArith, szp16, szp32, szp64, szp8 } = arithModule;
const { VEC_DE, fault } = faultModule;
const { CF, OF } = flagsModule;
const { UnsupportedForm } = insnModule;
const { reader, reader64, regWriter, signExtend } = operandsModule;
const { GP } = vpLayoutModule;

const RAX = GP;
const RDX = GP + 4;

// ------------------------------------------------------------------ word arithmetic

/** Result words of the last mul64 / mulU32 (little-endian). */
const prod = new Int32Array(4);
const limbs = new Float64Array(8);

/** Unsigned 32×32 → 64: low word in prod[0], high in prod[1]. */
function mulU32(a: number, b: number): void {
  const al = a & 0xffff;
  const ah = a >>> 16;
  const bl = b & 0xffff;
  const bh = b >>> 16;
  const ll = al * bl;
  const mid = al * bh + ah * bl + (ll >>> 16);
  prod[0] = ((mid & 0xffff) << 16) | (ll & 0xffff);
  prod[1] = (ah * bh + Math.floor(mid / 65536)) | 0;
}

/** Signed 32×32 → 64. */
function mulS32(a: number, b: number): void {
  mulU32(a, b);
  prod[1] = (prod[1] - (a < 0 ? b : 0) - (b < 0 ? a : 0)) | 0;
}

/** Unsigned 64×64 → 128 into prod[0..3]. */
function mulU64(alo: number, ahi: number, blo: number, bhi: number): void {
  const a0 = alo & 0xffff, a1 = alo >>> 16, a2 = ahi & 0xffff, a3 = ahi >>> 16;
  const b0 = blo & 0xffff, b1 = blo >>> 16, b2 = bhi & 0xffff, b3 = bhi >>> 16;
  const p = limbs;
  p[0] = a0 * b0;
  p[1] = a0 * b1 + a1 * b0;
  p[2] = a0 * b2 + a1 * b1 + a2 * b0;
  p[3] = a0 * b3 + a1 * b2 + a2 * b1 + a3 * b0;
  p[4] = a1 * b3 + a2 * b2 + a3 * b1;
  p[5] = a2 * b3 + a3 * b2;
  p[6] = a3 * b3;
  p[7] = 0;
  let carry = 0;
  for (let k = 0; k < 8; k++) {
    const v = p[k] + carry;
    const low = v % 65536;
    carry = (v - low) / 65536;
    p[k] = low;
  }
  prod[0] = p[0] | (p[1] << 16);
  prod[1] = p[2] | (p[3] << 16);
  prod[2] = p[4] | (p[5] << 16);
  prod[3] = p[6] | (p[7] << 16);
}

/** Signed 64×64 → 128. */
function mulS64(alo: number, ahi: number, blo: number, bhi: number): void {
  mulU64(alo, ahi, blo, bhi);
  // high -= (a < 0 ? b : 0) + (b < 0 ? a : 0), modulo 2^64
  if (ahi < 0) sub64Into(blo, bhi);
  if (bhi < 0) sub64Into(alo, ahi);
}

function sub64Into(lo: number, hi: number): void {
  const dl = (prod[2] >>> 0) - (lo >>> 0);
  prod[2] = dl | 0;
  prod[3] = (prod[3] - hi - (dl < 0 ? 1 : 0)) | 0;
}

/** Quotient and remainder words of the last divide. */
const quot = new Int32Array(2);
const rem = new Int32Array(2);

/**
 * Unsigned (n3:n2:n1:n0) / (d1:d0) where n3:n2 < d1:d0 (so the quotient fits 64 bits).
 * Restoring division one bit at a time; a double fast path covers values below 2^53.
 */
function divU128(n3: number, n2: number, n1: number, n0: number, d1: number, d0: number): void {
  const dn = (d1 >>> 0) * 4294967296 + (d0 >>> 0);
  if (n3 === 0 && n2 === 0 && (n1 >>> 0) < 0x200000 && (d1 >>> 0) < 0x200000) {
    const nn = (n1 >>> 0) * 4294967296 + (n0 >>> 0);
    const q = Math.floor(nn / dn);
    const rr = nn - q * dn;
    quot[0] = q % 4294967296;
    quot[1] = Math.floor(q / 4294967296);
    rem[0] = rr % 4294967296;
    rem[1] = Math.floor(rr / 4294967296);
    return;
  }
  let rh = n3 >>> 0;
  let rl = n2 >>> 0;
  let qh = 0;
  let ql = 0;
  const dh = d1 >>> 0;
  const dl = d0 >>> 0;
  for (let i = 63; i >= 0; i--) {
    const bit = i >= 32 ? (n1 >>> (i - 32)) & 1 : (n0 >>> i) & 1;
    const top = rh >>> 31;
    rh = ((rh << 1) | (rl >>> 31)) >>> 0;
    rl = ((rl << 1) | bit) >>> 0;
    if (top !== 0 || rh > dh || (rh === dh && rl >= dl)) {
      const l = rl - dl;
      rl = l >>> 0;
      rh = (rh - dh - (l < 0 ? 1 : 0)) >>> 0;
      if (i >= 32) qh |= 1 << (i - 32);
      else ql |= 1 << i;
    }
  }
  quot[0] = ql;
  quot[1] = qh;
  rem[0] = rl | 0;
  rem[1] = rh | 0;
}

function neg64(lo: number, hi: number): [number, number] {
  const l = (-lo) | 0;
  return [l, (~hi + (l === 0 ? 1 : 0)) | 0];
}

// ------------------------------------------------------------------ MUL / IMUL

function mulFlags(c: Cpu, overflow: boolean, szp: number): void {
  setArith(c, (overflow ? CF | OF : 0) | szp);
}

/** One-operand MUL/IMUL: rDX:rAX = rAX × src. */
function mulAcc(src: Operand1, signed: boolean): OpFn {
  const n = src.size;
  if (n === 8) {
    const rd = reader64(src);
    return (c) => {
      const bl = rd(c);
      const bh = c.mhi;
      const r = c.r;
      if (signed) mulS64(r[RAX], r[RAX + 1], bl, bh);
      else mulU64(r[RAX], r[RAX + 1], bl, bh);
      r[RAX] = prod[0];
      r[RAX + 1] = prod[1];
      r[RDX] = prod[2];
      r[RDX + 1] = prod[3];
      const ext = signed ? prod[1] >> 31 : 0;
      mulFlags(c, prod[2] !== ext || prod[3] !== ext, szp64(prod[0], prod[1]));
    };
  }
  const rd = reader(src);
  if (n === 4) {
    return (c) => {
      const b = rd(c);
      const r = c.r;
      if (signed) mulS32(r[RAX], b);
      else mulU32(r[RAX], b);
      r[RAX] = prod[0];
      r[RAX + 1] = 0;
      r[RDX] = prod[1];
      r[RDX + 1] = 0;
      mulFlags(c, prod[1] !== (signed ? prod[0] >> 31 : 0), szp32(prod[0]));
    };
  }
  if (n === 2) {
    return (c) => {
      const r = c.r;
      const a = r[RAX] & 0xffff;
      const b = rd(c);
      const p = signed ? Math.imul((a << 16) >> 16, (b << 16) >> 16) : a * b;
      const lo = p & 0xffff;
      const hi = (p >>> 16) & 0xffff;
      r[RAX] = (r[RAX] & ~0xffff) | lo;
      r[RDX] = (r[RDX] & ~0xffff) | hi;
      mulFlags(c, signed ? p !== ((p << 16) >> 16) : hi !== 0, szp16(lo));
    };
  }
  return (c) => {
    const r = c.r;
    const a = r[RAX] & 0xff;
    const b = rd(c);
    const p = signed ? ((a << 24) >> 24) * ((b << 24) >> 24) : a * b;
    r[RAX] = (r[RAX] & ~0xffff) | (p & 0xffff);
    mulFlags(c, signed ? p !== ((p << 24) >> 24) : p > 0xff, szp8(p & 0xff));
  };
}

type Operand1 = Extract<import("./operands.js").Operand, { kind: "reg" | "mem" }>;

/** Two- and three-operand IMUL: dst = a × b truncated. */
function imulTrunc(dst: Operand1, a: import("./operands.js").Operand, b: import("./operands.js").Operand): OpFn {
  const n = dst.size;
  if (dst.kind !== "reg") throw new UnsupportedForm();
  const s = dst.slot;
  if (n === 8) {
    const ra = reader64(a);
    const rb = reader64(b);
    return (c) => {
      const al = ra(c);
      const ah = c.mhi;
      const bl = rb(c);
      const bh = c.mhi;
      mulS64(al, ah, bl, bh);
      const r = c.r;
      r[s] = prod[0];
      r[s + 1] = prod[1];
      const ext = prod[1] >> 31;
      mulFlags(c, prod[2] !== ext || prod[3] !== ext, szp64(prod[0], prod[1]));
    };
  }
  const ra = reader(a);
  const rb = reader(b);
  if (n === 4) {
    return (c) => {
      const x = ra(c);
      const y = rb(c);
      mulS32(x, y);
      const r = c.r;
      r[s] = prod[0];
      r[s + 1] = 0;
      mulFlags(c, prod[1] !== prod[0] >> 31, szp32(prod[0]));
    };
  }
  const wr = regWriter(dst);
  return (c) => {
    const x = signExtend(ra(c), 2);
    const y = signExtend(rb(c), 2);
    const p = Math.imul(x, y);
    wr(c, p & 0xffff);
    mulFlags(c, p !== ((p << 16) >> 16), szp16(p & 0xffff));
  };
}

function translateMul(d: Insn, signed: boolean): OpFn {
  const ops = d.ops;
  if (ops.length === 1) {
    const src = ops[0];
    if (src.kind !== "reg" && src.kind !== "mem") throw new UnsupportedForm();
    return mulAcc(src, signed);
  }
  const dst = ops[0];
  if (dst.kind !== "reg") throw new UnsupportedForm();
  if (ops.length === 2) return imulTrunc(dst, dst, ops[1]);
  return imulTrunc(dst, ops[1], ops[2]);
}

// ------------------------------------------------------------------ DIV / IDIV

function divide(d: Insn, signed: boolean): OpFn {
  const src = d.ops[0];
  if (src.kind !== "reg" && src.kind !== "mem") throw new UnsupportedForm();
  const n = src.size;
  if (n === 8) {
    const rd = reader64(src);
    return (c) => {
      const dl = rd(c);
      const dh = c.mhi;
      const r = c.r;
      if ((dl | dh) === 0) fault(c, VEC_DE);
      let n0 = r[RAX], n1 = r[RAX + 1], n2 = r[RDX], n3 = r[RDX + 1];
      if (!signed) {
        if ((n3 >>> 0) > (dh >>> 0) || (n3 === dh && (n2 >>> 0) >= (dl >>> 0))) fault(c, VEC_DE);
        divU128(n3, n2, n1, n0, dh, dl);
      } else {
        const nNeg = n3 < 0;
        if (nNeg) {
          // Negate the 128-bit dividend.
          n0 = ~n0; n1 = ~n1; n2 = ~n2; n3 = ~n3;
          const s0 = (n0 >>> 0) + 1; n0 = s0 | 0;
          const s1 = (n1 >>> 0) + (s0 > 0xffffffff ? 1 : 0); n1 = s1 | 0;
          const s2 = (n2 >>> 0) + (s1 > 0xffffffff ? 1 : 0); n2 = s2 | 0;
          n3 = (n3 + (s2 > 0xffffffff ? 1 : 0)) | 0;
        }
        const dNeg = dh < 0;
        const [ml, mh] = dNeg ? neg64(dl, dh) : [dl, dh];
        // |quotient| must fit in 63 bits (64 with the value -2^63 when the signs differ).
        if ((n3 >>> 0) > (mh >>> 0) || (n3 === mh && (n2 >>> 0) >= (ml >>> 0))) fault(c, VEC_DE);
        divU128(n3, n2, n1, n0, mh, ml);
        const qNeg = nNeg !== dNeg;
        if (quot[1] < 0 && !(qNeg && quot[1] === -0x80000000 && quot[0] === 0)) fault(c, VEC_DE);
        if (qNeg) {
          const [a, b] = neg64(quot[0], quot[1]);
          quot[0] = a;
          quot[1] = b;
        }
        if (nNeg) {
          const [a, b] = neg64(rem[0], rem[1]);
          rem[0] = a;
          rem[1] = b;
        }
      }
      r[RAX] = quot[0];
      r[RAX + 1] = quot[1];
      r[RDX] = rem[0];
      r[RDX + 1] = rem[1];
    };
  }
  const rd = reader(src);
  if (n === 4) {
    return (c) => {
      const dv = rd(c);
      if (dv === 0) fault(c, VEC_DE);
      const r = c.r;
      let q: number;
      let m: number;
      if (!signed) {
        const hi = r[RDX] >>> 0;
        const dd = dv >>> 0;
        if (hi >= dd) fault(c, VEC_DE);
        const lo = r[RAX] >>> 0;
        let t = hi * 65536 + (lo >>> 16);
        const q1 = Math.floor(t / dd);
        t = (t - q1 * dd) * 65536 + (lo & 0xffff);
        const q0 = Math.floor(t / dd);
        q = (q1 * 65536 + q0) | 0;
        m = (t - q0 * dd) | 0;
      } else {
        // Signed 64/32 on magnitudes through the 128-bit routine.
        let n0 = r[RAX], n1 = r[RDX];
        const nNeg = n1 < 0;
        if (nNeg) [n0, n1] = neg64(n0, n1);
        const dNeg = dv < 0;
        const dm = dNeg ? -dv >>> 0 : dv >>> 0;
        divU128(0, 0, n1, n0, 0, dm | 0);
        if (quot[1] !== 0) fault(c, VEC_DE);
        const qa = quot[0] >>> 0;
        const qNeg = nNeg !== dNeg;
        if (qa > (qNeg ? 0x80000000 : 0x7fffffff)) fault(c, VEC_DE);
        q = qNeg ? -qa | 0 : qa | 0;
        m = nNeg ? -(rem[0] >>> 0) | 0 : rem[0];
      }
      r[RAX] = q;
      r[RAX + 1] = 0;
      r[RDX] = m;
      r[RDX + 1] = 0;
    };
  }
  if (n === 2) {
    return (c) => {
      const dv = rd(c);
      if (dv === 0) fault(c, VEC_DE);
      const r = c.r;
      const num = ((r[RDX] & 0xffff) << 16) | (r[RAX] & 0xffff);
      let q: number;
      let m: number;
      if (!signed) {
        q = Math.floor((num >>> 0) / dv);
        m = (num >>> 0) - q * dv;
        if (q > 0xffff) fault(c, VEC_DE);
      } else {
        const sd = (dv << 16) >> 16;
        q = Math.trunc(num / sd);
        m = num - q * sd;
        if (q > 0x7fff || q < -0x8000) fault(c, VEC_DE);
      }
      r[RAX] = (r[RAX] & ~0xffff) | (q & 0xffff);
      r[RDX] = (r[RDX] & ~0xffff) | (m & 0xffff);
    };
  }
  return (c) => {
    const dv = rd(c);
    if (dv === 0) fault(c, VEC_DE);
    const r = c.r;
    const num = r[RAX] & 0xffff;
    let q: number;
    let m: number;
    if (!signed) {
      q = Math.floor(num / dv);
      m = num - q * dv;
      if (q > 0xff) fault(c, VEC_DE);
    } else {
      const sn = (num << 16) >> 16;
      const sd = (dv << 24) >> 24;
      q = Math.trunc(sn / sd);
      m = sn - q * sd;
      if (q > 0x7f || q < -0x80) fault(c, VEC_DE);
    }
    r[RAX] = (r[RAX] & ~0xffff) | ((m & 0xff) << 8) | (q & 0xff);
  };
}

export const muldivTranslators: [Mnemonic, Translator][] = [
  [Mnemonic.Mul, (d) => translateMul(d, false)],
  [Mnemonic.Imul, (d) => translateMul(d, true)],
  [Mnemonic.Div, (d) => divide(d, false)],
  [Mnemonic.Idiv, (d) => divide(d, true)],
];

/** Exposed for unit tests of the word arithmetic. */
export const internal = { mulU64, mulS64, divU128, prod, quot, rem };
