// SSE, SSE2, SSE3, SSSE3, SSE4.1 and SSE4.2 (PCMPGTQ, PCMPxSTRx, CRC32): the XMM registers, MXCSR
// and the instructions gcc and libgcc emit. Floating point is in sse-fp.ts.
//
// Every op works on a module scratch buffer: A (bytes 0–15, the destination's old value),
// B (16–31, the source), R (32–47, the result), then writes R back. Ops are synchronous, so one
// scratch serves every Cpu. Typed-array views assume a little-endian host (x86, arm64).
//
// Operand checks: CR0.EM / CR4.OSFXSR (#UD) and CR0.TS (#NM) first (sseGate), then #GP(0) on a
// 16-byte memory operand that is not 16-byte aligned (all but MOVUPS/MOVUPD/MOVDQU/LDDQU), then
// the access. An unmasked SIMD FP exception sets its MXCSR flag, leaves the destination as it
// was and raises #XM when CR4.OSXMMEXCPT is set, else #UD.
//
// iced-x86 names the string instructions MOVSD/CMPSD and the SSE2 scalar ones alike; rep.ts
// owns those mnemonics, so this module wraps rep.ts's two entries with a dispatcher that sends
// forms with an XMM operand here.

import { Mnemonic } from "iced-x86";
import type { Cpu, OpFn } from "./cpu.js";
import * as faultModule from "./fault.js";
import * as flagsModule from "./flags.js";
import * as fpGateModule from "./fp-gate.js";
import * as insnModule from "./insn.js";
import type { Insn, Translator } from "./insn.js";
import * as mmuModule from "./mmu.js";
import type { Operand } from "./operands.js";
import * as fp from "./sse-fp.js";
import * as vpLayoutModule from "./vp-layout.js";

// Imported bindings as module constants: under tsx (esbuild) every use of an import is a getter call.
const { fault, gp } = faultModule;
const { ARITH, CF, OF, PF, SF, ZF } = flagsModule;
const { sseGate, VEC_XM, CR4_OSXMMEXCPT } = fpGateModule;
const { UnsupportedForm } = insnModule;
const { rd16, rd32, rd64, rd8, wr16, wr32, wr64, wr8, probeWrite } = mmuModule;
const { CR4, MXCSR, RFLAGS, XMM } = vpLayoutModule;
const {
  bin32, bin64, cmp32, cmp64, cmpPredicate, predSignals, cvt32to64, cvt64to32, cvtInt, num32, num64, roundIntegral32,
  roundIntegral64, setMx, toInt, PRE, RES, DEF_NAN32,
} = fp;

/** CPUID bits this family implements (OR-ed into leaf 1 by cpuidLeaf). */
export const SSE_CPUID = {
  leaf1Ecx: (1 << 0) | (1 << 9) | (1 << 19) | (1 << 20), // SSE3, SSSE3, SSE4.1, SSE4.2
  leaf1Edx: (1 << 23) | (1 << 25) | (1 << 26), // MMX (mmx.ts), SSE, SSE2
};

// ------------------------------------------------------------------ scratch

const SB = new ArrayBuffer(64);
const U8 = new Uint8Array(SB);
const I8 = new Int8Array(SB);
const U16 = new Uint16Array(SB);
const I16 = new Int16Array(SB);
const U32 = new Uint32Array(SB);
const I32 = new Int32Array(SB);
const F32 = new Float32Array(SB);
// Word offsets of A, B, R.
const A = 0;
const B = 4;
const R = 8;

/** A computation on the scratch (A, B → R); FP kernels return MXCSR flags, others 0. */
export type Kernel = () => number;

/** The scratch for mmx.ts, whose MMX forms run this module's kernels on the low 8 bytes of A, B and R. */
export const simdScratch = { U8, I8, U16, I16, I32, A, B, R };

/** Kernels of `op xmm, xmm/m128` translators, by translator (see laneKernel). */
const KERNELS = new Map<Translator, Kernel>();
function kernelT(k: Kernel, t: Translator): Translator {
  KERNELS.set(t, k);
  return t;
}

function hi8(lo: number, hi: number): number {
  return (lo >>> 0) + 8 > 0xffffffff ? (hi + 1) | 0 : hi;
}

/** Load `size` bytes at (lo, hi) into scratch words at `at` (zero-filled to 16 bytes). */
function loadMem(c: Cpu, lo: number, hi: number, size: number, at: number): void {
  if (size === 16) {
    I32[at] = rd64(c, lo, hi);
    I32[at + 1] = c.mhi;
    I32[at + 2] = rd64(c, (lo + 8) | 0, hi8(lo, hi));
    I32[at + 3] = c.mhi;
    return;
  }
  I32[at + 1] = 0;
  I32[at + 2] = 0;
  I32[at + 3] = 0;
  if (size === 8) {
    I32[at] = rd64(c, lo, hi);
    I32[at + 1] = c.mhi;
  } else if (size === 4) I32[at] = rd32(c, lo, hi);
  else if (size === 2) I32[at] = rd16(c, lo, hi);
  else I32[at] = rd8(c, lo, hi);
}

function storeMem16(c: Cpu, lo: number, hi: number, at: number): void {
  probeWrite(c, lo, hi, 16);
  wr64(c, lo, hi, I32[at], I32[at + 1]);
  wr64(c, (lo + 8) | 0, hi8(lo, hi), I32[at + 2], I32[at + 3]);
}

type Load = (c: Cpu) => void;

/** Loads an xmm or memory operand into scratch words at `at`. `align`: #GP(0) unless 16-byte aligned (m128 only). */
function loader(op: Operand, at: number, align: boolean, size = -1): Load {
  if (op.kind === "xmm") {
    const x = XMM + 4 * op.n;
    return (c) => {
      const r = c.r;
      I32[at] = r[x];
      I32[at + 1] = r[x + 1];
      I32[at + 2] = r[x + 2];
      I32[at + 3] = r[x + 3];
    };
  }
  if (op.kind === "mem") {
    const ea = op.ea;
    const n = size > 0 ? size : op.size;
    if (n !== 1 && n !== 2 && n !== 4 && n !== 8 && n !== 16) throw new UnsupportedForm();
    if (n === 16 && align) {
      return (c) => {
        const lo = ea(c);
        if ((lo & 15) !== 0) gp(c, 0);
        loadMem(c, lo, c.ahi, 16, at);
      };
    }
    return (c) => loadMem(c, ea(c), c.ahi, n, at);
  }
  throw new UnsupportedForm();
}

function xmmSlot(op: Operand): number {
  if (op.kind !== "xmm") throw new UnsupportedForm();
  return XMM + 4 * op.n;
}

/** Add MXCSR flags; an unmasked exception faults (#XM, or #UD without CR4.OSXMMEXCPT). */
export function raise(c: Cpu, fl: number): void {
  const r = c.r;
  const mx = r[MXCSR];
  const unmasked = fl & ~(mx >>> 7) & 0x3f;
  if (unmasked === 0) {
    r[MXCSR] = mx | fl;
    return;
  }
  const pre = fl & PRE;
  r[MXCSR] = mx | ((pre & unmasked) !== 0 ? pre : fl);
  fault(c, (r[CR4] & CR4_OSXMMEXCPT) !== 0 ? VEC_XM : 6);
}

const ALIGN = 1;
/** The kernel does not read A (the destination's old value). */
const NO_A = 2;
const FP = 4;

/** xmm dst ← kernel(dst, src) for `op xmm, xmm/mN [, imm]`. */
function xop(d: Insn, k: Kernel, opts = ALIGN, srcSize = -1): OpFn {
  const D = xmmSlot(d.ops[0]);
  const ld = loader(d.ops[1], B, (opts & ALIGN) !== 0, srcSize);
  const readA = (opts & NO_A) === 0;
  if ((opts & FP) !== 0) {
    return (c) => {
      sseGate(c);
      ld(c);
      const r = c.r;
      I32[A] = r[D];
      I32[A + 1] = r[D + 1];
      I32[A + 2] = r[D + 2];
      I32[A + 3] = r[D + 3];
      setMx(r[MXCSR]);
      const fl = k();
      if (fl !== 0) raise(c, fl);
      r[D] = I32[R];
      r[D + 1] = I32[R + 1];
      r[D + 2] = I32[R + 2];
      r[D + 3] = I32[R + 3];
    };
  }
  return (c) => {
    sseGate(c);
    ld(c);
    const r = c.r;
    if (readA) {
      I32[A] = r[D];
      I32[A + 1] = r[D + 1];
      I32[A + 2] = r[D + 2];
      I32[A + 3] = r[D + 3];
    }
    k();
    r[D] = I32[R];
    r[D + 1] = I32[R + 1];
    r[D + 2] = I32[R + 2];
    r[D + 3] = I32[R + 3];
  };
}

function imm8(d: Insn, i: number): number {
  const o = d.ops[i];
  if (o === undefined || o.kind !== "imm") throw new UnsupportedForm();
  return o.lo & 0xff;
}

const simple = (k: Kernel, opts = ALIGN): Translator => kernelT(k, (d) => xop(d, k, opts));
const withImm = (mk: (imm: number) => Kernel, opts = ALIGN): Translator => (d) => xop(d, mk(imm8(d, 2)), opts);

// ------------------------------------------------------------------ lane helpers

