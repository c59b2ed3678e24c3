// MMX: the eight 64-bit MMX registers and the integer SIMD instructions on them — MMX itself, the
// SSE/SSE2 integer instructions in their MM forms (PAVGB, PSHUFW, PMOVMSKB, PADDQ, PMULUDQ, …),
// SSSE3's MM forms (PSHUFB, PHADDW, PALIGNR, …), EMMS, the SSE conversions with an MM operand
// (CVTPI2PS, CVTPS2PI, …), MOVQ2DQ/MOVDQ2Q, MOVNTQ, and the byte-masked stores MASKMOVQ and
// MASKMOVDQU (the latter an XMM instruction, here because it shares the masked store).
//
// Aliasing (SDM vol. 1 §9.5): MMn is the significand, bits 63–0, of x87 physical register Rn
// (words FPR + 3n and FPR + 3n + 1, vp-layout.ts), and writing MMn sets bits 79–64 (sign and
// exponent) to all ones: the third word becomes 0xffff. Every MMX instruction but EMMS sets TOP to
// 0 and every tag to valid (FTW = 0 in the full-tag encoding); EMMS sets TOP to 0 and every tag empty
// (FTW = 0xffff). FNSAVE/FNSTENV store tags recomputed from the contents (an MMX-written register is
// "special", exponent 0x7fff), FXSAVE the abridged byte 0xff.
//
// Checks: CR0.EM → #UD, CR0.TS → #NM, a pending unmasked x87 exception → #MF (fp-gate.ts mmxGate;
// the SSE conversions and MOVQ2DQ/MOVDQ2Q also #UD without CR4.OSFXSR, sseMmxGate), then the memory
// access. A fault on a memory operand (#GP, #PF) leaves the x87 state alone; as the AMD host shows,
// the transition comes before a SIMD exception (#XM) of the conversions and before MASKMOVQ's store.
// CVTPI2PS/CVTPI2PD from memory touch no x87 state (no transition, no #MF).
//
// The arithmetic is sse.ts's: its kernels run on its scratch with the MMX operands in the low 8
// bytes of A and B, and the low 8 bytes of R are the result. Lane-wise kernels need nothing more;
// the ones whose xmm form moves data across the 8-byte halves get the MMX operands arranged first
// (packs and horizontal add/sub: B after A; high unpacks: the high halves moved down; PSHUFB: A
// twice; PALIGNR: A after B), and PSHUFW is PSHUFLW's low half.

import { Mnemonic } from "iced-x86";
import type { Cpu, OpFn } from "./cpu.js";
import * as faultModule from "./fault.js";
import * as fpGateModule from "./fp-gate.js";
import * as insnModule from "./insn.js";
import type { Insn, Translator } from "./insn.js";
import * as mmuModule from "./mmu.js";
import type { Operand } from "./operands.js";
import * as sseFpModule from "./sse-fp.js";
import * as sseModule from "./sse.js";
import type { Kernel } from "./sse.js";
import * as vpLayoutModule from "./vp-layout.js";

// Imported bindings as module constants: under tsx (esbuild) every use of an import is a getter call.
const { gp } = faultModule;
const { mmxGate, sseGate, sseMmxGate } = fpGateModule;
const { UnsupportedForm } = insnModule;
const { probeWrite, rd16, rd32, rd64, wr32, wr64, wr8 } = mmuModule;
const { setMx } = sseFpModule;
const { countB, laneKernel, palignr, pshuflw, raise, shiftKernel, simdScratch } = sseModule;
const { FPR, FSW, FTW, MXCSR, XMM } = vpLayoutModule;
const { U8, U16, I32, A, B, R } = simdScratch;

// ------------------------------------------------------------------ the register file

/** Word index of MMn (significand low word; +1 high word, +2 sign and exponent). */
function mmSlot(op: Operand | undefined): number {
  if (op === undefined || op.kind !== "mm") throw new UnsupportedForm();
  return FPR + 3 * op.n;
}

function xmmSlot(op: Operand | undefined): number {
  if (op === undefined || op.kind !== "xmm") throw new UnsupportedForm();
  return XMM + 4 * op.n;
}