function lanes8(f: (a: number, b: number) => number): Kernel {
  return () => {
    for (let i = 0; i < 16; i++) U8[32 + i] = f(U8[i], U8[16 + i]);
    return 0;
  };
}
function lanes8s(f: (a: number, b: number) => number): Kernel {
  return () => {
    for (let i = 0; i < 16; i++) I8[32 + i] = f(I8[i], I8[16 + i]);
    return 0;
  };
}
function lanes16(f: (a: number, b: number) => number): Kernel {
  return () => {
    for (let i = 0; i < 8; i++) U16[16 + i] = f(U16[i], U16[8 + i]);
    return 0;
  };
}
function lanes16s(f: (a: number, b: number) => number): Kernel {
  return () => {
    for (let i = 0; i < 8; i++) I16[16 + i] = f(I16[i], I16[8 + i]);
    return 0;
  };
}
function lanes32(f: (a: number, b: number) => number): Kernel {
  return () => {
    for (let i = 0; i < 4; i++) I32[8 + i] = f(I32[i], I32[4 + i]);
    return 0;
  };
}
function lanes32u(f: (a: number, b: number) => number): Kernel {
  return () => {
    for (let i = 0; i < 4; i++) U32[8 + i] = f(U32[i], U32[4 + i]);
    return 0;
  };
}
/** 64-bit lanes as (alo, ahi, blo, bhi) → low word, high word in HI. */
let HI = 0;
function lanes64(f: (al: number, ah: number, bl: number, bh: number) => number): Kernel {
  return () => {
    for (let i = 0; i < 4; i += 2) {
      I32[8 + i] = f(I32[i], I32[i + 1], I32[4 + i], I32[5 + i]);
      I32[9 + i] = HI;
    }
    return 0;
  };
}

const sat8s = (v: number) => (v > 127 ? 127 : v < -128 ? -128 : v);
const sat8u = (v: number) => (v > 255 ? 255 : v < 0 ? 0 : v);
const sat16s = (v: number) => (v > 32767 ? 32767 : v < -32768 ? -32768 : v);
const sat16u = (v: number) => (v > 65535 ? 65535 : v < 0 ? 0 : v);

const AND = 0;
const ANDN = 1;
const OR = 2;
const XOR = 3;

/** Word-wise ops (logic, PADDD, PSUBD): straight on the register words, without the scratch copy of A. */
function wordT(kind: number): Translator {
  return (d) => {
    const D = xmmSlot(d.ops[0]);
    const src = d.ops[1];
    const S = src.kind === "xmm" ? XMM + 4 * src.n : -1;
    const ld = S < 0 ? loader(src, B, true) : null;
    return (c) => {
      sseGate(c);
      const r = c.r;
      let b0: number, b1: number, b2: number, b3: number;
      if (ld === null) {
        b0 = r[S];
        b1 = r[S + 1];
        b2 = r[S + 2];
        b3 = r[S + 3];
      } else {
        ld(c);
        b0 = I32[B];
        b1 = I32[B + 1];
        b2 = I32[B + 2];
        b3 = I32[B + 3];
      }
      switch (kind) {
        case 0:
          r[D] &= b0;
          r[D + 1] &= b1;
          r[D + 2] &= b2;
          r[D + 3] &= b3;
          break;
        case 1:
          r[D] = ~r[D] & b0;
          r[D + 1] = ~r[D + 1] & b1;
          r[D + 2] = ~r[D + 2] & b2;
          r[D + 3] = ~r[D + 3] & b3;
          break;
        case 2:
          r[D] |= b0;
          r[D + 1] |= b1;
          r[D + 2] |= b2;
          r[D + 3] |= b3;
          break;
        case 3:
          r[D] ^= b0;
          r[D + 1] ^= b1;
          r[D + 2] ^= b2;
          r[D + 3] ^= b3;
          break;
        case 4:
          r[D] += b0;
          r[D + 1] += b1;
          r[D + 2] += b2;
          r[D + 3] += b3;
          break;
        default:
          r[D] -= b0;
          r[D + 1] -= b1;
          r[D + 2] -= b2;
          r[D + 3] -= b3;
      }
    };
  };
}
const logicT = (k: number): Translator => wordT(k);

const add64 = (al: number, ah: number, bl: number, bh: number): number => {
  const s = (al >>> 0) + (bl >>> 0);
  HI = (ah + bh + (s > 0xffffffff ? 1 : 0)) | 0;
  return s | 0;
};
const sub64 = (al: number, ah: number, bl: number, bh: number): number => {
  const s = (al >>> 0) - (bl >>> 0);
  HI = (ah - bh - (s < 0 ? 1 : 0)) | 0;
  return s | 0;
};

// ------------------------------------------------------------------ shifts

/** Shift count from the source's low 64 bits (B), saturated to 255. */
export function countB(): number {
  return I32[B + 1] !== 0 || I32[B] >>> 0 > 255 ? 255 : I32[B];
}

export function shiftKernel(width: number, kind: number, countOf: () => number): Kernel {
  // kind: 0 left logical, 1 right logical, 2 right arithmetic
  return () => {
    const n = countOf();
    if (width === 16) {
      for (let i = 0; i < 8; i++) {
        const v = kind === 2 ? I16[i] : U16[i];
        U16[16 + i] = n >= 16 ? (kind === 2 ? v >> 15 : 0) : kind === 0 ? v << n : kind === 1 ? v >>> n : v >> n;
      }
    } else if (width === 32) {
      for (let i = 0; i < 4; i++) {
        const v = I32[i];
        I32[8 + i] = n >= 32 ? (kind === 2 ? v >> 31 : 0) : kind === 0 ? v << n : kind === 1 ? v >>> n : v >> n;
      }
    } else {
      for (let i = 0; i < 4; i += 2) {
        const lo = I32[i], hi = I32[i + 1];
        let rl = 0, rh = 0;
        if (n === 0) {
          rl = lo;
          rh = hi;
        } else if (n < 32) {
          if (kind === 0) {
            rh = (hi << n) | (lo >>> (32 - n));
            rl = lo << n;
          } else {
            rl = (lo >>> n) | (hi << (32 - n));
            rh = hi >>> n;
          }
        } else if (n < 64) {
          if (kind === 0) rh = lo << (n - 32);
          else rl = hi >>> (n - 32);
        }
        I32[8 + i] = rl;
        I32[9 + i] = rh;
      }
    }
    return 0;
  };
}

function shiftT(width: number, kind: number): Translator {
  return (d) => {
    const src = d.ops[1];
    if (src.kind === "imm") {
      const n = src.lo & 0xff;
      // Shift the destination in place: A is the source.
      const D = xmmSlot(d.ops[0]);
      const k = shiftKernel(width, kind, () => n);
      return (c) => {
        sseGate(c);
        const r = c.r;
        I32[A] = r[D];
        I32[A + 1] = r[D + 1];
        I32[A + 2] = r[D + 2];
        I32[A + 3] = r[D + 3];
        k();
        r[D] = I32[R];
        r[D + 1] = I32[R + 1];
        r[D + 2] = I32[R + 2];
        r[D + 3] = I32[R + 3];
      };
    }
    return xop(d, shiftKernel(width, kind, countB));
  };
}

/** PSLLDQ / PSRLDQ xmm, imm8 (bytes). */
function byteShiftT(left: boolean): Translator {
  return (d) => {
    const n = imm8(d, 1);
    const D = xmmSlot(d.ops[0]);
    return (c) => {
      sseGate(c);
      const r = c.r;
      for (let k = 0; k < 4; k++) I32[A + k] = r[D + k];
      for (let i = 0; i < 16; i++) {
        const j = left ? i - n : i + n;
        U8[32 + i] = j >= 0 && j < 16 ? U8[j] : 0;
      }
      for (let k = 0; k < 4; k++) r[D + k] = I32[R + k];
    };
  };
}

// ------------------------------------------------------------------ shuffles and unpacks

function unpack(width: number, high: boolean): Kernel {
  const bytes = width / 8;
  const n = 16 / bytes / 2;
  const base = high ? 8 : 0;
  return () => {
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < bytes; k++) {
        U8[32 + 2 * i * bytes + k] = U8[base + i * bytes + k];
        U8[32 + (2 * i + 1) * bytes + k] = U8[16 + base + i * bytes + k];
      }
    }
    return 0;
  };
}

const pshufd = (imm: number): Kernel => () => {
  for (let i = 0; i < 4; i++) I32[8 + i] = I32[4 + ((imm >> (2 * i)) & 3)];
  return 0;
};
export const pshuflw = (imm: number): Kernel => () => {
  for (let i = 0; i < 4; i++) U16[16 + i] = U16[8 + ((imm >> (2 * i)) & 3)];
  I32[10] = I32[6];
  I32[11] = I32[7];
  return 0;
};
const pshufhw = (imm: number): Kernel => () => {
  I32[8] = I32[4];
  I32[9] = I32[5];
  for (let i = 0; i < 4; i++) U16[20 + i] = U16[12 + ((imm >> (2 * i)) & 3)];
  return 0;
};
const shufps = (imm: number): Kernel => () => {
  I32[8] = I32[imm & 3];
  I32[9] = I32[(imm >> 2) & 3];
  I32[10] = I32[4 + ((imm >> 4) & 3)];
  I32[11] = I32[4 + ((imm >> 6) & 3)];
  return 0;
};
const shufpd = (imm: number): Kernel => () => {
  const a = imm & 1 ? 2 : 0;
  const b = imm & 2 ? 6 : 4;
  I32[8] = I32[a];
  I32[9] = I32[a + 1];
  I32[10] = I32[b];
  I32[11] = I32[b + 1];
  return 0;
};
const pshufb: Kernel = () => {
  for (let i = 0; i < 16; i++) {
    const s = U8[16 + i];
    U8[32 + i] = s & 0x80 ? 0 : U8[s & 15];
  }
  return 0;
};
export const palignr = (imm: number): Kernel => () => {
  // (A:B) >> imm bytes: B is the low 16 bytes, A the high.
  for (let i = 0; i < 16; i++) {
    const j = i + imm;
    U8[32 + i] = j < 16 ? U8[16 + j] : j < 32 ? U8[j - 16] : 0;
  }
  return 0;
};
const blend = (bytes: number, imm: number): Kernel => () => {
  for (let i = 0; i < 16; i++) U8[32 + i] = (imm >> Math.floor(i / bytes)) & 1 ? U8[16 + i] : U8[i];
  return 0;
};

/** PBLENDVB / BLENDVPS / BLENDVPD: the mask is XMM0's sign bits. */
function blendv(bytes: number): Translator {
  return (d) => {
    const k: Kernel = () => {
      for (let i = 0; i < 16; i++) U8[32 + i] = U8[48 + (Math.floor(i / bytes) + 1) * bytes - 1] & 0x80 ? U8[16 + i] : U8[i];
      return 0;
    };
    const inner = xop(d, k);
    return (c) => {
      const r = c.r;
      for (let j = 0; j < 4; j++) I32[12 + j] = r[XMM + j];
      inner(c);
    };
  };
}

const dup: Record<string, Kernel> = {
  movddup: () => {
    I32[8] = I32[4];
    I32[9] = I32[5];
    I32[10] = I32[4];
    I32[11] = I32[5];
    return 0;
  },
  movshdup: () => {
    I32[8] = I32[5];
    I32[9] = I32[5];
    I32[10] = I32[7];
    I32[11] = I32[7];
    return 0;
  },
  movsldup: () => {
    I32[8] = I32[4];
    I32[9] = I32[4];
    I32[10] = I32[6];
    I32[11] = I32[6];
    return 0;
  },
};

// ------------------------------------------------------------------ integer arithmetic kernels

const pmuludq: Kernel = () => {
  for (let i = 0; i < 4; i += 2) {
    const a = U32[i], b = U32[4 + i];
    const al = a & 0xffff, ah = a >>> 16, bl = b & 0xffff, bh = b >>> 16;
    const ll = al * bl, lh = al * bh, hl = ah * bl, hh = ah * bh;
    const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
    U32[8 + i] = ((mid & 0xffff) << 16) | (ll & 0xffff);
    U32[9 + i] = hh + (lh >>> 16) + (hl >>> 16) + Math.floor(mid / 65536);
  }
  return 0;
};
const pmuldq: Kernel = () => {
  for (let i = 0; i < 4; i += 2) {
    const p = BigInt(I32[i]) * BigInt(I32[4 + i]);
    I32[8 + i] = Number(BigInt.asIntN(32, p));
    I32[9 + i] = Number(BigInt.asIntN(32, p >> 32n));
  }
  return 0;
};
const pmaddwd: Kernel = () => {
  for (let i = 0; i < 4; i++) I32[8 + i] = (I16[2 * i] * I16[8 + 2 * i] + I16[2 * i + 1] * I16[9 + 2 * i]) | 0;
  return 0;
};
const pmaddubsw: Kernel = () => {
  for (let i = 0; i < 8; i++) I16[16 + i] = sat16s(U8[2 * i] * I8[16 + 2 * i] + U8[2 * i + 1] * I8[17 + 2 * i]);
  return 0;
};
const psadbw: Kernel = () => {
  for (let h = 0; h < 2; h++) {
    let s = 0;
    for (let i = 0; i < 8; i++) s += Math.abs(U8[8 * h + i] - U8[16 + 8 * h + i]);
    I32[8 + 2 * h] = s;
    I32[9 + 2 * h] = 0;
  }
  return 0;
};
function pack(kind: string): Kernel {
  return () => {
    switch (kind) {
      case "sswb":
        for (let i = 0; i < 8; i++) {
          I8[32 + i] = sat8s(I16[i]);
          I8[40 + i] = sat8s(I16[8 + i]);
        }
        break;
      case "uswb":
        for (let i = 0; i < 8; i++) {
          U8[32 + i] = sat8u(I16[i]);
          U8[40 + i] = sat8u(I16[8 + i]);
        }
        break;
      case "ssdw":
        for (let i = 0; i < 4; i++) {
          I16[16 + i] = sat16s(I32[i]);
          I16[20 + i] = sat16s(I32[4 + i]);
        }
        break;
      default:
        for (let i = 0; i < 4; i++) {
          U16[16 + i] = sat16u(I32[i]);
          U16[20 + i] = sat16u(I32[4 + i]);
        }
    }
    return 0;
  };
}
function hop16(f: (a: number, b: number) => number): Kernel {
  return () => {
    const t: number[] = [];
    for (let i = 0; i < 4; i++) t.push(f(I16[2 * i], I16[2 * i + 1]));
    for (let i = 0; i < 4; i++) t.push(f(I16[8 + 2 * i], I16[9 + 2 * i]));
    for (let i = 0; i < 8; i++) I16[16 + i] = t[i];
    return 0;
  };
}
function hop32(f: (a: number, b: number) => number): Kernel {
  return () => {
    const a0 = f(I32[0], I32[1]), a1 = f(I32[2], I32[3]), b0 = f(I32[4], I32[5]), b1 = f(I32[6], I32[7]);
    I32[8] = a0;
    I32[9] = a1;
    I32[10] = b0;
    I32[11] = b1;
    return 0;
  };
}
function unaryLanes(bytes: number, f: (b: number) => number): Kernel {
  return () => {
    if (bytes === 1) for (let i = 0; i < 16; i++) I8[32 + i] = f(I8[16 + i]);
    else if (bytes === 2) for (let i = 0; i < 8; i++) I16[16 + i] = f(I16[8 + i]);
    else for (let i = 0; i < 4; i++) I32[8 + i] = f(I32[4 + i]);
    return 0;
  };
}
function psign(bytes: number): Kernel {
  return () => {
    if (bytes === 1) for (let i = 0; i < 16; i++) I8[32 + i] = I8[16 + i] < 0 ? -I8[i] : I8[16 + i] === 0 ? 0 : I8[i];
    else if (bytes === 2) for (let i = 0; i < 8; i++) I16[16 + i] = I16[8 + i] < 0 ? -I16[i] : I16[8 + i] === 0 ? 0 : I16[i];
    else for (let i = 0; i < 4; i++) I32[8 + i] = I32[4 + i] < 0 ? -I32[i] | 0 : I32[4 + i] === 0 ? 0 : I32[i];
    return 0;
  };
}
const phminposuw: Kernel = () => {
  let m = U16[8], at = 0;
  for (let i = 1; i < 8; i++) {
    if (U16[8 + i] < m) {
      m = U16[8 + i];
      at = i;
    }
  }
  I32[8] = m | (at << 16);
  I32[9] = 0;
  I32[10] = 0;
  I32[11] = 0;
  return 0;
};

/** PMOVZX / PMOVSX: from the low bytes of B, `from` bytes per element into `to` bytes. */
function pmovx(from: number, to: number, signed: boolean): Translator {
  return (d) => {
    const n = 16 / to;
    const k: Kernel = () => {
      for (let i = 0; i < n; i++) {
        let v: number;
        if (from === 1) v = signed ? I8[16 + i] : U8[16 + i];
        else if (from === 2) v = signed ? I16[8 + i] : U16[8 + i];
        else v = signed ? I32[4 + i] : U32[4 + i];
        if (to === 2) I16[16 + i] = v;
        else if (to === 4) I32[8 + i] = v;
        else {
          I32[8 + 2 * i] = v;
          I32[9 + 2 * i] = signed && v < 0 ? -1 : 0;
        }
      }
      return 0;
    };
    return xop(d, k, NO_A, n * from);
  };
}

// ------------------------------------------------------------------ moves

const copyB: Kernel = () => {
  I32[8] = I32[4];
  I32[9] = I32[5];
  I32[10] = I32[6];
  I32[11] = I32[7];
  return 0;
};

/** MOVDQA/MOVDQU/MOVAPS/MOVUPS/MOVAPD/MOVUPD/LDDQU/MOVNT*: 128-bit moves. */
function move128(align: boolean): Translator {
  return (d) => {
    const [dst, src] = d.ops;
    if (dst.kind === "xmm" && src.kind === "xmm") {
      const D = XMM + 4 * dst.n, S = XMM + 4 * src.n;
      return (c) => {
        sseGate(c);
        const r = c.r;
        r[D] = r[S];
        r[D + 1] = r[S + 1];
        r[D + 2] = r[S + 2];
        r[D + 3] = r[S + 3];
      };
    }
    if (dst.kind === "xmm") return xop(d, copyB, (align ? ALIGN : 0) | NO_A);
    if (dst.kind !== "mem" || src.kind !== "xmm") throw new UnsupportedForm();
    const ea = dst.ea;
    const S = XMM + 4 * src.n;
    return (c) => {
      sseGate(c);
      const lo = ea(c);
      const hi = c.ahi;
      if (align && (lo & 15) !== 0) gp(c, 0);
      const r = c.r;
      for (let k = 0; k < 4; k++) I32[R + k] = r[S + k];
      storeMem16(c, lo, hi, R);
    };
  };
}