/** The x87 → MMX transition every MMX instruction but EMMS makes: TOP = 0, all tags valid. */
function enterMmx(r: Int32Array): void {
  r[FSW] &= ~0x3800;
  r[FTW] = 0;
}

/** MMn ← (lo, hi), exponent and sign all ones, and the transition. */
function writeMm(r: Int32Array, D: number, lo: number, hi: number): void {
  r[D] = lo;
  r[D + 1] = hi;
  r[D + 2] = 0xffff;
  enterMmx(r);
}

type Load = (c: Cpu) => void;

/** Loads an MM register or a 4- or 8-byte memory operand into scratch words `at`, `at` + 1 (a 4-byte load zeroes the high word). */
function mmLoader(op: Operand, at: number): Load {
  if (op.kind === "mm") {
    const S = FPR + 3 * op.n;
    return (c) => {
      const r = c.r;
      I32[at] = r[S];
      I32[at + 1] = r[S + 1];
    };
  }
  if (op.kind === "mem") {
    const ea = op.ea;
    if (op.size === 8) {
      return (c) => {
        I32[at] = rd64(c, ea(c), c.ahi);
        I32[at + 1] = c.mhi;
      };
    }
    if (op.size === 4) {
      return (c) => {
        I32[at] = rd32(c, ea(c), c.ahi);
        I32[at + 1] = 0;
      };
    }
  }
  throw new UnsupportedForm();
}

// ------------------------------------------------------------------ kernels on MM operands

/** How the MMX operands are arranged in the scratch before an xmm kernel runs. */
const PLAIN = 0;
/** B's 8 bytes after A's (packs, horizontal add/sub). */
const CONCAT = 1;
/** A's and B's high dwords moved to the low dword (high unpacks through the low-unpack kernels). */
const HIGH = 2;
/** A's 8 bytes twice (PSHUFB: index & 15 then reads what index & 7 would). */
const DUP = 3;
/** A's 8 bytes after B's, A zero (PALIGNR: (A:B) >> n bytes). */
const ALIGN_AB = 4;

/** mm dst ← kernel(dst, src) for `op mm, mm/m64 [, imm]`. */
function mop(d: Insn, k: Kernel, arrange = PLAIN): OpFn {
  const D = mmSlot(d.ops[0]);
  const ld = mmLoader(d.ops[1], B);
  return (c) => {
    mmxGate(c);
    ld(c);
    const r = c.r;
    I32[A] = r[D];
    I32[A + 1] = r[D + 1];
    switch (arrange) {
      case CONCAT:
        I32[A + 2] = I32[B];
        I32[A + 3] = I32[B + 1];
        break;
      case HIGH:
        I32[A] = I32[A + 1];
        I32[B] = I32[B + 1];
        break;
      case DUP:
        I32[A + 2] = I32[A];
        I32[A + 3] = I32[A + 1];
        break;
      case ALIGN_AB:
        I32[B + 2] = I32[A];
        I32[B + 3] = I32[A + 1];
        I32[A] = 0;
        I32[A + 1] = 0;
        I32[A + 2] = 0;
        I32[A + 3] = 0;
        break;
    }
    k();
    writeMm(r, D, I32[R], I32[R + 1]);
  };
}

/** The MM form of a lane-wise SSE mnemonic: sse.ts's kernel. */
const lane = (m: Mnemonic, arrange = PLAIN): Translator => {
  const k = laneKernel(m);
  return (d) => mop(d, k, arrange);
};
/** A high unpack: the low-unpack kernel of the same width on the high halves. */
const unpackHigh = (low: Mnemonic): Translator => lane(low, HIGH);

const AND = 0, ANDN = 1, OR = 2, XOR = 3, ADD = 4, SUB = 5;