/** MOVD / MOVQ in every form: bytes = 4 or 8 moved through the low bits, the rest zeroed. */
function movdq(bytes: number): Translator {
  return (d) => {
    const [dst, src] = d.ops;
    const size = src.kind === "reg" ? src.size : dst.kind === "reg" ? dst.size : bytes;
    if (dst.kind === "xmm") {
      const D = XMM + 4 * dst.n;
      if (src.kind === "reg") {
        const s = src.slot;
        const q = size === 8;
        return (c) => {
          sseGate(c);
          const r = c.r;
          r[D] = r[s];
          r[D + 1] = q ? r[s + 1] : 0;
          r[D + 2] = 0;
          r[D + 3] = 0;
        };
      }
      const ld = loader(src, B, false, size);
      return (c) => {
        sseGate(c);
        ld(c);
        const r = c.r;
        r[D] = I32[B];
        r[D + 1] = size === 8 ? I32[B + 1] : 0;
        r[D + 2] = 0;
        r[D + 3] = 0;
      };
    }
    if (src.kind !== "xmm") throw new UnsupportedForm();
    const S = XMM + 4 * src.n;
    if (dst.kind === "reg") {
      const s = dst.slot;
      return (c) => {
        sseGate(c);
        const r = c.r;
        r[s] = r[S];
        r[s + 1] = size === 8 ? r[S + 1] : 0;
      };
    }
    if (dst.kind !== "mem") throw new UnsupportedForm();
    const ea = dst.ea;
    return (c) => {
      sseGate(c);
      const lo = ea(c);
      const r = c.r;
      if (size === 8) wr64(c, lo, c.ahi, r[S], r[S + 1]);
      else wr32(c, lo, c.ahi, r[S]);
    };
  };
}

/** MOVSS / MOVSD (xmm forms): reg-reg merges the low element; a load zeroes the rest; a store writes the low element. */
function movScalar(bytes: number): Translator {
  return (d) => {
    const [dst, src] = d.ops;
    const words = bytes / 4;
    if (dst.kind === "xmm" && src.kind === "xmm") {
      const D = XMM + 4 * dst.n, S = XMM + 4 * src.n;
      return (c) => {
        sseGate(c);
        const r = c.r;
        r[D] = r[S];
        if (words === 2) r[D + 1] = r[S + 1];
      };
    }
    if (dst.kind === "xmm" && src.kind === "mem") {
      const D = XMM + 4 * dst.n;
      const ld = loader(src, B, false, bytes);
      return (c) => {
        sseGate(c);
        ld(c);
        const r = c.r;
        for (let k = 0; k < 4; k++) r[D + k] = I32[B + k];
      };
    }
    if (dst.kind === "mem" && src.kind === "xmm") {
      const ea = dst.ea;
      const S = XMM + 4 * src.n;
      return (c) => {
        sseGate(c);
        const lo = ea(c);
        const r = c.r;
        if (words === 2) wr64(c, lo, c.ahi, r[S], r[S + 1]);
        else wr32(c, lo, c.ahi, r[S]);
      };
    }
    throw new UnsupportedForm();
  };
}

/** MOVLPS/MOVLPD (half 0) and MOVHPS/MOVHPD (half 1): xmm half ↔ m64. */
function movHalf(half: number): Translator {
  return (d) => {
    const [dst, src] = d.ops;
    if (dst.kind === "xmm" && src.kind === "mem") {
      const D = XMM + 4 * dst.n + 2 * half;
      const ea = src.ea;
      return (c) => {
        sseGate(c);
        const lo = rd64(c, ea(c), c.ahi);
        const r = c.r;
        r[D] = lo;
        r[D + 1] = c.mhi;
      };
    }
    if (dst.kind === "mem" && src.kind === "xmm") {
      const S = XMM + 4 * src.n + 2 * half;
      const ea = dst.ea;
      return (c) => {
        sseGate(c);
        const lo = ea(c);
        wr64(c, lo, c.ahi, c.r[S], c.r[S + 1]);
      };
    }
    throw new UnsupportedForm();
  };
}

/** MOVHLPS (dst low ← src high) and MOVLHPS (dst high ← src low). */
function movHl(toHigh: boolean): Translator {
  return (d) => {
    const D = xmmSlot(d.ops[0]) + (toHigh ? 2 : 0);
    const S = xmmSlot(d.ops[1]) + (toHigh ? 0 : 2);
    return (c) => {
      sseGate(c);
      const r = c.r;
      r[D] = r[S];
      r[D + 1] = r[S + 1];
    };
  };
}

/** PMOVMSKB / MOVMSKPS / MOVMSKPD r32/64 ← sign bits. */
function movmsk(bytes: number): Translator {
  return (d) => {
    const [dst, src] = d.ops;
    if (dst.kind !== "reg" || src.kind !== "xmm") throw new UnsupportedForm();
    const s = dst.slot;
    const S = XMM + 4 * src.n;
    const n = 16 / bytes;
    return (c) => {
      sseGate(c);
      const r = c.r;
      for (let k = 0; k < 4; k++) I32[k] = r[S + k];
      let m = 0;
      for (let i = 0; i < n; i++) m |= (U8[(i + 1) * bytes - 1] >>> 7) << i;
      r[s] = m;
      r[s + 1] = 0;
    };
  };
}

/** PINSRB/W/D/Q xmm, r/m, imm. */
function pinsr(bytes: number): Translator {
  return (d) => {
    const [dst, src] = d.ops;
    const D = xmmSlot(dst);
    const imm = imm8(d, 2);
    const lane = imm & (16 / bytes - 1);
    let get: (c: Cpu) => void;
    if (src.kind === "reg") {
      const s = src.slot;
      get = (c) => {
        I32[B] = c.r[s];
        I32[B + 1] = c.r[s + 1];
      };
    } else if (src.kind === "mem") {
      const ea = src.ea;
      get = (c) => loadMem(c, ea(c), c.ahi, bytes, B);
    } else throw new UnsupportedForm();
    return (c) => {
      sseGate(c);
      get(c);
      const r = c.r;
      for (let k = 0; k < 4; k++) I32[A + k] = r[D + k];
      for (let k = 0; k < bytes; k++) U8[lane * bytes + k] = U8[16 + k];
      for (let k = 0; k < 4; k++) r[D + k] = I32[A + k];
    };
  };
}

/** PEXTRB/W/D/Q and EXTRACTPS r/m, xmm, imm (a register destination is zero-extended). */
function pextr(bytes: number): Translator {
  return (d) => {
    const [dst, src] = d.ops;
    const S = xmmSlot(src);
    const imm = imm8(d, 2);
    const lane = imm & (16 / bytes - 1);
    const off = lane * bytes;
    return (c) => {
      sseGate(c);
      const r = c.r;
      for (let k = 0; k < 4; k++) I32[A + k] = r[S + k];
      let lo = 0, hi = 0;
      if (bytes === 1) lo = U8[off];
      else if (bytes === 2) lo = U16[off >> 1];
      else if (bytes === 4) lo = I32[off >> 2];
      else {
        lo = I32[off >> 2];
        hi = I32[(off >> 2) + 1];
      }
      if (dst.kind === "reg") {
        r[dst.slot] = lo;
        r[dst.slot + 1] = hi;
      } else if (dst.kind === "mem") {
        const a = dst.ea(c);
        if (bytes === 1) wr8(c, a, c.ahi, lo);
        else if (bytes === 2) wr16(c, a, c.ahi, lo);
        else if (bytes === 4) wr32(c, a, c.ahi, lo);
        else wr64(c, a, c.ahi, lo, hi);
      }
    };
  };
}

/** INSERTPS xmm, xmm/m32, imm. */
const insertps: Translator = (d) => {
  const imm = imm8(d, 2);
  const fromMem = d.ops[1].kind === "mem";
  const k: Kernel = () => {
    const v = fromMem ? I32[4] : I32[4 + ((imm >> 6) & 3)];
    for (let i = 0; i < 4; i++) I32[8 + i] = I32[i];
    I32[8 + ((imm >> 4) & 3)] = v;
    for (let i = 0; i < 4; i++) if ((imm >> i) & 1) I32[8 + i] = 0;
    return 0;
  };
  return xop(d, k, ALIGN, fromMem ? 4 : -1);
};

/** PTEST: ZF = (A & B) == 0, CF = (~A & B) == 0; the other status flags cleared. */
const ptest: Translator = (d) => {
  const D = xmmSlot(d.ops[0]);
  const ld = loader(d.ops[1], B, true);
  return (c) => {
    sseGate(c);
    ld(c);
    const r = c.r;
    let and = 0, andn = 0;
    for (let k = 0; k < 4; k++) {
      and |= r[D + k] & I32[B + k];
      andn |= ~r[D + k] & I32[B + k];
    }
    r[RFLAGS] = (r[RFLAGS] & ~ARITH) | (and === 0 ? ZF : 0) | (andn === 0 ? CF : 0);
  };
};

/** MOVNTI m32/m64, r: a plain store (SSE2, but on general registers: no CR0/CR4 gate). */
const movnti: Translator = (d) => {
  const [dst, src] = d.ops;
  if (dst.kind !== "mem" || src.kind !== "reg") throw new UnsupportedForm();
  const ea = dst.ea;
  const s = src.slot;
  if (src.size === 8) return (c) => {
    const lo = ea(c);
    wr64(c, lo, c.ahi, c.r[s], c.r[s + 1]);
  };
  return (c) => {
    const lo = ea(c);
    wr32(c, lo, c.ahi, c.r[s]);
  };
};

/** LDMXCSR m32 (#GP(0) on a reserved bit) and STMXCSR m32. */
const ldmxcsr: Translator = (d) => {
  const m = d.ops[0];
  if (m.kind !== "mem") throw new UnsupportedForm();
  const ea = m.ea;
  return (c) => {
    sseGate(c);
    const v = rd32(c, ea(c), c.ahi);
    if ((v & ~0xffff) !== 0) gp(c, 0);
    c.r[MXCSR] = v;
  };
};
const stmxcsr: Translator = (d) => {
  const m = d.ops[0];
  if (m.kind !== "mem") throw new UnsupportedForm();
  const ea = m.ea;
  return (c) => {
    sseGate(c);
    const lo = ea(c);
    wr32(c, lo, c.ahi, c.r[MXCSR]);
  };
};

// ------------------------------------------------------------------ floating point kernels

/** Packed or scalar single (op as sse-fp's bin32). */
function fps(op: number, scalar: boolean): Kernel {
  const n = scalar ? 1 : 4;
  return () => {
    let fl = 0;
    for (let i = 0; i < n; i++) {
      fl |= bin32(op, I32[i], I32[4 + i]);
      I32[8 + i] = RES[2];
    }
    for (let i = n; i < 4; i++) I32[8 + i] = I32[i];
    return fl;
  };
}
function fpd(op: number, scalar: boolean): Kernel {
  const n = scalar ? 1 : 2;
  return () => {
    let fl = 0;
    for (let i = 0; i < n; i++) {
      fl |= bin64(op, I32[2 * i + 1], I32[2 * i], I32[5 + 2 * i], I32[4 + 2 * i]);
      I32[8 + 2 * i] = RES[0];
      I32[9 + 2 * i] = RES[1];
    }
    if (scalar) {
      I32[10] = I32[2];
      I32[11] = I32[3];
    }
    return fl;
  };
}
/** HADDPS/HSUBPS/HADDPD/HSUBPD and ADDSUBPS/ADDSUBPD. */
function hps(op: number): Kernel {
  return () => {
    let fl = 0;
    const t: number[] = [];
    for (const [x, y] of [[0, 1], [2, 3], [4, 5], [6, 7]]) {
      fl |= bin32(op, I32[x], I32[y]);
      t.push(RES[2]);
    }
    for (let i = 0; i < 4; i++) I32[8 + i] = t[i];
    return fl;
  };
}
function hpd(op: number): Kernel {
  return () => {
    let fl = bin64(op, I32[1], I32[0], I32[3], I32[2]);
    const l0 = RES[0], h0 = RES[1];
    fl |= bin64(op, I32[5], I32[4], I32[7], I32[6]);
    I32[8] = l0;
    I32[9] = h0;
    I32[10] = RES[0];
    I32[11] = RES[1];
    return fl;
  };
}
const addsubps: Kernel = () => {
  let fl = 0;
  for (let i = 0; i < 4; i++) {
    fl |= bin32(i & 1 ? 0 : 1, I32[i], I32[4 + i]);
    I32[8 + i] = RES[2];
  }
  return fl;
};
const addsubpd: Kernel = () => {
  let fl = 0;
  for (let i = 0; i < 2; i++) {
    fl |= bin64(i ? 0 : 1, I32[2 * i + 1], I32[2 * i], I32[5 + 2 * i], I32[4 + 2 * i]);
    I32[8 + 2 * i] = RES[0];
    I32[9 + 2 * i] = RES[1];
  }
  return fl;
};

function cmpps(scalar: boolean, imm: number): Kernel {
  const n = scalar ? 1 : 4;
  const sig = predSignals(imm);
  return () => {
    let fl = 0;
    for (let i = 0; i < n; i++) {
      const rel = cmp32(I32[i], I32[4 + i], sig);
      fl |= RES[3];
      I32[8 + i] = cmpPredicate(imm, rel) ? -1 : 0;
    }
    for (let i = n; i < 4; i++) I32[8 + i] = I32[i];
    return fl;
  };
}
function cmppd(scalar: boolean, imm: number): Kernel {
  const n = scalar ? 1 : 2;
  const sig = predSignals(imm);
  return () => {
    let fl = 0;
    for (let i = 0; i < n; i++) {
      const rel = cmp64(I32[2 * i + 1], I32[2 * i], I32[5 + 2 * i], I32[4 + 2 * i], sig);
      fl |= RES[3];
      const v = cmpPredicate(imm, rel) ? -1 : 0;
      I32[8 + 2 * i] = v;
      I32[9 + 2 * i] = v;
    }
    if (scalar) {
      I32[10] = I32[2];
      I32[11] = I32[3];
    }
    return fl;
  };
}

/** UCOMISS/UCOMISD/COMISS/COMISD: ZF PF CF from the compare, OF SF AF cleared. */
function comis(double: boolean, signalling: boolean): Translator {
  return (d) => {
    const D = xmmSlot(d.ops[0]);
    const ld = loader(d.ops[1], B, false, d.ops[1].kind === "mem" ? (double ? 8 : 4) : -1);
    return (c) => {
      sseGate(c);
      ld(c);
      const r = c.r;
      setMx(r[MXCSR]);
      const rel = double ? cmp64(r[D + 1], r[D], I32[B + 1], I32[B], signalling) : cmp32(r[D], I32[B], signalling);
      if (RES[3] !== 0) raise(c, RES[3]);
      const f = rel === 3 ? ZF | PF | CF : rel === 0 ? CF : rel === 1 ? ZF : 0;
      r[RFLAGS] = (r[RFLAGS] & ~ARITH) | f;
    };
  };
}

/** DPPS / DPPD imm: products selected by imm[7:4] (else +0), summed pairwise, stored where imm[3:0] says. */
function dpps(imm: number): Kernel {
  return () => {
    let fl = 0;
    const t = [0, 0, 0, 0];
    for (let i = 0; i < 4; i++) {
      if ((imm >> (4 + i)) & 1) {
        fl |= bin32(2, I32[i], I32[4 + i]);
        t[i] = RES[2];
      }
    }
    fl |= bin32(0, t[0], t[1]);
    const s0 = RES[2];
    fl |= bin32(0, t[2], t[3]);
    fl |= bin32(0, s0, RES[2]);
    const v = RES[2];
    for (let i = 0; i < 4; i++) I32[8 + i] = (imm >> i) & 1 ? v : 0;
    return fl;
  };
}
function dppd(imm: number): Kernel {
  return () => {
    let fl = 0;
    const t = [0, 0, 0, 0];
    for (let i = 0; i < 2; i++) {
      if ((imm >> (4 + i)) & 1) {
        fl |= bin64(2, I32[2 * i + 1], I32[2 * i], I32[5 + 2 * i], I32[4 + 2 * i]);
        t[2 * i] = RES[0];
        t[2 * i + 1] = RES[1];
      }
    }
    fl |= bin64(0, t[1], t[0], t[3], t[2]);
    for (let i = 0; i < 2; i++) {
      const on = (imm >> i) & 1;
      I32[8 + 2 * i] = on ? RES[0] : 0;
      I32[9 + 2 * i] = on ? RES[1] : 0;
    }
    return fl;
  };
}
const mpsadbw = (imm: number): Kernel => () => {
  const b2 = (imm & 3) * 4;
  const b1 = ((imm >> 2) & 1) * 4;
  for (let i = 0; i < 8; i++) {
    let s = 0;
    for (let k = 0; k < 4; k++) s += Math.abs(U8[b1 + i + k] - U8[16 + b2 + k]);
    U16[16 + i] = s;
  }
  return 0;
};

/**
 * RCPPS/RCPSS/RSQRTPS/RSQRTSS: hardware returns a 12-bit approximation (its tables differ between
 * Intel and AMD); this gives the correctly rounded 1/x and 1/sqrt(x), as QEMU does, and no flags.
 */
function approx(rsqrt: boolean, scalar: boolean): Kernel {
  const n = scalar ? 1 : 4;
  return () => {
    for (let i = 0; i < 4; i++) I32[8 + i] = I32[i];
    for (let i = 0; i < n; i++) {
      const x = F32[4 + i];
      const w = I32[4 + i];
      if ((w & 0x7f800000) === 0x7f800000 && (w & 0x7fffff) !== 0) I32[8 + i] = w | 0x400000;
      else F32[8 + i] = rsqrt ? (x < 0 ? NaN : 1 / Math.sqrt(x)) : 1 / x;
      if (rsqrt && x < 0) I32[8 + i] = DEF_NAN32;
    }
    return 0;
  };
}

// ------------------------------------------------------------------ PCMPESTRI/M, PCMPISTRI/M (SSE4.2)

/**
 * The string compare of A (xmm1) and B (xmm2/m128) under imm8; lengths la, lb (already saturated
 * to n). Returns IntRes2; sets RFLAGS CF ZF SF OF (AF PF cleared).
 */