/** PAND/PANDN/POR/PXOR/PADDD/PSUBD: word-wise on the register words (sse.ts does these without kernels too). */
function wordT(kind: number): Translator {
  return (d) => {
    const D = mmSlot(d.ops[0]);
    const ld = mmLoader(d.ops[1], B);
    return (c) => {
      mmxGate(c);
      ld(c);
      const r = c.r;
      const a0 = r[D], a1 = r[D + 1], b0 = I32[B], b1 = I32[B + 1];
      let lo: number, hi: number;
      switch (kind) {
        case AND: lo = a0 & b0; hi = a1 & b1; break;
        case ANDN: lo = ~a0 & b0; hi = ~a1 & b1; break;
        case OR: lo = a0 | b0; hi = a1 | b1; break;
        case XOR: lo = a0 ^ b0; hi = a1 ^ b1; break;
        case ADD: lo = (a0 + b0) | 0; hi = (a1 + b1) | 0; break;
        default: lo = (a0 - b0) | 0; hi = (a1 - b1) | 0;
      }
      writeMm(r, D, lo, hi);
    };
  };
}

function imm8(d: Insn, i: number): number {
  const o = d.ops[i];
  if (o === undefined || o.kind !== "imm") throw new UnsupportedForm();
  return o.lo & 0xff;
}

/** PSLLx/PSRLx/PSRAx mm, imm8 and mm, mm/m64 (count from the source's 64 bits). */
function shiftT(width: number, kind: number): Translator {
  return (d) => {
    const src = d.ops[1];
    if (src.kind === "imm") {
      const n = src.lo & 0xff;
      const k = shiftKernel(width, kind, () => n);
      const D = mmSlot(d.ops[0]);
      return (c) => {
        mmxGate(c);
        const r = c.r;
        I32[A] = r[D];
        I32[A + 1] = r[D + 1];
        k();
        writeMm(r, D, I32[R], I32[R + 1]);
      };
    }
    return mop(d, shiftKernel(width, kind, countB));
  };
}

// ------------------------------------------------------------------ moves

/** MOVD / MOVQ with an MM operand: mm ← r/m32 (zero-extended), r/m64 or mm; r/m32, r/m64 or mm ← mm. */
function movdq(bytes: number): Translator {
  return (d) => {
    const [dst, src] = d.ops;
    if (dst.kind === "mm") {
      const D = FPR + 3 * dst.n;
      if (src.kind === "reg") {
        const s = src.slot;
        const q = src.size === 8;
        return (c) => {
          mmxGate(c);
          const r = c.r;
          writeMm(r, D, r[s], q ? r[s + 1] : 0);
        };
      }
      if (src.kind === "mem" && src.size !== bytes) throw new UnsupportedForm();
      const ld = mmLoader(src, B);
      return (c) => {
        mmxGate(c);
        ld(c);
        writeMm(c.r, D, I32[B], I32[B + 1]);
      };
    }
    const S = mmSlot(src);
    if (dst.kind === "reg") {
      const s = dst.slot;
      const q = dst.size === 8;
      return (c) => {
        mmxGate(c);
        const r = c.r;
        r[s] = r[S];
        r[s + 1] = q ? r[S + 1] : 0;
        enterMmx(r);
      };
    }
    if (dst.kind !== "mem") throw new UnsupportedForm();
    const ea = dst.ea;
    const q = dst.size === 8;
    return (c) => {
      mmxGate(c);
      const lo = ea(c);
      const r = c.r;
      if (q) wr64(c, lo, c.ahi, r[S], r[S + 1]);
      else wr32(c, lo, c.ahi, r[S]);
      enterMmx(r);
    };
  };
}

/** MOVNTQ m64, mm: a plain store here. */
const movntq: Translator = (d) => {
  const [dst, src] = d.ops;
  if (dst.kind !== "mem") throw new UnsupportedForm();
  const S = mmSlot(src);
  const ea = dst.ea;
  return (c) => {
    mmxGate(c);
    const lo = ea(c);
    const r = c.r;
    wr64(c, lo, c.ahi, r[S], r[S + 1]);
    enterMmx(r);
  };
};