function strCompare(c: Cpu, imm: number, la: number, lb: number): number {
  const words = (imm & 1) !== 0;
  const signed = (imm & 2) !== 0;
  const n = words ? 8 : 16;
  const el = (base: number, i: number) => (words ? (signed ? I16[base / 2 + i] : U16[base / 2 + i]) : signed ? I8[base + i] : U8[base + i]);
  const agg = (imm >> 2) & 3;
  let res1 = 0;
  for (let j = 0; j < n; j++) {
    let bit = 0;
    if (agg === 0) {
      if (j < lb) for (let i = 0; i < la; i++) if (el(0, i) === el(16, j)) bit = 1;
    } else if (agg === 1) {
      if (j < lb) {
        const bj = el(16, j);
        for (let i = 0; i + 1 < n; i += 2) {
          const lo = i < la ? bj >= el(0, i) : false;
          const hi = i + 1 < la ? bj <= el(0, i + 1) : false;
          if (lo && hi) bit = 1;
        }
      }
    } else if (agg === 2) {
      const va = j < la, vb = j < lb;
      bit = va && vb ? (el(0, j) === el(16, j) ? 1 : 0) : !va && !vb ? 1 : 0;
    } else {
      bit = 1;
      for (let i = 0, k = j; i < n - j; i++, k++) {
        const va = i < la, vb = k < lb;
        const b = !va ? true : !vb ? false : el(0, i) === el(16, k);
        if (!b) {
          bit = 0;
          break;
        }
      }
    }
    res1 |= bit << j;
  }
  const all = words ? 0xff : 0xffff;
  const pol = (imm >> 4) & 3;
  let res2 = res1;
  if (pol === 1) res2 = ~res1 & all;
  else if (pol === 3) res2 = (res1 ^ ((1 << lb) - 1)) & all;
  const r = c.r;
  r[RFLAGS] = (r[RFLAGS] & ~ARITH) | (res2 !== 0 ? CF : 0) | (lb < n ? ZF : 0) | (la < n ? SF : 0) | (res2 & 1 ? OF : 0);
  return res2;
}

function implicitLength(base: number, words: boolean): number {
  const n = words ? 8 : 16;
  for (let i = 0; i < n; i++) if ((words ? U16[base / 2 + i] : U8[base + i]) === 0) return i;
  return n;
}

function explicitLength(c: Cpu, slot: number, wide: boolean, n: number): number {
  const r = c.r;
  let v: number;
  if (wide) {
    const hi = r[slot + 1], lo = r[slot];
    // |value| saturated to n: anything beyond 32 bits is ≥ n.
    if (hi === 0) v = lo >>> 0;
    else if (hi === -1) v = 4294967296 - (lo >>> 0);
    else v = n;
  } else v = Math.abs(r[slot] | 0);
  return v > n ? n : v;
}

function pcmpstr(explicit: boolean, index: boolean, wide: boolean): Translator {
  return (d) => {
    const A0 = xmmSlot(d.ops[0]);
    const ld = loader(d.ops[1], B, false);
    const imm = imm8(d, 2);
    const words = (imm & 1) !== 0;
    const n = words ? 8 : 16;
    return (c) => {
      sseGate(c);
      ld(c);
      const r = c.r;
      for (let k = 0; k < 4; k++) I32[A + k] = r[A0 + k];
      const la = explicit ? explicitLength(c, 0, wide, n) : implicitLength(0, words);
      const lb = explicit ? explicitLength(c, 4, wide, n) : implicitLength(16, words);
      const res = strCompare(c, imm, la, lb);
      if (index) {
        let i = n;
        if (res !== 0) i = imm & 0x40 ? 31 - Math.clz32(res) : 31 - Math.clz32(res & -res);
        r[2] = i; // ECX, zero-extended
        r[3] = 0;
      } else {
        if (imm & 0x40) {
          for (let i = 0; i < n; i++) {
            if (words) U16[16 + i] = (res >> i) & 1 ? 0xffff : 0;
            else U8[32 + i] = (res >> i) & 1 ? 0xff : 0;
          }
        } else {
          I32[R] = res;
          I32[R + 1] = 0;
          I32[R + 2] = 0;
          I32[R + 3] = 0;
        }
        for (let k = 0; k < 4; k++) r[XMM + k] = I32[R + k];
      }
    };
  };
}

// ------------------------------------------------------------------ conversions

/** CVTSI2SS / CVTSI2SD xmm, r/m32/64. */
function cvtsi2(double: boolean): Translator {
  return (d) => {
    const [dst, src] = d.ops;
    const D = xmmSlot(dst);
    const size = src.kind === "reg" || src.kind === "mem" ? src.size : 0;
    if (size !== 4 && size !== 8) throw new UnsupportedForm();
    let get: (c: Cpu) => void;
    if (src.kind === "reg") {
      const s = src.slot;
      get = (c) => {
        I32[B] = c.r[s];
        I32[B + 1] = c.r[s + 1];
      };
    } else if (src.kind === "mem") {
      const ea = src.ea;
      get = (c) => loadMem(c, ea(c), c.ahi, size, B);
    } else throw new UnsupportedForm();
    return (c) => {
      sseGate(c);
      get(c);
      const r = c.r;
      setMx(r[MXCSR]);
      let v: number | bigint;
      if (size === 4) v = I32[B];
      else {
        const hi = I32[B + 1], lo = U32[B];
        v = hi === 0 || (hi === -1 && lo !== 0) ? hi * 4294967296 + lo : (BigInt(hi) << 32n) | BigInt(lo);
      }
      const fl = cvtInt(v, double ? 1 : 0);
      if (fl !== 0) raise(c, fl);
      if (double) {
        r[D] = RES[0];
        r[D + 1] = RES[1];
      } else r[D] = RES[2];
    };
  };
}

/** CVTSS2SI / CVTTSS2SI / CVTSD2SI / CVTTSD2SI r32/64, xmm/m. */
function cvt2si(double: boolean, truncate: boolean): Translator {
  return (d) => {
    const [dst, src] = d.ops;
    if (dst.kind !== "reg" || (dst.size !== 4 && dst.size !== 8)) throw new UnsupportedForm();
    const s = dst.slot;
    const bits = dst.size * 8;
    const ld = loader(src, B, false, src.kind === "mem" ? (double ? 8 : 4) : -1);
    return (c) => {
      sseGate(c);
      ld(c);
      const r = c.r;
      const mx = r[MXCSR];
      setMx(mx);
      const x = double ? num64(I32[B + 1], I32[B]) : num32(I32[B]);
      const t = toInt(x, bits, truncate ? 3 : (mx >>> 13) & 3);
      if (RES[4] !== 0) raise(c, RES[4]);
      if (t === null) {
        r[s] = bits === 32 ? 0x80000000 | 0 : 0;
        r[s + 1] = bits === 32 ? 0 : 0x80000000 | 0;
      } else if (bits === 32) {
        r[s] = t;
        r[s + 1] = 0;
      } else {
        const hi = Math.floor(t / 4294967296);
        r[s] = (t - hi * 4294967296) | 0;
        r[s + 1] = hi | 0;
      }
    };
  };
}

const cvtsd2ss: Kernel = () => {
  const fl = cvt64to32(I32[5], I32[4]);
  I32[8] = RES[2];
  I32[9] = I32[1];
  I32[10] = I32[2];
  I32[11] = I32[3];
  return fl;
};
const cvtss2sd: Kernel = () => {
  const fl = cvt32to64(I32[4]);
  I32[8] = RES[0];
  I32[9] = RES[1];
  I32[10] = I32[2];
  I32[11] = I32[3];
  return fl;
};
const cvtpd2ps: Kernel = () => {
  let fl = cvt64to32(I32[5], I32[4]);
  I32[8] = RES[2];
  fl |= cvt64to32(I32[7], I32[6]);
  I32[9] = RES[2];
  I32[10] = 0;
  I32[11] = 0;
  return fl;
};
const cvtps2pd: Kernel = () => {
  let fl = cvt32to64(I32[4]);
  const lo = RES[0], hi = RES[1];
  fl |= cvt32to64(I32[5]);
  I32[8] = lo;
  I32[9] = hi;
  I32[10] = RES[0];
  I32[11] = RES[1];
  return fl;
};
const cvtdq2ps: Kernel = () => {
  let fl = 0;
  for (let i = 0; i < 4; i++) {
    fl |= cvtInt(I32[4 + i], 0);
    I32[8 + i] = RES[2];
  }
  return fl;
};
const cvtdq2pd: Kernel = () => {
  const a = I32[4], b = I32[5];
  cvtInt(a, 1);
  I32[8] = RES[0];
  I32[9] = RES[1];
  cvtInt(b, 1);
  I32[10] = RES[0];
  I32[11] = RES[1];
  return 0;
};
function cvtps2dq(truncate: boolean): Kernel {
  return () => {
    let fl = 0;
    const rc = truncate ? 3 : (RES[5] >>> 13) & 3;
    for (let i = 0; i < 4; i++) {
      const t = toInt(num32(I32[4 + i]), 32, rc);
      fl |= RES[4];
      I32[8 + i] = t === null ? 0x80000000 | 0 : t;
    }
    return fl;
  };
}
function cvtpd2dq(truncate: boolean): Kernel {
  return () => {
    let fl = 0;
    const rc = truncate ? 3 : (RES[5] >>> 13) & 3;
    for (let i = 0; i < 2; i++) {
      const t = toInt(num64(I32[5 + 2 * i], I32[4 + 2 * i]), 32, rc);
      fl |= RES[4];
      I32[8 + i] = t === null ? 0x80000000 | 0 : t;
    }
    I32[10] = 0;
    I32[11] = 0;
    return fl;
  };
}

/** ROUNDPS/PD/SS/SD imm: bit 2 → MXCSR.RC, else bits 1:0; bit 3 suppresses PE. */
function roundK(double: boolean, scalar: boolean, imm: number): Kernel {
  const n = scalar ? 1 : double ? 2 : 4;
  const noPe = (imm & 8) !== 0;
  return () => {
    const rc = imm & 4 ? (RES[5] >>> 13) & 3 : imm & 3;
    let fl = 0;
    for (let i = 0; i < 4; i++) I32[8 + i] = I32[i];
    for (let i = 0; i < n; i++) {
      if (double) {
        fl |= roundIntegral64(I32[5 + 2 * i], I32[4 + 2 * i], rc, noPe);
        I32[8 + 2 * i] = RES[0];
        I32[9 + 2 * i] = RES[1];
      } else {
        fl |= roundIntegral32(I32[4 + i], rc, noPe);
        I32[8 + i] = RES[2];
      }
    }
    return fl;
  };
}

// ------------------------------------------------------------------ CRC32 (SSE4.2, general registers)

const CRC_TABLE = (() => {
  const t = new Int32Array(256);
  for (let i = 0; i < 256; i++) {
    let v = i;
    for (let k = 0; k < 8; k++) v = v & 1 ? (v >>> 1) ^ 0x82f63b78 : v >>> 1;
    t[i] = v;
  }
  return t;
})();

/** An FP translator: FP kernel with the source size of scalar forms. */
function fpT(k: Kernel, scalarBytes = 0): Translator {
  return kernelT(k, (d) => xop(d, k, ALIGN | FP, d.ops[1].kind === "mem" && scalarBytes > 0 ? scalarBytes : -1));
}
function fpImmT(mk: (imm: number) => Kernel, scalarBytes = 0): Translator {
  return (d) => xop(d, mk(imm8(d, 2)), ALIGN | FP, d.ops[1].kind === "mem" && scalarBytes > 0 ? scalarBytes : -1);
}

// ------------------------------------------------------------------ the table

const M = Mnemonic;
const table: [Mnemonic, Translator][] = [
  // moves
  [M.Movd, movdq(4)], [M.Movq, movdq(8)],
  [M.Movdqa, move128(true)], [M.Movaps, move128(true)], [M.Movapd, move128(true)],
  [M.Movntdq, move128(true)], [M.Movntps, move128(true)], [M.Movntpd, move128(true)], [M.Movntdqa, move128(true)],
  [M.Movdqu, move128(false)], [M.Movups, move128(false)], [M.Movupd, move128(false)], [M.Lddqu, move128(false)],
  [M.Movss, movScalar(4)],
  [M.Movlps, movHalf(0)], [M.Movlpd, movHalf(0)], [M.Movhps, movHalf(1)], [M.Movhpd, movHalf(1)],
  [M.Movhlps, movHl(false)], [M.Movlhps, movHl(true)],
  [M.Movddup, (d) => xop(d, dup.movddup, ALIGN | NO_A, d.ops[1].kind === "mem" ? 8 : -1)],
  [M.Movshdup, simple(dup.movshdup, ALIGN | NO_A)], [M.Movsldup, simple(dup.movsldup, ALIGN | NO_A)],
  [M.Pmovmskb, movmsk(1)], [M.Movmskps, movmsk(4)], [M.Movmskpd, movmsk(8)],
  [M.Movnti, movnti],
  [M.Ldmxcsr, ldmxcsr], [M.Stmxcsr, stmxcsr],
  [M.Pinsrb, pinsr(1)], [M.Pinsrw, pinsr(2)], [M.Pinsrd, pinsr(4)], [M.Pinsrq, pinsr(8)],
  [M.Pextrb, pextr(1)], [M.Pextrw, pextr(2)], [M.Pextrd, pextr(4)], [M.Pextrq, pextr(8)], [M.Extractps, pextr(4)],
  [M.Insertps, insertps],
  // logic
  [M.Pand, logicT(AND)], [M.Andps, logicT(AND)], [M.Andpd, logicT(AND)],
  [M.Pandn, logicT(ANDN)], [M.Andnps, logicT(ANDN)], [M.Andnpd, logicT(ANDN)],
  [M.Por, logicT(OR)], [M.Orps, logicT(OR)], [M.Orpd, logicT(OR)],
  [M.Pxor, logicT(XOR)], [M.Xorps, logicT(XOR)], [M.Xorpd, logicT(XOR)],
  [M.Ptest, ptest],
  // integer arithmetic
  [M.Paddb, simple(lanes8((a, b) => a + b))], [M.Paddw, simple(lanes16((a, b) => a + b))],
  [M.Paddd, wordT(4)], [M.Paddq, simple(lanes64(add64))],
  [M.Psubb, simple(lanes8((a, b) => a - b))], [M.Psubw, simple(lanes16((a, b) => a - b))],
  [M.Psubd, wordT(5)], [M.Psubq, simple(lanes64(sub64))],
  [M.Paddsb, simple(lanes8s((a, b) => sat8s(a + b)))], [M.Paddsw, simple(lanes16s((a, b) => sat16s(a + b)))],
  [M.Paddusb, simple(lanes8((a, b) => sat8u(a + b)))], [M.Paddusw, simple(lanes16((a, b) => sat16u(a + b)))],
  [M.Psubsb, simple(lanes8s((a, b) => sat8s(a - b)))], [M.Psubsw, simple(lanes16s((a, b) => sat16s(a - b)))],
  [M.Psubusb, simple(lanes8((a, b) => sat8u(a - b)))], [M.Psubusw, simple(lanes16((a, b) => sat16u(a - b)))],
  [M.Pcmpeqb, simple(lanes8((a, b) => (a === b ? 0xff : 0)))], [M.Pcmpeqw, simple(lanes16((a, b) => (a === b ? 0xffff : 0)))],
  [M.Pcmpeqd, simple(lanes32((a, b) => (a === b ? -1 : 0)))],
  [M.Pcmpeqq, simple(lanes64((al, ah, bl, bh) => (HI = al === bl && ah === bh ? -1 : 0)))],
  [M.Pcmpgtb, simple(lanes8s((a, b) => (a > b ? -1 : 0)))], [M.Pcmpgtw, simple(lanes16s((a, b) => (a > b ? -1 : 0)))],
  [M.Pcmpgtd, simple(lanes32((a, b) => (a > b ? -1 : 0)))],
  [M.Pcmpgtq, simple(lanes64((al, ah, bl, bh) => (HI = ah > bh || (ah === bh && al >>> 0 > bl >>> 0) ? -1 : 0)))],
  [M.Pmullw, simple(lanes16((a, b) => Math.imul(a, b)))],
  [M.Pmulhw, simple(lanes16s((a, b) => (a * b) >> 16))],
  [M.Pmulhuw, simple(lanes16((a, b) => (a * b) >>> 16))],
  [M.Pmulhrsw, simple(lanes16s((a, b) => (((a * b) >> 14) + 1) >> 1))],
  [M.Pmulld, simple(lanes32((a, b) => Math.imul(a, b)))],
  [M.Pmuludq, simple(pmuludq)], [M.Pmuldq, simple(pmuldq)],
  [M.Pmaddwd, simple(pmaddwd)], [M.Pmaddubsw, simple(pmaddubsw)],
  [M.Pminub, simple(lanes8((a, b) => Math.min(a, b)))], [M.Pmaxub, simple(lanes8((a, b) => Math.max(a, b)))],
  [M.Pminsb, simple(lanes8s((a, b) => Math.min(a, b)))], [M.Pmaxsb, simple(lanes8s((a, b) => Math.max(a, b)))],
  [M.Pminuw, simple(lanes16((a, b) => Math.min(a, b)))], [M.Pmaxuw, simple(lanes16((a, b) => Math.max(a, b)))],
  [M.Pminsw, simple(lanes16s((a, b) => Math.min(a, b)))], [M.Pmaxsw, simple(lanes16s((a, b) => Math.max(a, b)))],
  [M.Pminud, simple(lanes32u((a, b) => Math.min(a, b)))], [M.Pmaxud, simple(lanes32u((a, b) => Math.max(a, b)))],
  [M.Pminsd, simple(lanes32((a, b) => Math.min(a, b)))], [M.Pmaxsd, simple(lanes32((a, b) => Math.max(a, b)))],
  [M.Pavgb, simple(lanes8((a, b) => (a + b + 1) >> 1))], [M.Pavgw, simple(lanes16((a, b) => (a + b + 1) >> 1))],
  [M.Psadbw, simple(psadbw)],
  [M.Packsswb, simple(pack("sswb"))], [M.Packuswb, simple(pack("uswb"))],
  [M.Packssdw, simple(pack("ssdw"))], [M.Packusdw, simple(pack("usdw"))],
  [M.Pabsb, simple(unaryLanes(1, Math.abs), ALIGN | NO_A)], [M.Pabsw, simple(unaryLanes(2, Math.abs), ALIGN | NO_A)],
  [M.Pabsd, simple(unaryLanes(4, (v) => (v < 0 ? -v | 0 : v)), ALIGN | NO_A)],
  [M.Psignb, simple(psign(1))], [M.Psignw, simple(psign(2))], [M.Psignd, simple(psign(4))],
  [M.Phaddw, simple(hop16((a, b) => a + b))], [M.Phaddsw, simple(hop16((a, b) => sat16s(a + b)))],
  [M.Phsubw, simple(hop16((a, b) => a - b))], [M.Phsubsw, simple(hop16((a, b) => sat16s(a - b)))],
  [M.Phaddd, simple(hop32((a, b) => (a + b) | 0))], [M.Phsubd, simple(hop32((a, b) => (a - b) | 0))],
  [M.Phminposuw, simple(phminposuw, ALIGN | NO_A)],
  // shifts
  [M.Psllw, shiftT(16, 0)], [M.Pslld, shiftT(32, 0)], [M.Psllq, shiftT(64, 0)],
  [M.Psrlw, shiftT(16, 1)], [M.Psrld, shiftT(32, 1)], [M.Psrlq, shiftT(64, 1)],
  [M.Psraw, shiftT(16, 2)], [M.Psrad, shiftT(32, 2)],
  [M.Pslldq, byteShiftT(true)], [M.Psrldq, byteShiftT(false)],
  // shuffles
  [M.Punpcklbw, simple(unpack(8, false))], [M.Punpcklwd, simple(unpack(16, false))],
  [M.Punpckldq, simple(unpack(32, false))], [M.Punpcklqdq, simple(unpack(64, false))],
  [M.Punpckhbw, simple(unpack(8, true))], [M.Punpckhwd, simple(unpack(16, true))],
  [M.Punpckhdq, simple(unpack(32, true))], [M.Punpckhqdq, simple(unpack(64, true))],
  [M.Unpcklps, simple(unpack(32, false))], [M.Unpckhps, simple(unpack(32, true))],
  [M.Unpcklpd, simple(unpack(64, false))], [M.Unpckhpd, simple(unpack(64, true))],
  [M.Pshufd, withImm(pshufd, ALIGN | NO_A)], [M.Pshuflw, withImm(pshuflw, ALIGN | NO_A)], [M.Pshufhw, withImm(pshufhw, ALIGN | NO_A)],
  [M.Shufps, withImm(shufps)], [M.Shufpd, withImm(shufpd)],
  [M.Pshufb, simple(pshufb)], [M.Palignr, withImm(palignr)],
  [M.Pblendw, withImm((imm) => blend(2, imm))], [M.Blendps, withImm((imm) => blend(4, imm))], [M.Blendpd, withImm((imm) => blend(8, imm))],
  [M.Pblendvb, blendv(1)], [M.Blendvps, blendv(4)], [M.Blendvpd, blendv(8)],
  [M.Pmovzxbw, pmovx(1, 2, false)], [M.Pmovzxbd, pmovx(1, 4, false)], [M.Pmovzxbq, pmovx(1, 8, false)],
  [M.Pmovzxwd, pmovx(2, 4, false)], [M.Pmovzxwq, pmovx(2, 8, false)], [M.Pmovzxdq, pmovx(4, 8, false)],
  [M.Pmovsxbw, pmovx(1, 2, true)], [M.Pmovsxbd, pmovx(1, 4, true)], [M.Pmovsxbq, pmovx(1, 8, true)],
  [M.Pmovsxwd, pmovx(2, 4, true)], [M.Pmovsxwq, pmovx(2, 8, true)], [M.Pmovsxdq, pmovx(4, 8, true)],
  // floating point
  [M.Addss, fpT(fps(0, true), 4)], [M.Subss, fpT(fps(1, true), 4)], [M.Mulss, fpT(fps(2, true), 4)], [M.Divss, fpT(fps(3, true), 4)],
  [M.Sqrtss, fpT(fps(4, true), 4)], [M.Minss, fpT(fps(5, true), 4)], [M.Maxss, fpT(fps(6, true), 4)],
  [M.Addps, fpT(fps(0, false))], [M.Subps, fpT(fps(1, false))], [M.Mulps, fpT(fps(2, false))], [M.Divps, fpT(fps(3, false))],
  [M.Sqrtps, fpT(fps(4, false))], [M.Minps, fpT(fps(5, false))], [M.Maxps, fpT(fps(6, false))],
  [M.Addsd, fpT(fpd(0, true), 8)], [M.Subsd, fpT(fpd(1, true), 8)], [M.Mulsd, fpT(fpd(2, true), 8)], [M.Divsd, fpT(fpd(3, true), 8)],
  [M.Sqrtsd, fpT(fpd(4, true), 8)], [M.Minsd, fpT(fpd(5, true), 8)], [M.Maxsd, fpT(fpd(6, true), 8)],
  [M.Addpd, fpT(fpd(0, false))], [M.Subpd, fpT(fpd(1, false))], [M.Mulpd, fpT(fpd(2, false))], [M.Divpd, fpT(fpd(3, false))],
  [M.Sqrtpd, fpT(fpd(4, false))], [M.Minpd, fpT(fpd(5, false))], [M.Maxpd, fpT(fpd(6, false))],
  [M.Haddps, fpT(hps(0))], [M.Hsubps, fpT(hps(1))], [M.Haddpd, fpT(hpd(0))], [M.Hsubpd, fpT(hpd(1))],
  [M.Addsubps, fpT(addsubps)], [M.Addsubpd, fpT(addsubpd)],
  [M.Cmpss, fpImmT((imm) => cmpps(true, imm), 4)], [M.Cmpps, fpImmT((imm) => cmpps(false, imm))],
  [M.Cmppd, fpImmT((imm) => cmppd(false, imm))],
  [M.Ucomiss, comis(false, false)], [M.Comiss, comis(false, true)],
  [M.Ucomisd, comis(true, false)], [M.Comisd, comis(true, true)],
  [M.Cvtsi2ss, cvtsi2(false)], [M.Cvtsi2sd, cvtsi2(true)],
  [M.Cvtss2si, cvt2si(false, false)], [M.Cvttss2si, cvt2si(false, true)],
  [M.Cvtsd2si, cvt2si(true, false)], [M.Cvttsd2si, cvt2si(true, true)],
  [M.Cvtsd2ss, fpT(cvtsd2ss, 8)], [M.Cvtss2sd, fpT(cvtss2sd, 4)],
  [M.Cvtpd2ps, fpT(cvtpd2ps)], [M.Cvtps2pd, fpT(cvtps2pd, 8)],
  [M.Cvtdq2ps, fpT(cvtdq2ps)], [M.Cvtdq2pd, fpT(cvtdq2pd, 8)],
  [M.Cvtps2dq, fpT(cvtps2dq(false))], [M.Cvttps2dq, fpT(cvtps2dq(true))],
  [M.Cvtpd2dq, fpT(cvtpd2dq(false))], [M.Cvttpd2dq, fpT(cvtpd2dq(true))],
  [M.Dpps, fpImmT((imm) => dpps(imm))], [M.Dppd, fpImmT((imm) => dppd(imm))], [M.Mpsadbw, withImm(mpsadbw)],
  [M.Rcpps, simple(approx(false, false))], [M.Rsqrtps, simple(approx(true, false))],
  [M.Rcpss, (d) => xop(d, approx(false, true), ALIGN, d.ops[1].kind === "mem" ? 4 : -1)],
  [M.Rsqrtss, (d) => xop(d, approx(true, true), ALIGN, d.ops[1].kind === "mem" ? 4 : -1)],
  [M.Pcmpestri, pcmpstr(true, true, false)], [M.Pcmpestri64, pcmpstr(true, true, true)],
  [M.Pcmpestrm, pcmpstr(true, false, false)], [M.Pcmpestrm64, pcmpstr(true, false, true)],
  [M.Pcmpistri, pcmpstr(false, true, false)], [M.Pcmpistrm, pcmpstr(false, false, false)],
  [M.Roundss, fpImmT((imm) => roundK(false, true, imm), 4)], [M.Roundsd, fpImmT((imm) => roundK(true, true, imm), 8)],
  [M.Roundps, fpImmT((imm) => roundK(false, false, imm))], [M.Roundpd, fpImmT((imm) => roundK(true, false, imm))],
];