/** MOVQ2DQ xmm, mm (high quadword zeroed) and MOVDQ2Q mm, xmm (low quadword). */
const movq2dq: Translator = (d) => {
  const D = xmmSlot(d.ops[0]);
  const S = mmSlot(d.ops[1]);
  return (c) => {
    sseMmxGate(c);
    const r = c.r;
    r[D] = r[S];
    r[D + 1] = r[S + 1];
    r[D + 2] = 0;
    r[D + 3] = 0;
    enterMmx(r);
  };
};
const movdq2q: Translator = (d) => {
  const D = mmSlot(d.ops[0]);
  const S = xmmSlot(d.ops[1]);
  return (c) => {
    sseMmxGate(c);
    const r = c.r;
    writeMm(r, D, r[S], r[S + 1]);
  };
};

/** PMOVMSKB r32/r64, mm: the bytes' sign bits, zero-extended. */
const pmovmskb: Translator = (d) => {
  const dst = d.ops[0];
  if (dst.kind !== "reg") throw new UnsupportedForm();
  const s = dst.slot;
  const S = mmSlot(d.ops[1]);
  return (c) => {
    mmxGate(c);
    const r = c.r;
    const lo = r[S], hi = r[S + 1];
    let m = 0;
    for (let i = 0; i < 4; i++) m |= ((lo >>> (8 * i + 7)) & 1) << i;
    for (let i = 0; i < 4; i++) m |= ((hi >>> (8 * i + 7)) & 1) << (i + 4);
    r[s] = m;
    r[s + 1] = 0;
    enterMmx(r);
  };
};

/** PEXTRW r32/r64, mm, imm8: word imm & 3, zero-extended. */
const pextrw: Translator = (d) => {
  const dst = d.ops[0];
  if (dst.kind !== "reg") throw new UnsupportedForm();
  const s = dst.slot;
  const S = mmSlot(d.ops[1]);
  const sel = imm8(d, 2) & 3;
  const w = S + (sel >> 1);
  const shift = 16 * (sel & 1);
  return (c) => {
    mmxGate(c);
    const r = c.r;
    r[s] = (r[w] >>> shift) & 0xffff;
    r[s + 1] = 0;
    enterMmx(r);
  };
};

/** PINSRW mm, r32/m16, imm8: word imm & 3 ← the source's low 16 bits. */
const pinsrw: Translator = (d) => {
  const [dst, src] = d.ops;
  const D = mmSlot(dst);
  const sel = imm8(d, 2) & 3;
  let get: (c: Cpu) => number;
  if (src.kind === "reg") {
    const s = src.slot;
    get = (c) => c.r[s];
  } else if (src.kind === "mem") {
    const ea = src.ea;
    get = (c) => rd16(c, ea(c), c.ahi);
  } else throw new UnsupportedForm();
  return (c) => {
    mmxGate(c);
    const v = get(c);
    const r = c.r;
    I32[A] = r[D];
    I32[A + 1] = r[D + 1];
    U16[sel] = v;
    writeMm(r, D, I32[A], I32[A + 1]);
  };
};

/** PSHUFW mm, mm/m64, imm8: PSHUFLW's low half. */
const pshufw: Translator = (d) => mop(d, pshuflw(imm8(d, 2)));

/** PALIGNR mm, mm/m64, imm8. */
const palignrMm: Translator = (d) => mop(d, palignr(imm8(d, 2)), ALIGN_AB);

/**
 * MASKMOVQ mm, mm and MASKMOVDQU xmm, xmm: the data register's bytes whose mask byte has its top
 * bit set go to [rdi] (DS or an override); the others are not written. The whole 8 or 16 bytes are
 * checked for writing first, even with a zero mask (the SDM leaves that to the implementation; the
 * AMD host faults).
 */
function maskmov(xmm: boolean): Translator {
  return (d) => {
    const [dst, data, mask] = d.ops;
    if (dst.kind !== "mem" || data === undefined || mask === undefined) throw new UnsupportedForm();
    const n = xmm ? 16 : 8;
    const Sd = xmm ? xmmSlot(data) : mmSlot(data);
    const Sm = xmm ? xmmSlot(mask) : mmSlot(mask);
    const words = n / 4;
    const ea = dst.ea;
    return (c) => {
      if (xmm) sseGate(c);
      else mmxGate(c);
      const r = c.r;
      for (let k = 0; k < words; k++) {
        I32[A + k] = r[Sd + k];
        I32[B + k] = r[Sm + k];
      }
      // The AMD host makes the transition before the store (a #PF finds it made).
      if (!xmm) enterMmx(r);
      const lo = ea(c);
      const hi = c.ahi;
      probeWrite(c, lo, hi, n);
      for (let i = 0; i < n; i++) {
        if ((U8[16 + i] & 0x80) === 0) continue;
        const s = (lo >>> 0) + i;
        wr8(c, s | 0, s > 0xffffffff ? (hi + 1) | 0 : hi, U8[i]);
      }
    };
  };
}

/** EMMS: every tag empty and TOP = 0 (SDM vol. 1 table 9-3), the registers kept. */
const emms: Translator = () => (c) => {
  mmxGate(c);
  const r = c.r;
  r[FSW] &= ~0x3800;
  r[FTW] = 0xffff;
};

// ------------------------------------------------------------------ conversions with an MM operand

/**
 * CVTPI2PS xmm, mm/m64 (two int32 → the low two singles, the high two kept) and CVTPI2PD xmm,
 * mm/m64 (→ two doubles): MXCSR rounding and flags as sse.ts. An MM source makes the transition
 * (and is checked for a pending x87 exception); a memory source does not touch the x87 state.
 */
function cvtpi2(double: boolean): Translator {
  return (d) => {
    const D = xmmSlot(d.ops[0]);
    const src = d.ops[1];
    const fromMm = src.kind === "mm";
    const ld = mmLoader(src, B);
    if (src.kind === "mem" && src.size !== 8) throw new UnsupportedForm();
    const k = laneKernel(double ? Mnemonic.Cvtdq2pd : Mnemonic.Cvtdq2ps);
    return (c) => {
      if (fromMm) sseMmxGate(c);
      else sseGate(c);
      ld(c);
      I32[B + 2] = 0;
      I32[B + 3] = 0;
      const r = c.r;
      if (fromMm) enterMmx(r);
      setMx(r[MXCSR]);
      const fl = k();
      if (fl !== 0) raise(c, fl);
      r[D] = I32[R];
      r[D + 1] = I32[R + 1];
      if (double) {
        r[D + 2] = I32[R + 2];
        r[D + 3] = I32[R + 3];
      }
    };
  };
}

/**
 * CVTPS2PI / CVTTPS2PI mm, xmm/m64 and CVTPD2PI / CVTTPD2PI mm, xmm/m128 (#GP(0) unless
 * 16-byte aligned): two int32 results in MMn (the integer indefinite 0x80000000 for NaN and out of
 * range). Always the transition.
 */
function cvt2pi(double: boolean, truncate: boolean): Translator {
  return (d) => {
    const D = mmSlot(d.ops[0]);
    const src = d.ops[1];
    let ld: Load;
    if (src.kind === "xmm") {
      const S = XMM + 4 * src.n;
      ld = (c) => {
        const r = c.r;
        I32[B] = r[S];
        I32[B + 1] = r[S + 1];
        I32[B + 2] = double ? r[S + 2] : 0;
        I32[B + 3] = double ? r[S + 3] : 0;
      };
    } else if (src.kind === "mem" && src.size === (double ? 16 : 8)) {
      const ea = src.ea;
      ld = double
        ? (c) => {
          const lo = ea(c);
          const hi = c.ahi;
          if ((lo & 15) !== 0) gp(c, 0);
          I32[B] = rd64(c, lo, hi);
          I32[B + 1] = c.mhi;
          const s = (lo >>> 0) + 8;
          I32[B + 2] = rd64(c, s | 0, s > 0xffffffff ? (hi + 1) | 0 : hi);
          I32[B + 3] = c.mhi;
        }
        : (c) => {
          I32[B] = rd64(c, ea(c), c.ahi);
          I32[B + 1] = c.mhi;
          I32[B + 2] = 0;
          I32[B + 3] = 0;
        };
    } else throw new UnsupportedForm();
    const k = laneKernel(double ? (truncate ? Mnemonic.Cvttpd2dq : Mnemonic.Cvtpd2dq) : truncate ? Mnemonic.Cvttps2dq : Mnemonic.Cvtps2dq);
    return (c) => {
      sseMmxGate(c);
      ld(c);
      const r = c.r;
      enterMmx(r);
      setMx(r[MXCSR]);
      const fl = k();
      if (fl !== 0) raise(c, fl);
      writeMm(r, D, I32[R], I32[R + 1]);
    };
  };
}