export const sseTranslators: [Mnemonic, Translator][] = table;

/**
 * The kernel of mnemonic `m`'s xmm form (one built by `simple` or `fpT`: no immediate). mmx.ts runs
 * the lane-wise ones on the low 8 bytes for the MMX forms; a kernel that moves data across the
 * 8-byte halves (packs, high unpacks, horizontal adds, PSHUFB) does not give the MMX result.
 */
export function laneKernel(m: Mnemonic): Kernel {
  const entry = table.find(([mn]) => mn === m);
  const k = entry === undefined ? undefined : KERNELS.get(entry[1]);
  if (k === undefined) throw new Error(`no SSE kernel for ${Mnemonic[m]}`);
  return k;
}
table.push([Mnemonic.Crc32, (d) => crc32(d)]);

// ------------------------------------------------------------------ MOVSD / CMPSD shared with rep.ts

/**
 * iced names the SSE2 scalar MOVSD/CMPSD like the string instructions rep.ts owns: decode.ts
 * sends the forms with an XMM operand here and the others to rep.ts.
 */
export const sseSharedTranslators: [Mnemonic, Translator][] = [
  [Mnemonic.Movsd, movScalar(8)],
  [Mnemonic.Cmpsd, fpImmT((imm) => cmppd(true, imm), 8)],
];

// CRC32 r32/r64, r/m8/16/32/64 (SSE4.2; on general registers, so no CR0/CR4 gate).
const crc32: Translator = (d) => {
  const [dst, src] = d.ops;
  if (dst.kind !== "reg" || (src.kind !== "reg" && src.kind !== "mem")) throw new UnsupportedForm();
  const s = dst.slot;
  const n = src.size;
  const get: (c: Cpu) => void = src.kind === "reg"
    ? (c) => {
      const v = src.high8 ? c.r[src.slot] >>> 8 : c.r[src.slot];
      I32[B] = v;
      I32[B + 1] = c.r[src.slot + 1];
    }
    : (c) => loadMem(c, src.ea(c), c.ahi, n, B);
  return (c) => {
    get(c);
    let crc = c.r[s];
    for (let i = 0; i < n; i++) crc = CRC_TABLE[(crc ^ U8[16 + i]) & 0xff] ^ (crc >>> 8);
    c.r[s] = crc;
    c.r[s + 1] = 0;
  };
};