// ------------------------------------------------------------------ the table

const M = Mnemonic;

/**
 * MMX translators: decode.ts sends an instruction with an MM operand here when sse.ts also has
 * the mnemonic (its XMM forms), and every form of the mnemonics only this module has.
 */
export const mmxTranslators: [Mnemonic, Translator][] = [
  // moves
  [M.Movd, movdq(4)], [M.Movq, movdq(8)], [M.Movntq, movntq],
  [M.Movq2dq, movq2dq], [M.Movdq2q, movdq2q],
  [M.Pmovmskb, pmovmskb], [M.Pextrw, pextrw], [M.Pinsrw, pinsrw],
  [M.Maskmovq, maskmov(false)], [M.Maskmovdqu, maskmov(true)],
  [M.Emms, emms],
  // logic, PADDD, PSUBD
  [M.Pand, wordT(AND)], [M.Pandn, wordT(ANDN)], [M.Por, wordT(OR)], [M.Pxor, wordT(XOR)],
  [M.Paddd, wordT(ADD)], [M.Psubd, wordT(SUB)],
  // lane-wise arithmetic: sse.ts's kernels
  ...[
    M.Paddb, M.Paddw, M.Paddq, M.Psubb, M.Psubw, M.Psubq, M.Paddsb, M.Paddsw, M.Paddusb, M.Paddusw, M.Psubsb, M.Psubsw,
    M.Psubusb, M.Psubusw, M.Pcmpeqb, M.Pcmpeqw, M.Pcmpeqd, M.Pcmpgtb, M.Pcmpgtw, M.Pcmpgtd, M.Pmullw, M.Pmulhw, M.Pmulhuw,
    M.Pmulhrsw, M.Pmuludq, M.Pmaddwd, M.Pmaddubsw, M.Pminub, M.Pmaxub, M.Pminsw, M.Pmaxsw, M.Pavgb, M.Pavgw, M.Psadbw,
    M.Pabsb, M.Pabsw, M.Pabsd, M.Psignb, M.Psignw, M.Psignd, M.Punpcklbw, M.Punpcklwd, M.Punpckldq,
  ].map((m): [Mnemonic, Translator] => [m, lane(m)]),
  // across the halves
  [M.Punpckhbw, unpackHigh(M.Punpcklbw)], [M.Punpckhwd, unpackHigh(M.Punpcklwd)], [M.Punpckhdq, unpackHigh(M.Punpckldq)],
  ...[M.Packsswb, M.Packuswb, M.Packssdw, M.Phaddw, M.Phaddd, M.Phaddsw, M.Phsubw, M.Phsubd, M.Phsubsw]
    .map((m): [Mnemonic, Translator] => [m, lane(m, CONCAT)]),
  [M.Pshufb, lane(M.Pshufb, DUP)],
  [M.Pshufw, pshufw], [M.Palignr, palignrMm],
  // shifts
  [M.Psllw, shiftT(16, 0)], [M.Pslld, shiftT(32, 0)], [M.Psllq, shiftT(64, 0)],
  [M.Psrlw, shiftT(16, 1)], [M.Psrld, shiftT(32, 1)], [M.Psrlq, shiftT(64, 1)],
  [M.Psraw, shiftT(16, 2)], [M.Psrad, shiftT(32, 2)],
  // conversions
  [M.Cvtpi2ps, cvtpi2(false)], [M.Cvtpi2pd, cvtpi2(true)],
  [M.Cvtps2pi, cvt2pi(false, false)], [M.Cvttps2pi, cvt2pi(false, true)],
  [M.Cvtpd2pi, cvt2pi(true, false)], [M.Cvttpd2pi, cvt2pi(true, true)],
];
